/**
 * The standard response envelope of an integration call, as the Itential "Troubleshoot integration errors" section
 * describes it, and the string errors for calls that could not be made.
 */

export type ResponseHeaders = Record<string, string | string[]>;

export interface ParseError {
  name: string;
  message: string;
}

/**
 * What every call that reached a server returns, success or not. `body` is present when the response parsed as JSON
 * (null for an empty body); otherwise `text` holds the raw text and `parseError` says why it did not parse.
 */
export interface IntegrationEnvelope {
  ok: boolean;
  method: string;
  url: string;
  status: number;
  statusText: string;
  headers: ResponseHeaders;
  body?: unknown;
  text?: string;
  parseError?: ParseError;
}

/** A call either reached the server (an envelope) or could not be made (a string saying why). */
export type IntegrationCallResult = IntegrationEnvelope | string;

export function isEnvelope(result: IntegrationCallResult): result is IntegrationEnvelope {
  return typeof result !== 'string';
}

/** Builds the envelope from what came over the wire. `raw` is the undecoded body. */
export function buildEnvelope(input: {
  method: string;
  url: string;
  status: number;
  statusText: string;
  headers: Record<string, unknown>;
  raw: Buffer | string | undefined | null;
}): IntegrationEnvelope {
  const text = input.raw === undefined || input.raw === null ? '' : Buffer.isBuffer(input.raw) ? input.raw.toString('utf8') : input.raw;
  const env: IntegrationEnvelope = {
    ok: input.status >= 200 && input.status < 300,
    method: input.method.toUpperCase(),
    url: input.url,
    status: input.status,
    statusText: input.statusText || STATUS_TEXT[input.status] || '',
    headers: normaliseHeaders(input.headers),
  };
  if (text.trim() === '') {
    env.body = null;
    return env;
  }
  try {
    env.body = JSON.parse(text) as unknown;
  } catch (e) {
    env.text = text;
    const err = e as Error;
    env.parseError = { name: err.name, message: err.message };
  }
  return env;
}

function normaliseHeaders(headers: Record<string, unknown>): ResponseHeaders {
  const out: ResponseHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || v === null) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.map(String) : String(v);
  }
  return out;
}

/** The prefix the seed gives string errors: the integration could not make the call, and why. */
export const NOT_MADE = 'The integration did not have the information needed to make the API call';

/** The prefix of string errors for calls that were attempted but got no response. */
export const NOT_REACHED = 'The API call could not be made';

/** Stable codes of {@link CallNotMadeError}: why a call never produced a response. */
export const CallNotMadeCode = {
  MISSING_CONFIGURATION: 'MISSING_CONFIGURATION',
  UNREACHABLE: 'UNREACHABLE',
  TIMEOUT: 'TIMEOUT',
  TLS_FAILURE: 'TLS_FAILURE',
  CONNECTION_RESET: 'CONNECTION_RESET',
  PROXY_FAILURE: 'PROXY_FAILURE',
  KEY_RETRIEVAL: 'KEY_RETRIEVAL',
  /**
   * A handshake-based scheme (Kerberos through HTTP Negotiate) could not authenticate: the KDC refused the
   * credentials or knows no such service, the server refused the ticket, or its mutual-authentication token did not
   * verify. The message names the Kerberos error where one is known.
   */
  AUTHENTICATION_FAILED: 'AUTHENTICATION_FAILED',
  /** The caller's signal (a step's timeout or cancel) aborted the call before a response arrived. */
  ABORTED: 'ABORTED',
  /** The response body was longer than the caller would read (`maxResponseBytes`); it was not kept. */
  RESPONSE_TOO_LARGE: 'RESPONSE_TOO_LARGE',
  OTHER: 'OTHER',
} as const;
export type CallNotMadeCode = (typeof CallNotMadeCode)[keyof typeof CallNotMadeCode];

/**
 * Thrown inside the transport (interceptors, auth providers) when a call cannot be made; `client.call` turns it into
 * its message string. Thrown for missing or unusable configuration, unreachable hosts, timeouts, TLS failures.
 */
export class CallNotMadeError extends Error {
  override readonly name = 'CallNotMadeError';
  constructor(
    readonly code: CallNotMadeCode,
    message: string,
  ) {
    super(message);
  }
}

/** A call that lacks configuration or a credential it needs; the message starts with {@link NOT_MADE}. */
export function missingInformation(reason: string, code: CallNotMadeCode = CallNotMadeCode.MISSING_CONFIGURATION): CallNotMadeError {
  return new CallNotMadeError(code, `${NOT_MADE}: ${reason}`);
}

/**
 * Thrown by an auth provider when the token (or key) endpoint answered with a failure: the call the caller asked for
 * was never attempted, and the envelope is the token endpoint's call (typically a POST to its URL).
 */
export class TokenRequestError extends Error {
  override readonly name = 'TokenRequestError';
  readonly code = 'TOKEN_REQUEST_FAILED' as const;
  constructor(readonly envelope: IntegrationEnvelope) {
    super(`token request ${envelope.method} ${envelope.url} failed with ${envelope.status} ${envelope.statusText}`);
  }
}

/** Node's text for the statuses servers commonly send without a reason phrase (HTTP/2 and some proxies). */
const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

interface NetworkErrorLike {
  code?: string;
  message?: string;
  cause?: unknown;
}

const TLS_CODES =
  /^(ERR_TLS_|ERR_SSL_|EPROTO$|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_|HOSTNAME_MISMATCH|ERR_OSSL_)/;

/**
 * Explains a low-level failure (no response) as a {@link CallNotMadeError} naming the target. `timeoutMs` is what
 * the call waited; `target` is `METHOD url`.
 */
export function explainNetworkError(
  err: unknown,
  target: string,
  timeoutMs: number | undefined,
  opts: { clientCertificate?: boolean } = {},
): CallNotMadeError {
  if (err instanceof CallNotMadeError) return err;
  const e = (err ?? {}) as NetworkErrorLike;
  // Raised inside an agent (a proxy refusing a tunnel) and wrapped by axios.
  if (e.cause instanceof CallNotMadeError) return e.cause;
  const cause = (e.cause ?? {}) as NetworkErrorLike;
  const code = e.code ?? cause.code ?? '';
  const detail = cause.message ?? e.message ?? String(err);
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || /timeout/i.test(e.message ?? '')) {
    return new CallNotMadeError(
      CallNotMadeCode.TIMEOUT,
      `${NOT_REACHED}: ${target} timed out${timeoutMs !== undefined ? ` after ${timeoutMs} ms` : ''} without a response`,
    );
  }
  const tooLarge = /^maxContentLength size of (\d+) exceeded/.exec(e.message ?? '');
  if (tooLarge) {
    return new CallNotMadeError(CallNotMadeCode.RESPONSE_TOO_LARGE, `${NOT_REACHED}: ${target}: the response was longer than ${tooLarge[1]} bytes and was not read`);
  }
  if (code === 'ECONNREFUSED') return new CallNotMadeError(CallNotMadeCode.UNREACHABLE, `${NOT_REACHED}: ${target}: the server refused the connection (${detail})`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new CallNotMadeError(CallNotMadeCode.UNREACHABLE, `${NOT_REACHED}: ${target}: the host name does not resolve (${detail})`);
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return new CallNotMadeError(CallNotMadeCode.UNREACHABLE, `${NOT_REACHED}: ${target}: the host is unreachable (${detail})`);
  if (TLS_CODES.test(code) || /certificate|ssl|tls|alert/i.test(detail)) {
    return new CallNotMadeError(CallNotMadeCode.TLS_FAILURE, `${NOT_REACHED}: ${target}: TLS failure (${code ? `${code}: ` : ''}${detail})`);
  }
  const reset = code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/i.test(detail);
  // With TLS 1.3 the server checks a client certificate after the client's handshake is done, so a refusal often
  // arrives as a bare hang-up rather than an alert.
  if (reset && opts.clientCertificate && target.includes('https://')) {
    return new CallNotMadeError(
      CallNotMadeCode.TLS_FAILURE,
      `${NOT_REACHED}: ${target}: TLS failure (the server closed the connection during or right after the handshake; it most likely refused the client certificate: ${detail})`,
    );
  }
  if (reset) {
    return new CallNotMadeError(CallNotMadeCode.CONNECTION_RESET, `${NOT_REACHED}: ${target}: the connection was reset before a response arrived (${detail})`);
  }
  return new CallNotMadeError(CallNotMadeCode.OTHER, `${NOT_REACHED}: ${target}: the call could not be made (${code ? `${code}: ` : ''}${detail})`);
}
