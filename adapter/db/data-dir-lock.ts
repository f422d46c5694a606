import { closeSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/**
 * The file in the PGlite directory (`DATA_DIR/pglite`) that says which process holds it: inside the directory it
 * guards, as PostgreSQL keeps its postmaster.pid, so whoever opens those files finds the same lock (PGlite ignores a
 * file it does not know, also in a directory it initialises).
 */
export const LOCK_FILE = '.provisio.lock';

/** What the holder of DATA_DIR wrote into its lock file. */
export interface DataDirHolder {
  pid: number;
  hostname: string;
  /** What the holder runs, e.g. `provisio serve`. */
  command: string;
  /** When it took the lock, ISO 8601 UTC. */
  startedAt: string;
  /**
   * The unix socket on which the holder serves its database to the other processes of this machine, or null when it
   * serves none (a short-lived `migrate` or `token create`). Written before the socket listens: a client waits for it.
   */
  socket: string | null;
  /** The holder's start time in clock ticks since boot (Linux /proc/<pid>/stat), so a reused pid is not taken for it. */
  processStart?: number;
}

/**
 * Thrown when DATA_DIR's embedded database is held by another live process and this one may not work through it:
 * it is `serve` (which must hold the database itself), or the holder serves no socket. A start-up error like
 * `ConfigError`, not a `CodedError`: it never reaches an HTTP response, the CLI prints it and exits 1.
 */
export class EmbeddedDatabaseLockedError extends Error {
  readonly code = 'EMBEDDED_DATABASE_LOCKED';
  constructor(
    /** The PGlite directory. */
    readonly directory: string,
    readonly holder: DataDirHolder,
    reason: string,
  ) {
    super(`the embedded database in ${directory} is in use: lock held by ${describeHolder(holder)}; ${reason}`);
    this.name = 'EmbeddedDatabaseLockedError';
  }
}

/** `pid 4242 (provisio serve) on host h since 2026-12-04T16:00:00.000Z` */
export function describeHolder(h: DataDirHolder): string {
  return `pid ${h.pid} (${h.command}) on host ${h.hostname} since ${h.startedAt}`;
}

/** A lock this process holds on a PGlite directory. */
export interface DataDirLock {
  readonly directory: string;
  readonly path: string;
  readonly holder: DataDirHolder;
  /** Removes the lock file if it is still ours; idempotent. */
  release(): void;
}

export interface AcquireLockOptions {
  command: string;
  /** The socket path to record (null: this process serves none). */
  socket: string | null;
  /** Told when a lock left by a dead process is taken over (undefined: the lock file was unreadable). */
  onStaleLock?: (stale: DataDirHolder | undefined) => void;
}

// Lock files this process holds, so that a second open in the same process is refused rather than seen as a stale lock
// left by an earlier process that had the same pid (a container restarted, its entry point is pid 1 again).
const heldHere = new Set<string>();
let exitHookInstalled = false;

/** Clock ticks since boot at which `pid` started (field 22 of /proc/<pid>/stat), where /proc exists. */
function processStartOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces; the fields after its closing one are plain.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the holder named by a lock file is certainly gone. A holder on another host (DATA_DIR on a shared volume)
 * cannot be checked from here and counts as alive: refusing is safe, taking over a live database is not.
 */
export function holderIsGone(h: DataDirHolder, lockPath: string): boolean {
  if (h.hostname !== hostname()) return false;
  if (h.pid === process.pid) return !heldHere.has(lockPath);
  if (!isAlive(h.pid)) return true;
  const start = processStartOf(h.pid);
  return h.processStart !== undefined && start !== undefined && start !== h.processStart;
}

function parseHolder(text: string): DataDirHolder | undefined {
  try {
    const h = JSON.parse(text) as Partial<DataDirHolder>;
    if (typeof h.pid !== 'number' || typeof h.command !== 'string' || typeof h.startedAt !== 'string' || typeof h.hostname !== 'string') return undefined;
    return { socket: null, ...h } as DataDirHolder;
  } catch {
    return undefined;
  }
}

/** The holder named by the lock file in `dir` (a PGlite directory), or undefined when there is none (or it is unreadable). */
export function readDataDirHolder(dir: string): DataDirHolder | undefined {
  try {
    return parseHolder(readFileSync(join(dir, LOCK_FILE), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Writes `content` to a fresh temporary file beside `path` and returns its name. */
function writeTemp(path: string, content: string): string {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600, flag: 'wx' });
  return tmp;
}

/**
 * Takes the exclusive lock on a PGlite directory, or throws EmbeddedDatabaseLockedError naming the live holder.
 *
 * The lock file is written complete to a temporary file and then hard-linked into place: link(2) fails with EEXIST
 * when the name exists, so exactly one process wins, and no reader ever sees a half-written lock. A lock whose holder
 * is gone (dead pid, or the pid now belongs to a process started later) is taken over; two processes that find the
 * same stale lock at once are kept apart by a second exclusive file, so the one that loses cannot delete the winner's
 * fresh lock.
 */
export function acquireDataDirLock(directory: string, opts: AcquireLockOptions): DataDirLock {
  const path = join(directory, LOCK_FILE);
  const processStart = processStartOf(process.pid);
  const holder: DataDirHolder = {
    pid: process.pid,
    hostname: hostname(),
    command: opts.command,
    startedAt: new Date().toISOString(),
    socket: opts.socket,
    ...(processStart !== undefined ? { processStart } : {}),
  };
  const content = `${JSON.stringify(holder, null, 2)}\n`;
  for (let attempt = 0; attempt < 50; attempt++) {
    const tmp = writeTemp(path, content);
    try {
      linkSync(tmp, path);
      heldHere.add(path);
      installExitHook();
      return lockHandle(directory, path, holder);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      unlinkSync(tmp);
    }
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile: try again
      throw e;
    }
    const current = parseHolder(text);
    if (current && !holderIsGone(current, path)) {
      throw new EmbeddedDatabaseLockedError(directory, current, 'stop that process, or set DATABASE_URL to use PostgreSQL');
    }
    // Gone, or unreadable: link(2) never shows a half-written lock, so unreadable content is a damaged file.
    if (removeStaleLock(path, text)) opts.onStaleLock?.(current);
  }
  throw new Error(`could not take the lock ${path}: it kept changing`);
}

/**
 * Removes the stale lock at `path` if it still holds `staleText`, under a takeover guard only one process can hold;
 * true when this call removed it.
 */
function removeStaleLock(path: string, staleText: string): boolean {
  const guard = `${path}.takeover`;
  let fd: number;
  try {
    fd = openSync(guard, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // Another process is taking the stale lock over; a guard left by one that died mid-way is old and removed.
    try {
      if (Date.now() - statSync(guard).mtimeMs > 10_000) unlinkSync(guard);
    } catch {
      /* gone meanwhile */
    }
    sleepSync(50);
    return false;
  }
  try {
    let now: string | undefined;
    try {
      now = readFileSync(path, 'utf8');
    } catch {
      now = undefined;
    }
    if (now !== staleText) return false;
    unlinkSync(path);
    return true;
  } finally {
    closeSync(fd);
    unlinkSync(guard);
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function lockHandle(directory: string, path: string, holder: DataDirHolder): DataDirLock {
  return {
    directory,
    path,
    holder,
    release() {
      if (!heldHere.delete(path)) return;
      removeIfOurs(path, holder);
    },
  };
}

function removeIfOurs(path: string, holder: DataDirHolder): void {
  try {
    const now = parseHolder(readFileSync(path, 'utf8'));
    if (now && now.pid === holder.pid && now.startedAt === holder.startedAt) unlinkSync(path);
  } catch {
    /* already gone */
  }
}

/**
 * A process that exits without closing its database (process.exit on an error path) leaves no lock behind. A crash
 * or SIGKILL does; the next opener finds its pid dead and takes the lock over.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const path of heldHere) {
      const h = readLockAt(path);
      if (h && h.pid === process.pid) {
        try {
          unlinkSync(path);
        } catch {
          /* gone */
        }
      }
    }
    heldHere.clear();
  });
}

function readLockAt(path: string): DataDirHolder | undefined {
  try {
    return parseHolder(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

