import { randomUUID } from 'node:crypto';
import { PgErrorCode, QueueName, sqlState, type Database, type JobQueue, type Logger, type Queryable } from '../../adapter';
import { AppError, ErrorCode, conflict, invalidField, notFound } from '../errors';
import { validateOrderConfig, type AssetTypeRow, type AttributeDef } from './asset-types';
import { routeNewApproval } from './approvals';
import { stripSecrets } from './audit';
import { ACTIVE_STATUSES, OrderStatus, transitionOrder } from './order-status';

/** The requester's directory attributes, copied onto the order when it is placed. */
export interface RequesterSnapshot {
  department?: string | null;
  cost_center?: string | null;
  company?: string | null;
  employee_id?: string | null;
  title?: string | null;
}

/** Looks people up in a directory (Active Directory, an HR system); undefined when the person is not found. */
export interface RequesterDirectory {
  lookup(email: string): Promise<RequesterSnapshot | undefined>;
  /** The person's manager (an email), when the directory knows one; approvals are routed to them. */
  managerOf?(email: string): Promise<string | undefined>;
}

export type OrderSource = 'api' | 'servicenow' | 'portal';
export type OrderAction = 'provision' | 'delete';

/** An `orders` row. */
export interface OrderRow {
  id: number;
  asset_type_id: number;
  action: OrderAction;
  target_order_id: number | null;
  status: OrderStatus;
  source: OrderSource;
  servicenow_ref: string | null;
  snow_req: string | null;
  user_email: string;
  user_name: string;
  owner_email: string | null;
  owner_name: string | null;
  assigned_asset_id: number | null;
  rdp_users: string[];
  admin_users: string[];
  requested_from: Date | null;
  requested_until: Date | null;
  config: Record<string, unknown>;
  job_id: string | null;
  error_message: string | null;
  requester_department: string | null;
  requester_cost_center: string | null;
  requester_company: string | null;
  requester_employee_id: string | null;
  requester_title: string | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

/** An `order_steps` row as the API shows it. */
export interface OrderStepRow {
  id: number;
  step_id: string;
  name: string;
  status: 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';
  attempt: number;
  error_message: string | null;
  started_at: Date;
  finished_at: Date | null;
  duration_ms: number | null;
}

/** What creating an order needs from outside. */
export interface OrderDeps {
  db: Database;
  queue: JobQueue;
  /** Fills the requester snapshot; none configured means the snapshot is only what the caller sent. */
  directory?: RequesterDirectory | undefined;
  logger?: Logger | undefined;
}

/** Who asked, for the audit row and `created_by`. */
export interface OrderActor {
  /** `webhook:token:<name>`, `webhook:hmac`, `api:token:<name>`, `admin:key`, … */
  triggeredBy: string;
  requestId?: string | undefined;
}

/** The asset type, by exact name or by id; the field name is what an unknown one is reported against. */
export type AssetTypeRef = { name: string } | { id: number };

export interface CreateOrderInput {
  assetType: AssetTypeRef;
  source: OrderSource;
  servicenowRef?: string | null | undefined;
  snowReq?: string | null | undefined;
  userEmail: string;
  userName: string;
  ownerEmail?: string | null | undefined;
  ownerName?: string | null | undefined;
  /** ISO 8601 date-times. */
  requestedFrom?: string | null | undefined;
  requestedUntil?: string | null | undefined;
  rdpUsers?: string[] | null | undefined;
  adminUsers?: string[] | null | undefined;
  config?: Record<string, unknown> | null | undefined;
  /** Explicit snapshot values; they win over the directory's. */
  requester?: RequesterSnapshot | undefined;
}

const ORDER_COLUMNS = `id, asset_type_id, action, target_order_id, status, source, servicenow_ref, snow_req, user_email,
  user_name, owner_email, owner_name, assigned_asset_id, rdp_users, admin_users, requested_from, requested_until,
  config, job_id, error_message, requester_department, requester_cost_center, requester_company,
  requester_employee_id, requester_title, created_by, created_at, updated_at`;

const SNAPSHOT_FIELDS = ['department', 'cost_center', 'company', 'employee_id', 'title'] as const;

/** Statuses a `delete` may take an order back from; an order already being taken back is not a target again. */
const DELETABLE_STATUSES: readonly OrderStatus[] = ACTIVE_STATUSES.filter((s) => s !== OrderStatus.DEPROVISIONING);

function unknownAssetType(ref: AssetTypeRef): AppError {
  const [field, shown] = 'name' in ref ? ['asset_type_name', `'${ref.name}'`] : ['asset_type_id', String(ref.id)];
  return new AppError(ErrorCode.UNKNOWN_ASSET_TYPE, 400, `asset type ${shown} does not exist`, [
    { path: `/body/${field}`, message: 'is not an asset type' },
  ]);
}

/** The 409 of a duplicate delivery; its wording is the ServiceNow contract's. */
export function duplicateServiceNowRef(ref: string): AppError {
  return conflict(`Order with servicenow_ref '${ref}' already exists`);
}

/** What creating an order reads of its asset type. */
interface OrderType {
  id: number;
  name: string;
  assignment_model: AssetTypeRow['assignment_model'];
  pool_size: number | null;
  max_per_user: number | null;
  requires_approval: boolean;
  attributes: AttributeDef[];
  allow_user_lists: boolean;
}

/**
 * Reads the asset type and, in the same statement, takes the per-user lock when the type has a quota (or when
 * `alwaysLockUser`). The lock serialises the orders of one user for one type across transactions and processes,
 * so a quota check and the insert it allows happen as one step. It is transaction-scoped: released at
 * COMMIT/ROLLBACK, when the new row is already visible to the next holder, whose later statements take a new
 * snapshot (READ COMMITTED). The statement that takes the lock must not be the one that counts: its snapshot
 * predates the lock. One round trip instead of two matters on the webhook's hot path.
 * Throws UNKNOWN_ASSET_TYPE (400) naming the field the type was given by.
 */
async function lookupTypeAndLockUser(tx: Queryable, ref: AssetTypeRef, userEmail: string, alwaysLockUser: boolean): Promise<OrderType> {
  const { rows } = await tx.query<OrderType>(
    `SELECT id, name, assignment_model, pool_size, max_per_user, requires_approval, attributes, allow_user_lists,
            CASE WHEN $3::boolean OR max_per_user IS NOT NULL
                 THEN pg_advisory_xact_lock(hashtextextended('order-user:' || id || ':' || $2::text, 0)) END AS user_lock
       FROM asset_types WHERE ${'name' in ref ? 'name = $1::text' : 'id = $1::bigint'}`,
    ['name' in ref ? ref.name : ref.id, userEmail, alwaysLockUser],
  );
  const type = rows[0];
  if (!type) throw unknownAssetType(ref);
  return type;
}

/**
 * Serialises the creators of orders of one pooled type on its row (FOR NO KEY UPDATE: exclusive among them, yet
 * inserts that reference the row still proceed) and re-reads the pool size under the lock, so a concurrent edit
 * of the type is honoured. Always taken after the per-user lock, so the two never deadlock.
 */
async function lockPool(tx: Queryable, assetTypeId: number): Promise<number | null> {
  const { rows } = await tx.query<{ pool_size: number | null }>('SELECT pool_size FROM asset_types WHERE id = $1 FOR NO KEY UPDATE', [assetTypeId]);
  return rows[0]?.pool_size ?? null;
}

function parseInstant(field: string, value: string | null | undefined): Date | null {
  if (value === null || value === undefined) return null;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw invalidField(`/body/${field}`, 'must be an ISO 8601 date-time');
  return d;
}

interface Validated {
  requestedFrom: Date | null;
  requestedUntil: Date | null;
  rdpUsers: string[];
  adminUsers: string[];
  config: Record<string, unknown>;
}

/** The checks that need only the asset type: window, user lists, config. Throws VALIDATION_FAILED (422). */
function validateAgainstType(type: OrderType, input: CreateOrderInput, opts: { requireAttributes: boolean }): Validated {
  const requestedFrom = parseInstant('requested_from', input.requestedFrom);
  const requestedUntil = parseInstant('requested_until', input.requestedUntil);
  if (requestedFrom && requestedUntil && requestedUntil.getTime() <= requestedFrom.getTime()) {
    throw invalidField('/body/requested_until', 'must be after requested_from');
  }
  const rdpUsers = input.rdpUsers ?? [];
  const adminUsers = input.adminUsers ?? [];
  // An empty list asks for nothing, so it is accepted whatever the type allows.
  if (!type.allow_user_lists) {
    if (rdpUsers.length > 0) throw invalidField('/body/rdp_users', `asset type '${type.name}' does not allow user lists`);
    if (adminUsers.length > 0) throw invalidField('/body/admin_users', `asset type '${type.name}' does not allow user lists`);
  }
  const config = input.config ?? {};
  const attributes = opts.requireAttributes ? type.attributes : type.attributes.map((a) => ({ ...a, required: false }));
  validateOrderConfig(attributes, config);
  return { requestedFrom, requestedUntil, rdpUsers, adminUsers, config };
}

/** The directory's snapshot overlaid with the caller's explicit values; a failing directory leaves only the latter. */
async function requesterSnapshot(deps: OrderDeps, email: string, explicit: RequesterSnapshot | undefined): Promise<RequesterSnapshot> {
  const given = Object.fromEntries(Object.entries(explicit ?? {}).filter(([, v]) => v !== undefined)) as RequesterSnapshot;
  if (!deps.directory || SNAPSHOT_FIELDS.every((f) => f in given)) return given;
  try {
    const found = await deps.directory.lookup(email);
    return { ...(found ?? {}), ...given };
  } catch (err) {
    // A directory outage must not stop orders: the snapshot is for reporting, not for the checks.
    deps.logger?.warn('requester directory lookup failed; order keeps no directory snapshot', {
      err: err instanceof Error ? err.message : String(err),
    });
    return given;
  }
}

interface PlaceOrder {
  jobId: string | null;
  assetTypeId: number;
  /** For the 429 details. */
  assetTypeName: string;
  action: OrderAction;
  targetOrderId: number | null;
  status: OrderStatus;
  source: OrderSource;
  servicenowRef: string | null;
  snowReq: string | null;
  userEmail: string;
  userName: string;
  ownerEmail: string | null;
  ownerName: string | null;
  v: Validated;
  snapshot: RequesterSnapshot;
  /** Pool size to stay under (null: no pool check). The caller holds the pool lock. */
  poolSize: number | null;
  /** Per-user quota to stay under (null: no quota check). The caller holds the per-user lock. */
  maxPerUser: number | null;
  actor: OrderActor;
}

/**
 * Checks and writes in one statement: the duplicate check, the counts the limits need (each only when its limit
 * exists: the per-user count is an index lookup, the pool count reads the type's active orders), the INSERT that
 * happens only when they pass, and its audit row. Answers why nothing was inserted, or the new row.
 *
 * The audit row is what `writeAudit` writes for a creation ({before: null, after}, secrets stripped), with the id
 * the INSERT assigned; it is written here, in the same statement, because every round trip counts on this path.
 */
async function placeOrder(tx: Queryable, o: PlaceOrder): Promise<OrderRow> {
  const params: unknown[] = [];
  const $ = (value: unknown, cast: string): string => {
    params.push(value);
    return `$${params.length}::${cast}`;
  };
  const values = {
    asset_type_id: $(o.assetTypeId, 'bigint'),
    action: $(o.action, 'text'),
    target_order_id: $(o.targetOrderId, 'bigint'),
    status: $(o.status, 'text'),
    source: $(o.source, 'text'),
    servicenow_ref: $(o.servicenowRef, 'text'),
    snow_req: $(o.snowReq, 'text'),
    user_email: $(o.userEmail, 'text'),
    user_name: $(o.userName, 'text'),
    owner_email: $(o.ownerEmail, 'text'),
    owner_name: $(o.ownerName, 'text'),
    rdp_users: $(o.v.rdpUsers, 'text[]'),
    admin_users: $(o.v.adminUsers, 'text[]'),
    requested_from: $(o.v.requestedFrom, 'timestamptz'),
    requested_until: $(o.v.requestedUntil, 'timestamptz'),
    config: $(JSON.stringify(o.v.config), 'jsonb'),
    job_id: $(o.jobId, 'text'),
    requester_department: $(o.snapshot.department ?? null, 'text'),
    requester_cost_center: $(o.snapshot.cost_center ?? null, 'text'),
    requester_company: $(o.snapshot.company ?? null, 'text'),
    requester_employee_id: $(o.snapshot.employee_id ?? null, 'text'),
    requester_title: $(o.snapshot.title ?? null, 'text'),
    created_by: $(o.actor.triggeredBy, 'text'),
  };
  const after = {
    id: null,
    asset_type_id: o.assetTypeId,
    action: o.action,
    target_order_id: o.targetOrderId,
    status: o.status,
    source: o.source,
    servicenow_ref: o.servicenowRef,
    snow_req: o.snowReq,
    user_email: o.userEmail,
    user_name: o.userName,
    owner_email: o.ownerEmail,
    owner_name: o.ownerName,
    assigned_asset_id: null,
    rdp_users: o.v.rdpUsers,
    admin_users: o.v.adminUsers,
    requested_from: o.v.requestedFrom?.toISOString() ?? null,
    requested_until: o.v.requestedUntil?.toISOString() ?? null,
    config: o.v.config,
    job_id: o.jobId,
    error_message: null,
    requester_department: o.snapshot.department ?? null,
    requester_cost_center: o.snapshot.cost_center ?? null,
    requester_company: o.snapshot.company ?? null,
    requester_employee_id: o.snapshot.employee_id ?? null,
    requester_title: o.snapshot.title ?? null,
    created_by: o.actor.triggeredBy,
  };
  const diff = $(JSON.stringify(stripSecrets({ before: null, after })), 'jsonb');
  const refParam = $(o.servicenowRef, 'text');
  const poolLimit = o.poolSize !== null ? $(o.poolSize, 'int') : null;
  const quotaLimit = o.maxPerUser !== null ? $(o.maxPerUser, 'int') : null;
  // Only when a count is asked: PostgreSQL cannot type a parameter the text does not use.
  const active = poolLimit || quotaLimit
    ? `asset_type_id = ${values.asset_type_id} AND action = 'provision' AND status = ANY(${$(ACTIVE_STATUSES, 'text[]')})`
    : '';
  const sql = `
    WITH c AS (
      SELECT EXISTS (SELECT 1 FROM orders WHERE servicenow_ref = ${refParam}) AS duplicate,
             ${poolLimit ? `(SELECT count(*)::int FROM orders WHERE ${active})` : '0'} AS in_pool,
             ${quotaLimit ? `(SELECT count(*)::int FROM orders WHERE ${active} AND user_email = ${values.user_email})` : '0'} AS of_user
    ), o AS (
      INSERT INTO orders (${Object.keys(values).join(', ')})
      SELECT ${Object.values(values).join(', ')} FROM c
       WHERE NOT c.duplicate${poolLimit ? ` AND c.in_pool < ${poolLimit}` : ''}${quotaLimit ? ` AND c.of_user < ${quotaLimit}` : ''}
      RETURNING ${ORDER_COLUMNS}
    ), a AS (
      INSERT INTO audit_log (entity, entity_id, action, diff, triggered_by, request_id)
      SELECT 'order', o.id::text, 'create', jsonb_set(${diff}, '{after,id}', to_jsonb(o.id)), ${values.created_by}, ${$(o.actor.requestId ?? null, 'text')}
        FROM o
    )
    SELECT c.duplicate AS check_duplicate, c.in_pool AS check_in_pool, c.of_user AS check_of_user, o.*
      FROM c LEFT JOIN o ON true`;
  type Placed = OrderRow & { check_duplicate: boolean; check_in_pool: number; check_of_user: number };
  let placed: Placed | undefined;
  try {
    placed = (await tx.query<Placed>(sql, params)).rows[0];
  } catch (err) {
    // Racing duplicates without a lock meet here: the unique index makes the loser wait for the winner's commit.
    if (sqlState(err) === PgErrorCode.UNIQUE_VIOLATION && o.servicenowRef) throw duplicateServiceNowRef(o.servicenowRef);
    throw err;
  }
  if (!placed) throw new Error('order placement returned no row');
  const { check_duplicate: duplicate, check_in_pool: inPool, check_of_user: ofUser, ...row } = placed;
  if (row.id !== null) return row;
  // Under the locks the duplicate check is exact, and a redelivery is a 409 even when the pool is full.
  if (duplicate && o.servicenowRef) throw duplicateServiceNowRef(o.servicenowRef);
  if (o.poolSize !== null && inPool >= o.poolSize) {
    throw new AppError(ErrorCode.CAPACITY_EXCEEDED, 429, `asset type '${o.assetTypeName}' has no free capacity (${inPool} of ${o.poolSize} in use)`);
  }
  if (o.maxPerUser !== null && ofUser >= o.maxPerUser) {
    throw new AppError(
      ErrorCode.QUOTA_EXCEEDED,
      429,
      `${o.userEmail} already holds ${ofUser} active order(s) of asset type '${o.assetTypeName}' (quota ${o.maxPerUser})`,
    );
  }
  throw new Error('order was not placed, and no check says why');
}

/**
 * Enqueues the order's job in the same transaction, so the job exists exactly when the order does. The job id was
 * chosen before the order's INSERT and stored by it, which saves an UPDATE on the hot path.
 */
export async function dispatch(deps: OrderDeps, tx: Queryable, row: OrderRow, queue: QueueName, data: object): Promise<void> {
  if (!row.job_id) throw new Error(`order ${row.id} has no job id to dispatch under`);
  await deps.queue.send(tx, queue, data, { id: row.job_id });
}

/**
 * Creates a provision order after every pre-flight check, in one transaction with its job and audit row.
 * Throws UNKNOWN_ASSET_TYPE (400) for an unknown type; VALIDATION_FAILED (422) naming the field for a bad window,
 * user lists on a type without them, or a config that does not match the attributes; CONFLICT (409) for a
 * `servicenow_ref` that exists; CAPACITY_EXCEEDED / QUOTA_EXCEEDED (429) when the pool or the user's quota is full.
 *
 * Races: a type with `max_per_user` is serialised per (type, user) on an advisory lock; a pooled type with a
 * `pool_size` on its asset_types row; other types take no lock at all, and racing duplicate refs are then
 * caught by the unique index. Round trips: BEGIN, type (+ lock), [pool lock], place (+ audit), job, COMMIT.
 */
export async function createOrder(deps: OrderDeps, input: CreateOrderInput, actor: OrderActor): Promise<OrderRow> {
  const userEmail = input.userEmail.trim().toLowerCase();
  const snapshot = await requesterSnapshot(deps, userEmail, input.requester);
  return deps.db.transaction(async (tx) => {
    const type = await lookupTypeAndLockUser(tx, input.assetType, userEmail, false);
    const v = validateAgainstType(type, input, { requireAttributes: true });
    const poolSize = type.assignment_model === 'capacity_pooled' && type.pool_size !== null ? await lockPool(tx, type.id) : null;
    const status = type.requires_approval ? OrderStatus.PENDING_APPROVAL : OrderStatus.PROCESSING;
    // An order waiting for approval is dispatched when it is approved, not now.
    const dispatched = status === OrderStatus.PROCESSING;
    const row = await placeOrder(tx, {
      jobId: dispatched ? randomUUID() : null,
      assetTypeId: type.id,
      assetTypeName: type.name,
      action: 'provision',
      targetOrderId: null,
      status,
      source: input.source,
      servicenowRef: input.servicenowRef ?? null,
      snowReq: input.snowReq ?? null,
      userEmail,
      userName: input.userName,
      ownerEmail: input.ownerEmail ?? null,
      ownerName: input.ownerName ?? null,
      v,
      snapshot,
      poolSize,
      maxPerUser: type.max_per_user,
      actor,
    });
    if (dispatched) await dispatch(deps, tx, row, QueueName.ORDER_PROVISION, { orderId: row.id });
    else await routeNewApproval(tx, deps.directory, row, actor);
    return row;
  });
}

/**
 * Takes back the user's most recent active provision order of the type: creates a `delete` order pointing at it
 * (its own `servicenow_ref`, idempotent like any other; it does not count against capacity), moves the target to
 * `deprovisioning` and enqueues the deprovision job, all in one transaction.
 * Throws UNKNOWN_ASSET_TYPE (400), VALIDATION_FAILED (422) as `createOrder`, CONFLICT (409) for a known ref or a
 * target whose state cannot move to `deprovisioning` (e.g. still waiting for approval), NOT_FOUND (404) when the
 * user holds no active order of the type.
 */
export async function createDeleteOrder(deps: OrderDeps, input: CreateOrderInput, actor: OrderActor): Promise<OrderRow> {
  const userEmail = input.userEmail.trim().toLowerCase();
  const ref = input.servicenowRef ?? null;
  return deps.db.transaction(async (tx) => {
    // Always the per-user lock, as quota-checked creates take it: racing redeliveries of one delete then see each
    // other (409, not 404), and a delete never interleaves with a create of the same user and type.
    const type = await lookupTypeAndLockUser(tx, input.assetType, userEmail, true);
    // Taking something back needs no attribute values; unknown or ill-typed keys are still refused.
    const v = validateAgainstType(type, input, { requireAttributes: false });
    if (ref && (await tx.query('SELECT 1 FROM orders WHERE servicenow_ref = $1', [ref])).rows.length > 0) {
      throw duplicateServiceNowRef(ref);
    }
    const { rows } = await tx.query<{ id: number }>(
      `SELECT id FROM orders
        WHERE asset_type_id = $1 AND user_email = $2 AND action = 'provision' AND status = ANY($3::text[])
        ORDER BY created_at DESC, id DESC LIMIT 1 FOR UPDATE`,
      [type.id, userEmail, DELETABLE_STATUSES],
    );
    const target = rows[0];
    if (!target) throw notFound(`${userEmail} holds no active order of asset type '${type.name}' to delete`);
    await transitionOrder(tx, target.id, OrderStatus.DEPROVISIONING, { triggeredBy: actor.triggeredBy, requestId: actor.requestId });

    const row = await placeOrder(tx, {
      jobId: randomUUID(),
      assetTypeId: type.id,
      assetTypeName: type.name,
      action: 'delete',
      targetOrderId: target.id,
      status: OrderStatus.PROCESSING,
      source: input.source,
      servicenowRef: ref,
      snowReq: input.snowReq ?? null,
      userEmail,
      userName: input.userName,
      ownerEmail: input.ownerEmail ?? null,
      ownerName: input.ownerName ?? null,
      v,
      snapshot: await requesterSnapshotFromOrder(tx, target.id),
      poolSize: null,
      maxPerUser: null,
      actor,
    });
    await dispatch(deps, tx, row, QueueName.ORDER_DEPROVISION, { orderId: row.id, targetOrderId: target.id });
    return row;
  });
}

/** A take-back is charged like what it takes back: it inherits the target's snapshot. */
async function requesterSnapshotFromOrder(tx: Queryable, orderId: number): Promise<RequesterSnapshot> {
  const { rows } = await tx.query<Pick<OrderRow, 'requester_department' | 'requester_cost_center' | 'requester_company' | 'requester_employee_id' | 'requester_title'>>(
    `SELECT requester_department, requester_cost_center, requester_company, requester_employee_id, requester_title
       FROM orders WHERE id = $1`,
    [orderId],
  );
  const r = rows[0];
  return r
    ? { department: r.requester_department, cost_center: r.requester_cost_center, company: r.requester_company, employee_id: r.requester_employee_id, title: r.requester_title }
    : {};
}

/** The order with its steps in the order they ran, or undefined. */
export async function getOrder(q: Queryable, id: number): Promise<{ order: OrderRow; steps: OrderStepRow[] } | undefined> {
  const { rows } = await q.query<OrderRow>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = $1`, [id]);
  const order = rows[0];
  if (!order) return undefined;
  const steps = await q.query<OrderStepRow>(
    `SELECT id, step_id, name, status, attempt, error_message, started_at, finished_at, duration_ms
       FROM order_steps WHERE order_id = $1 ORDER BY started_at, id`,
    [id],
  );
  return { order, steps: steps.rows };
}

export interface OrderFilters {
  /** The user's email, compared case-insensitively. */
  user?: string | undefined;
  status?: OrderStatus | undefined;
  /** Asset type id (all digits) or exact name. */
  assetType?: string | undefined;
  servicenowRef?: string | undefined;
  limit: number;
  offset: number;
}

/** One page of orders, newest first, and how many match in all. */
export async function listOrders(q: Queryable, f: OrderFilters): Promise<{ items: OrderRow[]; total: number }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (f.user !== undefined) add('user_email = ?', f.user.trim().toLowerCase());
  if (f.status !== undefined) add('status = ?', f.status);
  if (f.assetType !== undefined) {
    if (/^\d+$/.test(f.assetType)) add('asset_type_id = ?', Number(f.assetType));
    else add('asset_type_id = (SELECT id FROM asset_types WHERE name = ?)', f.assetType);
  }
  if (f.servicenowRef !== undefined) add('servicenow_ref = ?', f.servicenowRef);
  const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const total = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM orders ${clause}`, params);
  const items = await q.query<OrderRow>(
    `SELECT ${ORDER_COLUMNS} FROM orders ${clause} ORDER BY created_at DESC, id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, f.limit, f.offset],
  );
  return { items: items.rows, total: total.rows[0]?.n ?? 0 };
}
