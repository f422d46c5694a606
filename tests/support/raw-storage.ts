import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Queryable } from '../../adapter';

/**
 * Greps a database's raw storage for values that must never be stored in plain text: the proof of secrets at rest.
 *
 * - PGlite: every byte of every file under its data directory (heap, TOAST, WAL, free-space maps): close the database
 *   first, so everything is flushed.
 * - PostgreSQL: the text of every row of every table in every schema of the database (`public`, `pgboss`, …), as
 *   `SELECT t::text FROM <table> t` renders it: jsonb and text columns included.
 *
 * Each needle is searched as given and JSON-escaped (as a jsonb string renders a value with quotes, backslashes or
 * newlines). Large values may be compressed (TOAST) before they reach a page, hiding them from a byte grep: a test
 * should search a short distinctive slice (under 2 kB) and include a plain control value it expects to be found.
 */
export interface RawHit {
  needle: string;
  /** The file (relative to the data directory) or `schema.table`. */
  where: string;
}

const forms = (needle: string): string[] => [...new Set([needle, JSON.stringify(needle).slice(1, -1)])];

function listFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    const st = statSync(full, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) listFiles(full, out);
    else if (st.isFile()) out.push(full);
  }
  return out;
}

/** Every needle found in the bytes of the files under `dir` (UTF-8), with the file. */
export function grepDataDir(dir: string, needles: readonly string[]): RawHit[] {
  const hits: RawHit[] = [];
  const patterns = needles.map((n) => ({ needle: n, bytes: forms(n).map((f) => Buffer.from(f, 'utf8')) }));
  for (const file of listFiles(dir)) {
    const data = readFileSync(file);
    for (const p of patterns) {
      if (p.bytes.some((b) => data.includes(b))) hits.push({ needle: p.needle, where: relative(dir, file) });
    }
  }
  return hits;
}

/** Every needle found in the text of any row of any table of the database `q` is connected to, with the table. */
export async function grepTables(q: Queryable, needles: readonly string[]): Promise<RawHit[]> {
  const { rows: tables } = await q.query<{ schema: string; name: string }>(
    `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
      WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
  );
  const hits: RawHit[] = [];
  for (const t of tables) {
    const ident = `"${t.schema.replace(/"/g, '""')}"."${t.name.replace(/"/g, '""')}"`;
    const { rows } = await q.query<{ row: string }>(`SELECT t::text AS row FROM ${ident} t`);
    // Row text doubles quotes and backslashes inside a composite literal: search that rendering too.
    const text = rows.map((r) => r.row).join('\n');
    for (const needle of needles) {
      const variants = forms(needle).flatMap((f) => [f, f.replace(/\\/g, '\\\\').replace(/"/g, '""')]);
      if (variants.some((v) => text.includes(v))) hits.push({ needle, where: `${t.schema}.${t.name}` });
    }
  }
  return hits;
}

/** How many tables `grepTables` reads (guards a test against searching nothing). */
export async function countTables(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
  );
  return rows[0]!.n;
}
