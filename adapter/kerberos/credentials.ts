/**
 * Kerberos tickets for service identities, acquired with MIT `kinit` into one process-wide credential cache
 * collection, and GSS client contexts (krb5 or SPNEGO) through the `kerberos` native addon.
 *
 * Why kinit and a `DIR:` collection: the `kerberos` addon only initiates contexts from credentials already in a
 * cache (gss_acquire_cred by name); it cannot obtain a TGT from a password or keytab on Linux. A DIR collection
 * holds one cache per principal, so several identities (the directory's bind account, an AdminService account)
 * coexist and GSS picks the one the context names. `KRB5CCNAME` and `KRB5_CONFIG` are process-wide environment
 * by the library's design, so they are set once, by the first `createKerberosCredentials`, and a second call with
 * a different krb5.conf is refused rather than silently switching realms under the first caller.
 */
import { execFile, type ExecFileException } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KerberosError, KerberosErrorCode, toKerberosError } from './errors';
import { gssClient, type GssClientContext, type GssMechanism } from './gss';

/** How to prove the identity of a principal to the KDC. */
export type KerberosSecret =
  /** A password; passed to kinit on stdin, never on its argv. */
  | { password: string }
  /** A keytab file path (read by kinit `-k -t`). */
  | { keytabPath: string }
  /** A keytab's bytes as base64 (a sealed setting); written to a private 0600 file under the cache directory. */
  | { keytabBase64: string };

export interface KerberosConfig {
  /** krb5.conf to use (sets KRB5_CONFIG process-wide); default the system's /etc/krb5.conf. */
  krb5Conf?: string;
  /** Directory of the ccache collection; default a fresh private temp directory. */
  ccacheDir?: string;
  /** kinit binary; default `kinit` on PATH. */
  kinitPath?: string;
  /** kinit's bound in ms, so an unanswering KDC cannot hang a caller. Default 15 000. */
  kinitTimeoutMs?: number;
  /** Ticket lifetime asked for, seconds. Default 36 000 (AD's 10 h). */
  lifetimeSeconds?: number;
  /** Re-acquire when less than this many ms of the ticket are left. Default 300 000 (5 min). */
  renewBeforeMs?: number;
  /** Extra environment for kinit only (e.g. a test's LD_PRELOAD of libfaketime). */
  kinitEnv?: Readonly<Record<string, string>>;
  /** Clock for expiry decisions, ms since the epoch. */
  now?: () => number;
}

export interface TicketInfo {
  principal: string;
  /** The cache holding it, e.g. `DIR::/tmp/x/tkt_svc_40TEST.LOCAL`. */
  ccache: string;
  acquiredAt: Date;
  /** As asked for; the KDC may have shortened it, which the renewal margin covers for AD's defaults. */
  expiresAt: Date;
}

export interface GssClientOptions {
  /** Client principal whose ticket initiates the context; it must have been acquired (or `ensureTicket`ed). */
  principal: string;
  /** `spnego` (default; what AD's GSS-SPNEGO binds and HTTP Negotiate expect) or `krb5` (raw GSSAPI). */
  mechanism?: GssMechanism;
  /** Ask for mutual authentication, integrity and confidentiality (needed for a SASL security layer). */
  flags?: { mutual?: boolean; integrity?: boolean; confidentiality?: boolean; delegate?: boolean };
}

export interface KerberosCredentials {
  /** The ccache collection (`DIR:<dir>`) that KRB5CCNAME points at. */
  readonly collection: string;
  /**
   * Gets a fresh TGT for `principal` now.
   * @throws KerberosError KERBEROS_BAD_CREDENTIALS, KERBEROS_UNKNOWN_PRINCIPAL, KERBEROS_CLOCK_SKEW,
   *   KERBEROS_ACCOUNT_DISABLED, KERBEROS_KDC_UNREACHABLE (also on timeout), KERBEROS_CONFIG, KERBEROS_FAILED
   */
  acquire(principal: string, secret: KerberosSecret): Promise<TicketInfo>;
  /** Returns the held ticket, or acquires one when none is held or it expires within `renewBeforeMs`. Same errors. */
  ensureTicket(principal: string, secret: KerberosSecret): Promise<TicketInfo>;
  /** The ticket held for `principal`, if any (not checked against the clock). */
  ticket(principal: string): TicketInfo | undefined;
  /**
   * A GSS initiator context for `service` in host-based form (`ldap@dc1.corp.example`, `HTTP@web.corp.example`).
   * The first `step('')` asks the KDC for the service ticket.
   * @throws KerberosError KERBEROS_CONFIG when the addon is missing; step errors map as in errors.ts
   *   (KERBEROS_UNKNOWN_SERVICE for a missing SPN).
   */
  initClient(service: string, options: GssClientOptions): Promise<GssClientContext>;
  /** Drops the ticket of `principal` (kdestroy of its cache). */
  forget(principal: string): Promise<void>;
}

const DEFAULTS = Object.freeze({
  kinitTimeoutMs: 15_000, // ms
  lifetimeSeconds: 36_000, // s
  renewBeforeMs: 300_000, // ms
});

const PRINCIPAL = /^[^\s@/]+(\/[^\s@]+)?@[A-Za-z0-9.-]+$/;

/**
 * What this process's libkrb5 reads, fixed by the first `createKerberosCredentials`: the krb5.conf (the path it
 * asked for, else the KRB5_CONFIG it found in the environment, else undefined for the system default) and the
 * ccache collection.
 */
let processWide: { krb5Conf: string | undefined; collection: string } | undefined;

function configError(message: string): KerberosError {
  return new KerberosError(KerberosErrorCode.KERBEROS_CONFIG, `kerberos: ${message}`);
}

const describeConf = (path: string | undefined): string => path ?? 'the system default (/etc/krb5.conf; KRB5_CONFIG unset)';

function setProcessWide(krb5Conf: string | undefined, ccacheDir: string | undefined): string {
  if (processWide) {
    // A store that names no krb5.conf or cache directory shares what the process has; one that names a different
    // one would silently get the first one's realm and KDCs (libkrb5 reads KRB5_CONFIG process-wide): refused.
    if (krb5Conf !== undefined && processWide.krb5Conf !== krb5Conf) {
      throw configError(`krb5.conf ${krb5Conf} was asked for, but this process already uses ${describeConf(processWide.krb5Conf)}; ` +
        'KRB5_CONFIG is process-wide, so all Kerberos settings of one process must name the same krb5.conf (or none)');
    }
    if (ccacheDir !== undefined && processWide.collection !== `DIR:${ccacheDir}`) {
      throw configError(`ccache directory ${ccacheDir} was asked for, but this process already uses ${processWide.collection}; KRB5CCNAME is process-wide`);
    }
    return processWide.collection;
  }
  // A DIR collection already in the environment is kept: a sandbox whose process.env is a copy (jest's) cannot
  // change what the native library reads, so such a host sets KRB5CCNAME/KRB5_CONFIG before the process starts.
  const inherited = process.env['KRB5CCNAME']?.startsWith('DIR:') ? process.env['KRB5CCNAME'].slice('DIR:'.length) : undefined;
  if (krb5Conf !== undefined && process.env['KRB5_CONFIG'] !== undefined && process.env['KRB5_CONFIG'] !== krb5Conf && inherited) {
    throw configError(`krb5.conf ${krb5Conf} was asked for, but KRB5_CONFIG is already ${process.env['KRB5_CONFIG']} in this process's environment`);
  }
  const dir = ccacheDir ?? inherited ?? mkdtempSync(join(tmpdir(), 'provisio-krb5cc-'));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const collection = `DIR:${dir}`;
  if (krb5Conf !== undefined) process.env['KRB5_CONFIG'] = krb5Conf;
  process.env['KRB5CCNAME'] = collection;
  // Recorded as libkrb5 will read it: without a path of its own, the environment's KRB5_CONFIG, if any.
  processWide = { krb5Conf: krb5Conf ?? process.env['KRB5_CONFIG'], collection };
  return collection;
}

/** The krb5.conf and ccache collection this process's Kerberos uses, once a store was created (else undefined). */
export function kerberosProcessConfig(): { krb5Conf: string | undefined; collection: string } | undefined {
  return processWide ? { ...processWide } : undefined;
}

/** A file-name-safe rendering of a principal, for its cache and keytab file names. */
function fileKey(principal: string): string {
  return principal.replace(/[^A-Za-z0-9.-]/g, (c) => `_${c.charCodeAt(0).toString(16)}`);
}

interface KinitResult { code: number | 'timeout'; stderr: string }

function runKinit(bin: string, args: string[], stdin: string | undefined, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<KinitResult> {
  return new Promise((resolve) => {
    const child = execFile(bin, args, { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20 },
      (err: ExecFileException | null, _stdout, stderr) => {
        if (!err) return resolve({ code: 0, stderr: String(stderr) });
        if (err.killed || err.signal === 'SIGKILL') return resolve({ code: 'timeout', stderr: String(stderr) });
        if (err.code === 'ENOENT') return resolve({ code: 127, stderr: `${bin} not found (install MIT krb5-user)` });
        resolve({ code: typeof err.code === 'number' ? err.code : 1, stderr: String(stderr) || err.message });
      });
    // A password goes in on stdin: argv is readable by every user through /proc.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(stdin === undefined ? '' : `${stdin}\n`);
  });
}

/**
 * Creates the credential store. The ccache collection and krb5.conf are process-wide (see the module comment);
 * every store in one process shares them.
 * @throws KerberosError KERBEROS_CONFIG for bad numbers or a second, different krb5.conf
 */
export function createKerberosCredentials(config: KerberosConfig = {}): KerberosCredentials {
  const timeoutMs = config.kinitTimeoutMs ?? DEFAULTS.kinitTimeoutMs;
  const lifetime = config.lifetimeSeconds ?? DEFAULTS.lifetimeSeconds;
  const renewBefore = config.renewBeforeMs ?? DEFAULTS.renewBeforeMs;
  for (const [n, v] of [['kinitTimeoutMs', timeoutMs], ['lifetimeSeconds', lifetime], ['renewBeforeMs', renewBefore]] as const) {
    if (!Number.isInteger(v) || v < 0) throw configError(`${n} must be a non-negative integer`);
  }
  const collection = setProcessWide(config.krb5Conf, config.ccacheDir);
  const dir = collection.slice('DIR:'.length);
  const kinit = config.kinitPath ?? 'kinit';
  const now = config.now ?? Date.now;
  const tickets = new Map<string, TicketInfo>();
  // One kinit per principal at a time: concurrent callers share the in-flight acquisition.
  const inflight = new Map<string, Promise<TicketInfo>>();

  async function acquireNow(principal: string, secret: KerberosSecret): Promise<TicketInfo> {
    if (!PRINCIPAL.test(principal)) throw configError(`principal must look like name@REALM or service/host@REALM`);
    const ccache = `DIR::${join(dir, `tkt${fileKey(principal)}`)}`;
    const args = ['-c', ccache, '-l', `${lifetime}s`, '-r', '7d'];
    let stdin: string | undefined;
    let secrets: string[] = [];
    if ('password' in secret) {
      if (!secret.password) throw configError('password is empty');
      stdin = secret.password;
      secrets = [secret.password];
    } else {
      let keytab: string;
      if ('keytabPath' in secret) {
        keytab = secret.keytabPath;
      } else {
        const bytes = Buffer.from(secret.keytabBase64, 'base64');
        // MIT keytab files start with 0x05 0x02 (format version 2).
        if (bytes.length < 4 || bytes[0] !== 5 || bytes[1] !== 2) throw configError('keytab is not a base64 MIT keytab (version 0x502)');
        keytab = join(dir, `keytab${fileKey(principal)}`);
        writeFileSync(keytab, bytes, { mode: 0o600 });
      }
      args.unshift('-k', '-t', keytab);
    }
    args.push(principal);
    const env: NodeJS.ProcessEnv = { ...process.env, ...config.kinitEnv, KRB5CCNAME: collection, LANG: 'C', LC_ALL: 'C' };
    const started = now();
    const r = await runKinit(kinit, args, stdin, env, timeoutMs);
    if (r.code === 'timeout') {
      throw new KerberosError(KerberosErrorCode.KERBEROS_KDC_UNREACHABLE, `kinit for ${principal}: no answer from the KDC within ${timeoutMs} ms`);
    }
    if (r.code === 127) throw configError(r.stderr);
    if (r.code !== 0) throw toKerberosError(`kinit for ${principal}`, r.stderr, secrets);
    const info: TicketInfo = { principal, ccache, acquiredAt: new Date(started), expiresAt: new Date(started + lifetime * 1000) };
    tickets.set(principal, info);
    return info;
  }

  function acquire(principal: string, secret: KerberosSecret): Promise<TicketInfo> {
    const running = inflight.get(principal);
    if (running) return running;
    const p = acquireNow(principal, secret).finally(() => inflight.delete(principal));
    inflight.set(principal, p);
    return p;
  }

  return {
    collection,
    acquire,
    async ensureTicket(principal, secret) {
      const held = tickets.get(principal);
      if (held && held.expiresAt.getTime() - now() > renewBefore) return held;
      return acquire(principal, secret);
    },
    ticket: (principal) => tickets.get(principal),
    async initClient(service, options) {
      if (!/^[^@\s]+@[^@\s]+$/.test(service)) throw configError(`service must be host-based, e.g. ldap@dc1.corp.example (got ${service})`);
      if (!tickets.has(options.principal)) {
        throw new KerberosError(KerberosErrorCode.KERBEROS_TICKET_EXPIRED, `kerberos: no ticket held for ${options.principal}; acquire one first`);
      }
      return gssClient(service, options.principal, options.mechanism ?? 'spnego', options.flags ?? {});
    },
    async forget(principal) {
      const held = tickets.get(principal);
      tickets.delete(principal);
      if (held) await rm(held.ccache.slice('DIR::'.length), { force: true });
      await rm(join(dir, `keytab${fileKey(principal)}`), { force: true });
    },
  };
}
