// Small constructors shared by the executors, so every failure carries a code from STEP_ERROR_CODES and says
// plainly whether it overrides the task's retry policy.
import type { StepErrorCode } from '../document';
import type { StepResult } from '../engine/executor';

export function succeeded(output: unknown): StepResult {
  return { ok: true, output };
}

/**
 * A failed attempt. `retryable` left undefined lets the task's `retry.retryableErrors` decide; true/false
 * overrides it (e.g. a rejected provisioning webhook must never be sent again).
 */
export function failed(code: StepErrorCode, message: string, opts: { retryable?: boolean; output?: unknown } = {}): StepResult {
  return {
    ok: false,
    error: {
      code,
      message,
      ...(opts.retryable !== undefined ? { retryable: opts.retryable } : {}),
      ...(opts.output !== undefined ? { output: opts.output } : {}),
    },
  };
}

/** The first `max` characters of `text`, marked when cut, for error messages. */
export function head(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/** The last `max` characters of `text`, marked when cut. */
export function tail(text: string, max = 500): string {
  return text.length <= max ? text : `…${text.slice(text.length - max)}`;
}

/** The HTTP status classes a non-accepted status falls into. 3xx (redirects are never followed) counts as 4xx. */
export function httpErrorCode(status: number): StepErrorCode {
  if (status === 429) return 'HTTP_429';
  if (status >= 500) return 'HTTP_5XX';
  return 'HTTP_4XX';
}
