import type { Queryable } from '../../../adapter';
import type { OrderStatus } from '../orders/order-status';
import type { LinkBinding, LinkDecision } from './link-signer';
import type { ApprovalKind, ApprovalStatus, RoundMode } from './store';

/*
 * The SQL of signed links (links.ts, announce.ts): `approval_links` (migration 021), and the one read of an approval
 * with its order, requester and asset type that both the approval mail and the link pages show.
 */

/** What a link decided: the round `approved` or `declined`, or the approval `counted` towards a quorum. */
export type LinkOutcome = 'approved' | 'declined' | 'counted';

/** An `approval_links` row. */
export interface ApprovalLinkRow extends LinkBinding {
  createdAt: Date;
  usedAt: Date | null;
  usedBy: string | null;
  outcome: LinkOutcome | null;
}

interface DbLink {
  id: string;
  approval_id: string | number;
  order_id: string | number;
  approver_email: string;
  decision: LinkDecision;
  expires_at: Date | string;
  created_at: Date | string;
  used_at: Date | string | null;
  used_by: string | null;
  outcome: LinkOutcome | null;
}

const LINK_COLUMNS = 'id, approval_id, order_id, approver_email, decision, expires_at, created_at, used_at, used_by, outcome';

const linkFromDb = (r: DbLink): ApprovalLinkRow => ({
  linkId: r.id,
  approvalId: Number(r.approval_id),
  orderId: Number(r.order_id),
  approverEmail: r.approver_email,
  decision: r.decision,
  expiresAt: new Date(r.expires_at),
  createdAt: new Date(r.created_at),
  usedAt: r.used_at === null ? null : new Date(r.used_at),
  usedBy: r.used_by,
  outcome: r.outcome,
});

export async function insertApprovalLink(q: Queryable, b: LinkBinding): Promise<ApprovalLinkRow> {
  const { rows } = await q.query<DbLink>(
    `INSERT INTO approval_links (id, approval_id, order_id, approver_email, decision, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
     RETURNING ${LINK_COLUMNS}`,
    [b.linkId, b.approvalId, b.orderId, b.approverEmail, b.decision, b.expiresAt],
  );
  return linkFromDb(rows[0]!);
}

export async function selectApprovalLink(q: Queryable, id: string): Promise<ApprovalLinkRow | undefined> {
  const { rows } = await q.query<DbLink>(`SELECT ${LINK_COLUMNS} FROM approval_links WHERE id = $1`, [id]);
  return rows[0] ? linkFromDb(rows[0]) : undefined;
}

/**
 * Marks the link used, in the decision's transaction: only while it is unused and unexpired at the database's clock.
 * Undefined when another transaction used it first (the row lock makes the second wait for the first's outcome) or
 * it expired meanwhile.
 */
export async function markApprovalLinkUsed(q: Queryable, id: string, usedBy: string, outcome: LinkOutcome): Promise<ApprovalLinkRow | undefined> {
  const { rows } = await q.query<DbLink>(
    `UPDATE approval_links SET used_at = now(), used_by = $2, outcome = $3
      WHERE id = $1 AND used_at IS NULL AND expires_at > now()
      RETURNING ${LINK_COLUMNS}`,
    [id, usedBy, outcome],
  );
  return rows[0] ? linkFromDb(rows[0]) : undefined;
}

/** An approval with what a mail or a link page says about it: its order, requester, asset type and round. */
export interface ApprovalSubject {
  approvalId: number;
  approvalStatus: ApprovalStatus;
  kind: ApprovalKind;
  approverEmail: string;
  onBehalfOf: string | null;
  /** The extension's `requested_until` (kind `extension`). */
  approvalRequestedUntil: Date | null;
  roundMode: RoundMode | null;
  quorum: number | null;
  orderId: number;
  orderStatus: OrderStatus;
  requesterEmail: string;
  requesterName: string;
  requestedFrom: Date | null;
  requestedUntil: Date | null;
  extensionRequestedUntil: Date | null;
  /** The order's attribute values (`config`); a `justification` or `reason` among them is the requester's why. */
  config: Record<string, unknown>;
  assetTypeName: string;
  monthlyCost: number | null;
  currency: string | null;
}

const toDate = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));

export async function selectApprovalSubject(q: Queryable, approvalId: number): Promise<ApprovalSubject | undefined> {
  const { rows } = await q.query<{
    id: string | number; status: ApprovalStatus; kind: ApprovalKind; approver_email: string; on_behalf_of: string | null;
    a_requested_until: Date | string | null; mode: RoundMode | null; quorum: number | string | null; order_id: string | number;
    order_status: OrderStatus; user_email: string; user_name: string; requested_from: Date | string | null;
    requested_until: Date | string | null; extension_requested_until: Date | string | null; config: Record<string, unknown> | null;
    type_name: string; monthly_cost: string | number | null; currency: string | null;
  }>(
    `SELECT a.id, a.status, a.kind, a.approver_email, a.on_behalf_of, a.requested_until AS a_requested_until, r.mode, r.quorum,
            o.id AS order_id, o.status AS order_status, lower(o.user_email) AS user_email, o.user_name, o.requested_from,
            o.requested_until, o.extension_requested_until, o.config, t.name AS type_name, t.monthly_cost, t.currency
       FROM approvals a
       JOIN orders o ON o.id = a.order_id
       JOIN asset_types t ON t.id = o.asset_type_id
       LEFT JOIN approval_rounds r ON r.id = a.round_id
      WHERE a.id = $1`,
    [approvalId],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    approvalId: Number(r.id),
    approvalStatus: r.status,
    kind: r.kind,
    approverEmail: r.approver_email,
    onBehalfOf: r.on_behalf_of,
    approvalRequestedUntil: toDate(r.a_requested_until),
    roundMode: r.mode,
    quorum: r.quorum === null ? null : Number(r.quorum),
    orderId: Number(r.order_id),
    orderStatus: r.order_status,
    requesterEmail: r.user_email,
    requesterName: r.user_name,
    requestedFrom: toDate(r.requested_from),
    requestedUntil: toDate(r.requested_until),
    extensionRequestedUntil: toDate(r.extension_requested_until),
    config: r.config ?? {},
    assetTypeName: r.type_name,
    monthlyCost: r.monthly_cost === null ? null : Number(r.monthly_cost),
    currency: r.currency,
  };
}

/** The reason given with the order's latest extension request (its audit row keeps it); null when none was given. */
export async function selectExtensionReason(q: Queryable, orderId: number): Promise<string | null> {
  const { rows } = await q.query<{ reason: string | null }>(
    `SELECT diff->'after'->>'reason' AS reason FROM audit_log
      WHERE entity = 'order' AND entity_id = $1 AND action = 'extension_requested'
      ORDER BY id DESC LIMIT 1`,
    [String(orderId)],
  );
  return rows[0]?.reason ?? null;
}
