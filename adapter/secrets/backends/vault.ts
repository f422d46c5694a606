/**
 * HashiCorp Vault, KV secrets engine version 2 (HTTP API v1):
 *  - read:  `GET /v1/<kv mount>/data/<path>` → `data.data` (the latest version's key/value pairs);
 *  - write: `POST /v1/<kv mount>/data/<path>` with `{"data": {...}}` (a new version);
 *  - auth:  `token` (the configured token), `approle` (`POST /v1/auth/<mount>/login` with `role_id` and `secret_id`),
 *           `kubernetes` (`POST /v1/auth/<mount>/login` with `role` and the service account JWT read from a file at
 *           each login, since Kubernetes rotates projected tokens); a login answers `auth.client_token` with its
 *           `auth.lease_duration` (seconds).
 * Every request carries `X-Vault-Token` and, when `vault_namespace` is set, `X-Vault-Namespace` (Vault Enterprise).
 *
 * What a reference reads: `vault://<path>#<field>` the field (a non-string field as JSON text). Without a field, the
 * field `value` when the secret has one (what the migration writes), else its only field when it has exactly one,
 * else the whole `data.data` as JSON text: a secret of one value reads as that value, a structured one as a whole.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SecretBackendError, type SecretBackend, type SecretBackendSettings, type SecretReference } from '../backend';
import { formatSecretReference } from '../references';
import { backendRequest, type BackendDeps, failureOf, pickField, requireSettings, stringSetting, urlUnder, type BackendResponse } from './http';

/** The clock and logger of one backend instance. */
interface Ctx {
  now: () => number;
  logger: BackendDeps['logger'];
}

const DEFAULT_KV_MOUNT = 'secret';
const DEFAULT_APPROLE_MOUNT = 'approle';
const DEFAULT_KUBERNETES_MOUNT = 'kubernetes';
const DEFAULT_JWT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';
/** A login token is renewed (by logging in again) once this share of its lease has passed. */
const RENEW_AT_LEASE_SHARE = 0.8;

interface LoginToken {
  token: string;
  /** Epoch ms after which the token is not used any more; Infinity for a lease of 0 (no expiry). */
  renewAt: number;
}

/**
 * Tokens obtained by logging in, by the identity that logged in (URL, namespace, method, mount, role and a digest of
 * the credentials, so a changed secret_id logs in afresh). A pending login is shared by concurrent reads.
 */
const logins = new Map<string, Promise<LoginToken>>();

/** Forgets every login token (tests; a process never needs to). */
export function forgetVaultLogins(): void {
  logins.clear();
}

const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

function vaultHeaders(settings: SecretBackendSettings, token: string): Record<string, string> {
  const ns = stringSetting(settings, 'vault_namespace');
  return { 'X-Vault-Token': token, ...(ns !== undefined ? { 'X-Vault-Namespace': ns } : {}) };
}

function caOf(settings: SecretBackendSettings): string | undefined {
  return stringSetting(settings, 'vault_ca_cert_pem');
}

type AuthMethod = 'token' | 'approle' | 'kubernetes';

function authMethodOf(settings: SecretBackendSettings, reference: string): AuthMethod {
  const m = settings['vault_auth'] ?? 'token';
  if (m === 'token' || m === 'approle' || m === 'kubernetes') return m;
  throw new SecretBackendError('SECRET_BACKEND_NOT_CONFIGURED', `${reference}: secret_backend.vault_auth must be token, approle or kubernetes`, reference);
}

/** Logs in with AppRole or Kubernetes and answers the client token with when to renew it. */
async function login(settings: SecretBackendSettings, method: 'approle' | 'kubernetes', reference: string, ctx: Ctx): Promise<LoginToken> {
  const [base] = requireSettings(settings, ['vault_url'], reference, 'vault');
  let mount: string;
  let body: Record<string, string>;
  if (method === 'approle') {
    const [roleId, secretId] = requireSettings(settings, ['vault_role_id', 'vault_secret_id'], reference, 'vault');
    mount = stringSetting(settings, 'vault_approle_mount') ?? DEFAULT_APPROLE_MOUNT;
    body = { role_id: roleId!, secret_id: secretId! };
  } else {
    const [role] = requireSettings(settings, ['vault_kubernetes_role'], reference, 'vault');
    mount = stringSetting(settings, 'vault_kubernetes_mount') ?? DEFAULT_KUBERNETES_MOUNT;
    const jwtPath = stringSetting(settings, 'vault_kubernetes_jwt_path') ?? DEFAULT_JWT_PATH;
    let jwt: string;
    try {
      jwt = (await readFile(jwtPath, 'utf8')).trim();
    } catch (e) {
      throw new SecretBackendError(
        'SECRET_BACKEND_NOT_CONFIGURED',
        `${reference}: the Kubernetes service account token could not be read from ${jwtPath} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
        reference,
      );
    }
    body = { role: role!, jwt };
  }
  const ns = stringSetting(settings, 'vault_namespace');
  const started = ctx.now();
  const { res } = await backendRequest(
    'vault',
    caOf(settings),
    {
      method: 'POST',
      url: urlUnder(base!, `/v1/auth/${encodePath(mount)}/login`, 'vault_url', reference),
      headers: { 'Content-Type': 'application/json', ...(ns !== undefined ? { 'X-Vault-Namespace': ns } : {}) },
      body: JSON.stringify(body),
      secretValues: Object.values(body),
    },
    reference,
    ctx.logger,
  );
  // Vault answers a refused login 400 ("invalid role or secret ID") or 403 ("permission denied").
  if (!res.ok) {
    const e = failureOf(res, reference, `the Vault ${method} login was refused`);
    throw res.status === 400 ? new SecretBackendError('SECRET_BACKEND_AUTH_FAILED', e.message, reference) : e;
  }
  const auth = (res.body as { auth?: { client_token?: unknown; lease_duration?: unknown } } | null)?.auth;
  if (typeof auth?.client_token !== 'string' || auth.client_token === '') {
    throw new SecretBackendError('SECRET_BACKEND_AUTH_FAILED', `${reference}: the Vault ${method} login answered no auth.client_token`, reference);
  }
  const lease = typeof auth.lease_duration === 'number' && auth.lease_duration > 0 ? auth.lease_duration : 0;
  return { token: auth.client_token, renewAt: lease === 0 ? Infinity : started + lease * 1000 * RENEW_AT_LEASE_SHARE };
}

function loginKey(settings: SecretBackendSettings, method: AuthMethod): string {
  const pick = (k: string) => stringSetting(settings, k) ?? '';
  const credentials =
    method === 'approle'
      ? [pick('vault_approle_mount'), pick('vault_role_id'), pick('vault_secret_id')]
      : [pick('vault_kubernetes_mount'), pick('vault_kubernetes_role'), pick('vault_kubernetes_jwt_path')];
  return createHash('sha256').update(JSON.stringify([pick('vault_url'), pick('vault_namespace'), method, ...credentials])).digest('hex');
}

/** The token a request carries, and whether it came from a login (so a 403 may mean it was revoked: log in again). */
async function tokenFor(settings: SecretBackendSettings, reference: string, ctx: Ctx, fresh = false): Promise<{ token: string; loggedIn: boolean }> {
  const method = authMethodOf(settings, reference);
  if (method === 'token') {
    const [token] = requireSettings(settings, ['vault_token'], reference, 'vault');
    return { token: token!, loggedIn: false };
  }
  const key = loginKey(settings, method);
  let pending = fresh ? undefined : logins.get(key);
  if (pending) {
    const held = await pending.catch(() => undefined);
    if (held && ctx.now() < held.renewAt) return { token: held.token, loggedIn: true };
    if (logins.get(key) === pending) logins.delete(key);
    pending = logins.get(key);
  }
  if (!pending) {
    pending = login(settings, method, reference, ctx);
    logins.set(key, pending);
    // A failed login is not kept: the next read tries again (the resolver's negative TTL paces it).
    pending.catch(() => {
      if (logins.get(key) === pending) logins.delete(key);
    });
  }
  return { token: (await pending).token, loggedIn: true };
}

async function kvRequest(
  settings: SecretBackendSettings,
  reference: string,
  ctx: Ctx,
  send: (token: string) => Promise<BackendResponse>,
): Promise<BackendResponse> {
  let { token, loggedIn } = await tokenFor(settings, reference, ctx);
  let out = await send(token);
  // A login token may have been revoked or may have outlived its lease early (a shortened max TTL): log in once more.
  if (out.res.status === 403 && loggedIn) {
    ({ token } = await tokenFor(settings, reference, ctx, true));
    out = await send(token);
  }
  return out;
}

function kvUrl(settings: SecretBackendSettings, path: string, reference: string): URL {
  const [base] = requireSettings(settings, ['vault_url'], reference, 'vault');
  const mount = stringSetting(settings, 'vault_kv_mount') ?? DEFAULT_KV_MOUNT;
  return urlUnder(base!, `/v1/${encodePath(mount)}/data/${encodePath(path)}`, 'vault_url', reference);
}

/** The value of a secret's `data.data` when no field is named (see the module comment). */
function wholeValue(data: Record<string, unknown>, reference: string): string {
  const keys = Object.keys(data);
  if (Object.hasOwn(data, 'value')) return pickField(data, 'value', reference);
  if (keys.length === 1) return pickField(data, keys[0]!, reference);
  return JSON.stringify(data);
}

export function createVaultBackend(deps: BackendDeps = {}): SecretBackend {
  const ctx: Ctx = { now: deps.now ?? Date.now, logger: deps.logger };
  return {
    scheme: 'vault',
    async read(ref: SecretReference, settings: SecretBackendSettings): Promise<string> {
      const reference = ref.raw;
      const url = kvUrl(settings, ref.path, reference);
      const { res } = await kvRequest(settings, reference, ctx, (token) =>
        backendRequest('vault', caOf(settings), { method: 'GET', url, headers: vaultHeaders(settings, token), secretHeaders: ['X-Vault-Token'], secretValues: [token] }, reference, ctx.logger),
      );
      if (!res.ok) throw failureOf(res, reference, 'reading the secret from Vault failed');
      const data = (res.body as { data?: { data?: unknown } } | null)?.data?.data;
      if (data === null || typeof data !== 'object' || Array.isArray(data)) {
        throw new SecretBackendError('SECRET_NOT_FOUND', `${reference}: Vault answered no data.data (is ${stringSetting(settings, 'vault_kv_mount') ?? DEFAULT_KV_MOUNT} a KV version 2 mount?)`, reference);
      }
      return ref.field !== undefined ? pickField(data, ref.field, reference) : wholeValue(data as Record<string, unknown>, reference);
    },
    async write(name: string, value: string, settings: SecretBackendSettings): Promise<SecretReference> {
      const raw = formatSecretReference('vault', name, 'value');
      const url = kvUrl(settings, name, raw);
      const { res } = await kvRequest(settings, raw, ctx, (token) =>
        backendRequest(
          'vault',
          caOf(settings),
          {
            method: 'POST',
            url,
            headers: { ...vaultHeaders(settings, token), 'Content-Type': 'application/json' },
            body: JSON.stringify({ data: { value } }),
            secretHeaders: ['X-Vault-Token'],
            secretValues: [token, value],
          },
          raw,
          ctx.logger,
        ),
      );
      if (!res.ok) throw failureOf(res, raw, 'writing the secret to Vault failed');
      return { scheme: 'vault', raw, path: name, field: 'value' };
    },
  };
}

export const vaultBackend = createVaultBackend();
