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
import { ConcurrencyLimitError, RunInputError, WorkflowNotFoundError, type EngineHooks, type RunRecord, type StepRecord, type WorkflowEngine } from '../../../workflows/engine';
import { claimFreeAsset, finishReinstall, releaseAsset } from '../catalogue/assets';
import { stripSecrets, writeAudit } from '../../../adapter';
import { OrderStatus, transitionOrder } from './order-status';

export type OrderRunPhase = 'provision' | 'deprovision' | 'reinstall';
export type DeprovisionPolicy = 'access_only' | 'return_to_pool' | 'reinstall';

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

interface OrderForRun {
  id: number;
  action: 'provision' | 'delete';
  status: OrderStatus;
  asset_type_id: number;
  assignment_model: 'capacity_pooled' | 'personal';
  provision_runbook: string | null;
  deprovision_runbook: string | null;
  reinstall_runbook: string | null;
  deprovision_policy: DeprovisionPolicy;
  assigned_asset_id: number | null;
  user_email: string;
  user_name: string;
  owner_email: string | null;
  owner_name: string | null;
  source: string;
  servicenow_ref: string | null;
  snow_req: string | null;
  rdp_users: string[];
  admin_users: string[];
  requested_from: Date | string | null;
  requested_until: Date | string | null;
  config: Record<string, unknown>;
}

interface OrderRunRow {
  run_id: string;
  order_id: number;
  request_order_id: number | null;
  phase: OrderRunPhase;
  asset_id: number | null;
  policy: DeprovisionPolicy | null;
}

const POLICIES: readonly DeprovisionPolicy[] = ['access_only', 'return_to_pool', 'reinstall'];

const isoOrNull = (v: Date | string | null): string | null => (v === null ? null : new Date(v).toISOString());

async function lockOrder(tx: Queryable, id: number): Promise<OrderForRun | undefined> {
  const { rows } = await tx.query<OrderForRun>(
    `SELECT o.id, o.action, o.status, o.asset_type_id, t.assignment_model, t.provision_runbook, t.deprovision_runbook,
            t.reinstall_runbook, t.deprovision_policy, o.assigned_asset_id, o.user_email, o.user_name, o.owner_email,
            o.owner_name, o.source, o.servicenow_ref, o.snow_req, o.rdp_users, o.admin_users, o.requested_from,
            o.requested_until, o.config
       FROM orders o JOIN asset_types t ON t.id = o.asset_type_id
      WHERE o.id = $1
      FOR UPDATE OF o`,
    [id],
  );
  const r = rows[0];
  return r ? { ...r, id: Number(r.id), asset_type_id: Number(r.asset_type_id), assigned_asset_id: r.assigned_asset_id === null ? null : Number(r.assigned_asset_id) } : undefined;
}

/** `{order, asset, params}` of a run: what `{{order.*}}`, `{{asset.*}}` and `{{params.attr_<key>}}` read. */
async function runVariables(q: Queryable, o: OrderForRun, assetId: number | null): Promise<{ order: Record<string, unknown>; asset: Record<string, unknown>; params: Record<string, unknown> }> {
  let asset: Record<string, unknown> = {};
  if (assetId !== null) {
    const { rows } = await q.query<{ id: number; name: string; attributes: Record<string, unknown> }>('SELECT id, name, attributes FROM assets WHERE id = $1', [assetId]);
    const a = rows[0];
    if (a) asset = { id: Number(a.id), name: a.name, attributes: a.attributes, ...a.attributes };
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

async function firstRunOf(tx: Queryable, orderId: number, phase: OrderRunPhase): Promise<string | undefined> {
  const { rows } = await tx.query<{ run_id: string }>('SELECT run_id FROM order_runs WHERE order_id = $1 AND phase = $2 AND first', [orderId, phase]);
  return rows[0]?.run_id;
}

async function recordRun(tx: Queryable, r: OrderRunRow & { first: boolean }): Promise<void> {
  await tx.query(
    `INSERT INTO order_runs (run_id, order_id, request_order_id, phase, asset_id, policy, first) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [r.run_id, r.order_id, r.request_order_id, r.phase, r.asset_id, r.policy, r.first],
  );
}

/**
 * The order run a run belongs to: its own row, or (for a rerun) the row of the run it reruns, which is then
 * recorded for the rerun too. Child runs belong to no order (their parent does).
 */
async function orderRunOf(tx: Queryable, run: RunRecord): Promise<OrderRunRow | undefined> {
  if (run.parentRunId !== null) return undefined;
  const { rows } = await tx.query<OrderRunRow & { depth: number }>(
    `WITH RECURSIVE chain (id, rerun_of, depth) AS (
       SELECT id, rerun_of, 0 FROM workflow_runs WHERE id = $1
       UNION ALL
       SELECT w.id, w.rerun_of, c.depth + 1 FROM workflow_runs w JOIN chain c ON w.id = c.rerun_of WHERE c.depth < 100
     )
     SELECT r.run_id, r.order_id, r.request_order_id, r.phase, r.asset_id, r.policy, c.depth
       FROM order_runs r JOIN chain c ON c.id = r.run_id
      ORDER BY c.depth LIMIT 1`,
    [run.id],
  );
  const hit = rows[0];
  if (!hit) return undefined;
  const row: OrderRunRow = {
    run_id: run.id,
    order_id: Number(hit.order_id),
    request_order_id: hit.request_order_id === null ? null : Number(hit.request_order_id),
    phase: hit.phase,
    asset_id: hit.asset_id === null ? null : Number(hit.asset_id),
    policy: hit.policy,
  };
  if (Number(hit.depth) > 0) await recordRun(tx, { ...row, first: false });
  return row;
}

async function statusOf(tx: Queryable, orderId: number): Promise<OrderStatus | undefined> {
  const { rows } = await tx.query<{ status: OrderStatus }>('SELECT status FROM orders WHERE id = $1 FOR UPDATE', [orderId]);
  return rows[0]?.status;
}

/** Moves the order only when it is still where this flow expects it (a leaver may have revoked it meanwhile). */
async function moveIf(tx: Queryable, orderId: number, from: readonly OrderStatus[], to: OrderStatus, triggeredBy: string, error?: string): Promise<boolean> {
  const current = await statusOf(tx, orderId);
  if (current === undefined || !from.includes(current)) return false;
  await transitionOrder(tx, orderId, to, { triggeredBy, error });
  return true;
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

async function copyStep(tx: Queryable, orderId: number, run: RunRecord, step: StepRecord): Promise<void> {
  // The task's summary names the step for people; the task id when it has none.
  const { rows } = await tx.query<{ summary: string | null }>(
    `SELECT COALESCE(document->'tasks'->($3::text)->>'summary',
              (SELECT s->>'summary' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(document->'steps') = 'array' THEN document->'steps' ELSE '[]'::jsonb END) s
                WHERE s->>'id' = $3::text LIMIT 1)) AS summary
       FROM workflows WHERE name = $1 AND version = $2`,
    [run.workflow, run.version, step.stepId],
  );
  await tx.query(
    `INSERT INTO order_steps (order_id, run_id, step_id, name, status, attempt, input, output, error_message, started_at, finished_at, duration_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      orderId,
      run.id,
      step.stepId,
      rows[0]?.summary ?? step.stepId,
      STEP_STATUS[step.status],
      step.attempt,
      JSON.stringify(stripSecrets(step.input ?? null)),
      JSON.stringify(step.output ?? null),
      step.error ? `${step.error.code}: ${step.error.message}` : null,
      step.startedAt,
      step.finishedAt,
      step.durationMs,
    ],
  );
}

export function createOrderRuns(deps: OrderRunsDeps): OrderRuns {
  const { db, queue, logger } = deps;
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
      const { rows } = await tx.query<{ state: string; assigned_order_id: number | null }>('SELECT state, assigned_order_id FROM assets WHERE id = $1 FOR UPDATE', [r.asset_id]);
      const a = rows[0];
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
    if (r.request_order_id !== null) await moveIf(tx, r.request_order_id, [OrderStatus.PROCESSING], OrderStatus.PROVISIONED, ORDER_DEPROVISION_ACTOR);
  }

  async function failDeprovision(tx: Queryable, r: OrderRunRow, message: string): Promise<void> {
    const moved = await moveIf(tx, r.order_id, [OrderStatus.DEPROVISIONING], OrderStatus.FAILED, ORDER_DEPROVISION_ACTOR, message);
    if (r.request_order_id !== null) await moveIf(tx, r.request_order_id, [OrderStatus.PROCESSING], OrderStatus.FAILED, ORDER_DEPROVISION_ACTOR, message);
    if (!moved) {
      // A revoked order has no way out of `revoked`; the failure is kept on it and in the audit log.
      await tx.query('UPDATE orders SET error_message = $2, updated_at = now() WHERE id = $1', [r.order_id, message]);
      await writeAudit(tx, { entity: 'order', entityId: r.order_id, action: 'deprovision_failed', before: null, after: { error_message: message }, triggeredBy: ORDER_DEPROVISION_ACTOR });
    }
  }

  async function runEnded(tx: Queryable, run: RunRecord, outcome: { ok: true } | { ok: false; message: string }): Promise<void> {
    const r = await orderRunOf(tx, run);
    if (!r) return;
    if (r.phase === 'provision') {
      if (outcome.ok) await moveIf(tx, r.order_id, [OrderStatus.PROVISIONING], OrderStatus.PROVISIONED, ORDER_PROVISION_ACTOR);
      else await moveIf(tx, r.order_id, [OrderStatus.PROVISIONING], OrderStatus.FAILED, ORDER_PROVISION_ACTOR, outcome.message);
    } else if (r.phase === 'deprovision') {
      if (outcome.ok) await completeDeprovision(tx, r);
      else await failDeprovision(tx, r, outcome.message);
    } else if (r.asset_id !== null) {
      const { rows } = await tx.query<{ state: string }>('SELECT state FROM assets WHERE id = $1', [r.asset_id]);
      if (rows[0]?.state === 'reinstall') await finishReinstall(tx, r.asset_id, outcome.ok, { triggeredBy: ASSET_REINSTALL_ACTOR });
    }
  }

  const hooks: EngineHooks = {
    async runStarted(tx, run) {
      // Only a rerun moves its order back into the flow; a first run's order was moved by whoever started it.
      if (run.rerunOf === null) return;
      const r = await orderRunOf(tx, run);
      if (!r) return;
      if (r.phase === 'provision') {
        if (await moveIf(tx, r.order_id, [OrderStatus.FAILED], OrderStatus.PROCESSING, ORDER_PROVISION_ACTOR)) {
          await transitionOrder(tx, r.order_id, OrderStatus.PROVISIONING, { triggeredBy: ORDER_PROVISION_ACTOR });
        }
      } else if (r.phase === 'deprovision') {
        await moveIf(tx, r.order_id, [OrderStatus.FAILED], OrderStatus.DEPROVISIONING, ORDER_DEPROVISION_ACTOR);
      }
    },
    async stepFinished(tx, run, step) {
      const r = await orderRunOf(tx, run);
      if (!r) return;
      await copyStep(tx, r.order_id, run, step);
      if (r.request_order_id !== null) await copyStep(tx, r.request_order_id, run, step);
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
      // Revoked by a leaver, cancelled, or already taken up by an earlier delivery of this job: nothing to do.
      if (!o || o.action !== 'provision' || o.status !== OrderStatus.PROCESSING) {
        logger.info('order provision skipped', { orderId, status: o?.status ?? null });
        return;
      }
      if (await firstRunOf(tx, o.id, 'provision')) return;
      const actor = { triggeredBy: ORDER_PROVISION_ACTOR };
      let assetId = o.assigned_asset_id;
      if (o.assignment_model === 'capacity_pooled' && assetId === null) {
        const asset = await claimFreeAsset(tx, o.asset_type_id, o.id, actor);
        if (!asset) {
          await transitionOrder(tx, o.id, OrderStatus.FAILED, { ...actor, error: 'no free asset in the pool' });
          return;
        }
        assetId = asset.id;
        await tx.query('UPDATE orders SET assigned_asset_id = $2, updated_at = now() WHERE id = $1', [o.id, assetId]);
      }
      if (!o.provision_runbook) {
        // No runbook: nothing to carry out; the order is provisioned directly (audited by the transition).
        await transitionOrder(tx, o.id, OrderStatus.PROVISIONED, actor);
        return;
      }
      const started = await startRunFor(tx, o, o.provision_runbook, 'provision', { assetId, requestOrderId: null, policy: null }, ORDER_PROVISION_ACTOR);
      if ('error' in started) {
        if (assetId !== null) await releaseAsset(tx, assetId, o.id, 'return_to_pool', actor);
        await transitionOrder(tx, o.id, OrderStatus.FAILED, { ...actor, error: started.error });
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
      if (await firstRunOf(tx, o.id, 'deprovision')) return;
      const policy: DeprovisionPolicy = POLICIES.includes(job.policy as DeprovisionPolicy) ? (job.policy as DeprovisionPolicy) : o.deprovision_policy;
      const link: OrderRunRow = { run_id: '', order_id: o.id, request_order_id: requestId, phase: 'deprovision', asset_id: o.assigned_asset_id, policy };
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
      await queue.boss.work<{ orderId: number }>(QueueName.ORDER_PROVISION, async (jobs) => {
        for (const job of jobs) await provision(Number(job.data.orderId));
      });
      await queue.boss.work<DeprovisionJob>(QueueName.ORDER_DEPROVISION, async (jobs) => {
        for (const job of jobs) await deprovision(job.data);
      });
    },
  };
}

/** The order each run (of those given) carries out a phase of; runs of no order are absent. */
export async function orderIdsOfRuns(q: Queryable, runIds: readonly string[]): Promise<Map<string, number>> {
  if (runIds.length === 0) return new Map();
  const { rows } = await q.query<{ run_id: string; order_id: number }>('SELECT run_id::text AS run_id, order_id FROM order_runs WHERE run_id = ANY($1::uuid[])', [runIds]);
  return new Map(rows.map((r) => [r.run_id, Number(r.order_id)]));
}

/** The runs of an order (every phase, reruns included), newest first. */
export async function runIdsOfOrder(q: Queryable, orderId: number): Promise<string[]> {
  const { rows } = await q.query<{ run_id: string }>('SELECT run_id::text AS run_id FROM order_runs WHERE order_id = $1 ORDER BY created_at DESC', [orderId]);
  return rows.map((r) => r.run_id);
}
