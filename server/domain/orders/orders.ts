import { randomUUID } from 'node:crypto';
import { PgErrorCode, QueueName, sqlState, stripSecrets, type Database, type JobQueue, type Logger, type Queryable } from '../../../adapter';
import { currentTraceparent, inSpan } from '../../../adapter';
import { CodedError, ErrorCode, conflict, invalidField, notFound } from '../../errors';
import { validateOrderConfig } from '../catalogue/asset-types';
import { assertEntitled, checkRequester } from '../catalogue/entitlements';
import { routeNewApproval } from '../approvals/routing';
import type { Page } from '../paging';
import { ACTIVE_STATUSES, OrderStatus, transitionOrder } from './order-status';
import { PROVISION_RUNNING } from './take-backs';
import {
  insertOrder,
  isFullSnapshot,
  lockDeleteTarget,
  requesterColumns,
  requesterOf,
  selectOrder,
  selectOrders,
  selectOrderSteps,
  selectOrderType,
  selectOrderTypeLockingUser,
  selectRequesterColumns,
  servicenowRefExists,
  type AssetTypeRef,
  type OrderAction,
  type OrderFilters,
  type OrderRow,
  type OrderSource,
  type OrderStepRow,
  type OrderType,
} from './store';

// The requester's directory attributes, copied onto the order when it is placed (`requester_<field>` columns), and
// the directory they come from: identity's, since approvals ask it too.
import type { DirectoryPerson, RequesterDirectory, RequesterSnapshot } from '../identity/requester-directory';
export type { RequesterDirectory, RequesterSnapshot } from '../identity/requester-directory';

// The rows, the requester snapshot's columns and the filters are the store's; callers take them from here.
export type { AssetTypeRef, OrderAction, OrderFilters, OrderRow, OrderSource, OrderStepRow } from './store';
export { requesterOf } from './store';

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

/**
 * Statuses a `delete` may take an order back from: the active ones, and a failed one (it may be half-built and hold a
 * pool asset, as a leaver's revocation also assumes). An order already being taken back is not a target again.
 */
const DELETABLE_STATUSES: readonly OrderStatus[] = [...ACTIVE_STATUSES.filter((s) => s !== OrderStatus.DEPROVISIONING), OrderStatus.FAILED];

function unknownAssetType(ref: AssetTypeRef): CodedError {
  const [field, shown] = 'name' in ref ? ['asset_type_name', `'${ref.name}'`] : ['asset_type_id', String(ref.id)];
  return new CodedError(ErrorCode.UNKNOWN_ASSET_TYPE, `asset type ${shown} does not exist`, {
    errors: [{ path: `/body/${field}`, message: 'is not an asset type' }],
  });
}

/** Whether an instant lies ahead of now (an order starting then waits in `scheduled`). */
export function isFuture(d: Date | string | null | undefined): boolean {
  return d !== null && d !== undefined && new Date(d).getTime() > Date.now();
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Refuses an end beyond the type's `max_duration_days` counted from `start` (requested_from, else the order's
 * creation): VALIDATION_FAILED naming `/body/requested_until`.
 */
export function checkMaxDuration(type: { name: string; max_duration_days: number | null }, start: Date, until: Date): void {
  if (type.max_duration_days === null) return;
  const latest = new Date(start.getTime() + type.max_duration_days * DAY_MS);
  if (until.getTime() > latest.getTime()) {
    throw invalidField(
      '/body/requested_until',
      `must be at most ${type.max_duration_days} days after the order's start (${start.toISOString()}), i.e. not after ${latest.toISOString()} (max_duration_days of asset type '${type.name}')`,
    );
  }
}

/** The 409 of a duplicate delivery; its wording is the ServiceNow contract's. */
export function duplicateServiceNowRef(ref: string): CodedError {
  return conflict(`Order with servicenow_ref '${ref}' already exists`);
}

/**
 * Asset types as order placement reads them, kept per database. Validating an order needs its type before the
 * statement that places it; reading the type each time would cost a round trip on the webhook's path. A cached type
 * is safe because placement checks its version in the same statement and answers PV001 when the row has changed
 * since (edited, renamed, deleted, whichever process did it); the order is then validated again against a fresh
 * read. Unknown names are never cached.
 */
class OrderTypeCache {
  static readonly MAX_ENTRIES = 500;
  readonly #byRef = new Map<string, OrderType>();

  async get(q: Queryable, ref: AssetTypeRef, fresh: boolean): Promise<OrderType> {
    const key = 'name' in ref ? `name:${ref.name}` : `id:${ref.id}`;
    const cached = fresh ? undefined : this.#byRef.get(key);
    if (cached) return cached;
    const type = await selectOrderType(q, ref);
    if (!type) {
      this.#byRef.delete(key);
      throw unknownAssetType(ref);
    }
    if (this.#byRef.size >= OrderTypeCache.MAX_ENTRIES) this.#byRef.clear();
    this.#byRef.set(key, type);
    return type;
  }
}

const typeCaches = new WeakMap<Queryable, OrderTypeCache>();
function typeCacheOf(db: Queryable): OrderTypeCache {
  let cache = typeCaches.get(db);
  if (!cache) typeCaches.set(db, (cache = new OrderTypeCache()));
  return cache;
}

/**
 * Reads the asset type and, in the same statement, takes the per-user lock (a take-back always takes it, as
 * quota-checked placements do). The lock is transaction-scoped: released at COMMIT/ROLLBACK, when the new row is
 * already visible to the next holder, whose later statements take a new snapshot (READ COMMITTED).
 * Throws UNKNOWN_ASSET_TYPE (400) naming the field the type was given by.
 */
async function lookupTypeAndLockUser(tx: Queryable, ref: AssetTypeRef, userEmail: string): Promise<OrderType> {
  const type = await selectOrderTypeLockingUser(tx, ref, userEmail);
  if (!type) throw unknownAssetType(ref);
  return type;
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
  // The order starts now when it names no start: the type's maximum is counted from there (as an extension does).
  if (requestedUntil) checkMaxDuration(type, requestedFrom ?? new Date(), requestedUntil);
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

/**
 * The directory's snapshot overlaid with the caller's explicit values; a failing directory leaves only the latter.
 * `person` is the configured directory's record, read by the requester check: then nothing is asked twice.
 */
async function requesterSnapshot(
  deps: OrderDeps,
  email: string,
  explicit: RequesterSnapshot | undefined,
  person?: DirectoryPerson,
): Promise<RequesterSnapshot> {
  const given = Object.fromEntries(Object.entries(explicit ?? {}).filter(([, v]) => v !== undefined)) as RequesterSnapshot;
  if (person) return { ...person.snapshot, ...given };
  if (!deps.directory || isFullSnapshot(given)) return given;
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
  type: OrderType;
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
  /** Apply the type's pool size and per-user quota (a take-back does not count against them). */
  checkLimits: boolean;
  /** Take the per-user lock even when the type has no quota (a take-back; the caller may already hold it). */
  lockUser: boolean;
  /** The order's job, written by the same statement; `orderId` is added to its data. */
  job: { queue: QueueName; data: object } | null;
  /** The delayed start (instead of `job`) and the expiry job, written by the same statement. */
  delayed?: { startQueue: QueueName | null; expiryQueue: QueueName | null } | undefined;
  actor: OrderActor;
}

/** The type changed between reading and placing (PV001): validate against a fresh read and place again. */
class AssetTypeChanged extends Error {}

/**
 * Places the order with `provisio_place_order` (migration 014): the type's version check, the per-user and pool
 * locks, the duplicate, pool and quota checks, the INSERT, its audit row and its job, in one statement and so one
 * round trip. The audit row is what `writeAudit` writes for a creation ({before: null, after}, secrets stripped),
 * with the id the INSERT assigned. Maps the function's refusals onto the API's errors.
 */
async function placeOrder(q: Queryable, o: PlaceOrder): Promise<OrderRow> {
  const after = {
    id: null,
    asset_type_id: o.type.id,
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
    ...requesterColumns(o.snapshot),
    created_by: o.actor.triggeredBy,
  };
  try {
    return await insertOrder(q, {
      typeId: o.type.id,
      typeVersion: o.type.version,
      checkLimits: o.checkLimits,
      lockUser: o.lockUser,
      activeStatuses: ACTIVE_STATUSES,
      after,
      audit: stripSecrets({ before: null, after }),
      requestId: o.actor.requestId ?? null,
      job: o.job,
      delayed: o.delayed,
    });
  } catch (err) {
    throw placementError(err, o);
  }
}

function placementError(err: unknown, o: PlaceOrder): unknown {
  const detail = err && typeof err === 'object' && 'detail' in err ? String((err as { detail: unknown }).detail) : '';
  const [inUse, limit] = detail.split('/');
  switch (sqlState(err)) {
    case 'PV001':
      return new AssetTypeChanged(`asset type ${o.type.id} changed while the order was placed`);
    case 'PV002':
      return duplicateServiceNowRef(detail);
    case PgErrorCode.UNIQUE_VIOLATION:
      // Racing duplicates without a lock meet at the unique index: the loser waits for the winner's commit.
      return o.servicenowRef ? duplicateServiceNowRef(o.servicenowRef) : err;
    case 'PV003':
      return new CodedError(ErrorCode.CAPACITY_EXCEEDED, `asset type '${o.type.name}' has no free capacity (${inUse} of ${limit} in use)`);
    case 'PV004':
      return new CodedError(
        ErrorCode.QUOTA_EXCEEDED,
        `${o.userEmail} already holds ${inUse} active order(s) of asset type '${o.type.name}' (quota ${limit})`,
      );
    default:
      return err;
  }
}

/**
 * Enqueues an order's job in the caller's transaction, so the job exists exactly when the order's new state does
 * (approvals dispatch this way). The job id was chosen before the order's INSERT and stored by it.
 */
export async function dispatch(deps: OrderDeps, tx: Queryable, row: OrderRow, queue: QueueName, data: object): Promise<void> {
  if (!row.job_id) throw new Error(`order ${row.id} has no job id to dispatch under`);
  await deps.queue.send(tx, queue, data, { id: row.job_id });
}

/** Job data carrying the active trace's W3C traceparent; empty when tracing is off. */
function traceData(): { traceparent?: string } {
  const traceparent = currentTraceparent();
  return traceparent ? { traceparent } : {};
}

/** How often a placement re-reads a type that keeps changing under it before giving up with a 409. */
const TYPE_CHANGE_RETRIES = 3;

/**
 * Creates a provision order after every pre-flight check, with its job and audit row.
 * Throws UNKNOWN_ASSET_TYPE (400) for an unknown type; VALIDATION_FAILED (422) naming the field for a bad window,
 * user lists on a type without them, or a config that does not match the attributes; CONFLICT (409) for a
 * `servicenow_ref` that exists; CAPACITY_EXCEEDED / QUOTA_EXCEEDED (429) when the pool or the user's quota is full;
 * REQUESTER_NOT_FOUND / REQUESTER_DISABLED (422) when a configured directory does not know the requester or has them
 * disabled; NOT_ENTITLED (403) when the type's entitlements do not admit them; DIRECTORY_UNAVAILABLE (503) when a
 * configured directory cannot answer those checks.
 *
 * Races: a type with `max_per_user` is serialised per (type, user) on an advisory lock; a pooled type with a
 * `pool_size` on its asset_types row; other types take no lock at all, and racing duplicate refs are then
 * caught by the unique index. An order that goes straight to work is one statement (one round trip, with the type
 * cached); one that waits for approval is placed in a transaction with its approval.
 */
export function createOrder(deps: OrderDeps, input: CreateOrderInput, actor: OrderActor): Promise<OrderRow> {
  return inSpan('order.place', { attributes: { 'provisio.order_source': input.source } }, () => placeNewOrder(deps, input, actor));
}

async function placeNewOrder(deps: OrderDeps, input: CreateOrderInput, actor: OrderActor): Promise<OrderRow> {
  const userEmail = input.userEmail.trim().toLowerCase();
  // With `active_directory` configured: the requester exists and is enabled there (422), else 503 (entitlements.ts).
  const requester = await checkRequester(deps.directory, userEmail, '/body/user_email');
  const snapshot = await requesterSnapshot(deps, userEmail, input.requester, requester.person);
  const types = typeCacheOf(deps.db);
  for (let attempt = 0; ; attempt++) {
    const type = await types.get(deps.db, input.assetType, attempt > 0);
    await assertEntitled(deps.db, type, requester);
    const v = validateAgainstType(type, input, { requireAttributes: true });
    // An order waiting for approval is dispatched when it is approved, not now; one whose start lies ahead waits
    // in `scheduled` for its job, which is due at requested_from (a pg-boss row: it survives restarts).
    const dispatched = !type.requires_approval;
    const scheduled = dispatched && isFuture(v.requestedFrom);
    const placement: PlaceOrder = {
      jobId: dispatched ? randomUUID() : null,
      type,
      action: 'provision',
      targetOrderId: null,
      status: !dispatched ? OrderStatus.PENDING_APPROVAL : scheduled ? OrderStatus.SCHEDULED : OrderStatus.PROCESSING,
      source: input.source,
      servicenowRef: input.servicenowRef ?? null,
      snowReq: input.snowReq ?? null,
      userEmail,
      userName: input.userName,
      ownerEmail: input.ownerEmail ?? null,
      ownerName: input.ownerName ?? null,
      v,
      snapshot,
      checkLimits: true,
      lockUser: false,
      // The job carries the order's trace (tracing on), so the run it starts continues it in whichever worker.
      job: dispatched && !scheduled ? { queue: QueueName.ORDER_PROVISION, data: traceData() } : null,
      // The delayed start and the expiry are written by the placing statement too (see insertOrder).
      delayed: scheduled || isFuture(v.requestedUntil) ? { startQueue: scheduled ? QueueName.ORDER_PROVISION : null, expiryQueue: QueueName.ORDER_EXPIRE } : undefined,
      actor,
    };
    try {
      if (dispatched) {
        const row = await placeOrder(deps.db, placement);
        // Committed (one statement): a consumer in this process takes it up now rather than at its next poll.
        deps.queue.wake(QueueName.ORDER_PROVISION);
        return row;
      }
      return await deps.db.transaction(async (tx) => {
        const row = await placeOrder(tx, placement);
        await routeNewApproval(tx, { directory: deps.directory, queue: deps.queue }, row, actor);
        return row;
      });
    } catch (err) {
      if (!(err instanceof AssetTypeChanged)) throw err;
      if (attempt + 1 >= TYPE_CHANGE_RETRIES) throw conflict(`asset type '${type.name}' kept changing while the order was placed; send it again`);
    }
  }
}

/** A placed take-back: its own order, and whether it waits for its target's provision to end before it acts. */
export interface DeleteOrderResult {
  order: OrderRow;
  /** The target was still being provisioned: the take-back runs when that ends (take-backs.ts). */
  queued: boolean;
}

/**
 * Takes back the user's most recent active provision order of the type (else their most recent failed one, which may
 * be half-built or hold a pool asset): creates a `delete` order pointing at it (its own `servicenow_ref`,
 * idempotent like any other; it does not count against capacity), `deprovisioning` until the target is returned
 * (take-backs.ts). A target that holds what it got (provisioned, failed) moves to `deprovisioning` and its
 * deprovision job is enqueued, all in one transaction; one still being provisioned is left to its provision and
 * the take-back is queued behind it (`queued`).
 * Throws UNKNOWN_ASSET_TYPE (400), VALIDATION_FAILED (422) as `createOrder`, CONFLICT (409) for a known ref or a
 * target whose state cannot move to `deprovisioning` (waiting for approval or its start), NOT_FOUND (404) when the
 * user holds no active order of the type.
 */
export async function createDeleteOrder(deps: OrderDeps, input: CreateOrderInput, actor: OrderActor): Promise<DeleteOrderResult> {
  const userEmail = input.userEmail.trim().toLowerCase();
  const ref = input.servicenowRef ?? null;
  return deps.db.transaction(async (tx) => {
    // Always the per-user lock, as quota-checked creates take it: racing redeliveries of one delete then see each
    // other (409, not 404), and a delete never interleaves with a create of the same user and type.
    const type = await lookupTypeAndLockUser(tx, input.assetType, userEmail);
    // Taking something back needs no attribute values; unknown or ill-typed keys are still refused.
    const v = validateAgainstType(type, input, { requireAttributes: false });
    if (ref && (await servicenowRefExists(tx, ref))) throw duplicateServiceNowRef(ref);
    // What the user holds comes before what failed to reach them: the newest active order, else the newest failed.
    const target = await lockDeleteTarget(tx, type.id, userEmail, DELETABLE_STATUSES);
    if (!target) throw notFound(`${userEmail} holds no active order of asset type '${type.name}' to delete`);
    // Its provision still running: the job is enqueued, under the id chosen here, when the provision ends.
    const queued = PROVISION_RUNNING.includes(target.status);
    if (!queued) await transitionOrder(tx, target.id, OrderStatus.DEPROVISIONING, { triggeredBy: actor.triggeredBy, requestId: actor.requestId });

    const order = await placeOrder(tx, {
      jobId: randomUUID(),
      type,
      action: 'delete',
      targetOrderId: target.id,
      status: OrderStatus.DEPROVISIONING,
      source: input.source,
      servicenowRef: ref,
      snowReq: input.snowReq ?? null,
      userEmail,
      userName: input.userName,
      ownerEmail: input.ownerEmail ?? null,
      ownerName: input.ownerName ?? null,
      v,
      snapshot: await requesterSnapshotFromOrder(tx, target.id),
      checkLimits: false,
      // Already held since the type was read.
      lockUser: false,
      job: queued ? null : { queue: QueueName.ORDER_DEPROVISION, data: { targetOrderId: target.id } },
      actor,
    });
    return { order, queued };
  });
}

/** A take-back is charged like what it takes back: it inherits the target's snapshot. */
async function requesterSnapshotFromOrder(tx: Queryable, orderId: number): Promise<RequesterSnapshot> {
  const columns = await selectRequesterColumns(tx, orderId);
  return columns ? requesterOf(columns) : {};
}

/** The order with its steps in the order they ran, or undefined. */
export async function getOrder(q: Queryable, id: number): Promise<{ order: OrderRow; steps: OrderStepRow[] } | undefined> {
  const order = await selectOrder(q, id);
  if (!order) return undefined;
  return { order, steps: await selectOrderSteps(q, id) };
}

/** One page of orders, newest first, and how many match in all. */
export async function listOrders(q: Queryable, f: OrderFilters): Promise<Page<OrderRow>> {
  return selectOrders(q, f);
}
