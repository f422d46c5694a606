/**
 * Orders driven by runbook runs: the consumers of `order.provision` and `order.deprovision`, and the hooks the
 * order domain hands the workflow engine at construction. The engine knows runs, not orders; `order_runs`
 * (migration 011) records which run carries out which phase of which order, and the hooks find the order again
 * from the run (following `rerun_of` for reruns), inside the engine's own transaction.
 *
 * Phases: `provision` (processing -> provisioning -> provisioned | failed), `deprovision` (a leaver's revoked
 * order, or a ServiceNow delete's target in `deprovisioning` -> returned | failed; then the deprovision policy is
 * applied to the asset) and `reinstall` (asset `reinstall` -> `free`, or `failed` when the runbook fails).
 */
import { QueueName, type Database, type JobQueue, type Logger, type Queryable } from '../../../adapter';
import { inSpan } from '../../../adapter';
import { ConcurrencyLimitError, RunInputError, WorkflowNotFoundError, type EngineHooks, type RunRecord, type StepRecord, type WorkflowEngine } from '../../../workflows';
import { DEPROVISION_POLICIES, type DeprovisionPolicy } from '../catalogue/asset-types';
import { claimFreeAsset, claimPersonalAsset, failAsset, finishReinstall, releaseAsset } from '../catalogue/assets';
import { closeTakeBacks, settleTakeBacks } from './take-backs';
import { stripSecrets, writeAudit } from '../../../adapter';
import { OrderStatus, transitionOrder, transitionOrderIf } from './order-status';
import { registerLifecycleWorkers, startScheduledOrder } from './lifecycle';
import {
  firstRunOf,
  insertOrderStep,
  selectLatestRunOf,
  lockAssetAssignment,
  lockOrder,
  recordRun,
  selectAssetForRun,
  selectAssetState,
  selectOrderRunInChain,
  selectStepSummary,
  setOrderAsset,
  setOrderError,
  type OrderForRun,
  type OrderRunPhase,
  type OrderRunRow,
} from './store';

export type { OrderRunPhase } from './store';
export { orderIdsOfRuns, runIdsOfOrder } from './store';

/** Attribution of what the order flow does on its own. */
export const ORDER_PROVISION_ACTOR = 'system:order-provision';
export const ORDER_DEPROVISION_ACTOR = 'system:order-deprovision';
export const ASSET_REINSTALL_ACTOR = 'system:asset-reinstall';

/** The payload of `order.deprovision`: from the leaver flow (`reason`, `policy`) or a ServiceNow delete (`targetOrderId`). */
export interface DeprovisionJob {
  orderId: number;
  targetOrderId?: number;
  reason?: string;
  policy?: string;
  leaverEventId?: number;
}

export interface OrderRunsDeps {
  db: Database;
  queue: JobQueue;
  logger: Logger;
}

export interface OrderRuns {
  /** What to pass as `hooks` to `createWorkflowEngine`. */
  readonly hooks: EngineHooks;
  /** Binds the engine built with {@link hooks} (the two need each other). */
  bind(engine: WorkflowEngine): void;
  /** Handles one `order.provision` job; safe to call twice with the same order. */
  provision(orderId: number): Promise<void>;
  /** Handles one `order.deprovision` job; safe to call twice with the same payload. */
  deprovision(job: DeprovisionJob): Promise<void>;
  /** Works `order.provision` and `order.deprovision` in this process. */
  registerWorkers(): Promise<void>;
}

const POLICIES: readonly DeprovisionPolicy[] = DEPROVISION_POLICIES;

const isoOrNull = (v: Date | string | null): string | null => (v === null ? null : new Date(v).toISOString());

/** `{order, asset, params}` of a run: what `{{order.*}}`, `{{asset.*}}` and `{{params.attr_<key>}}` read. */
async function runVariables(q: Queryable, o: OrderForRun, assetId: number | null): Promise<{ order: Record<string, unknown>; asset: Record<string, unknown>; params: Record<string, unknown> }> {
  let asset: Record<string, unknown> = {};
  if (assetId !== null) {
    const a = await selectAssetForRun(q, assetId);
    // `owner_email` only for a personal instance bound to someone: on a pooled one `{{asset.owner_email}}` is then a
    // runbook error, not an empty name.
    if (a) asset = { id: Number(a.id), name: a.name, attributes: a.attributes, ...a.attributes, ...(a.owner_email ? { owner_email: a.owner_email } : {}) };
  }
  const params: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o.config ?? {})) params[`attr_${k}`] = v;
  const order = {
    id: o.id,
    action: o.action,
    source: o.source,
    servicenow_ref: o.servicenow_ref,
    snow_req: o.snow_req,
    user_email: o.user_email,
    user_name: o.user_name,
    // The login most runbooks want: the address's local part (`jane.doe` of jane.doe@example.com).
    username: o.user_email.split('@')[0] ?? o.user_email,
    owner_email: o.owner_email,
    owner_name: o.owner_name,
    rdp_users: o.rdp_users,
    admin_users: o.admin_users,
    requested_from: isoOrNull(o.requested_from),
    requested_until: isoOrNull(o.requested_until),
    config: o.config,
  };
  return { order, asset, params };
}

const lockKeyOf = (o: OrderForRun, assetId: number | null): string => (assetId !== null ? `asset:${assetId}` : `order:${o.id}`);

/**
 * The order run a run belongs to: its own row, or (for a rerun) the row of the run it reruns, which is then
 * recorded for the rerun too. Child runs belong to no order (their parent does).
 */
/**
 * What the hooks look up on every step, kept per engine: a first run's order link (written once, when the run
 * started, and never changed) and a task's summary (a stored workflow version never changes). Without them each
 * step of an order's run cost two more round trips than the engine's own. Bounded: cleared when full.
 */
interface HookCaches {
  firstRuns: Map<string, OrderRunRow>;
  summaries: Map<string, string | null>;
}
const HOOK_CACHE_MAX = 10_000;
function remember<K, V>(m: Map<K, V>, k: K, v: V): V {
  if (m.size >= HOOK_CACHE_MAX) m.clear();
  m.set(k, v);
  return v;
}

async function orderRunOf(tx: Queryable, run: RunRecord, caches: HookCaches): Promise<OrderRunRow | undefined> {
  if (run.parentRunId !== null) return undefined;
  const cached = caches.firstRuns.get(run.id);
  if (cached) return cached;
  const hit = await selectOrderRunInChain(tx, run.id);
  if (!hit) return undefined;
  const row: OrderRunRow = {
    run_id: run.id,
    order_id: Number(hit.order_id),
    request_order_id: hit.request_order_id === null ? null : Number(hit.request_order_id),
    phase: hit.phase,
    asset_id: hit.asset_id === null ? null : Number(hit.asset_id),
    policy: hit.policy,
  };
  // A rerun's row is written here, in the caller's transaction, which may yet roll back: only first runs are kept.
  if (Number(hit.depth) > 0) await recordRun(tx, { ...row, first: false });
  else remember(caches.firstRuns, run.id, row);
  return row;
}


// order_steps allows fewer statuses than the engine's step records.
const STEP_STATUS: Record<StepRecord['status'], string> = {
  running: 'running',
  waiting: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  abandoned: 'failed',
  cancelled: 'cancelled',
};

async function copyStep(tx: Queryable, orderId: number, run: RunRecord, step: StepRecord, caches: HookCaches): Promise<void> {
  // The task's summary names the step for people; the task id when it has none.
  const key = `${run.workflow}\u0000${run.version}\u0000${step.stepId}`;
  const summary = caches.summaries.has(key)
    ? caches.summaries.get(key)
    : remember(caches.summaries, key, (await selectStepSummary(tx, run.workflow, run.version, step.stepId)) ?? null);
  await insertOrderStep(tx, {
    orderId,
    runId: run.id,
    stepId: step.stepId,
    name: summary ?? step.stepId,
    status: STEP_STATUS[step.status],
    attempt: step.attempt,
    input: stripSecrets(step.input ?? null),
    output: step.output ?? null,
    errorMessage: step.error ? `${step.error.code}: ${step.error.message}` : null,
    startedAt: step.startedAt,
    finishedAt: step.finishedAt,
    durationMs: step.durationMs,
  });
}

export function createOrderRuns(deps: OrderRunsDeps): OrderRuns {
  const { db, queue, logger } = deps;
  const caches: HookCaches = { firstRuns: new Map(), summaries: new Map() };

  /**
   * Moves the order only when it is still where this flow expects it (a leaver may have revoked it meanwhile); one
   * locked read. Audited by the transition and logged at info with the order id, as every transition is.
   */
  async function moveIf(tx: Queryable, orderId: number, from: readonly OrderStatus[], to: OrderStatus, triggeredBy: string, error?: string): Promise<boolean> {
    return (await transitionOrderIf(tx, orderId, from, to, { triggeredBy, error, logger })) !== undefined;
  }
  let bound: WorkflowEngine | undefined;
  const engine = (): WorkflowEngine => {
    if (!bound) throw new Error('order runs: no workflow engine bound');
    return bound;
  };

  /** Starts `workflow` for the order in `tx`; a missing workflow or a rejecting limit becomes the error returned. */
  async function startRunFor(
    tx: Queryable,
    o: OrderForRun,
    workflow: string,
    phase: OrderRunPhase,
    link: { assetId: number | null; requestOrderId: number | null; policy: DeprovisionPolicy | null },
    createdBy: string,
  ): Promise<{ runId: string } | { error: string }> {
    try {
      const run = await engine().startRun(tx, {
        workflow,
        // No inputs of its own: the engine fills in the defaults of the pinned version's inputSchema.
        inputs: {},
        variables: await runVariables(tx, o, link.assetId),
        lockKey: lockKeyOf(o, link.assetId),
        createdBy,
      });
      await recordRun(tx, { run_id: run.id, order_id: o.id, request_order_id: link.requestOrderId, phase, asset_id: link.assetId, policy: link.policy, first: true });
      return { runId: run.id };
    } catch (e) {
      if (e instanceof WorkflowNotFoundError || e instanceof ConcurrencyLimitError || e instanceof RunInputError) return { error: `${phase} runbook: ${e.message}` };
      throw e;
    }
  }

  /**
   * After the deprovision runbook succeeded (or when there is none): gives the asset back by the policy, starts
   * the reinstall runbook for `reinstall`, and closes the orders (target `returned` when it was being
   * deprovisioned; the delete order that asked is done).
   */
  async function completeDeprovision(tx: Queryable, r: OrderRunRow): Promise<void> {
    const actor = { triggeredBy: ORDER_DEPROVISION_ACTOR };
    const policy = r.policy ?? 'access_only';
    if (r.asset_id !== null) {
      const a = await lockAssetAssignment(tx, r.asset_id);
      if (a && a.state === 'in_use' && Number(a.assigned_order_id) === r.order_id) {
        await releaseAsset(tx, r.asset_id, r.order_id, policy, actor);
        if (policy === 'reinstall') {
          const o = await lockOrder(tx, r.order_id);
          // Without a reinstall runbook the asset stays in `reinstall` until an admin closes it (wiped by hand).
          if (o?.reinstall_runbook) {
            const started = await startRunFor(tx, o, o.reinstall_runbook, 'reinstall', { assetId: r.asset_id, requestOrderId: r.request_order_id, policy }, ASSET_REINSTALL_ACTOR);
            if ('error' in started) await finishReinstall(tx, r.asset_id, false, { triggeredBy: ASSET_REINSTALL_ACTOR });
          }
        }
      }
    }
    await moveIf(tx, r.order_id, [OrderStatus.DEPROVISIONING], OrderStatus.RETURNED, ORDER_DEPROVISION_ACTOR);
    // The ServiceNow deletes that asked (or queued behind a leaver's revocation) end with it: returned, never provisioned.
    await closeTakeBacks(tx, r.order_id, { ok: true }, ORDER_DEPROVISION_ACTOR);
  }

  /**
   * The deprovision runbook failed (or could not start): the asset is taken out of service (`failed`, with the
   * error; nobody can tell what access the runbook left behind), the order no longer names it, and the order and
   * the deletes that asked show the error.
   */
  async function failDeprovision(tx: Queryable, r: OrderRunRow, message: string): Promise<void> {
    if (r.asset_id !== null) {
      const failed = await failAsset(tx, r.asset_id, r.order_id, `deprovision of order ${r.order_id} failed: ${message}`, { triggeredBy: ORDER_DEPROVISION_ACTOR });
      if (failed) await setOrderAsset(tx, r.order_id, null);
    }
    const moved = await moveIf(tx, r.order_id, [OrderStatus.DEPROVISIONING], OrderStatus.FAILED, ORDER_DEPROVISION_ACTOR, message);
    await closeTakeBacks(tx, r.order_id, { ok: false, message }, ORDER_DEPROVISION_ACTOR);
    if (!moved) {
      // A revoked order has no way out of `revoked`; the failure is kept on it and in the audit log.
      await setOrderError(tx, r.order_id, message);
      await writeAudit(tx, { entity: 'order', entityId: r.order_id, action: 'deprovision_failed', before: null, after: { error_message: message }, triggeredBy: ORDER_DEPROVISION_ACTOR });
    }
  }

  async function runEnded(tx: Queryable, run: RunRecord, outcome: { ok: true } | { ok: false; message: string }): Promise<void> {
    const r = await orderRunOf(tx, run, caches);
    if (!r) return;
    if (r.phase === 'provision') {
      const to = outcome.ok ? OrderStatus.PROVISIONED : OrderStatus.FAILED;
      const moved = await moveIf(tx, r.order_id, [OrderStatus.PROVISIONING], to, ORDER_PROVISION_ACTOR, outcome.ok ? undefined : outcome.message);
      // A failed provision keeps its asset (in use by it) for a rerun, unless a queued take-back now takes it back.
      if (moved) await settleTakeBacks(tx, queue, r.order_id, to);
    } else if (r.phase === 'deprovision') {
      if (outcome.ok) await completeDeprovision(tx, r);
      else await failDeprovision(tx, r, outcome.message);
    } else if (r.asset_id !== null) {
      if ((await selectAssetState(tx, r.asset_id)) === 'reinstall') {
        await finishReinstall(tx, r.asset_id, outcome.ok, { triggeredBy: ASSET_REINSTALL_ACTOR }, outcome.ok ? undefined : `reinstall failed: ${outcome.message}`);
      }
    }
  }

  const hooks: EngineHooks = {
    async runStarted(tx, run) {
      // Only a rerun moves its order back into the flow; a first run's order was moved by whoever started it.
      if (run.rerunOf === null) return;
      const r = await orderRunOf(tx, run, caches);
      if (!r) return;
      if (r.phase === 'provision') {
        // A retry (lifecycle.ts) whose rerun had to wait moved the order back to `processing` already.
        await moveIf(tx, r.order_id, [OrderStatus.FAILED], OrderStatus.PROCESSING, ORDER_PROVISION_ACTOR);
        await moveIf(tx, r.order_id, [OrderStatus.PROCESSING], OrderStatus.PROVISIONING, ORDER_PROVISION_ACTOR);
      } else if (r.phase === 'deprovision') {
        await moveIf(tx, r.order_id, [OrderStatus.FAILED], OrderStatus.DEPROVISIONING, ORDER_DEPROVISION_ACTOR);
        // The delete that asked follows its target back into the flow, and ends with it again.
        if (r.request_order_id !== null) await moveIf(tx, r.request_order_id, [OrderStatus.FAILED], OrderStatus.DEPROVISIONING, ORDER_DEPROVISION_ACTOR);
      }
    },
    async stepFinished(tx, run, step) {
      const r = await orderRunOf(tx, run, caches);
      if (!r) return;
      await copyStep(tx, r.order_id, run, step, caches);
      if (r.request_order_id !== null) await copyStep(tx, r.request_order_id, run, step, caches);
    },
    async runSucceeded(tx, run) {
      await runEnded(tx, run, { ok: true });
    },
    async runFailed(tx, run, error) {
      await runEnded(tx, run, { ok: false, message: error.message });
    },
    async runCancelled(tx, run) {
      await runEnded(tx, run, { ok: false, message: `the ${run.workflow} run was cancelled` });
    },
  };

  async function provision(orderId: number): Promise<void> {
    await db.transaction(async (tx) => {
      const o = await lockOrder(tx, orderId);
      // A scheduled order's job was due at its requested_from: it starts now (lifecycle.ts).
      if (o && o.action === 'provision' && o.status === OrderStatus.SCHEDULED) o.status = await startScheduledOrder(tx, o.id, logger);
      // Revoked by a leaver, cancelled, or already taken up by an earlier delivery of this job: nothing to do.
      if (!o || o.action !== 'provision' || o.status !== OrderStatus.PROCESSING) {
        logger.info('order provision skipped', { orderId, status: o?.status ?? null });
        return;
      }
      if (await firstRunOf(tx, o.id, 'provision')) return;
      const actor = { triggeredBy: ORDER_PROVISION_ACTOR, logger };
      let assetId = o.assigned_asset_id;
      if (o.assignment_model === 'capacity_pooled' && assetId === null) {
        const asset = await claimFreeAsset(tx, o.asset_type_id, o.id, actor);
        if (!asset) {
          const { to } = await transitionOrder(tx, o.id, OrderStatus.FAILED, { ...actor, error: 'no free asset in the pool' });
          await settleTakeBacks(tx, queue, o.id, to);
          return;
        }
        assetId = asset.id;
        await setOrderAsset(tx, o.id, assetId);
      } else if (o.assignment_model === 'personal' && assetId === null) {
        // A dedicated instance bound to the user: theirs if they have a free one, else an unbound one, else new.
        assetId = (await claimPersonalAsset(tx, { id: o.asset_type_id, name: o.type_name }, o.id, o.user_email, actor)).id;
        await setOrderAsset(tx, o.id, assetId);
      }
      if (!o.provision_runbook) {
        // No runbook: nothing to carry out; the order is provisioned directly (audited by the transition).
        const { to } = await transitionOrder(tx, o.id, OrderStatus.PROVISIONED, actor);
        // The order is locked and was just moved: its status is known, no need to read it again.
        await settleTakeBacks(tx, queue, o.id, to);
        return;
      }
      const started = await startRunFor(tx, o, o.provision_runbook, 'provision', { assetId, requestOrderId: null, policy: null }, ORDER_PROVISION_ACTOR);
      if ('error' in started) {
        // Nothing ran on the asset: it goes back (a personal one stays its user's) and the failed order names none.
        if (assetId !== null) {
          await releaseAsset(tx, assetId, o.id, o.assignment_model === 'personal' ? 'access_only' : 'return_to_pool', actor);
          await setOrderAsset(tx, o.id, null);
        }
        const { to } = await transitionOrder(tx, o.id, OrderStatus.FAILED, { ...actor, error: started.error });
        await settleTakeBacks(tx, queue, o.id, to);
        return;
      }
      await transitionOrder(tx, o.id, OrderStatus.PROVISIONING, actor);
    });
  }

  async function deprovision(job: DeprovisionJob): Promise<void> {
    const targetId = Number(job.targetOrderId ?? job.orderId);
    const requestId = job.targetOrderId !== undefined && job.targetOrderId !== null ? Number(job.orderId) : null;
    await db.transaction(async (tx) => {
      const o = await lockOrder(tx, targetId);
      // A ServiceNow delete moved its target to `deprovisioning`; a leaver revoked it. Anything else: not ours.
      if (!o || (o.status !== OrderStatus.DEPROVISIONING && o.status !== OrderStatus.REVOKED)) {
        logger.info('order deprovision skipped', { orderId: targetId, status: o?.status ?? null });
        return;
      }
      const policy: DeprovisionPolicy = POLICIES.includes(job.policy as DeprovisionPolicy) ? (job.policy as DeprovisionPolicy) : o.deprovision_policy;
      const link: OrderRunRow = { run_id: '', order_id: o.id, request_order_id: requestId, phase: 'deprovision', asset_id: o.assigned_asset_id, policy };
      const earlier = await selectLatestRunOf(tx, o.id, 'deprovision');
      if (earlier) {
        // A job delivered again (pg-boss redelivers a failed batch whole): the run is under way or over, or the
        // order is revoked and its failure already kept on it.
        if (o.status !== OrderStatus.DEPROVISIONING || !['failed', 'cancelled'].includes(earlier.status)) return;
        // A new take-back of an order whose deprovision ran and failed (a failed order is a target again). An order
        // has one deprovision run, which an operator reruns once the cause is fixed; this take-back ends saying so
        // rather than waiting for a run that never starts.
        await failDeprovision(tx, link, `the deprovision run ${earlier.run_id} of order ${o.id} failed earlier; rerun it once its cause is fixed`);
        return;
      }
      if (!o.deprovision_runbook) {
        // Redelivery safe: the asset is released only while still in use by this order, the orders only moved from
        // where the flow left them.
        await completeDeprovision(tx, link);
        return;
      }
      const started = await startRunFor(tx, o, o.deprovision_runbook, 'deprovision', { assetId: o.assigned_asset_id, requestOrderId: requestId, policy }, ORDER_DEPROVISION_ACTOR);
      if ('error' in started) await failDeprovision(tx, link, started.error);
    });
  }

  return {
    hooks,
    bind(e) {
      bound = e;
    },
    provision,
    deprovision,
    async registerWorkers() {
      // pg-boss waits a full polling interval after every fetch, jobs found or not: with one job per fetch every
      // 2 s (its defaults) a process took up one order per 2 s. Batches, a short interval, and `wake` from the
      // placing code (this process) keep orders moving. Each job of a batch is its own transaction, run side by
      // side; a failure fails the batch after all have run, and a redelivered job finds its order already taken up.
      const consumer = { batchSize: 10, pollingIntervalSeconds: 0.5 };
      const all = async <T>(jobs: readonly T[], one: (job: T) => Promise<void>): Promise<void> => {
        const failed = (await Promise.allSettled(jobs.map(one))).find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      };
      // A job placed inside a trace carries its traceparent: the provisioning (and the run it starts) continues it.
      const provisionJob = (job: { data: { orderId: number; traceparent?: string } }) =>
        inSpan('order.provision', { parent: job.data.traceparent, attributes: { 'provisio.order_id': Number(job.data.orderId) } }, () => provision(Number(job.data.orderId)));
      await queue.work<{ orderId: number; traceparent?: string }>(QueueName.ORDER_PROVISION, (jobs) => all(jobs, provisionJob), consumer);
      await queue.work<DeprovisionJob>(QueueName.ORDER_DEPROVISION, (jobs) => all(jobs, (job) => deprovision(job.data)), consumer);
      // Expiries return orders through the deprovision consumer above, so they run wherever it does.
      await registerLifecycleWorkers({ db, queue, logger });
    },
  };
}
