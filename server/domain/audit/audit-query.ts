import type { Queryable } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import type { Stored } from '../../api/spec-types';
import { badRequest } from '../../errors';
import { queryPage, Where, type Page, type PageRequest } from '../paging';

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

/** An `audit_log` row: the API's audit entry with `at` as a `Date`. */
export type AuditRecord = Stored<Api.AuditEntry, 'at'>;

// LIKE treats % and _ as wildcards; a literal prefix must escape them (and the escape character).
const likePrefix = (prefix: string) => `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

function whereOf(f: AuditFilter): Where {
  const where = new Where();
  if (f.entity !== undefined) where.and('entity = ?', f.entity);
  if (f.entityId !== undefined) where.and('entity_id = ?', f.entityId);
  if (f.actor !== undefined) {
    if (f.actor.endsWith('*')) where.and(`triggered_by LIKE ? ESCAPE '\\'`, likePrefix(f.actor.slice(0, -1)));
    else where.and('triggered_by = ?', f.actor);
  }
  if (f.action !== undefined) where.and('action = ?', f.action);
  if (f.from !== undefined) where.and('at >= ?', f.from);
  if (f.to !== undefined) where.and('at < ?', f.to);
  return where;
}

/**
 * One page of audit rows matching `filter`, newest first, and how many match in all.
 * Throws BAD_REQUEST when `from` is not before `to`.
 */
export async function queryAudit(q: Queryable, filter: AuditFilter, page: PageRequest): Promise<Page<AuditRecord>> {
  if (filter.from && filter.to && filter.from.getTime() >= filter.to.getTime()) {
    throw badRequest('from must be before to', [{ path: '/query/to', message: 'must be after from' }]);
  }
  return queryPage<AuditRecord>(
    q,
    {
      select: 'SELECT id, at, entity, entity_id, action, diff, triggered_by, request_id FROM audit_log',
      countFrom: 'audit_log',
      where: whereOf(filter),
      orderBy: 'at DESC, id DESC',
    },
    page,
  );
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
