import type { JobQueue, Queryable } from '../../../adapter';
import { enqueueNotice } from '../notices';
import { selectOrderSummaries } from '../orders/store';
import type { ApprovalKind } from './store';

/** How what waited for approval ended, as its requester is told. */
export type DecisionOutcome = 'approved' | 'declined' | 'expired';

export interface DecisionNotice {
  orderId: number;
  decision: DecisionOutcome;
  /** What was decided: the order itself, or an extension of it. */
  kind: ApprovalKind;
  /** For an extension: the `requested_until` it asked for; by default the one waiting on the order (call before it is applied or dropped). */
  requestedUntil?: Date | string | null | undefined;
  /** Who decided (`manager@example.com (approver:token:mgr)`, `admin:key`, …); none for an expiry. */
  decidedBy?: string | null | undefined;
  reason?: string | null | undefined;
}

/**
 * Mails the order's requester how its approval (or its extension's) ended, in the caller's transaction: called once
 * the order's outcome is known (a decision that settles it, an expiry), so a quorum's single votes tell nobody.
 * Does nothing for an unknown order; a mail the outbox refuses is audited on the order and the decision stands.
 */
export async function notifyDecision(
  tx: Queryable,
  queue: JobQueue,
  notice: DecisionNotice,
  actor: { triggeredBy: string; requestId?: string | undefined },
): Promise<void> {
  const [order] = await selectOrderSummaries(tx, [notice.orderId]);
  if (!order) return;
  const asked = notice.requestedUntil ?? (notice.kind === 'extension' ? order.extension_requested_until : order.requested_until);
  const requestedUntil = asked ? new Date(asked).toISOString() : null;
  await enqueueNotice(
    tx,
    queue,
    {
      template: 'decision',
      to: [order.user_email],
      data: {
        order_id: order.id,
        asset_type_name: order.asset_type_name,
        requester_name: order.user_name,
        decision: notice.decision,
        kind: notice.kind,
        requested_until: requestedUntil,
        decided_by: notice.decidedBy ?? null,
        reason: notice.reason ?? null,
      },
    },
    actor,
    { entity: 'order', entityId: order.id },
  );
}
