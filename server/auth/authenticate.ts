import { createHmac } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Database, Logger } from '../../adapter';
import { forbidden, unauthenticated } from '../errors';
import type { SpecOperation } from '../spec';
import { digestsEqual, hashSecret, TOKEN_PREFIX } from '../domain/tokens/token-hash';
import { findLiveToken, touchToken } from '../domain/tokens/api-tokens';
import type { VerifiedTokenCache } from './token-cache';
import { adminKeyPrincipal, graphPrincipal, hmacPrincipal, scopeGrants, type Principal, type Role, type Scope } from './principal';

export interface AuthDeps {
  db: Database;
  logger: Logger;
  /** SHA-256 (hex) of the admin key, or undefined when none is configured. */
  adminKeyHash: () => Promise<string | undefined>;
  /** The shared HMAC secret for signed webhooks (env first, then settings), if any. */
  webhookSecret: () => Promise<string | undefined>;
  /**
   * Milliseconds a verified bearer token is trusted without asking the database again; 0 (the default) asks on
   * every request. A revocation then takes up to this long to reach this process. The AD gateway sets it: it
   * answers many small calls per runbook step, and the token query was the largest part of each one.
   */
  tokenCacheMs?: number;
  /**
   * The verified-token cache checked against the database's token version (token-cache.ts): the main app's. When
   * given, it answers instead of `tokenCacheMs`.
   */
  tokenCache?: VerifiedTokenCache | undefined;
  /**
   * Whether every `clientState` of a body of Microsoft Graph change notifications is the Graph subscription's
   * (false when none is configured). Asked only for operations whose `security` names `graphClientState`;
   * without it that scheme admits nobody.
   */
  graphClientStateMatches?: (notifications: readonly Record<string, unknown>[]) => Promise<boolean>;
}

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
    operation?: SpecOperation;
    /** The raw body bytes, kept for HMAC verification. */
    rawBody?: Buffer;
  }
}

// last_used_at is informational; writing it at most once a minute per token keeps it off the hot path.
const TOUCH_INTERVAL_MS = 60_000;

/**
 * Resolves the caller of each request from the credentials its operation's `security` accepts, then checks
 * `x-required-scopes` and `x-allowed-roles`. Bearer wins over the other credentials when several are sent.
 * 401 when no accepted credential is valid; 403 when the caller lacks the scope or role.
 */
export function authenticate(deps: AuthDeps): RequestHandler {
  const touched = new Map<number, number>();
  const cacheMs = deps.tokenCacheMs ?? 0;
  // Only tokens the database accepted are kept (keyed by their hash), so unknown tokens cannot fill it.
  const verified = new Map<string, { principal: Principal; until: number }>();

  function touch(id: number, now: number): void {
    if ((touched.get(id) ?? 0) < now - TOUCH_INTERVAL_MS) {
      touched.set(id, now);
      touchToken(deps.db, id).catch(() => undefined);
    }
  }

  async function bearer(raw: string): Promise<Principal> {
    if (!raw.startsWith(TOKEN_PREFIX)) throw unauthenticated('bearer token is not an xpat_ API token');
    const hash = hashSecret(raw);
    const cache = deps.tokenCache;
    const epoch = cache?.epoch ?? 0;
    if (cache) {
      const hit = cache.get(hash);
      if (hit) {
        if (hit.kind === 'token') touch(hit.tokenId, Date.now());
        return hit;
      }
    } else if (cacheMs > 0) {
      const hit = verified.get(hash);
      if (hit && hit.until > Date.now()) return hit.principal;
      verified.delete(hash);
    }
    const row = await findLiveToken(deps.db, hash);
    if (!row) throw unauthenticated('API token is unknown, revoked or expired');
    const now = Date.now();
    touch(row.id, now);
    const principal: Principal = {
      kind: 'token',
      tokenId: row.id,
      name: row.name,
      scopes: row.scopes,
      role: row.role,
      approverEmail: row.approver_email,
    };
    if (cache) cache.put(hash, principal, Number(row.token_version), row.expires_at, epoch);
    else if (cacheMs > 0) {
      if (verified.size >= 1000) verified.clear();
      // Never trusted past its own expiry.
      verified.set(hash, { principal, until: Math.min(now + cacheMs, row.expires_at ? new Date(row.expires_at).getTime() : Infinity) });
    }
    return principal;
  }

  async function adminKey(raw: string): Promise<Principal> {
    const expected = await deps.adminKeyHash();
    if (!expected || !digestsEqual(hashSecret(raw), expected)) throw unauthenticated('X-Admin-Key is not valid');
    return adminKeyPrincipal();
  }

  async function signature(header: string, body: Buffer | undefined, op: SpecOperation): Promise<Principal> {
    const secret = await deps.webhookSecret();
    const m = /^sha256=([0-9a-fA-F]{64})$/.exec(header.trim());
    // Said plainly: a sender signing against a service that holds no secret cannot fix it by re-signing.
    if (!secret) throw unauthenticated('X-Hub-Signature-256 cannot be verified: no webhook secret is configured (WEBHOOK_SECRET_TOKEN, or the servicenow settings\' webhook_secret)');
    if (!m || !body) throw unauthenticated('X-Hub-Signature-256 does not match the request body');
    const expected = createHmac('sha256', secret).update(body).digest('hex');
    if (!digestsEqual(m[1]!.toLowerCase(), expected)) throw unauthenticated('X-Hub-Signature-256 does not match the request body');
    // A valid signature proves possession of the webhook secret: it grants exactly what this operation asks.
    return hmacPrincipal(op.requiredScopes as Scope[]);
  }

  /**
   * The `graphClientState` scheme: Microsoft Graph can neither sign nor hold a token, so what it sends is admitted
   * only in its two shapes: the bodiless subscription handshake (`?validationToken=`, which the handler only
   * echoes) and a body of change notifications whose every `clientState` matches. Anything else is not Graph's
   * and gets the 401 any request without credentials gets.
   */
  async function graphNotification(req: Parameters<RequestHandler>[0], op: SpecOperation): Promise<Principal | undefined> {
    const bodiless = !req.rawBody?.length && (req.header('content-length') ?? '0') === '0' && !req.header('transfer-encoding');
    if (bodiless) return typeof req.query['validationToken'] === 'string' ? graphPrincipal(op.requiredScopes as Scope[]) : undefined;
    const value: unknown = req.rawBody?.length && req.body && typeof req.body === 'object' ? (req.body as { value?: unknown }).value : undefined;
    const notifications = Array.isArray(value) ? value : [];
    const isGraph = notifications.length > 0 && notifications.every((n) => n !== null && typeof n === 'object' && !Array.isArray(n) && 'clientState' in n);
    if (!isGraph) return undefined;
    if (deps.graphClientStateMatches && (await deps.graphClientStateMatches(notifications as Record<string, unknown>[]))) {
      return graphPrincipal(op.requiredScopes as Scope[]);
    }
    // The values sent are never logged: a near miss would leak most of the secret.
    deps.logger.warn('graph notification refused: clientState does not match hr.graph_client_state', {
      operationId: op.operationId,
      subscriptionIds: [...new Set(notifications.map((n) => (n as { subscriptionId?: unknown }).subscriptionId ?? null))],
      notifications: notifications.length,
      ip: req.ip,
    });
    throw unauthenticated('clientState does not match this subscription');
  }

  return (req, _res, next) => {
    // `resolveOperation` ran first: a request without an operation was already answered 404/405. Refuse rather
    // than pass should this middleware ever be mounted without it.
    const op = req.operation;
    if (!op) return next(unauthenticated('no operation resolved for this request'));
    if (op.security.length === 0) return next();
    const accepted = new Set(op.security.flatMap((r) => Object.keys(r)));
    const auth = req.header('authorization');
    const key = req.header('x-admin-key');
    const sig = req.header('x-hub-signature-256');

    const resolve = async (): Promise<Principal> => {
      // The kind tried is noted first: a failure of it counts towards the address's throttle (auth-throttle.ts).
      if (auth && accepted.has('bearerAuth')) {
        req.credentialKind = 'bearer';
        const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
        if (!m) throw unauthenticated('Authorization header must be "Bearer <token>"');
        return bearer(m[1]!);
      }
      if (key && accepted.has('adminKey')) {
        req.credentialKind = 'admin_key';
        return adminKey(key);
      }
      if (sig && accepted.has('hubSignature')) {
        req.credentialKind = 'hmac';
        return signature(sig, req.rawBody, op);
      }
      if (accepted.has('graphClientState')) {
        req.credentialKind = 'graph_client_state';
        const graph = await graphNotification(req, op);
        if (graph) return graph;
        // Not Graph's shape at all: no credential was presented, so nothing was guessed.
        delete req.credentialKind;
      }
      throw unauthenticated(`credentials required: ${[...accepted].join(' or ')}`);
    };

    resolve()
      .then((principal) => {
        if (op.requiredScopes.length > 0 && !op.requiredScopes.some((s) => scopeGrants(principal.scopes, s))) {
          throw forbidden(`requires scope ${op.requiredScopes.join(' or ')}`);
        }
        if (op.allowedRoles && principal.role !== null && !op.allowedRoles.includes(principal.role)) {
          throw forbidden(`role '${principal.role}' may not call ${op.operationId}; allowed: ${op.allowedRoles.join(', ')}`);
        }
        req.principal = principal;
        next();
      })
      .catch(next);
  };
}
