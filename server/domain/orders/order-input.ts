import type * as Api from '../../api/gen/types.gen';
import { invalidField } from '../../errors';
import type { AssetTypeRef, CreateOrderInput, OrderSource } from './orders';

/**
 * What an inbound edge sends to place or take back an order: `POST /orders` (OrderCreate) and
 * `POST /webhook/servicenow` (ServiceNowOrderRequest) share these fields under the same names; each adds its own
 * optional ones (the portal's requester snapshot, ServiceNow's references). Both bodies must stay assignable to it,
 * so a field renamed in one of them fails the typecheck at the edge that passes it.
 */
export type OrderPayload = Pick<
  Api.OrderCreate,
  | 'user_email'
  | 'user_name'
  | 'owner_email'
  | 'owner_name'
  | 'requested_from'
  | 'requested_until'
  | 'rdp_users'
  | 'admin_users'
  | 'config'
  | 'asset_type_name'
  | 'asset_type_id'
  | 'requester'
> &
  Partial<Pick<Api.ServiceNowOrderRequest, 'servicenow_ref' | 'snow_req'>>;

/**
 * The asset type a payload names, by name or by id. Throws VALIDATION_FAILED naming `/body/asset_type_id` when
 * both are given, `/body/asset_type_name` when neither is.
 */
function assetTypeOf(body: OrderPayload): AssetTypeRef {
  if (body.asset_type_name !== undefined && body.asset_type_id !== undefined) {
    throw invalidField('/body/asset_type_id', 'give asset_type_name or asset_type_id, not both');
  }
  if (body.asset_type_name !== undefined) return { name: body.asset_type_name };
  if (body.asset_type_id !== undefined) return { id: body.asset_type_id };
  throw invalidField('/body/asset_type_name', 'is required (or asset_type_id)');
}

/**
 * An inbound order payload as the create-order command every edge runs (`createOrder`, or `createDeleteOrder`
 * for a ServiceNow take-back), so a ServiceNow order and an API order pass the same checks.
 * Throws VALIDATION_FAILED when the asset type is named both ways or not at all.
 */
export function toCreateOrderInput(body: OrderPayload, source: OrderSource): CreateOrderInput {
  return {
    assetType: assetTypeOf(body),
    source,
    servicenowRef: body.servicenow_ref,
    snowReq: body.snow_req,
    userEmail: body.user_email,
    userName: body.user_name,
    ownerEmail: body.owner_email,
    ownerName: body.owner_name,
    requestedFrom: body.requested_from,
    requestedUntil: body.requested_until,
    rdpUsers: body.rdp_users,
    adminUsers: body.admin_users,
    config: body.config,
    requester: body.requester,
  };
}

/**
 * ServiceNow's provision contract requires the assignment window; a `delete` does not, so the spec leaves both
 * fields optional and this says which one a provision lacks. Throws VALIDATION_FAILED naming the field, as the
 * spec validator names a missing required field.
 */
export function requireWindow(body: Pick<OrderPayload, 'requested_from' | 'requested_until'>): void {
  for (const field of ['requested_from', 'requested_until'] as const) {
    if (body[field] === undefined || body[field] === null) throw invalidField(`/body/${field}`, "is required for action 'provision'");
  }
}
