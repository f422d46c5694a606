import { PGlite, types as pgliteTypes } from '@electric-sql/pglite';
import { mkdirSync } from 'node:fs';
import type { Database, QueryResult, Transaction } from './database';
import { acquireDataDirLock, type DataDirHolder, type DataDirLock } from './data-dir-lock';
import { PgliteSession, serveWire, type WireServer } from './pglite-wire-server';

export interface PgliteOptions {
  /** Directory for the data files; undefined keeps the database in memory (tests). */
  dataDir?: string;
  /** shared_buffers in PostgreSQL units (`32MB`); default PGlite's own (160 MB). */
  sharedBuffers?: string;
  /** What this process runs, recorded in the lock file and named to a process that is refused; default its argv. */
  command?: string;
  /**
   * Serve the database over the PostgreSQL wire protocol on this unix socket, for the other processes of this
   * machine (`provisio token create`, `migrate`, `worker` beside a running `serve`). Recorded in the lock file.
   */
  socketPath?: string;
  /** Told when a lock left by a process that is gone is taken over (undefined: the lock file was unreadable). */
  onStaleLock?: (stale: DataDirHolder | undefined) => void;
  /** Told when a wire client is dropped (protocol error, idle in a transaction too long). */
  onClientError?: (message: string) => void;
}

// Same parsing as the pg implementation: int8 as a JS number, so both engines return identical rows.
const parsers = { [pgliteTypes.INT8]: (v: string) => Number(v) };

// PGlite reports affectedRows 0 for a SELECT; pg's rowCount is the number of rows returned then.
const countOf = (r: { rows: unknown[]; affectedRows?: number } | undefined): number =>
  r ? Math.max(r.rows.length, r.affectedRows ?? 0) : 0;

/** The command line of this process, for the lock file when the caller names none. */
export function commandOfThisProcess(): string {
  return process.argv.slice(1).join(' ').slice(0, 200);
}

/**
 * Embedded PGlite: in memory, or on disk under `dataDir`. On disk, the process first takes the exclusive lock on that
 * directory (its `.provisio.lock`): two processes writing one PGlite directory lose each other's writes, so a second opener is refused
 * with EmbeddedDatabaseLockedError naming the holder. With `socketPath` the holder serves the database to the other
 * processes of the machine, which open it through `openDatabase` and `pg`.
 */
/**
 * PGlite's start parameters with shared_buffers set. Not PGlite's `postgresqlconf` option: that replaces the whole
 * postgresql.conf initdb wrote (timezone, datestyle, text search config, ...). Only `<n>kB|MB|GB` is accepted.
 */
function sharedBuffersStart(size: string | undefined): { startParams?: string[] } {
  if (size === undefined) return {};
  if (!/^[1-9][0-9]*(kB|MB|GB)$/.test(size)) throw new Error(`PGlite shared_buffers: expected a size such as 32MB, got '${size}'`);
  return { startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${size}`] };
}

export async function createPgliteDatabase(opts: PgliteOptions = {}): Promise<Database> {
  let lock: DataDirLock | undefined;
  if (opts.dataDir) {
    mkdirSync(opts.dataDir, { recursive: true });
    lock = acquireDataDirLock(opts.dataDir, {
      command: opts.command ?? commandOfThisProcess(),
      socket: opts.socketPath ?? null,
      ...(opts.onStaleLock ? { onStaleLock: opts.onStaleLock } : {}),
    });
  }
  let pg: PGlite;
  let wire: WireServer | undefined;
  // PGlite is one session; this lock is held by whoever uses it: a query, a transaction, or a wire client.
  const session = new PgliteSession();
  try {
    pg = await PGlite.create(opts.dataDir, { parsers, ...sharedBuffersStart(opts.sharedBuffers) });
    if (opts.socketPath) {
      wire = await serveWire(pg, session, opts.socketPath, opts.onClientError ? { onClientError: opts.onClientError } : {});
    }
  } catch (e) {
    lock?.release();
    throw e;
  }

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

  let closing: Promise<void> | undefined;
  return {
    kind: 'pglite',
    // PGlite is a single connection. Its own `transaction` holds a mutex that plain `query`
    // calls also wait on, so a statement from another request can never land inside an open
    // transaction, and a failed statement is rolled back before the next caller runs (otherwise
    // every later query would fail with "current transaction is aborted"). The session lock around
    // both keeps wire clients' statements out of them too (and ours out of a client's transaction).
    query: (sql, params) => session.run(() => run(pg, sql, params)),
    transaction: (fn) =>
      session.run(() =>
        pg.transaction(async (t) => {
          const tx: Transaction = {
            query: (sql, params) => run(t, sql, params),
            exec: async (sql) => {
              await t.exec(sql);
            },
          };
          return fn(tx);
        }),
      ),
    exec: (sql) =>
      session.run(async () => {
        await pg.exec(sql);
      }),
    // PGlite runs a notification's callbacks before the committing statement's promise resolves, so in the one
    // process holding it a change is seen by the time its writer continues. onLost: never (no connection to lose).
    listen: async (channel, onNotify) => {
      const unsubscribe = await session.run(() => pg.listen(channel, onNotify));
      return { close: () => session.run(() => unsubscribe()).catch(() => undefined) };
    },
    close() {
      // Clients first (their open transactions rolled back), then the files, then the lock: the next opener finds
      // a closed database.
      closing ??= (async () => {
        try {
          await wire?.close();
          await pg.close();
        } finally {
          lock?.release();
        }
      })();
      return closing;
    },
  };
}
