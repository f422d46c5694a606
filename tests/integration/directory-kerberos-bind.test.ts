/**
 * Kerberos (SASL GSSAPI) binds of the directory adapter against the real Samba AD DC and its KDC
 * (tests/support/samba-kerberos.ts): keytab and password, sealed and signed security layers on plain LDAP, real
 * lookups through the normal directory API and its pool, and every bad input named precisely, never a hang.
 *
 * The connection goes through a loopback TCP relay to the DC's port 389, which counts connections and keeps the
 * bytes the server sent: a sealed session must not show a looked-up attribute value in them, a signed one must
 * (so the check can fail). The last block stores the settings through the settings module (keytab sealed) and
 * reads them back as the AD gateway does: it runs on the test database (PGlite, or PostgreSQL with DATABASE_URL).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import {
  createDirectory,
  DirectoryError,
  DirectoryErrorCode,
  type Directory,
  type DirectorySettings,
} from '../../adapter/directory';
import { updateSettings } from '../../server/domain/settings/settings';
import { readDirectorySettings } from '../../server/gateway/settings';
import { createTestDatabase, testEngine } from '../support/db';
import { rejectionOf } from '../support/rejection';
import { closeTcpRelay, resetTcpRelay, startTcpRelay, type TcpRelay } from '../support/tcp-relay';
import { ensureSambaAd, type SambaAd } from '../support/samba-ad';
import { ensureKerberos, type SambaKerberos } from '../support/samba-kerberos';

let ad: SambaAd;
let k: SambaKerberos;
let keytab: string;
let caPem: string;
const open: Directory[] = [];

/** A relay 127.0.0.1:<port> -> 127.0.0.1:389 that counts connections and records server->client bytes. */
let relay: TcpRelay;

function settings(over: Partial<DirectorySettings> = {}): DirectorySettings {
  return {
    server: '127.0.0.1',
    port: relay.port,
    security: 'none',
    authType: 'kerberos',
    kerberosPrincipal: k.client.principal,
    kerberosKeytab: keytab,
    kerberosSpnHost: k.dcHost,
    krb5ConfPath: k.krb5Conf,
    baseDn: ad.seed.ou,
    ...over,
  };
}

function directory(over: Partial<DirectorySettings> = {}, deps: Parameters<typeof createDirectory>[1] = {}): Directory {
  const d = createDirectory(settings(over), deps);
  open.push(d);
  return d;
}

const failure = (p: Promise<unknown>): Promise<DirectoryError> => rejectionOf(p, DirectoryError);

/** Real work on the pool: user validation, manager, nested group membership, eligibility. */
async function lookups(d: Directory): Promise<void> {
  const u = await d.findUser({ by: 'sAMAccountName', value: 'jdoe' });
  expect(u.dn).toBe(ad.seed.users.jdoe);
  expect(u.attributes.employee_id).toBe('E1001');
  expect(u.enabled).toBe(true);
  const m = await d.checkMembership({ by: 'sAMAccountName', value: 'jdoe' }, { by: 'dn', value: ad.seed.groups.restricted });
  expect(m.member).toBe(true);
  const mgr = await d.findManager({ by: 'sAMAccountName', value: 'jdoe' });
  expect(mgr?.dn).toBe(ad.seed.users.manager);
  const e = await d.checkEligibleRequestor({ by: 'sAMAccountName', value: 'jdoe' }, { by: 'dn', value: ad.seed.groups.restricted });
  expect(e).toMatchObject({ eligible: true, reason: 'nested-member' });
}

const serverBytes = (): Buffer => Buffer.concat(relay.fromServer);

beforeAll(async () => {
  ad = await ensureSambaAd();
  k = await ensureKerberos();
  keytab = readFileSync(k.clientKeytab).toString('base64');
  caPem = readFileSync(ad.caCertPath, 'utf8');
  relay = await startTcpRelay(389);
}, 900_000);

afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

afterAll(async () => {
  await closeTcpRelay(relay);
});

describe('kerberos bind on plain LDAP with a SASL security layer', () => {
  test('keytab, sealed: lookups through one pooled connection; the wire carries no attribute value in clear', async () => {
    resetTcpRelay(relay);
    const d = directory({ saslProtection: 'seal', poolSize: 1 });
    await expect(d.testConnection()).resolves.toEqual({ defaultNamingContext: 'DC=test,DC=local' });
    // testConnection uses a connection of its own; the pool opens exactly one more for everything below.
    for (let i = 0; i < 5; i++) await lookups(d);
    // Concurrent callers queue for the single connection: wrap/unwrap state must stay in step.
    await Promise.all(Array.from({ length: 8 }, () => lookups(d)));
    expect(relay.connections).toBe(2);
    const wire = serverBytes();
    expect(wire.length).toBeGreaterThan(10_000);
    for (const value of ['E1001', 'jdoe@test.local', 'Provisio-Restricted', 'John Doe']) {
      expect(wire.includes(Buffer.from(value))).toBe(false);
    }
  }, 120_000);

  test('password, signed: the same lookups work, and the (integrity-only) wire shows the values: the seal check can fail', async () => {
    resetTcpRelay(relay);
    const d = directory({ saslProtection: 'sign', kerberosKeytab: undefined, bindPassword: k.client.password, poolSize: 1 });
    for (let i = 0; i < 3; i++) await lookups(d);
    await Promise.all(Array.from({ length: 4 }, () => lookups(d)));
    expect(relay.connections).toBe(1);
    const wire = serverBytes();
    expect(wire.includes(Buffer.from('E1001'))).toBe(true);
    expect(wire.includes(Buffer.from('jdoe@test.local'))).toBe(true);
  }, 120_000);

  test('a pool of 4 opened concurrently: each connection binds with its own context, the shared ccache read safely', async () => {
    resetTcpRelay(relay);
    const d = directory({ poolSize: 4 });
    await Promise.all(Array.from({ length: 16 }, () => lookups(d)));
    await Promise.all(Array.from({ length: 16 }, () => lookups(d)));
    expect(relay.connections).toBeGreaterThanOrEqual(2);
    expect(relay.connections).toBeLessThanOrEqual(4);
  }, 120_000);

  test('password, sealed, and keytab, signed, both bind', async () => {
    const a = directory({ saslProtection: 'seal', kerberosKeytab: undefined, bindPassword: k.client.password });
    const b = directory({ saslProtection: 'sign' });
    await lookups(a);
    await lookups(b);
  }, 120_000);

  test('a pooled connection the server drops is replaced, never silently re-opened unbound', async () => {
    resetTcpRelay(relay);
    const d = directory({ poolSize: 1 });
    await lookups(d);
    for (const s of relay.sockets) s.destroy();
    await lookups(d);
    expect(relay.connections).toBe(2);
  }, 120_000);
});

// NTLM (GSS-SPNEGO/NTLMSSP, adapter/directory/sasl/ntlm, written separately) over the same transport: runs once
// that module exists.
// NTLM binds (the same transport, GSS-SPNEGO/NTLMSSP) are tested in directory-ntlm-bind.test.ts.
describe('bad input is named precisely, within the bounds', () => {
  test('a wrong password is INVALID_CREDENTIALS naming KDC_ERR_PREAUTH_FAILED, without the password', async () => {
    const wrong = 'Wr0ng!Passw0rd-xyz';
    const e = await failure(directory({ kerberosKeytab: undefined, bindPassword: wrong }).testConnection());
    expect(e.code).toBe(DirectoryErrorCode.INVALID_CREDENTIALS);
    expect(e.details.krbError).toBe('KDC_ERR_PREAUTH_FAILED');
    expect(e.message).toMatch(/wrong password or stale keytab/);
    expect(e.message).not.toContain(wrong);
    expect(JSON.stringify(e.details)).not.toContain(wrong);
  }, 60_000);

  test('an unknown principal is INVALID_CREDENTIALS naming KDC_ERR_C_PRINCIPAL_UNKNOWN', async () => {
    const e = await failure(directory({ kerberosPrincipal: `nobody-here@${k.realm}`, kerberosKeytab: undefined, bindPassword: 'x-Passw0rd!' }).testConnection());
    expect(e.code).toBe(DirectoryErrorCode.INVALID_CREDENTIALS);
    expect(e.details.krbError).toBe('KDC_ERR_C_PRINCIPAL_UNKNOWN');
  }, 60_000);

  test('a wrong SPN host is a CONFIG error naming KDC_ERR_S_PRINCIPAL_UNKNOWN', async () => {
    const e = await failure(directory({ kerberosSpnHost: 'dc9.test.local' }).testConnection());
    expect(e.code).toBe(DirectoryErrorCode.CONFIG);
    expect(e.details.krbError).toBe('KDC_ERR_S_PRINCIPAL_UNKNOWN');
    expect(e.message).toMatch(/ldap\/dc9\.test\.local/);
  }, 60_000);

  test('an unreachable KDC is UNAVAILABLE within the bound', async () => {
    const started = Date.now();
    const d = directory({ kerberosKeytab: undefined, bindPassword: k.client.password }, { kerberos: { kinitEnv: { KRB5_CONFIG: k.unreachableKrb5Conf } } });
    const e = await failure(d.testConnection());
    expect(e.code).toBe(DirectoryErrorCode.UNAVAILABLE);
    expect(e.message).toMatch(/no KDC answered/);
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 60_000);

  test('an LDAP port where nothing listens is UNAVAILABLE, bounded', async () => {
    const e = await failure(directory({ port: 1, connectTimeoutMs: 2000 }).testConnection());
    expect(e.code).toBe(DirectoryErrorCode.UNAVAILABLE);
    expect(e.message).toMatch(/ECONNREFUSED|connect/);
  }, 60_000);

  test('a server that accepts TCP and never answers the bind fails within the operation timeout', async () => {
    const held: Socket[] = [];
    // Reads (so it sees the client's close) but never answers.
    const silent = createServer((c) => { held.push(c); c.resume(); });
    await new Promise<void>((res) => silent.listen(0, '127.0.0.1', res));
    try {
      const started = Date.now();
      const e = await failure(directory({ port: (silent.address() as { port: number }).port, timeoutMs: 1500 }).testConnection());
      expect(e.code).toBe(DirectoryErrorCode.UNAVAILABLE);
      expect(e.message).toMatch(/GSSAPI bind: no answer within 1500 ms/);
      expect(Date.now() - started).toBeLessThan(10_000);
      // The failed connection was closed by the client, not left open.
      await new Promise((r) => setTimeout(r, 200));
      expect(held.every((c) => c.destroyed || c.readableEnded)).toBe(true);
    } finally {
      for (const c of held) c.destroy();
      await new Promise((r) => silent.close(r));
    }
  }, 60_000);

  test('kerberos over LDAPS and StartTLS: layer none binds (TLS protects); sign or seal under TLS is refused by Samba, mapped with its words', async () => {
    const tls = { caCertPem: caPem, tlsServerName: 'dc1.test.local' };
    await lookups(directory({ port: 636, security: 'ldaps', ...tls }));
    await lookups(directory({ port: 389, security: 'starttls', ...tls }));
    for (const [security, port] of [['ldaps', 636], ['starttls', 389]] as const) {
      const e = await failure(directory({ port, security, ...tls, saslProtection: 'seal' }).testConnection());
      expect(e.message).toMatch(/Sign or Seal are not allowed if TLS is used/);
      expect(e.message).toMatch(/set SASL protection to none with LDAPS\/StartTLS/);
      expect(e.code).toBe(DirectoryErrorCode.CONFIG);
    }
  }, 60_000);

  test('settings: precise CONFIG errors', () => {
    const config = (over: Partial<DirectorySettings>): string => {
      try {
        createDirectory(settings(over));
      } catch (e) {
        expect((e as DirectoryError).code).toBe(DirectoryErrorCode.CONFIG);
        return (e as Error).message;
      }
      throw new Error('expected CONFIG');
    };
    expect(config({ saslProtection: 'none' })).toMatch(/would send every query in clear/);
    expect(config({ kerberosPrincipal: 'no-realm' })).toMatch(/principal is required, as name@REALM/);
    expect(config({ kerberosKeytab: Buffer.from('not a keytab').toString('base64') })).toMatch(/base64 MIT keytab/);
    expect(config({ kerberosKeytab: undefined, bindPassword: undefined })).toMatch(/keytab or the principal's password/);
    expect(config({ kerberosSpnHost: undefined })).toMatch(/SPN host must be the DC's host name/);
  });
});

describe(`gateway settings: a stored kerberos section (${testEngine})`, () => {
  test('maps to a working sealed Kerberos directory; the keytab is stored sealed and never in clear', async () => {
    const t = await createTestDatabase();
    try {
      await t.db.transaction((tx) => updateSettings(tx, 'active_directory', {
        server: '127.0.0.1', port: relay.port, use_tls: false, start_tls: false, base_dn: ad.seed.ou, auth_type: 'kerberos',
        kerberos_principal: k.client.principal, kerberos_keytab: keytab, kerberos_spn_host: k.dcHost, krb5_conf_path: k.krb5Conf,
        sasl_protection: 'seal',
      }, { triggeredBy: 'system:test' }));
      const rows = await t.db.query<{ key: string; value: unknown; is_secret: boolean }>(
        "SELECT key, value, is_secret FROM app_config WHERE section = 'active_directory'");
      const row = rows.rows.find((r) => r.key === 'active_directory.kerberos_keytab');
      expect(row?.is_secret).toBe(true);
      expect(JSON.stringify(rows.rows)).not.toContain(keytab.slice(0, 40));
      const s = await readDirectorySettings(t.db, {});
      expect(s).toMatchObject({ authType: 'kerberos', kerberosPrincipal: k.client.principal, kerberosKeytab: keytab, security: 'none', saslProtection: 'seal' });
      const d = createDirectory(s);
      open.push(d);
      await lookups(d);
      // The environment overrides the stored values; a kerberos section without keytab or password is named.
      await expect(readDirectorySettings(t.db, { AD_SASL_PROTECTION: 'clear' })).rejects.toThrow(/AD_SASL_PROTECTION must be seal, sign or none/);
      const envOnly = await readDirectorySettings(t.db, { AD_KERBEROS_KEYTAB_FILE: k.clientKeytab, AD_SASL_PROTECTION: 'sign' });
      expect(envOnly).toMatchObject({ kerberosKeytab: keytab, saslProtection: 'sign' });
    } finally {
      await t.drop();
    }
  }, 120_000);
});
