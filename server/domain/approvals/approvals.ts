import { writeAudit, type Database, type JobQueue, type Logger, type Queryable } from '../../../adapter';
import { conflict, forbidden, notFound } from '../../errors';
import type { Assert, Same } from '../../api/spec-types';
import type { Page } from '../paging';
import type { LeaverApproverHook } from '../identity/leaver';
import type { RequesterDirectory } from '../identity/requester-directory';
import { decideExtension, releaseApprovedOrder, waitingExtension } from '../orders/lifecycle';
import { OrderStatus, transitionOrder } from '../orders/order-status';
import { getOrder, type OrderDeps, type OrderRow } from '../orders/orders';
import { lockOrderStatus } from '../orders/store';
import { notifyDecision } from './decision-notice';
import { auditShape, createApproval, managerOf, type RoutingActor } from './routing';
import { auditRefusal, barredApprovers, separationOfDuties, SeparationOfDutiesError, sodViolation } from './separation';
import {
  closeApproval,
  countRound,
  lockPendingApprovals,
  lockPendingApprovalsOf,
  lockPendingOfCancelledOrders,
  lockPendingOfRound,
  normalEmail,
  selectApprovals,
  selectDecisionContext,
  selectRound,
  selectRoundHolders,
  selectRoutingPolicy,
  selectUnrouted,
  type ApprovalFilters,
  type ApprovalRow,
  type ApprovalStatus,
  type RoundCount,
  type RoundRow,
  type UnroutedRow,
} from './store';

/**
 * Approvals of orders that wait in `pending_approval` (or of an extension waiting on an order): each order waits for
 * one round, routed to one approver (the requester's manager from the directory, else the asset type's
 * `fallback_approver`) or, under the type's quorum policy, to several, each with an approval of their own
 * (routing.ts). The round is decided at its quorum of approvals or its first decline, superseded approvals are
 * re-routed when their approver leaves, and an order with nobody to route to stays pending with no row (audited as
 * unrouted) for an admin to decide.
 *
 * Concurrency: every decision locks the order row first (then its approvals), as the lifecycle commands and the
 * leaver flow do, so two approvers deciding the same order at once run one after the other; the second sees the
 * first's outcome (the quorum reached and the order released once, or its own approval withdrawn: 409).
 */

export type { ApprovalFilters, ApprovalRow, ApprovalStatus, RoundCount, RoundRow, UnroutedRow } from './store';
export { normalEmail } from './store';
export const APPROVAL_STATUSES = ['pending', 'approved', 'declined', 'superseded', 'withdrawn', 'expired'] as const;
type ApprovalStatusesMatchSpec = Assert<Same<(typeof APPROVAL_STATUSES)[number], ApprovalStatus>>;

const normal = normalEmail;

/** Who decides: an admin (any approval, or an unrouted order) or the approver the approval names. */
export interface Decider {
  /** Audit attribution: `admin:token:<name>` / `admin:key`, `approver:token:<name>`, `approval-link:<approver>`. */
  triggeredBy: string;
  requestId?: string | undefined;
  /** True for admin/superadmin callers (scope `admin:*`); false for an `approver` token or a signed link. */
  admin: boolean;
  /**
   * Non-admins only: the approver email the credential is bound to (an approver token's at mint, a link's);
   * null for an approver token minted before the binding existed (it may decide nothing).
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

/** Where a round stands: its definition and its approvals' count. */
export interface RoundState {
  round: RoundRow;
  count: RoundCount;
}

export interface DecisionResult {
  order: OrderRow;
  /** The approval decided; null for an unrouted order decided by an admin. */
  approval: ApprovalRow | null;
  kind: 'order' | 'extension';
  /** The round after the decision; null for an unrouted order. */
  round: RoundState | null;
}

/** Who decides what on the round, for the order's outcome. */
type Outcome = { decision: Decision; actor: RoutingActor & { reason?: string | undefined } };

/**
 * Closes what still waits in the round once it is decided (`withdrawn`, with `why`), audited per approval.
 */
async function withdrawRest(tx: Queryable, roundId: number, why: string, actor: RoutingActor): Promise<void> {
  for (const rest of await lockPendingOfRound(tx, roundId)) {
    const withdrawn = await closeApproval(tx, rest.id, 'withdrawn', actor.triggeredBy, why);
    await writeAudit(tx, { entity: 'approval', entityId: rest.id, action: 'withdrawn', before: auditShape(rest), after: auditShape(withdrawn), triggeredBy: actor.triggeredBy, requestId: actor.requestId });
  }
}

/**
 * What a decided round does to its order, in the caller's transaction: an order's round approved releases it
 * (`processing`, or `scheduled` with its job due at `requested_from`; the job id stored on the order), declined
 * cancels it; an extension's round applies or drops the extension and leaves the order as it is.
 */
async function applyOutcome(deps: Pick<OrderDeps, 'db' | 'queue' | 'logger'>, tx: Queryable, orderId: number, kind: 'order' | 'extension', o: Outcome): Promise<OrderRow> {
  const opts = { triggeredBy: o.actor.triggeredBy, requestId: o.actor.requestId, reason: o.actor.reason };
  await notifyDecision(tx, deps.queue, { orderId, decision: o.decision, kind, reason: o.actor.reason }, o.actor); // the requester's mail (decision-notice.ts)
  if (kind === 'extension') return decideExtension(deps, tx, orderId, o.decision, opts);
  // The job id is chosen there and stored on the order, so the job exists exactly when the approval commits.
  if (o.decision === 'approved') return releaseApprovedOrder(deps, tx, orderId, opts);
  await transitionOrder(tx, orderId, OrderStatus.CANCELLED, { ...opts, logger: deps.logger, error: `declined${o.actor.reason ? `: ${o.actor.reason}` : ''}` });
  return (await getOrder(tx, orderId))!.order;
}

/**
 * Declines a quorum round that can no longer reach its quorum (too few approvers pending or approved), in the
 * caller's transaction: the rest withdrawn, the order cancelled (or the extension dropped). Returns true when it
 * did. A single-approver round is never declined this way: with nobody to hand it to it waits, unrouted, for an
 * admin. Called where an approver drops out (the leaver flow; an approval expiring one of a quorum).
 */
export async function declineIfQuorumImpossible(
  deps: Pick<OrderDeps, 'db' | 'queue' | 'logger'>,
  tx: Queryable,
  roundId: number,
  actor: RoutingActor,
): Promise<boolean> {
  const round = await selectRound(tx, roundId);
  if (!round || round.mode !== 'quorum') return false;
  const count = await countRound(tx, roundId);
  if (count.declined > 0 || count.pending + count.approved >= round.quorum) return false;
  const why = `quorum impossible: ${count.approved} approved and ${count.pending} pending of a quorum of ${round.quorum}`;
  await withdrawRest(tx, roundId, why, actor);
  await writeAudit(tx, { entity: 'order', entityId: round.order_id, action: 'approval_quorum_impossible', after: { round_id: roundId, kind: round.kind, ...count, quorum: round.quorum }, triggeredBy: actor.triggeredBy, requestId: actor.requestId });
  await applyOutcome(deps, tx, round.order_id, round.kind, { decision: 'declined', actor: { ...actor, reason: why } });
  return true;
}

/**
 * Decides the caller's approval of the order's round in one transaction, and the round with it when this
 * decision settles it: the quorum's N-th approval releases the order (`processing`, or `scheduled` when its
 * `requested_from` lies ahead, with its `order.provision` job), the first decline cancels it; for an extension the
 * extension is applied or dropped instead. The round's other pending approvals are then `withdrawn` ("quorum
 * reached" / "declined by …"). An approval short of the quorum leaves the order waiting.
 *
 * Which approval: the one routed to the acting approver (an approver token's binding, or the admin's
 * `approver_email`), or delegated on their behalf; with `opts.approvalId` (a signed link) exactly that one. An
 * admin naming nobody decides the whole round (an override: the first pending approval carries the decision), or an
 * unrouted order.
 *
 * Throws NOT_FOUND for an unknown order; CONFLICT when nothing of it waits for approval (already decided, or the
 * approval named is no longer pending); FORBIDDEN when a non-admin caller is not bound to an approver, names
 * another one, is not an approver of the round, or the order has no approver yet; SEPARATION_OF_DUTIES when an
 * approval is made as the order's requester, or by the named token that last configured its asset type
 * (separation.ts; audited in a transaction of its own, so
 * the refusal's record outlives the rolled-back decision).
 */
export async function decideApproval(
  deps: OrderDeps,
  orderId: number,
  decision: Decision,
  who: Decider,
  reason: string | undefined,
  opts: {
    approvalId?: number | undefined;
    /** Runs in the decision's transaction once it is made; throwing rolls it back (a signed link marks itself used). */
    inTransaction?: ((tx: Queryable, result: DecisionResult) => Promise<void>) | undefined;
  } = {},
): Promise<DecisionResult> {
  const as = actingApprover(who);
  const decided = async (tx: Queryable, r: DecisionResult): Promise<DecisionResult> => {
    await opts.inTransaction?.(tx, r);
    return r;
  };
  let refused: { approvalId: number | null } | undefined;
  try {
    return await deps.db.transaction(async (tx) => {
      const current = await lockOrderStatus(tx, orderId);
      if (current === undefined) throw notFound(`order ${orderId} does not exist`);
      const extension = current === OrderStatus.PENDING_APPROVAL ? null : await waitingExtension(tx, orderId);
      if (current !== OrderStatus.PENDING_APPROVAL && extension === null) {
        throw conflict(`order ${orderId} is not waiting for approval (status '${current}')`);
      }
      const kind = extension !== null ? ('extension' as const) : ('order' as const);
      const pending = await lockPendingApprovals(tx, orderId);
      let target: ApprovalRow | undefined;
      if (opts.approvalId !== undefined) {
        target = pending.find((a) => a.id === opts.approvalId);
        if (!target) throw conflict(`approval ${opts.approvalId} of order ${orderId} is no longer waiting for a decision`);
        if (as && as !== target.approver_email && as !== target.on_behalf_of) throw forbidden(`approval ${target.id} is not ${as}'s to decide`);
      } else if (as && pending.length > 0) {
        // The approver's own approval first; else one a deputy holds on their behalf (they may still decide it).
        target = pending.find((a) => a.approver_email === as) ?? pending.find((a) => a.on_behalf_of === as);
        if (!target) throw forbidden(`order ${orderId} is waiting for another approver`);
      } else if (!who.admin) {
        throw forbidden(`order ${orderId} has no approver yet; only an admin may decide it`);
      } else {
        target = pending[0];
      }

      // Separation of duties bars approving; a decline grants nothing.
      const ctx = decision === 'approved' ? await selectDecisionContext(tx, orderId) : undefined;
      const rule = ctx ? sodViolation({ triggeredBy: who.triggeredBy, actingAs: as }, ctx) : undefined;
      if (rule) {
        refused = { approvalId: target?.id ?? null };
        throw separationOfDuties(rule, orderId, rule === 'own_order' ? as! : who.triggeredBy);
      }

      const decidedBy = as ? `${as} (${who.triggeredBy})` : who.triggeredBy;
      const actor = { triggeredBy: who.triggeredBy, requestId: who.requestId, reason };
      if (!target) {
        await writeAudit(tx, {
          entity: 'order',
          entityId: orderId,
          action: `approval_${decision}`,
          after: { decided_by: decidedBy, reason: reason ?? null, routed: false },
          triggeredBy: who.triggeredBy,
          requestId: who.requestId,
        });
        return decided(tx, { order: await applyOutcome(deps, tx, orderId, kind, { decision, actor }), approval: null, kind, round: null });
      }

      const override = who.admin && !as && opts.approvalId === undefined;
      const forWhom = target.on_behalf_of && as === target.approver_email ? ` on behalf of ${target.on_behalf_of}` : '';
      const approval = await closeApproval(tx, target.id, decision, decidedBy + forWhom, reason ?? null);
      await writeAudit(tx, {
        entity: 'approval',
        entityId: approval.id,
        action: decision,
        before: auditShape(target),
        after: { ...auditShape(approval), ...(override ? { override: true } : {}) },
        triggeredBy: who.triggeredBy,
        requestId: who.requestId,
      });
      const round = (await selectRound(tx, approval.round_id))!;
      const count = await countRound(tx, round.id);
      const settled = decision === 'declined' || override || count.approved >= round.quorum;
      if (!settled) {
        deps.logger?.info('approval counted towards the quorum', { orderId, approved: count.approved, quorum: round.quorum });
        return decided(tx, { order: (await getOrder(tx, orderId))!.order, approval, kind, round: { round, count } });
      }
      const why = override ? `decided by ${who.triggeredBy} (override)` : decision === 'approved' ? 'quorum reached' : `declined by ${as ?? who.triggeredBy}`;
      await withdrawRest(tx, round.id, why, actor);
      const order = await applyOutcome(deps, tx, orderId, kind, { decision, actor });
      return decided(tx, { order, approval, kind, round: { round, count: await countRound(tx, round.id) } });
    });
  } catch (err) {
    if (err instanceof SeparationOfDutiesError && refused) {
      await auditRefusal(deps.db, { orderId, approvalId: refused.approvalId, rule: err.rule, decision, actingAs: as, triggeredBy: who.triggeredBy, requestId: who.requestId });
    }
    throw err;
  }
}

/** One page of approvals, newest first, and how many match in all. */
export function listApprovals(q: Queryable, f: ApprovalFilters): Promise<Page<ApprovalRow>> {
  return selectApprovals(q, f);
}

/** One page of the orders (and extensions) waiting for approval that nobody could be routed to, newest first. */
export function listUnroutedApprovals(q: Queryable, f: ApprovalFilters): Promise<Page<UnroutedRow>> {
  return selectUnrouted(q, f);
}

/** What the leaver hook needs beyond the transaction: the directory (managers) and the services a decline uses. */
export interface LeaverApprovalDeps {
  db: Database;
  queue: JobQueue;
  logger?: Logger | undefined;
}

/**
 * The leaver flow's approver hook. The leaver's own orders the flow cancelled while they waited for approval have
 * their pending approvals withdrawn. Every pending approval the leaver was to give (on an order still waiting) is
 * superseded and re-routed: a deputy's back to the approver they stood in for, else to the leaver's manager, else
 * the asset type's fallback approver (never to a leaver, the requester, the type's last configurer, or someone who
 * already holds a vote in the round), each new approval announced. With nobody to hand it to, a single-approver
 * round is left unrouted for an admin, and a quorum round that can no longer reach its quorum is declined. Each
 * change is audited with the leaver event's attribution. Runs in the leaver transaction (after its cancellations),
 * under the person's lock; a repeated event finds nothing pending for them, so it changes nothing.
 */
export function supersedeApprovalsHook(directory: RequesterDirectory | undefined, deps: LeaverApprovalDeps): LeaverApproverHook {
  return async (tx, ctx) => {
    const emails = ctx.emails.map((e) => e.toLowerCase());
    const audit = { triggeredBy: ctx.triggeredBy, requestId: ctx.requestId };
    for (const old of await lockPendingOfCancelledOrders(tx, emails)) {
      const withdrawn = await closeApproval(tx, old.id, 'withdrawn', ctx.triggeredBy, `requester left (leaver event ${ctx.eventId})`);
      await writeAudit(tx, { entity: 'approval', entityId: old.id, action: 'withdrawn', before: auditShape(old), after: auditShape(withdrawn), ...audit });
    }

    const handedOn: number[] = [];
    for (const old of await lockPendingApprovalsOf(tx, emails)) {
      // An earlier approval of this loop may have settled the round (declined as impossible): nothing left to hand on.
      if (!(await lockPendingOfRound(tx, old.round_id)).some((a) => a.id === old.id)) continue;
      const requester = old.requester.toLowerCase();
      const policy = await selectRoutingPolicy(tx, old.asset_type_id);
      const barred = barredApprovers(requester);
      const superseded = await closeApproval(tx, old.id, 'superseded', ctx.triggeredBy, `approver left (leaver event ${ctx.eventId})`);
      await writeAudit(tx, { entity: 'approval', entityId: old.id, action: 'superseded', before: auditShape(old), after: auditShape(superseded), ...audit });
      const holders = new Set(await selectRoundHolders(tx, old.round_id));
      // Neither a leaver, nor the requester, nor someone who votes in the round already may inherit it.
      const excluded = [...emails, ...barred.keys(), ...holders];
      const backToApprover = old.on_behalf_of && !excluded.includes(old.on_behalf_of) ? old.on_behalf_of : undefined;
      const manager = backToApprover ? undefined : await managerOf(directory, old.on_behalf_of ?? old.approver_email, excluded);
      const fallback = backToApprover || manager ? undefined : policy.fallbackApprover;
      const next = backToApprover ?? manager ?? (fallback && !excluded.includes(fallback) ? fallback : undefined);
      const round = (await selectRound(tx, old.round_id))!;
      if (next) {
        // A re-routed extension stays an extension of the same requested_until: it stays in the same round.
        const reason = backToApprover ? 'deputy left; back to the approver' : manager ? 'manager of leaving approver' : 'fallback_approver';
        await createApproval(tx, deps, { orderId: old.order_id, round, approver: next, reason, routedFrom: old.id, barred, holders: new Set([...holders, ...emails]) }, audit, { leaver_event_id: ctx.eventId });
      } else if (round.mode === 'quorum') {
        await writeAudit(tx, {
          entity: 'order',
          entityId: old.order_id,
          action: 'approval_not_replaced',
          after: { reason: 'approver left; nobody to hand their approval to', approval_id: old.id, round_id: round.id, leaver_event_id: ctx.eventId },
          ...audit,
        });
        await declineIfQuorumImpossible(deps, tx, round.id, audit);
      } else {
        await writeAudit(tx, {
          entity: 'order',
          entityId: old.order_id,
          action: 'approval_unrouted',
          after: { reason: 'approver left; no manager in the directory and no fallback approver on the asset type', leaver_event_id: ctx.eventId },
          ...audit,
        });
      }
      if (!handedOn.includes(old.order_id)) handedOn.push(old.order_id);
    }
    return handedOn;
  };
}
