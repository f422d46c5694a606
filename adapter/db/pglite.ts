import { PGlite, types as pgliteTypes } from '@electric-sql/pglite';
import { mkdirSync } from 'node:fs';
import type { Database, QueryResult, Transaction } from './database';

export interface PgliteOptions {
  /** Directory for the data files; undefined keeps the database in memory (tests). */
  dataDir?: string;
}

// Same parsing as the pg implementation: int8 as a JS number, so both engines return identical rows.
const parsers = { [pgliteTypes.INT8]: (v: string) => Number(v) };

// PGlite reports affectedRows 0 for a SELECT; pg's rowCount is the number of rows returned then.
const countOf = (r: { rows: unknown[]; affectedRows?: number } | undefined): number =>
  r ? Math.max(r.rows.length, r.affectedRows ?? 0) : 0;

export async function createPgliteDatabase(opts: PgliteOptions = {}): Promise<Database> {
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });
  const pg = await PGlite.create(opts.dataDir, { parsers });

  // Like pg, a query without parameters may hold several statements (pg-boss sends such text);
  // it goes through PGlite's simple-protocol `exec` and the last statement's rows are returned.
  const run = async <R>(q: Pick<PGlite, 'query' | 'exec'>, sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> => {
    if (!params || params.length === 0) {
      const results = await q.exec(sql);
      const last = results[results.length - 1];
      return { rows: (last?.rows ?? []) as R[], rowCount: countOf(last) };
    }
    const res = await q.query<R>(sql, params as unknown[]);
    return { rows: res.rows, rowCount: countOf(res) };
  };

  return {
    kind: 'pglite',
    // PGlite is a single connection. Its own `transaction` holds a mutex that plain `query`
    // calls also wait on, so a statement from another request can never land inside an open
    // transaction, and a failed statement is rolled back before the next caller runs (otherwise
    // every later query would fail with "current transaction is aborted").
    query: (sql, params) => run(pg, sql, params),
    transaction: (fn) =>
      pg.transaction(async (t) => {
        const tx: Transaction = {
          query: (sql, params) => run(t, sql, params),
          exec: async (sql) => {
            await t.exec(sql);
          },
        };
        return fn(tx);
      }),
    async exec(sql) {
      await pg.exec(sql);
    },
    async close() {
      await pg.close();
    },
  };
}
