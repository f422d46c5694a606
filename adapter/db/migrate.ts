import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectPath } from '../paths';
import type { Database } from './database';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

// Resolved from the project root so the same files serve `tsx` and the compiled `dist/` build.
const MIGRATIONS_DIR = projectPath('adapter', 'db', 'migrations');

/** The migrations shipped with this build, in version order (`NNN_name.sql`). */
export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d+_[\w-]+\.sql$/.test(f))
    .sort()
    .map((f) => {
      const [num, ...rest] = f.replace(/\.sql$/, '').split('_');
      return { version: Number(num), name: rest.join('_'), sql: readFileSync(join(dir, f), 'utf8') };
    });
}

// Any fixed number: several processes starting against one PostgreSQL take turns migrating under it.
const MIGRATION_LOCK_KEY = 7_302_114_801;

/**
 * Applies every migration not yet recorded in `schema_migrations`, each in its own transaction.
 * Returns the versions it applied.
 */
export async function migrate(db: Database, migrations = listMigrations()): Promise<number[]> {
  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
  // Read once without the lock: on an up-to-date database (every start but the first after an upgrade) that one
  // query is all, instead of a locked transaction per shipped migration. A version missing here is re-checked
  // under the lock, since another process may be applying it right now.
  const { rows } = await db.query<{ version: number }>('SELECT version FROM schema_migrations');
  const recorded = new Set(rows.map((r) => r.version));
  const applied: number[] = [];
  for (const m of migrations.filter((x) => !recorded.has(x.version))) {
    const done = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      const { rowCount } = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
      if (rowCount > 0) return false;
      await tx.exec(m.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      return true;
    });
    if (done) applied.push(m.version);
  }
  return applied;
}

/** Versions shipped with this build that the database has not applied yet (for /readyz). */
export async function pendingMigrations(db: Database, migrations = listMigrations()): Promise<number[]> {
  const { rows } = await db.query<{ version: number }>(
    `SELECT version FROM schema_migrations`,
  ).catch(() => ({ rows: [] as { version: number }[] }));
  const have = new Set(rows.map((r) => r.version));
  return migrations.filter((m) => !have.has(m.version)).map((m) => m.version);
}
