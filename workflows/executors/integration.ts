/**
 * The `integration` task: one operation of an integration, run by the process's integration runtime
 * (integration-model `invoke`: the integration and its compiled operation cached by version, the input checked
 * against the operation's task input schema, the generated typed client when the model has one, stub mode and
 * gateway clusters as configured). The output is the standard envelope. Classification of one attempt:
 *
 * | what happened                                 | result                                              |
 * |-----------------------------------------------|-----------------------------------------------------|
 * | 2xx, or a status listed in `acceptStatuses`   | success, output = envelope                          |
 * | 429                                           | HTTP_429, output = envelope                         |
 * | other 4xx, and 1xx/3xx (redirects not followed)| HTTP_4XX, output = envelope                        |
 * | 5xx                                           | HTTP_5XX, output = envelope                         |
 * | 2xx JSON-RPC answer with an `error` member    | RPC_ERROR naming the error, output = envelope       |
 * | no response, ctx.signal aborted or timed out  | TIMEOUT                                             |
 * | no response otherwise (refused, DNS, TLS ...) | NETWORK                                             |
 * | unknown integration/operation, invalid input  | INVALID_INPUT, never retried                        |
 *
 * Retryability of the HTTP and network codes is left to the task's retry policy (its defaults retry TIMEOUT,
 * NETWORK, HTTP_429 and HTTP_5XX).
 */
import { InvocationError, type IntegrationInvoker, type TaskInput } from '../../integration-model';
import type { IntegrationTask } from '../document';
import type { StepContext, StepResult, TaskExecutor } from '../engine/executor';
import { failed, head, httpErrorCode, succeeded } from './results';

export interface IntegrationExecutorDeps {
  /** The process's integration runtime (one per process: its clients keep tokens and connections). */
  integrations: IntegrationInvoker;
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

    let result;
    try {
      // The rendered input is what the task input schema describes; invoke checks it against the operation's.
      result = await deps.integrations.invoke(ref.integration, ref.operationId, input as TaskInput, { signal: ctx.signal, idempotencyKey: ctx.idempotencyKey });
    } catch (e) {
      if (e instanceof InvocationError) return failed('INVALID_INPUT', `${task.operation}: ${e.message}`, { retryable: false });
      throw e;
    }
    if (typeof result === 'string') return stringError(result, ctx);
    const rpcError = result.ok ? jsonRpcErrorOf(result.body) : undefined;
    // JSON-RPC servers (XenAPI) answer failures with HTTP 200: the step fails with the server's own error code.
    if (rpcError) {
      // XenAPI's SESSION_INVALID names the session reference, a credential: neither the message nor the stored
      // output may carry it.
      const secret = rpcError.startsWith('SESSION_INVALID');
      return failed('RPC_ERROR', `${result.method} ${result.url} answered ${secret ? 'SESSION_INVALID' : rpcError}`, secret ? {} : { output: result });
    }
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

/**
 * The error of a JSON-RPC response body, as text (`SESSION_INVALID [OpaqueRef:...]`), or undefined for anything
 * else. Only bodies that are JSON-RPC responses count: `jsonrpc: "2.0"` with a non-null `error` object, or the 1.0
 * form (`result: null` beside a non-null `error`). XenAPI puts its code in `message` and its parameters in `data`.
 */
function jsonRpcErrorOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  const err = b['error'];
  if (err === null || err === undefined || !('id' in b)) return undefined;
  if (b['jsonrpc'] === '2.0' && typeof err === 'object' && !Array.isArray(err)) {
    const { message, code, data } = err as Record<string, unknown>;
    const params = Array.isArray(data) && data.length > 0 ? ` [${data.map(String).join(', ')}]` : '';
    return `${typeof message === 'string' ? message : `JSON-RPC error ${String(code)}`}${params}`;
  }
  if (b['jsonrpc'] === undefined && 'result' in b && b['result'] === null) {
    return Array.isArray(err) ? `${err.map(String).join(' ')}` : JSON.stringify(err);
  }
  return undefined;
}
