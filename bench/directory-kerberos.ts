// Part of npm run bench:directory: lookups/s of the directory module on pooled bound connections, Kerberos (SASL
// GSSAPI with a sealed or signed layer on plain LDAP, and with no layer over LDAPS) and NTLM (GSS-SPNEGO, sealed on
// plain LDAP, and with no layer over LDAPS) beside simple bind over LDAPS, in the same run, against the Samba AD DC and its KDC.
//
// One lookup is what a requester check makes: the user, then their nested groups (two pooled operations).
// Rounds alternate the order of the variants; medians and each variant's ratio to simple bind are printed.
// BENCH_KRB_LOOKUPS, BENCH_KRB_ROUNDS change the shape.
import { readFileSync } from 'node:fs';
import { createDirectory, type Directory, type DirectorySettings } from '../adapter';
import type { SambaAd } from '../tests/support/samba-ad';
import { ensureKerberos } from '../tests/support/samba-kerberos';

const N = Number(process.env['BENCH_KRB_LOOKUPS'] ?? 1000);
const ROUNDS = Number(process.env['BENCH_KRB_ROUNDS'] ?? 3);
const CONCURRENCY = 8;
const POOL_SIZE = 4;
const USERS = ['jdoe', 'amanager', 'bleaver', 'ttoggle', 'mmember', 'svc-readonly'];

async function rate(d: Directory, n: number): Promise<number> {
  let started = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (started < n) {
      const value = USERS[started++ % USERS.length]!;
      await d.findUser({ by: 'sAMAccountName', value });
      await d.listGroups({ by: 'sAMAccountName', value }, { nested: true });
    }
  }));
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs the comparison; true unless a variant failed to bind. */
export async function benchKerberos(ad: SambaAd): Promise<boolean> {
  const k = await ensureKerberos();
  const caCertPem = readFileSync(ad.caCertPath, 'utf8');
  const common = { server: ad.host, baseDn: ad.seed.ou, poolSize: POOL_SIZE };
  const krb: DirectorySettings = {
    ...common, authType: 'kerberos', kerberosPrincipal: k.client.principal, kerberosKeytab: readFileSync(k.clientKeytab).toString('base64'),
    kerberosSpnHost: k.dcHost, krb5ConfPath: k.krb5Conf,
  };
  const variants: [string, DirectorySettings][] = [
    ['simple bind, LDAPS', { ...common, security: 'ldaps', caCertPem, bindDn: ad.bindDn, bindPassword: ad.bindPassword }],
    ['kerberos seal, LDAP 389', { ...krb, security: 'none', saslProtection: 'seal' }],
    ['kerberos sign, LDAP 389', { ...krb, security: 'none', saslProtection: 'sign' }],
    ['kerberos, LDAPS (no SASL layer)', { ...krb, security: 'ldaps', caCertPem, tlsServerName: k.dcHost }],
  ];
  const ntlm: DirectorySettings = { ...common, authType: 'ntlm', bindDn: 'TEST\\Administrator', bindPassword: ad.bindPassword };
  variants.push(
    // On LDAP, Samba (like Windows) seals an NTLM session that negotiated signing only, so one plain-LDAP row.
    ['ntlm seal, LDAP 389', { ...ntlm, security: 'none', saslProtection: 'seal' }],
    ['ntlm, LDAPS (no SASL layer)', { ...ntlm, security: 'ldaps', caCertPem }],
  );
  const dirs = new Map<string, Directory>();
  let ok = true;
  try {
    for (const [name, s] of variants) {
      const d = createDirectory(s);
      try {
        await rate(d, 50); // warm-up: binds the pool
        dirs.set(name, d);
      } catch (e) {
        ok = false;
        console.log(`${name}: FAILED ${(e as Error).message}`);
        await d.close();
      }
    }
    console.log(`bench:directory (binds) — ${N} lookups (user + nested groups) x ${ROUNDS} rounds, ${CONCURRENCY} concurrent, pool ${POOL_SIZE}, Samba AD`);
    const rates = new Map<string, number[]>([...dirs.keys()].map((n) => [n, []]));
    for (let r = 0; r < ROUNDS; r++) {
      const order = [...dirs.keys()];
      if (r % 2 === 1) order.reverse();
      const line: string[] = [];
      for (const name of order) {
        const v = await rate(dirs.get(name)!, N);
        rates.get(name)!.push(v);
        line.push(`${name} ${v.toFixed(0)}/s`);
      }
      console.log(`round ${r + 1}: ${line.join('  |  ')}`);
    }
    const base = rates.get('simple bind, LDAPS') ? median(rates.get('simple bind, LDAPS')!) : NaN;
    for (const [name, xs] of rates) {
      const m = median(xs);
      console.log(`median  ${name.padEnd(34)} ${m.toFixed(0).padStart(6)} lookups/s   ${((m / base) * 100).toFixed(0).padStart(4)} % of simple bind`);
    }
  } finally {
    await Promise.all([...dirs.values()].map((d) => d.close()));
  }
  return ok;
}
