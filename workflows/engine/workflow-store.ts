// SQL of the workflow aggregate: stored versions and per-workflow concurrency limits.
import type { Queryable } from '../../adapter';
import type { WorkflowDocument } from '../document';
import type { ConcurrencyLimit, StoredWorkflow, WorkflowSummary } from './types';

interface WorkflowRow {
  name: string;
  version: number;
  document: WorkflowDocument;
  created_at: Date | string;
  created_by: string;
}

const iso = (v: Date | string): string => (v instanceof Date ? v.toISOString() : new Date(v).toISOString());

function toStored(r: WorkflowRow): StoredWorkflow {
  return { name: r.name, version: r.version, document: r.document, createdAt: iso(r.created_at), createdBy: r.created_by };
}

// Saves of one name take turns, so each gets the next version number (hashtext: a stable int per name).
export async function lockWorkflowName(tx: Queryable, name: string): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(7302, hashtext($1))`, [name]);
}

export async function nextVersion(tx: Queryable, name: string): Promise<number> {
  const { rows } = await tx.query<{ v: number }>(`SELECT COALESCE(MAX(version), 0)::int + 1 AS v FROM workflows WHERE name = $1`, [name]);
  return rows[0]?.v ?? 1;
}

export async function insertWorkflow(tx: Queryable, name: string, version: number, document: WorkflowDocument, by: string): Promise<StoredWorkflow> {
  const { rows } = await tx.query<WorkflowRow>(
    `INSERT INTO workflows (name, version, document, created_by) VALUES ($1, $2, $3, $4)
     RETURNING name, version, document, created_at, created_by`,
    [name, version, JSON.stringify(document), by],
  );
  return toStored(rows[0] as WorkflowRow);
}

/** One version, or the latest when `version` is undefined; null when there is none. */
export async function selectWorkflow(q: Queryable, name: string, version: number | undefined): Promise<StoredWorkflow | null> {
  const { rows } =
    version === undefined
      ? await q.query<WorkflowRow>(`SELECT name, version, document, created_at, created_by FROM workflows WHERE name = $1 ORDER BY version DESC LIMIT 1`, [name])
      : await q.query<WorkflowRow>(`SELECT name, version, document, created_at, created_by FROM workflows WHERE name = $1 AND version = $2`, [name, version]);
  return rows[0] ? toStored(rows[0]) : null;
}

export async function selectWorkflowVersions(q: Queryable, name: string): Promise<number[]> {
  const { rows } = await q.query<{ version: number }>(`SELECT version FROM workflows WHERE name = $1 ORDER BY version`, [name]);
  return rows.map((r) => r.version);
}

export async function selectWorkflowSummaries(q: Queryable): Promise<WorkflowSummary[]> {
  const { rows } = await q.query<{ name: string; version: number; description: string | null; created_at: Date | string }>(
    `SELECT DISTINCT ON (name) name, version, document->>'description' AS description, created_at
       FROM workflows ORDER BY name, version DESC`,
  );
  return rows.map((r) => ({ name: r.name, latestVersion: r.version, description: r.description ?? '', updatedAt: iso(r.created_at) }));
}

export async function upsertLimit(q: Queryable, name: string, limit: ConcurrencyLimit | null): Promise<void> {
  if (limit === null) {
    await q.query(`DELETE FROM workflow_limits WHERE name = $1`, [name]);
    return;
  }
  await q.query(
    `INSERT INTO workflow_limits (name, max_active, on_limit) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET max_active = EXCLUDED.max_active, on_limit = EXCLUDED.on_limit`,
    [name, limit.maxActive, limit.onLimit],
  );
}

export async function selectLimit(q: Queryable, name: string): Promise<ConcurrencyLimit | null> {
  const { rows } = await q.query<{ max_active: number; on_limit: 'queue' | 'reject' }>(`SELECT max_active, on_limit FROM workflow_limits WHERE name = $1`, [name]);
  return rows[0] ? { maxActive: rows[0].max_active, onLimit: rows[0].on_limit } : null;
}
