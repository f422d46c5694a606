/**
 * How a secret backend's requests go out: through the integration transport of `adapter/http`
 * ({@link createEndpointClient}), as every outbound call does, so TLS (a backend's `*_ca_cert_pem` trusts its private
 * CA, certificates are always verified), the timeout, logging and redaction are the ones every integration gets.
 * Each request names the header names and values it carries that are secret (tokens, API keys, client secrets, the
 * values read): the transport replaces them in every log line, and no error message of this module repeats a body
 * the backend answered to a read (it may hold the value).
 */
import { createEndpointClient, pathOf, pemToDataUrl, type IntegrationEnvelope } from '../../http';
import { createLogger, type Logger } from '../../log';
import { SecretBackendError } from '../backend';

/** A backend request waits this long for its answer (ms): a read stalls the step or request that needs the value. */
export const SECRET_BACKEND_TIMEOUT_MS = 10_000;

/** What a backend needs besides its settings: where its request lines go and, for token lifetimes, the clock. */
export interface BackendDeps {
  /** The outbound request/response lines (secrets redacted by the transport); silent when absent. */
  logger?: Logger | undefined;
  /** Milliseconds since the epoch, for token lifetimes; injectable so a test can move past a lease without waiting. */
  now?: (() => number) | undefined;
}

const silent = createLogger({ silent: true });

export interface BackendRequest {
  method: 'GET' | 'POST' | 'PUT';
  url: URL;
  headers?: Record<string, string>;
  /** Sent as is when a string, else as JSON. */
  body?: unknown;
  /** Names headers whose values never reach a log line. */
  secretHeaders?: readonly string[];
  /** Values replaced in every log line of this request (credentials, tokens, the value being written). */
  secretValues?: readonly string[];
}

/** A backend's answer: the envelope (body parsed when JSON) and the body's exact text (a value is read from it as sent). */
export interface BackendResponse {
  res: IntegrationEnvelope;
  text: string;
}

// A secret is small; a longer answer is not read (Azure caps a secret at 25 KiB, Vault's default request limit is 32 MiB).
const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * Makes one request and answers the backend's response, whatever its status.
 * @param backend names the backend in the transport's log lines (`secret-backend:vault`).
 * @param caPem PEM of the CA(s) the backend's certificate must chain to; undefined: the system trust store.
 * @param reference the reference being served, named by a failure.
 * @param logger where the transport's request lines go (silent when undefined).
 * @throws SecretBackendError SECRET_BACKEND_UNREACHABLE when no response came (refused, TLS, timeout), naming the
 *   reference and the transport's reason.
 */
export async function backendRequest(
  backend: string,
  caPem: string | undefined,
  req: BackendRequest,
  reference: string,
  logger: Logger | undefined,
): Promise<BackendResponse> {
  const client = createEndpointClient(
    req.url,
    { timeoutMs: SECRET_BACKEND_TIMEOUT_MS, ...(caPem !== undefined ? { connection: { mtls: { ca: pemToDataUrl(caPem) } } } : {}) },
    {
      logger: logger ?? silent,
      name: `secret-backend:${backend}`,
      redact: { headers: [...(req.secretHeaders ?? [])], values: (req.secretValues ?? []).filter((v) => v.length > 0) },
    },
  );
  let text = '';
  try {
    // Through callThrough rather than send: the envelope re-serialises a JSON body, and a value must be read as
    // the backend sent it (a password `1e3` is not the number 1000).
    const outcome = await client.callThrough(req.method, async (raw) => {
      const r = await client.axios.request({
        method: req.method,
        url: pathOf(req.url),
        headers: { Accept: 'application/json', ...req.headers },
        ...(req.body !== undefined ? { data: req.body } : {}),
        maxContentLength: MAX_RESPONSE_BYTES,
        ...raw,
      });
      text = Buffer.isBuffer(r.data) ? r.data.toString('utf8') : String(r.data ?? '');
      return r;
    });
    if (typeof outcome === 'string') {
      throw new SecretBackendError('SECRET_BACKEND_UNREACHABLE', `${reference}: ${backend} could not be reached: ${outcome}`, reference);
    }
    return { res: outcome, text };
  } finally {
    client.close();
  }
}

/**
 * The error text a backend put in a failed response, for a message: Vault's `errors` list, Conjur's and Azure's
 * `error.code`/`error.message`, OAuth's `error`/`error_description`. Never the raw body (on a read it could carry
 * the value); at most 300 characters.
 */
export function backendErrorText(res: IntegrationEnvelope): string {
  const b = res.body as Record<string, unknown> | null | undefined;
  let text = '';
  if (b !== null && typeof b === 'object') {
    const errors = b['errors'];
    const error = b['error'];
    if (Array.isArray(errors)) text = errors.filter((e) => typeof e === 'string').join('; ');
    else if (error !== null && typeof error === 'object') {
      const e = error as Record<string, unknown>;
      text = [e['code'], e['message']].filter((x) => typeof x === 'string').join(': ');
    } else if (typeof error === 'string') {
      text = [error, b['error_description']].filter((x) => typeof x === 'string').join(': ');
    }
  }
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** `<status>[ <backend's error text>]`, for a message. */
export function describeFailure(res: IntegrationEnvelope): string {
  const text = backendErrorText(res);
  return `HTTP ${res.status}${text ? ` (${text})` : ''}`;
}

/**
 * The error of a failed read or login: 401/403 AUTH_FAILED, 404 NOT_FOUND, 5xx and anything else UNREACHABLE (a
 * backend in trouble, worth retrying after the negative TTL).
 */
export function failureOf(res: IntegrationEnvelope, reference: string, what: string): SecretBackendError {
  const why = `${reference}: ${what}: ${describeFailure(res)}`;
  if (res.status === 401 || res.status === 403) return new SecretBackendError('SECRET_BACKEND_AUTH_FAILED', why, reference);
  if (res.status === 404) return new SecretBackendError('SECRET_NOT_FOUND', why, reference);
  return new SecretBackendError('SECRET_BACKEND_UNREACHABLE', why, reference);
}

/** The `#field` of a JSON secret as a string (JSON text for a non-string value). */
export function pickField(data: unknown, field: string, reference: string): string {
  if (data === null || typeof data !== 'object' || Array.isArray(data) || !Object.hasOwn(data, field)) {
    throw new SecretBackendError('SECRET_NOT_FOUND', `${reference}: the secret has no field '${field}'`, reference);
  }
  const v = (data as Record<string, unknown>)[field];
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** A settings key as a non-empty string, or undefined. */
export function stringSetting(settings: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const v = settings[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** @throws SecretBackendError SECRET_BACKEND_NOT_CONFIGURED naming the `secret_backend` keys that are missing. */
export function requireSettings(settings: Readonly<Record<string, unknown>>, keys: readonly string[], reference: string, scheme: string): string[] {
  const missing = keys.filter((k) => stringSetting(settings, k) === undefined);
  if (missing.length > 0) {
    throw new SecretBackendError(
      'SECRET_BACKEND_NOT_CONFIGURED',
      `${reference}: the ${scheme} backend is not configured: secret_backend.${missing.join(', secret_backend.')} ${missing.length === 1 ? 'is' : 'are'} not set`,
      reference,
    );
  }
  return keys.map((k) => stringSetting(settings, k)!);
}

/** `base` (a configured URL) with `path` appended to its own path. @throws NOT_CONFIGURED when `base` is no http(s) URL. */
export function urlUnder(base: string, path: string, key: string, reference: string): URL {
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    throw new SecretBackendError('SECRET_BACKEND_NOT_CONFIGURED', `${reference}: secret_backend.${key} is not a URL`, reference);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new SecretBackendError('SECRET_BACKEND_NOT_CONFIGURED', `${reference}: secret_backend.${key} is not an http(s) URL`, reference);
  }
  const [p, q] = path.split('?') as [string, string | undefined];
  u.pathname = `${u.pathname.replace(/\/+$/, '')}${p}`;
  if (q !== undefined) u.search = `?${q}`;
  return u;
}
