/**
 * A real Active Directory domain controller (Samba 4 from Debian's packages) for `TEST.LOCAL` on 127.0.0.1,
 * for the directory tests and benchmarks.
 *
 * Samba AD's ports are fixed (LDAP 389, LDAPS 636, KDC 88), so there can be one instance per network
 * namespace: every jest worker, and every jest run on this machine, shares it. `ensureSambaAd()` installs,
 * provisions, starts and seeds it under a lock directory, so concurrent callers wait for the first one and
 * then reuse the running server. Each jest run holds a lease (a file named after the jest main process id,
 * which the global setup exports); the global teardown drops it and stops Samba only when no live run still
 * holds one and these helpers were the ones that started it. A second CI pass therefore either restarts the
 * provisioned directory (about a second) or reuses it.
 *
 * Run by hand: `npx tsx tests/support/samba-ad.ts start|stop|status|purge`.
 *
 * Pitfalls this encodes (see ../shared/reference/ad-gateway-and-test-directory-notes.md):
 * - `samba-ad-provision` is only a Recommends of samba, but provisioning fails without its schema files.
 * - provision must get an empty smb.conf (`-s`), or it merges Debian's /etc/samba/smb.conf.
 * - provision silently drops `ldap server require strong auth = no`; without it simple binds over plain
 *   LDAP fail ("Transport encryption required"). We append it, with our own TLS files, after provisioning.
 * - `samba -M single` is one process to stop; it needs more than a second to exit after SIGTERM.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Attribute, Change, Client } from 'ldapts';
import { installDebianPackages } from './apt';
import { withDirectoryLock } from './dir-lock';

const run = promisify(execFile);

export const SAMBA_AD_REALM = 'TEST.LOCAL';
export const SAMBA_AD_DOMAIN = 'TEST';
export const SAMBA_AD_BASE_DN = 'DC=test,DC=local';
export const SAMBA_AD_ADMIN_PASSWORD = 'Passw0rd!Test';
/** The password every seeded user gets (meets AD's default complexity rules). */
export const SEED_USER_PASSWORD = 'Us3rPass!word';
/** The OU holding every seeded object, so tests never touch the domain's built-in objects. */
export const SEED_OU = `OU=Provisio,${SAMBA_AD_BASE_DN}`;

const DIR = process.env['SAMBA_AD_DIR'] ?? '/tmp/provisio-test/samba-ad';
const LOCK_DIR = `${DIR}.lock`;
const CONF = join(DIR, 'etc', 'smb.conf');
const RUN_DIR = join(DIR, 'run');
const LOG_DIR = join(DIR, 'log');
const TLS_DIR = join(DIR, 'tls');
const LEASE_DIR = join(DIR, 'leases');
const PID_FILE = join(RUN_DIR, 'samba-ad.pid');
/** Present when these helpers started the running Samba (then the global teardown may stop it). */
const STARTED_BY_TESTS = join(RUN_DIR, 'started-by-tests');
/** Holds `<SEED_VERSION> <run id>`: the seed is reconciled once per jest run, not once per test file. */
const SEED_MARK = join(RUN_DIR, 'seeded');
const SEED_VERSION = '3';
const IP = '127.0.0.1';

// Debian 12 package set. winbind and friends come in as dependencies of samba-ad-dc.
const PACKAGES = ['samba', 'samba-ad-dc', 'samba-ad-provision', 'samba-dsdb-modules'];
const PROVISION_SCHEMA_FILE = '/usr/share/samba/setup/ad-schema/AD_DS_Attributes__Windows_Server_2012_R2.ldf';

export interface SambaAd {
  ldapUrl: string;
  ldapsUrl: string;
  host: string;
  baseDn: string;
  realm: string;
  /** Administrator, as a UPN (AD accepts UPN, DOMAIN\user and full DN as the bind name). */
  bindDn: string;
  bindPassword: string;
  /** PEM of the CA that signed the server certificate (SANs: 127.0.0.1, localhost, dc1.test.local). */
  caCertPath: string;
  /** PEM of an unrelated CA, for "wrong CA must fail" tests. */
  otherCaCertPath: string;
  /** The seeded objects' DNs. */
  seed: SeedDirectory;
}

export interface SeedDirectory {
  ou: string;
  users: Record<SeedUserName, string>;
  groups: Record<SeedGroupName, string>;
}

type SeedUserName = 'manager' | 'jdoe' | 'disabled' | 'toggle' | 'member' | 'weird' | 'readonly';
type SeedGroupName = 'restricted' | 'approvers' | 'leads' | 'sandbox';

interface SeedUser {
  key: SeedUserName;
  sam: string;
  givenName: string;
  sn: string;
  attrs: Record<string, string>;
  managerKey?: SeedUserName;
  disabled?: boolean;
}

/** Cost centre lives in `departmentNumber` here: base AD has no cost-centre attribute (see adapter/directory). */
const SEED_USERS: SeedUser[] = [
  { key: 'manager', sam: 'amanager', givenName: 'Alice', sn: 'Manager',
    attrs: { mail: 'alice.manager@test.local', department: 'IT', departmentNumber: 'CC-100', company: 'Provisio Test',
      employeeID: 'E1000', title: 'Head of IT' } },
  { key: 'jdoe', sam: 'jdoe', givenName: 'John', sn: 'Doe', managerKey: 'manager',
    attrs: { mail: 'jdoe@test.local', department: 'Engineering', departmentNumber: 'CC-200', company: 'Provisio Test',
      employeeID: 'E1001', title: 'Engineer' } },
  { key: 'disabled', sam: 'bleaver', givenName: 'Bob', sn: 'Leaver', managerKey: 'manager', disabled: true,
    attrs: { mail: 'bob.leaver@test.local', department: 'Sales', company: 'Provisio Test', employeeID: 'E1002', title: 'Account Executive' } },
  { key: 'toggle', sam: 'ttoggle', givenName: 'Tina', sn: 'Toggle',
    attrs: { mail: 'tina.toggle@test.local', department: 'Finance', company: 'Provisio Test', employeeID: 'E1003', title: 'Analyst' } },
  { key: 'member', sam: 'mmember', givenName: 'Max', sn: 'Member', managerKey: 'manager',
    attrs: { mail: 'max.member@test.local', department: 'Engineering', company: 'Provisio Test', employeeID: 'E1004', title: 'Engineer' } },
  // Filter metacharacters in stored values: an exact lookup must find this user only if the adapter escapes them.
  { key: 'weird', sam: 'o(brien)', givenName: 'Owen', sn: "O'Brien",
    attrs: { mail: 'star*(paren)@test.local', department: 'R&D', company: 'Provisio Test', employeeID: 'E*100', title: 'Researcher' } },
  // A plain account with no delegated rights: writes made as it must be refused by AD.
  { key: 'readonly', sam: 'svc-readonly', givenName: 'Service', sn: 'Readonly',
    attrs: { description: 'read-only service account for tests' } },
];

/** Restricted <- Approvers <- Leads <- jdoe (nested twice); manager is a direct member of Restricted. */
const SEED_GROUPS: { key: SeedGroupName; cn: string; members: ({ user: SeedUserName } | { group: SeedGroupName })[] }[] = [
  { key: 'leads', cn: 'Provisio-Leads', members: [{ user: 'jdoe' }] },
  { key: 'approvers', cn: 'Provisio-Approvers', members: [{ group: 'leads' }, { user: 'disabled' }] },
  { key: 'restricted', cn: 'Provisio-Restricted', members: [{ group: 'approvers' }, { user: 'manager' }] },
  { key: 'sandbox', cn: 'Provisio-Sandbox', members: [] },
];

const userDn = (u: SeedUser): string => `CN=${escapeRdn(`${u.givenName} ${u.sn}`)},${SEED_OU}`;
const groupDn = (cn: string): string => `CN=${cn},${SEED_OU}`;

function escapeRdn(v: string): string {
  return v.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`).replace(/^[ #]/, (c) => `\\${c}`).replace(/ $/, '\\ ');
}

export const seedDirectory: SeedDirectory = {
  ou: SEED_OU,
  users: Object.fromEntries(SEED_USERS.map((u) => [u.key, userDn(u)])) as Record<SeedUserName, string>,
  groups: Object.fromEntries(SEED_GROUPS.map((g) => [g.key, groupDn(g.cn)])) as Record<SeedGroupName, string>,
};

function connectionInfo(): SambaAd {
  return {
    ldapUrl: `ldap://${IP}:389`,
    ldapsUrl: `ldaps://${IP}:636`,
    host: IP,
    baseDn: SAMBA_AD_BASE_DN,
    realm: SAMBA_AD_REALM,
    bindDn: `administrator@${SAMBA_AD_REALM.toLowerCase()}`,
    bindPassword: SAMBA_AD_ADMIN_PASSWORD,
    caCertPath: join(TLS_DIR, 'ca.pem'),
    otherCaCertPath: join(TLS_DIR, 'other-ca.pem'),
    seed: seedDirectory,
  };
}

function log(msg: string): void {
  if (process.env['SAMBA_AD_VERBOSE'] || require.main === module) process.stderr.write(`[samba-ad] ${msg}\n`);
}

/** The id of this jest run (the main process's pid, exported by the global setup), if any. */
function runId(): string | undefined {
  return process.env['PROVISIO_TEST_RUN_PID'];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid of the Samba we started, if it is still that process (pids are reused). */
function runningPid(): number | undefined {
  if (!existsSync(PID_FILE)) return undefined;
  const pid = Number(readFileSync(PID_FILE, 'utf8').trim());
  if (!pid || !alive(pid)) return undefined;
  try {
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'samba') return undefined;
  } catch {
    return undefined;
  }
  return pid;
}

// ---------------------------------------------------------------- lock

/** Runs `fn` holding the machine-wide lock, so concurrent workers and runs queue here. */
function withLock<T>(fn: () => Promise<T>): Promise<T> {
  return withDirectoryLock(LOCK_DIR, fn, { waitMs: 15 * 60_000, pollMs: 200, label: 'samba-ad: lock' });
}

// ---------------------------------------------------------------- install, TLS, provision

async function commandExists(cmd: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

async function installPackages(): Promise<void> {
  if ((await commandExists('samba')) && (await commandExists('samba-tool')) && existsSync(PROVISION_SCHEMA_FILE)) return;
  log(`installing ${PACKAGES.join(' ')} (apt-get)`);
  await installDebianPackages(PACKAGES, 'samba-ad');
}

/**
 * Our own CA and server certificate (instead of Samba's self-signed one, whose name is the DC's FQDN):
 * verification then works against 127.0.0.1 with nothing but the CA file, as a client would configure it.
 */
async function makeTlsFiles(): Promise<void> {
  if (existsSync(join(TLS_DIR, 'cert.pem')) && existsSync(join(TLS_DIR, 'other-ca.pem'))) return;
  await mkdir(TLS_DIR, { recursive: true });
  const o = (...a: string[]) => run('openssl', a, { cwd: TLS_DIR });
  for (const [name, cn] of [['ca', 'Provisio Test CA'], ['other-ca', 'Unrelated Test CA']] as const) {
    await o('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '3650', '-subj', `/CN=${cn}`,
      '-keyout', `${name}-key.pem`, '-out', `${name}.pem`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  }
  await o('req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-subj', '/CN=dc1.test.local', '-keyout', 'key.pem', '-out', 'server.csr');
  await writeFile(join(TLS_DIR, 'server.ext'),
    'subjectAltName=DNS:dc1.test.local,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n');
  await o('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '3650',
    '-sha256', '-extfile', 'server.ext', '-out', 'cert.pem');
  // Samba refuses a key file that others can read.
  await run('chmod', ['600', join(TLS_DIR, 'key.pem')]);
}

async function provision(): Promise<void> {
  if (existsSync(CONF)) return;
  log(`provisioning ${SAMBA_AD_REALM} in ${DIR}`);
  // A half-provisioned directory from an interrupted run would make provision fail: start clean.
  for (const d of ['etc', 'private', 'state', 'cache', 'bind-dns']) await rm(join(DIR, d), { recursive: true, force: true });
  await mkdir(RUN_DIR, { recursive: true });
  await mkdir(LOG_DIR, { recursive: true });
  const empty = join(DIR, 'empty.conf');
  await writeFile(empty, '');
  try {
    await run('samba-tool', ['domain', 'provision', '-s', empty, '--use-rfc2307', `--realm=${SAMBA_AD_REALM}`,
      `--domain=${SAMBA_AD_DOMAIN}`, '--server-role=dc', '--dns-backend=NONE', `--targetdir=${DIR}`,
      `--adminpass=${SAMBA_AD_ADMIN_PASSWORD}`, '--host-name=dc1',
      `--option=interfaces = ${IP}`, '--option=bind interfaces only = yes',
      '--option=server services = ldap, cldap, kdc', `--option=pid directory = ${RUN_DIR}`,
      `--option=log file = ${join(LOG_DIR, 'samba.log')}`, '--option=logging = file'], { maxBuffer: 64 << 20 });
  } catch (e) {
    await rm(join(DIR, 'etc'), { recursive: true, force: true });
    const err = e as { stdout?: string; stderr?: string };
    throw new Error(`samba-ad: provision failed:\n${String(err.stderr ?? '').slice(-2000)}${String(err.stdout ?? '').slice(-2000)}`);
  }
  const extra = [
    'ldap server require strong auth = no',
    'tls enabled = yes',
    `tls keyfile = ${join(TLS_DIR, 'key.pem')}`,
    `tls certfile = ${join(TLS_DIR, 'cert.pem')}`,
    `tls cafile = ${join(TLS_DIR, 'ca.pem')}`,
  ];
  const conf = await readFile(CONF, 'utf8');
  await writeFile(CONF, conf.replace(/^\[global\]\s*$/m, `[global]\n${extra.map((l) => `\t${l}`).join('\n')}`));
}

// ---------------------------------------------------------------- start / stop

/** The naming context served on 127.0.0.1:389, or undefined if nothing answers there. */
async function rootDseNamingContext(): Promise<string | undefined> {
  const c = new Client({ url: `ldap://${IP}:389`, connectTimeout: 1000, timeout: 2000 });
  try {
    const { searchEntries } = await c.search('', { scope: 'base', attributes: ['defaultNamingContext'] });
    const v = searchEntries[0]?.['defaultNamingContext'];
    return typeof v === 'string' ? v : 'unknown';
  } catch {
    return undefined;
  } finally {
    await c.unbind().catch(() => undefined);
  }
}

async function startSamba(): Promise<void> {
  if (runningPid()) return;
  if (await rootDseNamingContext()) {
    throw new Error(`samba-ad: something not started by tests/support/samba-ad.ts already serves LDAP on ${IP}:389 ` +
      '(a samba started by ../shared/test-services/samba-ad.sh? stop it first)');
  }
  log('starting samba (single process model)');
  const out = openSync(join(LOG_DIR, 'samba.stdout'), 'a');
  // Detached, so it outlives the jest worker that happened to start it.
  const child = spawn('samba', ['-s', CONF, '-F', '--no-process-group', '-M', 'single'], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  child.unref();
  if (!child.pid) throw new Error('samba-ad: could not spawn samba');
  await writeFile(PID_FILE, String(child.pid));
  await writeFile(STARTED_BY_TESTS, new Date().toISOString());
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (!runningPid()) {
      const tail = existsSync(join(LOG_DIR, 'samba.log')) ? readFileSync(join(LOG_DIR, 'samba.log'), 'utf8').slice(-2000) : '';
      throw new Error(`samba-ad: samba exited during start-up:\n${tail}`);
    }
    if (await rootDseNamingContext()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('samba-ad: samba did not answer on LDAP within 60 s');
}

async function stopSamba(): Promise<void> {
  const pid = runningPid();
  if (pid) {
    log(`stopping samba pid ${pid}`);
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    // The ports are released only once the process is gone; the next start must not race it.
    while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
  }
  await rm(PID_FILE, { force: true });
  await rm(STARTED_BY_TESTS, { force: true });
  await rm(SEED_MARK, { force: true });
}

// ---------------------------------------------------------------- seed

function utf16Password(p: string): Buffer {
  return Buffer.from(`"${p}"`, 'utf16le');
}

function isCode(e: unknown, code: number): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

/**
 * Creates the seeded objects or resets them to their seeded state (attributes, enabled flag, group members),
 * so tests that change them start from the same directory in every run.
 */
async function seed(): Promise<void> {
  const info = connectionInfo();
  const c = new Client({ url: info.ldapsUrl, tlsOptions: { ca: readFileSync(info.caCertPath) }, timeout: 15_000 });
  try {
    await c.bind(info.bindDn, info.bindPassword);
    try {
      await c.add(SEED_OU, { objectClass: ['top', 'organizationalUnit'], ou: 'Provisio' });
    } catch (e) {
      if (!isCode(e, 68)) throw e;
    }
    for (const u of SEED_USERS) {
      const dn = userDn(u);
      const attrs: Record<string, string> = {
        givenName: u.givenName,
        sn: u.sn,
        displayName: `${u.givenName} ${u.sn}`,
        userPrincipalName: `${u.sam}@test.local`,
        ...u.attrs,
      };
      const uac = u.disabled ? '514' : '512';
      try {
        // unicodePwd goes in with the add, over LDAPS, as real AD demands.
        await c.add(dn, [
          new Attribute({ type: 'objectClass', values: ['top', 'person', 'organizationalPerson', 'user'] }),
          new Attribute({ type: 'sAMAccountName', values: [u.sam] }),
          ...Object.entries(attrs).map(([type, v]) => new Attribute({ type, values: [v] })),
          new Attribute({ type: 'unicodePwd', values: [utf16Password(SEED_USER_PASSWORD)] }),
          new Attribute({ type: 'userAccountControl', values: [uac] }),
        ]);
      } catch (e) {
        if (!isCode(e, 68)) throw e;
        await c.modify(dn, [
          ...Object.entries(attrs).map(([type, v]) => new Change({ operation: 'replace', modification: new Attribute({ type, values: [v] }) })),
          new Change({ operation: 'replace', modification: new Attribute({ type: 'userAccountControl', values: [uac] }) }),
        ]);
      }
    }
    for (const u of SEED_USERS) {
      const manager = SEED_USERS.find((m) => m.key === u.managerKey);
      await c.modify(userDn(u), new Change({
        operation: 'replace',
        modification: new Attribute({ type: 'manager', values: manager ? [userDn(manager)] : [] }),
      }));
    }
    for (const g of SEED_GROUPS) {
      try {
        // -2147483646: a global security group.
        await c.add(groupDn(g.cn), { objectClass: ['top', 'group'], cn: g.cn, sAMAccountName: g.cn, groupType: '-2147483646' });
      } catch (e) {
        if (!isCode(e, 68)) throw e;
      }
    }
    for (const g of SEED_GROUPS) {
      const members = g.members.map((m) => {
        if ('user' in m) return userDn(SEED_USERS.find((u) => u.key === m.user) as SeedUser);
        return groupDn(SEED_GROUPS.find((x) => x.key === m.group)?.cn as string);
      });
      await c.modify(groupDn(g.cn), new Change({ operation: 'replace', modification: new Attribute({ type: 'member', values: members }) }));
    }
  } finally {
    await c.unbind().catch(() => undefined);
  }
}

// ---------------------------------------------------------------- public

/**
 * Makes sure the shared Samba AD DC runs and is seeded, and returns how to reach it. Installs Samba
 * with apt-get when missing (root only). Safe to call from every test file and worker concurrently.
 * Give the calling hook a generous timeout: a cold install plus provision takes about half a minute.
 */
export async function ensureSambaAd(): Promise<SambaAd> {
  const id = runId();
  await withLock(async () => {
    mkdirSync(LEASE_DIR, { recursive: true });
    const started = Date.now();
    if (!runningPid()) {
      await installPackages();
      await makeTlsFiles();
      await provision();
      await startSamba();
    }
    const mark = `${SEED_VERSION} ${id ?? 'none'}`;
    const current = existsSync(SEED_MARK) ? readFileSync(SEED_MARK, 'utf8') : '';
    // Without a run id (no jest global setup) reseed on every call: correct, only slower.
    if (current !== mark || !id) {
      await seed();
      await writeFile(SEED_MARK, mark);
    }
    if (id) await writeFile(join(LEASE_DIR, id), new Date().toISOString());
    log(`ready in ${Date.now() - started} ms`);
  });
  return connectionInfo();
}

/**
 * Drops this run's lease; stops Samba when these helpers started it and no other live jest run holds a
 * lease. A Samba started by hand (`... samba-ad.ts start`) keeps running.
 */
export async function releaseSambaAd(id: string | undefined = runId()): Promise<void> {
  if (!existsSync(DIR)) return;
  await withLock(async () => {
    if (id) await rm(join(LEASE_DIR, id), { force: true });
    const others = existsSync(LEASE_DIR) ? readdirSync(LEASE_DIR).filter((l) => alive(Number(l))) : [];
    if (others.length > 0 || !existsSync(STARTED_BY_TESTS) || readFileSync(STARTED_BY_TESTS, 'utf8').startsWith('manual')) return;
    await stopSamba();
  });
}

/** Per-run id for leases; the jest global setup calls it once in the main process, workers inherit it. */
export function markTestRun(): void {
  process.env['PROVISIO_TEST_RUN_PID'] ??= String(process.pid);
}

async function main(cmd: string): Promise<void> {
  switch (cmd) {
    case 'start': {
      const t = Date.now();
      const info = await ensureSambaAd();
      // Started by hand: leave it to `stop`, not to a test run's teardown.
      if (existsSync(STARTED_BY_TESTS)) await writeFile(STARTED_BY_TESTS, `manual ${new Date().toISOString()}`);
      process.stdout.write(`${JSON.stringify({ ...info, seconds: (Date.now() - t) / 1000 }, null, 2)}\n`);
      return;
    }
    case 'stop':
      await withLock(stopSamba);
      return;
    case 'status': {
      const pid = runningPid();
      process.stdout.write(pid ? `running pid ${pid}\n` : 'stopped\n');
      process.exitCode = pid ? 0 : 1;
      return;
    }
    case 'purge':
      await withLock(async () => {
        await stopSamba();
        await rm(DIR, { recursive: true, force: true });
      });
      return;
    default:
      process.stderr.write('usage: samba-ad.ts start|stop|status|purge\n');
      process.exitCode = 2;
  }
}

if (require.main === module) {
  main(process.argv[2] ?? 'start').catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
