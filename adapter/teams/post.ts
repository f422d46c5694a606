/**
 * Posts one message (an Adaptive Card in Teams' `message` envelope) to a Teams incoming webhook.
 *
 * The call goes through the integration transport of `adapter/http` ({@link createEndpointClient}), as every
 * outbound call does: the connection the caller gives (proxy, TLS/CA, client certificate, logging, syslog) applies,
 * the timeout bounds the whole attempt, and redirects are never followed. The URL is a secret (its path or query is
 * the webhook's signature): its path, query and whole text are redacted from every log line of the call, and no
 * message or error of this module names more than its scheme and host.
 *
 * Outcome:
 * | reply                                                              | result                                       |
 * |--------------------------------------------------------------------|----------------------------------------------|
 * | 2xx (`1` from a classic webhook, 202 and no body from a workflow)  | delivered                                    |
 * | 2xx whose text says the delivery failed (Teams answers 200 with    | by the status it names: 429 RATE_LIMITED,    |
 * | "Webhook message delivery failed with error: Microsoft Teams       | 5xx SERVER_ERROR (retryable); 4xx REJECTED;  |
 * | endpoint returned HTTP error 429 …" instead of a 429)              | none named: SERVER_ERROR (retryable)         |
 * | 429, 408                                                           | RATE_LIMITED, TIMEOUT (retryable)            |
 * | 5xx                                                                | SERVER_ERROR (retryable)                     |
 * | 3xx, any other 4xx (a card Teams refuses, a removed webhook)       | REJECTED (not retryable)                     |
 * | no reply in time                                                   | TIMEOUT (retryable)                          |
 * | refused, reset, DNS, TLS, proxy, an unusable connection            | NETWORK (retryable: an admin may fix it)     |
 * | a URL that is not an https webhook URL                             | INVALID_URL (not retryable)                  |
 */
import { CodedError } from '../errors';
import { CallNotMadeCode, CallNotMadeError, createEndpointClient, NOT_REACHED, pathOf, REDACTED, type EndpointConnection } from '../http';
import type { Logger } from '../log';
import { describeTeamsWebhook, teamsWebhookUrlProblem } from './webhook-url';

/** Used when the caller sets no timeout (ms). Teams answers in well under a second. */
export const DEFAULT_TEAMS_TIMEOUT_MS = 15_000;
/** Replies longer than this are not read (bytes): Teams answers `1` or one line of error text. */
const MAX_REPLY_BYTES = 64 * 1024;
/** How much of a reply a failure or a delivery keeps (characters). */
const REPLY_HEAD = 500;

export const TeamsErrorCode = {
  /** The URL is not an https webhook URL (not retryable). */
  INVALID_URL: 'INVALID_URL',
  /** Teams (or the proxy) could not be reached: refused, reset, DNS, TLS, proxy, an unusable connection. */
  NETWORK: 'NETWORK',
  /** No reply within the timeout, or a 408. */
  TIMEOUT: 'TIMEOUT',
  /** Throttled: a 429, or Teams' 200 that says "returned HTTP error 429". */
  RATE_LIMITED: 'RATE_LIMITED',
  /** A 5xx, or a 200 that says the delivery failed for no client-side reason. */
  SERVER_ERROR: 'SERVER_ERROR',
  /** Refused for good: a card Teams does not accept (400, 413), a removed or disabled webhook (403, 404, 410), a redirect. */
  REJECTED: 'REJECTED',
} as const;
export type TeamsErrorCode = (typeof TeamsErrorCode)[keyof typeof TeamsErrorCode];

/** A failed post. `retryable` says whether the same message may be accepted later as it is. */
export class TeamsError extends CodedError<TeamsErrorCode> {
  override readonly name = 'TeamsError';
  readonly retryable: boolean;
  /** The HTTP status Teams answered (or, for its 200-with-error, the status its text names). */
  readonly status: number | undefined;
  /** What Teams answered, its head, secrets scrubbed. */
  readonly response: string | undefined;

  constructor(code: TeamsErrorCode, message: string, opts: { retryable: boolean; status?: number | undefined; response?: string | undefined }) {
    super(code, message);
    this.retryable = opts.retryable;
    this.status = opts.status;
    this.response = opts.response;
  }
}

export interface TeamsPostOptions {
  /** Where the call's lines go (its level is the connection's `logging.level`, default info). */
  logger: Logger;
  /** Proxy, TLS/CA, client certificate and logging, as an integration's; undefined goes direct. */
  connection?: EndpointConnection | undefined;
  /** Bounds the whole attempt (ms); default {@link DEFAULT_TEAMS_TIMEOUT_MS}. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface TeamsPosted {
  status: number;
  /** `<status> <reply head>`, e.g. `200 1`. */
  response: string;
}

/** The failure of an HTTP status: retryable for throttling, timeouts and server errors; refused for good otherwise. */
function failureOf(status: number | undefined, message: string, response: string | undefined): TeamsError {
  const opts = { status, response };
  if (status === 429) return new TeamsError('RATE_LIMITED', message, { ...opts, retryable: true });
  if (status === 408) return new TeamsError('TIMEOUT', message, { ...opts, retryable: true });
  if (status === undefined || status >= 500) return new TeamsError('SERVER_ERROR', message, { ...opts, retryable: true });
  return new TeamsError('REJECTED', message, { ...opts, retryable: false });
}

// Teams' classic webhooks do not answer errors with an error status: they answer 200 with a text such as
// "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId …"
// (Microsoft's connectors-using.md, "Rate limiting for connectors": "Connectors do not throw 429s").
const DELIVERY_FAILED = /delivery failed|returned HTTP error/i;
const EMBEDDED_STATUS = /returned HTTP error (\d{3})/i;

/**
 * Posts `message` as JSON to the webhook at `webhookUrl` and answers what Teams said.
 * @throws TeamsError (see the table above); never an error that names the URL beyond its scheme and host.
 */
export async function postTeamsMessage(webhookUrl: string, message: unknown, opts: TeamsPostOptions): Promise<TeamsPosted> {
  const problem = teamsWebhookUrlProblem(webhookUrl);
  if (problem !== undefined) throw new TeamsError('INVALID_URL', `the Teams webhook URL ${problem}`, { retryable: false });
  const url = new URL(webhookUrl);
  const target = `POST ${describeTeamsWebhook(url)}`;
  // Every part that may carry the signature, longest first (path and query before either alone), so that a line or a
  // message keeps the scheme and host and loses the rest. The transport also redacts the query's values by name.
  const secrets = [...new Set([pathOf(url), url.pathname, url.search])]
    .filter((s) => s.length >= 4)
    .sort((a, b) => b.length - a.length);
  const scrub = (text: string) => secrets.reduce((t, s) => t.split(s).join(REDACTED), text);

  const timeoutMs = opts.timeoutMs ?? DEFAULT_TEAMS_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const client = createEndpointClient(
    url,
    { timeoutMs, ...(opts.connection !== undefined ? { connection: opts.connection } : {}) },
    { logger: opts.logger, name: 'teams', redact: { values: secrets } },
  );
  let outcome: Awaited<ReturnType<typeof client.send>>;
  try {
    outcome = await client.send({
      method: 'POST',
      path: pathOf(url),
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/plain', 'User-Agent': 'provisio-teams/1' },
      body: JSON.stringify(message),
      signal,
      maxResponseBytes: MAX_REPLY_BYTES,
    });
  } finally {
    client.close();
  }

  if (outcome instanceof CallNotMadeError) {
    if (timeout.aborted || outcome.code === CallNotMadeCode.TIMEOUT) {
      throw new TeamsError('TIMEOUT', `${target}: no reply within ${timeoutMs} ms`, { retryable: true });
    }
    if (outcome.code === CallNotMadeCode.RESPONSE_TOO_LARGE) {
      throw new TeamsError('SERVER_ERROR', `${target}: the reply was longer than ${MAX_REPLY_BYTES} bytes`, { retryable: true });
    }
    // The transport's message names the target (`<NOT_REACHED>: POST <url>: why`), its path included: keep the why.
    const why = outcome.message.startsWith(`${NOT_REACHED}: `) ? outcome.message.replace(/^[^:]+: \S+ \S+: /, '') : outcome.message;
    throw new TeamsError('NETWORK', `${target}: ${scrub(why)}`, { retryable: true });
  }

  const res = outcome;
  const text = (res.text ?? (res.body === null || res.body === undefined ? '' : JSON.stringify(res.body))).trim();
  const reply = scrub(text).slice(0, REPLY_HEAD);
  const response = `${res.status}${reply ? ` ${reply}` : ''}`;
  if (res.status >= 200 && res.status < 300) {
    if (!DELIVERY_FAILED.test(text)) return { status: res.status, response };
    const named = EMBEDDED_STATUS.exec(text);
    const status = named ? Number(named[1]) : undefined;
    throw failureOf(status, `${target}: Teams answered ${res.status} but did not deliver the card: ${reply}`, response);
  }
  const why = res.status >= 300 && res.status < 400 ? ' (redirects are not followed)' : '';
  throw failureOf(res.status, `${target}: Teams answered ${res.status}${why}${reply ? `: ${reply}` : ''}`, response);
}
