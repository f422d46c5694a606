/**
 * NTLM (SASL GSS-SPNEGO carrying NTLMSSP) binds of the directory adapter against the real Samba AD DC
 * (tests/support/samba-ad.ts): sealed and signed security layers on plain LDAP, protection none over LDAPS,
 * real lookups through the normal directory API and its pool, a wrong password named precisely.
 *
 * Plain LDAP goes through a loopback TCP relay to port 389 that counts connections and keeps the bytes the
 * server sent: a sealed session must not show a looked-up attribute value in them. NTLM "sign" on LDAP seals
 * too (Windows/Samba GENSEC_FEATURE_LDAP_STYLE), so it is checked the same way.
 */
import { readFileSync } from 'node:fs';
import { createDirectory, DirectoryError, DirectoryErrorCode, type Directory, type DirectorySettings } from '../../adapter/directory';
import { Client } from 'ldapts';
import { rejectionOf } from '../support/rejection';
import { closeTcpRelay, resetTcpRelay, startTcpRelay, type TcpRelay } from '../support/tcp-relay';
import { ensureSambaAd, SAMBA_AD_DOMAIN, SEED_USER_PASSWORD, type SambaAd } from '../support/samba-ad';

let ad: SambaAd;
let caPem: string;
const open: Directory[] = [];

let relay: TcpRelay;

function directory(over: Partial<DirectorySettings> = {}): Directory {
  const d = createDirectory({
    server: '127.0.0.1',
    port: relay.port,
    security: 'none',
    authType: 'ntlm',
    bindDn: `${SAMBA_AD_DOMAIN}\\Administrator`,
    bindPassword: ad.bindPassword,
    baseDn: ad.seed.ou,
    ...over,
  });
  open.push(d);
  return d;
}

const failure = (p: Promise<unknown>): Promise<DirectoryError> => rejectionOf(p, DirectoryError);

async function lookups(d: Directory): Promise<void> {
  const u = await d.findUser({ by: 'sAMAccountName', value: 'jdoe' });
  expect(u.dn).toBe(ad.seed.users.jdoe);
  expect(u.attributes.employee_id).toBe('E1001');
  const m = await d.checkMembership({ by: 'sAMAccountName', value: 'jdoe' }, { by: 'dn', value: ad.seed.groups.restricted });
  expect(m.member).toBe(true);
  const mgr = await d.findManager({ by: 'sAMAccountName', value: 'jdoe' });
  expect(mgr?.dn).toBe(ad.seed.users.manager);
}

const serverBytes = (): Buffer => Buffer.concat(relay.fromServer);

beforeAll(async () => {
  ad = await ensureSambaAd();
  caPem = readFileSync(ad.caCertPath, 'utf8');
  relay = await startTcpRelay(389);
}, 900_000);

afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

afterAll(async () => {
  await closeTcpRelay(relay);
});

describe('ntlm bind on plain LDAP with a SASL security layer', () => {
  test('sealed: lookups through one pooled connection; the wire carries no attribute value in clear', async () => {
    resetTcpRelay(relay);
    const d = directory({ saslProtection: 'seal', poolSize: 1 });
    await expect(d.testConnection()).resolves.toEqual({ defaultNamingContext: 'DC=test,DC=local' });
    for (let i = 0; i < 3; i++) await lookups(d);
    await Promise.all(Array.from({ length: 6 }, () => lookups(d)));
    expect(relay.connections).toBe(2);
    const wire = serverBytes();
    expect(wire.length).toBeGreaterThan(5_000);
    for (const value of ['E1001', 'jdoe@test.local', 'Provisio-Restricted', 'DC=test,DC=local']) expect(wire.includes(Buffer.from(value))).toBe(false);
  }, 120_000);

  test('sign: lookups work; LDAP-style NTLM seals even when only signing was negotiated', async () => {
    resetTcpRelay(relay);
    const d = directory({ saslProtection: 'sign', poolSize: 1 });
    await lookups(d);
    await lookups(d);
    for (const value of ['E1001', 'DC=test,DC=local']) expect(serverBytes().includes(Buffer.from(value))).toBe(false);
  }, 120_000);

  test('control: an unprotected search through the same relay shows its values in clear', async () => {
    resetTcpRelay(relay);
    const c = new Client({ url: `ldap://127.0.0.1:${relay.port}` });
    try {
      const r = await c.search('', { scope: 'base', attributes: ['defaultNamingContext'] });
      expect(String(r.searchEntries[0]?.['defaultNamingContext'])).toBe('DC=test,DC=local');
    } finally {
      await c.unbind();
    }
    expect(serverBytes().includes(Buffer.from('DC=test,DC=local'))).toBe(true);
  }, 120_000);

  test('a UPN as the user name binds too', async () => {
    await lookups(directory({ bindDn: ad.bindDn, saslProtection: 'seal' }));
  }, 120_000);

  test('wrong password: INVALID_CREDENTIALS with the AD data code, password not in the message', async () => {
    const err = await failure(directory({ bindPassword: 'Wrong-Passw0rd!', saslProtection: 'seal' }).testConnection());
    expect(err.code).toBe(DirectoryErrorCode.INVALID_CREDENTIALS);
    expect(err.details.adDataCode).toBe('52e');
    expect(err.message).not.toContain('Wrong-Passw0rd!');
  }, 120_000);
});

test('disabled account: INVALID_CREDENTIALS with AD data 533', async () => {
  const err = await failure(directory({ bindDn: `${SAMBA_AD_DOMAIN}\\bleaver`, bindPassword: SEED_USER_PASSWORD, saslProtection: 'seal' }).testConnection());
  expect(err.code).toBe(DirectoryErrorCode.INVALID_CREDENTIALS);
  expect(err.details.adDataCode).toBe('533');
}, 120_000);

test('a seeded ordinary account binds and reads (sign)', async () => {
  await lookups(directory({ bindDn: `${SAMBA_AD_DOMAIN}\\svc-readonly`, bindPassword: SEED_USER_PASSWORD, saslProtection: 'sign' }));
}, 120_000);

describe('ntlm bind over LDAPS', () => {
  test('protection none: lookups over TLS', async () => {
    const d = directory({ server: '127.0.0.1', port: 636, security: 'ldaps', caCertPem: caPem, tlsServerName: 'dc1.test.local', saslProtection: 'none' });
    await expect(d.testConnection()).resolves.toEqual({ defaultNamingContext: 'DC=test,DC=local' });
    await lookups(d);
  }, 120_000);
});
