import type { AuthenticationProvider } from '@microsoft/microsoft-graph-client';
import { DirectoryError, DirectoryErrorCode } from '../errors';
import { httpsRequest, type HttpsOptions } from './transport';

export interface ClientCredentials {
  /** e.g. https://login.microsoftonline.com (sovereign clouds and tests use another). */
  authorityHost: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** The resource's default scope, e.g. https://graph.microsoft.com/.default */
  scope: string;
}

/** Renew this long before the token's expiry, so a request never leaves with a token that dies on the way. */
export const TOKEN_EXPIRY_MARGIN_MS = 5 * 60_000;

/** Entra's sign-in error codes (AADSTS…) that mean the credentials themselves are wrong. */
const CREDENTIAL_ERRORS = new Set(['invalid_client', 'unauthorized_client', 'invalid_grant']);

/**
 * OAuth 2.0 client credentials against the Microsoft identity platform, as a Graph client AuthenticationProvider.
 * The token is kept until {@link TOKEN_EXPIRY_MARGIN_MS} before it expires; concurrent callers share one fetch.
 * @throws DirectoryError INVALID_CREDENTIALS when the authority refuses the client id or secret (details.graphCode
 *   carries the OAuth error, e.g. invalid_client, and the AADSTS number), CONFIG for an unknown tenant, UNAVAILABLE
 *   or TLS when the authority cannot be reached.
 */
export class ClientCredentialsProvider implements AuthenticationProvider {
  readonly #creds: ClientCredentials;
  readonly #https: HttpsOptions;
  #token: { value: string; renewAt: number } | undefined;
  #pending: Promise<string> | undefined;
  /** How many token requests went to the authority (for tests and the bench). */
  fetches = 0;

  constructor(creds: ClientCredentials, https: HttpsOptions) {
    this.#creds = creds;
    this.#https = https;
  }

  async getAccessToken(): Promise<string> {
    if (this.#token && Date.now() < this.#token.renewAt) return this.#token.value;
    this.#pending ??= this.#fetch().finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  /** Forgets the cached token (after Graph answered 401 to it). */
  invalidate(): void {
    this.#token = undefined;
  }

  async #fetch(): Promise<string> {
    const c = this.#creds;
    const url = `${c.authorityHost.replace(/\/+$/, '')}/${encodeURIComponent(c.tenantId)}/oauth2/v2.0/token`;
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret, scope: c.scope }).toString();
    this.fetches++;
    const r = await httpsRequest(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: form }, this.#https);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      // A proxy's HTML page: described below by status only.
    }
    if (r.status === 200 && typeof body['access_token'] === 'string') {
      const lifetimeMs = Number(body['expires_in'] ?? 3600) * 1000;
      // Short-lived tokens (tests, odd authorities): renew at half-life rather than never caching.
      const renewIn = lifetimeMs > 2 * TOKEN_EXPIRY_MARGIN_MS ? lifetimeMs - TOKEN_EXPIRY_MARGIN_MS : lifetimeMs / 2;
      this.#token = { value: body['access_token'], renewAt: Date.now() + renewIn };
      return body['access_token'];
    }
    const oauth = typeof body['error'] === 'string' ? body['error'] : undefined;
    const aadsts = Array.isArray(body['error_codes']) ? body['error_codes'].map(String).join(',') : undefined;
    const details = { httpStatus: r.status, ...(oauth ? { graphCode: oauth } : {}), ...(aadsts ? { aadsts } : {}) };
    // The authority's description may echo the client id; it never contains the secret, but we name the cause ourselves.
    if (oauth && CREDENTIAL_ERRORS.has(oauth)) {
      throw new DirectoryError(DirectoryErrorCode.INVALID_CREDENTIALS, `the identity platform refused the client credentials (${oauth}${aadsts ? `, AADSTS${aadsts}` : ''}): check entra_id.client_id and client_secret`, details);
    }
    if (oauth === 'invalid_request' || oauth === 'invalid_tenant' || r.status === 404) {
      throw new DirectoryError(DirectoryErrorCode.CONFIG, `the identity platform refused the token request (${oauth ?? r.status}${aadsts ? `, AADSTS${aadsts}` : ''}): check entra_id.tenant_id and authority_host`, details);
    }
    const code = r.status >= 500 || r.status === 429 ? DirectoryErrorCode.UNAVAILABLE : DirectoryErrorCode.REJECTED;
    throw new DirectoryError(code, `the identity platform answered ${r.status} to the token request${oauth ? ` (${oauth})` : ''}`, details);
  }
}
