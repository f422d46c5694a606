import type { Queryable } from '../../../adapter';
import { queryPage, Where, type Page, type PageRequest } from '../paging';

// The outbox's SQL, all of it (adapter/db/migrations/020_outbox.sql has the table and why it is shaped so).

export type OutboxChannel = 'mail' | 'teams';
export type OutboxState = 'queued' | 'sending' | 'sent' | 'failed' | 'dead';

/** One outbox row. */
export interface OutboxItem {
  id: number;
  channel: OutboxChannel;
  template: string;
  to: string[];
  cc: string[];
  /** The template's data (never secrets, never rendered links). */
  data: Record<string, unknown>;
  state: OutboxState;
  /** Attempts made so far (a claim counts as one). */
  attempts: number;
  /** When the next attempt is due (queued); null once sent, failed or dead. */
  next_attempt_at: Date | null;
  /** Until when a worker's claim holds (sending). */
  locked_until: Date | null;
  last_error: string | null;
  last_error_code: string | null;
  /** The server's last reply: its acceptance when sent, its refusal when it refused. */
  server_response: string | null;
  message_id: string | null;
  triggered_by: string;
  request_id: string | null;
  created_at: Date;
  updated_at: Date;
  sent_at: Date | null;
}

interface OutboxRow extends Omit<OutboxItem, 'id' | 'to' | 'cc' | 'attempts'> {
  id: string | number;
  recipients_to: string[];
  recipients_cc: string[];
  attempts: number | string;
}

const COLUMNS = `id, channel, template, recipients_to, recipients_cc, data, state, attempts, next_attempt_at, locked_until,
  last_error, last_error_code, server_response, message_id, triggered_by, request_id, created_at, updated_at, sent_at`;

const date = (v: unknown): Date | null => (v === null || v === undefined ? null : v instanceof Date ? v : new Date(String(v)));

function toItem(r: OutboxRow): OutboxItem {
  return {
    id: Number(r.id),
    channel: r.channel,
    template: r.template,
    to: [...(r.recipients_to ?? [])],
    cc: [...(r.recipients_cc ?? [])],
    data: (typeof r.data === 'string' ? JSON.parse(r.data) : r.data) as Record<string, unknown>,
    state: r.state,
    attempts: Number(r.attempts),
    next_attempt_at: date(r.next_attempt_at),
    locked_until: date(r.locked_until),
    last_error: r.last_error,
    last_error_code: r.last_error_code,
    server_response: r.server_response,
    message_id: r.message_id,
    triggered_by: r.triggered_by,
    request_id: r.request_id,
    created_at: date(r.created_at)!,
    updated_at: date(r.updated_at)!,
    sent_at: date(r.sent_at),
  };
}

export interface NewOutboxItem {
  channel: OutboxChannel;
  template: string;
  to: readonly string[];
  cc: readonly string[];
  data: object;
  triggeredBy: string;
  requestId: string | undefined;
}

/** Inserts a queued row, due now; returns its id. */
export async function insertOutboxItem(q: Queryable, n: NewOutboxItem): Promise<number> {
  const { rows } = await q.query<{ id: string }>(
    `INSERT INTO outbox (channel, template, recipients_to, recipients_cc, data, state, next_attempt_at, triggered_by, request_id)
     VALUES ($1, $2, $3::text[], $4::text[], $5::jsonb, 'queued', now(), $6, $7) RETURNING id`,
    [n.channel, n.template, [...n.to], [...n.cc], JSON.stringify(n.data), n.triggeredBy, n.requestId ?? null],
  );
  return Number(rows[0]!.id);
}

export async function selectOutboxItem(q: Queryable, id: number): Promise<OutboxItem | undefined> {
  const { rows } = await q.query<OutboxRow>(`SELECT ${COLUMNS} FROM outbox WHERE id = $1`, [id]);
  return rows[0] ? toItem(rows[0]) : undefined;
}

/**
 * Claims rows for sending, in one statement: those of `ids` that are due (queued and `next_attempt_at` passed) or
 * whose previous claim expired. A row claimed elsewhere, sent, failed or dead is left out, which is what makes a job
 * delivered twice, or a job and the sweep, send a row once. Each claimed row counts an attempt.
 */
export async function claimOutboxItems(q: Queryable, ids: readonly number[], leaseSeconds: number): Promise<OutboxItem[]> {
  if (ids.length === 0) return [];
  const { rows } = await q.query<OutboxRow>(
    `UPDATE outbox SET state = 'sending', attempts = attempts + 1, locked_until = now() + make_interval(secs => $2),
            updated_at = now()
      WHERE id = ANY($1::bigint[])
        AND ((state = 'queued' AND next_attempt_at <= now()) OR (state = 'sending' AND locked_until < now()))
      RETURNING ${COLUMNS}`,
    [ids, leaseSeconds],
  );
  return rows.map(toItem).sort((a, b) => a.id - b.id);
}

/**
 * Claims up to `limit` rows that no job is going to send: queued rows overdue by more than `graceSeconds` (their
 * job was lost, or no worker has polled), and rows whose claim expired (their worker died between claiming and
 * recording the outcome). Skips rows another transaction holds.
 */
export async function claimStaleOutboxItems(q: Queryable, opts: { limit: number; graceSeconds: number; leaseSeconds: number }): Promise<OutboxItem[]> {
  const { rows } = await q.query<OutboxRow>(
    `UPDATE outbox SET state = 'sending', attempts = attempts + 1, locked_until = now() + make_interval(secs => $3),
            updated_at = now()
      WHERE id IN (
        SELECT id FROM outbox
         WHERE (state = 'queued' AND next_attempt_at <= now() - make_interval(secs => $2))
            OR (state = 'sending' AND locked_until < now())
         ORDER BY next_attempt_at, id
         LIMIT $1
         FOR UPDATE SKIP LOCKED)
      RETURNING ${COLUMNS}`,
    [opts.limit, opts.graceSeconds, opts.leaseSeconds],
  );
  return rows.map(toItem).sort((a, b) => a.id - b.id);
}

export interface OutboxDelivery {
  id: number;
  response: string;
  messageId: string | null;
}

/**
 * Records deliveries, any number in one statement (the errors of earlier attempts cleared). Only rows still claimed
 * are changed.
 */
export async function markOutboxSent(q: Queryable, sent: readonly OutboxDelivery[]): Promise<void> {
  if (sent.length === 0) return;
  await q.query(
    `UPDATE outbox o SET state = 'sent', sent_at = now(), server_response = v.response, message_id = v.message_id,
            last_error = NULL, last_error_code = NULL, next_attempt_at = NULL, locked_until = NULL, updated_at = now()
       FROM unnest($1::bigint[], $2::text[], $3::text[]) AS v(id, response, message_id)
      WHERE o.id = v.id AND o.state = 'sending'`,
    [sent.map((d) => d.id), sent.map((d) => d.response), sent.map((d) => d.messageId)],
  );
}

export interface OutboxFailure {
  error: string;
  code: string | null;
  response: string | null;
}

/** Records a failed attempt and when the next is due; returns that time (undefined when the row was not claimed). */
export async function markOutboxRetry(q: Queryable, id: number, f: OutboxFailure, delaySeconds: number): Promise<Date | undefined> {
  const { rows } = await q.query<{ next_attempt_at: Date }>(
    `UPDATE outbox SET state = 'queued', next_attempt_at = now() + make_interval(secs => $5), locked_until = NULL,
            last_error = $2, last_error_code = $3, server_response = COALESCE($4, server_response), updated_at = now()
      WHERE id = $1 AND state = 'sending'
      RETURNING next_attempt_at`,
    [id, f.error, f.code, f.response, delaySeconds],
  );
  return rows[0] ? date(rows[0].next_attempt_at)! : undefined;
}

/** Records the last failure of a row that will not be tried again by itself: `failed` (refused for good) or `dead`. */
export async function markOutboxFinal(q: Queryable, id: number, state: 'failed' | 'dead', f: OutboxFailure): Promise<void> {
  await q.query(
    `UPDATE outbox SET state = $2, next_attempt_at = NULL, locked_until = NULL, last_error = $3, last_error_code = $4,
            server_response = COALESCE($5, server_response), updated_at = now()
      WHERE id = $1 AND state = 'sending'`,
    [id, state, f.error, f.code, f.response],
  );
}

/** The row locked, for a change that depends on its state. */
export async function lockOutboxItem(q: Queryable, id: number): Promise<OutboxItem | undefined> {
  const { rows } = await q.query<OutboxRow>(`SELECT ${COLUMNS} FROM outbox WHERE id = $1 FOR UPDATE`, [id]);
  return rows[0] ? toItem(rows[0]) : undefined;
}

/** A failed or dead row back to queued, due now, with a fresh count of attempts; its last error is kept. */
export async function requeueOutboxItem(q: Queryable, id: number): Promise<OutboxItem> {
  const { rows } = await q.query<OutboxRow>(
    `UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = now(), locked_until = NULL, updated_at = now()
      WHERE id = $1 RETURNING ${COLUMNS}`,
    [id],
  );
  return toItem(rows[0]!);
}

export interface OutboxFilter {
  state?: OutboxState | undefined;
  template?: string | undefined;
  channel?: OutboxChannel | undefined;
}

/** One page of rows matching the filters, newest first. */
export async function listOutboxItems(q: Queryable, filter: OutboxFilter, page: PageRequest): Promise<Page<OutboxItem>> {
  const where = new Where();
  if (filter.state) where.and('state = ?', filter.state);
  if (filter.template) where.and('template = ?', filter.template);
  if (filter.channel) where.and('channel = ?', filter.channel);
  const result = await queryPage<OutboxRow>(q, { select: `SELECT ${COLUMNS} FROM outbox`, countFrom: 'outbox', where, orderBy: 'id DESC' }, page);
  return { items: result.items.map(toItem), total: result.total };
}
