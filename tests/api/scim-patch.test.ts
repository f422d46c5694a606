import { createTestApp, type TestApp } from '../support/app';
import { ENTERPRISE_USER, SCIM_ERROR, scimClient, userBody, type ScimClient } from '../support/scim';

describe('SCIM PATCH (users, in the shapes Okta and Entra send) and groups', () => {
  let t: TestApp;
  let scim: ScimClient;
  beforeAll(async () => {
    t = await createTestApp();
    scim = await scimClient(t);
  });
  afterAll(async () => {
    await t.close();
  });

  const newUser = async (userName: string, over: Record<string, unknown> = {}) => {
    const res = await scim.post('/Users', userBody(userName, over));
    expect(res.status).toBe(201);
    return res.body.id as string;
  };

  describe('users', () => {
    test('Entra default job: capitalised ops, a value-filter path, userName, an Add of a single value', async () => {
      const id = await newUser('entra.mover@example.com');
      const res = await scim.patch(`/Users/${id}`, [
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'entra.moved@example.com' },
        { op: 'Replace', path: 'userName', value: 'entra.moved@example.com' },
        { op: 'Add', path: 'nickName', value: 'Mo' },
      ]);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ userName: 'entra.moved@example.com', nickName: 'Mo', emails: [{ value: 'entra.moved@example.com', type: 'work', primary: true }], meta: { version: 'W/"2"' } });
    });

    test('Entra SCIM-compliant job: one replace without path, dotted and URN keys', async () => {
      const id = await newUser('entra.flag@example.com');
      const res = await scim.patch(`/Users/${id}`, [
        { op: 'replace', value: { displayName: 'Bjfe', 'name.givenName': 'Kkom', [`${ENTERPRISE_USER}:employeeNumber`]: 'Aklq' } },
      ]);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ displayName: 'Bjfe', name: { givenName: 'Kkom', familyName: 'Family' }, [ENTERPRISE_USER]: { employeeNumber: 'Aklq' } });
      expect(Object.keys(res.body)).not.toContain('name.givenName');
      const ext = await scim.patch(`/Users/${id}`, [{ op: 'add', value: { [ENTERPRISE_USER]: { department: 'Ops' } } }]);
      expect(ext.body[ENTERPRISE_USER]).toEqual({ employeeNumber: 'Aklq', department: 'Ops' });
    });

    test('manager: Add with an unqualified path and an array value, change, then Replace with empty removes it', async () => {
      const boss = await newUser('boss@example.com');
      const boss2 = await newUser('boss2@example.com');
      const id = await newUser('report@example.com');
      let res = await scim.patch(`/Users/${id}`, [{ op: 'Add', path: 'manager', value: [{ $ref: `/scim/v2/Users/${boss}`, value: boss }] }]);
      expect(res.body[ENTERPRISE_USER].manager).toEqual({ $ref: `/scim/v2/Users/${boss}`, value: boss });
      res = await scim.patch(`/Users/${id}`, [{ op: 'Replace', path: `${ENTERPRISE_USER}:manager`, value: { value: boss2 } }]);
      expect(res.body[ENTERPRISE_USER].manager).toEqual({ value: boss2 });
      res = await scim.patch(`/Users/${id}`, [{ op: 'Replace', path: 'manager', value: '' }]);
      expect(res.body).not.toHaveProperty(ENTERPRISE_USER);
    });

    test('null handling: "" reads back empty, null removes the attribute', async () => {
      const id = await newUser('nulls@example.com', { title: 'Boss' });
      let res = await scim.patch(`/Users/${id}`, [{ op: 'Replace', path: 'title', value: '' }]);
      expect(res.body.title).toBe('');
      res = await scim.patch(`/Users/${id}`, [{ op: 'Replace', path: 'title', value: null }]);
      expect(res.body).not.toHaveProperty('title');
    });

    test('replace on an unmatched [type eq "work"] filter creates the element', async () => {
      const id = await newUser('nowork@example.com', { emails: [{ value: 'home@example.org', type: 'home' }] });
      const res = await scim.patch(`/Users/${id}`, [{ op: 'Replace', path: 'emails[type eq "work"].value', value: 'work@example.com' }]);
      expect(res.body.emails).toEqual([{ value: 'home@example.org', type: 'home' }, { type: 'work', value: 'work@example.com' }]);
      const rm = await scim.patch(`/Users/${id}`, [{ op: 'remove', path: 'emails[type eq "home"]' }]);
      expect(rm.body.emails).toEqual([{ type: 'work', value: 'work@example.com' }]);
    });

    test('several operations apply in order; a failing one leaves nothing changed', async () => {
      const id = await newUser('order@example.com', { displayName: 'A' });
      const res = await scim.patch(`/Users/${id}`, [
        { op: 'replace', path: 'displayName', value: 'B' },
        { op: 'remove', path: 'displayName' },
        { op: 'add', path: 'displayName', value: 'C' },
      ]);
      expect(res.body.displayName).toBe('C');
      const bad = await scim.patch(`/Users/${id}`, [
        { op: 'replace', path: 'displayName', value: 'D' },
        { op: 'replace', path: 'emails[value eq "nope"]', value: { display: 'x' } },
      ]);
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({ schemas: [SCIM_ERROR], status: '400', scimType: 'noTarget' });
      const after = await scim.get(`/Users/${id}`);
      expect(after.body).toMatchObject({ displayName: 'C', meta: { version: 'W/"2"' } });
    });

    test.each([
      [[{ op: 'remove' }], 'noTarget'],
      [[{ op: 'frobnicate', path: 'displayName', value: 'x' }], 'invalidSyntax'],
      [[{ op: 'replace', path: 'emails[type eq ', value: 'x' }], 'invalidPath'],
      [[{ op: 'replace', path: 'displayName[value eq "x"]', value: 'x' }], 'invalidPath'],
      [[{ op: 'remove', path: 'id' }], 'mutability'],
      [[{ op: 'replace', path: 'active', value: 'perhaps' }], 'invalidValue'],
      [[{ op: 'remove', path: 'userName' }], 'invalidValue'],
      [[{ op: 'replace', value: 'not an object' }], 'invalidValue'],
      [[], 'invalidSyntax'],
    ])('bad PATCH %j is 400 %s', async (ops, scimType) => {
      const id = await newUser(`bad.${Math.random().toString(36).slice(2)}@example.com`);
      const res = await scim.patch(`/Users/${id}`, ops);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ schemas: [SCIM_ERROR], status: '400', scimType });
    });

    test('a PatchOp without the PatchOp schema URN is 400 invalidSyntax; an unknown id is 404', async () => {
      const id = await newUser('schemaless@example.com');
      const res = await t.http().patch(`/scim/v2/Users/${id}`).set('Authorization', `Bearer ${scim.token}`)
        .send({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], Operations: [{ op: 'replace', path: 'displayName', value: 'x' }] });
      expect(res.status).toBe(400);
      expect(res.body.scimType).toBe('invalidSyntax');
      const missing = await scim.patch('/Users/2819c223-7f76-453a-919d-413861904646', [{ op: 'replace', path: 'displayName', value: 'x' }]);
      expect(missing.status).toBe(404);
    });

    test('PATCH userName to a taken one (any case) is 409 uniqueness', async () => {
      await newUser('taken@example.com');
      const id = await newUser('wants@example.com');
      const res = await scim.patch(`/Users/${id}`, [{ op: 'replace', path: 'userName', value: 'TAKEN@example.com' }]);
      expect(res.status).toBe(409);
      expect(res.body.scimType).toBe('uniqueness');
    });
  });

  describe('groups', () => {
    test('Entra: create with an extra Microsoft schema URN, match with excludedAttributes=members, add and remove members', async () => {
      const u1 = await newUser('g.one@example.com');
      const u2 = await newUser('g.two@example.com');
      const u3 = await newUser('g.three@example.com');
      const created = await scim.post('/Groups', {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group', 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group'],
        externalId: 'grp-ext', displayName: 'Sales EMEA', meta: { resourceType: 'Group' },
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Sales EMEA', externalId: 'grp-ext', members: [], meta: { resourceType: 'Group', location: `/scim/v2/Groups/${created.body.id}` } });
      const gid = created.body.id as string;

      const match = await scim.get(`/Groups?excludedAttributes=members&filter=${encodeURIComponent('displayName eq "Sales EMEA"')}`);
      expect(match.body.totalResults).toBe(1);
      expect(match.body.Resources[0]).not.toHaveProperty('members');

      // Multiple member changes in one PATCH (gallery requirement), $ref null as Entra sends it
      let res = await scim.patch(`/Groups/${gid}`, [
        { op: 'Add', path: 'members', value: [{ $ref: null, value: u1 }] },
        { op: 'Add', path: 'members', value: [{ $ref: null, value: u2 }, { value: u3 }] },
      ]);
      expect(res.status).toBe(204);
      let g = await scim.get(`/Groups/${gid}`);
      expect(g.body.members.map((m: { value: string }) => m.value).sort()).toEqual([u1, u2, u3].sort());
      // default job: a value list on remove
      await scim.patch(`/Groups/${gid}`, [{ op: 'Remove', path: 'members', value: [{ value: u1 }] }]);
      // flagged job: a value filter
      await scim.patch(`/Groups/${gid}`, [{ op: 'remove', path: `members[value eq "${u2}"]` }]);
      g = await scim.get(`/Groups/${gid}`);
      expect(g.body.members).toEqual([{ value: u3, $ref: `/scim/v2/Users/${u3}` }]);
      expect((await scim.get(`/Groups/${gid}?excludedAttributes=members`)).body).not.toHaveProperty('members');
      const user = await scim.get(`/Users/${u3}`);
      expect(user.body.groups).toEqual([{ value: gid, display: 'Sales EMEA', $ref: `/scim/v2/Groups/${gid}` }]);
      const byMember = await scim.get(`/Groups?filter=${encodeURIComponent(`members[value eq "${u3}"]`)}`);
      expect(byMember.body.Resources.map((x: { id: string }) => x.id)).toEqual([gid]);
    });

    test('Okta: rename with a path-less value carrying id, remove and add members in one PATCH, then PUT and DELETE', async () => {
      const a = await newUser('okta.a@example.com');
      const b = await newUser('okta.b@example.com');
      const created = await scim.post('/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Okta Group', members: [{ value: a, display: 'A' }] });
      const gid = created.body.id as string;
      const res = await scim.patch(`/Groups/${gid}`, [
        { op: 'replace', value: { id: gid, displayName: 'Okta Group Renamed' } },
        { op: 'remove', path: `members[value eq "${a}"]` },
        { op: 'add', path: 'members', value: [{ value: b, display: 'B' }] },
      ]);
      expect(res.status).toBe(204);
      let g = await scim.get(`/Groups/${gid}`);
      expect(g.body).toMatchObject({ id: gid, displayName: 'Okta Group Renamed', members: [{ value: b, display: 'B' }] });
      await scim.patch(`/Groups/${gid}`, [{ op: 'replace', path: 'members', value: [{ value: a }] }]);
      g = await scim.get(`/Groups/${gid}`);
      expect(g.body.members.map((m: { value: string }) => m.value)).toEqual([a]);
      const put = await scim.put(`/Groups/${gid}`, { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], id: gid, displayName: 'Put Name', members: [{ value: a }, { value: b }] });
      expect(put.status).toBe(200);
      expect(put.body.members).toHaveLength(2);
      expect(put.body.meta.version).toBe('W/"4"');
      await scim.patch(`/Groups/${gid}`, [{ op: 'remove', path: 'members' }]);
      expect((await scim.get(`/Groups/${gid}`)).body.members).toEqual([]);
      expect((await scim.del(`/Groups/${gid}`)).status).toBe(204);
      expect((await scim.get(`/Groups/${gid}`)).status).toBe(404);
    });

    test('displayName is unique (409 uniqueness); a missing displayName is 400', async () => {
      await scim.post('/Groups', { displayName: 'Unique One' });
      const dup = await scim.post('/Groups', { displayName: 'unique one' });
      expect(dup.status).toBe(409);
      expect(dup.body).toMatchObject({ schemas: [SCIM_ERROR], status: '409', scimType: 'uniqueness' });
      const none = await scim.post('/Groups', { members: [] });
      expect(none.status).toBe(400);
      expect(none.body.scimType).toBe('invalidValue');
    });
  });
});
