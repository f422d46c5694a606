/**
 * The `integration` task: one operation of an integration model, called through the integration runtime
 * (adapter/http). The output is the standard envelope. Classification of one attempt:
 *
 * | what happened                                 | result                                              |
 * |-----------------------------------------------|-----------------------------------------------------|
 * | 2xx, or a status listed in `acceptStatuses`   | success, output = envelope                          |
 * | 429                                           | HTTP_429, output = envelope                         |
 * | other 4xx, and 1xx/3xx (redirects not followed)| HTTP_4XX, output = envelope                        |
 * | 5xx                                           | HTTP_5XX, output = envelope                         |
 * | no response, ctx.signal aborted or timed out  | TIMEOUT                                             |
 * | no response otherwise (refused, DNS, TLS ...) | NETWORK                                             |
 * | unknown integration/operation, invalid input  | INVALID_INPUT, never retried                        |
 *
 * Retryability of the HTTP and network codes is left to the task's retry policy (its defaults retry TIMEOUT,
 * NETWORK, HTTP_429 and HTTP_5XX).
 */
import type { IntegrationCallRequest, IntegrationClient, QueryValue } from '../../adapter';
import type { IntegrationTask } from '../document';
import type { StepContext, StepResult, TaskExecutor } from '../engine/executor';
import { failed, head, httpErrorCode, isRecord, succeeded } from './results';

type MaybePromise<T> = T | Promise<T>;

/**
 * What the executor needs to know of an operation. A `ModelOperation` of integration-model fits as is.
 * `parameters` tells which path parameters the template has (and which are required); `requestBody` the
 * media type a body is sent with (JSON when absent).
 */
export interface ResolvedOperation {
  method: string;
  /** The path template, e.g. `/api/vcenter/vm/{vm}/power`. */
  path: string;
  parameters?: ReadonlyArray<{ name: string; in: string; required?: boolean }>;
  requestBody?: { contentType: string };
}

export interface IntegrationExecutorDeps {
  /** The operation, or undefined when the integration or operation does not exist (any more). */
  resolveOperation(integrationName: string, operationId: string): MaybePromise<ResolvedOperation | undefined>;
  /**
   * The runtime client of the integration (cached by the caller, so tokens and connections are reused). Only
   * `call` is used, so a stub-mode integration can hand out an object that answers from the model's examples
   * (which is why the operation is named: the example is the operation's).
   */
  getClient(integrationName: string, operationId: string): MaybePromise<Pick<IntegrationClient, 'call'> | undefined>;
  /**
   * Checks the rendered input against the operation's task input schema (integration-model `validateTaskInput`);
   * each problem as `<pointer> <message>`. Absent: only the path parameters are checked.
   */
  validateInput?(integrationName: string, operationId: string, input: Record<string, unknown>): MaybePromise<string[]>;
}

/** The rendered task input: `{path, query, headers, cookies, body}`. */
interface IntegrationInput {
  path?: Record<string, unknown>;
  query?: Record<string, unknown>;
  headers?: Record<string, unknown>;
  cookies?: Record<string, unknown>;
  body?: unknown;
}

/** Thrown by {@link buildIntegrationRequest} for input that can never make a valid request. */
export class IntegrationInputError extends Error {
  override readonly name = 'IntegrationInputError';
}

function scalar(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function section(input: Record<string, unknown>, key: keyof IntegrationInput): Record<string, unknown> {
  const v = input[key];
  if (v === undefined || v === null) return {};
  if (!isRecord(v)) throw new IntegrationInputError(`input.${key} must be an object`);
  return v;
}

/**
 * The HTTP request a rendered input stands for: every `{name}` of the path template substituted with
 * `input.path.name`, percent-encoded (so `a/b` cannot climb to another resource), query/headers/cookies set, the
 * body sent with the operation's media type.
 * @throws IntegrationInputError for a missing path parameter or a malformed section.
 */
export function buildIntegrationRequest(op: ResolvedOperation, input: Record<string, unknown>): IntegrationCallRequest {
  const pathValues = section(input, 'path');
  const path = op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const v = Object.prototype.hasOwnProperty.call(pathValues, name) ? pathValues[name] : undefined;
    if (v === undefined || v === null || v === '') throw new IntegrationInputError(`path parameter '${name}' has no value`);
    return encodeURIComponent(scalar(v));
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(section(input, 'headers'))) if (v !== undefined && v !== null) headers[k] = scalar(v);
  const cookies = Object.entries(section(input, 'cookies')).filter(([, v]) => v !== undefined && v !== null);
  if (cookies.length > 0) headers['Cookie'] = cookies.map(([k, v]) => `${k}=${encodeURIComponent(scalar(v))}`).join('; ');
  const query: Record<string, QueryValue> = {};
  for (const [k, v] of Object.entries(section(input, 'query'))) {
    if (v === undefined || v === null) continue;
    query[k] = Array.isArray(v) ? v.map((x) => scalar(x)) : typeof v === 'number' || typeof v === 'boolean' ? v : scalar(v);
  }
  const request: IntegrationCallRequest = { method: op.method.toUpperCase(), path, headers };
  if (Object.keys(query).length > 0) request.query = query;
  if (input['body'] !== undefined) {
    const contentType = op.requestBody?.contentType ?? 'application/json';
    headers['Content-Type'] = contentType;
    // The runtime sends strings as they are and anything else as JSON: a JSON string value must be encoded here.
    const json = /[/+]json$/i.test((contentType.split(';')[0] ?? '').trim());
    request.body = typeof input['body'] === 'string' ? (json ? JSON.stringify(input['body']) : input['body']) : input['body'];
  }
  return request;
}

/** Splits `<integration>/<operationId>` at the first slash. */
export function parseOperationRef(ref: string): { integration: string; operationId: string } | undefined {
  const i = ref.indexOf('/');
  if (i <= 0 || i === ref.length - 1) return undefined;
  return { integration: ref.slice(0, i), operationId: ref.slice(i + 1) };
}

function stringError(message: string, ctx: StepContext): StepResult {
  // The runtime's own timeout says "timed out"; an aborted signal is the engine's attempt timeout or a cancel.
  if (ctx.signal.aborted || /timed out/i.test(message)) return failed('TIMEOUT', message);
  return failed('NETWORK', message);
}

export function createIntegrationExecutor(deps: IntegrationExecutorDeps): TaskExecutor {
  return async (compiled, input, ctx) => {
    const task = compiled.task as Pick<IntegrationTask, 'kind' | 'operation' | 'acceptStatuses'>;
    if (task.kind !== 'integration') return failed('INVALID_INPUT', `task '${compiled.id}' is not an integration task`, { retryable: false });
    const ref = parseOperationRef(task.operation);
    if (!ref) return failed('INVALID_INPUT', `operation '${task.operation}' is not <integration>/<operationId>`, { retryable: false });
    const op = await deps.resolveOperation(ref.integration, ref.operationId);
    if (!op) return failed('INVALID_INPUT', `integration '${ref.integration}' has no operation '${ref.operationId}'`, { retryable: false });
    const issues = deps.validateInput ? await deps.validateInput(ref.integration, ref.operationId, input) : [];
    if (issues.length > 0) return failed('INVALID_INPUT', `${task.operation}: the input does not match the operation: ${issues.join('; ')}`, { retryable: false });
    const client = await deps.getClient(ref.integration, ref.operationId);
    if (!client) return failed('INVALID_INPUT', `integration '${ref.integration}' is not configured`, { retryable: false });

    let request: IntegrationCallRequest;
    try {
      request = buildIntegrationRequest(op, input);
    } catch (e) {
      if (e instanceof IntegrationInputError) return failed('INVALID_INPUT', `${task.operation}: ${e.message}`, { retryable: false });
      throw e;
    }
    // Ours wins over any spelling of the header in the input: a retry must be recognisable as one.
    const headers = Object.fromEntries(Object.entries(request.headers ?? {}).filter(([k]) => k.toLowerCase() !== 'idempotency-key'));
    request.headers = { ...headers, 'Idempotency-Key': ctx.idempotencyKey };
    request.signal = ctx.signal;

    const result = await client.call(request);
    if (typeof result === 'string') return stringError(result, ctx);
    const accepted = result.ok || (task.acceptStatuses ?? []).includes(result.status);
    if (accepted) return succeeded(result);
    const detail = result.text !== undefined ? head(result.text) : result.body !== undefined && result.body !== null ? head(JSON.stringify(result.body)) : '';
    return failed(
      httpErrorCode(result.status),
      `${result.method} ${result.url} answered ${result.status}${result.statusText ? ` ${result.statusText}` : ''}${detail ? `: ${detail}` : ''}`,
      { output: result },
    );
  };
}
