/**
 * govmomi's vCenter simulator (vcsim 0.24.2) built from Debian 12's packages alone, for the vCenter tests.
 *
 * Recipe: ../shared/test-services/build-vcsim.sh. The Go toolchain and the govmomi library come from binary
 * packages; vcsim/main.go is not in golang-github-vmware-govmomi-dev (debian/rules leaves it out), so it is
 * taken from the Debian source package, fetched with a private deb-src list (the system apt config is not
 * touched), and built in GOPATH mode with no module proxy. The binary is cached under
 * `$PROVISIO_TEST_DATA/vcsim` (default /tmp/provisio-test/vcsim): built once per machine, under a lock so
 * concurrent jest workers wait for the first build instead of starting their own.
 *
 * vcsim serves the vAPI session endpoints (/rest/com/vmware/cis/session) and SOAP, but not /api/* nor the REST
 * VM calls (../shared/reference/vcsim-rest-coverage.md); those are tested against Prism serving VMware's spec.
 *
 * Run by hand: `npx tsx tests/support/vcsim.ts build` (prints the build time).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { APT_WAIT_OPTIONS, installDebianPackages, withAptLock } from './apt';
import { withDirectoryLock } from './dir-lock';
import { closedPort } from './loopback-server';

const run = promisify(execFile);

const DATA_DIR = process.env['PROVISIO_TEST_DATA'] ?? '/tmp/provisio-test';
export const VCSIM_DIR = join(DATA_DIR, 'vcsim');
export const VCSIM_BIN = join(VCSIM_DIR, 'bin', 'vcsim');
const WORK = join(VCSIM_DIR, 'build');
const LOCK_DIR = join(VCSIM_DIR, 'build.lock');
const PACKAGES = ['golang-go', 'golang-github-vmware-govmomi-dev', 'golang-github-google-uuid-dev', 'xz-utils', 'ca-certificates'];
const GOVMOMI_DEV_DIR = '/usr/share/gocode/src/github.com/vmware/govmomi';

export const VCSIM_USER = 'vcsim-user';
export const VCSIM_PASSWORD = 'vcsim-Passw0rd';

export interface Vcsim {
  /** `http://127.0.0.1:<port>` (plain HTTP: -tls=false). */
  url: string;
  port: number;
  username: string;
  password: string;
  stop(): Promise<void>;
}

/** Runs `fn` holding the build lock, so concurrent workers queue here. */
function withLock<T>(fn: () => Promise<T>): Promise<T> {
  return withDirectoryLock(LOCK_DIR, fn, { waitMs: 10 * 60_000, pollMs: 250, label: 'vcsim: build lock' });
}

/** The Debian archive URI from the system's apt config (deb822 or one-line format). */
function debianArchiveUri(): string {
  const deb822 = '/etc/apt/sources.list.d/debian.sources';
  if (existsSync(deb822)) {
    const m = /^URIs:\s*(\S+)/m.exec(readFileSync(deb822, 'utf8'));
    if (m?.[1]) return m[1];
  }
  if (existsSync('/etc/apt/sources.list')) {
    for (const line of readFileSync('/etc/apt/sources.list', 'utf8').split('\n')) {
      const parts = line.trim().split(/\s+/);
      if (parts[0] !== 'deb' || line.includes('security')) continue;
      const uri = parts.find((p) => /^https?:/.test(p));
      if (uri) return uri;
    }
  }
  throw new Error('vcsim: cannot find the Debian archive URI in the apt configuration');
}

async function build(): Promise<{ seconds: number }> {
  const started = Date.now();
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await installDebianPackages(PACKAGES, 'vcsim');

  // vcsim/main.go from the Debian source package, through a private deb-src list.
  const src = join(WORK, 'aptsrc');
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(join(src, 'lists', 'partial'), { recursive: true });
  writeFileSync(
    join(src, 'src.list'),
    `deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${debianArchiveUri()} bookworm main\n`,
  );
  const aptOpts = [
    '-o', `Dir::Etc::SourceList=${join(src, 'src.list')}`,
    '-o', 'Dir::Etc::SourceParts=/nonexistent',
    '-o', `Dir::State::Lists=${join(src, 'lists')}`,
    '-o', 'APT::Sandbox::User=root',
  ];
  await withAptLock('vcsim', async () => {
    await run('apt-get', [...APT_WAIT_OPTIONS, ...aptOpts, 'update', '-qq'], { env, maxBuffer: 1 << 26 });
    await run('apt-get', [...APT_WAIT_OPTIONS, ...aptOpts, 'source', '--download-only', '-qq', 'golang-github-vmware-govmomi'], { env, cwd: src, maxBuffer: 1 << 26 });
  });
  const orig = readdirSync(src).find((f) => /^golang-github-vmware-govmomi_.*\.orig\.tar\.xz$/.test(f));
  if (!orig) throw new Error('vcsim: the govmomi source package has no orig tarball');
  const version = orig.replace(/^golang-github-vmware-govmomi_(.*)\.orig\.tar\.xz$/, '$1');
  await run('tar', ['-xJf', join(src, orig), '-C', WORK, `govmomi-${version}/vcsim/main.go`]);
  const gopath = join(WORK, 'gopath');
  mkdirSync(join(gopath, 'src', 'vcsim'), { recursive: true });
  copyFileSync(join(WORK, `govmomi-${version}`, 'vcsim', 'main.go'), join(gopath, 'src', 'vcsim', 'main.go'));
  if (!existsSync(GOVMOMI_DEV_DIR)) throw new Error(`vcsim: ${GOVMOMI_DEV_DIR} missing after installing golang-github-vmware-govmomi-dev`);

  // GOPATH mode, offline: the library comes from /usr/share/gocode (the -dev package), never a module proxy.
  mkdirSync(join(VCSIM_DIR, 'bin'), { recursive: true });
  const tmpBin = `${VCSIM_BIN}.tmp-${process.pid}`;
  await run('go', ['build', '-o', tmpBin, '.'], {
    cwd: join(gopath, 'src', 'vcsim'),
    env: {
      ...env,
      GOPATH: `${gopath}:/usr/share/gocode`,
      GO111MODULE: 'off',
      GOPROXY: 'off',
      GOFLAGS: '',
      GOTOOLCHAIN: 'local',
      GOCACHE: join(VCSIM_DIR, 'gocache'),
    },
    maxBuffer: 1 << 26,
  });
  // Renamed into place only when complete, so a killed build never leaves a half-written binary behind.
  await run('mv', [tmpBin, VCSIM_BIN]);
  writeFileSync(join(VCSIM_DIR, 'version'), `${version}\n`);
  return { seconds: (Date.now() - started) / 1000 };
}

/** Path of the vcsim binary, building it (and installing Go from Debian's packages) the first time. */
export async function ensureVcsimBinary(): Promise<string> {
  if (existsSync(VCSIM_BIN)) return VCSIM_BIN;
  await withLock(async () => {
    if (!existsSync(VCSIM_BIN)) await build();
  });
  return VCSIM_BIN;
}

/** Starts vcsim on a free loopback port (plain HTTP) and waits until its REST session endpoint answers. */
export async function startVcsim(): Promise<Vcsim> {
  const bin = await ensureVcsimBinary();
  const port = await closedPort();
  const child: ChildProcess = spawn(
    bin,
    ['-l', `127.0.0.1:${port}`, '-username', VCSIM_USER, '-password', VCSIM_PASSWORD, '-tls=false'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString('utf8')));
  const url = `http://127.0.0.1:${port}`;
  const auth = `Basic ${Buffer.from(`${VCSIM_USER}:${VCSIM_PASSWORD}`).toString('base64')}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`vcsim exited (${child.exitCode}):\n${output}`);
    try {
      const res = await fetch(`${url}/rest/com/vmware/cis/session`, { method: 'POST', headers: { authorization: auth } });
      if (res.status === 200) {
        // Log the probe's session out again, so tests count only their own.
        const { value } = (await res.json()) as { value: string };
        await fetch(`${url}/rest/com/vmware/cis/session`, { method: 'DELETE', headers: { 'vmware-api-session-id': value } });
        break;
      }
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`vcsim did not become ready on ${url}:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    port,
    username: VCSIM_USER,
    password: VCSIM_PASSWORD,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

if (require.main === module) {
  const cmd = process.argv[2] ?? 'build';
  if (cmd === 'build') {
    const had = existsSync(VCSIM_BIN);
    (had ? Promise.resolve({ seconds: 0 }) : withLock(build))
      .then((r) => console.log(had ? `cached: ${VCSIM_BIN}` : `built ${VCSIM_BIN} in ${r.seconds.toFixed(1)} s`))
      .catch((e: unknown) => {
        console.error(e);
        process.exit(1);
      });
  } else {
    console.error('usage: tsx tests/support/vcsim.ts build');
    process.exit(2);
  }
}
