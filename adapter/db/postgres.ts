import { Client, Pool, types, type PoolClient, type QueryResult as PgResult } from 'pg';
import type { Database, Listener, QueryResult, Transaction } from './database';

// bigint (int8) columns come back as strings by default; our ids and counts fit in a JS number.
types.setTypeParser(20, (v) => Number(v));

export interface PostgresOptions {
  connectionString: string;
  /** Pool size; 20 keeps 50 concurrent HTTP requests from queueing on connections. */
  max?: number;
  /**
   * Prepare hot statements under names (default true). False for the embedded database reached through its holder's
   * socket: all its clients share one backend, so one client's `provisio_1` would collide with another's.
   */
  namedStatements?: boolean;
}

/**
 * Names for the statements worth preparing. A named statement is parsed and planned once per connection and then
 * only bound and executed; on the ServiceNow webhook's path (then five statements a request) that raised throughput by
 * about half. A text is named only after it has been run HOT_AFTER times, and names are capped, so one-off texts
 * (ad hoc filters) never pile up as prepared statements on the server's connections.
 */
export class StatementNames {
  static readonly HOT_AFTER = 3;
  static readonly MAX_NAMES = 1000;
  static readonly MAX_TRACKED = 10_000;
  readonly #seen = new Map<string, number>();
  readonly #names = new Map<string, string>();

  /** The statement's name, or undefined while it is not (yet) hot. */
  nameFor(sql: string): string | undefined {
    const known = this.#names.get(sql);
    if (known !== undefined || this.#names.size >= StatementNames.MAX_NAMES) return known;
    const count = (this.#seen.get(sql) ?? 0) + 1;
    if (count < StatementNames.HOT_AFTER) {
      if (this.#seen.size >= StatementNames.MAX_TRACKED) this.#seen.clear();
      this.#seen.set(sql, count);
      return undefined;
    }
    this.#seen.delete(sql);
    const name = `provisio_${this.#names.size + 1}`;
    this.#names.set(sql, name);
    return name;
  }
}

export function createPostgresDatabase(opts: PostgresOptions): Database {
  const pool = new Pool({ connectionString: opts.connectionString, max: opts.max ?? 20 });
  // An idle client that loses its connection emits 'error' on the pool; without a listener it kills the process.
  pool.on('error', () => undefined);

  // A query without parameters goes over pg's simple protocol and may hold several statements;
  // pg then answers with one result per statement, and the last one's rows are returned.
  const statements = new StatementNames();
  const run = async <R>(q: Pool | PoolClient, sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> => {
    const name = params && params.length > 0 && opts.namedStatements !== false ? statements.nameFor(sql) : undefined;
    const res = (
      name ? await q.query({ name, text: sql, values: params as unknown[] }) : await q.query(sql, params as unknown[] | undefined)
    ) as PgResult | PgResult[];
    const last = Array.isArray(res) ? res[res.length - 1] : res;
    return { rows: (last?.rows ?? []) as R[], rowCount: last?.rowCount ?? 0 };
  };

  // Each LISTEN holds a connection of its own, outside the pool (a pooled one would be handed to other queries).
  const listeners = new Set<Client>();
  const listen = async (channel: string, onNotify: (payload: string) => void, onLost?: () => void): Promise<Listener> => {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`LISTEN channel must be a plain identifier: ${channel}`);
    const client = new Client({ connectionString: opts.connectionString });
    let closed = false;
    const lost = () => {
      if (closed) return;
      closed = true;
      listeners.delete(client);
      onLost?.();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (m) => {
      if (m.channel === channel) onNotify(m.payload ?? '');
    });
    await client.connect();
    listeners.add(client);
    try {
      await client.query(`LISTEN ${channel}`);
    } catch (e) {
      closed = true;
      listeners.delete(client);
      await client.end().catch(() => undefined);
      throw e;
    }
    return {
      close: async () => {
        closed = true;
        listeners.delete(client);
        await client.end().catch(() => undefined);
      },
    };
  };

  return {
    kind: 'postgres',
    query: (sql, params) => run(pool, sql, params),
    // Through the embedded database's holder (namedStatements false) notifications are not relayed: no LISTEN there.
    ...(opts.namedStatements === false ? {} : { listen }),
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
      await Promise.all([...listeners].map((c) => c.end().catch(() => undefined)));
      listeners.clear();
      await pool.end();
    },
  };
}
