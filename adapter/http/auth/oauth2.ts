import type { OAuthConfig } from '../config';
import { CallNotMadeCode, CallNotMadeError, NOT_MADE, TokenRequestError, missingInformation, type IntegrationEnvelope } from '../envelope';
import type { AuthContext, AuthProvider } from './types';

/** Tokens held for an integration; handed to `onTokens` so the layer above can persist them. */
export interface OAuthTokens {
  access_token: string;
  refresh_token?: string;
  /** Milliseconds since the epoch; absent when the server did not say (the token is used until a 401). */
  expires_at?: number;
}

export interface OAuthProvider extends AuthProvider {
  /** The URL to send a user to for the authorization code flow; undefined for other flows. */
  authorizationUrl(state: string): string | undefined;
  /**
   * Exchanges an authorization code (from the callback route) for tokens. Resolves undefined on success, or the
   * failed token call's result: its envelope, or a string when the token endpoint could not be reached.
   */
  completeAuthorizationCode(code: string): Promise<IntegrationEnvelope | string | undefined>;
}

/** Refresh this long before the server's expiry, capped at a tenth of the token's lifetime for short-lived tokens. */
const EXPIRY_MARGIN_MS = 30_000;

/**
 * OAuth 2.0 client credentials, password and authorization code grants, and OpenID Connect (client credentials at
 * the token endpoint named by the discovery document). Tokens are cached until shortly before they expire; a refresh
 * token, when held, is used before falling back to the primary grant.
 */
export function createOAuthAuth(
  auth: OAuthConfig,
  ctx: AuthContext,
  onTokens?: (tokens: OAuthTokens) => void,
): OAuthProvider {
  let tokens: { access: string; refresh?: string; expiresAt?: number; refreshAt?: number } | undefined =
    auth.access_token !== undefined
      ? {
          access: auth.access_token,
          refresh: auth.refresh_token,
          expiresAt: auth.expires_at,
          refreshAt: auth.expires_at === undefined ? undefined : auth.expires_at - EXPIRY_MARGIN_MS,
        }
      : undefined;
  let refreshToken = auth.refresh_token;
  let tokenUrl: string | undefined = auth.type === 'openid_connect' ? undefined : auth.token_url;
  let pending: Promise<void> | undefined;
  // Which access token each request went out with, so concurrent 401s share one refresh.
  const usedToken = new WeakMap<object, string>();
  if (auth.client_secret) ctx.addSecret(auth.client_secret);
  if (auth.access_token) ctx.addSecret(auth.access_token);
  if (auth.refresh_token) ctx.addSecret(auth.refresh_token);

  async function discoverTokenUrl(): Promise<string> {
    if (tokenUrl !== undefined) return tokenUrl;
    if (auth.type !== 'openid_connect') throw new Error('unreachable: only OIDC discovers its token endpoint');
    const url = auth.discovery_url ?? `${(auth.issuer ?? '').replace(/\/$/, '')}/.well-known/openid-configuration`;
    const env = await ctx.send({ method: 'GET', url });
    if (!env.ok) throw new TokenRequestError(env);
    const doc = env.body as { token_endpoint?: unknown } | null | undefined;
    if (typeof doc?.token_endpoint !== 'string') {
      throw missingInformation(`the discovery document at ${url} names no token_endpoint`);
    }
    tokenUrl = doc.token_endpoint;
    return tokenUrl;
  }

  function primaryGrant(): Record<string, string> | undefined {
    switch (auth.type) {
      case 'oauth2_client_credentials':
      case 'openid_connect':
        return { grant_type: 'client_credentials' };
      case 'oauth2_password':
        return { grant_type: 'password', username: auth.username, password: auth.password };
      case 'oauth2_authorization_code':
        // Only the callback can start this flow; without a refresh token there is nothing to do on our own.
        return undefined;
    }
  }

  async function requestToken(url: string, grant: Record<string, string>, withScope: boolean): Promise<IntegrationEnvelope> {
    const form = new URLSearchParams(grant);
    if (withScope && auth.scope) form.set('scope', auth.scope);
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    if (auth.auth_method === 'client_secret_basic') {
      // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
      const user = `${encodeForm(auth.client_id)}:${encodeForm(auth.client_secret ?? '')}`;
      headers['authorization'] = `Basic ${Buffer.from(user, 'utf8').toString('base64')}`;
    } else {
      form.set('client_id', auth.client_id);
      if (auth.client_secret !== undefined) form.set('client_secret', auth.client_secret);
    }
    return ctx.send({ method: 'POST', url, headers, data: form.toString() });
  }

  function accept(env: IntegrationEnvelope): void {
    const body = env.body as { access_token?: unknown; refresh_token?: unknown; expires_in?: unknown } | null | undefined;
    if (typeof body?.access_token !== 'string' || body.access_token === '') {
      throw missingInformation(`the token response from ${env.method} ${env.url} has no access_token`, CallNotMadeCode.KEY_RETRIEVAL);
    }
    const now = ctx.now();
    const lifetimeMs = typeof body.expires_in === 'number' || typeof body.expires_in === 'string' ? Number(body.expires_in) * 1000 : NaN;
    const expiresAt = Number.isFinite(lifetimeMs) && lifetimeMs > 0 ? now + lifetimeMs : undefined;
    if (typeof body.refresh_token === 'string' && body.refresh_token !== '') refreshToken = body.refresh_token;
    tokens = {
      access: body.access_token,
      refresh: refreshToken,
      expiresAt,
      refreshAt: expiresAt === undefined ? undefined : expiresAt - Math.min(EXPIRY_MARGIN_MS, lifetimeMs / 10),
    };
    ctx.addSecret(body.access_token);
    if (refreshToken) ctx.addSecret(refreshToken);
    onTokens?.({ access_token: tokens.access, refresh_token: tokens.refresh, expires_at: expiresAt });
  }

  async function obtain(): Promise<void> {
    if (refreshToken !== undefined) {
      const url = auth.refresh_url ?? (await discoverTokenUrl());
      const env = await requestToken(url, { grant_type: 'refresh_token', refresh_token: refreshToken }, false);
      if (env.ok) return accept(env);
      // A refresh token the server no longer honours: forget it and fall back to the primary grant, if any.
      refreshToken = undefined;
      if (primaryGrant() === undefined) throw new TokenRequestError(env);
    }
    const grant = primaryGrant();
    if (grant === undefined) {
      throw missingInformation(
        `the authorization code flow has no token yet; an operator must authorize at ${auth.type === 'oauth2_authorization_code' ? auth.authorization_url : 'the authorization URL'}`,
      );
    }
    const env = await requestToken(await discoverTokenUrl(), grant, true);
    if (!env.ok) throw new TokenRequestError(env);
    accept(env);
  }

  async function ensure(force: boolean): Promise<string> {
    const fresh = tokens !== undefined && (tokens.refreshAt === undefined || ctx.now() < tokens.refreshAt);
    if (!force && fresh && tokens) return tokens.access;
    pending ??= obtain().finally(() => {
      pending = undefined;
    });
    await pending;
    if (!tokens) throw new Error('unreachable: obtain() resolved without tokens');
    return tokens.access;
  }

  return {
    apply: async (config) => {
      const token = await ensure(false);
      usedToken.set(config, token);
      config.headers.set('authorization', `Bearer ${token}`);
    },
    refresh: async (failed) => {
      if (pending) await pending;
      else if (tokens === undefined || usedToken.get(failed) === tokens.access) {
        tokens = undefined;
        await ensure(true);
      }
      return true;
    },
    authorizationUrl: (state) => {
      if (auth.type !== 'oauth2_authorization_code') return undefined;
      const u = new URL(auth.authorization_url);
      u.searchParams.set('response_type', 'code');
      u.searchParams.set('client_id', auth.client_id);
      if (auth.redirect_uri) u.searchParams.set('redirect_uri', auth.redirect_uri);
      if (auth.scope) u.searchParams.set('scope', auth.scope);
      u.searchParams.set('state', state);
      return u.toString();
    },
    completeAuthorizationCode: async (code) => {
      if (auth.type !== 'oauth2_authorization_code') {
        return `${NOT_MADE}: this integration does not use the authorization code flow`;
      }
      const grant: Record<string, string> = { grant_type: 'authorization_code', code };
      if (auth.redirect_uri) grant['redirect_uri'] = auth.redirect_uri;
      let env: IntegrationEnvelope;
      try {
        env = await requestToken(auth.token_url, grant, false);
      } catch (e) {
        if (e instanceof CallNotMadeError) return e.message;
        throw e;
      }
      if (!env.ok) return env;
      accept(env);
      return undefined;
    },
  };
}

function encodeForm(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+');
}
