/**
 * XenAPI over JSON-RPC answers every call with HTTP 200, failures included: `{"error": {"code": 1, "message":
 * "<XenAPI code>", "data": [...]}}` (JSON-RPC 2.0), or `{"result": null, "error": ["<XenAPI code>", ...]}` from a
 * version 1 request. So a typed call of the xenserver model has not succeeded just because it resolved; this turns
 * its answer into the result or a {@link XenApiError} carrying the XenAPI code.
 */

/** A XenAPI failure: `code` is XenAPI's (SESSION_INVALID, VM_BAD_POWER_STATE, ...), `params` its parameters. */
export class XenApiError extends Error {
  readonly code: string;
  readonly params: readonly string[];
  constructor(code: string, params: readonly string[], method?: string) {
    super(`${method ? `${method}: ` : ''}XenAPI error ${code}${params.length ? ` [${params.join(', ')}]` : ''}`);
    this.name = 'XenApiError';
    this.code = code;
    this.params = params;
  }
}

/** The XenAPI error inside a JSON-RPC response body, or undefined when the body carries none. */
export function xenapiErrorOf(body: unknown): XenApiError | undefined {
  if (typeof body !== 'object' || body === null || !('error' in body)) return undefined;
  const err = (body as { error: unknown }).error;
  if (err === null || err === undefined) return undefined;
  // JSON-RPC 2.0: the XenAPI code is `message` (`code` is always 1), the parameters are `data`.
  if (typeof err === 'object' && !Array.isArray(err) && typeof (err as { message?: unknown }).message === 'string') {
    const { message, data } = err as { message: string; data?: unknown };
    return new XenApiError(message, Array.isArray(data) ? data.map(String) : []);
  }
  // JSON-RPC 1.0: the error is the XenAPI error list itself.
  if (Array.isArray(err) && typeof err[0] === 'string') return new XenApiError(err[0], err.slice(1).map(String));
  return new XenApiError('UNKNOWN_ERROR', [JSON.stringify(err)]);
}

interface TypedXenResult<T> {
  data?: { result?: T; error?: unknown } | undefined;
  error?: unknown;
  response?: { status: number } | undefined;
}

/**
 * The `result` of a typed xenserver call.
 * @throws XenApiError when XAPI answered with an error (HTTP 200 or not)
 * @throws Error when no JSON-RPC answer came back (the call's own error, or an HTTP status with no error body)
 */
export function xenapiResult<T>(r: TypedXenResult<T>): T {
  const failure = xenapiErrorOf(r.data) ?? xenapiErrorOf(r.error);
  if (failure) throw failure;
  if (r.error !== undefined) throw r.error instanceof Error ? r.error : new Error(`XenAPI call failed with HTTP ${r.response?.status ?? '(no response)'}`);
  if (!r.data || !('result' in r.data)) throw new Error('XenAPI answered without a result');
  return r.data.result as T;
}
