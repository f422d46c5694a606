import type { JobQueue, Queryable } from '../../../adapter';
import { enqueueMail, enqueueTeamsApprovalCard } from '../notifications';
import { approvalMailData } from './approval-mail';
import { issueApprovalLinks } from './links';
import { scheduleApprovalReminders } from './reminder-schedule';
import type { ApprovalRow } from './store';

/**
 * What follows the creation of an approval, wherever it is created (an order or an extension routed, a leaving
 * approver's approvals re-routed, a quorum fanned out, a delegation to a deputy, an escalation): its signed links are
 * issued, the approver is mailed (the original approver copied when a deputy decides), a Teams card is queued, and
 * its reminders are scheduled. Everything here is written in the caller's transaction, so an approval and what
 * announces it commit together or not at all; the sending itself happens in workers, after the commit.
 */
export interface AnnounceDeps {
  queue: JobQueue;
}

export interface AnnounceOptions {
  /** Audit attribution of the change that created the approval. */
  triggeredBy: string;
  requestId?: string | undefined;
  /** Copied on the approval mail: the approver a deputy stands in for. */
  cc?: readonly string[] | undefined;
  /** A quorum round's N of M, for the mail ("needs 2 of 3 approvals"); left out of the mail when not given. */
  quorum?: { required: number; approvers: number } | undefined;
}

export async function announceApproval(tx: Queryable, deps: AnnounceDeps, approval: ApprovalRow, opts: AnnounceOptions): Promise<void> {
  // Signed Approve/Decline links (their rows; the URLs are signed when the mail is sent) and the mail that carries
  // them, to the approver, the approver a deputy stands in for copied.
  const actor = { triggeredBy: opts.triggeredBy, requestId: opts.requestId };
  const links = await issueApprovalLinks(tx, approval, actor);
  const data = await approvalMailData(tx, approval, links, { quorum: opts.quorum });
  const cc = (opts.cc ?? []).filter((e) => e.toLowerCase() !== approval.approver_email.toLowerCase());
  await enqueueMail(tx, deps.queue, { template: 'approval_request', to: [approval.approver_email], ...(cc.length ? { cc } : {}), data }, actor);
  // The same request as a Teams card with the same links, when a webhook is configured for its type or globally.
  await enqueueTeamsApprovalCard(tx, deps.queue, { approverEmail: approval.approver_email, data }, actor);
  // Its clock: reminder, escalation, expiry (reminders.ts); an escalated approval's clock is its expiry alone.
  await scheduleApprovalReminders(tx, deps.queue, approval);
}
