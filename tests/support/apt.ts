/**
 * Installs Debian packages for the test servers (Samba, vcsim's Go build, …), machine-wide one at a time.
 * dpkg allows one installer at a time and fails at once when another holds its lock; jest runs test files in
 * parallel workers, and each server's set-up may find its packages missing on a new machine. So every install
 * queues on one directory lock, and apt itself also waits for the dpkg lock should anything outside the suite
 * (unattended upgrades, a hand-run apt) hold it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { withDirectoryLock } from './dir-lock';

const run = promisify(execFile);
const APT_LOCK_DIR = '/tmp/provisio-test/apt.lock';
// An install of Samba or Go on a slow mirror takes minutes; waiting behind one must not time out first.
const WAIT_MS = 20 * 60_000;
const DPKG_LOCK_TIMEOUT_S = 600;

async function installed(packages: readonly string[]): Promise<boolean> {
  try {
    const { stdout } = await run('dpkg-query', ['-W', '-f=${Status}\n', ...packages]);
    return stdout.trim().split('\n').every((l) => l.endsWith('install ok installed'));
  } catch {
    return false;
  }
}

/** Runs `fn` (any apt-get work: installs, source downloads) holding the machine-wide apt lock. */
export function withAptLock<T>(label: string, fn: () => Promise<T>): Promise<T> {
  return withDirectoryLock(APT_LOCK_DIR, fn, { waitMs: WAIT_MS, pollMs: 500, label: `${label}: apt lock` });
}

/** apt-get's own wait for the dpkg lock, for every apt-get call made under `withAptLock`. */
export const APT_WAIT_OPTIONS = ['-o', `DPkg::Lock::Timeout=${DPKG_LOCK_TIMEOUT_S}`] as const;

/** Installs whichever of `packages` are missing (apt-get update first), holding the machine-wide apt lock. */
export async function installDebianPackages(packages: readonly string[], label: string): Promise<void> {
  if (await installed(packages)) return;
  if (process.getuid?.() !== 0) throw new Error(`${label}: ${packages.join(' ')} not installed, and installing needs root (apt-get)`);
  await withAptLock(label, async () => {
    // Another worker may have installed them while this one waited.
    if (await installed(packages)) return;
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    await run('apt-get', [...APT_WAIT_OPTIONS, 'update', '-qq'], { env, maxBuffer: 1 << 26 });
    await run('apt-get', [...APT_WAIT_OPTIONS, 'install', '-y', '-qq', '--no-install-recommends', ...packages], { env, maxBuffer: 1 << 26 });
  });
}
