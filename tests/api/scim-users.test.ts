import { createTestApp, type TestApp } from '../support/app';
import { mintTestToken } from '../support/orders';
import { CORE_USER, ENTERPRISE_USER, SCIM_ERROR, scimClient, userBody, type ScimClient } from '../support/scim';

describe('SCIM users: discovery, CRUD, lists, errors, request log', () => {
  let t: TestApp;
  let scim: ScimClient;
  beforeAll(async () => {
    t = await createTestApp();
    scim = await scimClient(t);
  });
  afterAll(async () => {
    await t.close();
  });

  describe('discovery', () => {
    test('ServiceProviderConfig states what is supported: patch, filter and etag; no bulk or sort', async () => {
      const res = await scim.get('/ServiceProviderConfig');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
      expect(res.body).toMatchObject({
        patch: { supported: true },
        bulk: { supported: false },
        filter: { supported: true, maxResults: 200 },
        changePassword: { supported: false },
        sort: { supported: false },
        etag: { supported: true },
      });
      expect(res.body.authenticationSchemes[0].type).toBe('oauthbearertoken');
    });

    test('ResourceTypes lists User (with the enterprise extension) and Group', async () => {
      const res = await scim.get('/ResourceTypes');
      expect(res.status).toBe(200);
      expect(res.body.totalResults).toBe(2);
      expect(res.body.Resources[0]).toMatchObject({ id: 'User', endpoint: '/Users', schema: CORE_USER, schemaExtensions: [{ schema: ENTERPRISE_USER, required: false }] });
      expect(res.body.Resources[1]).toMatchObject({ id: 'Group', endpoint: '/Groups' });
      expect((await scim.get('/ResourceTypes/Group')).body.id).toBe('Group');
      expect((await scim.get('/ResourceTypes/Device')).status).toBe(404);
    });

    test('Schemas lists core User, enterprise User and Group with camelCase attribute properties', async () => {
      const res = await scim.get('/Schemas');
      expect(res.status).toBe(200);
      expect(res.body.Resources.map((s: { id: string }) => s.id)).toEqual([CORE_USER, ENTERPRISE_USER, 'urn:ietf:params:scim:schemas:core:2.0:Group']);
      const userName = res.body.Resources[0].attributes.find((a: { name: string }) => a.name === 'userName');
      expect(userName).toMatchObject({ type: 'string', required: true, caseExact: false, uniqueness: 'server', mutability: 'readWrite' });
      const one = await scim.get(`/Schemas/${ENTERPRISE_USER}`);
      expect(one.status).toBe(200);
      expect(one.body.attributes.map((a: { name: string }) => a.name)).toContain('employeeNumber');
    });
  });

  describe('CRUD', () => {
    test('create answers 201 with the full resource and meta, never the password', async () => {
      const res = await scim.post('/Users', {
        ...userBody('crud.ann@example.com'),
        schemas: [CORE_USER, ENTERPRISE_USER],
        password: 'Secret-123!',
        externalId: 'ext-ann',
        displayName: 'Ann',
        [ENTERPRISE_USER]: { department: 'Sales', costCenter: 'CC-1', employeeNumber: 'E-1', manager: { value: 'm-1' } },
        meta: { resourceType: 'User' },
        roles: [],
        title: null,
      }, 'application/json');
      expect(res.status).toBe(201);
      expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
      expect(res.headers['location']).toBe(`/scim/v2/Users/${res.body.id}`);
      expect(res.body).toMatchObject({
        schemas: [CORE_USER, ENTERPRISE_USER],
        userName: 'crud.ann@example.com',
        externalId: 'ext-ann',
        active: true,
        name: { givenName: 'Given', familyName: 'Family' },
        [ENTERPRISE_USER]: { department: 'Sales', costCenter: 'CC-1', employeeNumber: 'E-1', manager: { value: 'm-1' } },
        meta: { resourceType: 'User', location: `/scim/v2/Users/${res.body.id}`, version: 'W/"1"' },
      });
      expect(res.body.meta.created).toBe(res.body.meta.lastModified);
      expect(JSON.stringify(res.body)).not.toContain('Secret-123!');
      expect(res.body).not.toHaveProperty('password');
      const audit = await t.db.query<{ diff: unknown }>(`SELECT diff FROM audit_log WHERE entity = 'scim_user' AND entity_id = $1`, [res.body.id]);
      expect(JSON.stringify(audit.rows)).not.toContain('Secret-123!');

      const got = await scim.get(`/Users/${res.body.id}`);
      expect(got.status).toBe(200);
      expect(got.body).toEqual(res.body);
    });

    test('"True" string for active is stored as a boolean', async () => {
      const res = await scim.post('/Users', userBody('crud.true@example.com', { active: 'True' }));
      expect(res.status).toBe(201);
      expect(res.body.active).toBe(true);
    });

    test('PUT replaces, ignores echoed read-only attributes and bumps the version', async () => {
      const c = await scim.post('/Users', userBody('crud.put@example.com', { displayName: 'Old', nickName: 'n' }));
      const put = await scim.put(`/Users/${c.body.id}`, {
        ...c.body,
        id: 'something-else',
        meta: { resourceType: 'User', version: 'W/"99"' },
        groups: [],
        displayName: 'New',
        nickName: undefined,
        name: { formatted: 'New Name', givenName: 'N', familyName: 'M' },
      });
      expect(put.status).toBe(200);
      expect(put.body).toMatchObject({ id: c.body.id, displayName: 'New', name: { formatted: 'New Name' }, meta: { version: 'W/"2"' } });
      expect(put.body).not.toHaveProperty('nickName');
      expect(put.body).not.toHaveProperty('groups');
    });

    test('DELETE answers 204; then 404, and the same userName can be created again', async () => {
      const c = await scim.post('/Users', userBody('crud.del@example.com'));
      expect((await scim.del(`/Users/${c.body.id}`)).status).toBe(204);
      const gone = await scim.get(`/Users/${c.body.id}`);
      expect(gone.status).toBe(404);
      expect(gone.body).toMatchObject({ schemas: [SCIM_ERROR], status: '404' });
      expect((await scim.get('/Users?filter=userName eq "crud.del@example.com"')).body.totalResults).toBe(0);
      expect((await scim.del(`/Users/${c.body.id}`)).status).toBe(404);
      const again = await scim.post('/Users', userBody('CRUD.DEL@example.com'));
      expect(again.status).toBe(201);
      expect(again.body.id).not.toBe(c.body.id);
    });
  });

  describe('ETags', () => {
    test('single resources carry meta.version as ETag; a stale If-Match is 412 and changes nothing', async () => {
      const c = await scim.post('/Users', userBody('etag@example.com'));
      expect(c.headers['etag']).toBe('W/"1"');
      const id = c.body.id as string;
      const ok = await t.http().patch(`/scim/v2/Users/${id}`).set('Authorization', `Bearer ${scim.token}`).set('If-Match', 'W/"1"')
        .send({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', path: 'displayName', value: 'v2' }] });
      expect(ok.status).toBe(200);
      expect(ok.headers['etag']).toBe('W/"2"');
      const stale = await t.http().put(`/scim/v2/Users/${id}`).set('Authorization', `Bearer ${scim.token}`).set('If-Match', 'W/"1"')
        .send(userBody('etag@example.com', { displayName: 'lost update' }));
      expect(stale.status).toBe(412);
      expect(stale.body).toMatchObject({ schemas: [SCIM_ERROR], status: '412' });
      const del = await t.http().delete(`/scim/v2/Users/${id}`).set('Authorization', `Bearer ${scim.token}`).set('If-Match', '"7"');
      expect(del.status).toBe(412);
      const got = await scim.get(`/Users/${id}`);
      expect(got.headers['etag']).toBe('W/"2"');
      expect(got.body.displayName).toBe('v2');
      const any = await t.http().delete(`/scim/v2/Users/${id}`).set('Authorization', `Bearer ${scim.token}`).set('If-Match', '*');
      expect(any.status).toBe(204);
    });
  });

  describe('errors', () => {
    test('a missing or malformed token is 401 with a SCIM error body', async () => {
      for (const auth of [undefined, 'non-token', 'Bearer xpat_unknown']) {
        const req = t.http().get('/scim/v2/Users');
        const res = await (auth ? req.set('Authorization', auth) : req);
        expect(res.status).toBe(401);
        expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
        expect(res.body).toMatchObject({ schemas: [SCIM_ERROR], status: '401' });
        expect(res.body.detail).toEqual(expect.any(String));
      }
    });

    test('a token without the scope is 403; scim:read may read but not write', async () => {
      const reader = await mintTestToken(t.db, 'scim-reader', ['scim:read']);
      const other = await mintTestToken(t.db, 'not-scim', ['orders:write']);
      expect((await t.http().get('/scim/v2/Users').set('Authorization', `Bearer ${reader}`)).status).toBe(200);
      const w = await t.http().post('/scim/v2/Users').set('Authorization', `Bearer ${reader}`).send(userBody('r@example.com'));
      expect(w.status).toBe(403);
      expect(w.body).toMatchObject({ schemas: [SCIM_ERROR], status: '403' });
      expect((await t.http().get('/scim/v2/Users').set('Authorization', `Bearer ${other}`)).status).toBe(403);
    });

    test('duplicate userName (any case) is 409 uniqueness, on POST and on PUT', async () => {
      const a = await scim.post('/Users', userBody('dup.one@example.com'));
      const b = await scim.post('/Users', userBody('dup.two@example.com'));
      const again = await scim.post('/Users', userBody('DUP.ONE@example.com'));
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({ schemas: [SCIM_ERROR], status: '409', scimType: 'uniqueness' });
      const put = await scim.put(`/Users/${b.body.id}`, userBody('Dup.One@Example.com'));
      expect(put.status).toBe(409);
      expect(put.body.scimType).toBe('uniqueness');
      expect((await scim.get(`/Users/${a.body.id}`)).body.userName).toBe('dup.one@example.com');
    });

    test('malformed JSON is 400 invalidSyntax; a missing userName is 400 invalidValue', async () => {
      const junk = await t.http().post('/scim/v2/Users').set('Authorization', `Bearer ${scim.token}`).set('Content-Type', 'application/scim+json').send('{"acve": tre');
      expect(junk.status).toBe(400);
      expect(junk.body).toMatchObject({ schemas: [SCIM_ERROR], status: '400', scimType: 'invalidSyntax' });
      const noName = await scim.post('/Users', { schemas: [CORE_USER], active: true });
      expect(noName.status).toBe(400);
      expect(noName.body).toMatchObject({ status: '400', scimType: 'invalidValue' });
      expect(noName.body.detail).toMatch(/userName/);
      const badActive = await scim.post('/Users', userBody('bad.active@example.com', { active: 'maybe' }));
      expect(badActive.status).toBe(400);
      expect(badActive.body.scimType).toBe('invalidValue');
    });

    test('request validation and body errors on /scim paths are SCIM errors too', async () => {
      const badCount = await scim.get('/Users?count=abc');
      expect(badCount.status).toBe(400);
      expect(badCount.headers['content-type']).toMatch(/^application\/scim\+json/);
      expect(badCount.body).toMatchObject({ schemas: [SCIM_ERROR], status: '400', scimType: 'invalidValue' });
      const unknownParam = await scim.get('/Users?sortBy=userName');
      expect(unknownParam.status).toBe(400);
      expect(unknownParam.body.schemas).toEqual([SCIM_ERROR]);
      const text = await t.http().post('/scim/v2/Users').set('Authorization', `Bearer ${scim.token}`).set('Content-Type', 'text/plain').send('userName=x');
      expect(text.status).toBe(415);
      expect(text.body).toMatchObject({ schemas: [SCIM_ERROR], status: '415' });
      const method = await t.http().post('/scim/v2/ServiceProviderConfig').set('Authorization', `Bearer ${scim.token}`).send({});
      expect(method.body.schemas).toEqual([SCIM_ERROR]);
    });

    test('an id that is not one of ours is 404, not 400', async () => {
      const res = await scim.get('/Users/00919288221112222');
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ schemas: [SCIM_ERROR], status: '404', detail: expect.stringMatching(/not found/) });
    });
  });

  describe('lists', () => {
    let ids: string[];
    beforeAll(async () => {
      ids = [];
      for (let i = 0; i < 7; i++) {
        ids.push((await scim.post('/Users', userBody(`page.${i}@list.example.com`, { displayName: `Page ${i}` }))).body.id);
      }
    });

    test('1-based startIndex and count page in a stable order with integer counters', async () => {
      const seen: string[] = [];
      for (let start = 1; start <= 7; start += 3) {
        const res = await scim.get(`/Users?filter=${encodeURIComponent('userName ew "@list.example.com"')}&startIndex=${start}&count=3`);
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 7, startIndex: start });
        expect(res.body.itemsPerPage).toBe(res.body.Resources.length);
        seen.push(...res.body.Resources.map((u: { id: string }) => u.id));
      }
      expect(seen).toEqual(ids);
    });

    test('startIndex below 1 counts as 1, negative count as 0', async () => {
      const f = encodeURIComponent('userName ew "@list.example.com"');
      const low = await scim.get(`/Users?filter=${f}&startIndex=0&count=2`);
      expect(low.body.startIndex).toBe(1);
      expect(low.body.Resources.map((u: { id: string }) => u.id)).toEqual(ids.slice(0, 2));
      const none = await scim.get(`/Users?filter=${f}&count=-1`);
      expect(none.body).toMatchObject({ totalResults: 7, itemsPerPage: 0, Resources: [] });
    });

    test('attributes keeps id, schemas and meta plus those named; excludedAttributes drops', async () => {
      const f = encodeURIComponent('userName eq "page.0@list.example.com"');
      const only = await scim.get(`/Users?filter=${f}&attributes=userName,emails`);
      expect(Object.keys(only.body.Resources[0]).sort()).toEqual(['emails', 'id', 'meta', 'schemas', 'userName']);
      const workOnly = await scim.get(`/Users?filter=${f}&attributes=${encodeURIComponent('emails[type eq "work"].value')}`);
      expect(workOnly.body.Resources[0].emails).toEqual([{ value: 'page.0@list.example.com' }]);
      const without = await scim.get(`/Users/${ids[0]}?excludedAttributes=emails,name`);
      expect(without.body).not.toHaveProperty('emails');
      expect(without.body).not.toHaveProperty('name');
      expect(without.body).toMatchObject({ id: ids[0], userName: 'page.0@list.example.com' });
    });

    test('Entra Test Connection: a random userName is 200 with an empty ListResponse', async () => {
      const res = await scim.get(`/Users?filter=${encodeURIComponent('userName eq "5b0f8ce5-1b7b-4ef0-9c43-0a7d1e0b8f6f"')}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [] });
    });

    test('a trailing slash on the collection is tolerated', async () => {
      const res = await scim.get(`/Users/?filter=${encodeURIComponent('displayName eq "Page 3"')}`);
      expect(res.status).toBe(200);
      expect(res.body.Resources.map((u: { id: string }) => u.id)).toEqual([ids[3]]);
    });
  });

  describe('request log', () => {
    test('GET /admin/scim/logs lists method, path, status, scimType and token name, never bodies', async () => {
      await scim.post('/Users', userBody('log.me@example.com', { password: 'Hunter2-secret' }));
      await scim.post('/Users', userBody('log.me@example.com'));
      await new Promise((r) => setTimeout(r, 50));
      const res = await t.http().get('/admin/scim/logs?status=409').set(t.admin);
      expect(res.status).toBe(200);
      expect(res.body.total).toBeGreaterThanOrEqual(1);
      expect(res.body.items[0]).toMatchObject({ method: 'POST', path: '/scim/v2/Users', status: 409, scim_type: 'uniqueness', token_name: 'idp' });
      const all = await t.http().get('/admin/scim/logs?limit=500').set(t.admin);
      expect(JSON.stringify(all.body)).not.toContain('Hunter2-secret');
      expect(JSON.stringify(all.body)).not.toContain(scim.token);
      const reader = await mintTestToken(t.db, 'scim-only', ['scim:read', 'scim:write']);
      expect((await t.http().get('/admin/scim/logs').set('Authorization', `Bearer ${reader}`)).status).toBe(403);
    });
  });
});
