import { writeAudit, type Queryable } from '../../../adapter';
import { readSettings } from '../settings/settings';
import { formatLinkRef, newLinkId, unixSeconds } from './link-signer';
import { insertApprovalLink } from './link-store';
import type { ApprovalRow } from './store';

/*
 * One-click approval links, issued: with each approval mail (announce.ts), and afresh with each reminder. Opening and
 * deciding is link-use.ts, kept apart so that announcing an approval (routing) does not depend on deciding one;
 * signing is link-signer.ts; the rows, link-store.ts.
 */

/** Days a link stays valid while the `approvals` setting `link_ttl_days` is unset. */
export const LINK_TTL_DEFAULT_DAYS = 7;

/** The attribution of issuing links when the caller names none. */
export const LINK_ISSUER = 'system:approval-links';

/** The Approve and Decline link references of an approval: what a mail's `links` keep and `LinkSigner.url` signs. */
export interface ApprovalLinkRefs {
  approve: string;
  decline: string;
}

/** The days a new link stays valid: the `approvals` setting `link_ttl_days`, else 7. */
export async function readLinkTtlDays(q: Queryable): Promise<number> {
  const v = (await readSettings(q, 'approvals'))['link_ttl_days'];
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : LINK_TTL_DEFAULT_DAYS;
}

/**
 * Issues an Approve and a Decline link for the approval, to its approver, in the caller's transaction (they exist
 * exactly when the approval mail that carries them does), valid for `link_ttl_days` (or `opts.ttlDays`) from
 * `opts.now`; audited (`approval` / `links_issued`). Returns their references, which hold no secret: the signed URL
 * is made from them when the mail is sent (`LinkSigner.url`). Earlier links of the approval stay valid until they
 * expire, are used, or the approval is decided.
 */
export async function issueApprovalLinks(
  tx: Queryable,
  approval: Pick<ApprovalRow, 'id' | 'order_id' | 'approver_email'>,
  opts: { now?: Date | undefined; ttlDays?: number | undefined; triggeredBy?: string | undefined; requestId?: string | undefined } = {},
): Promise<ApprovalLinkRefs> {
  const ttlDays = opts.ttlDays ?? (await readLinkTtlDays(tx));
  const now = opts.now ?? new Date();
  // Whole seconds: the token carries the expiry as Unix seconds.
  const expiresAt = new Date(unixSeconds(new Date(now.getTime() + ttlDays * 86_400_000)) * 1000);
  const base = { approvalId: Number(approval.id), orderId: Number(approval.order_id), approverEmail: approval.approver_email.toLowerCase(), expiresAt };
  const approve = await insertApprovalLink(tx, { ...base, linkId: newLinkId(), decision: 'approved' });
  const decline = await insertApprovalLink(tx, { ...base, linkId: newLinkId(), decision: 'declined' });
  await writeAudit(tx, {
    entity: 'approval',
    entityId: base.approvalId,
    action: 'links_issued',
    after: { approver_email: base.approverEmail, link_ids: [approve.linkId, decline.linkId], expires_at: expiresAt.toISOString() },
    triggeredBy: opts.triggeredBy ?? LINK_ISSUER,
    requestId: opts.requestId,
  });
  return { approve: formatLinkRef(approve), decline: formatLinkRef(decline) };
}
