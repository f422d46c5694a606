/**
 * Entitlements on asset types (who may order them) through the admin API, and their enforcement where orders are
 * placed: `POST /orders` and the ServiceNow webhook's provision, never take-backs or approvals. The directory here
 * is a fake of what the AD requester directory answers (tests/integration/order-directory.test.ts has the real one
 * against Samba AD).
 */
import { transitionOrder } from '../../server/domain/orders/order-status';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { fakeDirectory, type FakeDirectory } from '../support/fake-directory';
import { countRows, hubSignature, mintTestToken, snowPayload } from '../support/orders';

const SECRET = 'entitlements-webhook-secret';

describe(`entitlements on asset types (${testEngine})`, () => {
  let t: TestApp;
  let writer: string;
  const asWriter = () => ({ Authorization: `Bearer ${writer}` });
  const order = (type: string, user: string, over: Record<string, unknown> = {}) =>
    t.http().post('/orders').set(asWriter()).send({ asset_type_name: type, user_email: user, user_name: 'Some One', ...over });
  const snow = (type: string, user: string, over: Record<string, unknown> = {}) => {
    const body = JSON.stringify(snowPayload(type, { user_email: user, ...over }));
    return t.http().post('/webhook/servicenow').set('Content-Type', 'application/json').set('X-Hub-Signature-256', hubSignature(body, SECRET)).send(body);
  };
  const createType = async (body: Record<string, unknown>) => {
    const res = await t.http().post('/admin/asset-types').set(t.admin).send({ assignment_model: 'personal', ...body });
    expect({ status: res.status, body: res.status === 201 ? null : res.body }).toEqual({ status: 201, body: null });
    return res.body as { id: number; entitlements: unknown };
  };

  beforeAll(async () => {
    t = await createTestApp({ webhookSecretToken: SECRET });
    writer = await mintTestToken(t.db, 'portal', ['orders:write']);
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('on the asset type', () => {
    test('created with entitlements and a default duration: normalised, read back, audited', async () => {
      const created = await createType({
        name: 'Ent: finance seat',
        entitlements: { users: ['Jane.Doe@Example.com', 'jane.doe@example.com'], departments: ['Finance', 'finance '], groups: ['VDI-Users'] },
        default_duration_days: 90,
      });
      const want = { groups: ['VDI-Users'], departments: ['Finance'], users: ['jane.doe@example.com'] };
      expect(created).toMatchObject({ entitlements: want, default_duration_days: 90 });
      const got = await t.http().get(`/admin/asset-types/${created.id}`).set(t.admin);
      expect(got.body).toMatchObject({ entitlements: want, default_duration_days: 90 });
      const { rows } = await t.db.query<{ diff: { after: Record<string, unknown> } }>(
        `SELECT diff FROM audit_log WHERE entity = 'asset_type' AND entity_id = $1 AND action = 'create'`,
        [String(created.id)],
      );
      expect(rows[0]!.diff.after).toMatchObject({ entitlements: want, default_duration_days: 90 });
    });

    test('absent entitlements mean everyone: three empty lists, and no default duration', async () => {
      const created = await createType({ name: 'Ent: open seat' });
      expect(created).toMatchObject({ entitlements: { groups: [], departments: [], users: [] }, default_duration_days: null });
    });

    test('an update replaces the lists it sends and keeps the others; the audit shows before and after', async () => {
      const created = await createType({ name: 'Ent: merged', entitlements: { users: ['a@example.com'], departments: ['IT'] } });
      const res = await t.http().patch(`/admin/asset-types/${created.id}`).set(t.admin).send({ entitlements: { departments: ['Sales', 'HR'] } });
      expect(res.status).toBe(200);
      expect(res.body.entitlements).toEqual({ groups: [], departments: ['Sales', 'HR'], users: ['a@example.com'] });
      const { rows } = await t.db.query<{ diff: { before: { entitlements: unknown }; after: { entitlements: unknown } } }>(
        `SELECT diff FROM audit_log WHERE entity = 'asset_type' AND entity_id = $1 AND action = 'update'`,
        [String(created.id)],
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]!.diff.before.entitlements).toEqual({ groups: [], departments: ['IT'], users: ['a@example.com'] });
      expect(rows[0]!.diff.after.entitlements).toEqual({ groups: [], departments: ['Sales', 'HR'], users: ['a@example.com'] });
    });

    test.each([
      ['a user that is not an email', { entitlements: { users: ['ok@example.com', 'not-an-email'] } }, '/body/entitlements/users/1'],
      ['a blank group', { entitlements: { groups: ['VDI', '   '] } }, '/body/entitlements/groups/1'],
      ['a blank department', { entitlements: { departments: [' '] } }, '/body/entitlements/departments/0'],
      ['an unknown list', { entitlements: { roles: ['x'] } }, '/body/entitlements'],
      ['a default duration of 0 days', { default_duration_days: 0 }, '/body/default_duration_days'],
    ])('422 for %s, naming the field, and nothing written', async (_label, body, path) => {
      const before = await countRows(t.db, 'asset_types');
      const res = await t.http().post('/admin/asset-types').set(t.admin).send({ name: 'Ent: invalid', assignment_model: 'personal', ...body });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect((res.body.errors as { path: string }[]).map((e) => e.path).some((p) => p.startsWith(path))).toBe(true);
      expect(await countRows(t.db, 'asset_types')).toBe(before);
    });
  });

  describe('without a directory', () => {
    beforeAll(async () => {
      await createType({ name: 'Ent: by user', entitlements: { users: ['jane.doe@example.com'] } });
      await createType({ name: 'Ent: by department', entitlements: { departments: ['Finance'] } });
      await createType({ name: 'Ent: by group', entitlements: { groups: ['VDI-Users'] } });
    });

    test('a user listed may order (case-insensitive), on the API and on ServiceNow', async () => {
      expect((await order('Ent: by user', 'Jane.Doe@EXAMPLE.com')).status).toBe(201);
      expect((await snow('Ent: by user', 'jane.doe@example.com')).status).toBe(201);
    });

    test('anyone else is refused 403 NOT_ENTITLED with the failed rule, on both edges, and nothing is placed', async () => {
      const before = await countRows(t.db, 'orders');
      const api = await order('Ent: by user', 'john.roe@example.com');
      expect(api.status).toBe(403);
      expect(api.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(api.body).toMatchObject({ code: 'NOT_ENTITLED', failed_rules: ['users'] });
      expect(api.body.detail).toBe("john.roe@example.com may not order asset type 'Ent: by user': not one of its users");
      const hook = await snow('Ent: by user', 'john.roe@example.com');
      expect(hook.status).toBe(403);
      expect(hook.body).toMatchObject({ code: 'NOT_ENTITLED', failed_rules: ['users'] });
      expect(await countRows(t.db, 'orders')).toBe(before);
    });

    test('department and group rules need the directory: they admit nobody, whatever department the caller claims', async () => {
      const dept = await order('Ent: by department', 'jane.doe@example.com', { requester: { department: 'Finance' } });
      expect(dept.status).toBe(403);
      expect(dept.body.failed_rules).toEqual(['departments']);
      expect(dept.body.detail).toContain('active_directory is not configured');
      const group = await snow('Ent: by group', 'jane.doe@example.com');
      expect(group.status).toBe(403);
      expect(group.body.failed_rules).toEqual(['groups']);
      expect(group.body.detail).toContain("its groups ('VDI-Users') need the directory, and active_directory is not configured");
    });

    test('a change of the entitlements is in force for the next order', async () => {
      const type = await createType({ name: 'Ent: changing', entitlements: { users: ['first@example.com'] } });
      expect((await order('Ent: changing', 'first@example.com')).status).toBe(201);
      expect((await order('Ent: changing', 'second@example.com')).status).toBe(403);
      expect((await t.http().patch(`/admin/asset-types/${type.id}`).set(t.admin).send({ entitlements: { users: ['second@example.com'] } })).status).toBe(200);
      expect((await order('Ent: changing', 'second@example.com')).status).toBe(201);
      expect((await order('Ent: changing', 'first@example.com')).status).toBe(403);
      expect((await t.http().patch(`/admin/asset-types/${type.id}`).set(t.admin).send({ entitlements: { users: [] } })).status).toBe(200);
      expect((await order('Ent: changing', 'anyone@example.com')).status).toBe(201);
    });

    test('a take-back is not checked: ServiceNow deletes an order of someone no longer entitled', async () => {
      const type = await createType({ name: 'Ent: take back', entitlements: { users: ['leaving@example.com'] } });
      const held = await snow('Ent: take back', 'leaving@example.com');
      expect(held.status).toBe(201);
      await t.db.transaction((tx) => transitionOrder(tx, held.body.id, 'provisioned', { triggeredBy: 'system:test' }));
      expect((await t.http().patch(`/admin/asset-types/${type.id}`).set(t.admin).send({ entitlements: { users: ['other@example.com'] } })).status).toBe(200);
      expect((await snow('Ent: take back', 'leaving@example.com')).status).toBe(403);
      const del = await snow('Ent: take back', 'leaving@example.com', { action: 'delete' });
      expect(del.status).toBe(201);
      expect(del.body).toMatchObject({ action: 'delete', target_order_id: held.body.id });
    });

    test('an order placed while entitled is approved after the entitlement was withdrawn', async () => {
      const type = await createType({ name: 'Ent: approval', requires_approval: true, entitlements: { users: ['asker@example.com'] } });
      const placed = await order('Ent: approval', 'asker@example.com');
      expect(placed.body.status).toBe('pending_approval');
      expect((await t.http().patch(`/admin/asset-types/${type.id}`).set(t.admin).send({ entitlements: { users: ['other@example.com'] } })).status).toBe(200);
      const approved = await t.http().post(`/orders/${placed.body.id}/approve`).set(t.admin).send({});
      expect(approved.status).toBe(200);
      expect(approved.body.order_status).toBe('processing');
    });
  });

  describe('with a directory', () => {
    let d: TestApp;
    let dir: FakeDirectory;
    let dWriter: string;
    const dOrder = (type: string, user: string, over: Record<string, unknown> = {}) =>
      d.http().post('/orders').set({ Authorization: `Bearer ${dWriter}` }).send({ asset_type_name: type, user_email: user, user_name: 'Some One', ...over });
    const dSnow = (type: string, user: string) => {
      const body = JSON.stringify(snowPayload(type, { user_email: user }));
      return d.http().post('/webhook/servicenow').set('Content-Type', 'application/json').set('X-Hub-Signature-256', hubSignature(body, SECRET)).send(body);
    };

    beforeAll(async () => {
      dir = fakeDirectory({
        'fin@example.com': { department: 'Finance', cost_center: 'CC-1', manager: 'boss@example.com' },
        'eng@example.com': { department: 'Engineering', groups: ['VDI-Users', 'Everyone-Eng'] },
        'sales@example.com': { department: 'Sales' },
        'nodept@example.com': { department: null },
        'gone@example.com': { department: 'Finance', enabled: false },
      });
      d = await createTestApp({ webhookSecretToken: SECRET }, { requesterDirectory: dir });
      dWriter = await mintTestToken(d.db, 'portal', ['orders:write']);
      for (const [name, entitlements] of [
        ['Open', undefined],
        ['By department', { departments: ['FINANCE'] }],
        ['By group', { groups: ['vdi-users'] }],
        ['By anything', { users: ['sales@example.com'], departments: ['Finance'], groups: ['VDI-Users'] }],
      ] as const) {
        const res = await d.http().post('/admin/asset-types').set(d.admin).send({ name, assignment_model: 'personal', ...(entitlements ? { entitlements } : {}) });
        expect(res.status).toBe(201);
      }
    });
    afterAll(async () => {
      await d?.close();
    });
    beforeEach(() => {
      dir.mode = 'configured';
    });

    test("departments compare the directory's department, case-insensitively; the directory's snapshot is copied", async () => {
      const ok = await dOrder('By department', 'fin@example.com');
      expect(ok.status).toBe(201);
      expect(ok.body.requester).toMatchObject({ department: 'Finance', cost_center: 'CC-1' });
      // What the caller claims is the snapshot's (explicit values win), never the entitlement's.
      const claimed = await dOrder('By department', 'sales@example.com', { requester: { department: 'Finance' } });
      expect(claimed.status).toBe(403);
      expect(claimed.body.detail).toContain("department 'Sales' is not one of 'FINANCE'");
      const none = await dOrder('By department', 'nodept@example.com');
      expect(none.status).toBe(403);
      expect(none.body.detail).toContain('has no department in the directory');
    });

    test('groups admit members, on both edges; the group search runs only when users and departments did not admit', async () => {
      expect((await dOrder('By group', 'eng@example.com')).status).toBe(201);
      expect((await dSnow('By group', 'eng@example.com')).status).toBe(201);
      const refused = await dSnow('By group', 'sales@example.com');
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ code: 'NOT_ENTITLED', failed_rules: ['groups'] });
      expect(refused.body.detail).toContain("not a member, directly or nested, of any of 'vdi-users'");

      const searches = dir.groupSearches;
      expect((await dOrder('By anything', 'sales@example.com')).status).toBe(201);
      expect((await dOrder('By anything', 'fin@example.com')).status).toBe(201);
      expect(dir.groupSearches).toBe(searches);
      expect((await dOrder('By anything', 'eng@example.com')).status).toBe(201);
      expect(dir.groupSearches).toBe(searches + 1);
      const nobody = await dOrder('By anything', 'nodept@example.com');
      expect(nobody.body).toMatchObject({ code: 'NOT_ENTITLED', failed_rules: ['users', 'departments', 'groups'] });
    });

    test('the requester must exist and be enabled: 422 naming /body/user_email, on both edges', async () => {
      const before = await countRows(d.db, 'orders');
      const unknown = await dOrder('Open', 'ghost@example.com');
      expect(unknown.status).toBe(422);
      expect(unknown.body).toMatchObject({ code: 'REQUESTER_NOT_FOUND', errors: [{ path: '/body/user_email', message: 'has no account in the directory' }] });
      expect(unknown.body.detail).toContain('active_directory');
      const disabled = await dSnow('Open', 'gone@example.com');
      expect(disabled.status).toBe(422);
      expect(disabled.body).toMatchObject({ code: 'REQUESTER_DISABLED', errors: [{ path: '/body/user_email' }] });
      expect(await countRows(d.db, 'orders')).toBe(before);
    });

    test('a configured directory that does not answer fails closed: 503 DIRECTORY_UNAVAILABLE, nothing placed', async () => {
      dir.mode = 'down';
      const before = await countRows(d.db, 'orders');
      const api = await dOrder('Open', 'fin@example.com');
      expect(api.status).toBe(503);
      expect(api.body).toMatchObject({ code: 'DIRECTORY_UNAVAILABLE', directory_code: 'UNAVAILABLE' });
      expect(api.body.detail).toContain('try again later');
      expect((await dSnow('By group', 'eng@example.com')).status).toBe(503);
      expect(await countRows(d.db, 'orders')).toBe(before);
    });

    test('a directory whose settings are not configured behaves as none: no requester check, directory rules admit nobody', async () => {
      dir.mode = 'unconfigured';
      expect((await dOrder('Open', 'ghost@example.com')).status).toBe(201);
      const dept = await dOrder('By department', 'fin@example.com');
      expect(dept.status).toBe(403);
      expect(dept.body.detail).toContain('active_directory is not configured');
    });
  });
});
