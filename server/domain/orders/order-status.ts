import type { Logger, Queryable } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import type { Assert, Same } from '../../api/spec-types';
import { CodedError, ErrorCode, conflict, notFound } from '../../errors';
import { writeAudit } from '../../../adapter';
import { lockOrderForTransition, updateOrderStatus } from './store';

/** Every state an order can be in; the `orders.status` CHECK constraint lists the same values. */
export const OrderStatus = {
  PENDING_APPROVAL: 'pending_approval',
  SCHEDULED: 'scheduled',
  PROCESSING: 'processing',
  PROVISIONING: 'provisioning',
  PROVISIONED: 'provisioned',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  DEPROVISIONING: 'deprovisioning',
  RETURNED: 'returned',
  REVOKED: 'revoked',
} as const;
export type OrderStatus = (typeof OrderStatus)[keyof typeof OrderStatus];
// The API answers and filters by these values: the spec's OrderStatus enum must name exactly the same ones.
type OrderStatusMatchesSpec = Assert<Same<OrderStatus, Api.OrderStatus>>;

export const ORDER_STATUSES: readonly OrderStatus[] = Object.values(OrderStatus);

/**
 * The allowed transitions, the only place they are written down. A status missing on the left has no way
 * out (terminal). `failed` is not terminal: an operator may retry it, take back what was half-built, or close it.
 */
export const ORDER_TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = Object.freeze({
  pending_approval: ['scheduled', 'processing', 'cancelled'],
  scheduled: ['processing', 'cancelled'],
  processing: ['provisioning', 'provisioned', 'failed', 'cancelled', 'revoked'],
  provisioning: ['provisioned', 'failed', 'revoked'],
  provisioned: ['deprovisioning', 'revoked', 'returned'],
  deprovisioning: ['returned', 'revoked', 'failed'],
  failed: ['processing', 'deprovisioning', 'revoked', 'cancelled'],
  cancelled: [],
  returned: [],
  revoked: [],
});

export const TERMINAL_STATUSES: readonly OrderStatus[] = ORDER_STATUSES.filter((s) => ORDER_TRANSITIONS[s].length === 0);

/**
 * Statuses that hold (or are about to hold) an asset, so they count against pool capacity and per-user quota:
 * everything not terminal, except `failed` (a failed order holds nothing until someone retries it, and a retry
 * is a transition, not a new order).
 */
export const ACTIVE_STATUSES: readonly OrderStatus[] = ORDER_STATUSES.filter(
  (s) => !TERMINAL_STATUSES.includes(s) && s !== OrderStatus.FAILED,
);

export function isOrderStatus(s: string): s is OrderStatus {
  return (ORDER_STATUSES as readonly string[]).includes(s);
}

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return ORDER_TRANSITIONS[from].includes(to);
}

export interface TransitionOptions {
  /** Audit attribution, e.g. `system:workflow` or `webhook:hmac`. */
  triggeredBy: string;
  /** Stored as the order's `error_message` (typically with `failed`); kept otherwise, except when leaving `failed`. */
  error?: string | undefined;
  requestId?: string | undefined;
  /** Why, as the caller gave it (cancel, return, retry ...): kept in the audit row's `after.reason`. */
  reason?: string | undefined;
  /** When given, the transition is logged at info with the order id (the lifecycle commands and jobs pass theirs). */
  logger?: Logger | undefined;
}

export interface TransitionResult {
  id: number;
  from: OrderStatus;
  to: OrderStatus;
}

/**
 * Moves order `id` to `to` inside the caller's transaction: locks the row, checks the transition table,
 * updates it and audits the change (entity `order`, action `transition`).
 * Throws NOT_FOUND when there is no such order, CONFLICT naming both states when the table forbids the move.
 */
export async function transitionOrder(
  tx: Queryable,
  id: number,
  to: OrderStatus,
  opts: TransitionOptions,
): Promise<TransitionResult> {
  const moved = await applyTransition(tx, id, to, opts, undefined);
  if (!moved) throw new Error(`order ${id}: transition to '${to}' was not applied`);
  return moved;
}

/**
 * Moves order `id` to `to` only while it is in one of `from` (a flow moving the order from where it left it, when a
 * leaver or an operator may have moved it meanwhile); otherwise changes nothing and returns undefined. One locked
 * read, as `transitionOrder`.
 */
export async function transitionOrderIf(
  tx: Queryable,
  id: number,
  from: readonly OrderStatus[],
  to: OrderStatus,
  opts: TransitionOptions,
): Promise<TransitionResult | undefined> {
  return applyTransition(tx, id, to, opts, from);
}

async function applyTransition(
  tx: Queryable,
  id: number,
  to: OrderStatus,
  opts: TransitionOptions,
  onlyFrom: readonly OrderStatus[] | undefined,
): Promise<TransitionResult | undefined> {
  // The row lock serialises concurrent transitions of one order: the second sees the first's outcome.
  const current = await lockOrderForTransition(tx, id);
  if (!current) {
    if (onlyFrom) return undefined;
    throw notFound(`order ${id} does not exist`);
  }
  const from = current.status;
  if (onlyFrom && !onlyFrom.includes(from)) return undefined;
  if (!canTransition(from, to)) {
    throw conflict(`order ${id} cannot move from '${from}' to '${to}'`, { from, to });
  }
  // Leaving `failed` (a retry, a take-back) clears the old error unless a new one is given.
  const errorMessage = opts.error ?? (from === OrderStatus.FAILED ? null : current.error_message);
  await updateOrderStatus(tx, id, to, errorMessage);
  await writeAudit(tx, {
    entity: 'order',
    entityId: id,
    action: 'transition',
    before: { status: from, error_message: current.error_message },
    after: { status: to, error_message: errorMessage, ...(opts.reason !== undefined ? { reason: opts.reason } : {}) },
    triggeredBy: opts.triggeredBy,
    requestId: opts.requestId,
  });
  opts.logger?.info('order transition', { orderId: id, from, to, triggeredBy: opts.triggeredBy, ...(opts.requestId ? { requestId: opts.requestId } : {}) });
  return { id, from, to };
}

/**
 * The order's status does not allow the command (cancel after the runbook started, return of an order that holds
 * nothing, ...): ORDER_STATE_CONFLICT (409) with the current status as the problem's `order_status` (the problem's
 * own `status` is the HTTP status, so the order's cannot be called that).
 */
export function orderStateConflict(id: number, status: OrderStatus, detail: string): CodedError {
  return new CodedError(ErrorCode.ORDER_STATE_CONFLICT, `order ${id} ${detail} (status '${status}')`, { extra: { order_status: status } });
}
