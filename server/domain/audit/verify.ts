import type { Database, Queryable } from '../../../adapter';

/*
 * Verifying the audit chain (migration 026): every audit row is linked, at commit, into one hash chain in
 * `audit_chain`. Walking it in order and recomputing each hash in SQL (`audit_row_hash`, the function the linking
 * trigger uses) finds the first place where the log no longer is what was committed.
 */

/** The hash the first link names as its predecessor. */
export const GENESIS_HASH = '0'.repeat(64);

/** Why the chain breaks at a row. */
export type ChainBreakKind =
  /** The row's content (or its stored hash) no longer hashes to what was linked: it was changed. */
  | 'hash_mismatch'
  /** A link names an audit row that no longer exists: the row was deleted. */
  | 'row_missing'
  /** A link's predecessor is not the link before it: links (and their rows) were removed or reordered. */
  | 'predecessor_missing'
  /** An audit row no link names: it was inserted behind the triggers' back. */
  | 'not_in_chain';

export interface ChainBreak {
  kind: ChainBreakKind;
  /** The audit row (`audit_log.id`) where the chain breaks. */
  auditId: number;
  /** The link's position in the chain; null for a row not in the chain. */
  seq: number | null;
  /** What differs, in words (hashes, never the row's content). */
  detail: string;
}

export type ChainReport =
  | { intact: true; rows: number; head: string }
  | { intact: false; rows: number; checked: number; broken: ChainBreak };

interface LinkRow {
  seq: string;
  audit_id: string;
  prev_hash: string;
  hash: string;
  present: boolean;
  recomputed: string | null;
}

// Keyset pages keep memory flat on a long log; each page is one query that recomputes its hashes in the database.
const PAGE = 5000;
const LINKS = `SELECT c.seq, c.audit_id, c.prev_hash, c.hash, a.id IS NOT NULL AS present,
         CASE WHEN a.id IS NULL THEN NULL ELSE audit_row_hash(a, c.prev_hash) END AS recomputed
    FROM audit_chain c LEFT JOIN audit_log a ON a.id = c.audit_id
   WHERE c.seq > $1 ORDER BY c.seq LIMIT $2`;
const UNCHAINED = `SELECT a.id FROM audit_log a WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.audit_id = a.id)
   ORDER BY a.id LIMIT 1`;

/**
 * Walks the audit chain in order and reports the first broken link, or that it is intact with its row count and head
 * hash. Read-only. Rows of transactions not yet committed are invisible and not linked yet, so a log being written
 * to verifies as intact. Run it in one REPEATABLE READ transaction when the log is busy, so the walk and the count
 * see the same rows.
 */
export async function verifyAuditChain(q: Queryable): Promise<ChainReport> {
  let prev = GENESIS_HASH;
  let after = '0';
  let checked = 0;
  for (;;) {
    const { rows } = await q.query<LinkRow>(LINKS, [after, PAGE]);
    for (const r of rows) {
      const at = { auditId: Number(r.audit_id), seq: Number(r.seq) };
      const fail = (kind: ChainBreakKind, detail: string): ChainReport => ({ intact: false, rows: checked, checked, broken: { kind, ...at, detail } });
      if (r.prev_hash !== prev) {
        return fail('predecessor_missing', `link ${r.seq} (audit row ${r.audit_id}) names predecessor ${r.prev_hash}, but the link before it hashes to ${prev}: a row before it was removed`);
      }
      if (!r.present) return fail('row_missing', `audit row ${r.audit_id} (link ${r.seq}) is missing: it was deleted`);
      if (r.recomputed !== r.hash) {
        return fail('hash_mismatch', `audit row ${r.audit_id} (link ${r.seq}) hashes to ${r.recomputed}, but was linked as ${r.hash}: it was changed`);
      }
      prev = r.hash;
      checked++;
      after = r.seq;
    }
    if (rows.length < PAGE) break;
  }
  const stray = await q.query<{ id: string }>(UNCHAINED);
  if (stray.rows[0]) {
    const id = Number(stray.rows[0].id);
    return { intact: false, rows: checked, checked, broken: { kind: 'not_in_chain', auditId: id, seq: null, detail: `audit row ${id} is in no link of the chain: it was inserted without the chain trigger` } };
  }
  // Every link has its row and no row lacks a link: the rows verified are all the rows.
  return { intact: true, rows: checked, head: prev };
}

/** The report as the CLI prints it: one line. */
export function describeChainReport(r: ChainReport): string {
  if (r.intact) return `audit chain intact: ${r.rows} rows, head ${r.head}`;
  return `audit chain broken at audit row ${r.broken.auditId} (${r.broken.kind}): ${r.broken.detail}; ${r.checked} rows verified before it`;
}
