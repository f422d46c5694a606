import { countScimRequest } from '../../adapter';
import type { RequestHandler } from 'express';
import { QueueName, type Database, type JobQueue, type Logger, type Queryable } from '../../adapter';
import { writeAudit } from '../../adapter';
import { readSetting, SCIM_LOG_RETENTION_DEFAULT_DAYS } from '../domain/settings/settings';
import { storableText } from '../http/text';

// The SCIM request log: what each IdP call got (never bodies or credentials), for admins reading an IdP's error.

/** One SCIM request log row, made storable when the response finished. */
interface LogEntry {
  method: string;
  path: string;
  status: number;
  scimType: string | null;
  detail: string | null;
  tokenName: string | null;
  requestId: string | null;
  at: Date;
}

// One statement text whatever the batch size (arrays, not a VALUES list per size), so PostgreSQL prepares it once.
const INSERT_BATCH = `INSERT INTO scim_request_log (method, path, status, scim_type, detail, token_name, request_id, at)
  SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])`;
const INSERT_ONE = `INSERT INTO scim_request_log (method, path, status, scim_type, detail, token_name, request_id, at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`;

export interface ScimRequestLogOptions {
  /** How long the first entry of a batch waits for others before the batch is written (default 50 ms). */
  flushAfterMs?: number;
  /** A batch this large is written at once (default 200). */
  maxBatch?: number;
}

/**
 * The SCIM request log's writer. Writing one row per request cost every SCIM request a round trip of its own (on
 * PGlite, a turn of the one session every request also needs); entries are buffered instead and written as one
 * INSERT per batch: after `flushAfterMs`, or at once when `maxBatch` are waiting. Nothing is lost on the way: a batch
 * that fails is written again row by row (so one bad row costs only itself, with a warning), and `close`, called by
 * the process's shutdown after the server stopped taking requests, writes what is still buffered.
 */
export class ScimRequestLog {
  readonly #db: Queryable;
  readonly #logger: Logger;
  readonly #flushAfterMs: number;
  readonly #maxBatch: number;
  #buffer: LogEntry[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #writing = new Set<Promise<void>>();

  constructor(db: Queryable, logger: Logger, opts: ScimRequestLogOptions = {}) {
    this.#db = db;
    this.#logger = logger;
    this.#flushAfterMs = opts.flushAfterMs ?? 50;
    this.#maxBatch = opts.maxBatch ?? 200;
  }

  /** Entries buffered, not yet written. */
  get pending(): number {
    return this.#buffer.length;
  }

  add(entry: LogEntry): void {
    this.#buffer.push(entry);
    if (this.#buffer.length >= this.#maxBatch) void this.flush();
    // unref: a pending batch never keeps a process alive; shutdown writes it through close().
    else this.#timer ??= setTimeout(() => void this.flush(), this.#flushAfterMs).unref();
  }

  /** Writes what is buffered now; resolves when every write started so far has finished. */
  async flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#buffer;
    this.#buffer = [];
    if (batch.length > 0) {
      const w = this.#write(batch).finally(() => this.#writing.delete(w));
      this.#writing.add(w);
    }
    await Promise.all([...this.#writing]);
  }

  /** For shutdown, after the server closed: writes every entry still buffered. */
  async close(): Promise<void> {
    while (this.#buffer.length > 0 || this.#writing.size > 0) await this.flush();
  }

  async #write(batch: LogEntry[]): Promise<void> {
    try {
      await this.#db.query(INSERT_BATCH, [
        batch.map((e) => e.method), batch.map((e) => e.path), batch.map((e) => e.status), batch.map((e) => e.scimType),
        batch.map((e) => e.detail), batch.map((e) => e.tokenName), batch.map((e) => e.requestId),
        // ISO text, not Dates: both drivers turn a text[] into an array alike.
        batch.map((e) => e.at.toISOString()),
      ]);
    } catch (err) {
      this.#logger.warn('scim request log batch write failed; writing its rows one by one', { rows: batch.length, err: String(err) });
      for (const e of batch) {
        await this.#db
          .query(INSERT_ONE, [e.method, e.path, e.status, e.scimType, e.detail, e.tokenName, e.requestId, e.at])
          .catch((err1: unknown) => this.#logger.warn('scim request log write failed', { err: String(err1) }));
      }
    }
  }
}

/**
 * Mounted before authentication on the whole app: strips a trailing slash from /scim/v2 paths (Microsoft's
 * collection sends `/Users/?filter=`), and records every /scim request when its response is finished, through `log`
 * (a ScimRequestLog of its own over `db` when none is given).
 */
export function scimEdge(db: Queryable, logger: Logger, log: ScimRequestLog = new ScimRequestLog(db, logger)): RequestHandler {
  return (req, res, next) => {
    if (!req.path.startsWith('/scim/')) return next();
    const q = req.url.indexOf('?');
    const p = q < 0 ? req.url : req.url.slice(0, q);
    if (p.length > 1 && p.endsWith('/')) req.url = p.replace(/\/+$/, '') + (q < 0 ? '' : req.url.slice(q));
    const method = req.method;
    const path = req.path;
    res.on('finish', () => {
      countScimRequest(req.operation?.operationId ?? 'unknown', res.statusCode);
      const principal = req.principal;
      const scim = res.locals['scimError'] as { scimType?: string; detail?: string } | undefined;
      const requestId = res.locals['requestId'] as string | undefined;
      // The detail may quote the request (a NUL in an id, a cut-off surrogate pair): made storable, so the
      // requests most worth reading are never the ones missing from the log.
      log.add({
        method: storableText(method, 16),
        path: storableText(path, 500),
        status: res.statusCode,
        scimType: scim?.scimType ?? null,
        detail: scim?.detail === undefined ? null : storableText(scim.detail, 500),
        tokenName: principal?.kind === 'token' ? principal.name : principal ? principal.kind : null,
        requestId: requestId === undefined ? null : storableText(requestId, 128),
        // When the response finished, not when its batch was written: the log's order is the requests' order.
        at: new Date(),
      });
    });
    next();
  };
}

export interface ScimLogQuery {
  status?: number | undefined;
  limit?: number | undefined;
  offset?: number | undefined;
}

export async function listScimLogs(q: Queryable, query: ScimLogQuery) {
  const params: unknown[] = [query.status ?? null];
  const where = `($1::int IS NULL OR status = $1::int)`;
  const total = Number((await q.query<{ n: string }>(`SELECT count(*) AS n FROM scim_request_log WHERE ${where}`, params)).rows[0]!.n);
  const { rows } = await q.query<{ id: string; method: string; path: string; status: number; scim_type: string | null; detail: string | null; token_name: string | null; request_id: string | null; at: Date }>(
    `SELECT id, method, path, status, scim_type, detail, token_name, request_id, at FROM scim_request_log WHERE ${where}
      ORDER BY at DESC, id DESC LIMIT $2 OFFSET $3`,
    [...params, query.limit ?? 50, query.offset ?? 0],
  );
  return { items: rows.map((r) => ({ ...r, id: Number(r.id), at: new Date(r.at).toISOString() })), total };
}

/** `triggered_by` of the purge's audit row. */
export const SCIM_LOG_PURGE_TRIGGER = `system:${QueueName.SCIM_LOG_PURGE}`;

/**
 * Deletes SCIM request log entries older than `scim.request_log_retention_days` (default
 * SCIM_LOG_RETENTION_DEFAULT_DAYS; 0 keeps them forever), with one audit row saying how many and up to when.
 */
export async function purgeScimRequestLog(db: Database, now: Date = new Date()): Promise<{ deleted: number; cutoff: Date | null }> {
  return db.transaction(async (tx) => {
    const setting = await readSetting(tx, 'scim', 'request_log_retention_days');
    const days = typeof setting === 'number' ? setting : SCIM_LOG_RETENTION_DEFAULT_DAYS;
    if (days <= 0) return { deleted: 0, cutoff: null };
    const cutoff = new Date(now.getTime() - days * 86_400_000);
    const { rowCount } = await tx.query('DELETE FROM scim_request_log WHERE at < $1', [cutoff]);
    if (rowCount > 0) {
      await writeAudit(tx, {
        entity: 'scim_request_log',
        entityId: null,
        action: 'purge',
        after: { deleted: rowCount, older_than: cutoff.toISOString(), retention_days: days },
        triggeredBy: SCIM_LOG_PURGE_TRIGGER,
      });
    }
    return { deleted: rowCount, cutoff };
  });
}

/** Schedules the daily purge and works its jobs in this process. */
export async function registerScimLogPurge(queue: JobQueue, db: Database, logger: Logger): Promise<void> {
  // Daily at 03:47 UTC, apart from the token purge.
  await queue.recurring(QueueName.SCIM_LOG_PURGE, '47 3 * * *', async () => {
    const { deleted, cutoff } = await purgeScimRequestLog(db);
    if (deleted) logger.info('SCIM request log purged', { deleted, older_than: cutoff?.toISOString() });
  });
}
