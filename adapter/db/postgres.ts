import { Pool, types, type PoolClient, type QueryResult as PgResult } from 'pg';
import type { Database, QueryResult, Transaction } from './database';

// bigint (int8) columns come back as strings by default; our ids and counts fit in a JS number.
types.setTypeParser(20, (v) => Number(v));

export interface PostgresOptions {
  connectionString: string;
  /** Pool size; 20 keeps 50 concurrent HTTP requests from queueing on connections. */
  max?: number;
}

export function createPostgresDatabase(opts: PostgresOptions): Database {
  const pool = new Pool({ connectionString: opts.connectionString, max: opts.max ?? 20 });
  // An idle client that loses its connection emits 'error' on the pool; without a listener it kills the process.
  pool.on('error', () => undefined);

  // A query without parameters goes over pg's simple protocol and may hold several statements;
  // pg then answers with one result per statement, and the last one's rows are returned.
  const run = async <R>(q: Pool | PoolClient, sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> => {
    const res = (await q.query(sql, params as unknown[] | undefined)) as PgResult | PgResult[];
    const last = Array.isArray(res) ? res[res.length - 1] : res;
    return { rows: (last?.rows ?? []) as R[], rowCount: last?.rowCount ?? 0 };
  };

  return {
    kind: 'postgres',
    query: (sql, params) => run(pool, sql, params),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const tx: Transaction = {
          query: (sql, params) => run(client, sql, params),
          exec: async (sql: string) => {
            await client.query(sql);
          },
        };
        const result = await fn(tx);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    async exec(sql) {
      await pool.query(sql);
    },
    async close() {
      await pool.end();
    },
  };
}
