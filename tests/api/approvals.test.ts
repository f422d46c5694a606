import request from 'supertest';
import { createLogger } from '../../adapter';
import { buildApp } from '../../server/app';
import type { RequesterDirectory } from '../../server/domain/orders/orders';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import { createTestApp, TEST_ADMIN_KEY, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { mintTestToken } from '../support/orders';
import { scimClient, userBody } from '../support/scim';

// The directory's manager of each person (a fake of the AD directory module).
const MANAGERS: Record<string, string> = {
  'alice@example.com': 'boss@example.com',
  'dave@example.com': 'boss@example.com',
  'boss@example.com': 'bigboss@example.com',
  'erin@example.com': 'solo@example.com',
  'fred@example.com': 'solo@example.com',
  'gina@example.com': 'scimboss@example.com',
  'scimboss@example.com': 'bigboss@example.com',
};

describe(`approvals: routing, approve/decline, leaver supersede (${testEngine})`, () => {
  let t: TestApp;
  let writer: string;
  let hrToken: string;
  /** Bound to boss@example.com. */
  let approverToken: string;
  /** Bound to bigboss@example.com. */
  let bigbossToken: string;
  let helpdeskToken: string;
  const FALLBACK = 'it-approvals@example.com';
  const asWriter = () => ({ Authorization: `Bearer ${writer}` });
  const asApprover = () => ({ Authorization: `Bearer ${approverToken}` });
  const mint = async (name: string, role: string, approverEmail?: string) => {
    const res = await t.http().post('/admin/api-tokens').set(t.admin)
      .send({ name, scopes: ['admin:read'], role, ...(approverEmail ? { approver_email: approverEmail } : {}) });
    expect({ status: res.status, body: res.status === 201 ? null : res.body }).toEqual({ status: 201, body: null });
    return res.body.token as string;
  };

  beforeAll(async () => {
    const base = await createTestApp();
    const directory: RequesterDirectory = {
      async lookup() {
        return undefined;
      },
      async managerOf(email) {
        return MANAGERS[email];
      },
    };
    const app = buildApp(
      { db: base.db, queue: base.queue, logger: createLogger({ silent: !process.env['TEST_LOGS'] }), integrations: base.integrations, adminKeyHash: async () => hashSecret(TEST_ADMIN_KEY), requesterDirectory: directory },
      base.config,
    );
    t = { ...base, app, http: () => request.agent(app) };
    writer = await mintTestToken(t.db, 'writer', ['orders:write']);
    hrToken = await mintTestToken(t.db, 'hr-prod', ['hr:leaver']);
    approverToken = await mint('mgr-portal', 'approver', 'Boss@Example.com');
    bigbossToken = await mint('bigboss-portal', 'approver', 'bigboss@example.com');
    helpdeskToken = await mint('desk', 'helpdesk');
    // Through the asset-type API: `fallback_approver` is stored lower-cased and read back.
    const plain = await t.http().post('/admin/asset-types').set(t.admin).send({ name: 'Approved seat', assignment_model: 'personal', requires_approval: true });
    expect(plain.status).toBe(201);
    expect(plain.body.fallback_approver).toBeNull();
    const withFallback = await t.http().post('/admin/asset-types').set(t.admin)
      .send({ name: 'Fallback seat', assignment_model: 'personal', requires_approval: true, fallback_approver: 'IT-Approvals@Example.com' });
    expect(withFallback.status).toBe(201);
    expect(withFallback.body.fallback_approver).toBe(FALLBACK);
  });
  afterAll(async () => {
    await t.close();
  });

  const order = async (user: string, type: 'Approved seat' | 'Fallback seat') => {
    const res = await t.http().post('/orders').set(asWriter()).send({ asset_type_name: type, user_email: user, user_name: user.split('@')[0] });
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('pending_approval');
    return res.body.id as number;
  };
  const approvalsOf = async (orderId: number) =>
    (await t.db.query<{ id: string; approver_email: string; status: string; routed_from_approval_id: string | null; decided_by: string | null }>(
      'SELECT id, approver_email, status, routed_from_approval_id, decided_by FROM approvals WHERE order_id = $1 ORDER BY id', [orderId],
    )).rows.map((r) => ({ ...r, id: Number(r.id), routed_from_approval_id: r.routed_from_approval_id === null ? null : Number(r.routed_from_approval_id) }));
  const orderRow = async (id: number) =>
    (await t.db.query<{ status: string; job_id: string | null }>('SELECT status, job_id FROM orders WHERE id = $1', [id])).rows[0]!;
  const leaver = (email: string, eventId: string) =>
    t.http().post('/hr/leaver').set('Authorization', `Bearer ${hrToken}`).send({ email, source: 'native', event_id: eventId });

  describe('asset type fallback_approver', () => {
    test('PATCH sets and clears it; a non-email is a 422 naming the field', async () => {
      const created = await t.http().post('/admin/asset-types').set(t.admin).send({ name: 'Tmp seat', assignment_model: 'personal' });
      const id = created.body.id as number;
      const set = await t.http().patch(`/admin/asset-types/${id}`).set(t.admin).send({ fallback_approver: 'Head@Example.com' });
      expect(set.status).toBe(200);
      expect(set.body.fallback_approver).toBe('head@example.com');
      const bad = await t.http().patch(`/admin/asset-types/${id}`).set(t.admin).send({ fallback_approver: 'not-an-email' });
      expect(bad.status).toBe(422);
      expect(JSON.stringify(bad.body)).toContain('fallback_approver');
      const cleared = await t.http().patch(`/admin/asset-types/${id}`).set(t.admin).send({ fallback_approver: null });
      expect(cleared.status).toBe(200);
      expect(cleared.body.fallback_approver).toBeNull();
    });
  });

  describe('routing a new order', () => {
    test("to the requester's manager from the directory, in the order's transaction, audited", async () => {
      const id = await order('alice@example.com', 'Fallback seat');
      expect(await approvalsOf(id)).toEqual([expect.objectContaining({ approver_email: 'boss@example.com', status: 'pending', routed_from_approval_id: null })]);
      const audit = await t.db.query<{ triggered_by: string }>(`SELECT triggered_by FROM audit_log WHERE entity = 'approval' AND action = 'create' AND diff->'after'->>'order_id' = $1`, [String(id)]);
      expect(audit.rows).toEqual([{ triggered_by: 'api:token:writer' }]);
      expect((await orderRow(id)).job_id).toBeNull();
    });

    test("to the asset type's fallback approver when there is no manager", async () => {
      const id = await order('nomanager@example.com', 'Fallback seat');
      expect(await approvalsOf(id)).toEqual([expect.objectContaining({ approver_email: FALLBACK, status: 'pending' })]);
    });

    test('unrouted (no row, audited) with neither', async () => {
      const id = await order('nomanager2@example.com', 'Approved seat');
      expect(await approvalsOf(id)).toEqual([]);
      const audit = await t.db.query(`SELECT 1 FROM audit_log WHERE entity = 'order' AND entity_id = $1 AND action = 'approval_unrouted'`, [String(id)]);
      expect(audit.rows).toHaveLength(1);
    });
  });

  describe('approve and decline', () => {
    test('the approver approves: processing, provision job enqueued under the id stored on the order', async () => {
      const id = await order('alice@example.com', 'Approved seat');
      const res = await t.http().post(`/orders/${id}/approve`).set(asApprover()).send({ approver_email: 'Boss@example.com', reason: 'ok' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        order_id: id,
        order_status: 'processing',
        job_id: expect.any(String),
        approval: { order_id: id, approver_email: 'boss@example.com', status: 'approved', decided_by: 'boss@example.com (approver:token:mgr-portal)', reason: 'ok' },
      });
      const row = await orderRow(id);
      expect(row).toEqual({ status: 'processing', job_id: res.body.job_id });
      const jobs = await t.db.query<{ name: string; order_id: string }>(`SELECT name, data->>'orderId' AS order_id FROM pgboss.job WHERE id = $1`, [row.job_id]);
      expect(jobs.rows).toEqual([{ name: 'order.provision', order_id: String(id) }]);
      // Decided once.
      const again = await t.http().post(`/orders/${id}/approve`).set(t.admin).send({});
      expect(again.status).toBe(409);
    });

    test('an admin declines: cancelled, approval declined, nothing enqueued', async () => {
      const id = await order('nomanager@example.com', 'Fallback seat');
      const res = await t.http().post(`/orders/${id}/decline`).set(t.admin).send({ reason: 'no budget' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ order_id: id, order_status: 'cancelled', job_id: null, approval: { approver_email: FALLBACK, status: 'declined', decided_by: 'admin:key' } });
      expect(await orderRow(id)).toEqual({ status: 'cancelled', job_id: null });
    });

    test('403 for the wrong approver, for a token bound to another approver, and for a helpdesk token; nothing changes', async () => {
      const id = await order('alice@example.com', 'Approved seat');
      const wrong = await t.http().post(`/orders/${id}/approve`).set(asApprover()).send({ approver_email: 'someone@example.com' });
      expect(wrong.status).toBe(403);
      expect(wrong.body).toMatchObject({ status: 403, code: 'FORBIDDEN' });
      expect((await t.http().post(`/orders/${id}/decline`).set('Authorization', `Bearer ${bigbossToken}`).send({})).status).toBe(403);
      expect((await t.http().post(`/orders/${id}/approve`).set('Authorization', `Bearer ${helpdeskToken}`).send({})).status).toBe(403);
      expect((await t.http().post(`/orders/${id}/approve`).set(asWriter()).send({})).status).toBe(403);
      expect((await t.http().post(`/orders/${id}/approve`).set(t.admin).send({ approver_email: 'someone@example.com' })).status).toBe(403);
      expect(await orderRow(id)).toEqual({ status: 'pending_approval', job_id: null });
      expect((await approvalsOf(id))[0]).toMatchObject({ status: 'pending' });
    });

    test("an approver token decides only as the approver bound to it, whatever the body names", async () => {
      const asBoss = asApprover();
      // Routed to the fallback approver, not to boss: refused with or without naming the fallback approver.
      const other = await order('nomanager@example.com', 'Fallback seat');
      const naming = await t.http().post(`/orders/${other}/approve`).set(asBoss).send({ approver_email: FALLBACK });
      expect(naming.status).toBe(403);
      expect(naming.body).toMatchObject({ code: 'FORBIDDEN', detail: `this token decides only as boss@example.com, not ${FALLBACK}` });
      const silent = await t.http().post(`/orders/${other}/decline`).set(asBoss).send({});
      expect(silent.status).toBe(403);
      expect(silent.body.detail).toBe(`order ${other} is waiting for another approver`);
      expect(await orderRow(other)).toEqual({ status: 'pending_approval', job_id: null });
      expect((await approvalsOf(other))[0]).toMatchObject({ approver_email: FALLBACK, status: 'pending' });

      // Its own: approved without naming anyone, audited with the bound email and the token.
      const own = await order('alice@example.com', 'Approved seat');
      const res = await t.http().post(`/orders/${own}/approve`).set(asBoss);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ order_status: 'processing', approval: { approver_email: 'boss@example.com', status: 'approved', decided_by: 'boss@example.com (approver:token:mgr-portal)' } });
      const audit = await t.db.query<{ triggered_by: string }>(
        `SELECT triggered_by FROM audit_log WHERE entity = 'approval' AND action = 'approved' AND entity_id = $1`, [String(res.body.approval.id)],
      );
      expect(audit.rows).toEqual([{ triggered_by: 'approver:token:mgr-portal' }]);
    });

    test('an approver token minted before the binding (no approver_email) decides nothing: 403 telling the admin what to do', async () => {
      const legacy = await mint('legacy-approver', 'approver', 'boss@example.com');
      // What a row minted before migration 016 looks like.
      await t.db.query(`UPDATE api_tokens SET approver_email = NULL WHERE name = 'legacy-approver'`);
      const id = await order('alice@example.com', 'Approved seat');
      for (const body of [{ approver_email: 'boss@example.com' }, {}]) {
        const res = await t.http().post(`/orders/${id}/approve`).set('Authorization', `Bearer ${legacy}`).send(body);
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('FORBIDDEN');
        expect(res.body.detail).toMatch(/bound to no approver email.*ask an admin to mint a replacement with role 'approver' and approver_email/);
      }
      expect(await orderRow(id)).toEqual({ status: 'pending_approval', job_id: null });
      // The approval stays decidable by its bound approver.
      expect((await t.http().post(`/orders/${id}/decline`).set(asApprover()).send({ reason: 'not now' })).status).toBe(200);
    });

    test('an unrouted order: only an admin may decide it', async () => {
      const id = await order('nomanager2@example.com', 'Approved seat');
      expect((await t.http().post(`/orders/${id}/approve`).set(asApprover()).send({ approver_email: 'boss@example.com' })).status).toBe(403);
      const res = await t.http().post(`/orders/${id}/approve`).set(t.admin).send({});
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ order_id: id, order_status: 'processing', job_id: expect.any(String) });
      expect(res.body.approval).toBeUndefined();
      const audit = await t.db.query<{ triggered_by: string }>(`SELECT triggered_by FROM audit_log WHERE entity = 'order' AND entity_id = $1 AND action = 'approval_approved'`, [String(id)]);
      expect(audit.rows).toEqual([{ triggered_by: 'admin:key' }]);
    });

    test('404 for an unknown order, 409 for an order not waiting for approval', async () => {
      expect((await t.http().post('/orders/999999/approve').set(t.admin).send({})).status).toBe(404);
      await t.http().post('/admin/asset-types').set(t.admin).send({ name: 'Free seat', assignment_model: 'personal' });
      const free = await t.http().post('/orders').set(asWriter()).send({ asset_type_name: 'Free seat', user_email: 'x@example.com', user_name: 'x' });
      const res = await t.http().post(`/orders/${free.body.id}/decline`).set(t.admin).send({});
      expect(res.status).toBe(409);
    });

    test('GET /admin/approvals filters by approver and status, paginated', async () => {
      const res = await t.http().get('/admin/approvals').query({ approver: 'BOSS@example.com', status: 'approved', limit: 1 }).set(t.admin);
      expect(res.status).toBe(200);
      // Boss approved two orders above (one naming itself, one through its binding alone).
      expect(res.body).toMatchObject({ total: 2, limit: 1, offset: 0, items: [{ approver_email: 'boss@example.com', status: 'approved' }] });
      const all = await t.http().get('/admin/approvals').query({ limit: 2, offset: 1 }).set(asApprover());
      expect(all.status).toBe(200);
      expect(all.body.items).toHaveLength(2);
      expect(all.body.total).toBeGreaterThan(3);
    });
  });

  describe('leaver supersede', () => {
    test("the leaving approver's approvals go to their manager; a repeated or second event changes nothing", async () => {
      const a = await order('alice@example.com', 'Approved seat');
      const d = await order('dave@example.com', 'Fallback seat');
      const before = await t.db.query<{ order_id: string }>(`SELECT order_id FROM approvals WHERE approver_email = 'boss@example.com' AND status = 'pending'`);
      const pendingOfBoss = before.rows.map((r) => Number(r.order_id)).sort((x, y) => x - y);
      expect(pendingOfBoss).toEqual(expect.arrayContaining([a, d]));

      const res = await leaver('boss@example.com', 'evt-boss-1');
      expect(res.status).toBe(202);
      expect(res.body.results[0]).toMatchObject({ status: 'processed' });
      for (const id of pendingOfBoss) {
        const rows = await approvalsOf(id);
        expect(rows).toEqual([
          expect.objectContaining({ approver_email: 'boss@example.com', status: 'superseded', decided_by: 'hr:native' }),
          expect.objectContaining({ approver_email: 'bigboss@example.com', status: 'pending', routed_from_approval_id: rows[0]!.id }),
        ]);
        expect((await orderRow(id)).status).toBe('pending_approval');
      }
      const links = await t.db.query<{ order_id: string }>(
        `SELECT l.order_id FROM leaver_event_orders l JOIN leaver_events e ON e.id = l.event_id WHERE e.dedupe_key = 'native:native:evt-boss-1' AND l.outcome = 'superseded' ORDER BY 1`,
      );
      expect(links.rows.map((r) => Number(r.order_id)).sort((x, y) => x - y)).toEqual(pendingOfBoss);
      const audit = await t.db.query<{ triggered_by: string }>(
        `SELECT DISTINCT triggered_by FROM audit_log WHERE entity = 'approval' AND action = 'superseded' AND entity_id = ANY($1::text[])`,
        [(await Promise.all(pendingOfBoss.map(approvalsOf))).map((r) => String(r[0]!.id))],
      );
      expect(audit.rows).toEqual([{ triggered_by: 'hr:native' }]);

      const count = async () => (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM approvals')).rows[0]!.n;
      const n = await count();
      expect((await leaver('boss@example.com', 'evt-boss-1')).body.results[0]).toMatchObject({ status: 'duplicate' });
      const second = await leaver('boss@example.com', 'evt-boss-2');
      expect(second.status).toBe(202);
      expect(await count()).toBe(n);
    });

    test("a leaving requester's waiting order is cancelled and its approval withdrawn, so no approver is left with it", async () => {
      const id = await order('gina@example.com', 'Fallback seat');
      const [routed] = await approvalsOf(id);
      expect(routed).toMatchObject({ status: 'pending' });
      const res = await leaver('gina@example.com', 'evt-gina-1');
      expect(res.status).toBe(202);
      expect((await orderRow(id)).status).toBe('cancelled');
      expect(await approvalsOf(id)).toEqual([expect.objectContaining({ approver_email: routed!.approver_email, status: 'withdrawn', decided_by: 'hr:native' })]);
      const audit = await t.db.query<{ action: string; diff: { before: { status: string }; after: { status: string; reason: string } } }>(
        `SELECT action, diff FROM audit_log WHERE entity = 'approval' AND entity_id = $1 AND action = 'withdrawn'`,
        [String((await approvalsOf(id))[0]!.id)],
      );
      expect(audit.rows).toHaveLength(1);
      expect(audit.rows[0]!.diff.before.status).toBe('pending');
      expect(audit.rows[0]!.diff.after).toMatchObject({ status: 'withdrawn', reason: expect.stringMatching(/^requester left \(leaver event \d+\)$/) });
      const listed = await t.http().get('/admin/approvals').query({ status: 'withdrawn' }).set(asApprover());
      expect(listed.status).toBe(200);
      expect(listed.body.items.map((a: { order_id: number }) => a.order_id)).toContain(id);
      expect((await leaver('gina@example.com', 'evt-gina-2')).status).toBe(202);
      expect((await approvalsOf(id)).map((a) => a.status)).toEqual(['withdrawn']);
    });

    test("without a manager, to the type's fallback approver, or left unrouted (audited) when the type has none", async () => {
      const viaFallback = await order('erin@example.com', 'Fallback seat');
      const unrouted = await order('fred@example.com', 'Approved seat');
      const res = await leaver('solo@example.com', 'evt-solo-1');
      expect(res.status).toBe(202);
      expect(await approvalsOf(viaFallback)).toEqual([
        expect.objectContaining({ approver_email: 'solo@example.com', status: 'superseded' }),
        expect.objectContaining({ approver_email: FALLBACK, status: 'pending' }),
      ]);
      expect(await approvalsOf(unrouted)).toEqual([expect.objectContaining({ approver_email: 'solo@example.com', status: 'superseded' })]);
      const audit = await t.db.query<{ triggered_by: string }>(
        `SELECT triggered_by FROM audit_log WHERE entity = 'order' AND entity_id = $1 AND action = 'approval_unrouted'`, [String(unrouted)],
      );
      expect(audit.rows).toEqual([{ triggered_by: 'hr:native' }]);
      // The unrouted order is still waiting, for an admin now.
      expect((await orderRow(unrouted)).status).toBe('pending_approval');
    });

    test('two edges reporting the same approver at once supersede each approval once', async () => {
      const id = await order('hank@example.com', 'Fallback seat');
      await t.db.query(`UPDATE approvals SET approver_email = 'twice@example.com' WHERE order_id = $1`, [id]);
      const [x, y] = await Promise.all([leaver('twice@example.com', 'evt-twice-a'), leaver('Twice@example.com', 'evt-twice-b')]);
      expect([x.status, y.status]).toEqual([202, 202]);
      expect(await approvalsOf(id)).toEqual([
        expect.objectContaining({ approver_email: 'twice@example.com', status: 'superseded' }),
        expect.objectContaining({ approver_email: FALLBACK, status: 'pending' }),
      ]);
      const links = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM leaver_event_orders WHERE order_id = $1 AND outcome = 'superseded'`, [id]);
      expect(links.rows[0]!.n).toBe(1);
    });

    test('SCIM deactivation of an approver supersedes their approvals too', async () => {
      const scim = await scimClient(t, 'okta');
      const created = await scim.post('/Users', userBody('scimboss@example.com'));
      expect(created.status).toBe(201);
      const id = await order('gina@example.com', 'Approved seat');
      expect((await approvalsOf(id))[0]).toMatchObject({ approver_email: 'scimboss@example.com', status: 'pending' });
      const res = await scim.patch(`/Users/${created.body.id}`, [{ op: 'replace', path: 'active', value: false }]);
      expect(res.status).toBe(200);
      expect(await approvalsOf(id)).toEqual([
        expect.objectContaining({ approver_email: 'scimboss@example.com', status: 'superseded', decided_by: 'scim:token:okta' }),
        expect.objectContaining({ approver_email: 'bigboss@example.com', status: 'pending' }),
      ]);
    });
  });
});
