/**
 * ServiceNow take-backs (`action: delete` orders) after they are placed. A delete's own order is `deprovisioning`
 * while it takes its target back and ends with the target's deprovision: `returned`, or `failed` with the error.
 * It never shows `provisioned`, which would tell a ServiceNow agent polling `GET /orders/{id}` that something was
 * handed out.
 *
 * A delete whose target is still being provisioned (`processing`/`provisioning`) is queued rather than refused:
 * it is placed with its job id but without its job, and {@link settleTakeBacks} dispatches the job when the
 * provision ends. Queued, not raced through the per-asset lock: a provision that has not claimed its asset yet
 * runs under `order:<id>` and its deprovision would run under `asset:<id>`, so the lock cannot order the two; and
 * the deprovision must know what the provision did (which asset, whether it failed) before it starts.
 */
import { QueueName, type JobQueue, type Queryable } from '../../../adapter';
import { OrderStatus, transitionOrder } from './order-status';
import { lockOpenTakeBacks, lockOrderStatus } from './store';

/** Attribution of what a take-back does on its own once its target's provision has ended. */
export const TAKE_BACK_ACTOR = 'system:order-take-back';

/** Target statuses a queued take-back waits through: its provision has not ended yet. */
export const PROVISION_RUNNING: readonly OrderStatus[] = [OrderStatus.PROCESSING, OrderStatus.PROVISIONING];

/**
 * Called, in the same transaction, whenever order `targetId`'s provision phase has ended (provisioned or failed)
 * or it was cancelled: a take-back queued for it starts now (the target moves to `deprovisioning`, attributed to
 * whoever sent the delete, and the delete's `order.deprovision` job is enqueued under the id it was placed with);
 * when the target was cancelled there is nothing to take back and the delete is `returned` at once. Does nothing
 * when no take-back waits, or while the target is still being provisioned. The caller holds the target's row lock
 * (so a delete placed concurrently has either committed, and is seen here, or sees the target's new status).
 * `known`: the target's status when the caller has just moved it (holding its lock), saving the locked re-read.
 */
export async function settleTakeBacks(tx: Queryable, queue: JobQueue, targetId: number, known?: OrderStatus): Promise<void> {
  const status = known ?? (await lockOrderStatus(tx, targetId));
  if (status === undefined || PROVISION_RUNNING.includes(status)) return;
  const waiting = await lockOpenTakeBacks(tx, targetId);
  const first = waiting[0];
  if (!first) return;
  if (status === OrderStatus.CANCELLED) {
    for (const d of waiting) await transitionOrder(tx, d.id, OrderStatus.RETURNED, { triggeredBy: TAKE_BACK_ACTOR, reason: 'the target order was cancelled before it held anything' });
    return;
  }
  // Provisioned or failed: what it holds is taken back now. Deprovisioning, revoked or returned: another take-back
  // (a leaver's) already does it, and closeTakeBacks closes this one with it.
  if (status !== OrderStatus.PROVISIONED && status !== OrderStatus.FAILED) return;
  await transitionOrder(tx, targetId, OrderStatus.DEPROVISIONING, { triggeredBy: first.created_by, reason: `take-back by order ${first.id}` });
  await queue.send(tx, QueueName.ORDER_DEPROVISION, { orderId: first.id, targetOrderId: targetId }, first.job_id ? { id: first.job_id } : {});
}

/**
 * Ends every take-back of order `targetId` with its deprovision: `returned` when it succeeded, `failed` with its
 * error when it did not. The delete that asked and any that queued behind a leaver's revocation end alike.
 */
export async function closeTakeBacks(tx: Queryable, targetId: number, outcome: { ok: true } | { ok: false; message: string }, triggeredBy: string): Promise<void> {
  for (const d of await lockOpenTakeBacks(tx, targetId)) {
    await transitionOrder(tx, d.id, outcome.ok ? OrderStatus.RETURNED : OrderStatus.FAILED, { triggeredBy, error: outcome.ok ? undefined : outcome.message });
  }
}
