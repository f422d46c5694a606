import type { Queryable } from './database';

/** Who makes a change, for the audit row. */
export interface Actor {
  /** `attribution(channel, principal)`, e.g. `admin:token:ops` or `system:demo`. */
  triggeredBy: string;
  requestId?: string | undefined;
}


export interface AuditEntry {
  entity: string;
  entityId: string | number | null;
  action: string;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
  /** `<channel>:<credential>`, e.g. `webhook:token:snow-prod` or `system:api-token-purge-daily`. */
  triggeredBy: string;
  requestId?: string | undefined;
}

// Field names whose values are secrets: they are dropped from audit diffs entirely (not even masked),
// so a diff never proves what a secret was.
const SECRET_FIELD = /pass(word)?|secret|token_hash|^token$|private_key|api_key|client_secret|refresh_token|access_token/i;

/** A copy without secret-named fields, at any depth. */
export function stripSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  // A Date has no own enumerable fields: copied like an object it would be audited as {}.
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => stripSecrets(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (!SECRET_FIELD.test(k)) out[k] = stripSecrets(v, depth + 1);
  }
  return out;
}

/** Only the fields that changed between `before` and `after` (both sides kept for those fields). */
function diffOf(before: Record<string, unknown> | null | undefined, after: Record<string, unknown> | null | undefined) {
  if (!before || !after) return { before: before ?? null, after: after ?? null };
  const b: Record<string, unknown> = {};
  const a: Record<string, unknown> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (k === 'updated_at') continue;
    if (JSON.stringify(before[k]) !== JSON.stringify(after[k])) {
      b[k] = before[k] ?? null;
      a[k] = after[k] ?? null;
    }
  }
  return { before: b, after: a };
}

/**
 * Appends one audit row inside the caller's transaction, so the row exists exactly when the change does.
 * Secret fields never reach the table.
 */
export async function writeAudit(tx: Queryable, e: AuditEntry): Promise<void> {
  await tx.query(`INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)`, auditValues(e));
}

/** The columns auditValues fills, in its order. */
export const AUDIT_COLUMNS = 'entity, entity_id, action, diff, triggered_by, request_id';

/**
 * The values of `e`'s audit row (secrets stripped, as writeAudit writes them), for a statement that inserts the row
 * together with the change it records: one statement is one transaction, so the row still exists exactly when the
 * change does.
 */
export function auditValues(e: AuditEntry): unknown[] {
  const diff = stripSecrets(diffOf(e.before, e.after));
  return [e.entity, e.entityId === null ? null : String(e.entityId), e.action, JSON.stringify(diff), e.triggeredBy, e.requestId ?? null];
}
