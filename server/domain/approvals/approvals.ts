import { randomUUID } from 'node:crypto';
import { QueueName, type Queryable } from '../../../adapter';
import { conflict, forbidden, notFound } from '../../errors';
import { writeAudit } from '../../../adapter';
import type { LeaverApproverHook } from '../identity/leaver';
import { OrderStatus, transitionOrder } from '../orders/order-status';
import { dispatch, getOrder, type OrderDeps, type OrderRow, type RequesterDirectory } from '../orders/orders';

/**
 * Approvals of orders that wait in `pending_approval`: each is routed to one approver (the requester's manager
 * from the directory, else the asset type's `fallback_approver`), decided once, or superseded and re-routed
 * when its approver leaves. An order with no approver at all stays pending with no row (audited as unrouted);
 * an admin may still decide it.
 */

export type ApprovalStatus = 'pending' | 'approved' | 'declined' | 'superseded' | 'withdrawn';
export const APPROVAL_STATUSES: readonly ApprovalStatus[] = ['pending', 'approved', 'declined', 'superseded', 'withdrawn'];

export interface ApprovalRow {
  id: number;
  order_id: number;
  approver_email: string;
  status: ApprovalStatus;
  routed_from_approval_id: number | null;
  reason: string | null;
  decided_at: Date | null;
  decided_by: string | null;
  created_at: Date;
}

const COLUMNS = `id, order_id, approver_email, status, routed_from_approval_id, reason, decided_at, decided_by, created_at`;

/** How approvals compare emails (routing, deciding, approver tokens' binding): trimmed, lower-cased; blank is none. */
export const normalEmail = (e: string | null | undefined): string | undefined => {
  const s = e?.trim().toLowerCase();
  return s ? s : undefined;
};
const normal = normalEmail;

/** Both engines hand bigint columns back as strings; the API and the hooks speak numbers. */
const fromDb = (r: ApprovalRow): ApprovalRow => ({
  ...r,
  id: Number(r.id),
  order_id: Number(r.order_id),
  routed_from_approval_id: r.routed_from_approval_id === null ? null : Number(r.routed_from_approval_id),
});

async function fallbackOf(tx: Queryable, assetTypeId: number): Promise<string | undefined> {
  const { rows } = await tx.query<{ fallback_approver: string | null }>('SELECT fallback_approver FROM asset_types WHERE id = $1', [assetTypeId]);
  return normal(rows[0]?.fallback_approver);
}

/** The manager the directory names, unless it is one of `not` (the requester themselves, a leaver). */
async function managerOf(directory: RequesterDirectory | undefined, email: string, not: readonly string[]): Promise<string | undefined> {
  if (!directory?.managerOf) return undefined;
  const m = normal(await directory.managerOf(email));
  return m && !not.includes(m) ? m : undefined;
}

async function insertApproval(
  tx: Queryable,
  a: { orderId: number; approver: string; routedFrom: number | null; reason: string },
): Promise<ApprovalRow> {
  const { rows } = await tx.query<ApprovalRow>(
    `INSERT INTO approvals (order_id, approver_email, routed_from_approval_id, reason) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
    [a.orderId, a.approver, a.routedFrom, a.reason],
  );
  return fromDb(rows[0]!);
}

/**
 * Routes a new order that waits for approval, in the caller's (the order's) transaction: to the requester's
 * manager, else the type's fallback approver; with neither the order stays pending unrouted, and the audit says so.
 * The directory is asked inside the transaction: it is only asked for orders that need approval.
 */
export async function routeNewApproval(
  tx: Queryable,
  directory: RequesterDirectory | undefined,
  order: Pick<OrderRow, 'id' | 'user_email' | 'asset_type_id'>,
  actor: { triggeredBy: string; requestId?: string | undefined },
): Promise<ApprovalRow | undefined> {
  const requester = order.user_email.toLowerCase();
  const manager = await managerOf(directory, requester, [requester]);
  const fallback = manager ? undefined : await fallbackOf(tx, Number(order.asset_type_id));
  const approver = manager ?? (fallback !== requester ? fallback : undefined);
  if (!approver) {
    await writeAudit(tx, {
      entity: 'order',
      entityId: order.id,
      action: 'approval_unrouted',
      after: { reason: 'no manager in the directory and no fallback approver on the asset type' },
      triggeredBy: actor.triggeredBy,
      requestId: actor.requestId,
    });
    return undefined;
  }
  const row = await insertApproval(tx, { orderId: Number(order.id), approver, routedFrom: null, reason: manager ? 'manager' : 'fallback_approver' });
  await writeAudit(tx, { entity: 'approval', entityId: row.id, action: 'create', after: auditShape(row), triggeredBy: actor.triggeredBy, requestId: actor.requestId });
  return row;
}

const auditShape = (r: ApprovalRow): Record<string, unknown> => ({
  id: r.id,
  order_id: r.order_id,
  approver_email: r.approver_email,
  status: r.status,
  routed_from_approval_id: r.routed_from_approval_id,
  reason: r.reason,
  decided_by: r.decided_by,
});

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
 * Decides the order's pending approval in one transaction: `approved` moves the order to `processing` and
 * enqueues its `order.provision` job (job id stored on the order, as `createOrder` does); `declined` cancels it.
 * Throws NOT_FOUND for an unknown order, CONFLICT when it is not waiting for approval (or already decided),
 * FORBIDDEN when a non-admin caller is not bound to an approver, names another one, is not the approval's
 * approver, or the order has no approver yet.
 */
export async function decideApproval(
  deps: OrderDeps,
  orderId: number,
  decision: Decision,
  who: Decider,
  reason: string | undefined,
): Promise<{ order: OrderRow; approval: ApprovalRow | null }> {
  const as = actingApprover(who);
  return deps.db.transaction(async (tx) => {
    const { rows: orders } = await tx.query<{ status: OrderStatus }>('SELECT status FROM orders WHERE id = $1 FOR UPDATE', [orderId]);
    const current = orders[0];
    if (!current) throw notFound(`order ${orderId} does not exist`);
    if (current.status !== OrderStatus.PENDING_APPROVAL) {
      throw conflict(`order ${orderId} is not waiting for approval (status '${current.status}')`);
    }
    const { rows } = await tx.query<ApprovalRow>(`SELECT ${COLUMNS} FROM approvals WHERE order_id = $1 AND status = 'pending' FOR UPDATE`, [orderId]);
    const pending = rows[0] ? fromDb(rows[0]) : undefined;
    if (!who.admin) {
      if (!pending) throw forbidden(`order ${orderId} has no approver yet; only an admin may decide it`);
      if (!as || as !== pending.approver_email) throw forbidden(`order ${orderId} is waiting for another approver`);
    } else if (as && pending && as !== pending.approver_email) {
      throw forbidden(`order ${orderId} is waiting for another approver`);
    }
    const decidedBy = as ? `${as} (${who.triggeredBy})` : who.triggeredBy;
    let approval: ApprovalRow | null = null;
    if (pending) {
      const upd = await tx.query<ApprovalRow>(
        `UPDATE approvals SET status = $2, decided_at = now(), decided_by = $3, reason = COALESCE($4, reason) WHERE id = $1 RETURNING ${COLUMNS}`,
        [pending.id, decision, decidedBy, reason ?? null],
      );
      approval = fromDb(upd.rows[0]!);
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
    const opts = { triggeredBy: who.triggeredBy, requestId: who.requestId };
    if (decision === 'approved') {
      await transitionOrder(tx, orderId, OrderStatus.PROCESSING, opts);
      // The job id is chosen here and stored on the order, so the job exists exactly when the approval commits.
      await tx.query('UPDATE orders SET job_id = $2, updated_at = now() WHERE id = $1', [orderId, randomUUID()]);
      const got = await getOrder(tx, orderId);
      await dispatch(deps, tx, got!.order, QueueName.ORDER_PROVISION, { orderId });
      return { order: got!.order, approval };
    }
    await transitionOrder(tx, orderId, OrderStatus.CANCELLED, { ...opts, error: `declined${reason ? `: ${reason}` : ''}` });
    return { order: (await getOrder(tx, orderId))!.order, approval };
  });
}

export interface ApprovalFilters {
  approver?: string | undefined;
  status?: ApprovalStatus | undefined;
  limit: number;
  offset: number;
}

/** One page of approvals, newest first, and how many match in all. */
export async function listApprovals(q: Queryable, f: ApprovalFilters): Promise<{ items: ApprovalRow[]; total: number }> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.approver !== undefined) {
    params.push(f.approver.trim().toLowerCase());
    where.push(`approver_email = $${params.length}`);
  }
  if (f.status !== undefined) {
    params.push(f.status);
    where.push(`status = $${params.length}`);
  }
  const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const total = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM approvals ${clause}`, params);
  const items = await q.query<ApprovalRow>(
    `SELECT ${COLUMNS} FROM approvals ${clause} ORDER BY created_at DESC, id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, f.limit, f.offset],
  );
  return { items: items.rows.map(fromDb), total: total.rows[0]?.n ?? 0 };
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
    const pendingOfCancelled = await tx.query<ApprovalRow>(
      `SELECT ${COLUMNS.split(', ').map((c) => `a.${c}`).join(', ')}
         FROM approvals a JOIN orders o ON o.id = a.order_id
        WHERE a.status = 'pending' AND o.user_email = ANY($1::text[]) AND o.status = 'cancelled'
        ORDER BY a.id
        FOR UPDATE OF a`,
      [emails],
    );
    for (const raw of pendingOfCancelled.rows) {
      const old = fromDb(raw);
      const upd = await tx.query<ApprovalRow>(
        `UPDATE approvals SET status = 'withdrawn', decided_at = now(), decided_by = $2, reason = $3 WHERE id = $1 RETURNING ${COLUMNS}`,
        [old.id, ctx.triggeredBy, `requester left (leaver event ${ctx.eventId})`],
      );
      await writeAudit(tx, { entity: 'approval', entityId: old.id, action: 'withdrawn', before: auditShape(old), after: auditShape(fromDb(upd.rows[0]!)), ...audit });
    }

    // Orders first, in id order, then their approvals: the order in which a decision locks them, so a
    // concurrent approve/decline either finishes first (nothing pending left here) or sees the re-routed row.
    await tx.query(
      `SELECT id FROM orders WHERE id IN (SELECT order_id FROM approvals WHERE approver_email = ANY($1::text[]) AND status = 'pending')
        ORDER BY id FOR UPDATE`,
      [emails],
    );
    const { rows } = await tx.query<ApprovalRow & { asset_type_id: number; requester: string }>(
      `SELECT ${COLUMNS.split(', ').map((c) => `a.${c}`).join(', ')}, o.asset_type_id, o.user_email AS requester
         FROM approvals a JOIN orders o ON o.id = a.order_id
        WHERE a.approver_email = ANY($1::text[]) AND a.status = 'pending' AND o.status = 'pending_approval'
        ORDER BY a.order_id
        FOR UPDATE OF a`,
      [emails],
    );
    const handedOn: number[] = [];
    for (const raw of rows) {
      const old = fromDb(raw);
      const requester = raw.requester.toLowerCase();
      // Neither a leaver nor the requester may inherit the approval.
      const excluded = [...emails, requester];
      const manager = await managerOf(directory, old.approver_email, excluded);
      const fallback = manager ? undefined : await fallbackOf(tx, Number(raw.asset_type_id));
      const next = manager ?? (fallback && !excluded.includes(fallback) ? fallback : undefined);
      const upd = await tx.query<ApprovalRow>(
        `UPDATE approvals SET status = 'superseded', decided_at = now(), decided_by = $2, reason = $3 WHERE id = $1 RETURNING ${COLUMNS}`,
        [old.id, ctx.triggeredBy, `approver left (leaver event ${ctx.eventId})`],
      );
      const superseded = fromDb(upd.rows[0]!);
      await writeAudit(tx, { entity: 'approval', entityId: old.id, action: 'superseded', before: auditShape(old), after: auditShape(superseded), ...audit });
      if (next) {
        const row = await insertApproval(tx, { orderId: old.order_id, approver: next, routedFrom: old.id, reason: manager ? 'manager of leaving approver' : 'fallback_approver' });
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
