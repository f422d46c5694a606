import request from 'supertest';
import { buildApp } from '../../server/app';
import { transitionOrder } from '../../server/domain/orders/order-status';
import type { RequesterDirectory } from '../../server/domain/orders/orders';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import { createLogger } from '../../adapter';
import { createTestApp, TEST_ADMIN_KEY, type TestApp } from '../support/app';
import { countRows, mintTestToken, seedAssetType, snowPayload } from '../support/orders';

describe('orders API', () => {
  let t: TestApp;
  let writer: string;
  let vdiId: number;
  let seatId: number;
  const asWriter = () => ({ Authorization: `Bearer ${writer}` });
  const order = (over: Record<string, unknown> = {}) => ({
    asset_type_name: 'SaaS seat',
    user_email: 'jane.doe@example.com',
    user_name: 'Jane Doe',
    requested_from: '2026-06-13T00:00:00Z',
    requested_until: '2026-07-13T00:00:00Z',
    ...over,
  });
  const post = (body: unknown, headers: Record<string, string> = asWriter()) => t.http().post('/orders').set(headers).send(body as object);

  beforeAll(async () => {
    t = await createTestApp();
    vdiId = await seedAssetType(t.db, {
      name: 'Standard VDI',
      assignment_model: 'capacity_pooled',
      pool_size: 2,
      attributes: [{ key: 'project_code', type: 'string', required: true }],
    });
    seatId = await seedAssetType(t.db, { name: 'SaaS seat', max_per_user: 3 });
    await seedAssetType(t.db, { name: 'Approved Laptop', requires_approval: true });
    writer = await mintTestToken(t.db, 'portal', ['orders:write']);
  });
  afterAll(async () => {
    await t.close();
  });

  describe('POST /orders', () => {
    test('creates a processing order with a queued job, audited as api:token:<name>', async () => {
      const res = await post(order({ config: {} }));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        action: 'provision',
        status: 'processing',
        source: 'api',
        servicenow_ref: null,
        snow_req: null,
        asset_type_id: seatId,
        user_email: 'jane.doe@example.com',
        requested_from: '2026-06-13T00:00:00Z',
        requested_until: '2026-07-13T00:00:00Z',
        target_order_id: null,
        steps: [],
        requester: { department: null, cost_center: null, company: null, employee_id: null, title: null },
      });
      const job = await t.db.query<{ name: string; data: unknown }>('SELECT name, data FROM pgboss.job WHERE id = $1', [res.body.job_id]);
      expect(job.rows).toEqual([{ name: 'order.provision', data: { orderId: res.body.id } }]);
      const audit = await t.db.query<{ triggered_by: string; action: string }>(
        `SELECT triggered_by, action FROM audit_log WHERE entity = 'order' AND entity_id = $1`,
        [String(res.body.id)],
      );
      expect(audit.rows).toEqual([{ triggered_by: 'api:token:portal', action: 'create' }]);
      const stored = await t.db.query<{ created_by: string }>('SELECT created_by FROM orders WHERE id = $1', [res.body.id]);
      expect(stored.rows[0]!.created_by).toBe('api:token:portal');
    });

    test('accepts the type by id, and the admin key, audited as admin:key', async () => {
      const res = await post(order({ asset_type_name: undefined, asset_type_id: vdiId, config: { project_code: 'P-1' } }), t.admin);
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ asset_type_id: vdiId, config: { project_code: 'P-1' } });
      const audit = await t.db.query<{ triggered_by: string }>(`SELECT triggered_by FROM audit_log WHERE entity = 'order' AND entity_id = $1`, [String(res.body.id)]);
      expect(audit.rows[0]!.triggered_by).toBe('admin:key');
    });

    test('a type that requires approval starts pending_approval without a job', async () => {
      const res = await post(order({ asset_type_name: 'Approved Laptop' }));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ status: 'pending_approval', job_id: null });
    });

    test('the requested window is optional for API orders', async () => {
      const res = await post(order({ requested_from: undefined, requested_until: undefined, user_email: 'nodates@example.com' }));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ requested_from: null, requested_until: null });
    });

    test('an explicit requester snapshot is stored on the order', async () => {
      const requester = { department: 'Finance', cost_center: 'CC-4400', company: 'Example AG', employee_id: 'E-1', title: 'Controller' };
      const res = await post(order({ user_email: 'snap@example.com', requester }));
      expect(res.status).toBe(201);
      expect(res.body.requester).toEqual(requester);
      const row = await t.db.query('SELECT requester_department, requester_cost_center, requester_company, requester_employee_id, requester_title FROM orders WHERE id = $1', [res.body.id]);
      expect(row.rows[0]).toEqual({ requester_department: 'Finance', requester_cost_center: 'CC-4400', requester_company: 'Example AG', requester_employee_id: 'E-1', requester_title: 'Controller' });
    });

    test('a token without orders:write is 403', async () => {
      const reader = await mintTestToken(t.db, 'reader', ['admin:read']);
      const res = await post(order(), { Authorization: `Bearer ${reader}` });
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ code: 'FORBIDDEN', detail: 'requires scope orders:write' });
    });

    test('no credentials is 401', async () => {
      const res = await post(order(), {});
      expect(res.status).toBe(401);
    });

    test('the pool limit is 429 CAPACITY_EXCEEDED, the quota 429 QUOTA_EXCEEDED', async () => {
      const vdi = (email: string) => order({ asset_type_name: 'Standard VDI', user_email: email, config: { project_code: 'P' } });
      // One VDI order exists already (admin key test above); the pool holds 2.
      expect((await post(vdi('second@example.com'))).status).toBe(201);
      const full = await post(vdi('third@example.com'));
      expect(full.status).toBe(429);
      expect(full.body).toMatchObject({ status: 429, code: 'CAPACITY_EXCEEDED' });

      for (let i = 0; i < 3; i++) expect((await post(order({ user_email: 'hoarder@example.com' }))).status).toBe(201);
      const over = await post(order({ user_email: 'HOARDER@example.com' }));
      expect(over.status).toBe(429);
      expect(over.body).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    });

    test('a released order frees its place in the quota', async () => {
      const { rows } = await t.db.query<{ id: number }>(`SELECT id FROM orders WHERE user_email = 'hoarder@example.com' ORDER BY id LIMIT 1`);
      await t.db.transaction((tx) => transitionOrder(tx, rows[0]!.id, 'cancelled', { triggeredBy: 'system:test' }));
      expect((await post(order({ user_email: 'hoarder@example.com' }))).status).toBe(201);
    });

    describe('bad input is a precise problem naming the field, and nothing is written', () => {
      const rejected = async (body: unknown, headers?: Record<string, string>, contentType?: string) => {
        const orders = await countRows(t.db, 'orders');
        const audits = await countRows(t.db, 'audit_log');
        const req = t.http().post('/orders').set(headers ?? asWriter());
        const res = contentType ? await req.set('Content-Type', contentType).send(body as string) : await req.send(body as object);
        expect(await countRows(t.db, 'orders')).toBe(orders);
        expect(await countRows(t.db, 'audit_log')).toBe(audits);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.body.detail).toEqual(expect.any(String));
        return res;
      };

      test('malformed JSON is 400', async () => {
        const res = await rejected('{"user_email": ', undefined, 'application/json');
        expect(res.status).toBe(400);
        expect(res.body.code).toBe('BAD_REQUEST');
      });

      test('a non-JSON content type is 415', async () => {
        const res = await rejected('user_email=a@b.c', undefined, 'application/x-www-form-urlencoded');
        expect(res.status).toBe(415);
      });

      test('a body over 1 MiB is 413', async () => {
        const res = await rejected(order({ user_name: 'n'.repeat(1024 * 1024) }));
        expect(res.status).toBe(413);
        expect(res.body.code).toBe('PAYLOAD_TOO_LARGE');
      });

      test.each([
        ['user_email', { user_email: 'jane' }],
        ['user_email', { user_email: undefined }],
        ['user_name', { user_name: undefined }],
        ['requested_from', { requested_from: 'tomorrow' }],
        ['requested_until', { requested_until: '2026-07-13 noon' }],
        ['asset_type_id', { asset_type_id: 'three' }],
        ['requester', { requester: { shoe_size: 44 } }],
      ])('an invalid or missing %s is 422 naming it (%j)', async (field, over) => {
        const res = await rejected(order(over));
        expect(res.status).toBe(422);
        expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path: expect.stringContaining(`/body/${field}`) })]));
      });

      test('requested_until before requested_from is 422 naming requested_until', async () => {
        const res = await rejected(order({ requested_from: '2026-07-13T00:00:00Z', requested_until: '2026-07-12T23:59:59Z' }));
        expect(res.status).toBe(422);
        expect(res.body.errors).toEqual([{ path: '/body/requested_until', message: 'must be after requested_from' }]);
      });

      test('neither asset_type_name nor asset_type_id is 422', async () => {
        const res = await rejected(order({ asset_type_name: undefined }));
        expect(res.status).toBe(422);
        expect(res.body.errors).toEqual([{ path: '/body/asset_type_name', message: 'is required (or asset_type_id)' }]);
      });

      test('both asset_type_name and asset_type_id is 422', async () => {
        const res = await rejected(order({ asset_type_id: seatId }));
        expect(res.status).toBe(422);
        expect(res.body.errors).toEqual([{ path: '/body/asset_type_id', message: 'give asset_type_name or asset_type_id, not both' }]);
      });

      test('an unknown asset type name or id is 400 UNKNOWN_ASSET_TYPE naming the field', async () => {
        const byName = await rejected(order({ asset_type_name: 'Nope' }));
        expect(byName.status).toBe(400);
        expect(byName.body).toMatchObject({ code: 'UNKNOWN_ASSET_TYPE', errors: [{ path: '/body/asset_type_name', message: 'is not an asset type' }] });
        const byId = await rejected(order({ asset_type_name: undefined, asset_type_id: 999999 }));
        expect(byId.status).toBe(400);
        expect(byId.body).toMatchObject({ code: 'UNKNOWN_ASSET_TYPE', detail: 'asset type 999999 does not exist', errors: [{ path: '/body/asset_type_id' }] });
      });

      test('an unknown config key is 422 naming /body/config/<key>', async () => {
        const res = await rejected(order({ asset_type_name: 'Standard VDI', config: { project_code: 'P', colour: 'red' } }));
        expect(res.status).toBe(422);
        expect(res.body.errors).toEqual([{ path: '/body/config/colour', message: 'is not an attribute of this asset type' }]);
      });

      test('user lists on a type without them are 422', async () => {
        const res = await rejected(order({ admin_users: ['root@example.com'] }));
        expect(res.status).toBe(422);
        expect(res.body.errors).toEqual([{ path: '/body/admin_users', message: "asset type 'SaaS seat' does not allow user lists" }]);
      });
    });
  });

  describe('GET /orders/{id}', () => {
    test('answers the order with its steps in the order they ran', async () => {
      const created = (await post(order({ user_email: 'steps@example.com' }))).body;
      await t.db.query(
        `INSERT INTO order_steps (order_id, step_id, name, status, started_at, finished_at, duration_ms)
         VALUES ($1, 'allocate', 'Allocate', 'succeeded', '2026-06-13T21:07:01Z', '2026-06-13T21:07:03Z', 2000),
                ($1, 'notify', 'Notify the user', 'running', '2026-06-13T21:07:04Z', NULL, NULL)`,
        [created.id],
      );
      const res = await t.http().get(`/orders/${created.id}`).set(asWriter());
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        ...created,
        steps: [
          expect.objectContaining({ step_id: 'allocate', status: 'succeeded', attempt: 1, started_at: '2026-06-13T21:07:01Z', finished_at: '2026-06-13T21:07:03Z', duration_ms: 2000 }),
          expect.objectContaining({ step_id: 'notify', status: 'running', finished_at: null, duration_ms: null, error_message: null }),
        ],
      });
    });

    test('an unknown id is 404, a malformed one 400', async () => {
      const missing = await t.http().get('/orders/999999').set(asWriter());
      expect(missing.status).toBe(404);
      expect(missing.body).toMatchObject({ code: 'NOT_FOUND', detail: 'order 999999 does not exist' });
      const bad = await t.http().get('/orders/abc').set(asWriter());
      expect(bad.status).toBe(400);
    });

    test('readable with admin:read or webhook:in, not with another scope', async () => {
      const id = (await post(order({ user_email: 'read@example.com' }))).body.id;
      for (const scopes of [['admin:read'], ['webhook:in'], ['admin:*']] as const) {
        const tok = await mintTestToken(t.db, `read-${scopes[0].replace(/[:*]/g, '')}`, [...scopes]);
        expect((await t.http().get(`/orders/${id}`).set('Authorization', `Bearer ${tok}`)).status).toBe(200);
      }
      const hr = await mintTestToken(t.db, 'hr-only', ['hr:leaver']);
      const denied = await t.http().get(`/orders/${id}`).set('Authorization', `Bearer ${hr}`);
      expect(denied.status).toBe(403);
    });
  });

  describe('GET /orders', () => {
    let listType: number;
    const ids: number[] = [];
    beforeAll(async () => {
      listType = await seedAssetType(t.db, { name: 'List type' });
      for (const email of ['l1@example.com', 'l2@example.com', 'l1@example.com', 'l3@example.com']) {
        ids.push((await post(order({ asset_type_name: 'List type', user_email: email }))).body.id);
      }
      await t.db.transaction((tx) => transitionOrder(tx, ids[3]!, 'failed', { triggeredBy: 'system:test', error: 'boom' }));
    });
    const list = (query: Record<string, string | number>) => t.http().get('/orders').query(query).set(asWriter());

    test('filters by asset type (name or id), newest first, with the total', async () => {
      const byName = await list({ asset_type: 'List type' });
      expect(byName.status).toBe(200);
      expect(byName.body).toMatchObject({ total: 4, limit: 50, offset: 0 });
      expect(byName.body.items.map((o: { id: number }) => o.id)).toEqual([...ids].reverse());
      expect(byName.body.items[0]).not.toHaveProperty('steps');
      const byId = await list({ asset_type: String(listType) });
      expect(byId.body.items.map((o: { id: number }) => o.id)).toEqual([...ids].reverse());
    });

    test('filters by user (case-insensitive) and status', async () => {
      const mine = await list({ asset_type: 'List type', user: 'L1@Example.com' });
      expect(mine.body.items.map((o: { id: number }) => o.id)).toEqual([ids[2], ids[0]]);
      const failed = await list({ asset_type: 'List type', status: 'failed' });
      expect(failed.body).toMatchObject({ total: 1, items: [{ id: ids[3], status: 'failed', error_message: 'boom' }] });
    });

    test('paginates with limit and offset; total counts every match', async () => {
      const page = await list({ asset_type: 'List type', limit: 2, offset: 1 });
      expect(page.body).toMatchObject({ total: 4, limit: 2, offset: 1 });
      expect(page.body.items.map((o: { id: number }) => o.id)).toEqual([ids[2], ids[1]]);
      const past = await list({ asset_type: 'List type', limit: 2, offset: 10 });
      expect(past.body).toMatchObject({ total: 4, items: [] });
    });

    test('filters by servicenow_ref; an unknown type name matches nothing', async () => {
      expect((await list({ servicenow_ref: 'RITM404' })).body).toMatchObject({ total: 0, items: [] });
      expect((await list({ asset_type: 'No such type' })).body).toMatchObject({ total: 0, items: [] });
    });

    test('an all-digit asset_type beyond any id is a name, never a 500', async () => {
      await seedAssetType(t.db, { name: '18446744073709551616' });
      const onIt = await post(order({ asset_type_name: '18446744073709551616', user_email: 'digits@example.com' }));
      expect(onIt.status).toBe(201);
      const named = await list({ asset_type: '18446744073709551616' });
      expect({ status: named.status, ids: named.body.items?.map((o: { id: number }) => o.id) }).toEqual({ status: 200, ids: [onIt.body.id] });
      const none = await list({ asset_type: '99999999999999999999' });
      expect({ status: none.status, total: none.body.total }).toEqual({ status: 200, total: 0 });
    });

    test('a bad status or limit is 400 naming the parameter', async () => {
      const res = await list({ status: 'done' });
      expect(res.status).toBe(400);
      expect(res.body.errors[0].path).toBe('/query/status');
      expect((await list({ limit: 0 })).status).toBe(400);
    });
  });

  describe('transitionOrder', () => {
    test('refuses a move the table forbids with 409 naming both states, and audits allowed ones', async () => {
      const id = (await post(order({ user_email: 'sm@example.com' }))).body.id as number;
      await expect(t.db.transaction((tx) => transitionOrder(tx, id, 'returned', { triggeredBy: 'system:test' }))).rejects.toMatchObject({
        code: 'CONFLICT',
        message: `order ${id} cannot move from 'processing' to 'returned'`,
      });
      const moved = await t.db.transaction((tx) => transitionOrder(tx, id, 'failed', { triggeredBy: 'system:workflow', error: 'runbook step 2 failed' }));
      expect(moved).toEqual({ id, from: 'processing', to: 'failed' });
      const audit = await t.db.query<{ action: string; diff: unknown; triggered_by: string }>(
        `SELECT action, diff, triggered_by FROM audit_log WHERE entity = 'order' AND entity_id = $1 AND action = 'transition'`,
        [String(id)],
      );
      expect(audit.rows).toEqual([
        {
          action: 'transition',
          triggered_by: 'system:workflow',
          diff: { before: { status: 'processing', error_message: null }, after: { status: 'failed', error_message: 'runbook step 2 failed' } },
        },
      ]);
      await expect(t.db.transaction((tx) => transitionOrder(tx, 999999, 'failed', { triggeredBy: 'system:test' }))).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await t.db.transaction((tx) => transitionOrder(tx, id, 'processing', { triggeredBy: 'system:retry' }));
      const retried = await t.http().get(`/orders/${id}`).set(asWriter());
      expect(retried.body).toMatchObject({ status: 'processing', error_message: null });
    });
  });

  describe('a type changed after an order was validated against it', () => {
    // Placement validates against a cached copy of the type and checks its version in the placing statement; these
    // changes come from the admin API and from raw SQL (as another process would make them) after the cache is warm.
    test('a new required attribute, approval switched on and a rename all take effect at once', async () => {
      const typeId = await seedAssetType(t.db, { name: 'Changing seat' });
      const place = (over: Record<string, unknown> = {}) => post(order({ asset_type_name: 'Changing seat', user_email: 'changing@example.com', ...over }));
      expect((await place()).status).toBe(201);

      const attrs = await t.http().patch(`/admin/asset-types/${typeId}`).set(t.admin).send({ attributes: [{ key: 'cost_code', type: 'string', required: true }] });
      expect(attrs.status).toBe(200);
      const missing = await place();
      expect(missing.status).toBe(422);
      expect(missing.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path: '/body/config/cost_code' })]));
      expect((await place({ config: { cost_code: 'C1' } })).status).toBe(201);

      await t.db.query(`UPDATE asset_types SET requires_approval = true WHERE id = $1`, [typeId]);
      const pending = await place({ config: { cost_code: 'C2' } });
      expect(pending.status).toBe(201);
      expect(pending.body.status).toBe('pending_approval');
      expect(pending.body.job_id).toBeNull();

      await t.db.query(`UPDATE asset_types SET name = 'Renamed seat' WHERE id = $1`, [typeId]);
      const gone = await place({ config: { cost_code: 'C3' } });
      expect(gone.status).toBe(400);
      expect(gone.body.code).toBe('UNKNOWN_ASSET_TYPE');
      expect((await place({ asset_type_name: 'Renamed seat', config: { cost_code: 'C4' } })).status).toBe(201);
    });
  });

  describe('requester directory', () => {
    test('fills the snapshot from the directory; explicit values win; a failing directory does not block the order', async () => {
      const seen: string[] = [];
      let fail = false;
      const directory: RequesterDirectory = {
        async lookup(email) {
          seen.push(email);
          if (fail) throw new Error('LDAP down');
          return { department: 'IT', cost_center: 'CC-1', company: 'ACME', employee_id: '42', title: 'Engineer' };
        },
      };
      const app = buildApp(
        { db: t.db, queue: t.queue, logger: createLogger({ silent: true }), integrations: t.integrations, adminKeyHash: async () => hashSecret(TEST_ADMIN_KEY), requesterDirectory: directory },
        t.config,
      );
      const res = await request(app).post('/orders').set(asWriter()).send(order({ user_email: 'Dir.User@example.com', requester: { title: 'CTO' } }));
      expect(res.status).toBe(201);
      expect(seen).toEqual(['dir.user@example.com']);
      expect(res.body.requester).toEqual({ department: 'IT', cost_center: 'CC-1', company: 'ACME', employee_id: '42', title: 'CTO' });

      const webhookToken = await mintTestToken(t.db, 'snow-dir', ['webhook:in']);
      const viaWebhook = await request(app).post('/webhook/servicenow').set('Authorization', `Bearer ${webhookToken}`).send(snowPayload('SaaS seat', { user_email: 'hook@example.com' }));
      expect(viaWebhook.status).toBe(201);
      expect(viaWebhook.body.requester).toMatchObject({ department: 'IT', company: 'ACME' });

      fail = true;
      const down = await request(app).post('/orders').set(asWriter()).send(order({ user_email: 'down@example.com' }));
      expect(down.status).toBe(201);
      expect(down.body.requester).toEqual({ department: null, cost_center: null, company: null, employee_id: null, title: null });
    });
  });
});
