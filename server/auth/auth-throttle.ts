import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { currentLogContext, writeAudit, type Database, type Logger } from '../../adapter';
import type { Config } from '../config';
import { CodedError, ErrorCode, isCodedError } from '../errors';

/*
 * Brute-force throttling of authentication, per client address.
 *
 * Only failed authentications count: a credential that was presented and did not verify (a bearer token, the admin
 * key, an HMAC signature, a Graph clientState, a signed approval link's token). A request that presents no
 * credential at all, or a valid one that lacks a scope, is no guess and does not count. After `slowAfter` failures
 * within the window every credentialed request from that address is delayed (doubling, capped at 16 times the first
 * delay); after `blockAfter` it is answered 429 TOO_MANY_ATTEMPTS with Retry-After for one window, before any
 * credential is checked, so guessing on costs us nothing and tells the guesser nothing. Other addresses are never
 * touched: a good credential from elsewhere works while one address is blocked.
 *
 * A success does not reset the count: whoever holds one weak credential (a token of their own) could otherwise
 * interleave it with guesses at a stronger one and never be slowed. A legitimate client from a blocked address
 * waits out the window like the guesser beside it (behind one NAT, they are the same address).
 *
 * The count lives in this process's memory (rate-limiter-flexible's in-memory limiter): it is per serve process.
 * Behind a load balancer spreading requests over N serve processes, a guesser gets up to N times the attempts before
 * every process has blocked it, and Retry-After is each process's own. A shared store (the library's PostgreSQL
 * limiter) would make every failed guess a database write; the per-process bound was judged enough.
 *
 * The address is Express's `req.ip`: the app trusts `X-Forwarded-For` from loopback proxies only (`trust proxy`
 * `loopback` in app.ts), so behind a reverse proxy on the same host each client is its own address, while a proxy
 * on another host makes all its clients one address.
 */

/** Which kind of credential was tried, for the audit row (never the credential). */
export type CredentialKind = 'bearer' | 'admin_key' | 'hmac' | 'graph_client_state' | 'approval_link';

declare module 'express-serve-static-core' {
  interface Request {
    /** The credential `authenticate` tried for this request, set before it checks it. */
    credentialKind?: CredentialKind;
  }
}

export interface AuthThrottleSettings {
  /** Failures within the window after which requests are delayed; 0: never delayed. */
  slowAfter: number;
  /** Failures within the window after which requests are refused for one window; 0: never refused. */
  blockAfter: number;
  /** The window failures are counted in, and how long a block lasts, seconds; 0: the throttle is off. */
  windowS: number;
  /** The first delay, ms; each further failure doubles it, up to 16 times. */
  delayMs: number;
}

/** What the throttle decided for a request from an address. */
export type ThrottleDecision =
  | { action: 'allow' }
  | { action: 'slow'; delayMs: number; failures: number }
  | { action: 'block'; retryAfterS: number; failures: number };

export interface AuthThrottle {
  /** What a credentialed request from `address` gets now. */
  decide(address: string): Promise<ThrottleDecision>;
  /** Counts one failed authentication; audits (once) the failure that blocks the address. */
  recordFailure(address: string, kind: CredentialKind, requestId?: string): Promise<void>;
  /** Middleware before authentication: delays or refuses credentialed requests of throttled addresses. */
  guard: RequestHandler;
  /** Error middleware before the error handlers: counts the failed authentications among the errors. */
  countFailures: ErrorRequestHandler;
}

export interface AuthThrottleDeps {
  db: Database;
  logger: Logger;
  /**
   * Operations without an OpenAPI `security` requirement whose path carries a credential (the signed approval link
   * pages): they are throttled too.
   */
  credentialInPath: ReadonlySet<string>;
  /** The delay; tests may hand in one that records instead of waiting. */
  sleep?: (ms: number) => Promise<void>;
}

/** An IPv4 client seen through a dual-stack socket (`::ffff:10.0.0.1`) is the same address as `10.0.0.1`. */
export function clientAddress(req: Request): string {
  const ip = req.ip ?? req.socket.remoteAddress ?? 'unknown';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

const tooManyAttempts = (retryAfterS: number) =>
  new CodedError(ErrorCode.TOO_MANY_ATTEMPTS, `too many failed authentications from this address; retry after ${retryAfterS} s`, {
    extra: { retry_after: retryAfterS },
  });

// Distinct addresses whose kinds are remembered; past it the oldest are forgotten (the audit row then names fewer).
const MAX_TRACKED = 10_000;

export function createAuthThrottle(settings: AuthThrottleSettings, deps: AuthThrottleDeps): AuthThrottle {
  const off = settings.windowS <= 0 || (settings.slowAfter <= 0 && settings.blockAfter <= 0);
  const blockAfter = settings.blockAfter > 0 ? settings.blockAfter : Number.MAX_SAFE_INTEGER;
  // `points` is the number of failures admitted; `block()` then marks the address with points + 1 for one window.
  const failures = new RateLimiterMemory({ points: blockAfter, duration: Math.max(settings.windowS, 1) });
  const kinds = new Map<string, Set<CredentialKind>>();
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  async function decide(address: string): Promise<ThrottleDecision> {
    if (off) return { action: 'allow' };
    const res = await failures.get(address);
    if (!res) return { action: 'allow' };
    if (res.consumedPoints > blockAfter) {
      return { action: 'block', retryAfterS: Math.max(1, Math.ceil(res.msBeforeNext / 1000)), failures: blockAfter };
    }
    if (settings.slowAfter > 0 && res.consumedPoints >= settings.slowAfter) {
      const doublings = Math.min(res.consumedPoints - settings.slowAfter, 4);
      return { action: 'slow', delayMs: settings.delayMs * 2 ** doublings, failures: res.consumedPoints };
    }
    return { action: 'allow' };
  }

  async function recordFailure(address: string, kind: CredentialKind, requestId?: string): Promise<void> {
    if (off) return;
    let tried = kinds.get(address);
    if (!tried) {
      if (kinds.size >= MAX_TRACKED) kinds.delete(kinds.keys().next().value!);
      tried = new Set();
      kinds.set(address, tried);
    }
    tried.add(kind);
    const res = await failures.penalty(address);
    // Exactly one failure reaches the threshold (the count is in memory, incremented synchronously): it blocks.
    if (res.consumedPoints !== blockAfter) return;
    await failures.block(address, settings.windowS);
    const credentialKinds = [...tried].sort();
    kinds.delete(address);
    deps.logger.warn('authentication throttled: address blocked after repeated failures', { address, failures: blockAfter, credential_kinds: credentialKinds });
    try {
      await writeAudit(deps.db, {
        entity: 'auth',
        entityId: address,
        action: 'throttled',
        after: { address, failures: blockAfter, credential_kinds: credentialKinds, window_s: settings.windowS, blocked_for_s: settings.windowS },
        triggeredBy: 'system:auth-throttle',
        requestId,
      });
    } catch (err) {
      // The block holds whether or not the row could be written; the refusal answer must not turn into a 500.
      deps.logger.error('auth throttle audit row not written', { address, err: err instanceof Error ? err.message : String(err) });
    }
  }

  const credentialed = (req: Request): boolean => {
    const op = req.operation;
    return op !== undefined && (op.security.length > 0 || deps.credentialInPath.has(op.operationId));
  };

  const guard: RequestHandler = (req, res, next) => {
    if (off || !credentialed(req)) return next();
    decide(clientAddress(req)).then(
      async (d) => {
        if (d.action === 'block') {
          res.set('Retry-After', String(d.retryAfterS));
          return next(tooManyAttempts(d.retryAfterS));
        }
        if (d.action === 'slow') await sleep(d.delayMs);
        next();
      },
      next,
    );
  };

  const countFailures: ErrorRequestHandler = (err: unknown, req, _res, next) => {
    if (off || !isCodedError(err)) return next(err);
    const kind: CredentialKind | undefined =
      err.code === ErrorCode.UNAUTHENTICATED ? req.credentialKind : err.code === ErrorCode.LINK_INVALID ? 'approval_link' : undefined;
    if (!kind) return next(err);
    recordFailure(clientAddress(req), kind, currentLogContext()?.requestId).then(
      () => next(err),
      () => next(err),
    );
  };

  return { decide, recordFailure, guard, countFailures };
}

/** The throttle's settings from the service configuration. */
export function throttleSettings(config: Readonly<Config>): AuthThrottleSettings {
  return {
    slowAfter: config.authThrottleSlowAfter,
    blockAfter: config.authThrottleBlockAfter,
    windowS: config.authThrottleWindowS,
    delayMs: config.authThrottleDelayMs,
  };
}
