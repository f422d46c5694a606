import https from 'node:https';
import type { Context, Middleware } from '@microsoft/microsoft-graph-client';
import { DirectoryError, DirectoryErrorCode } from '../errors';

/** A raw HTTPS answer. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface HttpsOptions {
  /** PEM of the CA(s) to trust instead of the system store (a TLS-inspecting proxy, a test server). */
  caCertPem?: string | undefined;
  timeoutMs: number;
}

const TLS_CODES = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY']);

/**
 * One HTTPS request over node:https. Why not the global fetch: Node's fetch takes no CA of ours without undici's
 * Agent, which is not a dependency here; an authority or Graph endpoint behind an internal CA must still verify.
 * @throws DirectoryError TLS when the certificate does not verify, UNAVAILABLE on connection failure or timeout.
 */
export function httpsRequest(url: string, init: { method: string; headers: Record<string, string>; body?: Buffer | string }, opts: HttpsOptions): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    if (u.protocol !== 'https:') {
      reject(new DirectoryError(DirectoryErrorCode.CONFIG, `only https URLs are allowed, got ${u.protocol}//${u.host}`));
      return;
    }
    const req = https.request(
      u,
      { method: init.method, headers: init.headers, ...(opts.caCertPem ? { ca: opts.caCertPem } : {}), timeout: opts.timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
          resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks) });
        });
        res.on('error', (e) => reject(networkError(e, u)));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => reject(networkError(e, u)));
    if (init.body !== undefined) req.write(init.body);
    req.end();
  });
}

function networkError(e: Error, u: URL): DirectoryError {
  const code = (e as { code?: string }).code ?? '';
  if (TLS_CODES.has(code) || /certificate|TLS|SSL/i.test(e.message)) {
    return new DirectoryError(DirectoryErrorCode.TLS, `TLS with ${u.host} failed: ${code || e.message}`, {}, { cause: e });
  }
  return new DirectoryError(DirectoryErrorCode.UNAVAILABLE, `cannot reach ${u.host}: ${code || e.message}`, {}, { cause: e });
}

/** How long to wait before retrying a throttled answer: Retry-After (seconds or an HTTP date), else a backoff. */
export function retryDelayMs(retryAfter: string | null | undefined, attempt: number, now = Date.now()): number {
  if (retryAfter) {
    const secs = Number(retryAfter);
    if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
    const at = Date.parse(retryAfter);
    if (!Number.isNaN(at)) return Math.max(0, at - now);
  }
  return Math.min(8000, 500 * 2 ** attempt);
}

export interface ThrottleOptions {
  /** Retries after the first answer; 0 turns retrying off. */
  maxRetries: number;
  /** A Retry-After longer than this is not waited for: the throttled answer is returned (bounded, never a hang). */
  maxDelayMs: number;
}

/**
 * The last two links of the Graph client's chain: retries 429 and 503 as Graph asks (Retry-After honoured, a bounded
 * number of times, never longer than `maxDelayMs` each), and sends the request over node:https.
 */
export function graphTransport(https: HttpsOptions, throttle: ThrottleOptions, onThrottled?: (status: number, delayMs: number) => void): Middleware {
  return {
    async execute(context: Context): Promise<void> {
      const url = typeof context.request === 'string' ? context.request : (context.request as Request).url;
      const opts = context.options ?? {};
      const headers: Record<string, string> = {};
      const h = opts.headers;
      if (h) {
        if (typeof (h as Headers).forEach === 'function' && !(h instanceof Array)) (h as Headers).forEach((v, k) => (headers[k] = v));
        else for (const [k, v] of Object.entries(h as Record<string, string>)) headers[k] = v;
      }
      const body = typeof opts.body === 'string' ? opts.body : opts.body == null ? undefined : Buffer.from(String(opts.body));
      if (body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
      for (let attempt = 0; ; attempt++) {
        const r = await httpsRequest(url, { method: opts.method ?? 'GET', headers, ...(body !== undefined ? { body } : {}) }, https);
        if ((r.status === 429 || r.status === 503) && attempt < throttle.maxRetries) {
          const delay = retryDelayMs(r.headers['retry-after'], attempt);
          if (delay <= throttle.maxDelayMs) {
            onThrottled?.(r.status, delay);
            await new Promise((res) => setTimeout(res, delay));
            continue;
          }
        }
        // 204 and 304 may carry no body in a WHATWG Response.
        const noBody = r.status === 204 || r.status === 304;
        context.response = new Response(noBody ? null : new Uint8Array(r.body), { status: r.status, headers: r.headers });
        return;
      }
    },
  };
}
