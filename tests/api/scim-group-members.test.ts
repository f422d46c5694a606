import { randomUUID } from 'node:crypto';
import { createTestApp, type TestApp } from '../support/app';
import { PATCH_OP, SCIM_ERROR, scimClient, userBody, type ScimClient } from '../support/scim';

const CORE_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';

// Speed is measured by `npm run bench:scim-group`; these tests pin the behaviour: the limits, the checks on
// member values, and that a membership change writes exactly what it says and nothing else.
describe('SCIM group membership: members checked, requests bounded', () => {
  let t: TestApp;
  let scim: ScimClient;
  /** 10,001 users made directly in the table (through the API they would take minutes). */
  let users: string[];

  beforeAll(async () => {
    t = await createTestApp();
    scim = await scimClient(t);
    await t.db.query(
      `INSERT INTO scim_users (id, user_name) SELECT gen_random_uuid(), 'member' || g || '@example.com' FROM generate_series(1, 10001) g`,
    );
    users = (await t.db.query<{ id: string }>(`SELECT id::text AS id FROM scim_users ORDER BY user_name`)).rows.map((r) => r.id);
  });
  afterAll(async () => {
    await t.close();
  });

  const newGroup = async (displayName: string, members: unknown[] = []): Promise<string> => {
    const res = await scim.post('/Groups', { schemas: [CORE_GROUP], displayName, members });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  /** The stored rows, by value. */
  const stored = async (gid: string) =>
    (await t.db.query<{ value: string; display: string | null; ctid: string }>(
      `SELECT value, display, ctid::text AS ctid FROM scim_group_members WHERE group_id = $1 ORDER BY value`,
      [gid],
    )).rows;
  const values = async (gid: string) => (await stored(gid)).map((r) => r.value);
  const sorted = (list: string[]) => [...list].sort();
  const expectScimError = (res: { status: number; body: Record<string, unknown> }, status: number, scimType: string, detail: RegExp) => {
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({ schemas: [SCIM_ERROR], status: String(status), scimType });
    expect(res.body['detail']).toMatch(detail);
  };

  test('ServiceProviderConfig advertises the PATCH limits', async () => {
    const res = await scim.get('/ServiceProviderConfig');
    expect(res.body.patch).toEqual({ supported: true, maxOperations: 1000, maxMemberValues: 10000 });
  });

  test('one PATCH of 10,000 member values stores each member exactly once and reads them all back', async () => {
    const gid = await newGroup('Ten thousand');
    // 9,900 distinct users, 100 of them sent twice (the second time with a display): 10,000 values, the limit
    const value = [...users.slice(0, 9900).map((id) => ({ value: id })), ...users.slice(0, 100).map((id) => ({ value: id, display: 'Again' }))];
    const res = await scim.patch(`/Groups/${gid}`, [{ op: 'add', path: 'members', value }]);
    expect(res.status).toBe(204);
    expect(res.headers['etag']).toBe('W/"2"');
    const rows = await stored(gid);
    expect(rows).toHaveLength(9900);
    expect(rows.map((r) => r.value)).toEqual(sorted(users.slice(0, 9900)));
    expect(rows.filter((r) => r.display === 'Again')).toHaveLength(100);
    const g = await scim.get(`/Groups/${gid}`);
    expect(g.status).toBe(200);
    expect(g.body.members).toHaveLength(9900);
    expect(new Set(g.body.members.map((m: { value: string }) => m.value)).size).toBe(9900);
  });

  test('more than 10,000 member values in one request: 413 tooMany naming the limit, and nothing stored', async () => {
    const gid = await newGroup('Too many', [{ value: users[0] }]);
    const many = Array.from({ length: 10_001 }, () => ({ value: randomUUID() }));
    const patch = await scim.patch(`/Groups/${gid}`, [{ op: 'add', path: 'members', value: many }]);
    expectScimError(patch, 413, 'tooMany', /10001 member values; at most 10000/);
    // counted across operations, removes by value list included
    const split = await scim.patch(`/Groups/${gid}`, [
      { op: 'add', path: 'members', value: many.slice(0, 6000) },
      { op: 'remove', path: 'members', value: many.slice(6000) },
    ]);
    expectScimError(split, 413, 'tooMany', /at most 10000/);
    expectScimError(await scim.put(`/Groups/${gid}`, { schemas: [CORE_GROUP], displayName: 'Too many', members: many }), 413, 'tooMany', /at most 10000/);
    expectScimError(await scim.post('/Groups', { schemas: [CORE_GROUP], displayName: 'Too many 2', members: many }), 413, 'tooMany', /at most 10000/);
    expect(await values(gid)).toEqual([users[0]]);
    expect((await scim.get(`/Groups?filter=${encodeURIComponent('displayName eq "Too many 2"')}`)).body.totalResults).toBe(0);
    // and the refusal is in the SCIM request log with its scimType
    const log = await t.http().get('/admin/scim/logs?status=413').set(t.admin);
    expect(log.body.items[0]).toMatchObject({ method: 'POST', path: '/scim/v2/Groups', status: 413, scim_type: 'tooMany' });
  });

  test('more than 1,000 operations in one PATCH: 413 tooMany, for groups and users alike', async () => {
    const gid = await newGroup('Many operations');
    const ops = Array.from({ length: 1001 }, (_, i) => ({ op: 'replace', path: 'displayName', value: `Name ${i}` }));
    expectScimError(await scim.patch(`/Groups/${gid}`, ops), 413, 'tooMany', /1001 operations; at most 1000/);
    const user = await scim.post('/Users', userBody('many.ops@example.com'));
    expectScimError(await scim.patch(`/Users/${user.body.id}`, ops.map((o) => ({ ...o, path: 'nickName' }))), 413, 'tooMany', /at most 1000/);
    // 1,000 operations are fine: each removes one member by filter
    await scim.patch(`/Groups/${gid}`, [{ op: 'add', path: 'members', value: users.slice(0, 1000).map((value) => ({ value })) }]);
    const removeAll = users.slice(0, 1000).map((id) => ({ op: 'remove', path: `members[value eq "${id}"]` }));
    expect((await scim.patch(`/Groups/${gid}`, removeAll)).status).toBe(204);
    expect(await values(gid)).toEqual([]);
  });

  test('more than 10 operations selecting members by another filter: 413 tooMany', async () => {
    const gid = await newGroup('Scans', [{ value: users[0], display: 'A' }]);
    const ops = Array.from({ length: 11 }, (_, i) => ({ op: 'replace', path: 'members[display eq "A"].display', value: `A${i}` }));
    expectScimError(await scim.patch(`/Groups/${gid}`, ops), 413, 'tooMany', /at most 10 /);
    expect((await scim.patch(`/Groups/${gid}`, ops.slice(0, 1))).status).toBe(204);
    expect((await stored(gid))[0]!.display).toBe('A0');
  });

  test('an id that is no user: 400 invalidValue naming it, and nothing of the request is stored', async () => {
    const gid = await newGroup('Unknown ids', [{ value: users[0] }]);
    const ghost = randomUUID();
    const res = await scim.patch(`/Groups/${gid}`, [
      { op: 'replace', path: 'displayName', value: 'Renamed' },
      { op: 'add', path: 'members', value: [{ value: users[1] }, { value: ghost }] },
    ]);
    expectScimError(res, 400, 'invalidValue', new RegExp(`"${ghost}" is not the id of an existing User`));
    expect(await values(gid)).toEqual([users[0]]);
    expect((await scim.get(`/Groups/${gid}`)).body).toMatchObject({ displayName: 'Unknown ids', meta: { version: 'W/"1"' } });
    const ghost2 = randomUUID();
    expectScimError(
      await scim.put(`/Groups/${gid}`, { schemas: [CORE_GROUP], displayName: 'Unknown ids', members: [{ value: ghost }, { value: ghost2 }] }),
      400, 'invalidValue', /is not the id of an existing User \(and 1 more\)/,
    );
    expectScimError(await scim.post('/Groups', { schemas: [CORE_GROUP], displayName: 'Ghosts', members: [{ value: ghost }] }), 400, 'invalidValue', new RegExp(ghost));
    expect(await values(gid)).toEqual([users[0]]);
  });

  test.each([
    ['a bare integer', [123], /members value\[0\] must be a member object or a User id string, got 123/],
    ['an integer value', [{ value: 123 }], /members value\[0\]\.value must be a User id string, got 123/],
    ['a boolean value', { value: true }, /value must be a User id string, got true/],
    ['an object value', [{ value: { id: 'x' } }], /value must be a User id string, got \{"id":"x"\}/],
    ['no value', [{ display: 'Nobody' }], /value must be a User id string, got nothing/],
    ['a string that is no id', 'string id 1', /"string id 1" is not the id of an existing User/],
  ])('a member given as %s: 400 invalidValue', async (what, value, detail) => {
    const gid = await newGroup(`Bad member: ${what}`);
    expectScimError(await scim.patch(`/Groups/${gid}`, [{ op: 'add', path: 'members', value }]), 400, 'invalidValue', detail);
    expect(await values(gid)).toEqual([]);
  });

  test('a group as a member: 400 invalidValue saying groups cannot be members', async () => {
    const inner = await newGroup('Inner');
    const outer = await newGroup('Outer');
    expectScimError(await scim.patch(`/Groups/${outer}`, [{ op: 'add', path: 'members', value: [{ value: inner, type: 'Group' }] }]), 400, 'invalidValue', /is a Group/);
  });

  test('adding one member writes that row only: the others are neither deleted nor rewritten', async () => {
    const gid = await newGroup('Untouched', users.slice(0, 3).map((value, i) => ({ value, display: `U${i}` })));
    const before = await stored(gid);
    expect((await scim.patch(`/Groups/${gid}`, [{ op: 'add', path: 'members', value: [{ value: users[3] }] }])).status).toBe(204);
    const after = await stored(gid);
    expect(after).toHaveLength(4);
    // a row deleted and inserted again, or updated, would sit at another tuple id
    expect(after.filter((r) => r.value !== users[3])).toEqual(before);
    // re-sending a member with its display unchanged touches nothing either; a new display updates that row only
    await scim.patch(`/Groups/${gid}`, [{ op: 'add', path: 'members', value: [{ value: users[0], display: 'U0' }, { value: users[1], display: 'New' }] }]);
    const again = await stored(gid);
    expect(again.find((r) => r.value === users[0])).toEqual(before.find((r) => r.value === users[0]));
    expect(again.find((r) => r.value === users[1])!.display).toBe('New');
    expect(again.find((r) => r.value === users[2])).toEqual(before.find((r) => r.value === users[2]));
  });

  test('PUT with the same list rewrites nothing; with another list it removes and adds the difference', async () => {
    const list = users.slice(10, 13).map((value) => ({ value, display: 'Same' }));
    const gid = await newGroup('Put diff', list);
    const before = await stored(gid);
    const put = await scim.put(`/Groups/${gid}`, { schemas: [CORE_GROUP], id: gid, displayName: 'Put diff', members: list });
    expect(put.status).toBe(200);
    expect(put.body.members).toEqual(sorted(list.map((m) => m.value)).map((value) => ({ value, display: 'Same', $ref: `/scim/v2/Users/${value}` })));
    expect(await stored(gid)).toEqual(before);
    const next = await scim.put(`/Groups/${gid}`, { schemas: [CORE_GROUP], displayName: 'Put diff', members: [{ value: users[11] }, { value: users[14] }] });
    expect(next.body.members.map((m: { value: string }) => m.value)).toEqual(sorted([users[11]!, users[14]!]));
    const rows = await stored(gid);
    expect(rows.map((r) => r.value)).toEqual(sorted([users[11]!, users[14]!]));
    // PUT sets display as sent: the member sent without one has none now
    expect(rows.find((r) => r.value === users[11])!.display).toBeNull();
  });

  test('removing by filter, by Entra value list, replace and remove-all still work, in order within one PATCH', async () => {
    const [a, b, c, d] = users.slice(20, 24) as [string, string, string, string];
    const gid = await newGroup('Removals', [{ value: a }, { value: b }, { value: c }]);
    await scim.patch(`/Groups/${gid}`, [{ op: 'remove', path: `members[value eq "${a}"]` }]);
    expect(await values(gid)).toEqual(sorted([b, c]));
    await scim.patch(`/Groups/${gid}`, [{ op: 'Remove', path: 'members', value: [{ value: b }] }]);
    expect(await values(gid)).toEqual([c]);
    // add then remove the same member: gone; remove then add: back, with the new display only
    await scim.patch(`/Groups/${gid}`, [
      { op: 'add', path: 'members', value: [{ value: d }] },
      { op: 'remove', path: `members[value eq "${d}"]` },
      { op: 'remove', path: 'members', value: [{ value: c }] },
      { op: 'add', path: 'members', value: [{ value: c, display: 'C again' }] },
    ]);
    expect(await stored(gid)).toEqual([expect.objectContaining({ value: c, display: 'C again' })]);
    await scim.patch(`/Groups/${gid}`, [{ op: 'replace', path: 'members', value: [{ value: a }, { value: b }] }, { op: 'add', path: 'members', value: [{ value: d }] }]);
    expect(await values(gid)).toEqual(sorted([a, b, d]));
    await scim.patch(`/Groups/${gid}`, [{ op: 'remove', path: 'members' }, { op: 'add', path: 'members', value: a }]);
    expect(await values(gid)).toEqual([a]);
    // path-less forms: Okta's rename beside a members list, and the Group schema's URN as the key
    await scim.patch(`/Groups/${gid}`, [{ op: 'replace', value: { id: gid, displayName: 'Removals 2', members: [{ value: b }] } }]);
    await scim.patch(`/Groups/${gid}`, [{ op: 'add', value: { [CORE_GROUP]: { members: [{ value: c }] } } }]);
    expect((await scim.get(`/Groups/${gid}`)).body.displayName).toBe('Removals 2');
    expect(await values(gid)).toEqual(sorted([b, c]));
  });

  test('sub-attribute and filter paths on members', async () => {
    const [a, b, c] = users.slice(30, 33) as [string, string, string];
    const gid = await newGroup('Paths', [{ value: a, display: 'A' }, { value: b, display: 'B' }, { value: c, display: 'C', type: 'User' }]);
    await scim.patch(`/Groups/${gid}`, [{ op: 'replace', path: `members[value eq "${a}"].display`, value: 'A2' }]);
    await scim.patch(`/Groups/${gid}`, [{ op: 'remove', path: 'members[display eq "B"]' }]);
    await scim.patch(`/Groups/${gid}`, [{ op: 'remove', path: 'members[type eq "User"].display' }]);
    const g = await scim.get(`/Groups/${gid}`);
    expect(g.body.members).toEqual([
      { value: a, display: 'A2', $ref: `/scim/v2/Users/${a}` },
      { value: c, type: 'User', $ref: `/scim/v2/Users/${c}` },
    ].sort((x, y) => (x.value < y.value ? -1 : 1)));
    expectScimError(await scim.patch(`/Groups/${gid}`, [{ op: 'replace', path: 'members[display eq "nobody"].display', value: 'x' }]), 400, 'noTarget', /no members element matches/);
  });

  test('a member id sent in upper case is stored as the user id, so the user lists the group', async () => {
    const gid = await newGroup('Upper case');
    const id = users[10_000]!; // in no other group
    await scim.patch(`/Groups/${gid}`, [{ op: 'add', path: 'members', value: [{ value: id.toUpperCase() }] }]);
    expect(await values(gid)).toEqual([id]);
    expect((await scim.get(`/Users/${id}`)).body.groups).toEqual([{ value: gid, display: 'Upper case', $ref: `/scim/v2/Groups/${gid}` }]);
    await scim.patch(`/Groups/${gid}`, [{ op: 'remove', path: `members[value eq "${id.toUpperCase()}"]` }]);
    expect(await values(gid)).toEqual([]);
  });

  test('the audit row names the members added and removed', async () => {
    const gid = await newGroup('Audited', [{ value: users[50] }]);
    await scim.patch(`/Groups/${gid}`, [{ op: 'remove', path: `members[value eq "${users[50]}"]` }, { op: 'add', path: 'members', value: [{ value: users[51] }] }]);
    const { rows } = await t.db.query<{ diff: { after: Record<string, unknown> } }>(
      `SELECT diff FROM audit_log WHERE entity = 'scim_group' AND entity_id = $1 AND action = 'update' ORDER BY id DESC LIMIT 1`,
      [gid],
    );
    expect(rows[0]!.diff.after).toMatchObject({ membersAdded: [users[51]], membersRemoved: [users[50]], version: 2 });
  });

  test('deleting a user removes its memberships', async () => {
    const u = await scim.post('/Users', userBody('leaving.member@example.com'));
    const gid = await newGroup('Leavers', [{ value: u.body.id }, { value: users[60] }]);
    expect((await scim.del(`/Users/${u.body.id}`)).status).toBe(204);
    expect(await values(gid)).toEqual([users[60]]);
  });

  test('text PostgreSQL cannot store, in a Group body or a filter: 400 invalidValue, never a 500', async () => {
    const surrogate = await scim.post('/Groups', { schemas: [CORE_GROUP], displayName: 'Lone \ud800' });
    expect(surrogate.status).toBe(400);
    expect(surrogate.body).toMatchObject({ schemas: [SCIM_ERROR], scimType: 'invalidValue' });
    const gid = await newGroup('Text');
    const nul = await scim.patch(`/Groups/${gid}`, [{ op: 'add', path: 'members', value: [{ value: users[70], display: 'a\u0000b' }] }]);
    expect(nul.status).toBe(400);
    expect(nul.body).toMatchObject({ schemas: [SCIM_ERROR], scimType: 'invalidValue' });
    const filter = await scim.get(`/Groups?filter=${encodeURIComponent('displayName eq "a\u0000"')}`);
    expect(filter.status).toBe(400);
    expect(filter.body).toMatchObject({ schemas: [SCIM_ERROR] });
    expect(await values(gid)).toEqual([]);
  });

  test('PATCH body shape errors stay as they were', async () => {
    const gid = await newGroup('Shapes');
    const res = await t.http().patch(`/scim/v2/Groups/${gid}`).set('Authorization', `Bearer ${scim.token}`).set('Content-Type', 'application/scim+json')
      .send(JSON.stringify({ schemas: [PATCH_OP], Operations: [] }));
    expectScimError(res, 400, 'invalidSyntax', /non-empty array/);
  });
});
