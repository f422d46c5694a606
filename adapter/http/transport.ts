import http from 'node:http';
import https from 'node:https';
import axios, { AxiosHeaders, type AxiosInstance, type AxiosRequestConfig, type AxiosResponse, type InternalAxiosRequestConfig } from 'axios';
import { redact, type Logger } from '../log';
// The grammar alone (no backend): the transport recognises a reference, the caller's resolver fetches it.
import { looksLikeSecretReference } from '../secrets/references';
import { endSpan, observeIntegrationCall, startClientSpan, type OpenSpan } from '../telemetry';
import { createDynamicApiKeyAuth } from './auth/dynamic-api-key';
import { createOAuthAuth, type OAuthProvider, type OAuthTokens } from './auth/oauth2';
import { createNegotiateAuth } from './auth/negotiate';
import { createNtlmAuth } from './auth/ntlm';
import { createSigV4Auth } from './auth/sigv4';
import { createBasicAuth, createBearerAuth, createNoAuth, createStaticApiKeyAuth } from './auth/static';
import type { AuthContext, AuthProvider, SideRequest } from './auth/types';
import { createXenApiSessionAuth } from './auth/xenapi-session';
import { LOG_LEVELS, REDACTED, validateIntegrationConfig, type IntegrationConfig, type LogLevel } from './config';
import {
  CallNotMadeCode,
  CallNotMadeError,
  TokenRequestError,
  buildEnvelope,
  explainNetworkError,
  missingInformation,
  NOT_REACHED,
  type IntegrationCallResult,
  type IntegrationEnvelope,
} from './envelope';
import { decodeMtls } from './mtls';
import { createSyslogSender, type SyslogSender } from './syslog';
import { HttpForwardProxyAgent, HttpsTunnelProxyAgent, type ProxyTarget } from './proxy';

/** Used when the configuration names no timeout: a call never waits forever. Milliseconds. */
export const DEFAULT_TIMEOUT_MS = 60_000;

export interface IntegrationClientDeps {
  /**
   * Where request and response lines go. The integration's own level (configuration `logging.level`, or
   * {@link IntegrationClient.setLogLevel}) filters them first; this logger's level must be at least as verbose.
   */
  logger: Logger;
  /** Names the integration on every log line. */
  name?: string;
  /** Milliseconds since the epoch; injectable so token expiry can be tested without waiting. */
  now?: () => number;
  /**
   * Resolves a secret reference (`vault://…`, `awssm://…`, …; adapter/secrets) to its value. The `secrets_manager`
   * proxy auth mode's username and password are references, resolved through it before each call (the resolver's
   * cache answers within its TTL, so a rotated proxy password is picked up without rebuilding the client).
   */
  resolveSecret?: (reference: string) => Promise<string>;
  /** Told about every token obtained, so the layer above may persist it. */
  onTokens?: (tokens: OAuthTokens) => void;
  /**
   * Kept out of every log line besides what the authentication scheme names: header names (their values are
   * logged as redacted), query parameter names (likewise), and values replaced wherever they appear.
   */
  redact?: { headers?: readonly string[]; queryParams?: readonly string[]; values?: readonly string[] };
}

export type QueryValue = string | number | boolean | ReadonlyArray<string | number | boolean>;

export interface IntegrationCallRequest {
  method: string;
  /** Appended to the server's base URL (protocol, host, port, base path). */
  path: string;
  query?: Record<string, QueryValue | undefined>;
  headers?: Record<string, string>;
  /** A string or Buffer is sent as is; anything else as JSON. */
  body?: unknown;
  /** Aborts the call (a workflow step's timeout or cancel); the result is then a string saying so. */
  signal?: AbortSignal;
  /** A response body longer than this is not read: the call then fails with RESPONSE_TOO_LARGE. Bytes. */
  maxResponseBytes?: number;
}

/**
 * What a request sent with {@link IntegrationClient.callThrough} must carry: the undecoded body and every status
 * back, so the envelope is built from the bytes on the wire exactly as for {@link IntegrationClient.call}.
 */
export interface RawResponseOptions {
  responseType: 'arraybuffer';
  transformResponse: Array<(data: unknown) => unknown>;
  validateStatus: (status: number) => boolean;
}

export interface IntegrationClient {
  readonly name: string;
  /**
   * The configured instance (agents, TLS, mTLS, proxy, timeout, auth, 401 retry, logging) for typed clients. It keeps
   * axios's own behaviour otherwise: non-2xx statuses reject with an AxiosError.
   */
  readonly axios: AxiosInstance;
  /** Makes one call and returns its envelope, or a string saying why it could not be made. Never rejects. */
  call(request: IntegrationCallRequest): Promise<IntegrationCallResult>;
  /**
   * {@link call} for callers that act on why a call was not made (a timeout is retried, a refused proxy is not):
   * the reason comes back as the coded {@link CallNotMadeError} whose message `call` would have returned. Never
   * rejects.
   */
  send(request: IntegrationCallRequest): Promise<IntegrationEnvelope | CallNotMadeError>;
  /**
   * Settles a request that other code builds on {@link axios} (a generated SDK function's) exactly as {@link call}
   * settles its own: the envelope of whatever response came back (its URL the one actually requested), or a string
   * saying why none did. `request` must pass the options it is given on to axios, and must let axios reject rather
   * than swallow the error. Never rejects.
   */
  callThrough(method: string, request: (raw: RawResponseOptions) => Promise<AxiosResponse>, signal?: AbortSignal): Promise<IntegrationCallResult>;
  /** Changes this integration's log level at once; no restart. */
  setLogLevel(level: LogLevel): void;
  getLogLevel(): LogLevel;
  /** Changes the level of the syslog target (configuration `logging.syslog`); until set it follows the log level. */
  setSyslogLevel(level: LogLevel): void;
  /** For the authorization code flow: where to send the operator (undefined for other schemes). */
  authorizationUrl(state: string): string | undefined;
  /**
   * For the authorization code callback: exchanges `code` for tokens. Resolves undefined on success, else the failed
   * token call's envelope or a string saying why it could not be made.
   */
  completeAuthorizationCode(code: string): Promise<IntegrationEnvelope | string | undefined>;
  /** Closes kept-alive connections. */
  close(): void;
}

interface CallMeta {
  startedAt?: number;
  retried?: boolean;
  /** performance.now() when the request left, for the latency metric. */
  sentAt?: number;
  /** The call's client span, while tracing is on. */
  span?: OpenSpan | undefined;
}
type MetaConfig = InternalAxiosRequestConfig & { provisioMeta?: CallMeta };

/**
 * Builds the runtime of one integration: one axios instance with keep-alive agents applying TLS, mTLS, proxy,
 * timeout and the configured authentication. An invalid configuration does not throw: every call then returns a
 * string naming what is missing, as the seed's "String" error type.
 */
export function createIntegrationClient(input: unknown, deps: IntegrationClientDeps): IntegrationClient {
  const name = deps.name ?? 'integration';
  const now = deps.now ?? Date.now;
  const validation = validateIntegrationConfig(input);
  const config: IntegrationConfig | undefined = validation.ok ? validation.config : undefined;
  let unusable: string | undefined = validation.ok
    ? undefined
    : validation.errors.map((e) => `${e.path} ${e.message}`).join('; ');

  const syslog = config?.logging.syslog;
  const log = new IntegrationLog(deps.logger, name, config?.logging.level ?? 'info', syslog ? createSyslogSender(syslog) : undefined, syslog?.level);
  const timeout = config?.timeout ?? DEFAULT_TIMEOUT_MS;

  // Agents: one pair per integration, kept alive, so a token and the calls it authorises reuse connections.
  let proxy: ProxyTarget | undefined;
  let tlsOptions: https.AgentOptions = { keepAlive: true };
  if (config) {
    try {
      proxy = proxyTarget(config);
      tlsOptions = tlsAgentOptions(config);
    } catch (e) {
      unusable = (e as Error).message;
    }
  }
  const httpAgent = proxy ? new HttpForwardProxyAgent(proxy, { keepAlive: true }) : new http.Agent({ keepAlive: true });
  const httpsAgent = proxy ? new HttpsTunnelProxyAgent(proxy, tlsOptions) : new https.Agent(tlsOptions);

  const baseURL = config ? baseUrl(config) : undefined;
  const common = {
    timeout,
    httpAgent,
    httpsAgent,
    // Never let HTTP_PROXY and friends in the environment reroute an integration: its own config decides.
    proxy: false as const,
    // Redirects are returned, not followed: following one would carry credentials (API key headers, signatures) to
    // wherever the server points, and the envelope should show the call that was actually made.
    maxRedirects: 0,
    // OpenAPI's default for query arrays (form, explode): `names=a&names=b`, not axios's `names[]=a&names[]=b`,
    // which servers such as vCenter do not read as the parameter.
    paramsSerializer: { indexes: null },
  };
  const instance = axios.create({ ...common, ...(baseURL !== undefined ? { baseURL } : {}) });
  const side = axios.create({
    ...common,
    responseType: 'arraybuffer',
    transformResponse: [(d: unknown) => d],
    validateStatus: () => true,
  });

  const fullUrl = (c: InternalAxiosRequestConfig): string => instance.getUri(c);
  const ctx: AuthContext = {
    now,
    fullUrl,
    addSecret: (v) => log.addSecret(v),
    send: (req) => sendSide(side, log, req, timeout),
  };
  let auth: AuthProvider = createNoAuth();
  let oauth: OAuthProvider | undefined;
  if (config && unusable === undefined) {
    const built = buildAuth(config, ctx, deps.onTokens, { tls: tlsOptions, timeout, proxied: proxy !== undefined });
    auth = built.auth;
    oauth = built.oauth;
  }
  log.secretHeaders = [...(auth.secretHeaders ?? []), ...(deps.redact?.headers ?? [])];
  log.secretQueryParams = [...(auth.secretQueryParams ?? []), ...(deps.redact?.queryParams ?? [])];
  for (const value of deps.redact?.values ?? []) log.addSecret(value);

  // `secrets_manager` proxy credentials: references resolved before each call (a value the layer above resolved
  // already is used as it is), set on the target the proxy agents read them from.
  const proxyAuth = proxy && config?.proxy.auth.mode === 'secrets_manager' ? config.proxy.auth : undefined;
  async function resolveProxyCredentials(): Promise<void> {
    if (!proxy || !proxyAuth) return;
    const resolve = async (value: string | undefined, field: string): Promise<string> => {
      if (!looksLikeSecretReference(value)) return value ?? '';
      if (!deps.resolveSecret) throw missingInformation(`/proxy/auth/${field} is a secret reference and this client has no secret resolver`, CallNotMadeCode.PROXY_FAILURE);
      try {
        return await deps.resolveSecret(value);
      } catch (e) {
        // The resolver's message names the reference and the cause, never a value.
        throw missingInformation(`/proxy/auth/${field}: the proxy credential could not be resolved: ${(e as Error).message}`, CallNotMadeCode.PROXY_FAILURE);
      }
    };
    const [username, password] = await Promise.all([resolve(proxyAuth.username, 'username'), resolve(proxyAuth.password, 'password')]);
    log.addSecret(password);
    proxy.username = username;
    proxy.password = password;
  }

  instance.interceptors.request.use(async (c: MetaConfig) => {
    if (unusable !== undefined) throw missingInformation(`the configuration is not valid: ${unusable}`);
    await resolveProxyCredentials();
    c.provisioMeta = { ...c.provisioMeta, startedAt: now() };
    // The client span of this call, and its W3C traceparent for the server (before signing schemes see the headers).
    // Off: nothing is started or sent.
    const headers = (c.headers ??= new AxiosHeaders()) as unknown as Record<string, unknown>;
    c.provisioMeta.span = startClientSpan(`${(c.method ?? 'get').toUpperCase()} ${name}`, headers, {
      'http.request.method': (c.method ?? 'get').toUpperCase(),
      'provisio.integration': name,
    });
    try {
      await auth.apply(c);
    } catch (e) {
      // No call was made (a token request failed): the span ends here, failed; no latency is recorded.
      endSpan(c.provisioMeta.span, undefined, e);
      c.provisioMeta.span = undefined;
      throw e;
    }
    c.provisioMeta.sentAt = performance.now();
    log.log('debug', 'integration request', () => ({
      method: (c.method ?? 'get').toUpperCase(),
      url: log.redactUrl(fullUrl(c)),
      headers: log.redactHeaders(AxiosHeaders.from(c.headers).toJSON()),
    }));
    return c;
  });

  /** The scheme's own look at a response (a Negotiate server's token); when it fails the call, the response is still logged. */
  async function inspect(res: AxiosResponse): Promise<void> {
    if (!auth.inspectResponse) return;
    try {
      await auth.inspectResponse(res);
    } catch (e) {
      logResponse(log, res, fullUrl, now);
      throw e;
    }
  }

  async function retryOn401(res: AxiosResponse): Promise<AxiosResponse | undefined> {
    const c = res.config as MetaConfig;
    if ((res.status !== 401 && !auth.credentialsRejected?.(res)) || !auth.refresh || c.provisioMeta?.retried) return undefined;
    log.log('info', `integration got ${res.status === 401 ? '401' : 'its credentials rejected'}; refreshing credentials and retrying once`, () => ({ url: log.redactUrl(fullUrl(c)) }));
    await auth.refresh(c);
    return instance.request({ ...c, provisioMeta: { retried: true } } as MetaConfig);
  }

  /** Metric and span of one call that ended, with a response or without (`status` undefined). */
  function callEnded(c: MetaConfig | undefined, status: number | undefined, error?: unknown): void {
    const meta = c?.provisioMeta;
    if (meta?.sentAt !== undefined) observeIntegrationCall(name, status, (performance.now() - meta.sentAt) / 1000);
    if (meta?.span) {
      endSpan(meta.span, status !== undefined ? { 'http.response.status_code': status } : undefined, status === undefined ? error : status >= 500 ? `status ${status}` : undefined);
      meta.span = undefined;
    }
  }

  instance.interceptors.response.use(
    async (res) => {
      callEnded(res.config as MetaConfig, res.status);
      await inspect(res);
      const retried = await retryOn401(res);
      if (retried) return retried;
      logResponse(log, res, fullUrl, now);
      return res;
    },
    async (err: unknown) => {
      if (axios.isAxiosError(err)) callEnded(err.config as MetaConfig | undefined, err.response?.status, err);
      if (axios.isAxiosError(err) && err.response) {
        await inspect(err.response);
        const retried = await retryOn401(err.response);
        if (retried) return retried;
        logResponse(log, err.response, fullUrl, now);
      } else if (axios.isAxiosError(err) && err.config) {
        const failed = err.config;
        log.log('warn', 'integration call failed', () => ({
          method: (failed.method ?? 'get').toUpperCase(),
          url: log.redactUrl(fullUrl(failed)),
          error: explainNetworkError(err, '', timeout).code,
          detail: err.message,
        }));
      }
      throw err;
    },
  );

  const redactedUri = (c: AxiosRequestConfig): string => log.redactUrl(instance.getUri(c));

  /**
   * Runs one request on `instance` and says how it ended. `url` is the (redacted) URL when the caller built it;
   * otherwise it is read from the request axios made, and `fallback` names the target if none was made.
   */
  async function settle(
    method: string,
    request: (raw: RawResponseOptions) => Promise<AxiosResponse>,
    signal: AbortSignal | undefined,
    at: { url: string } | { fallback: string },
  ): Promise<IntegrationEnvelope | CallNotMadeError> {
    let target = `${method} ${'url' in at ? at.url : at.fallback}`;
    try {
      const res = await request(RAW_RESPONSE);
      const url = 'url' in at ? at.url : redactedUri(res.config);
      if (proxy && res.status === 407) {
        return new CallNotMadeError(
          CallNotMadeCode.PROXY_FAILURE,
          `${NOT_REACHED}: ${method} ${url}: the proxy ${proxy.host}:${proxy.port} refused the request (407 Proxy Authentication Required)`,
        );
      }
      return envelopeOf(method, url, res);
    } catch (e) {
      if (e instanceof TokenRequestError) return e.envelope;
      if (e instanceof CallNotMadeError) return e;
      if (!('url' in at) && axios.isAxiosError(e) && e.config) target = `${method} ${redactedUri(e.config)}`;
      if (signal?.aborted) return new CallNotMadeError(CallNotMadeCode.ABORTED, `${NOT_REACHED}: ${target}: aborted before a response arrived`);
      return explainNetworkError(e, target, timeout, { clientCertificate: config?.mtls?.cert !== undefined });
    }
  }

  async function send(req: IntegrationCallRequest): Promise<IntegrationEnvelope | CallNotMadeError> {
    const method = req.method.toUpperCase();
    let url: string;
    try {
      url = redactedUri({ url: req.path, params: req.query });
    } catch (e) {
      return explainNetworkError(e, `${method} ${req.path}`, timeout);
    }
    return settle(
      method,
      (raw) =>
        instance.request({
          method,
          url: req.path,
          params: req.query,
          headers: req.headers,
          data: req.body,
          ...(req.signal ? { signal: req.signal } : {}),
          ...(req.maxResponseBytes !== undefined ? { maxContentLength: req.maxResponseBytes } : {}),
          ...raw,
        }),
      req.signal,
      { url },
    );
  }

  const asResult = (outcome: IntegrationEnvelope | CallNotMadeError): IntegrationCallResult =>
    outcome instanceof CallNotMadeError ? outcome.message : outcome;

  return {
    name,
    axios: instance,
    call: async (req) => asResult(await send(req)),
    send,
    callThrough: async (method, request, signal) => asResult(await settle(method.toUpperCase(), request, signal, { fallback: '(request not built)' })),
    setLogLevel: (level) => log.setLevel(level),
    setSyslogLevel: (level) => log.setSyslogLevel(level),
    getLogLevel: () => log.level,
    authorizationUrl: (state) => oauth?.authorizationUrl(state),
    completeAuthorizationCode: async (code) => {
      if (!oauth) return missingInformation('this integration does not use OAuth 2.0').message;
      // The code exchange goes out beside the request interceptor, through the same proxy.
      try {
        await resolveProxyCredentials();
      } catch (e) {
        return (e as Error).message;
      }
      return oauth.completeAuthorizationCode(code);
    },
    close() {
      log.close();
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

function buildAuth(
  config: IntegrationConfig,
  ctx: AuthContext,
  onTokens: ((t: OAuthTokens) => void) | undefined,
  transport: { tls: https.AgentOptions; timeout: number; proxied: boolean },
): { auth: AuthProvider; oauth?: OAuthProvider } {
  const a = config.authentication;
  switch (a.type) {
    case 'none':
      return { auth: createNoAuth() };
    case 'basic':
      ctx.addSecret(a.password);
      return { auth: createBasicAuth(a) };
    case 'bearer':
      ctx.addSecret(a.token);
      return { auth: createBearerAuth(a) };
    case 'api_key':
      if (a.dynamic !== undefined) return { auth: createDynamicApiKeyAuth({ ...a, dynamic: a.dynamic }, ctx) };
      ctx.addSecret(a.value ?? '');
      return { auth: createStaticApiKeyAuth(a, a.value ?? '') };
    case 'aws_sigv4':
      return { auth: createSigV4Auth(a, ctx) };
    case 'oauth2_client_credentials':
    case 'oauth2_password':
    case 'oauth2_authorization_code':
    case 'openid_connect': {
      if (a.type === 'oauth2_password') ctx.addSecret(a.password);
      const oauth = createOAuthAuth(a, ctx, onTokens);
      return { auth: oauth, oauth };
    }
    case 'ntlm':
      return { auth: createNtlmAuth(a, ctx, transport) };
    case 'xenapi_session':
      ctx.addSecret(a.password);
      return { auth: createXenApiSessionAuth(a, ctx) };
    case 'negotiate':
      return { auth: createNegotiateAuth(a, ctx) };
  }
}

function baseUrl(config: IntegrationConfig): string {
  const s = config.server;
  const host = s.host.includes(':') && !s.host.startsWith('[') ? `[${s.host}]` : s.host;
  return `${s.protocol}://${host}${s.port !== undefined ? `:${s.port}` : ''}${(s.base_path ?? '').replace(/\/$/, '')}`;
}

/**
 * Certificate checking follows the seed: `tls.reject_unauthorized` applies only when `tls.enabled` is on; otherwise
 * HTTPS verifies certificates as Node does by default. A configured CA replaces the system store for this integration.
 */
function tlsAgentOptions(config: IntegrationConfig): https.AgentOptions {
  const opts: https.AgentOptions = {
    keepAlive: true,
    rejectUnauthorized: config.tls.enabled ? config.tls.reject_unauthorized : true,
  };
  if (config.mtls) {
    let m;
    try {
      m = decodeMtls(config.mtls);
    } catch (e) {
      throw new Error(`/mtls is not usable: ${(e as Error).message}`);
    }
    if (m.cert !== undefined) opts.cert = m.cert;
    if (m.key !== undefined) opts.key = m.key;
    if (m.ca !== undefined) opts.ca = m.ca;
  }
  return opts;
}

/**
 * The proxy this integration's calls go through, if any: only an override in `proxy` mode routes through one. In
 * `secrets_manager` auth mode the credentials are filled in before each call (see resolveProxyCredentials).
 */
function proxyTarget(config: IntegrationConfig): ProxyTarget | undefined {
  const p = config.proxy;
  if (!p.override || p.mode !== 'proxy' || p.host === undefined || p.port === undefined) return undefined;
  const target: ProxyTarget = { host: p.host, port: p.port };
  if (p.auth.mode === 'basic') {
    target.username = p.auth.username ?? '';
    target.password = p.auth.password ?? '';
  }
  return target;
}

async function sendSide(side: AxiosInstance, log: IntegrationLog, req: SideRequest, timeout: number): Promise<IntegrationEnvelope> {
  const method = req.method.toUpperCase();
  const url = log.redactUrl(req.url);
  const started = Date.now();
  try {
    const res = await side.request({ method, url: req.url, headers: req.headers, data: req.data });
    log.log(res.status >= 200 && res.status < 300 ? 'info' : 'warn', 'integration auth request', {
      method,
      url,
      status: res.status,
      duration_ms: Date.now() - started,
    });
    return envelopeOf(method, url, res);
  } catch (e) {
    const why = explainNetworkError(e, `${method} ${url}`, timeout);
    log.log('warn', 'integration auth request failed', { method, url, error: why.code, detail: why.message });
    throw why;
  }
}

function logResponse(log: IntegrationLog, res: AxiosResponse, fullUrl: (c: InternalAxiosRequestConfig) => string, now: () => number): void {
  const c = res.config as MetaConfig;
  const started = c.provisioMeta?.startedAt;
  log.log(res.status >= 200 && res.status < 400 ? 'info' : 'warn', 'integration response', () => ({
    method: (c.method ?? 'get').toUpperCase(),
    url: log.redactUrl(fullUrl(c)),
    status: res.status,
    ...(started !== undefined ? { duration_ms: now() - started } : {}),
  }));
  log.log('debug', 'integration response headers', () => ({
    url: log.redactUrl(fullUrl(c)),
    headers: log.redactHeaders(AxiosHeaders.from(res.headers as Record<string, string>).toJSON()),
  }));
}

const LEVEL_RANK: Record<LogLevel, number> = Object.fromEntries(LOG_LEVELS.map((l, i) => [l, i])) as Record<LogLevel, number>;

/** One integration's log lines: its own level, header/query/value redaction, then the shared logger (and syslog). */
class IntegrationLog {
  secretHeaders: readonly string[] = [];
  secretQueryParams: readonly string[] = [];
  readonly #secrets = new Set<string>();
  #level: LogLevel;
  #syslogLevel: LogLevel | undefined;

  constructor(
    readonly sink: Logger,
    readonly name: string,
    level: LogLevel,
    readonly syslog: SyslogSender | undefined,
    syslogLevel: LogLevel | undefined,
  ) {
    this.#level = level;
    this.#syslogLevel = syslogLevel;
  }

  get level(): LogLevel {
    return this.#level;
  }

  setLevel(level: LogLevel): void {
    if (!(level in LEVEL_RANK)) throw new RangeError(`unknown log level ${level}`);
    this.#level = level;
  }

  setSyslogLevel(level: LogLevel): void {
    if (!(level in LEVEL_RANK)) throw new RangeError(`unknown log level ${level}`);
    this.#syslogLevel = level;
  }

  close(): void {
    this.syslog?.close();
  }

  addSecret(value: string): void {
    // Very short values would scrub ordinary text; they are still kept out by key-based redaction.
    if (value.length >= 4) this.#secrets.add(value);
  }

  /** `meta` may be a function so that lines below the level cost nothing to build. */
  log(level: LogLevel, message: string, meta: Record<string, unknown> | (() => Record<string, unknown>)): void {
    const toSink = LEVEL_RANK[level] <= LEVEL_RANK[this.#level];
    const toSyslog = this.syslog !== undefined && LEVEL_RANK[level] <= LEVEL_RANK[this.#syslogLevel ?? this.#level];
    if (!toSink && !toSyslog) return;
    const record = { message, integration: this.name, ...this.#scrub(typeof meta === 'function' ? meta() : meta) };
    if (toSink) this.sink.log({ level, ...record });
    if (toSyslog) this.syslog?.send(level, redact(record) as Record<string, unknown>);
  }

  redactUrl(url: string): string {
    let out = url;
    for (const name of this.secretQueryParams) {
      const enc = encodeURIComponent(name).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      out = out.replace(new RegExp(`([?&]${enc}=)[^&#]*`, 'g'), `$1${encodeURIComponent(REDACTED)}`);
    }
    return out;
  }

  redactHeaders(headers: Record<string, unknown>): Record<string, unknown> {
    const named = new Set(this.secretHeaders.map((h) => h.toLowerCase()));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(headers)) out[k] = named.has(k.toLowerCase()) ? REDACTED : v;
    return redact(out) as Record<string, unknown>;
  }

  // Last line of defence: any known secret value that slipped into a message or field is replaced.
  #scrub(meta: Record<string, unknown>): Record<string, unknown> {
    let text = JSON.stringify(meta);
    for (const s of this.#secrets) {
      const enc = JSON.stringify(s).slice(1, -1);
      text = text.split(enc).join(REDACTED);
      const uri = encodeURIComponent(s);
      if (uri !== s) text = text.split(uri).join(REDACTED);
    }
    return JSON.parse(text) as Record<string, unknown>;
  }
}

const RAW_RESPONSE: RawResponseOptions = {
  responseType: 'arraybuffer',
  transformResponse: [(d: unknown) => d],
  validateStatus: () => true,
};

/** The envelope of a response read as raw bytes (`responseType: 'arraybuffer'`), for calls and auth requests alike. */
function envelopeOf(method: string, url: string, res: AxiosResponse): IntegrationEnvelope {
  return buildEnvelope({
    method,
    url,
    status: res.status,
    statusText: res.statusText,
    headers: AxiosHeaders.from(res.headers as Record<string, string>).toJSON(),
    raw: res.data as Buffer,
  });
}
