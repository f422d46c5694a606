import type { Queryable } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import {
  selectLinkStats,
  selectReminderStats,
  selectRoundsApprovals,
  type ApprovalRow,
  type RoundCount,
  type RoundRow,
  type UnroutedRow,
} from './store';

/*
 * The approvals read model: an approval as the API shows it, its row with what other rows say of it — its round's
 * quorum and every decision made in it, the signed links issued for it, the reminders sent — read for a whole page
 * at once (one statement per kind, not per approval).
 */

export type ApprovalView = Api.Approval;
export type UnroutedApprovalView = Api.UnroutedApproval;
export type QuorumView = Api.ApprovalQuorum;

const iso = (d: Date | string | null | undefined): string | null => (d === null || d === undefined ? null : new Date(d).toISOString());

/** The round's quorum from its approvals: the counts now and every decision, oldest first. */
export function quorumView(round: RoundRow, approvals: readonly ApprovalRow[], count?: RoundCount): QuorumView {
  const decided = approvals.filter((a) => a.status === 'approved' || a.status === 'declined');
  return {
    round_id: round.id,
    mode: round.mode,
    required: round.quorum,
    approved: count?.approved ?? approvals.filter((a) => a.status === 'approved').length,
    pending: count?.pending ?? approvals.filter((a) => a.status === 'pending').length,
    decisions: decided.map((a) => ({
      approval_id: a.id,
      approver_email: a.approver_email,
      on_behalf_of: a.on_behalf_of,
      decision: a.status as 'approved' | 'declined',
      decided_by: a.decided_by,
      decided_at: iso(a.decided_at),
      reason: a.reason,
    })),
  };
}

/** The API's approvals for rows of any rounds, in the rows' order. */
export async function approvalViews(q: Queryable, rows: readonly ApprovalRow[]): Promise<ApprovalView[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const [rounds, links, reminders] = await Promise.all([
    selectRoundsApprovals(q, [...new Set(rows.map((r) => r.round_id))]),
    selectLinkStats(q, ids),
    selectReminderStats(q, ids),
  ]);
  const roundOf = new Map(rounds.map((r) => [r.round.id, quorumView(r.round, r.approvals)]));
  const linksOf = new Map(links.map((l) => [l.approval_id, l]));
  const remindersOf = new Map(reminders.map((r) => [r.id, r]));
  return rows.map((r) => {
    const l = linksOf.get(r.id);
    const m = remindersOf.get(r.id);
    return {
      id: r.id,
      order_id: r.order_id,
      kind: r.kind,
      requested_until: iso(r.requested_until),
      approver_email: r.approver_email,
      status: r.status,
      routed_from_approval_id: r.routed_from_approval_id,
      reason: r.reason,
      decided_at: iso(r.decided_at),
      decided_by: r.decided_by,
      created_at: new Date(r.created_at).toISOString(),
      routed: true,
      on_behalf_of: r.on_behalf_of,
      delegation_id: r.delegation_id,
      quorum: roundOf.get(r.round_id)!,
      links: { sent: l?.sent ?? 0, last_sent_at: iso(l?.last_sent_at), expires_at: iso(l?.expires_at), used_at: iso(l?.used_at) },
      reminders: { sent: m?.reminders_sent ?? 0, last_reminded_at: iso(m?.last_reminded_at) },
    };
  });
}

export function unroutedView(r: UnroutedRow): UnroutedApprovalView {
  return {
    routed: false,
    order_id: r.order_id,
    kind: r.kind,
    requested_until: iso(r.requested_until),
    user_email: r.user_email,
    asset_type_id: r.asset_type_id,
    reason: r.reason,
    since: iso(r.since),
  };
}
