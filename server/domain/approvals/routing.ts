import { writeAudit, type Queryable } from '../../../adapter';
import type { RequesterDirectory } from '../identity/requester-directory';
import { insertApproval, normalEmail, selectFallbackApprover, type ApprovalRow } from './store';

/*
 * Where an approval goes: to the person's manager from the directory, else the asset type's fallback approver.
 * Placing an order routes its approval here, in the order's transaction; the orders module depends on this one and
 * not on the deciding half (approvals.ts), which in turn depends on orders.
 */

/** What an approval's audit rows show of it. */
export const auditShape = (r: ApprovalRow): Record<string, unknown> => ({
  id: r.id,
  order_id: r.order_id,
  kind: r.kind,
  requested_until: r.requested_until === null ? null : new Date(r.requested_until).toISOString(),
  approver_email: r.approver_email,
  status: r.status,
  routed_from_approval_id: r.routed_from_approval_id,
  reason: r.reason,
  decided_by: r.decided_by,
});

/** The manager the directory names, unless it is one of `not` (the requester themselves, a leaver). */
export async function managerOf(directory: RequesterDirectory | undefined, email: string, not: readonly string[]): Promise<string | undefined> {
  if (!directory?.managerOf) return undefined;
  const m = normalEmail(await directory.managerOf(email));
  return m && !not.includes(m) ? m : undefined;
}

/**
 * Routes a new order that waits for approval, in the caller's (the order's) transaction: to the requester's
 * manager, else the type's fallback approver; with neither the order stays pending unrouted, and the audit says so.
 * The directory is asked inside the transaction: it is only asked for orders that need approval.
 * With `extension`, what waits is an extension of the order to that `requested_until` (a renewal goes the same way).
 */
export async function routeNewApproval(
  tx: Queryable,
  directory: RequesterDirectory | undefined,
  order: { id: number; user_email: string; asset_type_id: number },
  actor: { triggeredBy: string; requestId?: string | undefined },
  extension?: { requestedUntil: Date },
): Promise<ApprovalRow | undefined> {
  const requester = order.user_email.toLowerCase();
  const manager = await managerOf(directory, requester, [requester]);
  const fallback = manager ? undefined : await selectFallbackApprover(tx, Number(order.asset_type_id));
  const approver = manager ?? (fallback !== requester ? fallback : undefined);
  if (!approver) {
    await writeAudit(tx, {
      entity: 'order',
      entityId: order.id,
      action: 'approval_unrouted',
      after: {
        reason: 'no manager in the directory and no fallback approver on the asset type',
        ...(extension ? { kind: 'extension', requested_until: extension.requestedUntil.toISOString() } : {}),
      },
      triggeredBy: actor.triggeredBy,
      requestId: actor.requestId,
    });
    return undefined;
  }
  const row = await insertApproval(tx, {
    orderId: Number(order.id),
    approver,
    routedFrom: null,
    reason: manager ? 'manager' : 'fallback_approver',
    ...(extension ? { kind: 'extension' as const, requestedUntil: extension.requestedUntil } : {}),
  });
  await writeAudit(tx, { entity: 'approval', entityId: row.id, action: 'create', after: auditShape(row), triggeredBy: actor.triggeredBy, requestId: actor.requestId });
  return row;
}
