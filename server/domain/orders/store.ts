import type { Queryable } from '../../../adapter';
import type { DeprovisionPolicy } from '../catalogue/asset-types';
import type { OrderStatus } from './order-status';

/*
 * The orders aggregate's SQL store. It holds the statements of orders carried out by runbook runs (order-runs.ts:
 * the `order_runs` links between orders and runs, the order's steps copied from its runs, the reads and writes of
 * orders and assets those hooks make inside the engine's transaction) and those other aggregates make on an order
 * (approvals). Placing and listing orders (orders.ts) and status transitions (order-status.ts) keep their own
 * statements for now.
 */

export type OrderRunPhase = 'provision' | 'deprovision' | 'reinstall';

/** An order with its type's runbooks, as a run of it needs it. */
export interface OrderForRun {
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

/** An `order_runs` row: which run carries out which phase of which order. */
export interface OrderRunRow {
  run_id: string;
  order_id: number;
  request_order_id: number | null;
  phase: OrderRunPhase;
  asset_id: number | null;
  policy: DeprovisionPolicy | null;
}

/** The order with its type's runbooks, locked; undefined for an unknown one. */
export async function lockOrder(tx: Queryable, id: number): Promise<OrderForRun | undefined> {
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

/** The first run of the order's phase; undefined when the phase has not started. */
export async function firstRunOf(tx: Queryable, orderId: number, phase: OrderRunPhase): Promise<string | undefined> {
  const { rows } = await tx.query<{ run_id: string }>('SELECT run_id FROM order_runs WHERE order_id = $1 AND phase = $2 AND first', [orderId, phase]);
  return rows[0]?.run_id;
}

export async function recordRun(tx: Queryable, r: OrderRunRow & { first: boolean }): Promise<void> {
  await tx.query(
    `INSERT INTO order_runs (run_id, order_id, request_order_id, phase, asset_id, policy, first) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [r.run_id, r.order_id, r.request_order_id, r.phase, r.asset_id, r.policy, r.first],
  );
}

/** The order's status, locked; undefined for an unknown order. */
export async function lockOrderStatus(tx: Queryable, orderId: number): Promise<OrderStatus | undefined> {
  const { rows } = await tx.query<{ status: OrderStatus }>('SELECT status FROM orders WHERE id = $1 FOR UPDATE', [orderId]);
  return rows[0]?.status;
}

/**
 * The `order_runs` row of the run, or of the nearest run it reruns (following `rerun_of`, at most 100 deep), with
 * how many reruns away it was found.
 */
export async function selectOrderRunInChain(tx: Queryable, runId: string): Promise<(OrderRunRow & { depth: number }) | undefined> {
  const { rows } = await tx.query<OrderRunRow & { depth: number }>(
    `WITH RECURSIVE chain (id, rerun_of, depth) AS (
       SELECT id, rerun_of, 0 FROM workflow_runs WHERE id = $1
       UNION ALL
       SELECT w.id, w.rerun_of, c.depth + 1 FROM workflow_runs w JOIN chain c ON w.id = c.rerun_of WHERE c.depth < 100
     )
     SELECT r.run_id, r.order_id, r.request_order_id, r.phase, r.asset_id, r.policy, c.depth
       FROM order_runs r JOIN chain c ON c.id = r.run_id
      ORDER BY c.depth LIMIT 1`,
    [runId],
  );
  return rows[0];
}

/** The summary the workflow version's task (graph or steps document) gives the step; null when it has none. */
export async function selectStepSummary(q: Queryable, workflow: string, version: number, stepId: string): Promise<string | null> {
  const { rows } = await q.query<{ summary: string | null }>(
    `SELECT COALESCE(document->'tasks'->($3::text)->>'summary',
              (SELECT s->>'summary' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(document->'steps') = 'array' THEN document->'steps' ELSE '[]'::jsonb END) s
                WHERE s->>'id' = $3::text LIMIT 1)) AS summary
       FROM workflows WHERE name = $1 AND version = $2`,
    [workflow, version, stepId],
  );
  return rows[0]?.summary ?? null;
}

/** One step of a run, copied onto the order it carries out (`order_steps`). */
export async function insertOrderStep(
  tx: Queryable,
  s: {
    orderId: number;
    runId: string;
    stepId: string;
    name: string;
    status: string;
    attempt: number;
    input: unknown;
    output: unknown;
    errorMessage: string | null;
    startedAt: Date | string | null;
    finishedAt: Date | string | null;
    durationMs: number | null;
  },
): Promise<void> {
  await tx.query(
    `INSERT INTO order_steps (order_id, run_id, step_id, name, status, attempt, input, output, error_message, started_at, finished_at, duration_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [s.orderId, s.runId, s.stepId, s.name, s.status, s.attempt, JSON.stringify(s.input), JSON.stringify(s.output), s.errorMessage, s.startedAt, s.finishedAt, s.durationMs],
  );
}

/** Keeps a failure on an order that cannot move (a revoked order has no way out of `revoked`). */
export async function setOrderError(tx: Queryable, orderId: number, message: string): Promise<void> {
  await tx.query('UPDATE orders SET error_message = $2, updated_at = now() WHERE id = $1', [orderId, message]);
}

/** Gives the order the id of the job that carries it out (chosen by the caller, so the job can carry it too). */
export async function setOrderJob(tx: Queryable, orderId: number, jobId: string): Promise<void> {
  await tx.query('UPDATE orders SET job_id = $2, updated_at = now() WHERE id = $1', [orderId, jobId]);
}

export async function setOrderAsset(tx: Queryable, orderId: number, assetId: number): Promise<void> {
  await tx.query('UPDATE orders SET assigned_asset_id = $2, updated_at = now() WHERE id = $1', [orderId, assetId]);
}

/** The asset a run works on, as `{{asset.*}}` reads it; undefined for an unknown one. */
export async function selectAssetForRun(q: Queryable, assetId: number): Promise<{ id: number; name: string; attributes: Record<string, unknown> } | undefined> {
  const { rows } = await q.query<{ id: number; name: string; attributes: Record<string, unknown> }>('SELECT id, name, attributes FROM assets WHERE id = $1', [assetId]);
  return rows[0];
}

/** The asset's state and the order it is assigned to, locked. */
export async function lockAssetAssignment(tx: Queryable, assetId: number): Promise<{ state: string; assigned_order_id: number | null } | undefined> {
  const { rows } = await tx.query<{ state: string; assigned_order_id: number | null }>('SELECT state, assigned_order_id FROM assets WHERE id = $1 FOR UPDATE', [assetId]);
  return rows[0];
}

export async function selectAssetState(q: Queryable, assetId: number): Promise<string | undefined> {
  const { rows } = await q.query<{ state: string }>('SELECT state FROM assets WHERE id = $1', [assetId]);
  return rows[0]?.state;
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
