/**
 * The `webhook` task: a Lumos-style provisioning webhook (../shared/seeds/lumos-provisioning-webhooks.txt).
 *
 * Request: `POST <url>` with the seed's payload as JSON (`application`, `permissions`, `target_user`,
 * `access_length`, `request_comment`, `request_task_url`, `custom_fields`), built from the rendered `incoming`;
 * `target_user.email` falls back to the order's `user_email`, `custom_fields.username` to the order's `username`.
 *
 * Headers:
 * - `Idempotency-Key: <runId>:<stepId>:<attempt>`; `X-Provisio-Delivery: <runId>:<stepId>` (the same for every
 *   attempt, so a receiver can tell a retry of one delivery from a new one).
 * - With `secretRef`: `X-Provisio-Timestamp: <unix seconds>` and
 *   `X-Provisio-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`.
 *   Why this shape: the timestamp is inside the MAC, so a captured request cannot be replayed later with a fresh
 *   timestamp; a receiver checks the MAC over the exact bytes received (no JSON re-serialisation) and refuses
 *   timestamps more than {@link WEBHOOK_SIGNATURE_TOLERANCE_S} away from its clock (Stripe's and Slack's scheme,
 *   which receivers already know how to verify). The `sha256=` prefix leaves room for another algorithm later.
 *
 * Outcome of one attempt:
 * | reply                                                 | result                                             |
 * |-------------------------------------------------------|----------------------------------------------------|
 * | 204, or 2xx with `{"response":"PROVISIONED_USER"}`     | success `{status, response, body}`                 |
 * | 429                                                   | HTTP_429 (retry policy decides)                    |
 * | 5xx                                                   | HTTP_5XX (retry policy decides)                    |
 * | no reply in time / aborted                            | TIMEOUT (retry policy decides)                     |
 * | connection refused, reset, DNS, proxy refused ...     | NETWORK (retry policy decides)                     |
 * | `NO_PROVISIONING_ACTION`, any other reply, 3xx, 4xx,  | WEBHOOK_REJECTED, never retried                    |
 * | a reply over 64 KiB                                   |                                                    |
 * | payload not the seed's shape, secret not set, bad url | INVALID_INPUT, never retried                       |
 *
 * The call goes through the integration transport of `adapter/http` ({@link createEndpointClient}), as every
 * outbound call does: the executor's connection (proxy, TLS, mTLS, logging, syslog) applies, the step's timeout
 * is the call's timeout, and the signature, the secret and the URL's query are redacted in its log lines. The
 * connection is resolved at each delivery (the server reads the `webhooks` settings), so a changed proxy or CA
 * applies to the next delivery.
 */
import { createHmac } from 'node:crypto';
import Ajv from 'ajv';
import { CallNotMadeCode, CallNotMadeError, createEndpointClient, isRecord, NOT_REACHED, onFirstUse, pathOf, SecretBackendError, type EndpointConnection, type Logger } from '../../adapter';
import { WEBHOOK_PAYLOAD_SCHEMA, type WebhookTask } from '../document';
import type { StepContext, TaskExecutor } from '../engine/executor';
import { renderTemplate } from '../templating';
import { failed, head, succeeded } from './results';

type MaybePromise<T> = T | Promise<T>;

/** Used when the task sets no timeout. Milliseconds. */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 30_000;
/** How far a receiver should let `X-Provisio-Timestamp` drift from its clock. Seconds. */
export const WEBHOOK_SIGNATURE_TOLERANCE_S = 300;
/** Replies larger than this are cut: the executor only needs the `response` field. Bytes. */
const MAX_REPLY_BYTES = 64 * 1024;

export const WEBHOOK_HEADERS = {
  signature: 'X-Provisio-Signature',
  timestamp: 'X-Provisio-Timestamp',
  delivery: 'X-Provisio-Delivery',
  idempotencyKey: 'Idempotency-Key',
} as const;

export interface WebhookExecutorDeps {
  logger: Logger;
  /** The secret a `secretRef` (settings key `<section>.<name>`) names; undefined when it is not set. */
  resolveSecret(ref: string): MaybePromise<string | undefined>;
  /** Used when the task has no timeout. Milliseconds. */
  defaultTimeoutMs?: number;
  /**
   * How deliveries reach receivers: proxy, TLS, mTLS, logging and syslog, as an integration's configuration;
   * undefined goes direct. Called at each delivery, so a changed setting applies to the next one without a restart.
   */
  resolveConnection?(): MaybePromise<EndpointConnection | undefined>;
  /**
   * Stub mode (the server reads the `webhooks.stub_mode` setting), asked at each delivery: true answers the delivery
   * here, after its payload was built, checked and signed, as a receiver that provisioned
   * (`{"response":"PROVISIONED_USER","stub":true}`), without any request: an integration's stub mode for webhooks,
   * for demos and rehearsals where the receiver does not exist.
   */
  resolveStubMode?(): MaybePromise<boolean>;
}

/** The Lumos provisioning-webhook payload. */
export interface WebhookPayload {
  application: { app_id: string; instance_id?: string; user_friendly_label?: string };
  permissions: { label?: string; value: string; type?: string; source?: string }[];
  target_user: { email: string; given_name?: string; family_name?: string };
  access_length: number | null;
  request_comment?: string;
  request_task_url?: string;
  custom_fields: Record<string, string | number | boolean | null>;
}

const validatePayload = onFirstUse(() => new Ajv({ allErrors: true, strict: false }).compile(WEBHOOK_PAYLOAD_SCHEMA));

/**
 * The payload in the seed's key order: the rendered input, with `permissions` defaulting to `[]`,
 * `access_length` to null (no end), `custom_fields` to `{}`, and the target user's email and username taken from
 * the order when the input leaves them out. Not validated here: see {@link createWebhookExecutor}.
 */
export function buildWebhookPayload(input: Record<string, unknown>, order: Record<string, unknown> | undefined): Record<string, unknown> {
  const targetUser = isRecord(input['target_user']) ? { ...input['target_user'] } : {};
  if (targetUser['email'] === undefined && typeof order?.['user_email'] === 'string') targetUser['email'] = order['user_email'];
  const customFields = isRecord(input['custom_fields']) ? { ...input['custom_fields'] } : input['custom_fields'] === undefined ? {} : input['custom_fields'];
  if (isRecord(customFields) && customFields['username'] === undefined && typeof order?.['username'] === 'string') customFields['username'] = order['username'];
  const payload: Record<string, unknown> = {
    application: input['application'],
    permissions: input['permissions'] ?? [],
    target_user: targetUser,
    access_length: input['access_length'] ?? null,
  };
  if (input['request_comment'] !== undefined) payload['request_comment'] = input['request_comment'];
  if (input['request_task_url'] !== undefined) payload['request_task_url'] = input['request_task_url'];
  payload['custom_fields'] = customFields;
  // Anything else the input carries stays in, so the schema check below names it instead of it vanishing.
  for (const [k, v] of Object.entries(input)) if (!(k in payload)) payload[k] = v;
  return payload;
}

/** `sha256=<hex>` over `<timestamp>.<body>`: what {@link WEBHOOK_HEADERS}.signature carries. */
export function signWebhookBody(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** The URL without query and fragment, for logs and messages (a query may carry a token). */
function safeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function renderUrl(task: WebhookTask, ctx: StepContext): URL {
  // Only `inputs` is in scope: an order's data must never steer where the webhook goes.
  const rendered = renderTemplate(task.url, { inputs: ctx.variables.inputs ?? {} });
  if (typeof rendered !== 'string') throw new Error(`url rendered to a ${typeof rendered}, not a string`);
  const url = new URL(rendered);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`url must be http or https, not ${url.protocol}`);
  // Credentials in the URL would be dropped silently (or, by fetch before, refused on every attempt).
  if (url.username !== '' || url.password !== '') throw new Error('url must not carry credentials');
  return url;
}

export function createWebhookExecutor(deps: WebhookExecutorDeps): TaskExecutor {
  const defaultTimeout = deps.defaultTimeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  return async (compiled, input, ctx) => {
    const task = compiled.task as WebhookTask;
    if (task.kind !== 'webhook') return failed('INVALID_INPUT', `task '${compiled.id}' is not a webhook task`, { retryable: false });

    let url: URL;
    try {
      url = renderUrl(task, ctx);
    } catch (e) {
      return failed('INVALID_INPUT', `webhook url: ${(e as Error).message}`, { retryable: false });
    }
    const payload = buildWebhookPayload(input, ctx.variables.order);
    const validate = validatePayload();
    if (!validate(payload)) {
      const issues = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : ''}`);
      return failed('INVALID_INPUT', `webhook payload is not a provisioning-webhook payload: ${issues.join('; ')}`, { retryable: false });
    }
    const body = JSON.stringify(payload);

    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      Accept: 'application/json',
      'User-Agent': 'provisio-webhook/1',
      [WEBHOOK_HEADERS.idempotencyKey]: ctx.idempotencyKey,
      [WEBHOOK_HEADERS.delivery]: `${ctx.runId}:${ctx.stepId}`,
    };
    let secret: string | undefined;
    if (task.secretRef !== undefined) {
      try {
        secret = await deps.resolveSecret(task.secretRef);
      } catch (e) {
        // The secret is a reference to an external backend that could not be read (its message names the reference,
        // never a value): retryable, since the backend may answer after its failure is no longer remembered.
        if (e instanceof SecretBackendError) return failed('NETWORK', `webhook secret '${task.secretRef}' could not be read: ${e.message}`, { retryable: true });
        throw e;
      }
      if (secret === undefined || secret === '') return failed('INVALID_INPUT', `webhook secret '${task.secretRef}' is not set`, { retryable: false });
      const timestamp = Math.floor(ctx.now() / 1000);
      headers[WEBHOOK_HEADERS.timestamp] = String(timestamp);
      headers[WEBHOOK_HEADERS.signature] = signWebhookBody(secret, timestamp, body);
    }

    if ((await deps.resolveStubMode?.()) === true) {
      ctx.logger.info('webhook stubbed: stub mode answers without a request', { runId: ctx.runId, stepId: ctx.stepId, url: safeUrl(url) });
      const reply = { response: 'PROVISIONED_USER', stub: true };
      return succeeded({ status: 200, response: reply.response, body: reply });
    }
    const connection = await deps.resolveConnection?.();
    const timeoutMs = compiled.timeoutMs ?? defaultTimeout;
    // The transport's timeout waits for activity; this one bounds the whole attempt, a trickling reply included.
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([ctx.signal, timeout]);
    const target = `POST ${safeUrl(url)}`;
    const client = createEndpointClient(
      url,
      { timeoutMs, ...(connection !== undefined ? { connection } : {}) },
      {
        logger: deps.logger,
        name: 'webhook',
        redact: { headers: [WEBHOOK_HEADERS.signature], values: secret !== undefined ? [secret] : [] },
      },
    );
    const started = ctx.now();
    let outcome: Awaited<ReturnType<typeof client.send>>;
    try {
      // Redirects are not followed (the transport never follows one): the signed delivery goes where the workflow
      // says, or nowhere.
      outcome = await client.send({ method: 'POST', path: pathOf(url), headers, body, signal, maxResponseBytes: MAX_REPLY_BYTES });
    } finally {
      client.close();
    }
    if (outcome instanceof CallNotMadeError) {
      if (ctx.signal.aborted) return failed('TIMEOUT', `webhook ${target}: the attempt was aborted`);
      if (timeout.aborted || outcome.code === CallNotMadeCode.TIMEOUT) return failed('TIMEOUT', `webhook ${target}: no reply within ${timeoutMs} ms`);
      if (outcome.code === CallNotMadeCode.RESPONSE_TOO_LARGE) {
        return failed('WEBHOOK_REJECTED', `webhook ${target} answered with more than ${MAX_REPLY_BYTES} bytes; only {"response":"PROVISIONED_USER"} or 204 count as provisioned`, {
          retryable: false,
        });
      }
      // The transport's message names the target again (`<NOT_REACHED>: POST <url>: why`); ours already does.
      const why = outcome.message.startsWith(`${NOT_REACHED}: `) ? outcome.message.replace(/^[^:]+: \S+ \S+: /, '') : outcome.message;
      return failed('NETWORK', `webhook ${target}: ${why}`);
    }
    const res = outcome;
    ctx.logger.info('webhook delivered', { runId: ctx.runId, stepId: ctx.stepId, url: safeUrl(url), status: res.status, ms: ctx.now() - started });

    // The envelope parsed JSON into `body` (null when empty) and kept anything else as `text`.
    const reply: unknown = res.body !== undefined ? res.body : (res.text ?? null);
    const text = res.text ?? (res.body === null ? '' : JSON.stringify(res.body));
    const response = isRecord(reply) && typeof reply['response'] === 'string' ? reply['response'] : null;
    const output = { status: res.status, response, body: reply };

    if (res.status === 204) return succeeded(output);
    if (res.status >= 200 && res.status < 300 && response === 'PROVISIONED_USER') return succeeded(output);
    if (res.status === 429) return failed('HTTP_429', `webhook ${target} answered 429 (rate limited)`, { output });
    if (res.status >= 500) return failed('HTTP_5XX', `webhook ${target} answered ${res.status}${text ? `: ${head(text)}` : ''}`, { output });
    const why = response !== null ? `"response": "${head(response, 80)}"` : text ? head(text) : 'an empty body';
    return failed('WEBHOOK_REJECTED', `webhook ${target} answered ${res.status} with ${why}; only {"response":"PROVISIONED_USER"} or 204 count as provisioned`, {
      retryable: false,
      output,
    });
  };
}
