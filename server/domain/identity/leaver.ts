import { countLeaverEvent } from '../../../adapter';
import { createHash, randomUUID } from 'node:crypto';
import { QueueName, writeAudit, type Database, type JobQueue, type Logger, type Queryable } from '../../../adapter';
import { canTransition, OrderStatus } from '../orders/order-status';
import type { PageRequest } from '../paging';
import {
  insertEvent,
  insertEventOrders,
  lockEvent,
  lockPeople,
  markEventProcessed,
  selectEventIdByDedupeKey,
  selectEventIdentity,
  selectKnownEmails,
  selectLeaverEvents,
  selectScimUsersMatching,
  setEventJob,
  setEventOutcome,
  takeBackOrdersOf,
  type EventRow,
  type LeaverEventFilter,
  type LeaverEventView,
  type LeaverIdentity,
  type LeaverOrderOutcome,
  type LeaverSource,
} from './store';

/**
 * The leaver flow: whichever edge reports that a person left (SCIM deactivation or delete, an HR system's
 * termination event), their orders are taken back once. Idempotency and races are settled in the database:
 * a per-person advisory lock serialises every leaver event of one person, order rows are locked, the event's
 * dedupe key is unique, and a partial unique index lets an order be revoked or cancelled by one event only.
 */

export type { LeaverEventFilter, LeaverEventOrderView, LeaverEventView, LeaverIdentity, LeaverSource } from './store';
export const LEAVER_SOURCES: readonly LeaverSource[] = ['scim', 'workday', 'successfactors', 'graph', 'native'];

export interface LeaverEventInput {
  source: LeaverSource;
  identity: LeaverIdentity;
  /** `scim:token:<name>` or `hr:<source>` */
  triggeredBy: string;
  /** Idempotency: the same key again records nothing new (e.g. `scim:<user id>:deactivate`, or the HR event id). */
  dedupeKey?: string | null;
  effectiveAt?: Date | null;
  reason?: string | null;
  requestId?: string;
  /** The credential the edge authenticated with (`token:<name>`, `hmac`, `client_state`), for the audit row. */
  credential?: string;
}

export type LeaverStatus = 'processed' | 'scheduled' | 'duplicate' | 'no_matching_user';

export interface LeaverOutcome {
  eventId: number;
  status: LeaverStatus;
  revokedOrders: number[];
  cancelledOrders: number[];
}

/**
 * The hook point for approvals the leaver was to decide (there is no approvals table yet): called inside the
 * leaver transaction, under the person's lock, it supersedes them and returns the ids of the orders whose
 * approval it handed on; those are recorded with outcome `superseded`.
 */
export type LeaverApproverHook = (
  tx: Queryable,
  ctx: { eventId: number; emails: readonly string[]; triggeredBy: string; requestId: string | undefined },
) => Promise<number[]>;

/**
 * Told, inside the leaver transaction once the event's orders were taken back, what was revoked and cancelled
 * (the manager's leaver notice is mailed from here, committed with the revocations it lists).
 */
export type LeaverNoticeHook = (
  tx: Queryable,
  ctx: { eventId: number; emails: readonly string[]; revokedOrders: readonly number[]; cancelledOrders: readonly number[]; triggeredBy: string; requestId: string | undefined },
) => Promise<void>;

export interface LeaverDeps {
  db: Database;
  queue: JobQueue;
  logger: Logger;
  approverHooks?: readonly LeaverApproverHook[];
  noticeHooks?: readonly LeaverNoticeHook[];
}

/** What one event did; stored as `leaver_events.outcome`. */
interface AppliedOutcome {
  revokedOrders: number[];
  cancelledOrders: number[];
  supersededOrders: number[];
  /** Orders already being taken back by their own job: left to it, so no runbook runs twice. */
  alreadyDeprovisioning: number[];
  matchedEmails: string[];
}

// Waiting for approval or a start date: nothing was built yet, so it is cancelled, not revoked.
const CANCEL_FROM: readonly OrderStatus[] = [OrderStatus.PENDING_APPROVAL, OrderStatus.SCHEDULED];
// Holding (or building, or half-built) something: revoked, and the deprovision job takes it back.
const REVOKE_FROM: readonly OrderStatus[] = [OrderStatus.PROCESSING, OrderStatus.PROVISIONING, OrderStatus.PROVISIONED, OrderStatus.FAILED];
const TOUCHED = [...CANCEL_FROM, ...REVOKE_FROM, OrderStatus.DEPROVISIONING];
const CANCELLED_ERROR = 'cancelled: the requester left';
// The take-back moves orders in SQL (takeBackOrdersOf) without asking the transition table row by row: these moves
// must be ones it allows, and a change to the table that forbids one stops the service here rather than letting the
// leaver make a move nothing else may.
for (const [from, to] of [...CANCEL_FROM.map((s) => [s, OrderStatus.CANCELLED] as const), ...REVOKE_FROM.map((s) => [s, OrderStatus.REVOKED] as const)]) {
  if (!canTransition(from, to)) throw new Error(`leaver flow: the order transition table no longer allows '${from}' -> '${to}'`);
}

function clean(v: string | null | undefined): string | null {
  const s = typeof v === 'string' ? v.trim() : '';
  return s ? s : null;
}

function normalisedIdentity(i: LeaverIdentity): Required<{ [K in keyof LeaverIdentity]: string | null }> {
  return {
    email: clean(i.email)?.toLowerCase() ?? null,
    userName: clean(i.userName),
    externalId: clean(i.externalId),
    employeeId: clean(i.employeeId),
  };
}

/** True when the identity names anyone at all; an event without any identifier is refused by the edges. */
export function hasIdentifier(i: LeaverIdentity): boolean {
  return Object.values(normalisedIdentity(i)).some((v) => v !== null);
}

/**
 * The key a delivery without its own id is deduplicated on: the same source, identifiers and effective moment
 * (or, without one, the same UTC day of receipt) are one event.
 */
export function defaultDedupeKey(input: Pick<LeaverEventInput, 'source' | 'identity' | 'effectiveAt'>, now = new Date()): string {
  const when = input.effectiveAt ? input.effectiveAt.toISOString() : `received:${now.toISOString().slice(0, 10)}`;
  const digest = createHash('sha256').update(JSON.stringify([normalisedIdentity(input.identity), when])).digest('hex').slice(0, 32);
  return `${input.source}:auto:${digest}`;
}

// --- person resolution ---------------------------------------------------------------------------------------

/**
 * The lower-cased emails the identity resolves to: its email (and a userName that is an email) when the person
 * holds or held an order, is to decide a pending approval, or is a SCIM user, the order requesters whose snapshot carries the employee id, and the
 * userName and emails of the SCIM users matching the userName/email, externalId or employee number.
 * Empty: nobody matched.
 */
export async function resolvePerson(q: Queryable, identity: LeaverIdentity): Promise<string[]> {
  const id = normalisedIdentity(identity);
  const direct = [...new Set([id.email, id.userName?.includes('@') ? id.userName.toLowerCase() : null].filter((e): e is string => !!e))];
  const userNames = [...new Set([...direct, id.userName?.toLowerCase()].filter((e): e is string => !!e))];
  const ids = [...new Set([id.employeeId, id.externalId].filter((e): e is string => !!e))];
  const found = new Set<string>();

  for (const e of await selectKnownEmails(q, direct, ids)) found.add(e.toLowerCase());

  const scimUsers = await selectScimUsersMatching(q, { userNames, ids, emails: direct });
  for (const r of scimUsers) {
    if (r.user_name.includes('@')) found.add(r.user_name.toLowerCase());
    for (const e of Array.isArray(r.emails) ? r.emails : []) {
      if (typeof e.value === 'string' && e.value.includes('@')) found.add(e.value.toLowerCase());
    }
  }
  // A SCIM user matched by userName is known even when no address of theirs was stored separately.
  if (scimUsers.length > 0) for (const e of direct) found.add(e);
  return [...found].sort();
}

// --- the flow ---------------------------------------------------------------------------------------------------

/**
 * Takes back every order the person holds, inside the caller's transaction and under their lock:
 * pending/scheduled orders are cancelled; processing/provisioning/provisioned/failed orders are revoked and
 * their `order.deprovision` job is enqueued with the type's deprovision policy; orders already deprovisioning
 * are left to the job that takes them back. Approvals they were to give are handed to the approver hooks.
 */
async function applyLeaver(tx: Queryable, deps: LeaverDeps, ev: EventRow, emails: readonly string[]): Promise<AppliedOutcome> {
  const out: AppliedOutcome = { revokedOrders: [], cancelledOrders: [], supersededOrders: [], alreadyDeprovisioning: [], matchedEmails: [...emails] };
  const requestId = ev.request_id ?? undefined;
  // Set-based: the orders, their audit rows, their deprovision jobs and their links to the event are one statement,
  // so a person holding 10,000 orders costs one round trip rather than four per order (store.ts).
  const taken = await takeBackOrdersOf(tx, {
    emails,
    touched: TOUCHED,
    cancelFrom: CANCEL_FROM,
    cancelError: CANCELLED_ERROR,
    eventId: ev.id,
    triggeredBy: ev.triggered_by,
    requestId: ev.request_id,
  });
  for (const r of taken) {
    if (r.to === OrderStatus.REVOKED) out.revokedOrders.push(r.id);
    else if (r.to === OrderStatus.CANCELLED) out.cancelledOrders.push(r.id);
    else out.alreadyDeprovisioning.push(r.id);
  }
  const superseded: { orderId: number; outcome: LeaverOrderOutcome; jobId: null }[] = [];
  for (const hook of deps.approverHooks ?? []) {
    for (const orderId of await hook(tx, { eventId: ev.id, emails, triggeredBy: ev.triggered_by, requestId })) {
      out.supersededOrders.push(orderId);
      superseded.push({ orderId, outcome: 'superseded', jobId: null });
    }
  }
  if (superseded.length > 0) await insertEventOrders(tx, ev.id, superseded);
  for (const hook of deps.noticeHooks ?? []) {
    await hook(tx, { eventId: ev.id, emails, revokedOrders: out.revokedOrders, cancelledOrders: out.cancelledOrders, triggeredBy: ev.triggered_by, requestId });
  }
  return out;
}

async function finishEvent(tx: Queryable, ev: EventRow, out: AppliedOutcome): Promise<void> {
  await markEventProcessed(tx, ev.id, out);
  await writeAudit(tx, {
    entity: 'leaver_event',
    entityId: ev.id,
    action: 'processed',
    before: null,
    after: { status: 'processed', person_key: ev.person_key, ...out },
    triggeredBy: ev.triggered_by,
    requestId: ev.request_id ?? undefined,
  });
}

/** One leaver flow, whichever edge fires it; idempotent and safe under concurrency (database locks). */
export async function processLeaverEvent(deps: LeaverDeps, input: LeaverEventInput): Promise<LeaverOutcome> {
  const identity = normalisedIdentity(input.identity);
  const now = new Date();
  const dedupeKey = clean(input.dedupeKey) ?? defaultDedupeKey(input, now);
  const effectiveAt = input.effectiveAt ?? null;
  const future = effectiveAt !== null && effectiveAt.getTime() > now.getTime();
  const emails = await resolvePerson(deps.db, identity);
  const personKey = emails.length === 0 ? null : identity.email && emails.includes(identity.email) ? identity.email : emails[0]!;

  const result = await deps.db.transaction(async (tx): Promise<LeaverOutcome> => {
    await lockPeople(tx, emails);
    const status: EventRow['status'] = emails.length === 0 ? 'no_matching_user' : future ? 'scheduled' : 'processed';
    // A concurrent delivery with the same key waits here for the first one's commit, then inserts nothing.
    const ev = await insertEvent(tx, {
      source: input.source,
      identity,
      personKey,
      dedupeKey,
      effectiveAt,
      status,
      reason: clean(input.reason),
      triggeredBy: input.triggeredBy,
      requestId: input.requestId ?? null,
    });
    if (!ev) {
      const original = await selectEventIdByDedupeKey(tx, dedupeKey);
      await writeAudit(tx, {
        entity: 'leaver_event',
        entityId: original,
        action: 'duplicate',
        after: { source: input.source, dedupe_key: dedupeKey },
        triggeredBy: input.triggeredBy,
        requestId: input.requestId,
      });
      return { eventId: original, status: 'duplicate' as const, revokedOrders: [], cancelledOrders: [] };
    }
    await writeAudit(tx, {
      entity: 'leaver_event',
      entityId: ev.id,
      action: 'received',
      before: null,
      after: {
        source: input.source,
        identity,
        person_key: personKey,
        dedupe_key: dedupeKey,
        effective_at: effectiveAt,
        status,
        reason: clean(input.reason),
        ...(input.credential ? { credential: input.credential } : {}),
      },
      triggeredBy: input.triggeredBy,
      requestId: input.requestId,
    });
    if (status === 'no_matching_user') {
      await setEventOutcome(tx, ev.id, { message: 'no matching user' });
      return { eventId: ev.id, status, revokedOrders: [], cancelledOrders: [] };
    }
    if (status === 'scheduled') {
      const jobId = randomUUID();
      await deps.queue.send(tx, QueueName.LEAVER_EFFECTIVE, { eventId: ev.id }, { id: jobId, startAfter: effectiveAt! });
      await setEventJob(tx, ev.id, jobId);
      return { eventId: ev.id, status, revokedOrders: [], cancelledOrders: [] };
    }
    const out = await applyLeaver(tx, deps, ev, emails);
    await finishEvent(tx, ev, out);
    return { eventId: ev.id, status, revokedOrders: out.revokedOrders, cancelledOrders: out.cancelledOrders };
  });
  deps.logger.info('leaver event', {
    eventId: result.eventId,
    source: input.source,
    status: result.status,
    revoked: result.revokedOrders.length,
    cancelled: result.cancelledOrders.length,
  });
  countLeaverEvent(input.source, result.status);
  return result;
}

/**
 * Processes a scheduled event whose moment has come (the `leaver.effective` job). The person is resolved again,
 * since orders may have been placed since the event arrived. Does nothing for an event that is not scheduled.
 */
export async function processDueLeaverEvent(deps: LeaverDeps, eventId: number): Promise<LeaverOutcome | null> {
  const identity = await selectEventIdentity(deps.db, eventId);
  if (!identity) return null;
  const emails = await resolvePerson(deps.db, identity);
  const result = await deps.db.transaction(async (tx) => {
    await lockPeople(tx, emails);
    const ev = await lockEvent(tx, eventId);
    if (!ev || ev.status !== 'scheduled') return null;
    const out = await applyLeaver(tx, deps, ev, emails);
    await finishEvent(tx, ev, out);
    return { eventId: ev.id, status: 'processed' as const, revokedOrders: out.revokedOrders, cancelledOrders: out.cancelledOrders };
  });
  if (result) deps.logger.info('scheduled leaver event processed', { eventId, revoked: result.revokedOrders.length, cancelled: result.cancelledOrders.length });
  return result;
}

/** Works the `leaver.effective` queue in this process (registered at serve start). */
export async function registerLeaverWorker(deps: LeaverDeps): Promise<void> {
  await deps.queue.work<{ eventId: number }>(QueueName.LEAVER_EFFECTIVE, async (jobs) => {
    for (const job of jobs) await processDueLeaverEvent(deps, Number(job.data.eventId));
  });
}

// --- admin view ------------------------------------------------------------------------------------------------

/** Leaver events, newest first, each with its orders' outcomes and the state of their deprovision jobs. */
export function listLeaverEvents(q: Queryable, filter: LeaverEventFilter, page: PageRequest): Promise<{ items: LeaverEventView[]; total: number }> {
  return selectLeaverEvents(q, filter, page);
}
