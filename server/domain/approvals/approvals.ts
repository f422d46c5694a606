import { writeAudit, type Queryable } from '../../../adapter';
import { conflict, forbidden, notFound } from '../../errors';
import type { Assert, Same } from '../../api/spec-types';
import type { Page } from '../paging';
import type { LeaverApproverHook } from '../identity/leaver';
import type { RequesterDirectory } from '../identity/requester-directory';
import { decideExtension, releaseApprovedOrder, waitingExtension } from '../orders/lifecycle';
import { OrderStatus, transitionOrder } from '../orders/order-status';
import { getOrder, type OrderDeps, type OrderRow } from '../orders/orders';
import { lockOrderStatus } from '../orders/store';
import { auditShape, managerOf } from './routing';
import {
  closeApproval,
  lockPendingApproval,
  lockPendingApprovalsOf,
  lockPendingOfCancelledOrders,
  insertApproval,
  normalEmail,
  selectApprovals,
  selectFallbackApprover,
  type ApprovalFilters,
  type ApprovalRow,
  type ApprovalStatus,
} from './store';

/**
 * Approvals of orders that wait in `pending_approval`: each is routed to one approver (the requester's manager
 * from the directory, else the asset type's `fallback_approver`; see routing.ts), decided once, or superseded and
 * re-routed when its approver leaves. An order with no approver at all stays pending with no row (audited as
 * unrouted); an admin may still decide it.
 */

export type { ApprovalFilters, ApprovalRow, ApprovalStatus } from './store';
export { normalEmail } from './store';
export const APPROVAL_STATUSES = ['pending', 'approved', 'declined', 'superseded', 'withdrawn'] as const;
type ApprovalStatusesMatchSpec = Assert<Same<(typeof APPROVAL_STATUSES)[number], ApprovalStatus>>;

const normal = normalEmail;

/** Who decides: an admin (any approval, or an unrouted order) or the approver the approval names. */
export interface Decider {
  /** Audit attribution: `admin:token:<name>` / `admin:key`, or `approver:token:<name>`. */
  triggeredBy: string;
  requestId?: string | undefined;
  /** True for admin/superadmin callers (scope `admin:*`); false for an `approver` token. */
  admin: boolean;
  /**
   * Non-admins only: the approver email the token was bound to at mint; null for an approver token minted
   * before the binding existed (it may decide nothing).
   */
  boundApprover?: string | null | undefined;
  /** The approver the caller says it acts as (the request's `approver_email`; optional). */
  approverEmail?: string | undefined;
}

/**
 * The approver a decision is made as: an approver token decides only as the email bound to it, whatever the body
 * says, because an email in the body is an assertion anyone holding an approver token could make.
 * Throws FORBIDDEN for an unbound approver token or a body naming someone else.
 */
function actingApprover(who: Decider): string | undefined {
  const claimed = normal(who.approverEmail);
  if (who.admin) return claimed;
  const bound = normal(who.boundApprover);
  if (!bound) {
    throw forbidden(
      'this approver token is bound to no approver email (minted before approver binding); ask an admin to mint ' +
        "a replacement with role 'approver' and approver_email, and revoke this one",
    );
  }
  if (claimed && claimed !== bound) throw forbidden(`this token decides only as ${bound}, not ${claimed}`);
  return bound;
}

export type Decision = 'approved' | 'declined';

/**
 * Decides the order's pending approval in one transaction: `approved` moves the order to `processing` (or
 * `scheduled` when its `requested_from` lies ahead) and enqueues its `order.provision` job (job id stored on the
 * order, as `createOrder` does); `declined` cancels it. An extension waiting on the order (lifecycle.ts) is
 * decided the same way: `approved` applies its `requested_until`, `declined` drops it; the order stays as it is.
 * Throws NOT_FOUND for an unknown order, CONFLICT when nothing of it waits for approval (or already decided),
 * FORBIDDEN when a non-admin caller is not bound to an approver, names another one, is not the approval's
 * approver, or the order has no approver yet.
 */
export async function decideApproval(
  deps: OrderDeps,
  orderId: number,
  decision: Decision,
  who: Decider,
  reason: string | undefined,
): Promise<{ order: OrderRow; approval: ApprovalRow | null; kind: 'order' | 'extension' }> {
  const as = actingApprover(who);
  return deps.db.transaction(async (tx) => {
    const current = await lockOrderStatus(tx, orderId);
    if (current === undefined) throw notFound(`order ${orderId} does not exist`);
    const extension = current === OrderStatus.PENDING_APPROVAL ? null : await waitingExtension(tx, orderId);
    if (current !== OrderStatus.PENDING_APPROVAL && extension === null) {
      throw conflict(`order ${orderId} is not waiting for approval (status '${current}')`);
    }
    const pending = await lockPendingApproval(tx, orderId);
    if (!who.admin) {
      if (!pending) throw forbidden(`order ${orderId} has no approver yet; only an admin may decide it`);
      if (!as || as !== pending.approver_email) throw forbidden(`order ${orderId} is waiting for another approver`);
    } else if (as && pending && as !== pending.approver_email) {
      throw forbidden(`order ${orderId} is waiting for another approver`);
    }
    const decidedBy = as ? `${as} (${who.triggeredBy})` : who.triggeredBy;
    let approval: ApprovalRow | null = null;
    if (pending) {
      approval = await closeApproval(tx, pending.id, decision, decidedBy, reason ?? null);
      await writeAudit(tx, {
        entity: 'approval',
        entityId: approval.id,
        action: decision,
        before: auditShape(pending),
        after: auditShape(approval),
        triggeredBy: who.triggeredBy,
        requestId: who.requestId,
      });
    } else {
      await writeAudit(tx, {
        entity: 'order',
        entityId: orderId,
        action: `approval_${decision}`,
        after: { decided_by: decidedBy, reason: reason ?? null, routed: false },
        triggeredBy: who.triggeredBy,
        requestId: who.requestId,
      });
    }
    const opts = { triggeredBy: who.triggeredBy, requestId: who.requestId, reason };
    if (extension !== null) {
      return { order: await decideExtension(deps, tx, orderId, decision, opts), approval, kind: 'extension' as const };
    }
    if (decision === 'approved') {
      // The job id is chosen there and stored on the order, so the job exists exactly when the approval commits.
      return { order: await releaseApprovedOrder(deps, tx, orderId, opts), approval, kind: 'order' as const };
    }
    await transitionOrder(tx, orderId, OrderStatus.CANCELLED, { ...opts, error: `declined${reason ? `: ${reason}` : ''}` });
    return { order: (await getOrder(tx, orderId))!.order, approval, kind: 'order' as const };
  });
}

/** One page of approvals, newest first, and how many match in all. */
export function listApprovals(q: Queryable, f: ApprovalFilters): Promise<Page<ApprovalRow>> {
  return selectApprovals(q, f);
}

/**
 * The leaver flow's approver hook. The leaver's own orders the flow cancelled while they waited for approval have
 * their pending approval withdrawn. Every pending approval the leaver was to give (on an order still waiting)
 * is superseded and re-routed to the leaver's manager, else the asset type's fallback approver, else left
 * unrouted. Each change is audited with the leaver event's attribution. Runs in the leaver transaction (after its
 * cancellations), under the person's lock; a repeated event finds nothing pending for them, so it changes nothing.
 */
export function supersedeApprovalsHook(directory: RequesterDirectory | undefined): LeaverApproverHook {
  return async (tx, ctx) => {
    const emails = ctx.emails.map((e) => e.toLowerCase());
    const audit = { triggeredBy: ctx.triggeredBy, requestId: ctx.requestId };
    for (const old of await lockPendingOfCancelledOrders(tx, emails)) {
      const withdrawn = await closeApproval(tx, old.id, 'withdrawn', ctx.triggeredBy, `requester left (leaver event ${ctx.eventId})`);
      await writeAudit(tx, { entity: 'approval', entityId: old.id, action: 'withdrawn', before: auditShape(old), after: auditShape(withdrawn), ...audit });
    }

    const handedOn: number[] = [];
    for (const old of await lockPendingApprovalsOf(tx, emails)) {
      const requester = old.requester.toLowerCase();
      // Neither a leaver nor the requester may inherit the approval.
      const excluded = [...emails, requester];
      const manager = await managerOf(directory, old.approver_email, excluded);
      const fallback = manager ? undefined : await selectFallbackApprover(tx, old.asset_type_id);
      const next = manager ?? (fallback && !excluded.includes(fallback) ? fallback : undefined);
      const superseded = await closeApproval(tx, old.id, 'superseded', ctx.triggeredBy, `approver left (leaver event ${ctx.eventId})`);
      await writeAudit(tx, { entity: 'approval', entityId: old.id, action: 'superseded', before: auditShape(old), after: auditShape(superseded), ...audit });
      if (next) {
        // A re-routed extension stays an extension of the same requested_until.
        const row = await insertApproval(tx, { orderId: old.order_id, approver: next, routedFrom: old.id, reason: manager ? 'manager of leaving approver' : 'fallback_approver', kind: old.kind, requestedUntil: old.requested_until === null ? null : new Date(old.requested_until) });
        await writeAudit(tx, { entity: 'approval', entityId: row.id, action: 'create', after: { ...auditShape(row), leaver_event_id: ctx.eventId }, ...audit });
      } else {
        await writeAudit(tx, {
          entity: 'order',
          entityId: old.order_id,
          action: 'approval_unrouted',
          after: { reason: 'approver left; no manager in the directory and no fallback approver on the asset type', leaver_event_id: ctx.eventId },
          ...audit,
        });
      }
      handedOn.push(old.order_id);
    }
    return handedOn;
  };
}
