import type { Queryable } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import type { Assert, Same, Stored } from '../../api/spec-types';
import type { AssetTypeRow, AttributeDef, DeprovisionPolicy } from '../catalogue/asset-types';
import type { RequesterSnapshot } from '../identity/requester-directory';
import { queryPage, Where, type Page, type PageRequest } from '../paging';

/*
 * The orders aggregate's SQL store: every statement on orders and their steps sits here, parameterised, so the
 * domain modules read as decisions. Placing, taking back and listing orders (orders.ts), status transitions
 * (order-status.ts), orders carried out by runbook runs (order-runs.ts: the `order_runs` links between orders and
 * runs, the order's steps copied from its runs, the reads and writes of orders and assets those hooks make inside
 * the engine's transaction) and what other aggregates do to an order (approvals). Statements run in the caller's
 * transaction and throw the driver's errors as they come: mapping them onto domain errors is the caller's decision.
 */

// The spec's enum, which order-status.ts's `OrderStatus` is checked to equal; named from the spec here because
// order-status.ts calls this module.
type OrderStatus = Api.OrderStatus;

export type OrderSource = NonNullable<Api.Order['source']>;
export type OrderAction = Api.OrderAction;

const SNAPSHOT_FIELDS = ['department', 'cost_center', 'company', 'employee_id', 'title'] as const;
// A snapshot field the spec adds needs its column (a migration) and its place here; without this check the API
// would accept it and the order would silently drop it.
type SnapshotFieldsMatchSpec = Assert<Same<(typeof SNAPSHOT_FIELDS)[number], keyof RequesterSnapshot>>;
const REQUESTER_COLUMNS = SNAPSHOT_FIELDS.map((f) => `requester_${f}` as const);

/** The snapshot as the `orders` row holds it: one nullable `requester_<field>` column per snapshot field. */
export type RequesterColumns = { [K in keyof RequesterSnapshot as `requester_${K}`]-?: string | null };

/** Whether the snapshot names every field a row has a column for (then the directory has nothing to add). */
export function isFullSnapshot(s: RequesterSnapshot): boolean {
  return SNAPSHOT_FIELDS.every((f) => f in s);
}

/** The snapshot as the row's columns; a field not given is null. */
export function requesterColumns(s: RequesterSnapshot): RequesterColumns {
  return Object.fromEntries(SNAPSHOT_FIELDS.map((f) => [`requester_${f}`, s[f] ?? null])) as RequesterColumns;
}

/** The requester snapshot an order row holds (null where the directory and the caller knew nothing). */
export function requesterOf(row: RequesterColumns): RequesterSnapshot {
  return Object.fromEntries(SNAPSHOT_FIELDS.map((f) => [f, row[`requester_${f}`]])) as RequesterSnapshot;
}

/**
 * An `orders` row: the API's order with `Date` timestamps, its requester snapshot in columns, and who created it.
 * `steps` are rows of their own (`OrderStepRow`).
 */
export type OrderRow = Stored<
  Omit<Api.Order, 'source' | 'requester' | 'steps'>,
  'requested_from' | 'requested_until' | 'extension_requested_until' | 'created_at' | 'updated_at'
> &
  RequesterColumns & { source: OrderSource; created_by: string };

/** An `order_steps` row: the API's order step with `Date` timestamps. */
export type OrderStepRow = Stored<Api.OrderStep, 'started_at' | 'finished_at'>;

const ORDER_COLUMNS = `id, asset_type_id, action, target_order_id, status, source, servicenow_ref, snow_req, user_email,
  user_name, owner_email, owner_name, assigned_asset_id, rdp_users, admin_users, requested_from, requested_until,
  extension_requested_until, config, job_id, error_message, ${REQUESTER_COLUMNS.join(', ')}, created_by, created_at, updated_at`;

// ---------------------------------------------------------------------------------------------------------------
// Placing orders

/** The asset type, by exact name or by id; the field name is what an unknown one is reported against. */
export type AssetTypeRef = { name: string } | { id: number };

/** What creating an order reads of its asset type; `version` is the row's `xmin`, which any change moves on. */
export interface OrderType {
  id: number;
  version: string;
  name: string;
  assignment_model: AssetTypeRow['assignment_model'];
  pool_size: number | null;
  max_per_user: number | null;
  requires_approval: boolean;
  attributes: AttributeDef[];
  allow_user_lists: boolean;
  /** The longest an order may run (requested_from, else creation, to requested_until); null: no limit. */
  max_duration_days: number | null;
}

const ORDER_TYPE_COLUMNS = `xmin::text AS version, id, name, assignment_model, pool_size, max_per_user, requires_approval,
  attributes, allow_user_lists, max_duration_days`;

/** The WHERE condition and parameter that find the asset type `ref` names. */
const typeMatch = (ref: AssetTypeRef): [string, string | number] =>
  'name' in ref ? ['name = $1::text', ref.name] : ['id = $1::bigint', ref.id];

/** The asset type as order placement reads it; undefined for an unknown one. */
export async function selectOrderType(q: Queryable, ref: AssetTypeRef): Promise<OrderType | undefined> {
  const [condition, value] = typeMatch(ref);
  const { rows } = await q.query<OrderType>(`SELECT ${ORDER_TYPE_COLUMNS} FROM asset_types WHERE ${condition}`, [value]);
  return rows[0];
}

/**
 * The asset type as order placement reads it and, in the same statement, the per-user lock of (type, user); undefined
 * (and no lock) for an unknown type. The lock is transaction-scoped: released at COMMIT/ROLLBACK, when the new row is
 * already visible to the next holder, whose later statements take a new snapshot (READ COMMITTED).
 */
export async function selectOrderTypeLockingUser(tx: Queryable, ref: AssetTypeRef, userEmail: string): Promise<OrderType | undefined> {
  const [condition, value] = typeMatch(ref);
  const { rows } = await tx.query<OrderType>(
    `SELECT ${ORDER_TYPE_COLUMNS},
            pg_advisory_xact_lock(hashtextextended('order-user:' || id || ':' || $2::text, 0)) AS user_lock
       FROM asset_types WHERE ${condition}`,
    [value, userEmail],
  );
  return rows[0];
}

/** What `provisio_place_order` takes: the checks to make, the row (as audited), its audit entry and its job. */
export interface OrderPlacement {
  typeId: number;
  /** The type's `version` the order was validated against; another one raises PV001. */
  typeVersion: string;
  checkLimits: boolean;
  lockUser: boolean;
  activeStatuses: readonly OrderStatus[];
  /** The new row's values, `id: null` (the INSERT assigns it); also the audit row's `after`. */
  after: Record<string, unknown>;
  /** The audit row's `{before, after}`, secrets stripped. */
  audit: unknown;
  requestId: string | null;
  job: { queue: string; data: object } | null;
  /**
   * Delayed jobs written by the same statement (so an order with a window still costs one round trip):
   * `startQueue` is the order's job held until its `requested_from` (given instead of `job`, with id `job_id`),
   * `expiryQueue` the job due at its `requested_until` (none when the order has no end).
   */
  delayed?: { startQueue: string | null; expiryQueue: string | null } | undefined;
}

/**
 * Places the order with `provisio_place_order` (migration 014): the type's version check, the per-user and pool
 * locks, the duplicate, pool and quota checks, the INSERT, its audit row and its job, in one statement and so one
 * round trip. Its refusals arrive as errors with SQLSTATE PV001 (type changed), PV002 (servicenow_ref exists, the
 * ref in `detail`), PV003 (pool full) and PV004 (quota full), both with `<in use>/<limit>` in `detail`; racing
 * duplicates without a lock meet at the unique index (23505).
 */
export async function insertOrder(q: Queryable, p: OrderPlacement): Promise<OrderRow> {
  const params = [
    p.typeId, p.typeVersion, p.checkLimits, p.lockUser, p.activeStatuses,
    JSON.stringify(p.after), JSON.stringify(p.audit), p.requestId,
    p.job?.queue ?? null, p.job ? JSON.stringify(p.job.data) : null,
  ];
  const place = `provisio_place_order($1::bigint, $2::text, $3::boolean, $4::boolean, $5::text[], $6::jsonb, $7::jsonb, $8::text, $9::text, $10::jsonb)`;
  if (!p.delayed) {
    const { rows } = await q.query<OrderRow>(`SELECT ${ORDER_COLUMNS} FROM ${place}`, params);
    if (!rows[0]) throw new Error('order placement returned no row');
    return rows[0];
  }
  // The placed row feeds the delayed jobs; a CTE calling a volatile function is evaluated once, never inlined.
  // The expiry job carries the requested_until it was set for: one left behind by an extension finds the
  // order's end moved and does nothing. An end already past when the order is placed (a ticket sent late) gets
  // no expiry: taking back what is being handed out in the same breath would only cost two runbook runs.
  const { rows } = await q.query<OrderRow & { start_job: string | null; expiry_job: string | null }>(
    `WITH placed AS (SELECT * FROM ${place})
     SELECT ${ORDER_COLUMNS},
            CASE WHEN $11::text IS NOT NULL
                 THEN provisio_enqueue_job($11::text, job_id::uuid, jsonb_build_object('orderId', id), requested_from) END AS start_job,
            CASE WHEN $12::text IS NOT NULL AND requested_until > now()
                 THEN provisio_enqueue_job($12::text, NULL, jsonb_build_object('orderId', id, 'requestedUntil', requested_until),
                                           requested_until) END AS expiry_job
       FROM placed`,
    [...params, p.delayed.startQueue, p.delayed.expiryQueue],
  );
  const row = rows[0];
  if (!row) throw new Error('order placement returned no row');
  const { start_job: _s, expiry_job: _e, ...order } = row;
  return order;
}

/** Whether an order with this `servicenow_ref` exists. */
export async function servicenowRefExists(tx: Queryable, ref: string): Promise<boolean> {
  return (await tx.query('SELECT 1 FROM orders WHERE servicenow_ref = $1', [ref])).rows.length > 0;
}

/**
 * The id and status of the user's provision order of the type that a take-back aims at, locked: the newest in one
 * of `statuses` that is not failed, else the newest failed one (what the user holds comes before what failed to
 * reach them); undefined when there is none. An order another take-back already waits for (its provision still
 * running) is passed over, as one already `deprovisioning` is by `statuses`.
 */
export async function lockDeleteTarget(
  tx: Queryable,
  assetTypeId: number,
  userEmail: string,
  statuses: readonly OrderStatus[],
): Promise<{ id: number; status: OrderStatus } | undefined> {
  const { rows } = await tx.query<{ id: number; status: OrderStatus }>(
    `SELECT o.id, o.status FROM orders o
      WHERE o.asset_type_id = $1 AND o.user_email = $2 AND o.action = 'provision' AND o.status = ANY($3::text[])
        AND NOT EXISTS (SELECT 1 FROM orders d WHERE d.target_order_id = o.id AND d.action = 'delete' AND d.status = 'deprovisioning')
      ORDER BY o.status = 'failed', o.created_at DESC, o.id DESC LIMIT 1 FOR UPDATE OF o`,
    [assetTypeId, userEmail, statuses],
  );
  const r = rows[0];
  return r ? { id: Number(r.id), status: r.status } : undefined;
}

/** A ServiceNow delete still taking its target back: its id, job id and who asked (for the target's transition). */
export interface OpenTakeBack {
  id: number;
  job_id: string | null;
  created_by: string;
}

/** The delete orders still taking back order `targetId` (`deprovisioning`), locked, oldest first. */
export async function lockOpenTakeBacks(tx: Queryable, targetId: number): Promise<OpenTakeBack[]> {
  const { rows } = await tx.query<OpenTakeBack>(
    `SELECT id, job_id, created_by FROM orders
      WHERE target_order_id = $1 AND action = 'delete' AND status = 'deprovisioning' ORDER BY id FOR UPDATE`,
    [targetId],
  );
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

/** The requester snapshot columns of an order; undefined for an unknown one. */
export async function selectRequesterColumns(tx: Queryable, orderId: number): Promise<RequesterColumns | undefined> {
  const { rows } = await tx.query<RequesterColumns>(`SELECT ${REQUESTER_COLUMNS.join(', ')} FROM orders WHERE id = $1`, [orderId]);
  return rows[0];
}

// ---------------------------------------------------------------------------------------------------------------
// Reading orders

export async function selectOrder(q: Queryable, id: number): Promise<OrderRow | undefined> {
  const { rows } = await q.query<OrderRow>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = $1`, [id]);
  return rows[0];
}

/** The order's steps in the order they ran. */
export async function selectOrderSteps(q: Queryable, orderId: number): Promise<OrderStepRow[]> {
  const { rows } = await q.query<OrderStepRow>(
    `SELECT id, step_id, name, status, attempt, error_message, started_at, finished_at, duration_ms
       FROM order_steps WHERE order_id = $1 ORDER BY started_at, id`,
    [orderId],
  );
  return rows;
}

export interface OrderFilters extends PageRequest {
  /** The user's email, compared case-insensitively. */
  user?: string | undefined;
  status?: OrderStatus | undefined;
  /** Asset type id (all digits) or exact name. */
  assetType?: string | undefined;
  servicenowRef?: string | undefined;
}

/** One page of orders, newest first, and how many match in all. */
export async function selectOrders(q: Queryable, f: OrderFilters): Promise<Page<OrderRow>> {
  const where = new Where();
  if (f.user !== undefined) where.and('user_email = ?', f.user.trim().toLowerCase());
  if (f.status !== undefined) where.and('status = ?', f.status);
  if (f.assetType !== undefined) {
    // Digits are an id only while they can be one (ids are bigint, answered as JSON numbers): longer digit runs can
    // only be a name, and as a number they would reach SQL out of range.
    const id = /^\d{1,16}$/.test(f.assetType) ? Number(f.assetType) : NaN;
    if (Number.isSafeInteger(id)) where.and('asset_type_id = ?', id);
    else where.and('asset_type_id = (SELECT id FROM asset_types WHERE name = ?)', f.assetType);
  }
  if (f.servicenowRef !== undefined) where.and('servicenow_ref = ?', f.servicenowRef);
  return queryPage<OrderRow>(
    q,
    { select: `SELECT ${ORDER_COLUMNS} FROM orders`, countFrom: 'orders', where, orderBy: 'created_at DESC, id DESC' },
    f,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Status transitions

/** The order's status and error, locked (concurrent transitions of one order then run one after the other). */
export async function lockOrderForTransition(tx: Queryable, id: number): Promise<{ status: OrderStatus; error_message: string | null } | undefined> {
  const { rows } = await tx.query<{ status: OrderStatus; error_message: string | null }>(
    'SELECT status, error_message FROM orders WHERE id = $1 FOR UPDATE',
    [id],
  );
  return rows[0];
}

export async function updateOrderStatus(tx: Queryable, id: number, status: OrderStatus, errorMessage: string | null): Promise<void> {
  await tx.query('UPDATE orders SET status = $2, error_message = $3, updated_at = now() WHERE id = $1', [id, status, errorMessage]);
}

// ---------------------------------------------------------------------------------------------------------------
// Orders carried out by runbook runs

export type OrderRunPhase = 'provision' | 'deprovision' | 'reinstall';

/** An order with its type's runbooks, as a run of it needs it. */
export interface OrderForRun {
  id: number;
  action: 'provision' | 'delete';
  status: OrderStatus;
  asset_type_id: number;
  /** The asset type's name: a personal instance is named after it. */
  type_name: string;
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
    `SELECT o.id, o.action, o.status, o.asset_type_id, t.name AS type_name, t.assignment_model, t.provision_runbook, t.deprovision_runbook,
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

/** The newest run (first or rerun) of the order's phase with its status; undefined when the phase never ran. */
export async function selectLatestRunOf(tx: Queryable, orderId: number, phase: OrderRunPhase): Promise<{ run_id: string; status: string } | undefined> {
  const { rows } = await tx.query<{ run_id: string; status: string }>(
    `SELECT w.id::text AS run_id, w.status FROM order_runs r JOIN workflow_runs w ON w.id = r.run_id
      WHERE r.order_id = $1 AND r.phase = $2 ORDER BY w.created_at DESC, r.first LIMIT 1`,
    [orderId, phase],
  );
  return rows[0];
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

export async function setOrderAsset(tx: Queryable, orderId: number, assetId: number | null): Promise<void> {
  await tx.query('UPDATE orders SET assigned_asset_id = $2, updated_at = now() WHERE id = $1', [orderId, assetId]);
}

/** The asset a run works on, as `{{asset.*}}` reads it; undefined for an unknown one. */
export async function selectAssetForRun(
  q: Queryable,
  assetId: number,
): Promise<{ id: number; name: string; attributes: Record<string, unknown>; owner_email: string | null } | undefined> {
  const { rows } = await q.query<{ id: number; name: string; attributes: Record<string, unknown>; owner_email: string | null }>(
    'SELECT id, name, attributes, owner_email FROM assets WHERE id = $1',
    [assetId],
  );
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

// ---------------------------------------------------------------------------------------------------------------
// The order lifecycle (lifecycle.ts): cancel, return, extend, retry, expiry

/** What the lifecycle commands read of an order and its type, locked. */
export interface LifecycleOrder {
  id: number;
  action: OrderAction;
  status: OrderStatus;
  user_email: string;
  asset_type_id: number;
  type_name: string;
  requires_approval: boolean;
  max_duration_days: number | null;
  deprovision_policy: DeprovisionPolicy;
  assigned_asset_id: number | null;
  requested_from: Date | null;
  requested_until: Date | null;
  extension_requested_until: Date | null;
  created_at: Date;
}

const toDate = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));

/** The order with what the lifecycle needs of its type, locked (FOR UPDATE); undefined for an unknown one. */
export async function lockLifecycleOrder(tx: Queryable, id: number): Promise<LifecycleOrder | undefined> {
  const { rows } = await tx.query<LifecycleOrder>(
    `SELECT o.id, o.action, o.status, o.user_email, o.asset_type_id, t.name AS type_name, t.requires_approval, t.max_duration_days,
            t.deprovision_policy, o.assigned_asset_id, o.requested_from, o.requested_until, o.extension_requested_until,
            o.created_at
       FROM orders o JOIN asset_types t ON t.id = o.asset_type_id
      WHERE o.id = $1
      FOR UPDATE OF o`,
    [id],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    ...r,
    id: Number(r.id),
    asset_type_id: Number(r.asset_type_id),
    assigned_asset_id: r.assigned_asset_id === null ? null : Number(r.assigned_asset_id),
    requested_from: toDate(r.requested_from),
    requested_until: toDate(r.requested_until),
    extension_requested_until: toDate(r.extension_requested_until),
    created_at: new Date(r.created_at),
  };
}

/** The newest run of the order's phase (a rerun once it has been recorded, else the first); undefined when none. */
export async function latestRunOf(q: Queryable, orderId: number, phase: OrderRunPhase): Promise<string | undefined> {
  const { rows } = await q.query<{ run_id: string }>(
    `SELECT r.run_id::text AS run_id FROM order_runs r JOIN workflow_runs w ON w.id = r.run_id
      WHERE r.order_id = $1 AND r.phase = $2 ORDER BY w.created_at DESC, r.created_at DESC LIMIT 1`,
    [orderId, phase],
  );
  return rows[0]?.run_id;
}

/** How many reruns the run has (a second one means two retries raced, and the later must give way). */
export async function countReruns(q: Queryable, runId: string): Promise<number> {
  const { rows } = await q.query<{ n: number }>('SELECT count(*)::int AS n FROM workflow_runs WHERE rerun_of = $1', [runId]);
  return Number(rows[0]?.n ?? 0);
}

/**
 * The status the order was in when it last failed (from its audit trail, the one record of it): `processing` or
 * `provisioning` for a failed provision, `deprovisioning` for a failed take-back; undefined when it never failed.
 */
export async function selectFailedFrom(q: Queryable, orderId: number): Promise<OrderStatus | undefined> {
  const { rows } = await q.query<{ status: OrderStatus }>(
    `SELECT diff->'before'->>'status' AS status FROM audit_log
      WHERE entity = 'order' AND entity_id = $1 AND action = 'transition' AND diff->'after'->>'status' = 'failed'
      ORDER BY id DESC LIMIT 1`,
    [String(orderId)],
  );
  return rows[0]?.status ?? undefined;
}

/** Whether the order holds a pool instance (assigned to it and in use). */
export async function holdsAsset(q: Queryable, orderId: number): Promise<boolean> {
  const { rows } = await q.query(`SELECT 1 FROM assets WHERE assigned_order_id = $1 AND state = 'in_use'`, [orderId]);
  return rows.length > 0;
}

/**
 * Forgets an asset id the order no longer holds (released when its provision could not start), so that a fresh
 * provision claims a free instance instead of running against one that is someone else's now.
 */
export async function clearStaleOrderAsset(tx: Queryable, orderId: number): Promise<void> {
  await tx.query(
    `UPDATE orders o SET assigned_asset_id = NULL, updated_at = now()
      WHERE o.id = $1 AND o.assigned_asset_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.id = o.assigned_asset_id AND a.state = 'in_use' AND a.assigned_order_id = o.id)`,
    [orderId],
  );
}

/** Sets the order's end and the extension waiting for approval (null: none). */
export async function setOrderWindow(tx: Queryable, orderId: number, requestedUntil: Date | null, extensionRequestedUntil: Date | null): Promise<void> {
  await tx.query('UPDATE orders SET requested_until = $2, extension_requested_until = $3, updated_at = now() WHERE id = $1', [
    orderId,
    requestedUntil,
    extensionRequestedUntil,
  ]);
}

/** What a mail says of an order: its type, its asset (a pool instance's name), its requester, its window. */
export interface OrderSummary {
  id: number;
  status: OrderStatus;
  user_email: string;
  user_name: string;
  asset_type_name: string;
  asset_name: string | null;
  requested_from: Date | null;
  requested_until: Date | null;
  extension_requested_until: Date | null;
}

/** The orders' summaries, in id order (unknown ids are left out). */
export async function selectOrderSummaries(q: Queryable, ids: readonly number[]): Promise<OrderSummary[]> {
  if (ids.length === 0) return [];
  const { rows } = await q.query<OrderSummary>(
    `SELECT o.id, o.status, o.user_email, o.user_name, t.name AS asset_type_name, a.name AS asset_name, o.requested_from, o.requested_until,
            o.extension_requested_until
       FROM orders o JOIN asset_types t ON t.id = o.asset_type_id LEFT JOIN assets a ON a.id = o.assigned_asset_id
      WHERE o.id = ANY($1::bigint[]) ORDER BY o.id`,
    [ids],
  );
  return rows.map((r) => ({
    ...r,
    id: Number(r.id),
    requested_from: r.requested_from === null ? null : new Date(r.requested_from),
    requested_until: r.requested_until === null ? null : new Date(r.requested_until),
    extension_requested_until: r.extension_requested_until === null ? null : new Date(r.extension_requested_until),
  }));
}
