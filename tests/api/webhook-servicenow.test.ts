import request from 'supertest';
import { buildApp } from '../../server/app';
import { transitionOrder } from '../../server/domain/orders/order-status';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import { countingDatabase } from '../support/counting-db';
import { createTestApp, TEST_ADMIN_KEY, type TestApp } from '../support/app';
import { countRows, hubSignature, mintTestToken, nextRitm, seedAssetType, snowPayload } from '../support/orders';

const SECRET = 'snow-shared-secret-for-tests';
const PATH = '/webhook/servicenow';

// Every field the ServiceNow contract shows in its 201 body (job_id in place of celery_task_id), plus ours.
const SEED_FIELDS = [
  'id', 'servicenow_ref', 'snow_req', 'action', 'status', 'user_email', 'user_name', 'owner_email', 'owner_name',
  'asset_type_id', 'assigned_asset_id', 'rdp_users', 'admin_users', 'requested_from', 'requested_until', 'job_id',
  'config', 'error_message', 'created_at', 'updated_at', 'steps',
];

describe('POST /webhook/servicenow', () => {
  let t: TestApp;
  let bearer: string;
  let vdiId: number;
  const auth = () => ({ Authorization: `Bearer ${bearer}` });

  beforeAll(async () => {
    t = await createTestApp({ webhookSecretToken: SECRET });
    vdiId = await seedAssetType(t.db, {
      name: 'Standard VDI',
      assignment_model: 'capacity_pooled',
      pool_size: 100,
      attributes: [
        { key: 'project_code', type: 'string', required: true },
        { key: 'cost_center', type: 'string', required: false },
        { key: 'cores', type: 'integer', required: false },
      ],
    });
    await seedAssetType(t.db, { name: 'SaaS seat' });
    await seedAssetType(t.db, { name: 'Approved Laptop', requires_approval: true });
    await seedAssetType(t.db, { name: 'Tiny pool', assignment_model: 'capacity_pooled', pool_size: 1 });
    await seedAssetType(t.db, { name: 'One per user', max_per_user: 1 });
    await seedAssetType(t.db, { name: 'Shared desktop', allow_user_lists: true });
    bearer = await mintTestToken(t.db, 'snow-prod', ['webhook:in']);
  });
  afterAll(async () => {
    await t.close();
  });

  /** Posts `payload` as the exact bytes it signs. */
  const signed = (payload: Record<string, unknown>, secret = SECRET) => {
    const raw = JSON.stringify(payload);
    return t.http().post(PATH).set('Content-Type', 'application/json').set('X-Hub-Signature-256', hubSignature(raw, secret)).send(raw);
  };
  const withBearer = (payload: Record<string, unknown>) => t.http().post(PATH).set(auth()).send(payload);
  const vdi = (over: Record<string, unknown> = {}) =>
    snowPayload('Standard VDI', { config: { project_code: 'EU-FINANCE-2026', cost_center: 'CC-4400' }, ...over });
  const auditOf = async (orderId: number) =>
    (
      await t.db.query<{ action: string; triggered_by: string; diff: { after: Record<string, unknown> } }>(
        `SELECT action, triggered_by, diff FROM audit_log WHERE entity = 'order' AND entity_id = $1 ORDER BY id`,
        [String(orderId)],
      )
    ).rows;
  const ordersWithRef = (ref: unknown) => countRows(t.db, 'orders WHERE servicenow_ref = $1', [ref]);
  const auditRowsTotal = () => countRows(t.db, 'audit_log');

  describe('authentication', () => {
    test('Bearer with webhook:in creates a processing order with every field of the contract', async () => {
      const payload = vdi({ servicenow_ref: 'RITM0012345' });
      const res = await withBearer(payload);
      expect(res.status).toBe(201);
      expect(Object.keys(res.body).sort()).toEqual([...SEED_FIELDS, 'target_order_id', 'source', 'requester', 'extension_requested_until'].sort());
      expect(res.body).toMatchObject({
        servicenow_ref: 'RITM0012345',
        snow_req: 'REQ0009876',
        action: 'provision',
        status: 'processing',
        source: 'servicenow',
        user_email: 'jane.doe@example.com',
        user_name: 'Jane Doe',
        owner_email: null,
        owner_name: null,
        asset_type_id: vdiId,
        assigned_asset_id: null,
        target_order_id: null,
        rdp_users: [],
        admin_users: [],
        requested_from: '2026-06-13T00:00:00Z',
        requested_until: '2026-07-13T00:00:00Z',
        config: { project_code: 'EU-FINANCE-2026', cost_center: 'CC-4400' },
        error_message: null,
        steps: [],
      });
      expect(res.body.id).toEqual(expect.any(Number));
      expect(res.body.job_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(new Date(res.body.created_at).getTime()).toBeGreaterThan(Date.now() - 60_000);
    });

    test('the created order is readable at GET /orders/{id} with the same token', async () => {
      const created = await withBearer(vdi());
      const res = await t.http().get(`/orders/${created.body.id}`).set(auth());
      expect(res.status).toBe(200);
      expect(res.body).toEqual(created.body);
    });

    test('the order is dispatched: a pg-boss job order.provision carries its id', async () => {
      const res = await withBearer(vdi());
      const { rows } = await t.db.query<{ name: string; data: unknown }>('SELECT name, data FROM pgboss.job WHERE id = $1', [res.body.job_id]);
      expect(rows).toEqual([{ name: 'order.provision', data: { orderId: res.body.id } }]);
      const stored = await t.db.query<{ job_id: string }>('SELECT job_id FROM orders WHERE id = $1', [res.body.id]);
      expect(stored.rows[0]!.job_id).toBe(res.body.job_id);
    });

    test('the Bearer path is audited as webhook:token:<name>', async () => {
      const res = await withBearer(vdi());
      const audit = await auditOf(res.body.id);
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ action: 'create', triggered_by: 'webhook:token:snow-prod' });
      expect(audit[0]!.diff).toMatchObject({
        before: null,
        after: { id: res.body.id, servicenow_ref: res.body.servicenow_ref, status: 'processing', job_id: res.body.job_id, created_by: 'webhook:token:snow-prod' },
      });
    });

    test('a valid HMAC signature of the raw body is accepted and audited as webhook:hmac', async () => {
      const res = await signed(vdi());
      expect(res.status).toBe(201);
      expect(res.body.status).toBe('processing');
      const audit = await auditOf(res.body.id);
      expect(audit.map((a) => a.triggered_by)).toEqual(['webhook:hmac']);
    });

    test('a signature made with another secret is 401 and writes nothing', async () => {
      const payload = vdi();
      const before = await auditRowsTotal();
      const res = await signed(payload, 'not-the-secret');
      expect(res.status).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 401, code: 'UNAUTHENTICATED', detail: 'X-Hub-Signature-256 does not match the request body' });
      expect(await ordersWithRef(payload['servicenow_ref'])).toBe(0);
      expect(await auditRowsTotal()).toBe(before);
    });

    test('a signature of different bytes than those sent is 401', async () => {
      const payload = vdi();
      const res = await t
        .http()
        .post(PATH)
        .set('Content-Type', 'application/json')
        .set('X-Hub-Signature-256', hubSignature(JSON.stringify({ ...payload, user_name: 'Mallory' }), SECRET))
        .send(JSON.stringify(payload));
      expect(res.status).toBe(401);
    });

    test('no credentials at all is 401', async () => {
      const res = await t.http().post(PATH).send(vdi());
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
      expect(res.body.detail).toEqual(expect.any(String));
    });

    test('the admin key is not a webhook credential: 401', async () => {
      const res = await t.http().post(PATH).set(t.admin).send(vdi());
      expect(res.status).toBe(401);
    });

    test('an unknown bearer token is 401', async () => {
      const res = await t.http().post(PATH).set('Authorization', 'Bearer xpat_notarealtoken').send(vdi());
      expect(res.status).toBe(401);
      expect(res.body.detail).toBe('API token is unknown, revoked or expired');
    });

    test('a bearer token without webhook:in is 403 and writes nothing', async () => {
      const other = await mintTestToken(t.db, 'orders-only', ['orders:write', 'admin:*']);
      const payload = vdi();
      const res = await t.http().post(PATH).set('Authorization', `Bearer ${other}`).send(payload);
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ status: 403, code: 'FORBIDDEN', detail: 'requires scope webhook:in' });
      expect(await ordersWithRef(payload['servicenow_ref'])).toBe(0);
    });

    test('with both headers Bearer wins: a valid token with a bad signature is accepted as the token', async () => {
      const raw = JSON.stringify(vdi());
      const res = await t
        .http()
        .post(PATH)
        .set(auth())
        .set('Content-Type', 'application/json')
        .set('X-Hub-Signature-256', hubSignature(raw, 'wrong-secret'))
        .send(raw);
      expect(res.status).toBe(201);
      expect((await auditOf(res.body.id))[0]!.triggered_by).toBe('webhook:token:snow-prod');
    });

    test('with both headers Bearer wins: an invalid token is 401 even with a valid signature', async () => {
      const raw = JSON.stringify(vdi());
      const res = await t
        .http()
        .post(PATH)
        .set('Authorization', 'Bearer xpat_revoked_or_unknown')
        .set('Content-Type', 'application/json')
        .set('X-Hub-Signature-256', hubSignature(raw, SECRET))
        .send(raw);
      expect(res.status).toBe(401);
    });
  });

  describe('approval, idempotency, capacity, quota', () => {
    test('a type that requires approval gives pending_approval and queues no job', async () => {
      const jobsBefore = await countRows(t.db, `pgboss.job WHERE name = 'order.provision'`);
      const res = await withBearer(snowPayload('Approved Laptop'));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ status: 'pending_approval', job_id: null, steps: [] });
      expect(await countRows(t.db, `pgboss.job WHERE name = 'order.provision'`)).toBe(jobsBefore);
      expect((await auditOf(res.body.id))[0]).toMatchObject({ action: 'create', triggered_by: 'webhook:token:snow-prod' });
    });

    test('a second delivery of the same RITM is 409 with the contract detail and changes nothing', async () => {
      const payload = vdi();
      const first = await withBearer(payload);
      expect(first.status).toBe(201);
      const audits = await auditRowsTotal();
      const again = await signed(payload);
      expect(again.status).toBe(409);
      expect(again.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(again.body).toMatchObject({ status: 409, code: 'CONFLICT', detail: `Order with servicenow_ref '${payload['servicenow_ref']}' already exists` });
      expect(await ordersWithRef(payload['servicenow_ref'])).toBe(1);
      expect(await auditRowsTotal()).toBe(audits);
    });

    test('a full pool is 429 CAPACITY_EXCEEDED', async () => {
      expect((await withBearer(snowPayload('Tiny pool', { user_email: 'a@example.com' }))).status).toBe(201);
      const payload = snowPayload('Tiny pool', { user_email: 'b@example.com' });
      const res = await withBearer(payload);
      expect(res.status).toBe(429);
      expect(res.body).toMatchObject({ status: 429, code: 'CAPACITY_EXCEEDED', detail: "asset type 'Tiny pool' has no free capacity (1 of 1 in use)" });
      expect(await ordersWithRef(payload['servicenow_ref'])).toBe(0);
    });

    test('a redelivery to a full pool is still the 409 of a duplicate, not a 429', async () => {
      const { rows } = await t.db.query<{ servicenow_ref: string }>(
        `SELECT servicenow_ref FROM orders o JOIN asset_types a ON a.id = o.asset_type_id WHERE a.name = 'Tiny pool'`,
      );
      const res = await withBearer(snowPayload('Tiny pool', { servicenow_ref: rows[0]!.servicenow_ref, user_email: 'a@example.com' }));
      expect(res.status).toBe(409);
    });

    test('the per-user quota is 429 QUOTA_EXCEEDED, whatever the spelling of the email; other users are unaffected', async () => {
      expect((await withBearer(snowPayload('One per user', { user_email: 'quota.user@example.com' }))).status).toBe(201);
      const res = await withBearer(snowPayload('One per user', { user_email: 'Quota.User@EXAMPLE.com' }));
      expect(res.status).toBe(429);
      expect(res.body).toMatchObject({
        status: 429,
        code: 'QUOTA_EXCEEDED',
        detail: "quota.user@example.com already holds 1 active order(s) of asset type 'One per user' (quota 1)",
      });
      expect((await withBearer(snowPayload('One per user', { user_email: 'someone.else@example.com' }))).status).toBe(201);
    });

    test('user_email is stored lower-cased', async () => {
      const res = await withBearer(snowPayload('SaaS seat', { user_email: 'Mixed.Case@Example.COM' }));
      expect(res.status).toBe(201);
      expect(res.body.user_email).toBe('mixed.case@example.com');
    });

    test('user lists and owner are kept for a type that allows lists', async () => {
      const res = await withBearer(
        snowPayload('Shared desktop', {
          owner_email: 'boss@example.com',
          owner_name: 'The Boss',
          rdp_users: ['a@example.com'],
          admin_users: ['b@example.com'],
        }),
      );
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ owner_email: 'boss@example.com', owner_name: 'The Boss', rdp_users: ['a@example.com'], admin_users: ['b@example.com'] });
    });
  });

  describe('bad input: a precise problem naming the field, and nothing written', () => {
    const noWrite = async (payload: Record<string, unknown>, send: () => Promise<{ status: number; body: Record<string, unknown> }>) => {
      const audits = await auditRowsTotal();
      const orders = await countRows(t.db, 'orders');
      const res = await send();
      expect(await countRows(t.db, 'orders')).toBe(orders);
      expect(await auditRowsTotal()).toBe(audits);
      expect(await ordersWithRef(payload['servicenow_ref'] ?? null)).toBe(0);
      return res;
    };

    test('an unknown asset type is 400 UNKNOWN_ASSET_TYPE naming asset_type_name', async () => {
      const payload = snowPayload('No Such Type');
      const res = await noWrite(payload, () => withBearer(payload));
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        status: 400,
        code: 'UNKNOWN_ASSET_TYPE',
        detail: "asset type 'No Such Type' does not exist",
        errors: [{ path: '/body/asset_type_name', message: 'is not an asset type' }],
      });
    });

    test.each([
      ['servicenow_ref', { servicenow_ref: undefined }],
      ['action', { action: undefined }],
      ['user_email', { user_email: undefined }],
      ['user_name', { user_name: undefined }],
      ['asset_type_name', { asset_type_name: undefined }],
      ['requested_from', { requested_from: undefined }],
      ['requested_until', { requested_until: undefined }],
    ])('missing %s is 422 naming it', async (field, over) => {
      const payload = vdi(over);
      const res = await noWrite(payload, () => withBearer(payload));
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ status: 422, code: 'VALIDATION_FAILED' });
      expect(res.body['errors']).toEqual(expect.arrayContaining([expect.objectContaining({ path: `/body/${field}` })]));
      expect(res.body['detail']).toContain(field);
    });

    test.each([
      ['user_email', { user_email: 'not-an-email' }],
      ['owner_email', { owner_email: 'owner at example.com' }],
      ['requested_from', { requested_from: '13/06/2026' }],
      ['requested_until', { requested_until: '2026-07-13' }],
      ['requested_from', { requested_from: '2026-06-13T00:00:00' }],
      ['action', { action: 'update' }],
      ['servicenow_ref', { servicenow_ref: 'INC0001' }],
      ['rdp_users', { rdp_users: 'a@example.com' }],
      ['config', { config: 'x' }],
      ['surprise', { surprise: true }],
    ])('an invalid %s is 422 naming it (%j)', async (field, over) => {
      const payload = vdi(over);
      const res = await noWrite(payload, () => withBearer(payload));
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ status: 422, code: 'VALIDATION_FAILED' });
      expect(res.body['errors']).toEqual(expect.arrayContaining([expect.objectContaining({ path: expect.stringContaining(`/body/${field === 'surprise' ? '' : field}`) })]));
      expect(res.body['detail']).toContain(field);
    });

    test('requested_until before requested_from is 422 naming requested_until', async () => {
      const payload = vdi({ requested_from: '2026-07-13T00:00:00Z', requested_until: '2026-06-13T00:00:00Z' });
      const res = await noWrite(payload, () => withBearer(payload));
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({
        code: 'VALIDATION_FAILED',
        detail: 'requested_until: must be after requested_from',
        errors: [{ path: '/body/requested_until', message: 'must be after requested_from' }],
      });
    });

    test.each([
      ['an unknown config key', { project_code: 'P', colour: 'red' }, '/body/config/colour'],
      ['an ill-typed config value', { project_code: 'P', cores: 'four' }, '/body/config/cores'],
      ['a missing required attribute', { cost_center: 'CC-1' }, '/body/config/project_code'],
    ])('%s is 422 naming the key', async (_what, config, path) => {
      const payload = vdi({ config });
      const res = await noWrite(payload, () => withBearer(payload));
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [expect.objectContaining({ path })] });
    });

    test('rdp_users on a type without user lists is 422 naming rdp_users', async () => {
      const payload = snowPayload('SaaS seat', { rdp_users: ['x@example.com'] });
      const res = await noWrite(payload, () => withBearer(payload));
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ errors: [{ path: '/body/rdp_users', message: "asset type 'SaaS seat' does not allow user lists" }] });
    });

    test('admin_users on a type without user lists is 422 naming admin_users', async () => {
      const payload = snowPayload('SaaS seat', { admin_users: ['x@example.com'] });
      const res = await noWrite(payload, () => withBearer(payload));
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ errors: [{ path: '/body/admin_users' }] });
    });

    test('malformed JSON is 400', async () => {
      const raw = '{"servicenow_ref": "RITM1", ';
      const res = await t.http().post(PATH).set(auth()).set('Content-Type', 'application/json').send(raw);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
      expect(res.body.detail).toMatch(/not valid JSON/);
    });

    test('a body that is not JSON is 415', async () => {
      const res = await t.http().post(PATH).set(auth()).set('Content-Type', 'text/plain').send('servicenow_ref=RITM1');
      expect(res.status).toBe(415);
      expect(res.body).toMatchObject({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
    });

    test('a body over 1 MiB is 413', async () => {
      const payload = vdi({ user_name: 'x'.repeat(1024 * 1024 + 10) });
      const res = await noWrite(payload, () => withBearer(payload));
      expect(res.status).toBe(413);
      expect(res.body).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
    });
  });

  describe('action: delete', () => {
    const provisionSeat = async (email: string) => {
      const res = await withBearer(snowPayload('SaaS seat', { user_email: email }));
      expect(res.status).toBe(201);
      return res.body as { id: number };
    };

    test('takes back the user\'s most recent active order: a delete order, the target deprovisioning, a deprovision job', async () => {
      const older = await provisionSeat('leaver@example.com');
      const target = await provisionSeat('leaver@example.com');
      await t.db.transaction((tx) => transitionOrder(tx, target.id, 'provisioned', { triggeredBy: 'system:test' }));
      const ref = nextRitm();
      const res = await withBearer(snowPayload('SaaS seat', { action: 'delete', servicenow_ref: ref, user_email: 'LEAVER@example.com' }));
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        action: 'delete',
        // Under way until its target is returned; a delete never shows `provisioned`.
        status: 'deprovisioning',
        servicenow_ref: ref,
        target_order_id: target.id,
        user_email: 'leaver@example.com',
        steps: [],
      });
      const job = await t.db.query<{ name: string; data: unknown }>('SELECT name, data FROM pgboss.job WHERE id = $1', [res.body.job_id]);
      expect(job.rows).toEqual([{ name: 'order.deprovision', data: { orderId: res.body.id, targetOrderId: target.id } }]);

      const targetNow = await t.http().get(`/orders/${target.id}`).set(auth());
      expect(targetNow.body.status).toBe('deprovisioning');
      const olderNow = await t.http().get(`/orders/${older.id}`).set(auth());
      expect(olderNow.body.status).toBe('processing');
      const trail = await auditOf(target.id);
      expect(trail.map((a) => [a.action, a.triggered_by])).toEqual([
        ['create', 'webhook:token:snow-prod'],
        ['transition', 'system:test'],
        ['transition', 'webhook:token:snow-prod'],
      ]);
      expect((await auditOf(res.body.id)).map((a) => a.action)).toEqual(['create']);

      const again = await signed(snowPayload('SaaS seat', { action: 'delete', servicenow_ref: ref, user_email: 'leaver@example.com' }));
      expect(again.status).toBe(409);
      expect(again.body.detail).toBe(`Order with servicenow_ref '${ref}' already exists`);
    });

    test('a delete does not count against capacity', async () => {
      const { rows } = await t.db.query<{ id: number; user_email: string }>(
        `SELECT o.id, o.user_email FROM orders o JOIN asset_types a ON a.id = o.asset_type_id WHERE a.name = 'Tiny pool' AND o.action = 'provision'`,
      );
      const held = rows[0]!;
      await t.db.transaction((tx) => transitionOrder(tx, held.id, 'provisioned', { triggeredBy: 'system:test' }));
      const res = await withBearer(snowPayload('Tiny pool', { action: 'delete', user_email: held.user_email }));
      expect(res.status).toBe(201);
      expect(res.body.target_order_id).toBe(held.id);
    });

    test('when the user holds no active order of the type it is 404 and writes nothing', async () => {
      const payload = snowPayload('SaaS seat', { action: 'delete', user_email: 'nobody@example.com' });
      const audits = await auditRowsTotal();
      const res = await withBearer(payload);
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ status: 404, code: 'NOT_FOUND', detail: "nobody@example.com holds no active order of asset type 'SaaS seat' to delete" });
      expect(await ordersWithRef(payload['servicenow_ref'])).toBe(0);
      expect(await auditRowsTotal()).toBe(audits);
    });

    test('a target still being provisioned: 202, the take-back queued (no job yet), the target left to its provision', async () => {
      const order = await provisionSeat('busy@example.com');
      const payload = snowPayload('SaaS seat', { action: 'delete', user_email: 'busy@example.com' });
      const res = await withBearer(payload);
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ action: 'delete', status: 'deprovisioning', target_order_id: order.id });
      expect(await ordersWithRef(payload['servicenow_ref'])).toBe(1);
      expect(await countRows(t.db, 'pgboss.job WHERE id = $1', [res.body.job_id])).toBe(0);
      const now = await t.http().get(`/orders/${order.id}`).set(auth());
      expect(now.body.status).toBe('processing');
      // A second delete does not aim at an order a take-back already waits for.
      const second = await withBearer(snowPayload('SaaS seat', { action: 'delete', user_email: 'busy@example.com' }));
      expect(second.status).toBe(404);
    });

    test('a target waiting for approval cannot be taken back: 409 naming both states, nothing written', async () => {
      const res0 = await withBearer(snowPayload('Approved Laptop', { user_email: 'waiting@example.com' }));
      expect(res0.body.status).toBe('pending_approval');
      const payload = snowPayload('Approved Laptop', { action: 'delete', user_email: 'waiting@example.com' });
      const res = await withBearer(payload);
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ code: 'CONFLICT', detail: `order ${res0.body.id} cannot move from 'pending_approval' to 'deprovisioning'` });
      expect(await ordersWithRef(payload['servicenow_ref'])).toBe(0);
    });

    test('a delete needs no requested_from/requested_until; a provision without them is 422 naming the field', async () => {
      await provisionSeat('window@example.com');
      const del = await withBearer(snowPayload('SaaS seat', { action: 'delete', user_email: 'window@example.com', requested_from: undefined, requested_until: undefined }));
      expect(del.status).toBe(202);
      for (const field of ['requested_from', 'requested_until']) {
        const payload = snowPayload('SaaS seat', { user_email: 'nowindow@example.com', [field]: undefined });
        const res = await withBearer(payload);
        expect(res.status).toBe(422);
        expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: `/body/${field}`, message: "is required for action 'provision'" }] });
        expect(await ordersWithRef(payload['servicenow_ref'])).toBe(0);
      }
    });

    test('a delete for an unknown asset type is 400', async () => {
      const res = await withBearer(snowPayload('Nope', { action: 'delete' }));
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('UNKNOWN_ASSET_TYPE');
    });
  });

  test('a signed provision is one database statement once its type is known (order, audit row and job together)', async () => {
    // The app over a database that records every statement sent through it (transactions' statements included).
    const counted = countingDatabase(t.db);
    const app = buildApp({ db: counted, queue: t.queue, logger: t.leaver.logger, integrations: t.integrations, adminKeyHash: async () => hashSecret(TEST_ADMIN_KEY) }, t.config);
    const post = (payload: Record<string, unknown>) => {
      const raw = JSON.stringify(payload);
      return request(app).post(PATH).set('Content-Type', 'application/json').set('X-Hub-Signature-256', hubSignature(raw, SECRET)).send(raw);
    };
    // The first order of a type reads the type and its entitlements (then cached per database and type version).
    expect((await post(snowPayload('SaaS seat', { user_email: 'counted.first@example.com' }))).status).toBe(201);
    const before = counted.statements.length;
    const res = await post(snowPayload('SaaS seat', { user_email: 'counted.second@example.com' }));
    expect(res.status).toBe(201);
    expect(counted.statements.slice(before).map((q) => q.replace(/\s+/g, ' ').trim().slice(0, 60))).toEqual([
      expect.stringMatching(/^SELECT .*/),
    ]);
    expect(counted.statements[before]).toContain('provisio_place_order');
    // What that one statement wrote: the order, its creation audit row and its provision job under the order's job id.
    const audit = await auditOf(res.body.id as number);
    expect(audit.map((a) => [a.action, a.triggered_by])).toContainEqual(['create', 'webhook:hmac']);
    expect(await countRows(t.db, `pgboss.job WHERE name = 'order.provision' AND id = $1::uuid`, [res.body.job_id])).toBe(1);
  });
});
