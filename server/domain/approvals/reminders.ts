/**
 * The approval clock: nothing waits for a decision forever. A pending approval is
 * 1. reminded `remind_after_hours` after it was routed: its approver is mailed a reminder with fresh signed links
 *    (`reminders_sent`, `last_reminded_at`);
 * 2. escalated `escalate_after_hours` after the reminder: superseded (reason `escalated: …`) and re-routed to its
 *    approver's manager from the directory, else the asset type's fallback approver, never the requester, the same
 *    approver, anyone barred by separation of duties or anyone already holding a vote on the order. The new approval
 *    (reason `escalated`, `routed_from_approval_id` the old one) is announced like any other (links, mail), but its
 *    clock is the expiry alone: the escalation was already the last call, a second reminder chain would only put
 *    the end off. With nobody to escalate to, the approval stays with its approver and its expiry is scheduled;
 * 3. expired `expire_after_hours` after the escalation: `expired`; the order is cancelled (`approval expired`) or an
 *    extension dropped, the round's other pending approvals withdrawn, the requester told. One of a quorum that can
 *    still be reached without it only drops out: the others' clocks run on.
 *
 * Time is kept by pg-boss jobs on `approval.timer` with `startAfter`, each sent in the transaction of the step before
 * (the first with the approval itself, from announce.ts), so the clock survives restarts and runs in whichever process
 * works the queue. Each job names its approval and step, and acts only while the approval is pending at that step
 * (`approvals.clock_step`, read under the row lock, after the order's lock, the order in which a decision takes them);
 * it then moves the step on. A decision in between, or a job delivered twice, therefore changes nothing.
 *
 * The delays are read from the `approvals` settings when each step is scheduled: a change applies to every step
 * scheduled after it (the next reminder of an approval routed later, the escalation of one reminded later, …),
 * never to a job already waiting.
 */
import { QueueName, writeAudit, type Database, type JobQueue, type Logger, type Queryable } from '../../../adapter';
import type { RequesterDirectory } from '../identity/requester-directory';
import { enqueueNotice } from '../notices';
import { OrderStatus, transitionOrder } from '../orders/order-status';
import { lockLifecycleOrder, setOrderWindow } from '../orders/store';
import { settleTakeBacks } from '../orders/take-backs';
import { notifyDecision } from './decision-notice';
import { approvalMailData } from './approval-mail';
import { issueApprovalLinks } from './links';
import { lockTimerApproval, markReminded, selectApprovalOrderId, type TimerApproval } from './reminder-store';
import {
  ESCALATED_REASON,
  hoursAfter,
  readApprovalClock,
  scheduleClockStep,
  type ApprovalClock,
  type ApprovalTimerJob,
} from './reminder-schedule';
import { auditShape, createApproval, managerOf } from './routing';
import { barredApprovers } from './separation';
import { closeApproval, countRound, lockPendingOfRound, selectApproval, selectRound, selectRoundHolders, selectRoutingPolicy } from './store';

export type { ClockStep } from './reminder-store';
export { APPROVAL_CLOCK_DEFAULTS, ESCALATED_REASON, readApprovalClock, scheduleApprovalReminders } from './reminder-schedule';
export type { ApprovalClock, ApprovalTimerJob } from './reminder-schedule';

/** Attribution of what the clock does. */
export const REMINDER_ACTOR = 'system:approval-reminder';
export const ESCALATION_ACTOR = 'system:approval-escalation';
export const APPROVAL_EXPIRY_ACTOR = 'system:approval-expiry';

/** What a timer job did (for the log and the tests). */
export type ApprovalTimerOutcome =
  | 'reminded'
  | 'escalated'
  | 'escalation_unrouted'
  | 'expired'
  | 'skipped';

export interface ApprovalClockDeps {
  db: Database;
  queue: JobQueue;
  logger?: Logger | undefined;
  /** Whom an escalation goes to (the approver's manager); none: the asset type's fallback approver. */
  directory?: RequesterDirectory | undefined;
}

/** True while the order still waits for what the approval decides (the order itself, or its extension). */
function stillWaiting(a: TimerApproval): boolean {
  return a.kind === 'extension' ? a.extension_requested_until !== null : a.order_status === OrderStatus.PENDING_APPROVAL;
}

/**
 * Runs one step of an approval's clock in one transaction: the order locked first, then the approval. Does nothing
 * (`skipped`) for an unknown approval, one no longer pending, one whose clock has moved past the job's step, or
 * one whose order no longer waits for it.
 */
export async function runApprovalTimer(deps: ApprovalClockDeps, job: ApprovalTimerJob): Promise<ApprovalTimerOutcome> {
  const approvalId = Number(job.approvalId);
  const orderId = await selectApprovalOrderId(deps.db, approvalId);
  if (orderId === undefined) return 'skipped';
  const outcome = await deps.db.transaction(async (tx): Promise<ApprovalTimerOutcome> => {
    await lockLifecycleOrder(tx, orderId);
    const a = await lockTimerApproval(tx, approvalId);
    if (!a || a.status !== 'pending' || a.clock_step !== job.step || !stillWaiting(a)) return 'skipped';
    const clock = await readApprovalClock(tx);
    switch (job.step) {
      case 'remind':
        return remind(deps, tx, a, clock);
      case 'escalate':
        return escalate(deps, tx, a, clock);
      case 'expire':
        return expire(deps, tx, a);
    }
  });
  deps.logger?.info(`approval clock: ${outcome}`, { approvalId, orderId, step: job.step });
  return outcome;
}

/** The reminder: mailed with fresh links (the request's data), counted, audited; the escalation scheduled. */
async function remind(deps: ApprovalClockDeps, tx: Queryable, a: TimerApproval, clock: ApprovalClock): Promise<ApprovalTimerOutcome> {
  const row = (await selectApproval(tx, a.id))!;
  const actor = { triggeredBy: REMINDER_ACTOR };
  const links = await issueApprovalLinks(tx, row, actor);
  const round = (await selectRound(tx, row.round_id))!;
  const count = round.mode === 'quorum' ? await countRound(tx, round.id) : undefined;
  const quorum = count ? { required: round.quorum, approvers: count.approved + count.declined + count.pending } : undefined;
  const counted = await markReminded(tx, a.id);
  const escalateAt = hoursAfter(counted.last_reminded_at, clock.escalate_after_hours);
  await enqueueNotice(
    tx,
    deps.queue,
    {
      template: 'approval_reminder',
      to: [a.approver_email],
      // The approver a deputy stands in for is copied, as on the request.
      ...(a.on_behalf_of ? { cc: [a.on_behalf_of] } : {}),
      data: { ...(await approvalMailData(tx, row, links, { quorum })), reminders_sent: counted.reminders_sent },
    },
    actor,
    { entity: 'approval', entityId: a.id },
  );
  await writeAudit(tx, {
    entity: 'approval',
    entityId: a.id,
    action: 'reminded',
    after: { approver_email: a.approver_email, reminders_sent: counted.reminders_sent, escalate_at: escalateAt.toISOString() },
    ...actor,
  });
  await scheduleClockStep(tx, deps.queue, a.id, 'escalate', escalateAt);
  return 'reminded';
}

/**
 * The escalation: to the manager of the person the approval is for (the approver, or the one a deputy stands in
 * for: escalating goes up their line, not the deputy's), else the type's fallback approver.
 */
async function escalate(deps: ApprovalClockDeps, tx: Queryable, a: TimerApproval, clock: ApprovalClock): Promise<ApprovalTimerOutcome> {
  const row = (await selectApproval(tx, a.id))!;
  const policy = await selectRoutingPolicy(tx, a.asset_type_id);
  const barred = barredApprovers(a.requester);
  const holders = new Set(await selectRoundHolders(tx, row.round_id));
  const owner = a.on_behalf_of ?? a.approver_email;
  const excluded = [...new Set([a.requester, a.approver_email, owner, ...barred.keys(), ...holders])];
  const manager = await managerOf(deps.directory, owner, excluded);
  const fallback = manager ? undefined : policy.fallbackApprover;
  const next = manager ?? (fallback && !excluded.includes(fallback) ? fallback : undefined);
  const why = `no decision since the reminder at ${(a.last_reminded_at ?? a.created_at).toISOString()}`;

  if (!next) {
    const expireAt = hoursAfter(new Date(), clock.expire_after_hours);
    await writeAudit(tx, {
      entity: 'approval',
      entityId: a.id,
      action: 'escalation_unrouted',
      after: {
        reason: `${why}; no manager in the directory and no fallback approver other than the requester, the approver or a holder of a vote`,
        approver_email: a.approver_email,
        expire_at: expireAt.toISOString(),
      },
      triggeredBy: ESCALATION_ACTOR,
    });
    await scheduleClockStep(tx, deps.queue, a.id, 'expire', expireAt);
    return 'escalation_unrouted';
  }

  const superseded = await closeApproval(tx, a.id, 'superseded', ESCALATION_ACTOR, `escalated: ${why}`);
  await writeAudit(tx, { entity: 'approval', entityId: a.id, action: 'superseded', before: auditShape(row), after: auditShape(superseded), triggeredBy: ESCALATION_ACTOR });
  const round = (await selectRound(tx, row.round_id))!;
  // createApproval audits and announces it; announcing starts its clock at the expiry (ESCALATED_REASON).
  await createApproval(
    tx,
    { queue: deps.queue },
    { orderId: a.order_id, round, approver: next, reason: ESCALATED_REASON, routedFrom: a.id, barred, holders },
    { triggeredBy: ESCALATION_ACTOR },
    { escalated_from: a.id, escalated_to: manager ? 'manager' : 'fallback_approver' },
  );
  return 'escalated';
}

/**
 * The expiry: the approval `expired`. A quorum that can still be reached without it goes on waiting for the others
 * (each has its own clock); otherwise (one approver, or too few left) what waited ends: the round's other pending
 * approvals withdrawn, the order cancelled (`approval expired`) or its extension dropped, the requester told.
 */
async function expire(deps: ApprovalClockDeps, tx: Queryable, a: TimerApproval): Promise<ApprovalTimerOutcome> {
  const row = (await selectApproval(tx, a.id))!;
  const actor = { triggeredBy: APPROVAL_EXPIRY_ACTOR };
  const why = `undecided since ${a.created_at.toISOString()}`;
  const expired = await closeApproval(tx, a.id, 'expired', APPROVAL_EXPIRY_ACTOR, `expired: ${why}`);
  await writeAudit(tx, { entity: 'approval', entityId: a.id, action: 'expired', before: auditShape(row), after: auditShape(expired), ...actor });
  const round = (await selectRound(tx, row.round_id))!;
  if (round.mode === 'quorum') {
    const count = await countRound(tx, round.id);
    if (count.declined === 0 && count.pending + count.approved >= round.quorum) return 'expired';
  }
  for (const other of await lockPendingOfRound(tx, round.id)) {
    const withdrawn = await closeApproval(tx, other.id, 'withdrawn', APPROVAL_EXPIRY_ACTOR, `approval ${a.id} expired`);
    await writeAudit(tx, { entity: 'approval', entityId: other.id, action: 'withdrawn', before: auditShape(other), after: auditShape(withdrawn), ...actor });
  }
  if (a.kind === 'extension') {
    await setOrderWindow(tx, a.order_id, a.order_requested_until, null);
    await writeAudit(tx, {
      entity: 'order',
      entityId: a.order_id,
      action: 'extension_expired',
      before: { extension_requested_until: a.extension_requested_until?.toISOString() ?? null },
      after: { extension_requested_until: null, approval_id: a.id },
      ...actor,
    });
  } else {
    await transitionOrder(tx, a.order_id, OrderStatus.CANCELLED, { ...actor, error: 'approval expired', reason: why, logger: deps.logger });
    // A ServiceNow delete queued behind this order has nothing left to take back.
    await settleTakeBacks(tx, deps.queue, a.order_id);
  }
  await notifyDecision(tx, deps.queue, { orderId: a.order_id, decision: 'expired', kind: a.kind, requestedUntil: a.requested_until, reason: why }, actor);
  return 'expired';
}

/**
 * Works `approval.timer` in this process (`serve` and `provisio worker`); each job is its own transaction. Returns
 * the worker's id (for `offWork`).
 */
export async function registerApprovalClockWorkers(deps: ApprovalClockDeps, opts: { pollingIntervalSeconds?: number } = {}): Promise<string> {
  return deps.queue.work<ApprovalTimerJob>(
    QueueName.APPROVAL_TIMER,
    async (jobs) => {
      for (const job of jobs) await runApprovalTimer(deps, job.data);
    },
    { batchSize: 10, ...(opts.pollingIntervalSeconds !== undefined ? { pollingIntervalSeconds: opts.pollingIntervalSeconds } : {}) },
  );
}
