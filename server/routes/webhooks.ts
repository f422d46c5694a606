import type { RouteModule } from './route-module';
import { attribution } from '../auth/principal';
import { unauthenticated } from '../errors';
import { toCreateOrderInput } from '../domain/orders/order-input';
import { createDeleteOrder, createOrder } from '../domain/orders/orders';
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
    const input = toCreateOrderInput(body, 'servicenow');
    const row = body.action === 'delete' ? await createDeleteOrder(deps, input, actor) : await createOrder(deps, input, actor);
    return { status: 201, body: toOrder(row, []) };
  },
});
