/**
 * Delegation windows: an approver (or an admin for them) names a deputy for a window; approvals routed to the
 * approver in the window go to the deputy, the approver copied; the deputy decides as themselves, on behalf of the
 * approver; overlapping windows are refused with 422 (also when created at the same moment); a deputy who is the
 * requester, a delegation back to the approver, and longer cycles are refused or resolved; revoking ends a window.
 */
import type { RequesterDirectory } from '../../server/domain/identity/requester-directory';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { mintTestToken } from '../support/orders';

/** An approver token's name for an email (token names hold no '@'). */
const tokenName = (email: string) => `approver-${email.replace('@', '_')}`;

const DAY = 86_400_000;
const inDays = (n: number) => new Date(Date.now() + n * DAY).toISOString();

const ANNA = 'anna@example.com';
const DORA = 'dora@example.com';
const ELI = 'eli@example.com';

describe(`approval delegation windows (${testEngine})`, () => {
  let t: TestApp;
  let writer: string;
  const tokens = new Map<string, string>();
  const MANAGERS: Record<string, string> = {
    'r1@example.com': ANNA,
    'r2@example.com': ANNA,
    'r3@example.com': ANNA,
    'rita@example.com': 'gus@example.com',
    'cy@example.com': 'pia@example.com',
    'ch@example.com': 'hal@example.com',
  };
  const directory: RequesterDirectory = { lookup: async () => undefined, managerOf: async (e) => MANAGERS[e] };

  const approver = async (email: string) => {
    const have = tokens.get(email);
    if (have) return { Authorization: `Bearer ${have}` };
    const res = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: tokenName(email), scopes: ['admin:read'], role: 'approver', approver_email: email });
    expect(res.status).toBe(201);
    tokens.set(email, res.body.token as string);
    return { Authorization: `Bearer ${res.body.token as string}` };
  };
  const delegate = async (as: Record<string, string>, body: Record<string, unknown>) => t.http().post('/approvals/delegations').set(as).send(body);
  const order = async (user: string, type = 'Delegated seat') => {
    const res = await t.http().post('/orders').set({ Authorization: `Bearer ${writer}` }).send({ asset_type_name: type, user_email: user, user_name: 'x' });
    expect(res.status).toBe(201);
    return res.body.id as number;
  };
  const rows = async (orderId: number) =>
    (
      await t.db.query<{ id: string; approver_email: string; on_behalf_of: string | null; delegation_id: string | null; status: string; decided_by: string | null }>(
        'SELECT id, approver_email, on_behalf_of, delegation_id, status, decided_by FROM approvals WHERE order_id = $1 ORDER BY id',
        [orderId],
      )
    ).rows.map((r) => ({ ...r, id: Number(r.id), delegation_id: r.delegation_id === null ? null : Number(r.delegation_id) }));
  const createAudit = async (approvalId: number) =>
    (await t.db.query<{ diff: { after: Record<string, unknown> } }>(`SELECT diff FROM audit_log WHERE entity = 'approval' AND action = 'create' AND entity_id = $1`, [String(approvalId)])).rows[0]!.diff.after;

  beforeAll(async () => {
    t = await createTestApp({}, { requesterDirectory: directory });
    writer = await mintTestToken(t.db, 'writer', ['orders:write']);
    for (const body of [
      { name: 'Delegated seat' },
      { name: 'Delegated quorum', approval: { quorum: 2, approvers: ['q1@example.com', 'q2@example.com', 'q3@example.com'] } },
    ]) {
      expect((await t.http().post('/admin/asset-types').set(t.admin).send({ assignment_model: 'personal', requires_approval: true, ...body })).status).toBe(201);
    }
  });
  afterAll(async () => {
    await t.close();
  });

  describe('creating a window', () => {
    test.each([
      ['a deputy equal to the approver', { deputy_email: 'Anna@example.com', ends_at: inDays(3) }, '/body/deputy_email'],
      ['a window that ends before it starts', { deputy_email: DORA, starts_at: inDays(5), ends_at: inDays(4) }, '/body/ends_at'],
      ['a window in the past', { deputy_email: DORA, starts_at: inDays(-5), ends_at: inDays(-1) }, '/body/ends_at'],
      ['a window longer than 366 days', { deputy_email: DORA, ends_at: inDays(400) }, '/body/ends_at'],
    ])('%s is a 422 naming the field', async (_what, body, path) => {
      const res = await delegate(await approver(ANNA), body);
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path }] });
    });

    test('an approver token only for itself; an admin for anyone, naming them', async () => {
      const other = await delegate(await approver(ANNA), { approver_email: ELI, deputy_email: DORA, ends_at: inDays(2) });
      expect(other.status).toBe(403);
      expect(other.body.detail).toBe(`this token manages only the delegations of ${ANNA}, not ${ELI}`);
      const unnamed = await delegate(t.admin, { deputy_email: DORA, ends_at: inDays(2) });
      expect(unnamed.status).toBe(422);
      expect(unnamed.body.errors).toEqual([{ path: '/body/approver_email', message: expect.any(String) }]);
      const helpdesk = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'desk', scopes: ['admin:read'], role: 'helpdesk' });
      const refused = await delegate({ Authorization: `Bearer ${helpdesk.body.token as string}` }, { approver_email: ANNA, deputy_email: DORA, ends_at: inDays(2) });
      expect(refused.status).toBe(403);
      expect(await t.db.query('SELECT 1 FROM approval_delegations')).toMatchObject({ rows: [] });
    });
  });

  describe('a window in force', () => {
    let annaToDora: number;

    beforeAll(async () => {
      const res = await delegate(await approver(ANNA), { deputy_email: 'Dora@Example.com', ends_at: inDays(7), reason: 'holiday' });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({
        id: expect.any(Number),
        approver_email: ANNA,
        deputy_email: DORA,
        starts_at: expect.any(String),
        ends_at: expect.any(String),
        reason: 'holiday',
        active: true,
        created_by: `approver:token:${tokenName(ANNA)}`,
        created_at: expect.any(String),
        revoked_at: null,
        revoked_by: null,
      });
      annaToDora = res.body.id as number;
      const audit = await t.db.query<{ triggered_by: string }>(`SELECT triggered_by FROM audit_log WHERE entity = 'approval_delegation' AND action = 'create' AND entity_id = $1`, [String(annaToDora)]);
      expect(audit.rows).toEqual([{ triggered_by: `approver:token:${tokenName(ANNA)}` }]);
    });

    test('an approval routed to the approver goes to the deputy, on behalf of the approver, who is copied', async () => {
      const id = await order('r1@example.com');
      const [a] = await rows(id);
      expect(a).toMatchObject({ approver_email: DORA, on_behalf_of: ANNA, delegation_id: annaToDora, status: 'pending' });
      expect(await createAudit(a!.id)).toMatchObject({
        approver_email: DORA,
        on_behalf_of: ANNA,
        delegation_chain: [{ delegation_id: annaToDora, from: ANNA, to: DORA }],
        cc: [ANNA],
      });
      const listed = await t.http().get('/admin/approvals').query({ order_id: id }).set(t.admin);
      expect(listed.body.items).toEqual([expect.objectContaining({ approver_email: DORA, on_behalf_of: ANNA, delegation_id: annaToDora })]);

      // Someone else may not decide it; the deputy decides as themselves, recorded as deciding for the approver.
      expect((await t.http().post(`/orders/${id}/approve`).set(await approver(ELI)).send({})).status).toBe(403);
      const res = await t.http().post(`/orders/${id}/approve`).set(await approver(DORA)).send({ reason: 'standing in' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        order_status: 'processing',
        approval: { approver_email: DORA, on_behalf_of: ANNA, status: 'approved', decided_by: `${DORA} (approver:token:${tokenName(DORA)}) on behalf of ${ANNA}` },
      });
      expect(res.body.quorum.decisions).toEqual([expect.objectContaining({ approver_email: DORA, on_behalf_of: ANNA, decision: 'approved' })]);
    });

    test('the approver, back early, may still decide what was delegated', async () => {
      const id = await order('r2@example.com');
      const res = await t.http().post(`/orders/${id}/decline`).set(await approver(ANNA)).send({});
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ order_status: 'cancelled', approval: { approver_email: DORA, on_behalf_of: ANNA, decided_by: `${ANNA} (approver:token:${tokenName(ANNA)})` } });
    });

    test('an overlapping window of the same approver is 422 DELEGATION_OVERLAP naming the delegation; an adjacent one is fine', async () => {
      const first = (await t.http().get('/approvals/delegations').query({ approver: ANNA }).set(t.admin)).body.items[0];
      const overlap = await delegate(await approver(ANNA), { deputy_email: ELI, starts_at: inDays(6), ends_at: inDays(9) });
      expect(overlap.status).toBe(422);
      expect(overlap.body).toMatchObject({ code: 'DELEGATION_OVERLAP', delegation_id: annaToDora, errors: [{ path: '/body/starts_at' }] });
      const adjacent = await delegate(t.admin, { approver_email: ANNA, deputy_email: ELI, starts_at: first.ends_at, ends_at: inDays(9) });
      expect(adjacent.status).toBe(201);
      expect(adjacent.body).toMatchObject({ approver_email: ANNA, deputy_email: ELI, created_by: 'admin:key' });
    });

    test('within a quorum the deputy takes the approver\'s place, unless they are in the round already (one vote each)', async () => {
      expect((await delegate(t.admin, { approver_email: 'q1@example.com', deputy_email: 'q9@example.com', ends_at: inDays(2) })).status).toBe(201);
      expect((await delegate(t.admin, { approver_email: 'q2@example.com', deputy_email: 'q3@example.com', ends_at: inDays(2) })).status).toBe(201);
      const id = await order('r3@example.com', 'Delegated quorum');
      const routed = await rows(id);
      expect(routed.map((r) => [r.approver_email, r.on_behalf_of])).toEqual([
        ['q9@example.com', 'q1@example.com'],
        ['q2@example.com', null],
        ['q3@example.com', null],
      ]);
      expect(await createAudit(routed[1]!.id)).toMatchObject({ delegation_skipped: { deputy: 'q3@example.com', why: 'already_an_approver' } });
    });
  });

  describe('refused or resolved', () => {
    test('a deputy who is the requester does not get their own order: it stays with the approver, audited', async () => {
      expect((await delegate(t.admin, { approver_email: 'gus@example.com', deputy_email: 'rita@example.com', ends_at: inDays(2) })).status).toBe(201);
      const id = await order('rita@example.com');
      const [a] = await rows(id);
      expect(a).toMatchObject({ approver_email: 'gus@example.com', on_behalf_of: null, delegation_id: null });
      expect(await createAudit(a!.id)).toMatchObject({ delegation_skipped: { deputy: 'rita@example.com', why: 'own_order' } });
    });

    test('a delegation back to the approver in an overlapping window is 422; a longer cycle stops before it closes', async () => {
      expect((await delegate(t.admin, { approver_email: 'pia@example.com', deputy_email: 'quin@example.com', ends_at: inDays(3) })).status).toBe(201);
      const back = await delegate(t.admin, { approver_email: 'quin@example.com', deputy_email: 'pia@example.com', starts_at: inDays(1), ends_at: inDays(5) });
      expect(back.status).toBe(422);
      expect(back.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: '/body/deputy_email' }] });
      // pia -> quin -> sol -> pia: followed as far as sol, who would hand it back to pia.
      expect((await delegate(t.admin, { approver_email: 'quin@example.com', deputy_email: 'sol@example.com', ends_at: inDays(3) })).status).toBe(201);
      expect((await delegate(t.admin, { approver_email: 'sol@example.com', deputy_email: 'pia@example.com', ends_at: inDays(3) })).status).toBe(201);
      const id = await order('cy@example.com');
      const [a] = await rows(id);
      expect(a).toMatchObject({ approver_email: 'sol@example.com', on_behalf_of: 'pia@example.com' });
      expect(await createAudit(a!.id)).toMatchObject({
        cc: ['pia@example.com', 'quin@example.com'],
        delegation_skipped: { deputy: 'pia@example.com', why: 'cycle' },
      });
    });

    test('overlapping windows created at the same moment: exactly one is stored, the others are 422', async () => {
      const bodies = [1, 2, 3, 4].map((n) => ({ approver_email: 'busy@example.com', deputy_email: `stand-in-${n}@example.com`, starts_at: inDays(n / 10), ends_at: inDays(2 + n) }));
      const answers = await Promise.all(bodies.map((b) => delegate(t.admin, b)));
      expect(answers.map((a) => a.status).sort()).toEqual([201, 422, 422, 422]);
      for (const a of answers.filter((x) => x.status === 422)) expect(a.body.code).toBe('DELEGATION_OVERLAP');
      const stored = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM approval_delegations WHERE approver_email = 'busy@example.com'`);
      expect(stored.rows[0]!.n).toBe(1);
    });
  });

  describe('listing and revoking', () => {
    test('revoked: later approvals go to the approver again; a second revoke is 409; only the approver or an admin revokes', async () => {
      const created = await delegate(await approver('hal@example.com'), { deputy_email: 'ida@example.com', ends_at: inDays(4) });
      expect(created.status).toBe(201);
      const id = created.body.id as number;
      expect((await rows(await order('ch@example.com')))[0]).toMatchObject({ approver_email: 'ida@example.com', on_behalf_of: 'hal@example.com' });

      expect((await t.http().delete(`/approvals/delegations/${id}`).set(await approver('ida@example.com'))).status).toBe(403);
      expect((await t.http().delete('/approvals/delegations/999999').set(t.admin)).status).toBe(404);
      const revoked = await t.http().delete(`/approvals/delegations/${id}`).set(await approver('hal@example.com'));
      expect(revoked.status).toBe(204);
      expect((await t.http().delete(`/approvals/delegations/${id}`).set(t.admin)).status).toBe(409);
      expect((await rows(await order('ch@example.com')))[0]).toMatchObject({ approver_email: 'hal@example.com', on_behalf_of: null });

      const audit = await t.db.query<{ action: string; triggered_by: string }>(
        `SELECT action, triggered_by FROM audit_log WHERE entity = 'approval_delegation' AND entity_id = $1 ORDER BY id`,
        [String(id)],
      );
      expect(audit.rows).toEqual([
        { action: 'create', triggered_by: `approver:token:${tokenName('hal@example.com')}` },
        { action: 'revoke', triggered_by: `approver:token:${tokenName('hal@example.com')}` },
      ]);

      const mine = await t.http().get('/approvals/delegations').set(await approver('hal@example.com'));
      expect(mine.status).toBe(200);
      expect(mine.body.items).toEqual([expect.objectContaining({ id, active: false, revoked_by: `approver:token:${tokenName('hal@example.com')}` })]);
      const active = await t.http().get('/approvals/delegations').query({ approver: 'hal@example.com', active: true }).set(t.admin);
      expect(active.body).toMatchObject({ total: 0, items: [] });
      // An approver token sees only what it gives or receives; an admin sees all.
      const all = await t.http().get('/approvals/delegations').query({ limit: 100 }).set(t.admin);
      expect(all.body.total).toBeGreaterThan(mine.body.total);
    });
  });
});
