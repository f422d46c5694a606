import type { RouteModule } from '../app';
import { attribution } from '../auth/principal';
import { unauthenticated } from '../errors';
import { createDeleteOrder, createOrder, type CreateOrderInput } from '../domain/orders/orders';
import { toOrder } from './orders';

/**
 * `POST /webhook/servicenow`: the ServiceNow contract mapped onto the same order commands as `POST /orders`.
 * Authentication (Bearer with `webhook:in`, or the HMAC signature) has happened before the handler runs.
 */
export const webhookHandlers: RouteModule = ({ db, queue, logger, requesterDirectory }) => ({
  receiveServiceNowOrder: async ({ body, principal, requestId }) => {
    if (!principal) throw unauthenticated('credentials required');
    const actor = { triggeredBy: attribution('webhook', principal), requestId };
    const deps = { db, queue, logger, directory: requesterDirectory };
    const input: CreateOrderInput = {
      assetType: { name: body.asset_type_name },
      source: 'servicenow',
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
    };
    const row = body.action === 'delete' ? await createDeleteOrder(deps, input, actor) : await createOrder(deps, input, actor);
    return { status: 201, body: toOrder(row, []) };
  },
});
