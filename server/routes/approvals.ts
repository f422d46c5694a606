import type { RouteModule } from './route-module';
import type { ApprovalDecision } from '../api/gen/types.gen';
import { attribution, scopeGrants, type Principal } from '../auth/principal';
import { decideApproval, listApprovals, listUnroutedApprovals, type Decision } from '../domain/approvals/approvals';
import { createDelegation, listDelegations, revokeDelegation, toDelegationView, type DelegationActor } from '../domain/approvals/delegations';
import { approvalViews, unroutedView } from '../domain/approvals/views';
import { pageBody, pageOf } from '../domain/paging';
import { forbidden, unauthenticated } from '../errors';

/**
 * Admins (scope `admin:*`, not an approver-role token) decide any waiting order; an `approver` token only the
 * approvals routed to the approver email it was bound to at mint (see the spec's description of approveOrder).
 * Delegations follow the same split: an approver token manages its own, an admin anyone's.
 */
function deciderOf(p: Principal | undefined): DelegationActor {
  if (!p) throw unauthenticated('credentials required');
  if (p.role === 'approver') {
    return { admin: false, triggeredBy: attribution('approver', p), boundApprover: p.kind === 'token' ? p.approverEmail : null };
  }
  if (scopeGrants(p.scopes, 'admin:*')) return { admin: true, triggeredBy: attribution('admin', p) };
  throw forbidden('this operation requires scope admin:* or role approver');
}

/** A reader of delegations (the spec has checked `admin:read`): an approver token sees its own, anyone else all. */
function readerOf(p: Principal | undefined): Pick<DelegationActor, 'admin' | 'boundApprover'> {
  if (!p) throw unauthenticated('credentials required');
  if (p.role === 'approver') return { admin: false, boundApprover: p.kind === 'token' ? p.approverEmail : null };
  return { admin: true };
}

export const approvalHandlers: RouteModule = ({ db, queue, logger, requesterDirectory }) => {
  const deps = { db, queue, logger, directory: requesterDirectory };
  const decide = async (decision: Decision, input: { path: { id: number }; body?: { approver_email?: string; reason?: string } | undefined; principal?: Principal | undefined; requestId?: string | undefined }) => {
    const who = deciderOf(input.principal);
    const r = await decideApproval(deps, Number(input.path.id), decision, { ...who, requestId: input.requestId, approverEmail: input.body?.approver_email }, input.body?.reason);
    const [approval] = r.approval ? await approvalViews(db, [r.approval]) : [];
    const body: ApprovalDecision = {
      order_id: Number(r.order.id),
      kind: r.kind,
      order_status: r.order.status,
      requested_until: r.order.requested_until ? new Date(r.order.requested_until).toISOString() : null,
      job_id: r.order.job_id,
      ...(approval ? { approval, quorum: approval.quorum } : {}),
    };
    return { status: 200 as const, body };
  };
  return {
    approveOrder: (input) => decide('approved', input),
    declineOrder: (input) => decide('declined', input),
    listApprovals: async ({ query }) => {
      const page = pageOf(query);
      const filters = { approver: query.approver, status: query.status, orderId: query.order_id, ...page };
      if (query.routed === false) {
        const found = await listUnroutedApprovals(db, filters);
        return { status: 200, body: pageBody(found, unroutedView, page) };
      }
      const found = await listApprovals(db, filters);
      const views = await approvalViews(db, found.items);
      return { status: 200, body: { items: views, total: found.total, limit: page.limit, offset: page.offset } };
    },
    listApprovalDelegations: async ({ query, principal }) => {
      const page = pageOf(query);
      const found = await listDelegations(db, { approver: query.approver, deputy: query.deputy, active: query.active, ...page }, readerOf(principal));
      const now = new Date();
      return { status: 200, body: pageBody(found, (r) => toDelegationView(r, now), page) };
    },
    createApprovalDelegation: async ({ body, principal, requestId }) => {
      const who = { ...deciderOf(principal), requestId };
      const row = await createDelegation(
        db,
        { approverEmail: body.approver_email, deputyEmail: body.deputy_email, startsAt: body.starts_at, endsAt: body.ends_at, reason: body.reason },
        who,
      );
      return { status: 201, body: toDelegationView(row) };
    },
    revokeApprovalDelegation: async ({ path, principal, requestId }) => {
      await revokeDelegation(db, Number(path.id), { ...deciderOf(principal), requestId });
      return { status: 204, body: undefined };
    },
  };
};
