/**
 * Makes the `kerberos` native addon loadable on a fresh machine. It is an optionalDependency: npm skips it
 * silently when its build fails (no libkrb5-dev, the gssapi headers it compiles against), and npm on these
 * machines runs only the install scripts `allowScripts` in package.json permits. So when `require('kerberos')`
 * fails, install libkrb5-dev and rebuild it once (or install it when npm dropped the optional dependency),
 * machine-wide serialised, because every jest run's global setup may get here at the same moment.
 */
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { installDebianPackages } from './apt';
import { withDirectoryLock } from './dir-lock';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const LOCK_DIR = '/tmp/provisio-test/kerberos-addon.lock';
const VERSION = '7.0.0';

function loads(): boolean {
  try {
    // A fresh child: this process's require cache would remember a failed load.
    execFileSync(process.execPath, ['-e', "require('kerberos')"], { cwd: ROOT, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Resolves once `require('kerberos')` works from the project root; throws with npm's output when it cannot. */
export async function ensureKerberosAddon(): Promise<void> {
  if (loads()) return;
  await installDebianPackages(['libkrb5-dev', 'build-essential', 'python3'], 'kerberos-addon');
  await withDirectoryLock(LOCK_DIR, async () => {
    if (loads()) return;
    const present = await run('npm', ['ls', 'kerberos', '--depth=0'], { cwd: ROOT }).then(() => true, () => false);
    const args = present ? ['rebuild', 'kerberos'] : ['install', '--no-save', `kerberos@${VERSION}`];
    try {
      await run('npm', args, { cwd: ROOT, maxBuffer: 1 << 24 });
    } catch (e) {
      const err = e as { stderr?: string };
      throw new Error(`kerberos addon: npm ${args.join(' ')} failed:\n${String(err.stderr ?? e).slice(-2000)}`);
    }
    if (!loads()) throw new Error(`kerberos addon: npm ${args.join(' ')} ran, but require('kerberos') still fails`);
  }, { waitMs: 10 * 60_000, pollMs: 500, label: 'kerberos-addon: lock' });
}
