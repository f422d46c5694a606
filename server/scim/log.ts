import { countScimRequest } from '../../adapter';
import type { RequestHandler } from 'express';
import { QueueName, type Database, type JobQueue, type Logger, type Queryable } from '../../adapter';
import { writeAudit } from '../../adapter';
import { readSetting, SCIM_LOG_RETENTION_DEFAULT_DAYS } from '../domain/settings/settings';
import { storableText } from '../http/text';

// The SCIM request log: what each IdP call got (never bodies or credentials), for admins reading an IdP's error.

/**
 * Mounted before authentication on the whole app: strips a trailing slash from /scim/v2 paths (Microsoft's
 * collection sends `/Users/?filter=`), and records every /scim request when its response is finished.
 */
export function scimEdge(db: Database, logger: Logger): RequestHandler {
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
      db.query(
        `INSERT INTO scim_request_log (method, path, status, scim_type, detail, token_name, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [storableText(method, 16), storableText(path, 500), res.statusCode, scim?.scimType ?? null,
          scim?.detail === undefined ? null : storableText(scim.detail, 500),
          principal?.kind === 'token' ? principal.name : principal ? principal.kind : null, requestId === undefined ? null : storableText(requestId, 128)],
      ).catch((err: unknown) => logger.warn('scim request log write failed', { err: String(err) }));
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
