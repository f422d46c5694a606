import type { Queryable } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import type { Stored } from '../../api/spec-types';
import { queryPage, Where, type Page, type PageRequest } from '../paging';

/*
 * The approvals aggregate's SQL: every statement on `approvals`, `approval_rounds` and `approval_delegations` (and
 * the reads of the orders and asset types an approval is routed by) sits here, parameterised, so the domain
 * modules read as decisions.
 */

/** The columns of an `approvals` row; the rest of the API's approval is derived from other rows (see views.ts). */
type RowField =
  | 'id' | 'order_id' | 'kind' | 'requested_until' | 'approver_email' | 'status' | 'routed_from_approval_id' | 'reason'
  | 'decided_at' | 'decided_by' | 'created_at' | 'on_behalf_of' | 'delegation_id';

/** An `approvals` row: its columns as the API names them, `Date` timestamps, and the round it counts in. */
export type ApprovalRow = Stored<Pick<Api.Approval, RowField>, 'decided_at' | 'created_at' | 'requested_until'> & { round_id: number };
export type ApprovalKind = Api.Approval['kind'];
export type ApprovalStatus = Api.ApprovalStatus;
export type RoundMode = Api.ApprovalQuorum['mode'];

/** A pending approval the leaver was to give, with what re-routing it needs from its order. */
export type ApprovalToHandOn = ApprovalRow & { asset_type_id: number; requester: string };

const COLUMNS = `id, order_id, kind, requested_until, approver_email, status, routed_from_approval_id, reason, decided_at, decided_by,
  created_at, round_id, on_behalf_of, delegation_id`;
const A_COLUMNS = COLUMNS.split(',').map((c) => `a.${c.trim()}`).join(', ');

/** Both engines hand bigint columns back as strings; the API and the hooks speak numbers. */
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const fromDb = <R extends ApprovalRow>(r: R): R => ({
  ...r,
  id: Number(r.id),
  order_id: Number(r.order_id),
  round_id: Number(r.round_id),
  routed_from_approval_id: num(r.routed_from_approval_id),
  delegation_id: num(r.delegation_id),
});

/** How approvals compare emails (routing, deciding, approver tokens' binding): trimmed, lower-cased; blank is none. */
export const normalEmail = (e: string | null | undefined): string | undefined => {
  const s = e?.trim().toLowerCase();
  return s ? s : undefined;
};

// ---------------------------------------------------------------------------------------------------------------
// What routing and deciding read of the asset type and the order

/** The asset type's fallback approver, normalised; undefined when it has none. */
export async function selectFallbackApprover(q: Queryable, assetTypeId: number): Promise<string | undefined> {
  const { rows } = await q.query<{ fallback_approver: string | null }>('SELECT fallback_approver FROM asset_types WHERE id = $1', [assetTypeId]);
  return normalEmail(rows[0]?.fallback_approver);
}

/** An asset type's N-of-M policy as stored (see the spec's ApprovalPolicy). */
export type ApprovalPolicy = NonNullable<Api.ApprovalPolicy>;

/** What routing needs of the asset type. */
export interface RoutingPolicy {
  fallbackApprover: string | undefined;
  approval: ApprovalPolicy | null;
  /** The attribution that last configured the type (separation of duties). */
  lastConfiguredBy: string | null;
}

/** The asset type's approval routing: fallback approver, quorum policy and last configurer. */
export async function selectRoutingPolicy(q: Queryable, assetTypeId: number): Promise<RoutingPolicy> {
  const { rows } = await q.query<{ fallback_approver: string | null; approval: ApprovalPolicy | null; last_configured_by: string | null }>(
    'SELECT fallback_approver, approval, last_configured_by FROM asset_types WHERE id = $1',
    [assetTypeId],
  );
  const r = rows[0];
  return {
    fallbackApprover: normalEmail(r?.fallback_approver),
    approval: r?.approval ? { quorum: Number(r.approval.quorum), approvers: r.approval.approvers ?? [], approver_group: r.approval.approver_group ?? null } : null,
    lastConfiguredBy: r?.last_configured_by ?? null,
  };
}

/** What separation of duties checks a decision on an order against. */
export interface DecisionContext {
  requester: string;
  assetTypeId: number;
  lastConfiguredBy: string | null;
}

export async function selectDecisionContext(q: Queryable, orderId: number): Promise<DecisionContext | undefined> {
  const { rows } = await q.query<{ user_email: string; asset_type_id: string; last_configured_by: string | null }>(
    `SELECT o.user_email, o.asset_type_id, t.last_configured_by FROM orders o JOIN asset_types t ON t.id = o.asset_type_id WHERE o.id = $1`,
    [orderId],
  );
  const r = rows[0];
  return r ? { requester: r.user_email.toLowerCase(), assetTypeId: Number(r.asset_type_id), lastConfiguredBy: r.last_configured_by } : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Rounds

export interface RoundRow {
  id: number;
  order_id: number;
  kind: ApprovalKind;
  requested_until: Date | null;
  mode: RoundMode;
  quorum: number;
  created_at: Date;
}

const roundFromDb = (r: RoundRow): RoundRow => ({ ...r, id: Number(r.id), order_id: Number(r.order_id), quorum: Number(r.quorum) });

export async function insertRound(
  q: Queryable,
  r: { orderId: number; kind: ApprovalKind; requestedUntil: Date | null; mode: RoundMode; quorum: number },
): Promise<RoundRow> {
  const { rows } = await q.query<RoundRow>(
    `INSERT INTO approval_rounds (order_id, kind, requested_until, mode, quorum) VALUES ($1, $2, $3, $4, $5)
     RETURNING id, order_id, kind, requested_until, mode, quorum, created_at`,
    [r.orderId, r.kind, r.requestedUntil, r.mode, r.quorum],
  );
  return roundFromDb(rows[0]!);
}

export async function selectRound(q: Queryable, id: number): Promise<RoundRow | undefined> {
  const { rows } = await q.query<RoundRow>('SELECT id, order_id, kind, requested_until, mode, quorum, created_at FROM approval_rounds WHERE id = $1', [id]);
  return rows[0] ? roundFromDb(rows[0]) : undefined;
}

/** How the round's approvals stand now. */
export interface RoundCount {
  approved: number;
  declined: number;
  pending: number;
}

export async function countRound(q: Queryable, roundId: number): Promise<RoundCount> {
  const { rows } = await q.query<RoundCount>(
    `SELECT count(*) FILTER (WHERE status = 'approved')::int AS approved, count(*) FILTER (WHERE status = 'declined')::int AS declined,
            count(*) FILTER (WHERE status = 'pending')::int AS pending
       FROM approvals WHERE round_id = $1`,
    [roundId],
  );
  return rows[0] ?? { approved: 0, declined: 0, pending: 0 };
}

/**
 * The people who hold a vote in the round (a pending or an approved approval, as approver or as the one a deputy
 * stands in for): nobody gets a second approval in it.
 */
export async function selectRoundHolders(q: Queryable, roundId: number): Promise<string[]> {
  const { rows } = await q.query<{ email: string }>(
    `SELECT approver_email AS email FROM approvals WHERE round_id = $1 AND status IN ('pending', 'approved')
     UNION SELECT on_behalf_of FROM approvals WHERE round_id = $1 AND status IN ('pending', 'approved') AND on_behalf_of IS NOT NULL`,
    [roundId],
  );
  return rows.map((r) => r.email);
}

// ---------------------------------------------------------------------------------------------------------------
// Approvals

/**
 * Inserts a pending approval. Without `roundId` it joins the round of `routedFrom`, else opens a single-approver
 * round of its own (migration 022's trigger), so callers that know nothing of rounds keep working.
 */
export async function insertApproval(
  q: Queryable,
  a: {
    orderId: number;
    approver: string;
    routedFrom: number | null;
    reason: string;
    kind?: ApprovalKind;
    requestedUntil?: Date | null;
    roundId?: number | null;
    /** A deputy's approval: the approver they stand in for. */
    onBehalfOf?: string | null;
    delegationId?: number | null;
  },
): Promise<ApprovalRow> {
  const { rows } = await q.query<ApprovalRow>(
    `INSERT INTO approvals (order_id, approver_email, routed_from_approval_id, reason, kind, requested_until, round_id, on_behalf_of, delegation_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${COLUMNS}`,
    [a.orderId, a.approver, a.routedFrom, a.reason, a.kind ?? 'order', a.requestedUntil ?? null, a.roundId ?? null, a.onBehalfOf ?? null, a.delegationId ?? null],
  );
  return fromDb(rows[0]!);
}

/** The approval with id `id`, or undefined. */
export async function selectApproval(q: Queryable, id: number): Promise<ApprovalRow | undefined> {
  const { rows } = await q.query<ApprovalRow>(`SELECT ${COLUMNS} FROM approvals WHERE id = $1`, [id]);
  return rows[0] ? fromDb(rows[0]) : undefined;
}

/**
 * The order's oldest pending approval, locked; undefined when it has none. An order of a quorum waits for several:
 * see {@link lockPendingApprovals}.
 */
export async function lockPendingApproval(q: Queryable, orderId: number): Promise<ApprovalRow | undefined> {
  return (await lockPendingApprovals(q, orderId))[0];
}

/** Every pending approval of the order, locked, oldest first. */
export async function lockPendingApprovals(q: Queryable, orderId: number): Promise<ApprovalRow[]> {
  const { rows } = await q.query<ApprovalRow>(`SELECT ${COLUMNS} FROM approvals WHERE order_id = $1 AND status = 'pending' ORDER BY id FOR UPDATE`, [orderId]);
  return rows.map(fromDb);
}

/** Every pending approval of the round, locked, oldest first. */
export async function lockPendingOfRound(q: Queryable, roundId: number): Promise<ApprovalRow[]> {
  const { rows } = await q.query<ApprovalRow>(`SELECT ${COLUMNS} FROM approvals WHERE round_id = $1 AND status = 'pending' ORDER BY id FOR UPDATE`, [roundId]);
  return rows.map(fromDb);
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
      ORDER BY a.order_id, a.id
      FOR UPDATE OF a`,
    [approvers],
  );
  return rows.map((r) => ({ ...fromDb(r), asset_type_id: Number(r.asset_type_id) }));
}

export interface ApprovalFilters extends PageRequest {
  approver?: string | undefined;
  status?: ApprovalStatus | undefined;
  orderId?: number | undefined;
}

/** One page of approvals, newest first, and how many match in all. */
export async function selectApprovals(q: Queryable, f: ApprovalFilters): Promise<Page<ApprovalRow>> {
  const where = new Where();
  if (f.approver !== undefined) where.and('approver_email = ?', f.approver.trim().toLowerCase());
  if (f.status !== undefined) where.and('status = ?', f.status);
  if (f.orderId !== undefined) where.and('order_id = ?', f.orderId);
  const page = await queryPage<ApprovalRow>(
    q,
    { select: `SELECT ${COLUMNS} FROM approvals`, countFrom: 'approvals', where, orderBy: 'created_at DESC, id DESC' },
    f,
  );
  return { items: page.items.map(fromDb), total: page.total };
}

/** An order (or its extension) waiting for approval with no pending approval: nobody could be routed to. */
export interface UnroutedRow {
  order_id: number;
  kind: ApprovalKind;
  requested_until: Date | null;
  user_email: string;
  asset_type_id: number;
  reason: string | null;
  since: Date | null;
}

/**
 * One page of unrouted waits, newest first: orders in `pending_approval`, or with an extension waiting, that have
 * no pending approval of their own; why and since when from their latest `approval_unrouted` audit row.
 */
export async function selectUnrouted(q: Queryable, f: PageRequest & { orderId?: number | undefined }): Promise<Page<UnroutedRow>> {
  const where = new Where();
  where.and(`(o.status = 'pending_approval' OR o.extension_requested_until IS NOT NULL)`);
  where.and(`NOT EXISTS (SELECT 1 FROM approvals a WHERE a.order_id = o.id AND a.status = 'pending')`);
  if (f.orderId !== undefined) where.and('o.id = ?', f.orderId);
  const page = await queryPage<UnroutedRow>(
    q,
    {
      select: `SELECT o.id AS order_id,
                 CASE WHEN o.status = 'pending_approval' THEN 'order' ELSE 'extension' END AS kind,
                 CASE WHEN o.status = 'pending_approval' THEN NULL ELSE o.extension_requested_until END AS requested_until,
                 o.user_email, o.asset_type_id, u.reason, u.since
               FROM orders o
               LEFT JOIN LATERAL (
                 SELECT l.diff->'after'->>'reason' AS reason, l.at AS since FROM audit_log l
                  WHERE l.entity = 'order' AND l.entity_id = o.id::text AND l.action = 'approval_unrouted'
                  ORDER BY l.id DESC LIMIT 1) u ON true`,
      countFrom: 'orders o',
      where,
      orderBy: 'o.id DESC',
    },
    f,
  );
  return { items: page.items.map((r) => ({ ...r, order_id: Number(r.order_id), asset_type_id: Number(r.asset_type_id) })), total: page.total };
}

// ---------------------------------------------------------------------------------------------------------------
// What an approval shows beyond its row

/** Every approval of the given rounds, oldest first (quorum counts and decisions). */
export async function selectRoundsApprovals(q: Queryable, roundIds: readonly number[]): Promise<{ round: RoundRow; approvals: ApprovalRow[] }[]> {
  if (roundIds.length === 0) return [];
  const rounds = await q.query<RoundRow>(
    'SELECT id, order_id, kind, requested_until, mode, quorum, created_at FROM approval_rounds WHERE id = ANY($1::bigint[])',
    [roundIds],
  );
  const { rows } = await q.query<ApprovalRow>(`SELECT ${COLUMNS} FROM approvals WHERE round_id = ANY($1::bigint[]) ORDER BY id`, [roundIds]);
  const approvals = rows.map(fromDb);
  return rounds.rows.map(roundFromDb).map((round) => ({ round, approvals: approvals.filter((a) => a.round_id === round.id) }));
}

/** The signed links issued for an approval (the `approval_links` of migration 021). */
export interface LinkStats {
  approval_id: number;
  sent: number;
  last_sent_at: Date | null;
  expires_at: Date | null;
  used_at: Date | null;
}

export async function selectLinkStats(q: Queryable, approvalIds: readonly number[]): Promise<LinkStats[]> {
  if (approvalIds.length === 0) return [];
  // The links table comes with the signed-links migration (021); a database without it has issued no links.
  const present = await q.query<{ present: boolean }>(`SELECT to_regclass('approval_links') IS NOT NULL AS present`);
  if (!present.rows[0]?.present) return [];
  const { rows } = await q.query<LinkStats>(
    `SELECT approval_id, count(*)::int AS sent, max(created_at) AS last_sent_at, max(expires_at) AS expires_at, max(used_at) AS used_at
       FROM approval_links WHERE approval_id = ANY($1::bigint[]) GROUP BY approval_id`,
    [approvalIds],
  );
  return rows.map((r) => ({ ...r, approval_id: Number(r.approval_id) }));
}

/** The reminders mailed for an approval (migration 024's columns). */
export interface ReminderStats {
  id: number;
  reminders_sent: number;
  last_reminded_at: Date | null;
}

export async function selectReminderStats(q: Queryable, approvalIds: readonly number[]): Promise<ReminderStats[]> {
  if (approvalIds.length === 0) return [];
  const { rows } = await q.query<ReminderStats>('SELECT id, reminders_sent, last_reminded_at FROM approvals WHERE id = ANY($1::bigint[])', [approvalIds]);
  return rows.map((r) => ({ ...r, id: Number(r.id), reminders_sent: Number(r.reminders_sent) }));
}

// ---------------------------------------------------------------------------------------------------------------
// Delegations

/** An `approval_delegations` row. */
export interface DelegationRow {
  id: number;
  approver_email: string;
  deputy_email: string;
  starts_at: Date;
  ends_at: Date;
  reason: string | null;
  created_by: string;
  created_at: Date;
  revoked_at: Date | null;
  revoked_by: string | null;
}

const DELEGATION_COLUMNS = 'id, approver_email, deputy_email, starts_at, ends_at, reason, created_by, created_at, revoked_at, revoked_by';
const delegationFromDb = (r: DelegationRow): DelegationRow => ({ ...r, id: Number(r.id) });

/**
 * Serialises delegation changes of these people until the transaction ends: an advisory lock per email, taken in
 * a fixed order so two creations naming the same two people (A→B and B→A) cannot deadlock. The overlap and cycle
 * checks run under it, so two concurrent creations cannot both find "no overlap" and both insert.
 */
export async function lockDelegationsOf(q: Queryable, emails: readonly string[]): Promise<void> {
  for (const e of [...new Set(emails)].sort()) {
    await q.query(`SELECT pg_advisory_xact_lock(hashtext('provisio:approval-delegation:' || $1))`, [e]);
  }
}

/** The approver's unrevoked delegations whose window overlaps [start, end), oldest first. */
export async function selectOverlappingDelegations(q: Queryable, approver: string, start: Date, end: Date): Promise<DelegationRow[]> {
  const { rows } = await q.query<DelegationRow>(
    `SELECT ${DELEGATION_COLUMNS} FROM approval_delegations
      WHERE approver_email = $1 AND revoked_at IS NULL AND starts_at < $3 AND ends_at > $2 ORDER BY id`,
    [approver, start, end],
  );
  return rows.map(delegationFromDb);
}

/** The approver's delegation in force at `at` (windows of one approver do not overlap, so at most one). */
export async function selectDelegationInForce(q: Queryable, approver: string, at: Date): Promise<DelegationRow | undefined> {
  const { rows } = await q.query<DelegationRow>(
    `SELECT ${DELEGATION_COLUMNS} FROM approval_delegations
      WHERE approver_email = $1 AND revoked_at IS NULL AND starts_at <= $2 AND ends_at > $2 ORDER BY id LIMIT 1`,
    [approver, at],
  );
  return rows[0] ? delegationFromDb(rows[0]) : undefined;
}

export async function insertDelegation(
  q: Queryable,
  d: { approver: string; deputy: string; startsAt: Date; endsAt: Date; reason: string | null; createdBy: string },
): Promise<DelegationRow> {
  const { rows } = await q.query<DelegationRow>(
    `INSERT INTO approval_delegations (approver_email, deputy_email, starts_at, ends_at, reason, created_by)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${DELEGATION_COLUMNS}`,
    [d.approver, d.deputy, d.startsAt, d.endsAt, d.reason, d.createdBy],
  );
  return delegationFromDb(rows[0]!);
}

export async function selectDelegation(q: Queryable, id: number): Promise<DelegationRow | undefined> {
  const { rows } = await q.query<DelegationRow>(`SELECT ${DELEGATION_COLUMNS} FROM approval_delegations WHERE id = $1`, [id]);
  return rows[0] ? delegationFromDb(rows[0]) : undefined;
}

export async function revokeDelegationRow(q: Queryable, id: number, by: string): Promise<DelegationRow> {
  const { rows } = await q.query<DelegationRow>(
    `UPDATE approval_delegations SET revoked_at = now(), revoked_by = $2 WHERE id = $1 RETURNING ${DELEGATION_COLUMNS}`,
    [id, by],
  );
  return delegationFromDb(rows[0]!);
}

export interface DelegationFilters extends PageRequest {
  approver?: string | undefined;
  deputy?: string | undefined;
  /** true: not revoked and not ended; false: revoked or ended. */
  active?: boolean | undefined;
  /** Only delegations this person gives or receives (an approver token's view). */
  involving?: string | undefined;
}

/** One page of delegations, newest first, and how many match in all. */
export async function selectDelegations(q: Queryable, f: DelegationFilters): Promise<Page<DelegationRow>> {
  const where = new Where();
  if (f.approver !== undefined) where.and('approver_email = ?', f.approver.trim().toLowerCase());
  if (f.deputy !== undefined) where.and('deputy_email = ?', f.deputy.trim().toLowerCase());
  if (f.active === true) where.and('revoked_at IS NULL AND ends_at > now()');
  if (f.active === false) where.and('(revoked_at IS NOT NULL OR ends_at <= now())');
  if (f.involving !== undefined) {
    const p = where.param(f.involving);
    where.and(`(approver_email = ${p} OR deputy_email = ${p})`);
  }
  const page = await queryPage<DelegationRow>(
    q,
    { select: `SELECT ${DELEGATION_COLUMNS} FROM approval_delegations`, countFrom: 'approval_delegations', where, orderBy: 'created_at DESC, id DESC' },
    f,
  );
  return { items: page.items.map(delegationFromDb), total: page.total };
}
