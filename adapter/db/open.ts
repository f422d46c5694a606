import { createHash } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import type { Logger } from '../log';
import type { Database } from './database';
import { EmbeddedDatabaseLockedError, holderIsGone, LOCK_FILE, readDataDirHolder, type DataDirHolder } from './data-dir-lock';
import { commandOfThisProcess, createPgliteDatabase } from './pglite';
import { createPostgresDatabase } from './postgres';

export interface OpenDatabaseOptions {
  /** PostgreSQL connection string; when absent the embedded PGlite database is used. */
  databaseUrl?: string | undefined;
  /** Where PGlite keeps its files (`<dataDir>/pglite`); `memory` keeps it in memory. */
  dataDir: string;
  poolSize?: number;
  /** PGlite's shared_buffers (`32MB`); default PGlite's own. Ignored with `databaseUrl`. */
  pgliteSharedBuffers?: string;
  /** What this process runs (`provisio serve`), written into DATA_DIR's lock file; default its argv. */
  command?: string;
  /**
   * When this process opens the embedded database, also serve it to the other processes of the machine on a unix
   * socket in DATA_DIR (`.s.PGSQL.5432`). For long-running commands (`serve`, `worker`, `ad-gateway`).
   */
  serveToOthers?: boolean;
  /**
   * When another process holds the embedded database and serves it, work through its socket instead of being
   * refused (default true). `serve` passes false: it must hold the database itself.
   */
  connectToHolder?: boolean;
  /** Told when a stale lock is taken over, when the holder's socket is used, and when a wire client is dropped. */
  logger?: Pick<Logger, 'debug' | 'info' | 'warn'>;
}

/** How long a client waits for a live holder's socket to answer (the holder may still be migrating), ms. */
const HOLDER_SOCKET_WAIT_MS = 30_000; // 30 s
/** Connections a process opens to the holder's socket; they all queue on its one backend anyway. */
const HOLDER_POOL_SIZE = 5;
// sun_path holds 108 bytes on Linux (104 on macOS), the terminating NUL included.
const MAX_SOCKET_PATH_BYTES = 100;

/** Where the embedded database of DATA_DIR keeps its files (and its lock file, `.provisio.lock`). */
export function embeddedFilesDir(dataDir: string): string {
  return join(dataDir, 'pglite');
}

/** The process that holds DATA_DIR's embedded database, as its lock file says; undefined when none does. */
export function embeddedDatabaseHolder(dataDir: string): DataDirHolder | undefined {
  return readDataDirHolder(embeddedFilesDir(dataDir));
}

/**
 * The unix socket on which the holder of `dataDir` serves it: `<dataDir>/.s.PGSQL.5432`, the name `pg` derives from a
 * socket directory and a port; under the temporary directory when that path would be too long for a socket.
 */
export function embeddedSocketPath(dataDir: string): string {
  const inDataDir = join(resolve(dataDir), '.s.PGSQL.5432');
  if (Buffer.byteLength(inDataDir) <= MAX_SOCKET_PATH_BYTES) return inDataDir;
  const digest = createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 16);
  return join(tmpdir(), `provisio-${digest}`, '.s.PGSQL.5432');
}

/**
 * PostgreSQL when a URL is given, else embedded PGlite under the data directory. Only one process opens a DATA_DIR's
 * PGlite files (its lock file says which); another one works through the holder's socket when the holder serves one
 * and `connectToHolder` allows it, else it is refused with EmbeddedDatabaseLockedError naming the holder.
 */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  if (opts.databaseUrl) {
    return createPostgresDatabase({ connectionString: opts.databaseUrl, ...(opts.poolSize ? { max: opts.poolSize } : {}) });
  }
  if (opts.dataDir === 'memory') return createPgliteDatabase({});
  const logger = opts.logger;
  const pgliteDir = embeddedFilesDir(opts.dataDir);
  // A holder may stop between our failed open and our connect: then open again (and become the holder).
  for (let attempt = 0; ; attempt++) {
    try {
      return await createPgliteDatabase({
        dataDir: pgliteDir,
        ...(opts.pgliteSharedBuffers ? { sharedBuffers: opts.pgliteSharedBuffers } : {}),
        command: opts.command ?? commandOfThisProcess(),
        ...(opts.serveToOthers ? { socketPath: embeddedSocketPath(opts.dataDir) } : {}),
        onStaleLock: (stale) =>
          logger?.warn(
            stale ? 'took over the embedded database lock of a process that is gone' : 'replaced an unreadable embedded database lock file',
            { lock: join(pgliteDir, LOCK_FILE), ...(stale ? { pid: stale.pid, command: stale.command, since: stale.startedAt } : {}) },
          ),
        onClientError: (message) => logger?.warn('embedded database client dropped', { reason: message }),
      });
    } catch (e) {
      if (!(e instanceof EmbeddedDatabaseLockedError)) throw e;
      if (opts.connectToHolder === false) {
        throw new EmbeddedDatabaseLockedError(e.directory, e.holder, 'this command must hold it itself: stop that process first, or set DATABASE_URL to use PostgreSQL');
      }
      if (!e.holder.socket) {
        throw new EmbeddedDatabaseLockedError(
          e.directory,
          e.holder,
          'that process serves no socket to others (only serve, worker and ad-gateway do): wait for it to finish, or set DATABASE_URL to use PostgreSQL',
        );
      }
      const db = await connectToHolder(pgliteDir, e.holder, opts.poolSize ?? HOLDER_POOL_SIZE);
      if (db) {
        // At info for the long-running commands; a short-lived one (`token create`) prints its result on stdout,
        // where the logger writes too, and `TOKEN=$(provisio token create ...)` must capture the token alone.
        logger?.[opts.serveToOthers ? 'info' : 'debug']('embedded database held by another process: working through its socket', {
          pid: e.holder.pid,
          command: e.holder.command,
          socket: e.holder.socket,
        });
        return db;
      }
      if (attempt >= 3) throw new Error(`the embedded database in ${pgliteDir} changed hands repeatedly while opening it; try again`);
    }
  }
}

/**
 * A pg pool on the holder's socket, once it answers; undefined when the holder is gone meanwhile (the caller opens
 * again). Throws when a live holder does not answer within HOLDER_SOCKET_WAIT_MS.
 */
async function connectToHolder(pgliteDir: string, holder: DataDirHolder, poolSize: number): Promise<Database | undefined> {
  const socket = holder.socket!;
  const url = `postgresql://postgres@localhost/postgres?host=${encodeURIComponent(dirname(socket))}&port=${basename(socket).split('.').pop()}`;
  const deadline = Date.now() + HOLDER_SOCKET_WAIT_MS;
  for (;;) {
    const db = createPostgresDatabase({ connectionString: url, max: poolSize, namedStatements: false });
    try {
      await db.query('SELECT 1');
      // The engine is the holder's PGlite: one session, reached over the wire.
      return { ...db, kind: 'pglite' };
    } catch (e) {
      await db.close().catch(() => undefined);
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ECONNREFUSED' && code !== 'ECONNRESET') throw e;
      const now = readDataDirHolder(pgliteDir);
      if (!now || now.pid !== holder.pid || now.startedAt !== holder.startedAt || holderIsGone(now, join(pgliteDir, LOCK_FILE))) return undefined;
      if (Date.now() > deadline) {
        throw new EmbeddedDatabaseLockedError(pgliteDir, holder, `it does not answer on ${socket} (${code}): is it stuck?`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
