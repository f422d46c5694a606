import type { AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import { createKerberosCredentials, KerberosError, type GssClientContext, type KerberosCredentials, type KerberosSecret } from '../../kerberos';
import type { AuthenticationConfig } from '../config';
import { CallNotMadeCode, CallNotMadeError, NOT_REACHED, missingInformation } from '../envelope';
import type { AuthContext, AuthProvider } from './types';

type NegotiateConfig = Extract<AuthenticationConfig, { type: 'negotiate' }>;

/** What one authenticated request carries until its response is inspected. */
interface PendingContext {
  gss: GssClientContext;
  /** `HTTP/host`, as operators and error messages name it. */
  spn: string;
}

/** Where the server's `WWW-Authenticate: Negotiate <token>` stood before it was taken out of the response. */
const REDACTED_TOKEN = 'Negotiate [redacted]';

/**
 * How long a KDC's refusal of the credentials themselves is answered from memory. Each wrong-password AS-REQ counts
 * toward AD's account lockout threshold; a runbook retrying a misconfigured integration must not lock the service
 * account out. A changed configuration builds a new client, so a corrected password is tried at once. Milliseconds.
 */
const REFUSAL_HOLD_MS = 5 * 60_000;
/** KDC answers about the credentials, which retrying cannot change. */
const CREDENTIAL_REFUSALS: ReadonlySet<string> = new Set(['KERBEROS_BAD_CREDENTIALS', 'KERBEROS_UNKNOWN_PRINCIPAL', 'KERBEROS_ACCOUNT_DISABLED']);

/**
 * Kerberos through HTTP Negotiate (SPNEGO, RFC 4559), as IIS (ConfigMgr AdminService) and WinRM speak it.
 *
 * A ticket for `principal` is obtained with kinit from the keytab or password (adapter/kerberos: one ccache per
 * principal in the process-wide collection, renewed before it expires), then every request gets a fresh GSS context
 * and sends its first token as `Authorization: Negotiate <token>`. Unlike NTLM, a Kerberos token (an AP-REQ with its
 * own authenticator) authenticates the request, not the connection: requests share the integration's keep-alive
 * agents, pass through forward proxies, and a service ticket cached in the ccache means no KDC round trip per call.
 *
 * The server's answer carries `WWW-Authenticate: Negotiate <token>` (the AP-REP of mutual authentication); it is
 * fed back into the request's context, so an answer from a server that does not hold the service's key fails the
 * call instead of being believed. A 401 to a token is the server refusing it: the call fails with
 * AUTHENTICATION_FAILED naming the Kerberos error (from the server's token when it sent one), never a retry loop.
 * KDC failures (wrong password, unknown principal, no such SPN, clock skew) fail the call before anything is sent.
 * Tokens are credentials: the request header is redacted in logs, and the server's token is taken out of the
 * response headers once verified.
 */
export function createNegotiateAuth(auth: NegotiateConfig, ctx: AuthContext): AuthProvider {
  if (auth.password !== undefined) ctx.addSecret(auth.password);
  if (auth.keytab !== undefined) ctx.addSecret(auth.keytab);
  const secret: KerberosSecret | undefined =
    auth.keytab !== undefined ? { keytabBase64: auth.keytab } : auth.password !== undefined ? { password: auth.password } : undefined;
  const pending = new WeakMap<InternalAxiosRequestConfig, PendingContext>();
  // Each integration keeps its own record of the ticket it obtained, so one integration's good credentials never
  // stand in for another's wrong ones; the ccache file per principal is shared (same identity, same tickets).
  let credentials: KerberosCredentials | undefined;
  let refusal: { error: KerberosError; until: number } | undefined;

  /** The request's first token: ticket (from memory, or kinit), GSS context, step. */
  async function firstToken(spn: string): Promise<{ gss: GssClientContext; token: string }> {
    if (!secret) throw missingInformation('negotiate authentication needs a keytab or a password for its principal');
    if (refusal && ctx.now() < refusal.until) {
      const { error, until } = refusal;
      throw new KerberosError(error.code, `${error.message}; not asked again before ${new Date(until).toISOString()}, so retries cannot lock the account out (correct the integration's credentials)`);
    }
    credentials ??= createKerberosCredentials();
    const store = credentials;
    const start = async (): Promise<{ gss: GssClientContext; token: string }> => {
      // GSS names services host-based: HTTP/host becomes HTTP@host.
      const gss = await store.initClient(spn.replace('/', '@'), { principal: auth.principal, mechanism: auth.mech });
      return { gss, token: await gss.step('') };
    };
    try {
      await store.ensureTicket(auth.principal, secret);
      try {
        return await start();
      } catch (e) {
        // The ticket this integration obtained is gone from the shared cache (another store forgot the principal, an
        // operator ran kdestroy) or ended early: get a new one, once.
        if (!(e instanceof KerberosError) || e.code !== 'KERBEROS_TICKET_EXPIRED') throw e;
        await store.acquire(auth.principal, secret);
        return await start();
      }
    } catch (e) {
      if (e instanceof KerberosError && CREDENTIAL_REFUSALS.has(e.code)) refusal = { error: e, until: ctx.now() + REFUSAL_HOLD_MS };
      throw e;
    }
  }

  return {
    secretHeaders: ['authorization', 'www-authenticate'],
    apply: async (config) => {
      const url = ctx.fullUrl(config);
      const method = (config.method ?? 'get').toUpperCase();
      const spn = auth.spn ?? `HTTP/${hostOf(url)}`;
      let first: { gss: GssClientContext; token: string };
      try {
        first = await firstToken(spn);
      } catch (e) {
        throw kerberosFailure(`Kerberos authentication of ${auth.principal} to ${spn} for ${method} ${url}`, e);
      }
      const { gss, token } = first;
      config.headers.set('authorization', `Negotiate ${token}`);
      pending.set(config, { gss, spn });
    },
    inspectResponse: async (res) => {
      const held = pending.get(res.config);
      if (!held) return;
      pending.delete(res.config);
      const offered = negotiateHeader(res);
      const serverToken = offered?.token;
      if (serverToken !== undefined) scrubToken(res);
      const target = `${(res.config.method ?? 'get').toUpperCase()} ${ctxUrl(ctx, res.config)}`;
      const who = `${auth.principal} to ${held.spn}`;
      if (res.status === 401) throw await refusedError(target, who, held, serverToken, headerValues(res).join(', '));
      if (serverToken === undefined) return;
      try {
        await held.gss.step(serverToken);
      } catch (e) {
        throw new CallNotMadeError(
          CallNotMadeCode.AUTHENTICATION_FAILED,
          `${NOT_REACHED}: ${target}: the server's mutual-authentication token did not verify (${detailOf(e)}); its answer (${res.status}) was not accepted, since the server may not be ${held.spn}`,
        );
      }
    },
  };
}

/** The host a default SPN names: the request URL's, brackets of an IPv6 literal removed. */
function hostOf(url: string): string {
  return new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
}

function ctxUrl(ctx: AuthContext, config: InternalAxiosRequestConfig): string {
  try {
    return ctx.fullUrl(config);
  } catch {
    return config.url ?? '';
  }
}

/** The `Negotiate` challenge of a response, with its token when it carries one. */
function negotiateHeader(res: AxiosResponse): { token?: string } | undefined {
  for (const value of headerValues(res)) {
    for (const part of value.split(/,\s*(?=[A-Za-z-]+(?:\s|$))/)) {
      const m = /^Negotiate(?:\s+([A-Za-z0-9+/=]+))?\s*$/i.exec(part.trim());
      if (m) return m[1] !== undefined ? { token: m[1] } : {};
    }
  }
  return undefined;
}

function headerValues(res: AxiosResponse): string[] {
  const raw = (res.headers as Record<string, unknown>)['www-authenticate'];
  return ([] as unknown[]).concat(raw ?? []).map(String);
}

/** Takes the server's token out of the response, so envelopes and logs never carry it. */
function scrubToken(res: AxiosResponse): void {
  const headers = res.headers as Record<string, unknown> & { set?: (k: string, v: unknown) => void };
  const cleaned = headerValues(res).map((v) => v.replace(/Negotiate\s+[A-Za-z0-9+/=]+/gi, REDACTED_TOKEN));
  const value = cleaned.length === 1 ? cleaned[0] : cleaned;
  if (typeof headers.set === 'function') headers.set('www-authenticate', value);
  else headers['www-authenticate'] = value;
}

/**
 * A 401 to a Kerberos token. When the server sent a token with it, the request's context reads it: a KRB-ERROR
 * names the cause; a token that completes the context means the server knew who we are and still refused.
 * A bare `Negotiate` challenge says only that the ticket was not accepted, so the message lists what causes that.
 */
async function refusedError(target: string, who: string, held: PendingContext, serverToken: string | undefined, offered: string): Promise<CallNotMadeError> {
  const prefix = `${NOT_REACHED}: ${target}: the server refused the Kerberos authentication of ${who} (401 to an Authorization: Negotiate token)`;
  if (serverToken !== undefined) {
    try {
      await held.gss.step(serverToken);
    } catch (e) {
      return new CallNotMadeError(CallNotMadeCode.AUTHENTICATION_FAILED, `${prefix}: ${detailOf(e)}`);
    }
    return new CallNotMadeError(CallNotMadeCode.AUTHENTICATION_FAILED, `${prefix}: it accepted the ticket (its token verified) but does not admit this principal`);
  }
  if (offered === '') {
    return new CallNotMadeError(CallNotMadeCode.AUTHENTICATION_FAILED, `${prefix}: it offers no Negotiate authentication (no WWW-Authenticate header)`);
  }
  if (!/\bNegotiate\b/i.test(offered)) {
    return new CallNotMadeError(CallNotMadeCode.AUTHENTICATION_FAILED, `${prefix}: it does not offer Negotiate (WWW-Authenticate: ${offered})`);
  }
  return new CallNotMadeError(
    CallNotMadeCode.AUTHENTICATION_FAILED,
    `${prefix} and sent no token saying why: the keys it holds for ${held.spn} do not decrypt the ticket ` +
      '(KRB_AP_ERR_MODIFIED or KRB_AP_ERR_BADKEYVER: a stale keytab, or the SPN registered on another account), its clock is off ' +
      '(KRB_AP_ERR_SKEW), or it does not admit this principal',
  );
}

/** A Kerberos failure before the request went out, as the call's coded reason. */
function kerberosFailure(what: string, e: unknown): CallNotMadeError {
  if (e instanceof CallNotMadeError) return e;
  if (e instanceof KerberosError) {
    if (e.code === 'KERBEROS_KDC_UNREACHABLE') return new CallNotMadeError(CallNotMadeCode.UNREACHABLE, `${NOT_REACHED}: ${what}: ${e.code}: ${e.message}`);
    if (e.code === 'KERBEROS_CONFIG') return missingInformation(`${what}: ${e.code}: ${e.message}`);
    return missingInformation(`${what} failed: ${e.code}: ${e.message}`, CallNotMadeCode.AUTHENTICATION_FAILED);
  }
  return missingInformation(`${what} failed: ${e instanceof Error ? e.message : String(e)}`, CallNotMadeCode.AUTHENTICATION_FAILED);
}

function detailOf(e: unknown): string {
  if (e instanceof KerberosError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}
