import { QueueName, type Queryable } from '../../../adapter';
import type { OrderStatus } from '../orders/order-status';
import { queryPage, Where, type PageRequest } from '../paging';

/*
 * The leaver flow's SQL: leaver events and the orders they took back, the person lookups behind them, and the
 * per-person lock. Parameterised statements only; the flow (leaver.ts) decides, this module reads and writes.
 */

export type LeaverSource = 'scim' | 'workday' | 'successfactors' | 'graph' | 'native';
export type LeaverEventStatus = 'processed' | 'scheduled' | 'no_matching_user';
export type LeaverOrderOutcome = 'revoked' | 'cancelled' | 'superseded';

export interface LeaverIdentity {
  email?: string | null;
  userName?: string | null;
  externalId?: string | null;
  employeeId?: string | null;
}

/** A `leaver_events` row as the flow works with it. */
export interface EventRow {
  id: number;
  source: LeaverSource;
  identity: LeaverIdentity;
  person_key: string | null;
  status: LeaverEventStatus;
  triggered_by: string;
  request_id: string | null;
}

const EVENT_COLUMNS = 'id, source, identity, person_key, status, triggered_by, request_id';
const toEvent = (r: EventRow): EventRow => ({ ...r, id: Number(r.id) });

/** True when the SCIM users table (the SCIM feature's migration) exists in this database. */
async function hasScimUsers(q: Queryable): Promise<boolean> {
  const { rows } = await q.query<{ present: boolean }>(`SELECT to_regclass('scim_users') IS NOT NULL AS present`);
  return rows[0]?.present === true;
}

/**
 * The addresses among `emails` that hold or held an order or are to decide a pending approval, and the requesters
 * whose snapshot carries one of `employeeIds`.
 */
export async function selectKnownEmails(q: Queryable, emails: readonly string[], employeeIds: readonly string[]): Promise<string[]> {
  const { rows } = await q.query<{ user_email: string }>(
    `SELECT DISTINCT user_email FROM orders WHERE user_email = ANY($1::text[])
     UNION SELECT DISTINCT user_email FROM orders WHERE requester_employee_id = ANY($2::text[])
     UNION SELECT DISTINCT approver_email FROM approvals WHERE approver_email = ANY($1::text[]) AND status = 'pending'`,
    [emails, employeeIds],
  );
  return rows.map((r) => r.user_email);
}

/**
 * SCIM users (at most 50) matching a userName (lower-cased), an externalId or employee number, or an email; empty
 * when this database has no SCIM users table.
 */
export async function selectScimUsersMatching(
  q: Queryable,
  m: { userNames: readonly string[]; ids: readonly string[]; emails: readonly string[] },
): Promise<{ user_name: string; emails: { value?: unknown }[] | null }[]> {
  if (!(await hasScimUsers(q))) return [];
  // Each branch is an index lookup (lower(user_name), external_id, employee_number, emails GIN).
  const emailDocs = m.emails.map((e) => JSON.stringify([{ value: e }]));
  const byEmail = emailDocs.map((_, i) => `UNION SELECT user_name, emails FROM scim_users WHERE emails @> $${i + 3}::jsonb`).join('\n');
  const { rows } = await q.query<{ user_name: string; emails: { value?: unknown }[] | null }>(
    `SELECT user_name, emails FROM scim_users WHERE lower(user_name) = ANY($1::text[])
     UNION SELECT user_name, emails FROM scim_users WHERE external_id = ANY($2::text[])
     UNION SELECT user_name, emails FROM scim_users WHERE employee_number = ANY($2::text[])
     ${byEmail}
     LIMIT 50`,
    [m.userNames, m.ids, ...emailDocs],
  );
  return rows;
}

/** Takes each person's leaver lock (transaction-scoped). */
export async function lockPeople(tx: Queryable, emails: readonly string[]): Promise<void> {
  // Sorted, so two events naming overlapping sets of addresses take their locks in one order and cannot deadlock.
  for (const e of [...emails].sort()) {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('leaver:' || lower($1::text), 0))`, [e]);
  }
}

/** What one leaver event's take-back did to one order of the person's. */
export interface TakenBackOrder {
  id: number;
  /** The status the order was in when it was locked. */
  from: OrderStatus;
  /** `revoked` or `cancelled`; null for an order left alone (already `deprovisioning`: its own job takes it back). */
  to: OrderStatus | null;
  /** The `order.deprovision` job of a revoked order. */
  jobId: string | null;
}

/**
 * Takes back every provision order of `emails` in one of `touched`, in one statement (one round trip whatever the
 * number of orders: a person may hold thousands). Inside the caller's transaction, under the person's lock:
 * - the orders are locked (`FOR UPDATE`, id order, as every transition locks its row);
 * - those in `cancelFrom` move to `cancelled` with `cancelError`, the others (except `deprovisioning`, left to the
 *   job already taking them back) to `revoked`, clearing a `failed` order's error as a transition out of `failed`
 *   does; the caller has checked that the transition table allows these moves;
 * - each move is audited as `transitionOrder` audits it (entity `order`, action `transition`, only the fields that
 *   changed), and each revoked order's job dispatch as `deprovision_dispatched`, in one INSERT … SELECT, in id order;
 * - each revoked order gets its `order.deprovision` job ({orderId, reason 'leaver', policy, leaverEventId}: what
 *   `queue.send` wrote before) through `provisio_enqueue_job` (migration 014), which writes the row pg-boss writes;
 * - what the event did to each moved order is recorded in `leaver_event_orders` (its partial unique index refuses an
 *   order a second revocation or cancellation, as before).
 */
export async function takeBackOrdersOf(
  tx: Queryable,
  p: {
    emails: readonly string[];
    touched: readonly OrderStatus[];
    cancelFrom: readonly OrderStatus[];
    cancelError: string;
    eventId: number;
    triggeredBy: string;
    requestId: string | null;
  },
): Promise<TakenBackOrder[]> {
  const { rows } = await tx.query<{ id: string | number; from_status: OrderStatus; to_status: OrderStatus | null; job_id: string | null }>(
    `WITH locked AS (
       SELECT o.id, o.status, o.error_message, t.deprovision_policy
         FROM orders o JOIN asset_types t ON t.id = o.asset_type_id
        WHERE o.user_email = ANY($1::text[]) AND o.action = 'provision' AND o.status = ANY($2::text[])
        ORDER BY o.id
        FOR UPDATE OF o
     ),
     moved AS (
       UPDATE orders o
          SET status = CASE WHEN l.status = ANY($3::text[]) THEN 'cancelled' ELSE 'revoked' END,
              error_message = CASE WHEN l.status = ANY($3::text[]) THEN $4::text
                                   WHEN l.status = 'failed' THEN NULL
                                   ELSE l.error_message END,
              updated_at = now()
         FROM locked l
        WHERE o.id = l.id AND l.status <> 'deprovisioning'
       RETURNING o.id, l.status AS from_status, l.error_message AS from_error, o.status AS to_status,
                 o.error_message AS to_error, l.deprovision_policy AS policy
     ),
     -- A CTE calling a volatile function is evaluated once per row and never inlined; the joins below read it whole.
     queued AS (
       SELECT m.id, provisio_enqueue_job($8::text, NULL,
                jsonb_build_object('orderId', m.id, 'reason', 'leaver', 'policy', m.policy, 'leaverEventId', $7::bigint),
                NULL)::text AS job_id
         FROM moved m WHERE m.to_status = 'revoked'
     ),
     audited AS (
       INSERT INTO audit_log (entity, entity_id, action, diff, triggered_by, request_id)
       SELECT 'order', a.id::text, a.action, a.diff, $5::text, $6::text
         FROM (
           SELECT m.id, 1 AS n, 'transition' AS action,
                  jsonb_build_object(
                    'before', jsonb_build_object('status', m.from_status)
                              || CASE WHEN m.from_error IS DISTINCT FROM m.to_error THEN jsonb_build_object('error_message', m.from_error) ELSE '{}'::jsonb END,
                    'after', jsonb_build_object('status', m.to_status)
                              || CASE WHEN m.from_error IS DISTINCT FROM m.to_error THEN jsonb_build_object('error_message', m.to_error) ELSE '{}'::jsonb END
                  ) AS diff
             FROM moved m
           UNION ALL
           SELECT q.id, 2, 'deprovision_dispatched',
                  jsonb_build_object('before', NULL, 'after',
                    jsonb_build_object('job_id', q.job_id, 'reason', 'leaver', 'policy', m.policy, 'leaver_event_id', $7::bigint))
             FROM queued q JOIN moved m ON m.id = q.id
         ) a
        ORDER BY a.id, a.n
     ),
     linked AS (
       INSERT INTO leaver_event_orders (event_id, order_id, outcome, deprovision_job_id)
       SELECT $7::bigint, m.id, m.to_status, q.job_id FROM moved m LEFT JOIN queued q ON q.id = m.id
     )
     SELECT l.id, l.status AS from_status, m.to_status, q.job_id
       FROM locked l LEFT JOIN moved m ON m.id = l.id LEFT JOIN queued q ON q.id = l.id
      ORDER BY l.id`,
    [p.emails, p.touched, p.cancelFrom, p.cancelError, p.triggeredBy, p.requestId, p.eventId, QueueName.ORDER_DEPROVISION],
  );
  return rows.map((r) => ({ id: Number(r.id), from: r.from_status, to: r.to_status, jobId: r.job_id }));
}

/** Records what the event did to each order, in one statement; the partial unique index refuses an order a second revocation or cancellation. */
export async function insertEventOrders(
  tx: Queryable,
  eventId: number,
  links: readonly { orderId: number; outcome: LeaverOrderOutcome; jobId: string | null }[],
): Promise<void> {
  await tx.query(
    `INSERT INTO leaver_event_orders (event_id, order_id, outcome, deprovision_job_id)
     SELECT $1, o, x, j FROM unnest($2::bigint[], $3::text[], $4::text[]) AS u(o, x, j)`,
    [eventId, links.map((l) => l.orderId), links.map((l) => l.outcome), links.map((l) => l.jobId)],
  );
}

/**
 * Records a new event; undefined when its dedupe key is taken (a concurrent delivery with the same key waits for the
 * first one's commit, then inserts nothing). A scheduled event is not processed yet; any other is, now.
 */
export async function insertEvent(
  tx: Queryable,
  e: {
    source: LeaverSource;
    identity: LeaverIdentity;
    personKey: string | null;
    dedupeKey: string;
    effectiveAt: Date | null;
    status: LeaverEventStatus;
    reason: string | null;
    triggeredBy: string;
    requestId: string | null;
  },
): Promise<EventRow | undefined> {
  const { rows } = await tx.query<EventRow>(
    `INSERT INTO leaver_events (source, identity, person_key, dedupe_key, effective_at, status, reason, triggered_by, request_id,
                                processed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $6 = 'scheduled' THEN NULL ELSE now() END)
     ON CONFLICT (dedupe_key) DO NOTHING
     RETURNING ${EVENT_COLUMNS}`,
    [e.source, JSON.stringify(e.identity), e.personKey, e.dedupeKey, e.effectiveAt, e.status, e.reason, e.triggeredBy, e.requestId],
  );
  return rows[0] ? toEvent(rows[0]) : undefined;
}

/** The id of the event recorded under `dedupeKey`. */
export async function selectEventIdByDedupeKey(q: Queryable, dedupeKey: string): Promise<number> {
  const { rows } = await q.query<{ id: string | number }>('SELECT id FROM leaver_events WHERE dedupe_key = $1', [dedupeKey]);
  return Number(rows[0]?.id);
}

/** The identity an event named; undefined for an unknown event. */
export async function selectEventIdentity(q: Queryable, eventId: number): Promise<LeaverIdentity | undefined> {
  const { rows } = await q.query<{ identity: LeaverIdentity }>('SELECT identity FROM leaver_events WHERE id = $1', [eventId]);
  return rows[0]?.identity;
}

/** The event, locked; undefined for an unknown one. */
export async function lockEvent(tx: Queryable, eventId: number): Promise<EventRow | undefined> {
  const { rows } = await tx.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM leaver_events WHERE id = $1 FOR UPDATE`, [eventId]);
  return rows[0] ? toEvent(rows[0]) : undefined;
}

export async function setEventOutcome(tx: Queryable, eventId: number, outcome: object): Promise<void> {
  await tx.query(`UPDATE leaver_events SET outcome = $2 WHERE id = $1`, [eventId, JSON.stringify(outcome)]);
}

export async function setEventJob(tx: Queryable, eventId: number, jobId: string): Promise<void> {
  await tx.query('UPDATE leaver_events SET job_id = $2 WHERE id = $1', [eventId, jobId]);
}

export async function markEventProcessed(tx: Queryable, eventId: number, outcome: object): Promise<void> {
  await tx.query(`UPDATE leaver_events SET status = 'processed', outcome = $2, processed_at = now() WHERE id = $1`, [eventId, JSON.stringify(outcome)]);
}

// --- admin view ------------------------------------------------------------------------------------------------

export interface LeaverEventOrderView {
  order_id: number;
  outcome: LeaverOrderOutcome;
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
  status: LeaverEventStatus;
  reason: string | null;
  outcome: Record<string, unknown>;
  triggered_by: string;
  created_at: Date;
  processed_at: Date | null;
  orders: LeaverEventOrderView[];
}

export interface LeaverEventFilter {
  source?: LeaverSource | undefined;
  status?: LeaverEventStatus | undefined;
  /** The matched person's email, or an email or employee id the event named. */
  person?: string | undefined;
}

/** Leaver events, newest first, each with its orders' outcomes and the state of their deprovision jobs. */
export async function selectLeaverEvents(
  q: Queryable,
  filter: LeaverEventFilter,
  page: PageRequest,
): Promise<{ items: LeaverEventView[]; total: number }> {
  const where = new Where();
  if (filter.source) where.and('source = ?', filter.source);
  if (filter.status) where.and('status = ?', filter.status);
  if (filter.person) {
    const n = where.param(filter.person.trim().toLowerCase());
    const raw = where.param(filter.person.trim());
    where.and(`(person_key = ${n} OR identity->>'email' = ${n} OR identity->>'employeeId' = ${raw} OR identity->>'externalId' = ${raw})`);
  }
  const { items: rows, total } = await queryPage<Omit<LeaverEventView, 'orders'>>(
    q,
    {
      select: `SELECT id::int AS id, source, identity, person_key, dedupe_key, effective_at, status, reason, outcome, triggered_by,
          created_at, processed_at FROM leaver_events`,
      countFrom: 'leaver_events',
      where,
      orderBy: 'id DESC',
    },
    page,
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
  return { items: rows.map((r) => ({ ...r, orders: byEvent.get(r.id) ?? [] })), total };
}
