import type { RouteModule } from './route-module';
import type { Approval, ApprovalDecision } from '../api/gen/types.gen';
import { attribution, scopeGrants, type Principal } from '../auth/principal';
import { decideApproval, listApprovals, type ApprovalRow, type Decision } from '../domain/approvals/approvals';
import { pageBody, pageOf } from '../domain/paging';
import { forbidden, unauthenticated } from '../errors';

const toApproval = (a: ApprovalRow): Approval => ({
  ...a,
  requested_until: a.requested_until ? new Date(a.requested_until).toISOString() : null,
  decided_at: a.decided_at ? new Date(a.decided_at).toISOString() : null,
  created_at: new Date(a.created_at).toISOString(),
});

/**
 * Admins (scope `admin:*`, not an approver-role token) decide any waiting order; an `approver` token only the
 * approvals routed to the approver email it was bound to at mint (see the spec's description of approveOrder).
 */
function deciderOf(p: Principal | undefined): { admin: boolean; triggeredBy: string; boundApprover?: string | null } {
  if (!p) throw unauthenticated('credentials required');
  if (p.role === 'approver') {
    return { admin: false, triggeredBy: attribution('approver', p), boundApprover: p.kind === 'token' ? p.approverEmail : null };
  }
  if (scopeGrants(p.scopes, 'admin:*')) return { admin: true, triggeredBy: attribution('admin', p) };
  throw forbidden('deciding an approval requires scope admin:* or role approver');
}

export const approvalHandlers: RouteModule = ({ db, queue, logger, requesterDirectory }) => {
  const deps = { db, queue, logger, directory: requesterDirectory };
  const decide = async (decision: Decision, input: { path: { id: number }; body?: { approver_email?: string; reason?: string } | undefined; principal?: Principal | undefined; requestId?: string | undefined }) => {
    const who = deciderOf(input.principal);
    const r = await decideApproval(deps, Number(input.path.id), decision, { ...who, requestId: input.requestId, approverEmail: input.body?.approver_email }, input.body?.reason);
    const body: ApprovalDecision = {
      order_id: Number(r.order.id),
      kind: r.kind,
      order_status: r.order.status,
      requested_until: r.order.requested_until ? new Date(r.order.requested_until).toISOString() : null,
      job_id: r.order.job_id,
      ...(r.approval ? { approval: toApproval(r.approval) } : {}),
    };
    return { status: 200 as const, body };
  };
  return {
    approveOrder: (input) => decide('approved', input),
    declineOrder: (input) => decide('declined', input),
    listApprovals: async ({ query }) => {
      const page = pageOf(query);
      const found = await listApprovals(db, { approver: query.approver, status: query.status, ...page });
      return { status: 200, body: pageBody(found, toApproval, page) };
    },
  };
};
