import type { RequestHandler } from 'express';
import type { Database, Logger, Queryable } from '../../adapter';

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
      const principal = req.principal;
      const scim = res.locals['scimError'] as { scimType?: string; detail?: string } | undefined;
      db.query(
        `INSERT INTO scim_request_log (method, path, status, scim_type, detail, token_name, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [method, path.slice(0, 500), res.statusCode, scim?.scimType ?? null, scim?.detail?.slice(0, 500) ?? null,
          principal?.kind === 'token' ? principal.name : principal ? principal.kind : null, (res.locals['requestId'] as string | undefined) ?? null],
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
