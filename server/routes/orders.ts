import type { RouteModule } from './route-module';
import type { Order, OrderStep } from '../api/gen/types.gen';
import { attribution, type Principal } from '../auth/principal';
import { notFound, unauthenticated } from '../errors';
import { toCreateOrderInput } from '../domain/orders/order-input';
import { cancelOrder, extendOrder, retryOrder, returnOrder, type LifecycleActor } from '../domain/orders/lifecycle';
import { createOrder, getOrder, listOrders, requesterOf, type OrderRow, type OrderStepRow } from '../domain/orders/orders';
import { pageOf, pageBody } from '../domain/paging';

/** ISO 8601 UTC; whole seconds without the `.000`, as the ServiceNow contract writes them. */
export const isoTime = (d: Date): string => d.toISOString().replace(/\.000Z$/, 'Z');
const isoOrNull = (d: Date | null): string | null => (d ? isoTime(d) : null);

function toOrderStep(s: OrderStepRow): OrderStep {
  return {
    id: s.id,
    step_id: s.step_id,
    name: s.name,
    status: s.status,
    attempt: s.attempt,
    error_message: s.error_message,
    started_at: isoTime(s.started_at),
    finished_at: isoOrNull(s.finished_at),
    duration_ms: s.duration_ms,
  };
}

/** The API form of an order; `steps` only when given (single-order responses). */
export function toOrder(row: OrderRow, steps?: readonly OrderStepRow[]): Order {
  return {
    id: row.id,
    servicenow_ref: row.servicenow_ref,
    snow_req: row.snow_req,
    action: row.action,
    status: row.status,
    source: row.source,
    user_email: row.user_email,
    user_name: row.user_name,
    owner_email: row.owner_email,
    owner_name: row.owner_name,
    asset_type_id: row.asset_type_id,
    assigned_asset_id: row.assigned_asset_id,
    target_order_id: row.target_order_id,
    rdp_users: row.rdp_users,
    admin_users: row.admin_users,
    requested_from: isoOrNull(row.requested_from),
    requested_until: isoOrNull(row.requested_until),
    extension_requested_until: isoOrNull(row.extension_requested_until),
    job_id: row.job_id,
    config: row.config,
    error_message: row.error_message,
    requester: requesterOf(row),
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
    ...(steps ? { steps: steps.map(toOrderStep) } : {}),
  };
}

/** API orders are attributed to the API channel; the legacy admin key stays `admin:key`. */
function apiAttribution(p: Principal | undefined): string {
  if (!p) throw unauthenticated('credentials required');
  return p.kind === 'admin_key' ? attribution('admin', p) : attribution('api', p);
}

/**
 * The caller of a lifecycle command: the order channel (`orders:write`) or the admin key, as for placing orders.
 * A token does not say which person it acts for, so "the requester may cancel their own order" is the portal's
 * rule to keep; here any `orders:write` caller may act on any order, and the audit row names the credential.
 */
function lifecycleActor(input: { principal?: Principal | undefined; requestId?: string | undefined; body?: { reason?: string } | undefined }): LifecycleActor {
  return { triggeredBy: apiAttribution(input.principal), requestId: input.requestId, reason: input.body?.reason };
}

export const orderHandlers: RouteModule = ({ db, queue, logger, requesterDirectory, workflowEngine }) => ({
  cancelOrder: async (input) => {
    const row = await cancelOrder({ db, queue, logger }, Number(input.path.id), lifecycleActor(input));
    return { status: 200, body: toOrder(row) };
  },

  returnOrder: async (input) => {
    const row = await returnOrder({ db, queue, logger }, Number(input.path.id), lifecycleActor(input));
    return { status: 202, body: toOrder(row) };
  },

  extendOrder: async (input) => {
    const r = await extendOrder({ db, queue, logger, directory: requesterDirectory }, Number(input.path.id), input.body.requested_until, lifecycleActor(input));
    return r.pending ? { status: 202, body: toOrder(r.order) } : { status: 200, body: toOrder(r.order) };
  },

  retryOrder: async (input) => {
    const row = await retryOrder({ db, queue, logger, engine: workflowEngine }, Number(input.path.id), lifecycleActor(input));
    return { status: 202, body: toOrder(row) };
  },

  createOrder: async ({ body, principal, requestId }) => {
    const row = await createOrder(
      { db, queue, logger, directory: requesterDirectory },
      toCreateOrderInput(body, 'api'),
      { triggeredBy: apiAttribution(principal), requestId },
    );
    return { status: 201, body: toOrder(row, []) };
  },

  getOrder: async ({ path }) => {
    const found = await getOrder(db, Number(path.id));
    if (!found) throw notFound(`order ${path.id} does not exist`);
    return { status: 200, body: toOrder(found.order, found.steps) };
  },

  listOrders: async ({ query }) => {
    const page = pageOf(query);
    const found = await listOrders(db, {
      user: query.user,
      status: query.status,
      assetType: query.asset_type,
      servicenowRef: query.servicenow_ref,
      ...page,
    });
    return { status: 200, body: pageBody(found, (r) => toOrder(r), page) };
  },
});
