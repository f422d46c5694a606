import type { Queryable } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import type { Stored } from '../../api/spec-types';
import { queryPage, Where, type Page, type PageRequest } from '../paging';

/*
 * The approvals aggregate's SQL: every statement on `approvals` (and the reads of the orders and asset types an
 * approval is routed by) sits here, parameterised, so the domain modules read as decisions.
 */

/** An `approvals` row: the API's approval with `Date` timestamps. */
export type ApprovalRow = Stored<Api.Approval, 'decided_at' | 'created_at' | 'requested_until'>;
export type ApprovalKind = Api.Approval['kind'];
export type ApprovalStatus = Api.ApprovalStatus;

/** A pending approval the leaver was to give, with what re-routing it needs from its order. */
export type ApprovalToHandOn = ApprovalRow & { asset_type_id: number; requester: string };

const COLUMNS = `id, order_id, kind, requested_until, approver_email, status, routed_from_approval_id, reason, decided_at, decided_by, created_at`;
const A_COLUMNS = COLUMNS.split(', ').map((c) => `a.${c}`).join(', ');

/** Both engines hand bigint columns back as strings; the API and the hooks speak numbers. */
const fromDb = <R extends ApprovalRow>(r: R): R => ({
  ...r,
  id: Number(r.id),
  order_id: Number(r.order_id),
  routed_from_approval_id: r.routed_from_approval_id === null ? null : Number(r.routed_from_approval_id),
});

/** How approvals compare emails (routing, deciding, approver tokens' binding): trimmed, lower-cased; blank is none. */
export const normalEmail = (e: string | null | undefined): string | undefined => {
  const s = e?.trim().toLowerCase();
  return s ? s : undefined;
};

/** The asset type's fallback approver, normalised; undefined when it has none. */
export async function selectFallbackApprover(q: Queryable, assetTypeId: number): Promise<string | undefined> {
  const { rows } = await q.query<{ fallback_approver: string | null }>('SELECT fallback_approver FROM asset_types WHERE id = $1', [assetTypeId]);
  return normalEmail(rows[0]?.fallback_approver);
}

export async function insertApproval(
  q: Queryable,
  a: { orderId: number; approver: string; routedFrom: number | null; reason: string; kind?: ApprovalKind; requestedUntil?: Date | null },
): Promise<ApprovalRow> {
  const { rows } = await q.query<ApprovalRow>(
    `INSERT INTO approvals (order_id, approver_email, routed_from_approval_id, reason, kind, requested_until)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
    [a.orderId, a.approver, a.routedFrom, a.reason, a.kind ?? 'order', a.requestedUntil ?? null],
  );
  return fromDb(rows[0]!);
}

/** The order's pending approval, locked for the decision; undefined when it has none. */
export async function lockPendingApproval(q: Queryable, orderId: number): Promise<ApprovalRow | undefined> {
  const { rows } = await q.query<ApprovalRow>(`SELECT ${COLUMNS} FROM approvals WHERE order_id = $1 AND status = 'pending' FOR UPDATE`, [orderId]);
  return rows[0] ? fromDb(rows[0]) : undefined;
}

/** Closes an approval: decided (`approved`/`declined`, keeping its reason when none is given), superseded or withdrawn. */
export async function closeApproval(
  q: Queryable,
  id: number,
  status: Exclude<ApprovalStatus, 'pending'>,
  decidedBy: string,
  reason: string | null,
): Promise<ApprovalRow> {
  const { rows } = await q.query<ApprovalRow>(
    `UPDATE approvals SET status = $2, decided_at = now(), decided_by = $3, reason = COALESCE($4, reason) WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, status, decidedBy, reason],
  );
  return fromDb(rows[0]!);
}

/** Pending approvals of the leaver's own orders that the leaver flow has cancelled (or, for extensions, revoked), locked, by id. */
export async function lockPendingOfCancelledOrders(q: Queryable, requesters: readonly string[]): Promise<ApprovalRow[]> {
  const { rows } = await q.query<ApprovalRow>(
    `SELECT ${A_COLUMNS}
       FROM approvals a JOIN orders o ON o.id = a.order_id
      WHERE a.status = 'pending' AND o.user_email = ANY($1::text[])
        AND (o.status = 'cancelled' OR (a.kind = 'extension' AND o.status IN ('revoked', 'deprovisioning')))
      ORDER BY a.id
      FOR UPDATE OF a`,
    [requesters],
  );
  return rows.map(fromDb);
}

/**
 * Pending approvals the given approvers were to give on orders still waiting, locked. Orders first, in id order, then
 * their approvals: the order in which a decision locks them, so a concurrent approve/decline either finishes first
 * (nothing pending left) or sees the re-routed row.
 */
export async function lockPendingApprovalsOf(q: Queryable, approvers: readonly string[]): Promise<ApprovalToHandOn[]> {
  await q.query(
    `SELECT id FROM orders WHERE id IN (SELECT order_id FROM approvals WHERE approver_email = ANY($1::text[]) AND status = 'pending')
      ORDER BY id FOR UPDATE`,
    [approvers],
  );
  const { rows } = await q.query<ApprovalToHandOn>(
    `SELECT ${A_COLUMNS}, o.asset_type_id, o.user_email AS requester
       FROM approvals a JOIN orders o ON o.id = a.order_id
      WHERE a.approver_email = ANY($1::text[]) AND a.status = 'pending'
        AND (o.status = 'pending_approval' OR (a.kind = 'extension' AND o.extension_requested_until IS NOT NULL))
      ORDER BY a.order_id
      FOR UPDATE OF a`,
    [approvers],
  );
  return rows.map((r) => ({ ...fromDb(r), asset_type_id: Number(r.asset_type_id) }));
}

export interface ApprovalFilters extends PageRequest {
  approver?: string | undefined;
  status?: ApprovalStatus | undefined;
}

/** One page of approvals, newest first, and how many match in all. */
export async function selectApprovals(q: Queryable, f: ApprovalFilters): Promise<Page<ApprovalRow>> {
  const where = new Where();
  if (f.approver !== undefined) where.and('approver_email = ?', f.approver.trim().toLowerCase());
  if (f.status !== undefined) where.and('status = ?', f.status);
  const page = await queryPage<ApprovalRow>(
    q,
    { select: `SELECT ${COLUMNS} FROM approvals`, countFrom: 'approvals', where, orderBy: 'created_at DESC, id DESC' },
    f,
  );
  return { items: page.items.map(fromDb), total: page.total };
}
