/**
 * Separation of duties: the admin token that last configured an asset type (recorded on create, update and
 * entitlement changes as `last_configured_by`) does not approve its orders, and nobody approves their own order:
 * 403 SEPARATION_OF_DUTIES naming the rule, with an audit row that outlives the refused transaction. Declining is
 * not refused by either rule.
 */
import type { RequesterDirectory } from '../../server/domain/identity/requester-directory';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { mintTestToken } from '../support/orders';

describe(`separation of duties (${testEngine})`, () => {
  let t: TestApp;
  let writer: string;
  let typeId: number;
  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  const tokens: Record<string, string> = {};
  const MANAGERS: Record<string, string> = { 'sue@example.com': 'mia@example.com', 'sam@example.com': 'mia@example.com' };
  const directory: RequesterDirectory = { lookup: async () => undefined, managerOf: async (e) => MANAGERS[e] };

  const mint = async (name: string, body: Record<string, unknown>) => {
    const res = await t.http().post('/admin/api-tokens').set(t.admin).send({ name, ...body });
    expect(res.status).toBe(201);
    tokens[name] = res.body.token as string;
  };
  const order = async (user: string, type = 'Configured seat') => {
    const res = await t.http().post('/orders').set(bearer(writer)).send({ asset_type_name: type, user_email: user, user_name: 'x' });
    expect(res.status).toBe(201);
    return res.body.id as number;
  };
  const state = async (orderId: number) => ({
    order: (await t.db.query<{ status: string }>('SELECT status FROM orders WHERE id = $1', [orderId])).rows[0]!.status,
    approvals: (await t.db.query<{ status: string }>('SELECT status FROM approvals WHERE order_id = $1 ORDER BY id', [orderId])).rows.map((r) => r.status),
  });
  const refusals = async (orderId: number) =>
    (
      await t.db.query<{ diff: { after: Record<string, unknown> }; triggered_by: string }>(
        `SELECT diff, triggered_by FROM audit_log WHERE entity = 'order' AND entity_id = $1 AND action = 'approval_refused' ORDER BY id`,
        [String(orderId)],
      )
    ).rows.map((r) => ({ ...r.diff.after, triggered_by: r.triggered_by }));
  const lastConfiguredBy = async () => (await t.http().get(`/admin/asset-types/${typeId}`).set(t.admin)).body.last_configured_by as string | null;

  beforeAll(async () => {
    t = await createTestApp({}, { requesterDirectory: directory });
    writer = await mintTestToken(t.db, 'writer', ['orders:write']);
    await mint('cfg-admin', { scopes: ['admin:*'], role: 'admin' });
    await mint('other-admin', { scopes: ['admin:*'], role: 'admin' });
    await mint('mia-approver', { scopes: ['admin:read'], role: 'approver', approver_email: 'mia@example.com' });
    await mint('sam-approver', { scopes: ['admin:read'], role: 'approver', approver_email: 'sam@example.com' });
    const created = await t.http().post('/admin/asset-types').set(bearer(tokens['cfg-admin']!))
      .send({ name: 'Configured seat', assignment_model: 'personal', requires_approval: true, fallback_approver: 'fb@example.com' });
    expect(created.status).toBe(201);
    expect(created.body.last_configured_by).toBe('admin:token:cfg-admin');
    typeId = created.body.id as number;
    expect((await t.http().post('/admin/asset-types').set(t.admin).send({ name: 'Unrouted seat', assignment_model: 'personal', requires_approval: true })).status).toBe(201);
  });
  afterAll(async () => {
    await t.close();
  });

  test('the token that configured the type may not approve its orders, whatever approver it names; audited, nothing changes', async () => {
    const id = await order('sue@example.com');
    const before = await state(id);
    expect(before).toEqual({ order: 'pending_approval', approvals: ['pending'] });
    const approvalId = Number((await t.db.query<{ id: string }>('SELECT id FROM approvals WHERE order_id = $1', [id])).rows[0]!.id);

    const override = await t.http().post(`/orders/${id}/approve`).set(bearer(tokens['cfg-admin']!)).send({});
    expect(override.status).toBe(403);
    expect(override.body).toMatchObject({ status: 403, code: 'SEPARATION_OF_DUTIES', rule: 'configured_asset_type' });
    expect(override.body.detail).toContain('admin:token:cfg-admin last configured the asset type');
    const naming = await t.http().post(`/orders/${id}/approve`).set(bearer(tokens['cfg-admin']!)).send({ approver_email: 'mia@example.com' });
    expect(naming.status).toBe(403);
    expect(naming.body.rule).toBe('configured_asset_type');

    // The refusals are on record although the decision's transaction rolled back; the order is untouched.
    expect(await state(id)).toEqual(before);
    expect(await refusals(id)).toEqual([
      { rule: 'configured_asset_type', decision: 'approved', approval_id: approvalId, acting_as: null, triggered_by: 'admin:token:cfg-admin' },
      { rule: 'configured_asset_type', decision: 'approved', approval_id: approvalId, acting_as: 'mia@example.com', triggered_by: 'admin:token:cfg-admin' },
    ]);
    const approved = await t.db.query(`SELECT 1 FROM audit_log WHERE entity = 'approval' AND entity_id = $1 AND action = 'approved'`, [String(approvalId)]);
    expect(approved.rows).toEqual([]);

    // Someone else approves it.
    const res = await t.http().post(`/orders/${id}/approve`).set(bearer(tokens['mia-approver']!)).send({});
    expect(res.status).toBe(200);
    expect(res.body.order_status).toBe('processing');
  });

  test('declining is not barred: a decline grants nothing', async () => {
    const id = await order('sue@example.com');
    const res = await t.http().post(`/orders/${id}/decline`).set(bearer(tokens['cfg-admin']!)).send({ reason: 'duplicate request' });
    expect(res.status).toBe(200);
    expect(res.body.order_status).toBe('cancelled');
    expect(await refusals(id)).toEqual([]);
  });

  test('last_configured_by follows every change (entitlements included), not a change that changes nothing', async () => {
    const noop = await t.http().patch(`/admin/asset-types/${typeId}`).set(bearer(tokens['other-admin']!)).send({ fallback_approver: 'fb@example.com' });
    expect(noop.status).toBe(200);
    expect(await lastConfiguredBy()).toBe('admin:token:cfg-admin');
    const changed = await t.http().patch(`/admin/asset-types/${typeId}`).set(bearer(tokens['other-admin']!)).send({ entitlements: { users: ['sue@example.com', 'sam@example.com'] } });
    expect(changed.status).toBe(200);
    expect(changed.body.last_configured_by).toBe('admin:token:other-admin');
    const audit = await t.db.query<{ diff: { before: Record<string, unknown>; after: Record<string, unknown> } }>(
      `SELECT diff FROM audit_log WHERE entity = 'asset_type' AND entity_id = $1 AND action = 'update' ORDER BY id DESC LIMIT 1`,
      [String(typeId)],
    );
    expect(audit.rows[0]!.diff).toMatchObject({ before: { last_configured_by: 'admin:token:cfg-admin' }, after: { last_configured_by: 'admin:token:other-admin' } });

    // Now the other admin is barred and the first one is not.
    const id = await order('sue@example.com');
    const barred = await t.http().post(`/orders/${id}/approve`).set(bearer(tokens['other-admin']!)).send({});
    expect(barred.status).toBe(403);
    expect(barred.body.rule).toBe('configured_asset_type');
    expect((await t.http().post(`/orders/${id}/approve`).set(bearer(tokens['cfg-admin']!)).send({})).status).toBe(200);
  });

  test('nobody approves their own order: an approval made as the requester is refused (own_order) and audited', async () => {
    // An unrouted order (no manager, no fallback approver): an admin may decide it, but not as the requester.
    const unrouted = await order('noboss@example.com', 'Unrouted seat');
    const asRequester = await t.http().post(`/orders/${unrouted}/approve`).set(t.admin).send({ approver_email: 'NoBoss@example.com' });
    expect(asRequester.status).toBe(403);
    expect(asRequester.body).toMatchObject({ code: 'SEPARATION_OF_DUTIES', rule: 'own_order' });
    expect(asRequester.body.detail).toContain('noboss@example.com requested order');
    expect(await refusals(unrouted)).toEqual([{ rule: 'own_order', decision: 'approved', approval_id: null, acting_as: 'noboss@example.com', triggered_by: 'admin:key' }]);
    expect(await state(unrouted)).toEqual({ order: 'pending_approval', approvals: [] });

    // An approval routed to someone who has since become the requester's approver of their own order (here: the
    // row rewritten, as a stale routing would leave it): the approver token is refused too, and may still decline.
    const own = await order('sam@example.com');
    await t.db.query(`UPDATE approvals SET approver_email = 'sam@example.com' WHERE order_id = $1`, [own]);
    const approve = await t.http().post(`/orders/${own}/approve`).set(bearer(tokens['sam-approver']!)).send({});
    expect(approve.status).toBe(403);
    expect(approve.body.rule).toBe('own_order');
    expect(await refusals(own)).toEqual([expect.objectContaining({ rule: 'own_order', acting_as: 'sam@example.com', triggered_by: 'approver:token:sam-approver' })]);
    expect(await state(own)).toEqual({ order: 'pending_approval', approvals: ['pending'] });
    const decline = await t.http().post(`/orders/${own}/decline`).set(bearer(tokens['sam-approver']!)).send({});
    expect(decline.status).toBe(200);
    expect(decline.body.order_status).toBe('cancelled');
  });

  test('the shared admin key names no person: it is not barred as a configurer', async () => {
    const keyed = await t.http().post('/admin/asset-types').set(t.admin).send({ name: 'Key seat', assignment_model: 'personal', requires_approval: true, fallback_approver: 'fb@example.com' });
    expect(keyed.body.last_configured_by).toBe('admin:key');
    const id = await order('sue@example.com', 'Key seat');
    const res = await t.http().post(`/orders/${id}/approve`).set(t.admin).send({});
    expect(res.status).toBe(200);
    expect(await refusals(id)).toEqual([]);
  });
});
