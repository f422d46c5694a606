import type { RouteModule } from './route-module';
import { attribution } from '../auth/principal';
import { unauthenticated } from '../errors';
import { requireWindow, toCreateOrderInput } from '../domain/orders/order-input';
import { createDeleteOrder, createOrder } from '../domain/orders/orders';
import { toOrder } from './orders';

/**
 * `POST /webhook/servicenow`: the ServiceNow contract mapped onto the same order commands as `POST /orders`.
 * Authentication (Bearer with `webhook:in`, or the HMAC signature) has happened before the handler runs.
 * A `delete` answers 201 when its take-back is under way, 202 when it is queued behind its target's running
 * provision; either way the body is the delete's own order, which a ServiceNow agent polls until `returned`/`failed`.
 */
export const webhookHandlers: RouteModule = ({ db, queue, logger, requesterDirectory }) => ({
  receiveServiceNowOrder: async ({ body, principal, requestId }) => {
    if (!principal) throw unauthenticated('credentials required');
    const actor = { triggeredBy: attribution('webhook', principal), requestId };
    const deps = { db, queue, logger, directory: requesterDirectory };
    const input = toCreateOrderInput(body, 'servicenow');
    if (body.action === 'delete') {
      const { order, queued } = await createDeleteOrder(deps, input, actor);
      const answer = toOrder(order, []);
      return queued ? { status: 202, body: answer } : { status: 201, body: answer };
    }
    // The contract's window is what a provision is placed for; taking something back needs none.
    requireWindow(body);
    return { status: 201, body: toOrder(await createOrder(deps, input, actor), []) };
  },
});
