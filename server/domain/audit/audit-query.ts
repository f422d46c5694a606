import type { Queryable } from '../../../adapter';
import { badRequest } from '../../errors';

/** Filters of `GET /admin/audit`; every one optional, all combined with AND. */
export interface AuditFilter {
  entity?: string | undefined;
  entityId?: string | undefined;
  /** `triggered_by` exactly, or a prefix when it ends in `*`. */
  actor?: string | undefined;
  action?: string | undefined;
  /** Inclusive lower bound on `at`. */
  from?: Date | undefined;
  /** Exclusive upper bound on `at`. */
  to?: Date | undefined;
}

export interface AuditRecord {
  id: number;
  at: Date;
  entity: string;
  entity_id: string | null;
  action: string;
  diff: Record<string, unknown>;
  triggered_by: string;
  request_id: string | null;
}

// LIKE treats % and _ as wildcards; a literal prefix must escape them (and the escape character).
const likePrefix = (prefix: string) => `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

function whereOf(f: AuditFilter): { sql: string; params: unknown[] } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    params.push(value);
    clauses.push(clause.replace('?', `$${params.length}`));
  };
  if (f.entity !== undefined) add('entity = ?', f.entity);
  if (f.entityId !== undefined) add('entity_id = ?', f.entityId);
  if (f.actor !== undefined) {
    if (f.actor.endsWith('*')) add(`triggered_by LIKE ? ESCAPE '\\'`, likePrefix(f.actor.slice(0, -1)));
    else add('triggered_by = ?', f.actor);
  }
  if (f.action !== undefined) add('action = ?', f.action);
  if (f.from !== undefined) add('at >= ?', f.from);
  if (f.to !== undefined) add('at < ?', f.to);
  return { sql: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
}

/**
 * One page of audit rows matching `filter`, newest first, and how many match in all.
 * Throws BAD_REQUEST when `from` is not before `to`.
 */
export async function queryAudit(
  q: Queryable,
  filter: AuditFilter,
  page: { limit: number; offset: number },
): Promise<{ items: AuditRecord[]; total: number }> {
  if (filter.from && filter.to && filter.from.getTime() >= filter.to.getTime()) {
    throw badRequest('from must be before to', [{ path: '/query/to', message: 'must be after from' }]);
  }
  const { sql, params } = whereOf(filter);
  const n = params.length;
  const { rows } = await q.query<AuditRecord>(
    `SELECT id, at, entity, entity_id, action, diff, triggered_by, request_id FROM audit_log ${sql}
      ORDER BY at DESC, id DESC LIMIT $${n + 1} OFFSET $${n + 2}`,
    [...params, page.limit, page.offset],
  );
  const count = await q.query<{ total: number }>(`SELECT count(*)::int AS total FROM audit_log ${sql}`, params);
  return { items: rows, total: count.rows[0]?.total ?? 0 };
}

export const AUDIT_CSV_COLUMNS = ['id', 'at', 'entity', 'entity_id', 'action', 'triggered_by', 'request_id', 'diff'] as const;

/** One CSV field per RFC 4180: quoted when it holds a comma, quote, CR or LF; quotes doubled. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Audit rows as RFC 4180 CSV with a header row and CRLF line ends; the diff is one JSON column. */
export function auditToCsv(rows: readonly AuditRecord[]): string {
  const lines = [AUDIT_CSV_COLUMNS.join(',')];
  for (const r of rows) {
    lines.push(
      [String(r.id), r.at.toISOString(), r.entity, r.entity_id ?? '', r.action, r.triggered_by, r.request_id ?? '', JSON.stringify(r.diff)]
        .map(csvField)
        .join(','),
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}
