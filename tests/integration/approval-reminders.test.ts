/**
 * The approval clock (server/domain/approvals/reminders.ts): a pending approval is reminded, escalated to its
 * approver's manager (or the fallback approver) and expires, each step a durable pg-boss job with `startAfter` that
 * the real worker runs once it is due. Tests make a job due by moving its `start_after` to now (the only test hook:
 * the worker, the job and the step are the production ones), and never wait for hours.
 */
import { QueueName } from '../../adapter';
import { registerApprovalClockWorkers, runApprovalTimer, type ApprovalTimerJob } from '../../server/domain/approvals/reminders';
import type { RequesterDirectory } from '../../server/domain/identity/requester-directory';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { createMemoryLogger } from '../support/memory-logger';
import { mintTestToken } from '../support/orders';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { createOutboxWorker, type OutboxWorker } from '../../server/domain/notifications';

jest.setTimeout(60_000);

const JANE = 'jane@example.com';
const BOSS = 'boss@example.com';
const CEO = 'ceo@example.com';
const SOLO = 'solo@example.com';
const LONE_BOSS = 'lone-boss@example.com';
const FALLBACK = 'it-approvals@example.com';
const [ANN, BOB, CAT] = ['ann@example.com', 'bob@example.com', 'cat@example.com'];
const HOUR = 3_600_000;

const MANAGERS: Record<string, string> = { [JANE]: BOSS, [BOSS]: CEO, [SOLO]: LONE_BOSS };

interface ApprovalDb {
  id: number;
  approver_email: string;
  status: string;
  reason: string | null;
  routed_from_approval_id: number | null;
  reminders_sent: number;
  last_reminded_at: Date | null;
  clock_step: string;
  created_at: Date;
}

interface TimerJobRow {
  id: string;
  state: string;
  start_after: Date;
  data: ApprovalTimerJob;
}

describe(`approval reminders, escalation and expiry (${testEngine})`, () => {
  let t: TestApp;
  let writer: string;
  let smtp: TestSmtpServer;
  let outbox: OutboxWorker;
  const directory: RequesterDirectory = { lookup: async () => undefined, managerOf: async (email) => MANAGERS[email] };
  const deps = () => ({ db: t.db, queue: t.queue, logger: createMemoryLogger().logger, directory });

  async function order(type: string, user: string): Promise<number> {
    const res = await t.http().post('/orders').set({ Authorization: `Bearer ${writer}` }).send({ asset_type_name: type, user_email: user, user_name: user.split('@')[0] });
    expect({ status: res.status, body: res.status === 201 ? null : res.body }).toEqual({ status: 201, body: null });
    expect(res.body.status).toBe('pending_approval');
    return res.body.id as number;
  }

  async function approvals(orderId: number): Promise<ApprovalDb[]> {
    const { rows } = await t.db.query<ApprovalDb>(
      `SELECT id, approver_email, status, reason, routed_from_approval_id, reminders_sent, last_reminded_at, clock_step, created_at
         FROM approvals WHERE order_id = $1 ORDER BY id`,
      [orderId],
    );
    return rows.map((r) => ({
      ...r,
      id: Number(r.id),
      routed_from_approval_id: r.routed_from_approval_id === null ? null : Number(r.routed_from_approval_id),
      reminders_sent: Number(r.reminders_sent),
      last_reminded_at: r.last_reminded_at === null ? null : new Date(r.last_reminded_at),
      created_at: new Date(r.created_at),
    }));
  }

  async function timerJobs(approvalId: number): Promise<TimerJobRow[]> {
    const { rows } = await t.db.query<TimerJobRow>(
      `SELECT id, state, start_after, data FROM pgboss.job WHERE name = $1 AND (data->>'approvalId')::bigint = $2 ORDER BY created_on, start_after`,
      [QueueName.APPROVAL_TIMER, approvalId],
    );
    return rows.map((r) => ({ ...r, start_after: new Date(r.start_after) }));
  }

  /** The job of the step, still waiting; its `start_after` is checked by the caller. */
  async function waitingJob(approvalId: number, step: string): Promise<TimerJobRow> {
    const jobs = (await timerJobs(approvalId)).filter((j) => j.data.step === step && j.state === 'created');
    expect(jobs).toHaveLength(1);
    return jobs[0]!;
  }

  /** Makes the step's job due now: the worker then takes it as it would hours later. */
  async function makeDue(approvalId: number, step: string): Promise<void> {
    const moved = await t.db.query(
      `UPDATE pgboss.job SET start_after = now() WHERE name = $1 AND state = 'created' AND (data->>'approvalId')::bigint = $2 AND data->>'step' = $3`,
      [QueueName.APPROVAL_TIMER, approvalId, step],
    );
    expect(moved.rowCount).toBe(1);
    t.queue.wake(QueueName.APPROVAL_TIMER);
  }

  async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await read();
      if (ok(v)) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The mails queued with `template` (to `to`, when given), oldest first: outbox rows. */
  async function mails(template: string, to?: string): Promise<{ id: number; to: string[]; cc: string[]; data: Record<string, unknown>; triggered_by: string }[]> {
    const { rows } = await t.db.query<{ id: number; to: string[]; cc: string[]; data: Record<string, unknown>; triggered_by: string }>(
      `SELECT id, recipients_to AS to, recipients_cc AS cc, data, triggered_by FROM outbox WHERE channel = 'mail' AND template = $1 ORDER BY id`,
      [template],
    );
    return rows.map((r) => ({ ...r, id: Number(r.id) })).filter((m) => to === undefined || m.to.includes(to));
  }

  async function auditRows(entity: string, entityId: number, action: string): Promise<{ triggered_by: string; diff: { after: Record<string, unknown> | null } }[]> {
    const { rows } = await t.db.query<{ triggered_by: string; diff: { after: Record<string, unknown> | null } }>(
      'SELECT triggered_by, diff FROM audit_log WHERE entity = $1 AND entity_id = $2 AND action = $3 ORDER BY id',
      [entity, String(entityId), action],
    );
    return rows;
  }

  const near = (actual: Date, expected: Date, slackMs = 5_000) => expect(Math.abs(actual.getTime() - expected.getTime())).toBeLessThan(slackMs);

  beforeAll(async () => {
    t = await createTestApp({}, { requesterDirectory: directory });
    writer = await mintTestToken(t.db, 'writer', ['orders:write']);
    for (const [name, extra] of [
      ['Seat', { fallback_approver: FALLBACK }],
      ['Seat without fallback', {}],
      ['Two of three', { approval: { quorum: 2, approvers: [ANN, BOB, CAT] } }],
    ] as const) {
      const res = await t.http().post('/admin/asset-types').set(t.admin).send({ name, assignment_model: 'personal', requires_approval: true, ...extra });
      expect({ status: res.status, body: res.status === 201 ? null : res.body }).toEqual({ status: 201, body: null });
    }
    // Distinct delays, so each job's start_after shows which setting it was read from.
    const set = await t.http().put('/admin/settings/approvals').set(t.admin).send({ remind_after_hours: 2, escalate_after_hours: 3, expire_after_hours: 5 });
    expect(set.status).toBe(200);
    await registerApprovalClockWorkers(deps(), { pollingIntervalSeconds: 0.5 });
    smtp = await startSmtpServer({ tls: 'starttls', auth: { user: 'provisio', pass: 'reminders-pass' } });
    expect((await t.http().put('/admin/settings/smtp').set(t.admin).send(smtp.settings())).status).toBe(200);
    const publicUrl = 'https://provisio.example.com';
    outbox = createOutboxWorker({ db: t.db, queue: t.queue, logger: createMemoryLogger().logger, publicUrl, linkUrl: (id) => `${publicUrl}/approvals/links/${id}`, pollingIntervalSeconds: 0.5 });
    await outbox.register();
  });
  afterAll(async () => {
    // No clock job is due any more (the tests' jobs wait hours ahead); the queue stops the clock worker.
    await outbox?.stop();
    // A job still being worked would finish on a dropped database.
    await until('the workers to be idle', () => t.db.query(`SELECT 1 FROM pgboss.job WHERE state = 'active' AND name IN ($1, $2)`, [QueueName.APPROVAL_TIMER, QueueName.OUTBOX_SEND]), (r) => r.rowCount === 0, 30_000);
    await smtp?.stop();
    await t?.close();
  });

  test('reminded, escalated to the manager, then expired: each at its time, the order cancelled and the requester told', async () => {
    const orderId = await order('Seat', JANE);
    const [a] = await approvals(orderId);
    expect(a).toMatchObject({ approver_email: BOSS, status: 'pending', reminders_sent: 0, last_reminded_at: null, clock_step: 'remind' });
    near((await waitingJob(a!.id, 'remind')).start_after, new Date(a!.created_at.getTime() + 2 * HOUR));

    await makeDue(a!.id, 'remind');
    const reminded = await until('the reminder', () => approvals(orderId), (r) => r[0]!.reminders_sent === 1);
    expect(reminded).toHaveLength(1);
    expect(reminded[0]).toMatchObject({ status: 'pending', clock_step: 'escalate' });
    expect(reminded[0]!.last_reminded_at).not.toBeNull();
    near((await waitingJob(a!.id, 'escalate')).start_after, new Date(reminded[0]!.last_reminded_at!.getTime() + 3 * HOUR));
    const reminders = await mails('approval_reminder', BOSS);
    expect(reminders).toHaveLength(1);
    expect(reminders[0]!.data).toMatchObject({ order_id: orderId, approval_id: a!.id, asset_type_name: 'Seat', requester_email: JANE, reminders_sent: 1 });
    expect(reminders[0]!.data['links']).toEqual({ approve: expect.any(String), decline: expect.any(String) });
    // Delivered for real, with its Approve and Decline buttons.
    const delivered = await smtp.waitForMail((m) => m.envelope.to.includes(BOSS) && /^Reminder:/.test(m.subject ?? ''));
    expect(delivered.subject).toContain(`(order #${orderId})`);
    expect(delivered.text).toMatch(/Approve: https:\/\/provisio\.example\.com\/approvals\/links\//);
    expect(await auditRows('approval', a!.id, 'reminded')).toEqual([expect.objectContaining({ triggered_by: 'system:approval-reminder' })]);

    await makeDue(a!.id, 'escalate');
    const escalated = await until('the escalation', () => approvals(orderId), (r) => r.length === 2);
    expect(escalated[0]).toMatchObject({ id: a!.id, status: 'superseded' });
    expect(escalated[0]!.reason).toMatch(/^escalated: /);
    const b = escalated[1]!;
    expect(b).toMatchObject({ approver_email: CEO, status: 'pending', reason: 'escalated', routed_from_approval_id: a!.id, clock_step: 'expire', reminders_sent: 0 });
    // The escalated approval's clock is its expiry alone: no reminder of its own.
    expect((await timerJobs(b.id)).map((j) => j.data.step)).toEqual(['expire']);
    near((await waitingJob(b.id, 'expire')).start_after, new Date(b.created_at.getTime() + 5 * HOUR));
    expect(await auditRows('approval', a!.id, 'superseded')).toEqual([expect.objectContaining({ triggered_by: 'system:approval-escalation' })]);
    expect((await auditRows('approval', b.id, 'create'))[0]!.diff.after).toMatchObject({ escalated_from: a!.id, escalated_to: 'manager', approver_email: CEO });
    expect(await mails('approval_request', CEO)).toEqual([expect.objectContaining({ data: expect.objectContaining({ order_id: orderId, approval_id: b.id }) })]);
    // The old approver no longer decides it: only the escalated approver may.
    expect((await t.http().post(`/orders/${orderId}/approve`).set(t.admin).send({ approver_email: BOSS })).status).toBe(403);

    await makeDue(b.id, 'expire');
    const expired = await until('the expiry', () => approvals(orderId), (r) => r[1]!.status === 'expired');
    expect(expired[1]!.status).toBe('expired');
    const o = await t.http().get(`/orders/${orderId}`).set(t.admin);
    expect(o.body).toMatchObject({ status: 'cancelled', error_message: 'approval expired' });
    expect(await auditRows('approval', b.id, 'expired')).toEqual([expect.objectContaining({ triggered_by: 'system:approval-expiry' })]);
    const transitions = await auditRows('order', orderId, 'transition');
    expect(transitions.at(-1)).toMatchObject({ triggered_by: 'system:approval-expiry', diff: { after: expect.objectContaining({ status: 'cancelled' }) } });
    const told = (await mails('decision', JANE)).filter((m) => m.data['order_id'] === orderId);
    expect(told).toHaveLength(1);
    expect(told[0]!.data).toMatchObject({ decision: 'expired' });
    // Nothing is left waiting: the chain ends with the expiry.
    expect((await timerJobs(b.id)).filter((j) => j.state === 'created')).toEqual([]);
  });

  test('escalation goes to the fallback approver when the approver has no manager', async () => {
    const orderId = await order('Seat', SOLO);
    const [a] = await approvals(orderId);
    expect(a!.approver_email).toBe(LONE_BOSS);
    await makeDue(a!.id, 'remind');
    await until('the reminder', () => approvals(orderId), (r) => r[0]!.clock_step === 'escalate');
    await makeDue(a!.id, 'escalate');
    const rows = await until('the escalation', () => approvals(orderId), (r) => r.length === 2);
    expect(rows[1]).toMatchObject({ approver_email: FALLBACK, reason: 'escalated', routed_from_approval_id: a!.id });
    expect((await auditRows('approval', rows[1]!.id, 'create'))[0]!.diff.after).toMatchObject({ escalated_to: 'fallback_approver' });
  });

  test('with nobody to escalate to, the approval stays with its approver and its expiry is scheduled', async () => {
    const orderId = await order('Seat without fallback', SOLO);
    const [a] = await approvals(orderId);
    await makeDue(a!.id, 'remind');
    await until('the reminder', () => approvals(orderId), (r) => r[0]!.clock_step === 'escalate');
    await makeDue(a!.id, 'escalate');
    const rows = await until('the unrouted escalation', () => approvals(orderId), (r) => r[0]!.clock_step === 'expire');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ approver_email: LONE_BOSS, status: 'pending' });
    expect(await auditRows('approval', a!.id, 'escalation_unrouted')).toHaveLength(1);
    await waitingJob(a!.id, 'expire');
  });

  test('a decision in between makes the waiting job a no-op', async () => {
    const orderId = await order('Seat', JANE);
    const [a] = await approvals(orderId);
    await makeDue(a!.id, 'remind');
    await until('the reminder', () => approvals(orderId), (r) => r[0]!.clock_step === 'escalate');
    const approved = await t.http().post(`/orders/${orderId}/approve`).set(t.admin).send({ approver_email: BOSS });
    expect(approved.status).toBe(200);
    const before = await approvals(orderId);
    // The escalation comes due after the decision: the worker takes it and changes nothing.
    await makeDue(a!.id, 'escalate');
    await until('the escalate job to complete', () => timerJobs(a!.id), (jobs) => jobs.some((j) => j.data.step === 'escalate' && j.state === 'completed'));
    expect(await approvals(orderId)).toEqual(before);
    expect(await auditRows('approval', a!.id, 'superseded')).toEqual([]);
    expect(await runApprovalTimer(deps(), { approvalId: a!.id, step: 'escalate' })).toBe('skipped');
  });

  test('a job delivered twice acts once', async () => {
    const orderId = await order('Seat', JANE);
    const [a] = await approvals(orderId);
    const job: ApprovalTimerJob = { approvalId: a!.id, step: 'remind' };
    const remindersBefore = (await mails('approval_reminder', BOSS)).length;
    const [first, second] = [await runApprovalTimer(deps(), job), await runApprovalTimer(deps(), job)];
    expect([first, second]).toEqual(['reminded', 'skipped']);
    const [row] = await approvals(orderId);
    expect(row).toMatchObject({ reminders_sent: 1, clock_step: 'escalate' });
    expect(await mails('approval_reminder', BOSS)).toHaveLength(remindersBefore + 1);
    expect((await timerJobs(a!.id)).filter((j) => j.data.step === 'escalate')).toHaveLength(1);

    const escalate: ApprovalTimerJob = { approvalId: a!.id, step: 'escalate' };
    expect([await runApprovalTimer(deps(), escalate), await runApprovalTimer(deps(), escalate)]).toEqual(['escalated', 'skipped']);
    const rows = await approvals(orderId);
    expect(rows).toHaveLength(2);
    const expire: ApprovalTimerJob = { approvalId: rows[1]!.id, step: 'expire' };
    expect([await runApprovalTimer(deps(), expire), await runApprovalTimer(deps(), expire)]).toEqual(['expired', 'skipped']);
    expect((await mails('decision', JANE)).filter((m) => m.data['order_id'] === orderId)).toHaveLength(1);
    // A job for a step the approval has left (the remind job again, now that it expired) does nothing either.
    expect(await runApprovalTimer(deps(), job)).toBe('skipped');
  });

  test('an extension whose approval expires is dropped; the order keeps its end and the requester is told', async () => {
    const orderId = await order('Seat', JANE);
    expect((await t.http().post(`/orders/${orderId}/approve`).set(t.admin).send({ approver_email: BOSS })).status).toBe(200);
    const end = new Date(Date.now() + 30 * 86_400_000).toISOString();
    const asked = await t.http().post(`/orders/${orderId}/extend`).set(t.admin).send({ requested_until: end });
    expect(asked.status).toBe(202);
    const ext = (await approvals(orderId)).at(-1)!;
    expect(ext).toMatchObject({ approver_email: BOSS, status: 'pending', clock_step: 'remind' });
    expect(await runApprovalTimer(deps(), { approvalId: ext.id, step: 'remind' })).toBe('reminded');
    expect(await runApprovalTimer(deps(), { approvalId: ext.id, step: 'escalate' })).toBe('escalated');
    const escalated = (await approvals(orderId)).at(-1)!;
    expect(escalated).toMatchObject({ approver_email: CEO, reason: 'escalated', clock_step: 'expire' });
    expect(await runApprovalTimer(deps(), { approvalId: escalated.id, step: 'expire' })).toBe('expired');
    const o = (await t.http().get(`/orders/${orderId}`).set(t.admin)).body;
    expect(o.extension_requested_until).toBeNull();
    expect(o.status).not.toBe('cancelled');
    expect(await auditRows('order', orderId, 'extension_expired')).toEqual([expect.objectContaining({ triggered_by: 'system:approval-expiry' })]);
    const told = (await mails('decision', JANE)).filter((m) => m.data['order_id'] === orderId && m.data['decision'] === 'expired');
    expect(told).toHaveLength(1);
    expect(told[0]!.data).toMatchObject({ kind: 'extension' });
  });

  test('one of a quorum expiring drops out while the quorum can still be reached; the order ends once it cannot', async () => {
    const orderId = await order('Two of three', JANE);
    const [ann, bob, cat] = await approvals(orderId);
    expect([ann, bob, cat].map((a) => a!.approver_email)).toEqual([ANN, BOB, CAT]);
    // Straight to their expiry (as if reminded and escalated to nobody): each clock is its own.
    for (const a of [ann, bob]) await t.db.query(`UPDATE approvals SET clock_step = 'expire' WHERE id = $1`, [a!.id]);
    expect(await runApprovalTimer(deps(), { approvalId: ann!.id, step: 'expire' })).toBe('expired');
    expect((await approvals(orderId)).map((a) => a.status)).toEqual(['expired', 'pending', 'pending']);
    expect((await t.http().get(`/orders/${orderId}`).set(t.admin)).body.status).toBe('pending_approval');
    expect(await runApprovalTimer(deps(), { approvalId: bob!.id, step: 'expire' })).toBe('expired');
    expect((await approvals(orderId)).map((a) => a.status)).toEqual(['expired', 'expired', 'withdrawn']);
    expect((await t.http().get(`/orders/${orderId}`).set(t.admin)).body).toMatchObject({ status: 'cancelled', error_message: 'approval expired' });
    expect((await mails('decision', JANE)).filter((m) => m.data['order_id'] === orderId)).toHaveLength(1);
  });

  test('a settings change applies to approvals scheduled after it', async () => {
    const set = await t.http().put('/admin/settings/approvals').set(t.admin).send({ remind_after_hours: 7 });
    expect(set.status).toBe(200);
    try {
      const orderId = await order('Seat', JANE);
      const [a] = await approvals(orderId);
      near((await waitingJob(a!.id, 'remind')).start_after, new Date(a!.created_at.getTime() + 7 * HOUR));
    } finally {
      await t.http().put('/admin/settings/approvals').set(t.admin).send({ remind_after_hours: 2 });
    }
  });
});
