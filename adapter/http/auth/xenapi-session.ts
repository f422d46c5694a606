import type { InternalAxiosRequestConfig } from 'axios';
import type { AuthenticationConfig } from '../config';
import { CallNotMadeCode, TokenRequestError, missingInformation } from '../envelope';
import type { AuthContext, AuthProvider } from './types';

const LOGIN = 'session.login_with_password';
/** The XenAPI API version sent at login (the oldest that takes the originator; XAPI answers with its own). */
const API_VERSION = '1.0';

type XenApiSessionConfig = Extract<AuthenticationConfig, { type: 'xenapi_session' }>;

/**
 * XenAPI sessions as an authentication scheme. XAPI takes its session reference as the first positional parameter
 * of every JSON-RPC call, not in a header, so this scheme logs in once (`session.login_with_password` through the
 * integration's agents), caches the reference, and writes it over `params[0]` of every outgoing call but the login
 * itself; callers pass any placeholder there (the model's runbooks pass ""). XAPI rejects a session that expired or
 * was logged out with `SESSION_INVALID` inside an HTTP 200: {@link AuthProvider.credentialsRejected} says so, and the
 * transport logs in again and retries the call once, as after a 401.
 */
export function createXenApiSessionAuth(auth: XenApiSessionConfig, ctx: AuthContext): AuthProvider {
  let session: string | undefined;
  let pending: Promise<string> | undefined;
  // Which session each request went out with, so only a rejection of the current session logs in again.
  const usedSession = new WeakMap<object, string>();

  async function login(): Promise<string> {
    const env = await ctx.send({
      method: 'POST',
      url: ctx.fullUrl({ url: auth.login_path ?? `/jsonrpc/${LOGIN}`, headers: {} } as unknown as InternalAxiosRequestConfig),
      headers: { 'content-type': 'application/json' },
      data: { jsonrpc: '2.0', method: LOGIN, params: [auth.username, auth.password, API_VERSION, auth.originator ?? 'provisio'], id: 'login' },
    });
    const code = xenErrorCode(env.body);
    // A refused login is an HTTP 200 too: make it a failed token request carrying XAPI's code and parameters.
    if (!env.ok || code !== undefined) throw new TokenRequestError(code !== undefined ? { ...env, ok: false, statusText: `${env.statusText} (XenAPI ${code})` } : env);
    const result = isObject(env.body) ? env.body['result'] : undefined;
    if (typeof result !== 'string' || result === '') {
      throw missingInformation(`the XenAPI login at ${env.url} answered without a session reference`, CallNotMadeCode.KEY_RETRIEVAL);
    }
    ctx.addSecret(result);
    return result;
  }

  async function current(): Promise<string> {
    if (session !== undefined) return session;
    pending ??= login().finally(() => {
      pending = undefined;
    });
    session = await pending;
    return session;
  }

  return {
    apply: async (config) => {
      const call = parseBody(config.data);
      if (!call || call.method === LOGIN || !Array.isArray(call.params)) return;
      const value = await current();
      usedSession.set(config, value);
      call.params = [value, ...call.params.slice(1)];
      // Keep the body's form: axios has already serialised it to text on a retry.
      config.data = typeof config.data === 'string' || Buffer.isBuffer(config.data) ? JSON.stringify(call) : call;
    },
    refresh: async (failed) => {
      if (pending) await pending;
      else if (session === undefined || usedSession.get(failed) === session) {
        session = undefined;
        await current();
      }
      return true;
    },
    credentialsRejected: (res) => xenErrorCode(parseBody(res.data)) === 'SESSION_INVALID',
  };
}

interface JsonRpcCall {
  method?: unknown;
  params?: unknown;
  [k: string]: unknown;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseBody(data: unknown): JsonRpcCall | undefined {
  if (isObject(data)) return { ...data };
  const text = typeof data === 'string' ? data : Buffer.isBuffer(data) ? data.toString('utf8') : undefined;
  if (text === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The XenAPI error code of a JSON-RPC answer (2.0: `error.message`; 1.0: `error[0]`), or undefined. */
function xenErrorCode(body: unknown): string | undefined {
  if (!isObject(body)) return undefined;
  const err = body['error'];
  if (isObject(err) && typeof err['message'] === 'string') return err['message'];
  if (Array.isArray(err) && typeof err[0] === 'string') return err[0];
  return undefined;
}
