import { writeAudit, type Database, type Queryable } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import { CodedError, ErrorCode, conflict, forbidden, invalidField, notFound } from '../../errors';
import type { Page } from '../paging';
import type { SodRule } from './separation';
import {
  insertDelegation,
  lockDelegationsOf,
  normalEmail,
  revokeDelegationRow,
  selectDelegation,
  selectDelegationInForce,
  selectDelegations,
  selectOverlappingDelegations,
  type DelegationFilters,
  type DelegationRow,
} from './store';

/*
 * Delegation windows: an approver names a deputy from `starts_at` until `ends_at`; approvals routed to the approver
 * in the window go to the deputy instead (routing.ts asks {@link resolveDeputy} each time it creates one), the
 * approver copied. Windows of one approver never overlap, so at any instant an approver has at most one deputy.
 */

export type { DelegationFilters, DelegationRow } from './store';
export type DelegationView = Api.ApprovalDelegation;

/** The longest window, so a forgotten delegation does not route someone's approvals elsewhere for years. */
export const MAX_DELEGATION_DAYS = 366;
/** How far a request follows deputies who are away themselves (A→B→C...). */
export const MAX_DELEGATION_HOPS = 5;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Who changes delegations: an admin (anyone's) or an approver token (its own). */
export interface DelegationActor {
  /** Audit attribution: `admin:token:<name>`, `admin:key`, `approver:token:<name>`. */
  triggeredBy: string;
  requestId?: string | undefined;
  /** True for scope `admin:*`. */
  admin: boolean;
  /** An approver token's bound email (null: minted before binding, may do nothing). */
  boundApprover?: string | null | undefined;
}

export interface DelegationInput {
  approverEmail?: string | undefined;
  deputyEmail: string;
  /** ISO 8601; default now. */
  startsAt?: string | undefined;
  endsAt: string;
  reason?: string | undefined;
}

export function toDelegationView(r: DelegationRow, now = new Date()): DelegationView {
  return {
    id: r.id,
    approver_email: r.approver_email,
    deputy_email: r.deputy_email,
    starts_at: new Date(r.starts_at).toISOString(),
    ends_at: new Date(r.ends_at).toISOString(),
    reason: r.reason,
    active: r.revoked_at === null && new Date(r.ends_at).getTime() > now.getTime(),
    created_by: r.created_by,
    created_at: new Date(r.created_at).toISOString(),
    revoked_at: r.revoked_at ? new Date(r.revoked_at).toISOString() : null,
    revoked_by: r.revoked_by,
  };
}

/** The approver a caller may manage delegations of: an approver token its own, an admin the one named. */
function approverOf(who: DelegationActor, named: string | undefined): string {
  const claimed = normalEmail(named);
  if (who.admin) {
    if (!claimed) throw invalidField('/body/approver_email', 'is required when an admin names a deputy for someone');
    return claimed;
  }
  const bound = normalEmail(who.boundApprover);
  if (!bound) throw forbidden('this approver token is bound to no approver email; ask an admin to mint a replacement with approver_email');
  if (claimed && claimed !== bound) throw forbidden(`this token manages only the delegations of ${bound}, not ${claimed}`);
  return bound;
}

function instant(field: string, value: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw invalidField(`/body/${field}`, 'must be an ISO 8601 date-time');
  return d;
}

/**
 * Names a deputy for a window, audited (`approval_delegation` / `create`).
 * Throws FORBIDDEN when an approver token names another approver (or is unbound); VALIDATION_FAILED (422) naming
 * the field for a missing approver (admins), a deputy equal to the approver, a window that ends before it starts,
 * has ended or is longer than {@link MAX_DELEGATION_DAYS} days, or a deputy who delegates back to the approver in
 * an overlapping window; DELEGATION_OVERLAP (422, `delegation_id`) when the approver already has an overlapping
 * window. The checks run under a lock on both people (see lockDelegationsOf), so of two concurrent overlapping
 * creations one is stored and the other refused.
 */
export async function createDelegation(db: Database, input: DelegationInput, who: DelegationActor): Promise<DelegationRow> {
  const approver = approverOf(who, input.approverEmail);
  const deputy = normalEmail(input.deputyEmail);
  if (!deputy) throw invalidField('/body/deputy_email', 'must not be blank');
  if (deputy === approver) throw invalidField('/body/deputy_email', `must be someone other than the approver (${approver})`);
  const now = new Date();
  const startsAt = input.startsAt !== undefined ? instant('starts_at', input.startsAt) : now;
  const endsAt = instant('ends_at', input.endsAt);
  if (endsAt.getTime() <= startsAt.getTime()) throw invalidField('/body/ends_at', `must be after starts_at (${startsAt.toISOString()})`);
  if (endsAt.getTime() <= now.getTime()) throw invalidField('/body/ends_at', 'must be in the future: the window has already ended');
  if (endsAt.getTime() - startsAt.getTime() > MAX_DELEGATION_DAYS * DAY_MS) {
    throw invalidField('/body/ends_at', `must be at most ${MAX_DELEGATION_DAYS} days after starts_at`);
  }
  return db.transaction(async (tx) => {
    await lockDelegationsOf(tx, [approver, deputy]);
    const [overlap] = await selectOverlappingDelegations(tx, approver, startsAt, endsAt);
    if (overlap) {
      const message = `overlaps delegation ${overlap.id} of ${approver} to ${overlap.deputy_email} (${overlap.starts_at.toISOString()} to ${overlap.ends_at.toISOString()})`;
      throw new CodedError(ErrorCode.DELEGATION_OVERLAP, `the window ${message}; revoke it or choose another window`, {
        errors: [{ path: '/body/starts_at', message }],
        extra: { delegation_id: overlap.id },
      });
    }
    const back = (await selectOverlappingDelegations(tx, deputy, startsAt, endsAt)).find((d) => d.deputy_email === approver);
    if (back) {
      throw invalidField('/body/deputy_email', `${deputy} delegates to ${approver} in an overlapping window (delegation ${back.id}); a delegation may not lead back to its approver`);
    }
    const row = await insertDelegation(tx, { approver, deputy, startsAt, endsAt, reason: input.reason ?? null, createdBy: who.triggeredBy });
    await writeAudit(tx, { entity: 'approval_delegation', entityId: row.id, action: 'create', after: toDelegationView(row, now), triggeredBy: who.triggeredBy, requestId: who.requestId });
    return row;
  });
}

/**
 * Revokes a delegation now (kept, with `revoked_at`), audited (`approval_delegation` / `revoke`). Approvals already
 * routed to the deputy stay with them. Throws NOT_FOUND; FORBIDDEN when an approver token revokes someone else's;
 * CONFLICT when it was already revoked.
 */
export async function revokeDelegation(db: Database, id: number, who: DelegationActor): Promise<DelegationRow> {
  return db.transaction(async (tx) => {
    const found = await selectDelegation(tx, id);
    if (!found) throw notFound(`delegation ${id} does not exist`);
    if (!who.admin) {
      const bound = approverOf(who, undefined);
      if (found.approver_email !== bound) throw forbidden(`delegation ${id} is not one of ${bound}'s`);
    }
    await lockDelegationsOf(tx, [found.approver_email, found.deputy_email]);
    const current = (await selectDelegation(tx, id))!;
    if (current.revoked_at !== null) throw conflict(`delegation ${id} was already revoked at ${current.revoked_at.toISOString()}`);
    const row = await revokeDelegationRow(tx, id, who.triggeredBy);
    await writeAudit(tx, { entity: 'approval_delegation', entityId: id, action: 'revoke', before: toDelegationView(current), after: toDelegationView(row), triggeredBy: who.triggeredBy, requestId: who.requestId });
    return row;
  });
}

/** One page of delegations, newest first; an approver token sees only the ones it gives or receives. */
export async function listDelegations(q: Queryable, f: DelegationFilters, who: Pick<DelegationActor, 'admin' | 'boundApprover'>): Promise<Page<DelegationRow>> {
  if (who.admin) return selectDelegations(q, f);
  const bound = normalEmail(who.boundApprover);
  if (!bound) throw forbidden('this approver token is bound to no approver email; ask an admin to mint a replacement with approver_email');
  return selectDelegations(q, { ...f, involving: bound });
}

/** Where an approval for `approver` goes now, after the delegations in force. */
export interface DeputyRoute {
  /** Who gets the approval: the approver, or the deputy at the end of the chain. */
  approver: string;
  /** The approver a deputy stands in for; null when it stays with the approver. */
  onBehalfOf: string | null;
  /** The approver's delegation the request went through; null when none. */
  delegationId: number | null;
  /** Who is copied on the request: everyone it passed on the way to the deputy. */
  cc: string[];
  /** Each hop taken: delegation, from, to. */
  chain: { delegation_id: number; from: string; to: string }[];
  /** A delegation in force that was not followed, and why. */
  skipped?: { delegation_id: number; deputy: string; why: SodRule | 'already_an_approver' | 'cycle' | 'too_many_hops' } | undefined;
}

/**
 * Follows the delegations in force at `at` from `approver`: to the deputy, and on to the deputy's deputy when they
 * are away too (at most {@link MAX_DELEGATION_HOPS} hops). A hop is not taken to someone the request already passed
 * (a cycle), to someone barred from deciding the order (`barred`: the requester, the type's last configurer), or to
 * someone who already holds a vote in the round (`holders`: one person, one vote); the request then stays with
 * the last person reached, and `skipped` says why.
 */
export async function resolveDeputy(
  q: Queryable,
  approver: string,
  opts: { barred: ReadonlyMap<string, SodRule>; holders: ReadonlySet<string>; at?: Date },
): Promise<DeputyRoute> {
  const at = opts.at ?? new Date();
  const route: DeputyRoute = { approver, onBehalfOf: null, delegationId: null, cc: [], chain: [] };
  const passed = new Set([approver]);
  for (let hop = 0; ; hop++) {
    const d = await selectDelegationInForce(q, route.approver, at);
    if (!d) return route;
    const deputy = d.deputy_email;
    const why = passed.has(deputy) ? 'cycle' : (opts.barred.get(deputy) ?? (opts.holders.has(deputy) ? 'already_an_approver' : hop >= MAX_DELEGATION_HOPS ? 'too_many_hops' : undefined));
    if (why) {
      route.skipped = { delegation_id: d.id, deputy, why };
      return route;
    }
    route.chain.push({ delegation_id: d.id, from: route.approver, to: deputy });
    route.cc.push(route.approver);
    route.delegationId ??= d.id;
    route.onBehalfOf = approver;
    route.approver = deputy;
    passed.add(deputy);
  }
}
