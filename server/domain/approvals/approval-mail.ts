import type { Queryable } from '../../../adapter';
import type { ApprovalMailData } from '../notifications';
import { selectApprovalSubject, selectExtensionReason, type ApprovalSubject } from './link-store';
import type { ApprovalLinkRefs } from './links';
import type { ApprovalRow } from './store';

/*
 * What an approval mail (request or reminder) says about the order it asks a decision on, read in the caller's
 * transaction: the order, its requester, asset type, dates, cost and the requester's reason.
 */

/**
 * The requester's reason, if there is one: for an extension, the reason given with the extension request (its audit
 * row keeps it); for an order, a `justification` (or `reason`) attribute value, since orders have no field of their own
 * for it and asset types that want one ask for it as an attribute.
 */
export async function requesterJustification(q: Queryable, s: ApprovalSubject): Promise<string | null> {
  if (s.kind === 'extension') return selectExtensionReason(q, s.orderId);
  for (const key of ['justification', 'reason']) {
    const v = s.config[key];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  return null;
}

/**
 * The data of the approval mail of `approval`, with its links. `quorum` is the round's N of M when the caller knows M
 * (the routing that fans a quorum out does; the approval rows of a round are still being created then).
 * @throws Error for an approval that does not exist (the caller has just created or locked it).
 */
export async function approvalMailData(
  q: Queryable,
  approval: Pick<ApprovalRow, 'id'>,
  links: ApprovalLinkRefs | undefined,
  opts: { quorum?: { required: number; approvers: number } | undefined } = {},
): Promise<ApprovalMailData> {
  const s = await selectApprovalSubject(q, Number(approval.id));
  if (!s) throw new Error(`approval ${approval.id} does not exist`);
  const extension = s.kind === 'extension';
  return {
    order_id: s.orderId,
    approval_id: s.approvalId,
    asset_type_name: s.assetTypeName,
    requester_email: s.requesterEmail,
    requester_name: s.requesterName,
    kind: s.kind,
    requested_from: s.requestedFrom?.toISOString() ?? null,
    // For an extension, the end it asks for; for an order, the end it was ordered with.
    requested_until: (extension ? (s.approvalRequestedUntil ?? s.extensionRequestedUntil) : s.requestedUntil)?.toISOString() ?? null,
    reason: await requesterJustification(q, s),
    cost: s.monthlyCost !== null ? { amount: s.monthlyCost, currency: s.currency, period: 'month' } : null,
    on_behalf_of: s.onBehalfOf,
    quorum: opts.quorum ?? null,
    ...(links ? { links } : {}),
  };
}
