import { CodedError, isCodedError, writeAudit, type Database, type Queryable } from '../../../adapter';
import { ErrorCode } from '../../errors';
import type { OrderDeps } from '../orders/orders';
import { OrderStatus } from '../orders/order-status';
import { requesterJustification } from './approval-mail';
import { decideApproval, type DecisionResult } from './approvals';
import type { LinkDecision, LinkSigner } from './link-signer';
import { markApprovalLinkUsed, selectApprovalLink, selectApprovalSubject, type ApprovalLinkRow, type ApprovalSubject, type LinkOutcome } from './link-store';
import { SeparationOfDutiesError } from './separation';

/*
 * Using a signed approval link (routes/approval-links.ts), without logging in: opening one shows what it decides and
 * decides nothing, so mail scanners that follow links change nothing; the decision is the page's POST, which decides
 * exactly the link's approval through `decideApproval` (the same rules, locks and audit as an approver token) and
 * marks the link used in the same transaction. Links are issued by links.ts.
 */

export type { ApprovalLinkRow, LinkOutcome } from './link-store';

/** How a decision made through a link is attributed: `approval-link:<approver>`. */
export const linkAttribution = (approver: string): string => `approval-link:${approver}`;

/** What a link decides, as its pages show it. */
export interface ApprovalLinkView {
  linkId: string;
  decision: LinkDecision;
  approverEmail: string;
  expiresAt: Date;
  subject: ApprovalSubject;
  /** The requester's reason: a `justification` (or `reason`) attribute of the order, or the extension request's reason. */
  justification: string | null;
}

/** What a link's decision did. */
export interface ApprovalLinkDecision {
  view: ApprovalLinkView;
  outcome: LinkOutcome;
  result: DecisionResult;
}

export interface LinkDeps {
  db: Database;
  signer: LinkSigner;
  /** The clock expiry is judged by (tests); default now. */
  now?: (() => Date) | undefined;
}

const linkInvalid = (detail = 'this approval link is not valid: it may have been altered or mistyped') => new CodedError(ErrorCode.LINK_INVALID, detail);
const linkUsed = (l: ApprovalLinkRow) =>
  new CodedError(ErrorCode.LINK_USED, `this approval link was already used on ${l.usedAt!.toISOString()}`, { extra: { used_at: l.usedAt!.toISOString() } });
const linkExpired = (l: ApprovalLinkRow) =>
  new CodedError(ErrorCode.LINK_EXPIRED, `this approval link expired on ${l.expiresAt.toISOString()}`, { extra: { expired_at: l.expiresAt.toISOString() } });

/** True while the order still waits for what the approval decides (the order itself, or its extension). */
function stillWaiting(s: ApprovalSubject): boolean {
  if (s.approvalStatus !== 'pending') return false;
  if (s.kind === 'extension') return s.extensionRequestedUntil !== null;
  return s.orderStatus === OrderStatus.PENDING_APPROVAL;
}

function approvalClosed(s: ApprovalSubject): CodedError {
  const why =
    s.approvalStatus !== 'pending'
      ? `the approval is ${s.approvalStatus}`
      : s.kind === 'extension'
        ? 'the extension no longer waits for approval'
        : `the order is ${s.orderStatus.replace(/_/g, ' ')}`;
  return new CodedError(ErrorCode.APPROVAL_CLOSED, `Order #${s.orderId} no longer waits for this decision: ${why}`, {
    extra: { approval_status: s.approvalStatus, order_status: s.orderStatus },
  });
}

/**
 * The link a token names, checked in this order: signed by us for exactly this row (else LINK_INVALID), not used
 * (LINK_USED), not expired (LINK_EXPIRED), its approval still waiting (APPROVAL_CLOSED). Read-only.
 */
async function checkLink(deps: LinkDeps, token: string): Promise<{ link: ApprovalLinkRow; view: ApprovalLinkView }> {
  const verified = await deps.signer.verify(token, (id) => selectApprovalLink(deps.db, id));
  if (!verified.ok) throw linkInvalid();
  const link = verified.link;
  if (link.usedAt) throw linkUsed(link);
  if (link.expiresAt.getTime() <= (deps.now?.() ?? new Date()).getTime()) throw linkExpired(link);
  const subject = await selectApprovalSubject(deps.db, link.approvalId);
  // The row's binding is signed, so its approval and order are the ones it was issued for; a mismatch is corruption.
  if (!subject || subject.orderId !== link.orderId) throw linkInvalid();
  if (!stillWaiting(subject)) throw approvalClosed(subject);
  return {
    link,
    view: { linkId: link.linkId, decision: link.decision, approverEmail: link.approverEmail, expiresAt: link.expiresAt, subject, justification: await requesterJustification(deps.db, subject) },
  };
}

/**
 * What the link in `token` decides, for its confirmation page. Decides and changes nothing.
 * @throws CodedError LINK_INVALID (malformed, unknown or altered token), LINK_USED, LINK_EXPIRED, APPROVAL_CLOSED.
 */
export async function openApprovalLink(deps: LinkDeps, token: string): Promise<ApprovalLinkView> {
  return (await checkLink(deps, token)).view;
}

/**
 * Makes the decision of the link in `token`, as its approver (`approval-link:<approver>`), with `reason`: through
 * `decideApproval` on exactly the link's approval, the link marked used (with the outcome) and audited
 * (`approval_link` / `used`) in the decision's transaction. Of two uses at once one decides; the other finds the
 * approval decided and the link used: LINK_USED.
 * @throws CodedError LINK_INVALID, LINK_USED, LINK_EXPIRED, APPROVAL_CLOSED (as openApprovalLink, judged again under
 * the decision's locks), SEPARATION_OF_DUTIES when approving would break it (audited by decideApproval).
 */
export async function decideByApprovalLink(
  deps: LinkDeps & OrderDeps,
  token: string,
  input: { reason?: string | undefined; requestId?: string | undefined },
): Promise<ApprovalLinkDecision> {
  const { link, view } = await checkLink(deps, token);
  const who = linkAttribution(link.approverEmail);
  const reason = input.reason?.trim() ? input.reason.trim() : undefined;
  let outcome: LinkOutcome | undefined;
  try {
    const result = await decideApproval(
      deps,
      link.orderId,
      link.decision,
      { admin: false, triggeredBy: who, boundApprover: link.approverEmail, approverEmail: link.approverEmail, requestId: input.requestId },
      reason,
      {
        approvalId: link.approvalId,
        inTransaction: async (tx, r) => {
          const o: LinkOutcome = link.decision === 'declined' ? 'declined' : r.round && r.round.count.approved < r.round.round.quorum ? 'counted' : 'approved';
          const used = await markApprovalLinkUsed(tx, link.linkId, who, o);
          // Used, or expired by the database's clock, since it was checked: the decision rolls back with this throw.
          if (!used) {
            const now = await selectApprovalLink(tx, link.linkId);
            throw now?.usedAt ? linkUsed(now) : linkExpired(link);
          }
          await writeAudit(tx, {
            entity: 'approval_link',
            entityId: link.linkId,
            action: 'used',
            before: { used_at: null },
            after: { approval_id: link.approvalId, order_id: link.orderId, decision: link.decision, outcome: o, used_at: used.usedAt!.toISOString() },
            triggeredBy: who,
            requestId: input.requestId,
          });
          outcome = o;
        },
      },
    );
    return { view, outcome: outcome!, result };
  } catch (err) {
    if (err instanceof SeparationOfDutiesError) throw err;
    if (isCodedError(err) && (err.code === ErrorCode.LINK_USED || err.code === ErrorCode.LINK_EXPIRED)) throw err;
    // decideApproval found the approval no longer pending (decided by another use of this link, by its sibling, or
    // otherwise) or no longer this approver's: say which, from the rows as they are now.
    if (isCodedError(err) && (err.code === ErrorCode.CONFLICT || err.code === ErrorCode.FORBIDDEN || err.code === ErrorCode.NOT_FOUND)) {
      throw await refusalOf(deps.db, link.linkId, err);
    }
    throw err;
  }
}

/** Why a link cannot decide now that it could a moment ago. */
async function refusalOf(q: Queryable, linkId: string, cause?: unknown): Promise<CodedError> {
  const link = await selectApprovalLink(q, linkId);
  if (!link) return linkInvalid();
  if (link.usedAt) return linkUsed(link);
  const subject = await selectApprovalSubject(q, link.approvalId);
  if (subject && !stillWaiting(subject)) return approvalClosed(subject);
  if (link.expiresAt.getTime() <= Date.now()) return linkExpired(link);
  return new CodedError(ErrorCode.APPROVAL_CLOSED, `Order #${link.orderId} no longer waits for this decision`, {
    extra: subject ? { approval_status: subject.approvalStatus, order_status: subject.orderStatus } : {},
    cause,
  });
}
