/**
 * A machine-wide lock as a directory: mkdir is atomic, so concurrent jest workers, jest runs and hand-run
 * scripts queue on it. The holder writes its pid into the directory, so a holder that died (a killed worker)
 * does not block everyone forever.
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface DirectoryLockOptions {
  /** How long to wait for another holder before giving up. */
  waitMs: number;
  /**
   * A lock directory without a pid file older than this is taken as left behind by a holder that died
   * between mkdir and writing its pid (default 10 s).
   */
  staleMs?: number;
  /** Polling interval while another live process holds the lock (default 200 ms). */
  pollMs?: number;
  /** Names the lock in the timeout error, e.g. `vcsim: build lock`. */
  label?: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs `fn` holding the lock `lockDir`, released (removed) when `fn` settles. */
export async function withDirectoryLock<T>(lockDir: string, fn: () => Promise<T>, options: DirectoryLockOptions): Promise<T> {
  const { waitMs, staleMs = 10_000, pollMs = 200, label = 'lock' } = options;
  mkdirSync(dirname(lockDir), { recursive: true });
  const pidFile = join(lockDir, 'pid');
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(pidFile, String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder = 0;
      try {
        holder = Number(readFileSync(pidFile, 'utf8'));
      } catch {
        /* being created or removed right now */
      }
      let age = 0;
      try {
        age = Date.now() - statSync(lockDir).mtimeMs;
      } catch {
        /* removed meanwhile */
      }
      // Stale: the recorded holder is dead, or no pid was ever written and the directory is old.
      if ((holder && !alive(holder)) || (!holder && age > staleMs)) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${label} ${lockDir} held by pid ${holder} for too long`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}
