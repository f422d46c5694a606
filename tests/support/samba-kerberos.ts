/**
 * Kerberos on top of the shared Samba AD DC (tests/support/samba-ad.ts): Samba's own KDC for TEST.LOCAL on
 * 127.0.0.1:88. `ensureKerberos()` installs MIT's client tools, writes a krb5.conf for the realm, creates the
 * test accounts and SPNs with `samba-tool` and exports their keytabs, idempotently and under the samba-ad
 * lock conventions (one directory lock, so concurrent jest workers wait for the first one).
 *
 * Host names: provision ran with `--host-name=dc1`, so Samba registered the DC's SPNs as `ldap/dc1.test.local`
 * (and `ldap/dc1`, `HOST/...`). Nothing resolves that name here and we need no resolver: the krb5.conf turns
 * off DNS and reverse lookups and host-name canonicalisation, so a GSS client asked for `ldap@dc1.test.local`
 * requests exactly that SPN from the KDC while the TCP connection goes to 127.0.0.1. `[domain_realm]` maps
 * `.test.local` to the realm, so no /etc/hosts entry is needed.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { installDebianPackages } from './apt';
import { withDirectoryLock } from './dir-lock';
import { ensureSambaAd, SAMBA_AD_REALM } from './samba-ad';

const run = promisify(execFile);

const SAMBA_DIR = process.env['SAMBA_AD_DIR'] ?? '/tmp/provisio-test/samba-ad';
const SAMBA_CONF = join(SAMBA_DIR, 'etc', 'smb.conf');
const KRB_DIR = join(SAMBA_DIR, 'kerberos');
const LOCK_DIR = `${KRB_DIR}.lock`;
const MARK = join(KRB_DIR, 'ready');
const MARK_VERSION = '2';

/** Where every test process's krb5.conf is (the global setup exports it as KRB5_CONFIG). */
export const KERBEROS_TEST_KRB5_CONF = join(KRB_DIR, 'krb5.conf');
/** Prefix of the per-run ccache collection directory (the global setup exports `DIR:<prefix>-<pid>`). */
export const KERBEROS_TEST_CCACHE_DIR = '/tmp/provisio-test/krb5cc';

/** The DC's fully qualified host name as Samba registered it (provision `--host-name=dc1`). */
export const KDC_DC_HOST = 'dc1.test.local';
/** The GSS host-based service name of the DC's LDAP service (SPN `ldap/dc1.test.local`). */
export const LDAP_SERVICE = `ldap@${KDC_DC_HOST}`;
/** A host name for loopback HTTP servers that accept SPNEGO (SPN `HTTP/sccm.test.local`, account svc-http). */
export const HTTP_SERVICE_HOST = 'sccm.test.local';

export interface KerberosAccount {
  /** sAMAccountName. */
  sam: string;
  /** `sam@TEST.LOCAL`. */
  principal: string;
  password: string;
}

/** A user that acquires tickets (keytab and password). */
export const KRB_CLIENT: KerberosAccount = { sam: 'krb-client', principal: `krb-client@${SAMBA_AD_REALM}`, password: 'Krb5Cl1ent!pw' };
/** The service account behind `HTTP/sccm.test.local`. */
export const KRB_HTTP_SERVICE: KerberosAccount = { sam: 'svc-http', principal: `svc-http@${SAMBA_AD_REALM}`, password: 'Svc!Http5pn-pw' };

const ACCOUNTS: readonly { account: KerberosAccount; spns: string[] }[] = [
  { account: KRB_CLIENT, spns: [] },
  { account: KRB_HTTP_SERVICE, spns: [`HTTP/${HTTP_SERVICE_HOST}`] },
];

export interface SambaKerberos {
  realm: string;
  /** Path of a krb5.conf for the realm; point `KRB5_CONFIG` (or adapter/kerberos's `krb5Conf`) at it. */
  krb5Conf: string;
  /** `127.0.0.1:88`. */
  kdc: string;
  /** A krb5.conf whose KDC is a closed loopback port: "KDC unreachable" tests. */
  unreachableKrb5Conf: string;
  /** The DC host name for `ldap@<host>` service names. */
  dcHost: string;
  ldapService: string;
  httpServiceHost: string;
  client: KerberosAccount;
  httpService: KerberosAccount;
  /** Keytab with the client account's keys (`krb-client@TEST.LOCAL`). */
  clientKeytab: string;
  /** Keytab with the keys of `HTTP/sccm.test.local@TEST.LOCAL` (for an acceptor: `KRB5_KTNAME=FILE:<path>`). */
  httpServiceKeytab: string;
}

function krb5Conf(kdc: string): string {
  // rdns/dns_canonicalize_hostname off: the SPN asked for is the name given, never what 127.0.0.1 reverses to.
  return `[libdefaults]
\tdefault_realm = ${SAMBA_AD_REALM}
\tdns_lookup_realm = false
\tdns_lookup_kdc = false
\trdns = false
\tdns_canonicalize_hostname = false
\tudp_preference_limit = 0
\tticket_lifetime = 10h
\trenew_lifetime = 7d
\tforwardable = true

[realms]
\t${SAMBA_AD_REALM} = {
\t\tkdc = ${kdc}
\t\tadmin_server = ${kdc}
\t}

[domain_realm]
\t.test.local = ${SAMBA_AD_REALM}
\ttest.local = ${SAMBA_AD_REALM}
`;
}

async function samba(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('samba-tool', [...args, '-s', SAMBA_CONF], { maxBuffer: 1 << 24 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string };
    throw Object.assign(new Error(`samba-tool ${args.slice(0, 2).join(' ')}: ${String(err.stderr ?? err.stdout ?? e)}`), { output: `${err.stderr ?? ''}${err.stdout ?? ''}` });
  }
}

function alreadyThere(e: unknown): boolean {
  return /already exists|already has|already affected/i.test((e as { output?: string }).output ?? String(e));
}

async function createAccounts(): Promise<void> {
  for (const { account, spns } of ACCOUNTS) {
    try {
      await samba(['user', 'add', account.sam, account.password, `--userou=OU=Provisio`]);
    } catch (e) {
      if (!alreadyThere(e)) throw e;
      // Reset the password, so an earlier run with another password cannot leave stale keys behind.
      await samba(['user', 'setpassword', account.sam, `--newpassword=${account.password}`]);
    }
    // Tests never log in interactively; a password policy must not expire the accounts mid-run.
    await samba(['user', 'setexpiry', account.sam, '--noexpiry']);
    for (const spn of spns) {
      try {
        await samba(['spn', 'add', spn, account.sam]);
      } catch (e) {
        if (!alreadyThere(e)) throw e;
      }
    }
  }
  // Samba registers only HOST/ SPNs for the DC and its KDC does not map ldap/ onto them ("Server not found in
  // Kerberos database"), so the LDAP service name a GSS bind asks for is added to the DC's account.
  try {
    await samba(['spn', 'add', `ldap/${KDC_DC_HOST}`, 'DC1$']);
  } catch (e) {
    if (!alreadyThere(e)) throw e;
  }
}

async function exportKeytab(file: string, principal: string): Promise<void> {
  // exportkeytab appends to an existing file; start from an empty one so old kvnos do not pile up.
  await rm(file, { force: true });
  await samba(['domain', 'exportkeytab', file, `--principal=${principal}`]);
}

function info(): SambaKerberos {
  return {
    realm: SAMBA_AD_REALM,
    krb5Conf: KERBEROS_TEST_KRB5_CONF,
    kdc: '127.0.0.1:88',
    unreachableKrb5Conf: join(KRB_DIR, 'krb5-unreachable.conf'),
    dcHost: KDC_DC_HOST,
    ldapService: LDAP_SERVICE,
    httpServiceHost: HTTP_SERVICE_HOST,
    client: KRB_CLIENT,
    httpService: KRB_HTTP_SERVICE,
    clientKeytab: join(KRB_DIR, 'krb-client.keytab'),
    httpServiceKeytab: join(KRB_DIR, 'http-service.keytab'),
  };
}

/**
 * Makes sure the Samba DC runs, MIT's Kerberos tools are installed, and the test accounts, SPNs, keytabs and
 * krb5.conf files exist. Safe to call from every test file and worker concurrently; give the hook a generous
 * timeout (a cold machine installs Samba and krb5-user first).
 */
export async function ensureKerberos(): Promise<SambaKerberos> {
  await ensureSambaAd();
  await installDebianPackages(['krb5-user', 'libkrb5-dev'], 'samba-kerberos');
  const k = info();
  await withDirectoryLock(LOCK_DIR, async () => {
    mkdirSync(KRB_DIR, { recursive: true });
    // The mark lives under the samba directory: a purge (new provision, new keys) removes it with the rest.
    if (existsSync(MARK) && readFileSync(MARK, 'utf8') === MARK_VERSION && existsSync(k.clientKeytab) && existsSync(k.httpServiceKeytab)) return;
    await writeFile(k.krb5Conf, krb5Conf('127.0.0.1:88'));
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    await writeFile(k.unreachableKrb5Conf, krb5Conf('127.0.0.1:1'));
    await createAccounts();
    await exportKeytab(k.clientKeytab, k.client.principal);
    await exportKeytab(k.httpServiceKeytab, `HTTP/${HTTP_SERVICE_HOST}@${SAMBA_AD_REALM}`);
    await writeFile(MARK, MARK_VERSION);
  }, { waitMs: 15 * 60_000, pollMs: 200, label: 'samba-kerberos: lock' });
  return k;
}

if (require.main === module) {
  ensureKerberos().then((k) => process.stdout.write(`${JSON.stringify(k, null, 2)}\n`), (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
