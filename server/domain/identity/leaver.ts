import { createHash, randomUUID } from 'node:crypto';
import { QueueName, type Database, type JobQueue, type Logger, type Queryable } from '../../../adapter';
import { writeAudit } from '../../../adapter';
import { OrderStatus, transitionOrder } from '../orders/order-status';

/**
 * The leaver flow: whichever edge reports that a person left (SCIM deactivation or delete, an HR system's
 * termination event), their orders are taken back once. Idempotency and races are settled in the database:
 * a per-person advisory lock serialises every leaver event of one person, order rows are locked, the event's
 * dedupe key is unique, and a partial unique index lets an order be revoked or cancelled by one event only.
 */

export type LeaverSource = 'scim' | 'workday' | 'successfactors' | 'graph' | 'native';
export const LEAVER_SOURCES: readonly LeaverSource[] = ['scim', 'workday', 'successfactors', 'graph', 'native'];

export interface LeaverIdentity {
  email?: string | null;
  userName?: string | null;
  externalId?: string | null;
  employeeId?: string | null;
}

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

export interface LeaverDeps {
  db: Database;
  queue: JobQueue;
  logger: Logger;
  approverHooks?: readonly LeaverApproverHook[];
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

/** True when the SCIM users table (the SCIM feature's migration) exists in this database. */
async function hasScimUsers(q: Queryable): Promise<boolean> {
  const { rows } = await q.query<{ present: boolean }>(`SELECT to_regclass('scim_users') IS NOT NULL AS present`);
  return rows[0]?.present === true;
}

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

  const { rows } = await q.query<{ user_email: string }>(
    `SELECT DISTINCT user_email FROM orders WHERE user_email = ANY($1::text[])
     UNION SELECT DISTINCT user_email FROM orders WHERE requester_employee_id = ANY($2::text[])
     UNION SELECT DISTINCT approver_email FROM approvals WHERE approver_email = ANY($1::text[]) AND status = 'pending'`,
    [direct, ids],
  );
  for (const r of rows) found.add(r.user_email.toLowerCase());

  if (await hasScimUsers(q)) {
    // Each branch is an index lookup (lower(user_name), external_id, employee_number, emails GIN).
    const emailDocs = direct.map((e) => JSON.stringify([{ value: e }]));
    const byEmail = emailDocs.map((_, i) => `UNION SELECT user_name, emails FROM scim_users WHERE emails @> $${i + 3}::jsonb`).join('\n');
    const res = await q.query<{ user_name: string; emails: { value?: unknown }[] | null }>(
      `SELECT user_name, emails FROM scim_users WHERE lower(user_name) = ANY($1::text[])
       UNION SELECT user_name, emails FROM scim_users WHERE external_id = ANY($2::text[])
       UNION SELECT user_name, emails FROM scim_users WHERE employee_number = ANY($2::text[])
       ${byEmail}
       LIMIT 50`,
      [userNames, ids, ...emailDocs],
    );
    for (const r of res.rows) {
      if (r.user_name.includes('@')) found.add(r.user_name.toLowerCase());
      for (const e of Array.isArray(r.emails) ? r.emails : []) {
        if (typeof e.value === 'string' && e.value.includes('@')) found.add(e.value.toLowerCase());
      }
    }
    // A SCIM user matched by userName is known even when no address of theirs was stored separately.
    if (res.rows.length > 0) for (const e of direct) found.add(e);
  }
  return [...found].sort();
}

// --- the flow ---------------------------------------------------------------------------------------------------

interface EventRow {
  id: number;
  source: LeaverSource;
  identity: LeaverIdentity;
  person_key: string | null;
  status: 'processed' | 'scheduled' | 'no_matching_user';
  triggered_by: string;
  request_id: string | null;
}

async function lockPeople(tx: Queryable, emails: readonly string[]): Promise<void> {
  // Sorted, so two events naming overlapping sets of addresses take their locks in one order and cannot deadlock.
  for (const e of [...emails].sort()) {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('leaver:' || lower($1::text), 0))`, [e]);
  }
}

/**
 * Takes back every order the person holds, inside the caller's transaction and under their lock:
 * pending/scheduled orders are cancelled; processing/provisioning/provisioned/failed orders are revoked and
 * their `order.deprovision` job is enqueued with the type's deprovision policy; orders already deprovisioning
 * are left to the job that takes them back. Approvals they were to give are handed to the approver hooks.
 */
async function applyLeaver(tx: Queryable, deps: LeaverDeps, ev: EventRow, emails: readonly string[]): Promise<AppliedOutcome> {
  const out: AppliedOutcome = { revokedOrders: [], cancelledOrders: [], supersededOrders: [], alreadyDeprovisioning: [], matchedEmails: [...emails] };
  const requestId = ev.request_id ?? undefined;
  const { rows } = await tx.query<{ id: string | number; status: OrderStatus; deprovision_policy: string }>(
    `SELECT o.id, o.status, t.deprovision_policy
       FROM orders o JOIN asset_types t ON t.id = o.asset_type_id
      WHERE o.user_email = ANY($1::text[]) AND o.action = 'provision' AND o.status = ANY($2::text[])
      ORDER BY o.id
      FOR UPDATE OF o`,
    [emails, TOUCHED],
  );
  const links: { orderId: number; outcome: 'revoked' | 'cancelled' | 'superseded'; jobId: string | null }[] = [];
  const dispatched: { orderId: number; jobId: string; policy: string }[] = [];
  for (const r of rows) {
    const orderId = Number(r.id);
    if (r.status === OrderStatus.DEPROVISIONING) {
      out.alreadyDeprovisioning.push(orderId);
    } else if (CANCEL_FROM.includes(r.status)) {
      await transitionOrder(tx, orderId, OrderStatus.CANCELLED, { triggeredBy: ev.triggered_by, requestId, error: 'cancelled: the requester left' });
      out.cancelledOrders.push(orderId);
      links.push({ orderId, outcome: 'cancelled', jobId: null });
    } else {
      await transitionOrder(tx, orderId, OrderStatus.REVOKED, { triggeredBy: ev.triggered_by, requestId });
      const jobId = randomUUID();
      await deps.queue.send(
        tx,
        QueueName.ORDER_DEPROVISION,
        { orderId, reason: 'leaver', policy: r.deprovision_policy, leaverEventId: ev.id },
        { id: jobId },
      );
      out.revokedOrders.push(orderId);
      links.push({ orderId, outcome: 'revoked', jobId });
      dispatched.push({ orderId, jobId, policy: r.deprovision_policy });
    }
  }
  for (const hook of deps.approverHooks ?? []) {
    for (const orderId of await hook(tx, { eventId: ev.id, emails, triggeredBy: ev.triggered_by, requestId })) {
      out.supersededOrders.push(orderId);
      links.push({ orderId, outcome: 'superseded', jobId: null });
    }
  }
  if (links.length > 0) {
    // One statement for all links; the partial unique index refuses an order a second revocation or cancellation.
    await tx.query(
      `INSERT INTO leaver_event_orders (event_id, order_id, outcome, deprovision_job_id)
       SELECT $1, o, x, j FROM unnest($2::bigint[], $3::text[], $4::text[]) AS u(o, x, j)`,
      [ev.id, links.map((l) => l.orderId), links.map((l) => l.outcome), links.map((l) => l.jobId)],
    );
  }
  if (dispatched.length > 0) {
    // The dispatch of each deprovision job is audited on its order, in one statement (no secrets in these rows).
    await tx.query(
      `INSERT INTO audit_log (entity, entity_id, action, diff, triggered_by, request_id)
       SELECT 'order', o::text, 'deprovision_dispatched',
              jsonb_build_object('before', NULL, 'after', jsonb_build_object('job_id', j, 'reason', 'leaver', 'policy', p, 'leaver_event_id', $1::bigint)),
              $5, $6
         FROM unnest($2::bigint[], $3::text[], $4::text[]) AS u(o, j, p)`,
      [ev.id, dispatched.map((d) => d.orderId), dispatched.map((d) => d.jobId), dispatched.map((d) => d.policy), ev.triggered_by, requestId ?? null],
    );
  }
  return out;
}

async function finishEvent(tx: Queryable, ev: EventRow, out: AppliedOutcome): Promise<void> {
  await tx.query(`UPDATE leaver_events SET status = 'processed', outcome = $2, processed_at = now() WHERE id = $1`, [ev.id, JSON.stringify(out)]);
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
    const inserted = await tx.query<EventRow>(
      `INSERT INTO leaver_events (source, identity, person_key, dedupe_key, effective_at, status, reason, triggered_by, request_id,
                                  processed_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $6 = 'scheduled' THEN NULL ELSE now() END)
       ON CONFLICT (dedupe_key) DO NOTHING
       RETURNING id, source, identity, person_key, status, triggered_by, request_id`,
      [input.source, JSON.stringify(identity), personKey, dedupeKey, effectiveAt, status, clean(input.reason), input.triggeredBy, input.requestId ?? null],
    );
    const ev = inserted.rows[0];
    if (!ev) {
      const { rows } = await tx.query<{ id: string | number }>('SELECT id FROM leaver_events WHERE dedupe_key = $1', [dedupeKey]);
      const original = Number(rows[0]?.id);
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
    ev.id = Number(ev.id);
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
      await tx.query(`UPDATE leaver_events SET outcome = $2 WHERE id = $1`, [ev.id, JSON.stringify({ message: 'no matching user' })]);
      return { eventId: ev.id, status, revokedOrders: [], cancelledOrders: [] };
    }
    if (status === 'scheduled') {
      const jobId = randomUUID();
      await deps.queue.send(tx, QueueName.LEAVER_EFFECTIVE, { eventId: ev.id }, { id: jobId, startAfter: effectiveAt! });
      await tx.query('UPDATE leaver_events SET job_id = $2 WHERE id = $1', [ev.id, jobId]);
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
  return result;
}

/**
 * Processes a scheduled event whose moment has come (the `leaver.effective` job). The person is resolved again,
 * since orders may have been placed since the event arrived. Does nothing for an event that is not scheduled.
 */
export async function processDueLeaverEvent(deps: LeaverDeps, eventId: number): Promise<LeaverOutcome | null> {
  const pre = await deps.db.query<EventRow>('SELECT id, identity FROM leaver_events WHERE id = $1', [eventId]);
  if (!pre.rows[0]) return null;
  const emails = await resolvePerson(deps.db, pre.rows[0].identity);
  const result = await deps.db.transaction(async (tx) => {
    await lockPeople(tx, emails);
    const { rows } = await tx.query<EventRow>(
      `SELECT id, source, identity, person_key, status, triggered_by, request_id FROM leaver_events WHERE id = $1 FOR UPDATE`,
      [eventId],
    );
    const ev = rows[0];
    if (!ev || ev.status !== 'scheduled') return null;
    ev.id = Number(ev.id);
    const out = await applyLeaver(tx, deps, ev, emails);
    await finishEvent(tx, ev, out);
    return { eventId: ev.id, status: 'processed' as const, revokedOrders: out.revokedOrders, cancelledOrders: out.cancelledOrders };
  });
  if (result) deps.logger.info('scheduled leaver event processed', { eventId, revoked: result.revokedOrders.length, cancelled: result.cancelledOrders.length });
  return result;
}

/** Works the `leaver.effective` queue in this process (registered at serve start). */
export async function registerLeaverWorker(deps: LeaverDeps): Promise<void> {
  await deps.queue.boss.work<{ eventId: number }>(QueueName.LEAVER_EFFECTIVE, async (jobs) => {
    for (const job of jobs) await processDueLeaverEvent(deps, Number(job.data.eventId));
  });
}

// --- admin view ------------------------------------------------------------------------------------------------

export interface LeaverEventOrderView {
  order_id: number;
  outcome: 'revoked' | 'cancelled' | 'superseded';
  order_status: string;
  deprovision_job_id: string | null;
  deprovision_job_state: string | null;
}

export interface LeaverEventView {
  id: number;
  source: LeaverSource;
  identity: LeaverIdentity;
  person_key: string | null;
  dedupe_key: string;
  effective_at: Date | null;
  status: 'processed' | 'scheduled' | 'no_matching_user';
  reason: string | null;
  outcome: Record<string, unknown>;
  triggered_by: string;
  created_at: Date;
  processed_at: Date | null;
  orders: LeaverEventOrderView[];
}

export interface LeaverEventFilter {
  source?: LeaverSource | undefined;
  status?: 'processed' | 'scheduled' | 'no_matching_user' | undefined;
  /** The matched person's email, or an email or employee id the event named. */
  person?: string | undefined;
}

/** Leaver events, newest first, each with its orders' outcomes and the state of their deprovision jobs. */
export async function listLeaverEvents(
  q: Queryable,
  filter: LeaverEventFilter,
  page: { limit: number; offset: number },
): Promise<{ items: LeaverEventView[]; total: number }> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.source) where.push(`source = $${params.push(filter.source)}`);
  if (filter.status) where.push(`status = $${params.push(filter.status)}`);
  if (filter.person) {
    const n = params.push(filter.person.trim().toLowerCase());
    const raw = params.push(filter.person.trim());
    where.push(`(person_key = $${n} OR identity->>'email' = $${n} OR identity->>'employeeId' = $${raw} OR identity->>'externalId' = $${raw})`);
  }
  const cond = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const total = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM leaver_events ${cond}`, params);
  const { rows } = await q.query<Omit<LeaverEventView, 'orders'>>(
    `SELECT id::int AS id, source, identity, person_key, dedupe_key, effective_at, status, reason, outcome, triggered_by, created_at, processed_at
       FROM leaver_events ${cond} ORDER BY id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, page.limit, page.offset],
  );
  const ids = rows.map((r) => r.id);
  const orders = ids.length
    ? (
        await q.query<LeaverEventOrderView & { event_id: number }>(
          // A job leaves pgboss.job for pgboss.archive once done and kept long enough; either place tells its state.
          `SELECT l.event_id::int AS event_id, l.order_id::int AS order_id, l.outcome, o.status AS order_status, l.deprovision_job_id,
                  coalesce(j.state::text, a.state::text) AS deprovision_job_state
             FROM leaver_event_orders l
             JOIN orders o ON o.id = l.order_id
             LEFT JOIN pgboss.job j ON j.name = $2 AND j.id = l.deprovision_job_id::uuid
             LEFT JOIN pgboss.archive a ON j.id IS NULL AND a.name = $2 AND a.id = l.deprovision_job_id::uuid
            WHERE l.event_id = ANY($1::bigint[])
            ORDER BY l.event_id, l.order_id`,
          [ids, QueueName.ORDER_DEPROVISION],
        )
      ).rows
    : [];
  const byEvent = new Map<number, LeaverEventOrderView[]>();
  for (const { event_id, ...o } of orders) {
    const list = byEvent.get(event_id) ?? [];
    list.push(o);
    byEvent.set(event_id, list);
  }
  return { items: rows.map((r) => ({ ...r, orders: byEvent.get(r.id) ?? [] })), total: total.rows[0]?.n ?? 0 };
}
