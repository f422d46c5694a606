import { writeAudit, type JobQueue, type Queryable } from '../../../adapter';
import type { RequesterDirectory } from '../identity/requester-directory';
import { announceApproval } from './announce';
import { resolveDeputy } from './delegations';
import { barredApprovers, type SodRule } from './separation';
import {
  insertApproval,
  insertRound,
  normalEmail,
  selectRoutingPolicy,
  type ApprovalKind,
  type ApprovalPolicy,
  type ApprovalRow,
  type RoundRow,
} from './store';

/*
 * Where an approval goes. Without a quorum policy: to the person's manager from the directory, else the asset type's
 * fallback approver. With one: to every approver the policy lists and every enabled member of its directory group,
 * each an approval of their own in one round that needs `quorum` of them. Either way the requester is left out
 * (separation of duties, audited), and each approval is handed to the approver's deputy when a delegation is in
 * force. Placing an order routes its approval here, in the order's transaction; the orders module
 * depends on this one and not on the deciding half (approvals.ts), which in turn depends on orders.
 */

/** What routing needs from outside: the directory (managers, groups) and the queue the announcements go to. */
export interface RoutingDeps {
  directory: RequesterDirectory | undefined;
  queue: JobQueue;
}

/** Who caused the routing, for the audit rows and the announcement. */
export interface RoutingActor {
  triggeredBy: string;
  requestId?: string | undefined;
}

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
  round_id: r.round_id,
  on_behalf_of: r.on_behalf_of,
  delegation_id: r.delegation_id,
});

/** The manager the directory names, unless it is one of `not` (the requester themselves, a leaver). */
export async function managerOf(directory: RequesterDirectory | undefined, email: string, not: readonly string[]): Promise<string | undefined> {
  if (!directory?.managerOf) return undefined;
  const m = normalEmail(await directory.managerOf(email));
  return m && !not.includes(m) ? m : undefined;
}

/** One approval to create, in a round that exists. */
export interface NewApproval {
  orderId: number;
  round: Pick<RoundRow, 'id' | 'kind' | 'requested_until'>;
  approver: string;
  /** Why it goes to this approver: `manager`, `fallback_approver`, `quorum`, … */
  reason: string;
  routedFrom: number | null;
  /** Who may not approve the order (see barredApprovers: the requester); a delegation is not followed to them. */
  barred: ReadonlyMap<string, SodRule>;
  /** Who already holds a vote in the round; a delegation is not followed to them either. */
  holders: ReadonlySet<string>;
}

/**
 * Creates one pending approval in the caller's transaction: to the approver, or to their deputy when a delegation
 * is in force (`on_behalf_of` the approver, who is copied on the request); audited (`approval` / `create`, with
 * the delegation chain or why a delegation was not followed) and announced (announce.ts: links, mail, card,
 * reminders). Every place that creates an approval goes through here.
 */
export async function createApproval(tx: Queryable, deps: Pick<RoutingDeps, 'queue'>, a: NewApproval, actor: RoutingActor, auditExtra: Record<string, unknown> = {}): Promise<ApprovalRow> {
  const route = await resolveDeputy(tx, a.approver, { barred: a.barred, holders: a.holders });
  const row = await insertApproval(tx, {
    orderId: a.orderId,
    approver: route.approver,
    routedFrom: a.routedFrom,
    reason: a.reason,
    kind: a.round.kind,
    requestedUntil: a.round.requested_until === null ? null : new Date(a.round.requested_until),
    roundId: a.round.id,
    onBehalfOf: route.onBehalfOf,
    delegationId: route.delegationId,
  });
  await writeAudit(tx, {
    entity: 'approval',
    entityId: row.id,
    action: 'create',
    after: {
      ...auditShape(row),
      ...(route.chain.length > 0 ? { delegation_chain: route.chain, cc: route.cc } : {}),
      ...(route.skipped ? { delegation_skipped: route.skipped } : {}),
      ...auditExtra,
    },
    triggeredBy: actor.triggeredBy,
    requestId: actor.requestId,
  });
  await announceApproval(tx, { queue: deps.queue }, row, { triggeredBy: actor.triggeredBy, requestId: actor.requestId, cc: route.cc });
  return row;
}

/** Audits that someone was left out of an order's approvers, and by which rule. */
async function auditExcluded(tx: Queryable, orderId: number, approver: string, rule: SodRule, actor: RoutingActor, extra: Record<string, unknown>): Promise<void> {
  await writeAudit(tx, {
    entity: 'order',
    entityId: orderId,
    action: 'approval_approver_excluded',
    after: { approver, rule, ...extra },
    triggeredBy: actor.triggeredBy,
    requestId: actor.requestId,
  });
}

async function auditUnrouted(tx: Queryable, orderId: number, reason: string, actor: RoutingActor, extra: Record<string, unknown>): Promise<void> {
  await writeAudit(tx, {
    entity: 'order',
    entityId: orderId,
    action: 'approval_unrouted',
    after: { reason, ...extra },
    triggeredBy: actor.triggeredBy,
    requestId: actor.requestId,
  });
}

/**
 * The most approvers a directory group may give one order: each gets an approval, a mail and links, so a group
 * the size of a department is a misconfiguration to refuse plainly rather than a mail storm.
 */
export const MAX_GROUP_APPROVERS = 100;

/**
 * The approvers a quorum policy names for an order placed now: the listed ones, then the group's enabled members
 * with a mail address (the directory's answer), each once, in that order; and, when the group gave nobody, why.
 * @throws CodedError DIRECTORY_UNAVAILABLE when the directory is configured but cannot say who is in the group:
 *   the order is then not placed (its transaction rolls back), as with the requester check.
 */
export async function quorumCandidates(directory: RequesterDirectory | undefined, policy: ApprovalPolicy): Promise<{ approvers: string[]; fromGroup: Set<string>; groupNote?: string }> {
  const listed = policy.approvers.map((e) => normalEmail(e)).filter((e): e is string => e !== undefined);
  const fromGroup = new Set<string>();
  let groupNote: string | undefined;
  if (policy.approver_group) {
    const found = directory?.membersOf ? await directory.membersOf(policy.approver_group) : ({ status: 'unconfigured' } as const);
    if (found.status === 'found' && found.emails.length > MAX_GROUP_APPROVERS) {
      groupNote = `the group '${policy.approver_group}' has ${found.emails.length} members, more than the ${MAX_GROUP_APPROVERS} approvers an order may go to`;
    } else if (found.status === 'found') for (const e of found.emails) fromGroup.add(e);
    else groupNote = found.status === 'not_found' ? `the directory has no group '${policy.approver_group}'` : `no directory is configured to resolve the group '${policy.approver_group}'`;
  }
  return { approvers: [...new Set([...listed, ...fromGroup])], fromGroup, ...(groupNote ? { groupNote } : {}) };
}

/**
 * Routes a new order that waits for approval (or, with `extension`, an extension of it to that `requested_until`;
 * a renewal goes the same way), in the caller's (the order's) transaction. Returns the approvals created, none when
 * nobody could be routed to: the order then stays pending unrouted (an admin decides it) and the audit says why.
 * The directory is asked inside the transaction: only for orders that need approval.
 */
export async function routeNewApprovals(
  tx: Queryable,
  deps: RoutingDeps,
  order: { id: number; user_email: string; asset_type_id: number },
  actor: RoutingActor,
  extension?: { requestedUntil: Date },
): Promise<ApprovalRow[]> {
  const orderId = Number(order.id);
  const requester = order.user_email.toLowerCase();
  const policy = await selectRoutingPolicy(tx, Number(order.asset_type_id));
  const barred = barredApprovers(requester);
  const kind: ApprovalKind = extension ? 'extension' : 'order';
  const requestedUntil = extension?.requestedUntil ?? null;
  const ext = extension ? { kind: 'extension', requested_until: extension.requestedUntil.toISOString() } : {};

  if (policy.approval) {
    const { approvers, fromGroup, groupNote } = await quorumCandidates(deps.directory, policy.approval);
    const eligible: string[] = [];
    for (const a of approvers) {
      const rule = barred.get(a);
      if (rule) await auditExcluded(tx, orderId, a, rule, actor, ext);
      else eligible.push(a);
    }
    const quorum = policy.approval.quorum;
    if (eligible.length < quorum) {
      const why = `a quorum of ${quorum} needs ${quorum} approvers; ${eligible.length} eligible` + (groupNote ? ` (${groupNote})` : '');
      await auditUnrouted(tx, orderId, why, actor, { ...ext, quorum, eligible });
      return [];
    }
    const round = await insertRound(tx, { orderId, kind, requestedUntil, mode: 'quorum', quorum });
    const holders = new Set(eligible);
    const rows: ApprovalRow[] = [];
    for (const approver of eligible) {
      const reason = fromGroup.has(approver) && !policy.approval.approvers.includes(approver) ? `quorum (group ${policy.approval.approver_group})` : 'quorum';
      rows.push(await createApproval(tx, deps, { orderId, round, approver, reason, routedFrom: null, barred, holders }, actor));
    }
    return rows;
  }

  // A person who is their own manager in the directory, or the fallback approver, does not approve their own order.
  const manager = await managerOf(deps.directory, requester, [requester]);
  const fallback = manager ? undefined : policy.fallbackApprover;
  const fallbackRule = fallback ? barred.get(fallback) : undefined;
  if (fallback && fallbackRule) await auditExcluded(tx, orderId, fallback, fallbackRule, actor, ext);
  const approver = manager ?? (fallback && !fallbackRule ? fallback : undefined);
  if (!approver) {
    const why = fallbackRule
      ? 'no manager in the directory, and the fallback approver is the requester'
      : 'no manager in the directory and no fallback approver on the asset type';
    await auditUnrouted(tx, orderId, why, actor, ext);
    return [];
  }
  const round = await insertRound(tx, { orderId, kind, requestedUntil, mode: 'single', quorum: 1 });
  const row = await createApproval(tx, deps, { orderId, round, approver, reason: manager ? 'manager' : 'fallback_approver', routedFrom: null, barred, holders: new Set([approver]) }, actor);
  return [row];
}

/** {@link routeNewApprovals}, answering the first approval created (the only one without a quorum policy). */
export async function routeNewApproval(
  tx: Queryable,
  deps: RoutingDeps,
  order: { id: number; user_email: string; asset_type_id: number },
  actor: RoutingActor,
  extension?: { requestedUntil: Date },
): Promise<ApprovalRow | undefined> {
  return (await routeNewApprovals(tx, deps, order, actor, extension))[0];
}
