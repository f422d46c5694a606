/**
 * The order lifecycle: what a requester or an admin does to an order after placing it (cancel, return, extend,
 * retry) and what time does to it (the delayed start at `requested_from`, the expiry at `requested_until`).
 *
 * Time is kept by pg-boss jobs with `startAfter`, rows in `pgboss.job` written in the same transaction as the
 * change that asks for them, so a restart (or a different worker process) still runs them when they come due:
 * - a `scheduled` order's `order.provision` job is due at its `requested_from`; the provision consumer
 *   (order-runs.ts) moves it to `processing` through {@link startScheduledOrder} and carries on as for any order;
 * - an `order.expire` job is due at `requested_until` and carries the `requested_until` it was set for. An extension
 *   sends a new one; the old one, when it comes due, finds the end moved and does nothing. Comparing the instant
 *   (rather than deleting the old job) keeps the check in the database row the job acts on, under its lock, and
 *   needs no bookkeeping of job ids.
 *
 * Every command locks the order row first (then its pending approval, then runs), the order in which approvals,
 * the leaver flow and the run hooks take them, so concurrent commands on one order run one after the other and the
 * second sees the first's outcome. Transitions go through `transitionOrder` (audited, logged at info with the
 * order id); changes that are not transitions (an extension) write their own audit row.
 */
import { randomUUID } from 'node:crypto';
import { QueueName, writeAudit, type Database, type JobQueue, type Logger, type Queryable } from '../../../adapter';
import { RunStateError, type WorkflowEngine } from '../../../workflows';
import { CodedError, ErrorCode, invalidField, notFound } from '../../errors';
import { auditShape, routeNewApproval } from '../approvals/routing';
import { closeApproval, lockPendingApprovals, type ApprovalRow } from '../approvals/store';
import type { DeprovisionPolicy } from '../catalogue/asset-types';
import type { RequesterDirectory } from '../identity/requester-directory';
import { checkMaxDuration, isFuture } from './orders';
import { OrderStatus, orderStateConflict, transitionOrder, type TransitionOptions } from './order-status';
import { settleTakeBacks } from './take-backs';
import {
  clearStaleOrderAsset,
  countReruns,
  firstRunOf,
  holdsAsset,
  latestRunOf,
  lockLifecycleOrder,
  selectFailedFrom,
  selectOrder,
  setOrderJob,
  setOrderWindow,
  type LifecycleOrder,
  type OrderRow,
} from './store';

/** Attribution of what time does to an order. */
export const SCHEDULE_ACTOR = 'system:schedule';
export const EXPIRY_ACTOR = 'system:expiry';

/**
 * How long an expiry that finds the order still being provisioned waits before it looks again: the return runs
 * once the provision run has ended (a deprovision must not race the provision it takes back).
 */
export const EXPIRY_RECHECK_SECONDS = 60;

export interface LifecycleDeps {
  db: Database;
  queue: JobQueue;
  /** Lifecycle transitions and decisions are logged at info here, with the order id. */
  logger?: Logger | undefined;
  /** Routes an extension's approval to the requester's manager; none: the type's fallback approver. */
  directory?: RequesterDirectory | undefined;
  /** Reruns a failed run (retry); a process without an engine can do everything else. */
  engine?: WorkflowEngine | undefined;
}

/** Who acts and why: `api:token:<name>`, `admin:key`, `system:expiry`, …; `reason` goes into the audit row. */
export interface LifecycleActor {
  triggeredBy: string;
  requestId?: string | undefined;
  reason?: string | undefined;
}

/**
 * The `order.deprovision` payload a return, an expiry or a retried take-back sends: the shape of order-runs.ts's
 * `DeprovisionJob` (a leaver's revocation sends the same fields); written out here because order-runs.ts imports
 * this module.
 */
interface DeprovisionRequest {
  orderId: number;
  reason: 'return' | 'expiry' | 'retry';
  policy: DeprovisionPolicy;
}

/** The payload of an `order.expire` job. */
export interface ExpiryJob {
  orderId: number;
  /** The `requested_until` the job was sent for (ISO 8601); another one on the order makes the job stale. */
  requestedUntil: string;
}

/** Statuses an order can be extended in: approved (or needing no approval) and not yet on its way back. */
const EXTENDABLE: readonly OrderStatus[] = [OrderStatus.SCHEDULED, OrderStatus.PROCESSING, OrderStatus.PROVISIONING, OrderStatus.PROVISIONED];
/** Where a failed provision came from (a failure from `deprovisioning` is a failed take-back). */
const PROVISION_PHASE: readonly (OrderStatus | undefined)[] = [OrderStatus.PROCESSING, OrderStatus.PROVISIONING];

const transitionOpts = (deps: Pick<LifecycleDeps, 'logger'>, a: LifecycleActor, error?: string): TransitionOptions => ({
  triggeredBy: a.triggeredBy,
  requestId: a.requestId,
  reason: a.reason,
  logger: deps.logger,
  ...(error !== undefined ? { error } : {}),
});

const withReason = (what: string, a: LifecycleActor): string => (a.reason ? `${what}: ${a.reason}` : what);

/** The order, locked; NOT_FOUND for an unknown one, ORDER_STATE_CONFLICT for a take-back (`action: delete`). */
async function lockProvisionOrder(tx: Queryable, id: number): Promise<LifecycleOrder> {
  const o = await lockLifecycleOrder(tx, id);
  if (!o) throw notFound(`order ${id} does not exist`);
  // A delete order is ServiceNow's request to take another order back; it has no lifecycle of its own.
  if (o.action !== 'provision') throw orderStateConflict(id, o.status, "is a take-back (action 'delete'); only provision orders are cancelled, returned, extended or retried");
  return o;
}

async function reread(tx: Queryable, id: number): Promise<OrderRow> {
  const row = await selectOrder(tx, id);
  if (!row) throw notFound(`order ${id} does not exist`);
  return row;
}

/**
 * Withdraws what waits for a decision on an order that is ending (cancelled, returned, expired): its pending
 * approvals (an order's or an extension's; every approver of a quorum) and the extension they decide. Audited as
 * `approval` / `withdrawn`.
 */
async function withdrawPending(tx: Queryable, o: LifecycleOrder, a: LifecycleActor, why: string): Promise<void> {
  for (const pending of await lockPendingApprovals(tx, o.id)) {
    const withdrawn = await closeApproval(tx, pending.id, 'withdrawn', a.triggeredBy, why);
    await writeAudit(tx, { entity: 'approval', entityId: pending.id, action: 'withdrawn', before: auditShape(pending), after: auditShape(withdrawn), triggeredBy: a.triggeredBy, requestId: a.requestId });
  }
  if (o.extension_requested_until !== null) await setOrderWindow(tx, o.id, o.requested_until, null);
}

/** The failed order's failed phase: `provision` unless it failed while being taken back. */
async function failedPhase(tx: Queryable, id: number): Promise<'provision' | 'deprovision'> {
  return PROVISION_PHASE.includes(await selectFailedFrom(tx, id)) ? 'provision' : 'deprovision';
}

/**
 * Why the order cannot be cancelled now, or undefined when it can: it has not started to be carried out. That is
 * waiting for approval or for its start, or `processing` before its provision runbook started (a run recorded for
 * it means it has), or `failed` before any runbook started and holding no pool instance (the pool had none free).
 */
async function cancelRefusal(tx: Queryable, o: LifecycleOrder): Promise<string | undefined> {
  switch (o.status) {
    case OrderStatus.PENDING_APPROVAL:
    case OrderStatus.SCHEDULED:
      return undefined;
    case OrderStatus.PROCESSING:
      return (await firstRunOf(tx, o.id, 'provision')) ? 'has started its provision runbook; return it instead' : undefined;
    case OrderStatus.FAILED:
      if ((await failedPhase(tx, o.id)) !== 'provision' || (await firstRunOf(tx, o.id, 'provision')) || (await holdsAsset(tx, o.id))) {
        return 'failed after its runbook started or holds a pool instance; return or retry it instead';
      }
      return undefined;
    default:
      return 'can no longer be cancelled: its runbook has started';
  }
}

/** Cancels in the caller's transaction (the checks are the caller's): approvals withdrawn, then the transition. */
async function cancelInTx(deps: LifecycleDeps, tx: Queryable, o: LifecycleOrder, a: LifecycleActor, what: string): Promise<void> {
  await withdrawPending(tx, o, a, withReason(what, a));
  await transitionOrder(tx, o.id, OrderStatus.CANCELLED, transitionOpts(deps, a, withReason(what, a)));
  // A ServiceNow delete queued for this order (it was still being carried out) has nothing left to take back.
  await settleTakeBacks(tx, deps.queue, o.id);
}

/**
 * Cancels an order that has not started to be carried out (see {@link cancelRefusal}); a pending approval is
 * withdrawn. A scheduled order's delayed job stays queued and, when due, finds the order cancelled and does nothing.
 * Throws NOT_FOUND; ORDER_STATE_CONFLICT (409, `order_status`) once the runbook has started or the order ended.
 */
export async function cancelOrder(deps: LifecycleDeps, id: number, a: LifecycleActor): Promise<OrderRow> {
  return deps.db.transaction(async (tx) => {
    const o = await lockProvisionOrder(tx, id);
    const refused = await cancelRefusal(tx, o);
    if (refused) throw orderStateConflict(id, o.status, refused);
    await cancelInTx(deps, tx, o, a, 'cancelled');
    return reread(tx, id);
  });
}

/**
 * Moves the order to `deprovisioning` and enqueues its `order.deprovision` job with the type's policy (the
 * consumer that ServiceNow deletes use: deprovision runbook, then the policy, then `returned`). The job's id
 * becomes the order's `job_id`.
 */
async function returnInTx(deps: LifecycleDeps, tx: Queryable, o: LifecycleOrder, a: LifecycleActor, reason: 'return' | 'expiry'): Promise<void> {
  await withdrawPending(tx, o, a, withReason(reason === 'expiry' ? 'the order expired' : 'the order was returned', a));
  await transitionOrder(tx, o.id, OrderStatus.DEPROVISIONING, transitionOpts(deps, a));
  const jobId = randomUUID();
  await setOrderJob(tx, o.id, jobId);
  const job: DeprovisionRequest = { orderId: o.id, reason, policy: o.deprovision_policy };
  await deps.queue.send(tx, QueueName.ORDER_DEPROVISION, job, { id: jobId });
}

/** Why the order cannot be returned now, or undefined: it holds (or may hold, half-built) what it was given. */
async function returnRefusal(tx: Queryable, o: LifecycleOrder): Promise<string | undefined> {
  if (o.status === OrderStatus.PROVISIONED) return undefined;
  if (o.status === OrderStatus.FAILED) {
    // Its deprovision run already exists: a second `order.deprovision` job would find it and do nothing.
    return (await failedPhase(tx, o.id)) === 'provision' ? undefined : 'failed while being taken back; retry it instead';
  }
  return o.status === OrderStatus.DEPROVISIONING ? 'is already being taken back' : 'holds nothing to return';
}

/**
 * Returns what the order holds: `provisioned` (or a failed provision, which may hold half-built access or a pool
 * instance) → `deprovisioning`, the deprovision runbook and the type's policy; a pending extension is withdrawn.
 * Throws NOT_FOUND; ORDER_STATE_CONFLICT (409) in any other state.
 */
export async function returnOrder(deps: LifecycleDeps, id: number, a: LifecycleActor): Promise<OrderRow> {
  return deps.db.transaction(async (tx) => {
    const o = await lockProvisionOrder(tx, id);
    const refused = await returnRefusal(tx, o);
    if (refused) throw orderStateConflict(id, o.status, refused);
    await returnInTx(deps, tx, o, a, 'return');
    return reread(tx, id);
  });
}

/** Sends the expiry job for `until` (nothing for an end already past: see insertOrder). */
async function scheduleExpiry(deps: Pick<LifecycleDeps, 'queue'>, tx: Queryable, orderId: number, until: Date): Promise<void> {
  if (!isFuture(until)) return;
  const job: ExpiryJob = { orderId, requestedUntil: until.toISOString() };
  await deps.queue.send(tx, QueueName.ORDER_EXPIRE, job, { startAfter: until });
}

/** Sets the new end, clears a waiting extension, audits (`order` / `extend`) and moves the expiry. */
async function applyExtension(deps: LifecycleDeps, tx: Queryable, o: LifecycleOrder, until: Date, a: LifecycleActor): Promise<void> {
  await setOrderWindow(tx, o.id, until, null);
  await writeAudit(tx, {
    entity: 'order',
    entityId: o.id,
    action: 'extend',
    before: { requested_until: o.requested_until?.toISOString() ?? null },
    after: { requested_until: until.toISOString(), ...(a.reason !== undefined ? { reason: a.reason } : {}) },
    triggeredBy: a.triggeredBy,
    requestId: a.requestId,
  });
  await scheduleExpiry(deps, tx, o.id, until);
  deps.logger?.info('order extended', { orderId: o.id, requestedUntil: until.toISOString(), triggeredBy: a.triggeredBy });
}

export interface ExtendResult {
  order: OrderRow;
  /** True when the extension waits for approval (`extension_requested_until` holds it). */
  pending: boolean;
  /** The extension's approval; null when applied at once or when nobody could be routed (an admin may decide). */
  approval: ApprovalRow | null;
}

/**
 * Extends the order to `requestedUntil` (ISO 8601): later than the current end and than now, after the start, and
 * within the type's `max_duration_days` from `requested_from` (else creation). A type that requires approval
 * routes the extension like an order (manager, else fallback approver) and keeps it waiting on the order; the
 * decision applies or drops it ({@link decideExtension}). Otherwise it applies at once and the expiry moves.
 * Throws NOT_FOUND; VALIDATION_FAILED (422) naming `/body/requested_until`; ORDER_STATE_CONFLICT (409) outside
 * `scheduled`/`processing`/`provisioning`/`provisioned` or while another extension waits.
 */
export async function extendOrder(deps: LifecycleDeps, id: number, requestedUntil: string, a: LifecycleActor): Promise<ExtendResult> {
  const until = new Date(requestedUntil);
  if (Number.isNaN(until.getTime())) throw invalidField('/body/requested_until', 'must be an ISO 8601 date-time');
  return deps.db.transaction(async (tx) => {
    const o = await lockProvisionOrder(tx, id);
    if (!EXTENDABLE.includes(o.status)) {
      throw orderStateConflict(id, o.status, o.status === OrderStatus.PENDING_APPROVAL ? 'is still waiting for approval; it cannot be extended yet' : 'cannot be extended');
    }
    if (o.extension_requested_until !== null) {
      throw orderStateConflict(id, o.status, `already has an extension to ${o.extension_requested_until.toISOString()} waiting for approval`);
    }
    if (o.requested_until !== null && until.getTime() <= o.requested_until.getTime()) {
      throw invalidField('/body/requested_until', `must be later than the order's current requested_until (${o.requested_until.toISOString()})`);
    }
    if (!isFuture(until)) throw invalidField('/body/requested_until', 'must be in the future');
    if (o.requested_from !== null && until.getTime() <= o.requested_from.getTime()) {
      throw invalidField('/body/requested_until', `must be after the order's requested_from (${o.requested_from.toISOString()})`);
    }
    checkMaxDuration({ name: o.type_name, max_duration_days: o.max_duration_days }, o.requested_from ?? o.created_at, until);

    if (!o.requires_approval) {
      await applyExtension(deps, tx, o, until, a);
      return { order: await reread(tx, id), pending: false, approval: null };
    }
    // A renewal goes through the same approval as the order did; until decided, the order keeps its end.
    await setOrderWindow(tx, id, o.requested_until, until);
    await writeAudit(tx, {
      entity: 'order',
      entityId: id,
      action: 'extension_requested',
      before: { extension_requested_until: null },
      after: { extension_requested_until: until.toISOString(), ...(a.reason !== undefined ? { reason: a.reason } : {}) },
      triggeredBy: a.triggeredBy,
      requestId: a.requestId,
    });
    const approval = await routeNewApproval(tx, { directory: deps.directory, queue: deps.queue }, { id, user_email: o.user_email, asset_type_id: o.asset_type_id }, a, { requestedUntil: until });
    deps.logger?.info('order extension waits for approval', { orderId: id, requestedUntil: until.toISOString(), approver: approval?.approver_email ?? null });
    return { order: await reread(tx, id), pending: true, approval: approval ?? null };
  });
}

/** The extension waiting for a decision on the (locked) order; null when none waits. */
export async function waitingExtension(tx: Queryable, orderId: number): Promise<Date | null> {
  return (await lockLifecycleOrder(tx, orderId))?.extension_requested_until ?? null;
}

/**
 * Applies (`approved`) or drops (`declined`, audited `order` / `extension_declined`) the extension waiting on
 * the order, in the decision's transaction (approvals.ts has closed the approval). Returns the order.
 */
export async function decideExtension(deps: LifecycleDeps, tx: Queryable, orderId: number, decision: 'approved' | 'declined', a: LifecycleActor): Promise<OrderRow> {
  const o = await lockLifecycleOrder(tx, orderId);
  if (!o || o.extension_requested_until === null) throw notFound(`order ${orderId} has no extension waiting for approval`);
  if (decision === 'approved') {
    await applyExtension(deps, tx, o, o.extension_requested_until, a);
  } else {
    await setOrderWindow(tx, orderId, o.requested_until, null);
    await writeAudit(tx, {
      entity: 'order',
      entityId: orderId,
      action: 'extension_declined',
      before: { extension_requested_until: o.extension_requested_until.toISOString() },
      after: { extension_requested_until: null, ...(a.reason !== undefined ? { reason: a.reason } : {}) },
      triggeredBy: a.triggeredBy,
      requestId: a.requestId,
    });
    deps.logger?.info('order extension declined', { orderId, triggeredBy: a.triggeredBy });
  }
  return reread(tx, orderId);
}

/**
 * Releases an approved order in the decision's transaction: `scheduled` with its `order.provision` job due at
 * `requested_from` when that lies ahead, else `processing` with the job due now. The job id is stored on the order.
 */
export async function releaseApprovedOrder(deps: Pick<LifecycleDeps, 'queue' | 'logger'>, tx: Queryable, orderId: number, a: LifecycleActor): Promise<OrderRow> {
  const o = await lockLifecycleOrder(tx, orderId);
  if (!o) throw notFound(`order ${orderId} does not exist`);
  const startAt = isFuture(o.requested_from) ? o.requested_from : null;
  await transitionOrder(tx, orderId, startAt ? OrderStatus.SCHEDULED : OrderStatus.PROCESSING, transitionOpts(deps, a));
  const jobId = randomUUID();
  await setOrderJob(tx, orderId, jobId);
  await deps.queue.send(tx, QueueName.ORDER_PROVISION, { orderId }, { id: jobId, ...(startAt ? { startAfter: startAt } : {}) });
  return reread(tx, orderId);
}

/**
 * The provision consumer's first step for a `scheduled` order whose job came due: `scheduled` → `processing`
 * (`system:schedule`). Returns the new status.
 */
export async function startScheduledOrder(tx: Queryable, orderId: number, logger: Logger): Promise<OrderStatus> {
  await transitionOrder(tx, orderId, OrderStatus.PROCESSING, { triggeredBy: SCHEDULE_ACTOR, reason: 'requested_from reached', logger });
  return OrderStatus.PROCESSING;
}

/**
 * Retries a failed order. With a run of the failed phase: reruns the newest one from its failed step (the engine's
 * rerun; the order goes back to `processing`/`deprovisioning` now, and on to `provisioning` when the rerun starts).
 * Without one (the runbook could not start, the pool had nothing free): the phase starts afresh with a new job.
 * Audited as the transition plus `order` / `retry` naming both runs.
 * Throws NOT_FOUND; ORDER_STATE_CONFLICT (409) when the order is not failed, is already being retried, or its
 * last run cannot be rerun; NOT_IMPLEMENTED (501) when a rerun is needed and this process runs no engine.
 */
export async function retryOrder(deps: LifecycleDeps, id: number, a: LifecycleActor): Promise<OrderRow> {
  const rerun = await deps.db.transaction(async (tx) => {
    const o = await lockProvisionOrder(tx, id);
    if (o.status !== OrderStatus.FAILED) throw orderStateConflict(id, o.status, 'has not failed; only a failed order can be retried');
    const phase = await failedPhase(tx, id);
    const runId = await latestRunOf(tx, id, phase);
    // The engine reruns in a transaction of its own (below); the checks are repeated there under the lock.
    if (runId) return { phase, runId };
    const jobId = randomUUID();
    if (phase === 'provision') {
      await clearStaleOrderAsset(tx, id);
      await transitionOrder(tx, id, OrderStatus.PROCESSING, transitionOpts(deps, a));
      await setOrderJob(tx, id, jobId);
      await deps.queue.send(tx, QueueName.ORDER_PROVISION, { orderId: id }, { id: jobId });
    } else {
      await transitionOrder(tx, id, OrderStatus.DEPROVISIONING, transitionOpts(deps, a));
      await setOrderJob(tx, id, jobId);
      const job: DeprovisionRequest = { orderId: id, reason: 'retry', policy: o.deprovision_policy };
      await deps.queue.send(tx, QueueName.ORDER_DEPROVISION, job, { id: jobId });
    }
    await writeAudit(tx, { entity: 'order', entityId: id, action: 'retry', after: { phase, run_id: null, job_id: jobId, reason: a.reason ?? null }, triggeredBy: a.triggeredBy, requestId: a.requestId });
    return undefined;
  });
  if (!rerun) return reread(deps.db, id);

  if (!deps.engine) throw new CodedError(ErrorCode.NOT_IMPLEMENTED, `order ${id} needs a rerun of run ${rerun.runId}, and this process runs no workflow engine`);
  const back = rerun.phase === 'provision' ? OrderStatus.PROCESSING : OrderStatus.DEPROVISIONING;
  // Where the engine's runStarted hook puts the order when the rerun is admitted at once, in this transaction.
  const started: readonly OrderStatus[] = rerun.phase === 'provision' ? [OrderStatus.PROCESSING, OrderStatus.PROVISIONING] : [OrderStatus.DEPROVISIONING];
  try {
    await deps.engine.rerunRun(rerun.runId, { from: 'failed', createdBy: a.triggeredBy }, async (tx, run) => {
      const o = await lockLifecycleOrder(tx, id);
      if (!o) throw notFound(`order ${id} does not exist`);
      // Two retries racing both create a rerun; under the order's lock the later one sees the earlier's and gives way.
      if ((await countReruns(tx, rerun.runId)) > 1) throw orderStateConflict(id, o.status, 'is already being retried');
      if (o.status === OrderStatus.FAILED) await transitionOrder(tx, id, back, transitionOpts(deps, a));
      else if (!started.includes(o.status)) throw orderStateConflict(id, o.status, 'is no longer failed');
      await writeAudit(tx, {
        entity: 'order',
        entityId: id,
        action: 'retry',
        after: { phase: rerun.phase, run_id: run.id, rerun_of: rerun.runId, reason: a.reason ?? null },
        triggeredBy: a.triggeredBy,
        requestId: a.requestId,
      });
    });
  } catch (e) {
    if (e instanceof RunStateError) {
      const now = await selectOrder(deps.db, id);
      throw orderStateConflict(id, now?.status ?? OrderStatus.FAILED, `cannot be retried: its last ${rerun.phase} run ${rerun.runId} is ${e.runStatus}`);
    }
    throw e;
  }
  deps.logger?.info('order retried', { orderId: id, phase: rerun.phase, rerunOf: rerun.runId, triggeredBy: a.triggeredBy });
  return reread(deps.db, id);
}

/**
 * Handles one `order.expire` job. A job whose `requestedUntil` is no longer the order's (extended since) does
 * nothing. Otherwise, as `system:expiry`: an order that has not started (waiting for approval or its start, or
 * `processing` before its runbook) is cancelled; one that holds something (`provisioned`, or a failed provision)
 * is returned; one still being provisioned is looked at again in {@link EXPIRY_RECHECK_SECONDS}; anything already
 * ending or ended is left alone. Safe to run twice: the second finds the order moved on.
 */
export async function expireOrder(deps: Pick<LifecycleDeps, 'db' | 'queue' | 'logger'>, job: ExpiryJob): Promise<void> {
  const d: LifecycleDeps = deps;
  await deps.db.transaction(async (tx) => {
    const o = await lockLifecycleOrder(tx, Number(job.orderId));
    if (!o || o.action !== 'provision') return;
    const due = new Date(job.requestedUntil);
    if (o.requested_until === null || o.requested_until.getTime() !== due.getTime()) {
      deps.logger?.info('order expiry skipped: requested_until has moved', { orderId: o.id, jobFor: job.requestedUntil, requestedUntil: o.requested_until?.toISOString() ?? null });
      return;
    }
    const a: LifecycleActor = { triggeredBy: EXPIRY_ACTOR, reason: `requested_until ${due.toISOString()} reached` };
    if (!(await cancelRefusal(tx, o))) {
      await cancelInTx(d, tx, o, a, 'expired before it started');
    } else if (!(await returnRefusal(tx, o))) {
      await returnInTx(d, tx, o, a, 'expiry');
    } else if (o.status === OrderStatus.PROVISIONING || o.status === OrderStatus.PROCESSING) {
      await deps.queue.send(tx, QueueName.ORDER_EXPIRE, job, { startAfter: new Date(Date.now() + EXPIRY_RECHECK_SECONDS * 1000) });
      deps.logger?.info('order expiry waits for the provision to finish', { orderId: o.id, status: o.status });
    } else {
      deps.logger?.info('order expiry skipped', { orderId: o.id, status: o.status });
    }
  });
}

/** Works `order.expire` in this process (every process that runs the order consumers does). */
export async function registerLifecycleWorkers(deps: Pick<LifecycleDeps, 'db' | 'queue' | 'logger'>): Promise<void> {
  await deps.queue.work<ExpiryJob>(QueueName.ORDER_EXPIRE, async (jobs) => {
    for (const job of jobs) await expireOrder(deps, job.data);
  });
}
