/**
 * Azure Key Vault secrets (data-plane REST API version 7.4), reached as an Azure AD service principal:
 *  - token: `POST <authority>/<tenant>/oauth2/v2.0/token` (Microsoft identity platform v2.0, client credentials
 *    grant: `grant_type=client_credentials`, `client_id`, `client_secret`, `scope=https://vault.azure.net/.default`)
 *    → `access_token` with `expires_in` (seconds); reused until a minute before it expires.
 *  - read:  `GET <vault url>/secrets/<secret>?api-version=7.4` with `Authorization: Bearer <token>` → `value` (the
 *    latest version). Errors are `{"error": {"code": "SecretNotFound" | "Forbidden" | ..., "message": ...}}`.
 *  - write: `PUT <vault url>/secrets/<name>?api-version=7.4` with `{"value": ...}` (a new version).
 * `<vault url>` is `azure_vault_url_template` with `{vault}` replaced (default `https://{vault}.vault.azure.net`); the
 * authority is `azure_authority_url` (default `https://login.microsoftonline.com`, a sovereign cloud's otherwise).
 * The service principal is its own (`azure_*` keys), independent of the Entra ID sign-in configuration.
 */
import { createHash } from 'node:crypto';
import { SecretBackendError, type SecretBackend, type SecretBackendSettings, type SecretReference } from '../backend';
import { backendRequest, type BackendDeps, describeFailure, failureOf, requireSettings, stringSetting, urlUnder, type BackendResponse } from './http';

/** The clock and logger of one backend instance. */
interface Ctx {
  now: () => number;
  logger: BackendDeps['logger'];
}

export const AZURE_KEY_VAULT_API_VERSION = '7.4';
const DEFAULT_AUTHORITY = 'https://login.microsoftonline.com';
const DEFAULT_VAULT_URL_TEMPLATE = 'https://{vault}.vault.azure.net';
const SCOPE = 'https://vault.azure.net/.default';
/** A token is not used in its last minute: a request must not arrive with one that has just expired. */
const EXPIRY_MARGIN_MS = 60_000;

interface AzureToken {
  token: string;
  renewAt: number;
}

const tokens = new Map<string, Promise<AzureToken>>();

/** Forgets every access token (tests). */
export function forgetAzureTokens(): void {
  tokens.clear();
}

const caOf = (settings: SecretBackendSettings) => stringSetting(settings, 'azure_ca_cert_pem');

function principalOf(settings: SecretBackendSettings, reference: string): { tenant: string; clientId: string; secret: string; authority: string; key: string } {
  const [tenant, clientId, secret] = requireSettings(settings, ['azure_tenant_id', 'azure_client_id', 'azure_client_secret'], reference, 'azurekv') as [
    string,
    string,
    string,
  ];
  const authority = stringSetting(settings, 'azure_authority_url') ?? DEFAULT_AUTHORITY;
  const key = createHash('sha256').update(JSON.stringify([authority, tenant, clientId, secret])).digest('hex');
  return { tenant, clientId, secret, authority, key };
}

async function requestToken(settings: SecretBackendSettings, reference: string, ctx: Ctx): Promise<AzureToken> {
  const p = principalOf(settings, reference);
  const started = ctx.now();
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: p.clientId, client_secret: p.secret, scope: SCOPE }).toString();
  const { res } = await backendRequest(
    'azurekv',
    caOf(settings),
    {
      method: 'POST',
      url: urlUnder(p.authority, `/${encodeURIComponent(p.tenant)}/oauth2/v2.0/token`, 'azure_authority_url', reference),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form,
      secretValues: [p.secret, encodeURIComponent(p.secret)],
    },
    reference,
    ctx.logger,
  );
  if (!res.ok) {
    // The identity platform answers a bad client or secret 400/401 with `error: invalid_client` (AADSTS7000215 ...).
    const why = `${reference}: Azure AD refused the client credentials of ${p.clientId}: ${describeFailure(res)}`;
    if (res.status >= 500) throw failureOf(res, reference, 'the Azure AD token request failed');
    throw new SecretBackendError('SECRET_BACKEND_AUTH_FAILED', why, reference);
  }
  const body = res.body as { access_token?: unknown; expires_in?: unknown } | null;
  if (typeof body?.access_token !== 'string' || body.access_token === '') {
    throw new SecretBackendError('SECRET_BACKEND_AUTH_FAILED', `${reference}: Azure AD answered no access_token`, reference);
  }
  // `expires_in` is a number of seconds (some endpoints send it as a string).
  const expiresIn = Number(body.expires_in);
  const lifetime = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : 0;
  return { token: body.access_token, renewAt: started + Math.max(0, lifetime - EXPIRY_MARGIN_MS) };
}

async function tokenFor(settings: SecretBackendSettings, reference: string, ctx: Ctx, fresh = false): Promise<string> {
  const { key } = principalOf(settings, reference);
  let pending = fresh ? undefined : tokens.get(key);
  if (pending) {
    const held = await pending.catch(() => undefined);
    if (held && ctx.now() < held.renewAt) return held.token;
    if (tokens.get(key) === pending) tokens.delete(key);
  }
  pending = requestToken(settings, reference, ctx);
  tokens.set(key, pending);
  pending.catch(() => {
    if (tokens.get(key) === pending) tokens.delete(key);
  });
  return (await pending).token;
}

/** A 401 with a cached token (revoked, or the clock ran ahead of it) asks for a new token once. */
async function withToken(settings: SecretBackendSettings, reference: string, ctx: Ctx, send: (token: string) => Promise<BackendResponse>): Promise<BackendResponse> {
  let out = await send(await tokenFor(settings, reference, ctx));
  if (out.res.status === 401) out = await send(await tokenFor(settings, reference, ctx, true));
  return out;
}

function secretUrl(settings: SecretBackendSettings, vault: string, secret: string, reference: string): URL {
  const template = stringSetting(settings, 'azure_vault_url_template') ?? DEFAULT_VAULT_URL_TEMPLATE;
  if (!template.includes('{vault}')) {
    throw new SecretBackendError('SECRET_BACKEND_NOT_CONFIGURED', `${reference}: secret_backend.azure_vault_url_template has no {vault}`, reference);
  }
  // The grammar admits letters, digits and hyphens only, so the vault name is safe in a host name or a path.
  const base = template.split('{vault}').join(vault);
  return urlUnder(base, `/secrets/${encodeURIComponent(secret)}?api-version=${AZURE_KEY_VAULT_API_VERSION}`, 'azure_vault_url_template', reference);
}

/**
 * The Key Vault secret name the migration writes `name` under: Key Vault admits letters, digits and hyphens, so
 * every other character (the `/` of `provisio/settings/smtp/password`) becomes a hyphen; at most 127 characters.
 */
export function azureSecretName(name: string): string {
  return name.replace(/[^0-9A-Za-z-]/g, '-').replace(/-{2,}/g, '-').replace(/^-+|-+$/g, '').slice(0, 127) || 'secret';
}

export function createAzureKeyVaultBackend(deps: BackendDeps = {}): SecretBackend {
  const ctx: Ctx = { now: deps.now ?? Date.now, logger: deps.logger };
  return {
    scheme: 'azurekv',
    async read(ref: SecretReference, settings: SecretBackendSettings): Promise<string> {
      const reference = ref.raw;
      const [vault, secret] = ref.path.split('/') as [string, string];
      const url = secretUrl(settings, vault, secret, reference);
      const { res } = await withToken(settings, reference, ctx, (token) =>
        backendRequest('azurekv', caOf(settings), { method: 'GET', url, headers: { Authorization: `Bearer ${token}` }, secretHeaders: ['Authorization'] }, reference, ctx.logger),
      );
      if (!res.ok) throw failureOf(res, reference, 'reading the secret from Azure Key Vault failed');
      const value = (res.body as { value?: unknown } | null)?.value;
      if (typeof value !== 'string') throw new SecretBackendError('SECRET_NOT_FOUND', `${reference}: Azure Key Vault answered no value`, reference);
      return value;
    },
    async write(name: string, value: string, settings: SecretBackendSettings): Promise<SecretReference> {
      const secret = azureSecretName(name);
      const vault = stringSetting(settings, 'azure_vault');
      const raw = `azurekv://${vault ?? ''}/${secret}`;
      if (vault === undefined) {
        throw new SecretBackendError('SECRET_BACKEND_NOT_CONFIGURED', `${raw}: secret_backend.azure_vault (the vault migrated secrets go to) is not set`, raw);
      }
      const url = secretUrl(settings, vault, secret, raw);
      const { res } = await withToken(settings, raw, ctx, (token) =>
        backendRequest(
          'azurekv',
          caOf(settings),
          {
            method: 'PUT',
            url,
            headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ value }),
            secretHeaders: ['Authorization'],
            secretValues: [value],
          },
          raw,
          ctx.logger,
        ),
      );
      if (!res.ok) throw failureOf(res, raw, 'writing the secret to Azure Key Vault failed');
      return { scheme: 'azurekv', raw, path: `${vault}/${secret}` };
    },
  };
}

export const azureKeyVaultBackend = createAzureKeyVaultBackend();
