/**
 * adapter/kerberos against Samba's own KDC (tests/support/samba-kerberos.ts): tickets from a keytab and from a
 * password, GSS-SPNEGO initiation for the DC's LDAP SPN, and each failure named by its Kerberos error, never a hang.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createKerberosCredentials, KerberosError, type KerberosCredentials } from '../../adapter/kerberos';
import { installDebianPackages } from '../support/apt';
import { ensureKerberos, type SambaKerberos } from '../support/samba-kerberos';

let k: SambaKerberos;
let creds: KerberosCredentials;
let silentKdc: Server;
const sockets: Socket[] = [];
let silentConf: string;
let faketimeLib: string;

async function failure(p: Promise<unknown>): Promise<KerberosError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(KerberosError);
  return e as KerberosError;
}

beforeAll(async () => {
  k = await ensureKerberos();
  await installDebianPackages(['libfaketime'], 'kerberos-credentials test');
  faketimeLib = execFileSync('dpkg', ['-L', 'libfaketime'], { encoding: 'utf8' }).split('\n')
    .find((l) => /faketime\/libfaketime\.so\.1$/.test(l)) ?? '';
  creds = createKerberosCredentials({ krb5Conf: k.krb5Conf, kinitTimeoutMs: 3000 });
  // A "KDC" that accepts TCP connections and never answers: kinit must be cut off by our bound.
  silentKdc = createServer((s) => { sockets.push(s); });
  await new Promise<void>((r) => silentKdc.listen(0, '127.0.0.1', r));
  const port = (silentKdc.address() as { port: number }).port;
  silentConf = join(k.krb5Conf, '..', `krb5-silent-${process.pid}.conf`);
  writeFileSync(silentConf, readFileSync(k.krb5Conf, 'utf8').replace(/127\.0\.0\.1:88/g, `127.0.0.1:${port}`));
}, 600_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => silentKdc.close(r));
  await creds.forget(k.client.principal);
  await creds.forget(k.httpService.principal);
  rmSync(silentConf, { force: true });
  rmSync(join(k.krb5Conf, '..', `krb5-notimesync-${process.pid}.conf`), { force: true });
});

// These GSS steps once hung in the whole suite (never in this file alone): the second test file in a jest worker to
// load the `kerberos` package re-wrapped its already promise-wrapped native methods; adapter/kerberos/gss.ts puts the
// native ones back first (see restoreNativeMethods). Running this file after another Kerberos file in one worker
// (`--runInBand`) is what exercises it.
test('a keytab gets a TGT and a GSS-SPNEGO context asks the KDC for ldap/dc1.test.local', async () => {
  const t = await creds.acquire(k.client.principal, { keytabPath: k.clientKeytab });
  expect(t.principal).toBe(k.client.principal);
  expect(t.expiresAt.getTime()).toBeGreaterThan(Date.now());
  const ctx = await creds.initClient(k.ldapService, { principal: k.client.principal });
  const token = Buffer.from(await ctx.step(''), 'base64');
  // A SPNEGO NegTokenInit: an [APPLICATION 0] GSS token (0x60) carrying the Kerberos AP-REQ.
  expect(token[0]).toBe(0x60);
  expect(token.length).toBeGreaterThan(500);
});

test('a base64 keytab (a sealed setting) and a password both work, and two identities coexist', async () => {
  const b64 = readFileSync(k.clientKeytab).toString('base64');
  await creds.acquire(k.client.principal, { keytabBase64: b64 });
  await creds.acquire(k.httpService.principal, { password: k.httpService.password });
  const a = await creds.initClient(k.ldapService, { principal: k.client.principal });
  const b = await creds.initClient(k.ldapService, { principal: k.httpService.principal, mechanism: 'krb5' });
  expect((await a.step('')).length).toBeGreaterThan(0);
  expect((await b.step('')).length).toBeGreaterThan(0);
});

test('ensureTicket reuses a ticket and renews it before expiry', async () => {
  let now = Date.now();
  const c = createKerberosCredentials({ lifetimeSeconds: 600, renewBeforeMs: 120_000, now: () => now });
  const first = await c.ensureTicket(k.client.principal, { keytabPath: k.clientKeytab });
  expect(await c.ensureTicket(k.client.principal, { keytabPath: k.clientKeytab })).toBe(first);
  now += 500_000; // 100 s left: inside the renewal margin
  const second = await c.ensureTicket(k.client.principal, { keytabPath: k.clientKeytab });
  expect(second).not.toBe(first);
  expect(second.acquiredAt.getTime()).toBe(now);
});

test('wrong password is KDC_ERR_PREAUTH_FAILED and the password appears nowhere in the error', async () => {
  const secret = 'Not-The-Passw0rd!';
  const e = await failure(creds.acquire(k.client.principal, { password: secret }));
  expect(e.code).toBe('KERBEROS_BAD_CREDENTIALS');
  expect(e.krbError).toBe('KDC_ERR_PREAUTH_FAILED');
  expect(JSON.stringify({ m: e.message, x: e.extra, s: e.stack })).not.toContain(secret);
});

test('unknown principal is KDC_ERR_C_PRINCIPAL_UNKNOWN', async () => {
  const e = await failure(creds.acquire('no-such-user@TEST.LOCAL', { password: 'x' }));
  expect(e.krbError).toBe('KDC_ERR_C_PRINCIPAL_UNKNOWN');
});

test('a service name with no SPN is KDC_ERR_S_PRINCIPAL_UNKNOWN', async () => {
  await creds.acquire(k.client.principal, { keytabPath: k.clientKeytab });
  const ctx = await creds.initClient('ldap@no-spn.test.local', { principal: k.client.principal });
  const e = await failure(ctx.step(''));
  expect(e.code).toBe('KERBEROS_UNKNOWN_SERVICE');
  expect(e.krbError).toBe('KDC_ERR_S_PRINCIPAL_UNKNOWN');
});

test('a context for a principal without a ticket is refused before any network call', async () => {
  const e = await failure(creds.initClient(k.ldapService, { principal: 'krbtgt-less@TEST.LOCAL' }));
  expect(e.code).toBe('KERBEROS_TICKET_EXPIRED');
});

test('a clock two hours off is KRB_AP_ERR_SKEW (libfaketime on kinit)', async () => {
  expect(faketimeLib).not.toBe('');
  // MIT's client adopts the KDC's time after a skew error by default (kdc_timesync) and retries: turn that off.
  const skewConf = join(k.krb5Conf, '..', `krb5-notimesync-${process.pid}.conf`);
  writeFileSync(skewConf, readFileSync(k.krb5Conf, 'utf8').replace('[libdefaults]', '[libdefaults]\n\tkdc_timesync = 0'));
  const c = createKerberosCredentials({ kinitEnv: { KRB5_CONFIG: skewConf, LD_PRELOAD: faketimeLib, FAKETIME: '+2h', DONT_FAKE_MONOTONIC: '1' } });
  const e = await failure(c.acquire(k.client.principal, { password: k.client.password }));
  expect(e.krbError).toBe('KRB_AP_ERR_SKEW');
});

test('a refused KDC port and a silent KDC both fail fast as KDC unreachable', async () => {
  const refused = createKerberosCredentials({ kinitEnv: { KRB5_CONFIG: k.unreachableKrb5Conf } });
  const e1 = await failure(refused.acquire(k.client.principal, { password: 'x' }));
  expect(e1.code).toBe('KERBEROS_KDC_UNREACHABLE');
  expect(e1.retryable).toBe(true);
  const silent = createKerberosCredentials({ kinitTimeoutMs: 1500, kinitEnv: { KRB5_CONFIG: silentConf } });
  const t0 = Date.now();
  const e2 = await failure(silent.acquire(k.client.principal, { password: 'x' }));
  expect(e2.code).toBe('KERBEROS_KDC_UNREACHABLE');
  expect(Date.now() - t0).toBeLessThan(10_000);
});

test('a second, different krb5.conf in one process is refused (KRB5_CONFIG is process-wide)', () => {
  expect(() => createKerberosCredentials({ krb5Conf: '/etc/other-krb5.conf' })).toThrow(/process-wide/);
});
