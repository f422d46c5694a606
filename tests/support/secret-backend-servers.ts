/**
 * Loopback HTTPS servers implementing the documented HTTP APIs of three secret backends, for the resolver's tests
 * (each under a certificate of its own test CA: clients reach them over verified TLS with `*_ca_cert_pem`):
 *
 *  - HashiCorp Vault (HTTP API v1): KV version 2 read (`GET /v1/<mount>/data/<path>[?version=N]`) and write
 *    (`POST|PUT /v1/<mount>/data/<path>` with `{"data": {...}, "options": {"cas": N}}`, versions kept), token auth
 *    (`X-Vault-Token`; 403 `{"errors":["permission denied"]}` otherwise), AppRole and Kubernetes logins
 *    (`POST /v1/auth/<mount>/login`) that check their inputs and issue tokens with `lease_duration`, and namespaces
 *    (`X-Vault-Namespace` must name the server's namespace when it has one).
 *  - CyberArk Conjur (v5 REST): `POST /authn/<account>/<login>/authenticate` with the API key as body → a signed
 *    JSON access token (8 minutes), base64-encoded with `Accept-Encoding: base64`; `GET|POST
 *    /secrets/<account>/variable/<id>` checking `Authorization: Token token="<base64>"` (signature and expiry);
 *    404 for an undeclared variable (a write too) or one without a value.
 *  - Azure: the Microsoft identity platform v2.0 token endpoint (`POST /<tenant>/oauth2/v2.0/token`, client
 *    credentials checked, scope must be `https://vault.azure.net/.default`) and Key Vault secrets
 *    (`GET|PUT /vaults/<vault>/secrets/<name>?api-version=7.4`, bearer checked, `api-version` required) under
 *    one origin: the vault URL template is `<url>/vaults/{vault}`.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { startHttpsLoopbackServer, type HttpsLoopbackServer } from './https-loopback';
import { sendJson, type RecordedRequest } from './loopback-server';

const pathAndQuery = (req: RecordedRequest): { path: string; query: URLSearchParams } => {
  const u = new URL(req.url, 'https://x');
  return { path: u.pathname, query: u.searchParams };
};
const header = (req: RecordedRequest, name: string): string | undefined => {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};
const safeEqual = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

// ---------------------------------------------------------------- Vault

export interface VaultServerOptions {
  /** Tokens accepted without a login (e.g. a root token). */
  staticTokens?: string[];
  approle?: { mount?: string; roleId: string; secretId: string };
  kubernetes?: { mount?: string; role: string; jwt: string };
  /** The lease (seconds) of a login token. */
  leaseDuration?: number;
  /** When set, every request must carry this X-Vault-Namespace. */
  namespace?: string;
  /** The KV v2 mount (default `secret`). */
  kvMount?: string;
}

export interface VaultServer extends HttpsLoopbackServer {
  /** Writes a new version of `path` (as a client's write would). */
  put(path: string, data: Record<string, unknown>): number;
  /** Deletes the latest version of `path` (soft delete: reads answer 404). */
  deleteLatest(path: string): void;
  /** Revokes every token issued by a login (a read with one then answers 403). */
  revokeLoginTokens(): void;
  /** The requests to `<kv mount>/data/…` (reads and writes), and the login requests. */
  kvRequests(): RecordedRequest[];
  logins(): RecordedRequest[];
  /** The latest version's data of `path`, as stored. */
  latest(path: string): Record<string, unknown> | undefined;
}

interface KvVersion {
  data: Record<string, unknown>;
  created_time: string;
  deletion_time: string;
}

export async function startVaultServer(opts: VaultServerOptions): Promise<VaultServer> {
  const kvMount = opts.kvMount ?? 'secret';
  const kv = new Map<string, KvVersion[]>();
  const loginTokens = new Map<string, { expiresAt: number; role: string }>();
  const statics = new Set(opts.staticTokens ?? []);
  const lease = opts.leaseDuration ?? 3600;

  const put = (path: string, data: Record<string, unknown>): number => {
    const versions = kv.get(path) ?? [];
    versions.push({ data: structuredClone(data), created_time: new Date().toISOString(), deletion_time: '' });
    kv.set(path, versions);
    return versions.length;
  };
  const errors = (res: http.ServerResponse, status: number, list: string[]) => sendJson(res, status, { errors: list });
  const tokenValid = (token: string | undefined): boolean => {
    if (token === undefined) return false;
    if (statics.has(token)) return true;
    const t = loginTokens.get(token);
    return t !== undefined && Date.now() < t.expiresAt;
  };
  const issue = (res: http.ServerResponse, role: string, metadata: Record<string, string>) => {
    const token = `hvs.${randomBytes(18).toString('base64url')}`;
    loginTokens.set(token, { expiresAt: Date.now() + lease * 1000, role });
    sendJson(res, 200, {
      request_id: randomUUID(),
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      data: null,
      wrap_info: null,
      warnings: null,
      auth: {
        client_token: token,
        accessor: randomBytes(12).toString('base64url'),
        policies: ['default', 'provisio'],
        token_policies: ['default', 'provisio'],
        metadata,
        lease_duration: lease,
        renewable: true,
        entity_id: randomUUID(),
        token_type: 'service',
        orphan: true,
      },
    });
  };

  const server = await startHttpsLoopbackServer((req, res) => {
    const { path, query } = pathAndQuery(req);
    if (opts.namespace !== undefined && header(req, 'X-Vault-Namespace') !== opts.namespace) {
      // A request outside the namespace finds no route there (Vault answers 404 "no handler" or 403).
      return errors(res, 403, ['permission denied']);
    }
    let body: Record<string, unknown> = {};
    if (req.body !== '') {
      try {
        body = JSON.parse(req.body) as Record<string, unknown>;
      } catch {
        return errors(res, 400, ['failed to parse JSON input']);
      }
    }
    // Logins.
    const login = /^\/v1\/auth\/(.+)\/login$/.exec(path);
    if (login && req.method === 'POST') {
      const mount = login[1];
      if (opts.approle && mount === (opts.approle.mount ?? 'approle')) {
        if (typeof body['role_id'] !== 'string' || body['role_id'] === '') return errors(res, 400, ['missing role_id']);
        if (body['role_id'] !== opts.approle.roleId || body['secret_id'] !== opts.approle.secretId) return errors(res, 400, ['invalid role or secret ID']);
        return issue(res, 'approle', { role_name: 'provisio' });
      }
      if (opts.kubernetes && mount === (opts.kubernetes.mount ?? 'kubernetes')) {
        if (typeof body['role'] !== 'string' || body['role'] === '') return errors(res, 400, ['missing role']);
        if (body['role'] !== opts.kubernetes.role) return errors(res, 400, [`invalid role name "${String(body['role'])}"`]);
        if (body['jwt'] !== opts.kubernetes.jwt) return errors(res, 403, ['permission denied']);
        return issue(res, 'kubernetes', { role: opts.kubernetes.role, service_account_name: 'provisio' });
      }
      return errors(res, 404, [`no handler for route "auth/${mount}/login". route entry not found.`]);
    }
    // KV v2.
    const prefix = `/v1/${kvMount}/data/`;
    if (path.startsWith(prefix)) {
      if (!tokenValid(header(req, 'X-Vault-Token'))) return errors(res, 403, ['permission denied']);
      const secretPath = path.slice(prefix.length).split('/').map(decodeURIComponent).join('/');
      if (req.method === 'GET') {
        const versions = kv.get(secretPath) ?? [];
        const wanted = query.get('version');
        const index = wanted !== null && wanted !== '0' ? Number(wanted) - 1 : versions.length - 1;
        const v = versions[index];
        if (!v) return errors(res, 404, []);
        const metadata = { created_time: v.created_time, custom_metadata: null, deletion_time: v.deletion_time, destroyed: false, version: index + 1 };
        if (v.deletion_time !== '') return sendJson(res, 404, { request_id: randomUUID(), data: { data: null, metadata } });
        return sendJson(res, 200, { request_id: randomUUID(), lease_id: '', renewable: false, lease_duration: 0, data: { data: v.data, metadata }, wrap_info: null, warnings: null, auth: null });
      }
      if (req.method === 'POST' || req.method === 'PUT') {
        const data = body['data'];
        if (data === null || typeof data !== 'object' || Array.isArray(data)) return errors(res, 400, ['no data provided']);
        const cas = (body['options'] as { cas?: number } | undefined)?.cas;
        if (cas !== undefined && cas !== (kv.get(secretPath)?.length ?? 0)) {
          return errors(res, 400, ['check-and-set parameter did not match the current version']);
        }
        const version = put(secretPath, data as Record<string, unknown>);
        return sendJson(res, 200, { request_id: randomUUID(), data: { created_time: new Date().toISOString(), custom_metadata: null, deletion_time: '', destroyed: false, version } });
      }
      return errors(res, 405, ['unsupported operation']);
    }
    return errors(res, 404, [`no handler for route "${path}"`]);
  });

  return Object.assign(server, {
    put,
    deleteLatest(path: string) {
      const v = kv.get(path)?.at(-1);
      if (v) v.deletion_time = new Date().toISOString();
    },
    revokeLoginTokens() {
      loginTokens.clear();
    },
    kvRequests: () => server.requests.filter((r) => r.url.startsWith(`/v1/${kvMount}/data/`)),
    logins: () => server.requests.filter((r) => /^\/v1\/auth\/.+\/login$/.test(r.url)),
    latest: (path: string) => kv.get(path)?.at(-1)?.data,
  });
}

// ---------------------------------------------------------------- Conjur

export interface ConjurServerOptions {
  account: string;
  login: string;
  apiKey: string;
}

export interface ConjurServer extends HttpsLoopbackServer {
  /** Declares a variable (as loading policy would); with a value, adds it as its first version. */
  declare(id: string, value?: string): void;
  /** Adds a value to a declared variable. */
  set(id: string, value: string): void;
  value(id: string): string | undefined;
  authnRequests(): RecordedRequest[];
  variableRequests(): RecordedRequest[];
}

const TOKEN_TTL_S = 8 * 60;

export async function startConjurServer(opts: ConjurServerOptions): Promise<ConjurServer> {
  const signingKey = randomBytes(32);
  const variables = new Map<string, string[]>();
  const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const sign = (protectedPart: string, payload: string) => createHmac('sha256', signingKey).update(`${protectedPart}.${payload}`).digest('base64url');

  const issueToken = (): string => {
    const iat = Math.floor(Date.now() / 1000);
    const protectedPart = b64url({ alg: 'conjur.org/slosilo/v2', kid: 'test-key' });
    const payload = b64url({ sub: opts.login, iat, exp: iat + TOKEN_TTL_S });
    return JSON.stringify({ protected: protectedPart, payload, signature: sign(protectedPart, payload) });
  };
  /** The login an `Authorization: Token token="…"` header authenticates, or undefined. */
  const authenticated = (req: RecordedRequest): string | undefined => {
    const m = /^Token token="([^"]+)"$/.exec(header(req, 'Authorization') ?? '');
    if (!m) return undefined;
    try {
      const token = JSON.parse(Buffer.from(m[1]!, 'base64').toString('utf8')) as { protected: string; payload: string; signature: string };
      if (!safeEqual(sign(token.protected, token.payload), token.signature)) return undefined;
      const payload = JSON.parse(Buffer.from(token.payload, 'base64url').toString('utf8')) as { sub: string; exp: number };
      return Date.now() / 1000 < payload.exp ? payload.sub : undefined;
    } catch {
      return undefined;
    }
  };
  const notFound = (res: http.ServerResponse, id: string) =>
    sendJson(res, 404, { error: { code: 'not_found', message: `Variable ${id} is empty or not found.`, target: 'id', details: { code: 'not_found', target: 'id', message: `${opts.account}:variable:${id}` } } });

  const handle = (req: RecordedRequest, res: http.ServerResponse): unknown => {
    const { path } = pathAndQuery(req);
    const authn = /^\/authn\/([^/]+)\/([^/]+)\/authenticate$/.exec(path);
    if (authn && req.method === 'POST') {
      const [account, login] = [decodeURIComponent(authn[1]!), decodeURIComponent(authn[2]!)];
      if (account !== opts.account || login !== opts.login || !safeEqual(req.body, opts.apiKey)) {
        res.writeHead(401, { 'content-length': 0 });
        return res.end();
      }
      const token = issueToken();
      if ((header(req, 'Accept-Encoding') ?? '').split(',').map((s) => s.trim()).includes('base64')) {
        const b64 = Buffer.from(token).toString('base64');
        res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'base64', 'content-length': b64.length });
        return res.end(b64);
      }
      return sendJson(res, 200, JSON.parse(token));
    }
    const variable = /^\/secrets\/([^/]+)\/variable\/([^/]+)$/.exec(path);
    if (variable) {
      if (authenticated(req) === undefined) {
        res.writeHead(401, { 'content-length': 0 });
        return res.end();
      }
      const account = decodeURIComponent(variable[1]!);
      const id = decodeURIComponent(variable[2]!);
      const versions = account === opts.account ? variables.get(id) : undefined;
      if (req.method === 'GET') {
        const value = versions?.at(-1);
        if (value === undefined) return notFound(res, id);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': Buffer.byteLength(value) });
        return res.end(value);
      }
      if (req.method === 'POST') {
        if (!versions) return notFound(res, id);
        versions.push(req.body);
        res.writeHead(201, { 'content-length': 0 });
        return res.end();
      }
    }
    return sendJson(res, 404, { error: { code: 'not_found', message: `no route ${req.method} ${path}` } });
  };
  const server = await startHttpsLoopbackServer((req, res) => {
    handle(req, res);
  });

  return Object.assign(server, {
    declare(id: string, value?: string) {
      variables.set(id, value === undefined ? [] : [value]);
    },
    set(id: string, value: string) {
      const v = variables.get(id);
      if (!v) throw new Error(`variable ${id} is not declared`);
      v.push(value);
    },
    value: (id: string) => variables.get(id)?.at(-1),
    authnRequests: () => server.requests.filter((r) => r.url.startsWith('/authn/')),
    variableRequests: () => server.requests.filter((r) => r.url.startsWith('/secrets/')),
  });
}

// ---------------------------------------------------------------- Azure

export interface AzureServerOptions {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** The lifetime (seconds) of an access token. */
  expiresIn?: number;
}

export interface AzureServer extends HttpsLoopbackServer {
  /** What `secret_backend.azure_authority_url` and `azure_vault_url_template` must be to reach this server. */
  authorityUrl: string;
  vaultUrlTemplate: string;
  setSecret(vault: string, name: string, value: string): void;
  secret(vault: string, name: string): string | undefined;
  tokenRequests(): RecordedRequest[];
  secretRequests(): RecordedRequest[];
}

export async function startAzureServer(opts: AzureServerOptions): Promise<AzureServer> {
  const tokens = new Map<string, number>();
  const vaults = new Map<string, Map<string, { value: string; version: string; created: number }[]>>();
  const setSecret = (vault: string, name: string, value: string) => {
    const v = vaults.get(vault) ?? new Map();
    vaults.set(vault, v);
    const versions = v.get(name.toLowerCase()) ?? [];
    v.set(name.toLowerCase(), versions);
    const entry = { value, version: randomBytes(16).toString('hex'), created: Math.floor(Date.now() / 1000) };
    versions.push(entry);
    return entry;
  };
  const kvError = (res: http.ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}) =>
    sendJson(res, status, { error: { code, message } }, extra);

  let port = 0;
  const server = await startHttpsLoopbackServer((req, res) => {
    const { path, query } = pathAndQuery(req);
    const token = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(path);
    if (token && req.method === 'POST') {
      const form = new URLSearchParams(req.body);
      const aad = (status: number, error: string, description: string) =>
        sendJson(res, status, { error, error_description: description, error_codes: [Number(description.slice(5, 12)) || 0], timestamp: new Date().toISOString(), trace_id: randomUUID() });
      if (!(header(req, 'Content-Type') ?? '').startsWith('application/x-www-form-urlencoded')) return aad(400, 'invalid_request', 'AADSTS900144: The request body must contain the following parameter: grant_type.');
      if (decodeURIComponent(token[1]!) !== opts.tenantId) return aad(400, 'invalid_request', `AADSTS90002: Tenant '${token[1]}' not found.`);
      if (form.get('grant_type') !== 'client_credentials') return aad(400, 'unsupported_grant_type', 'AADSTS70003: The app requested an unsupported grant type.');
      if (form.get('client_id') !== opts.clientId) return aad(400, 'unauthorized_client', `AADSTS700016: Application with identifier '${form.get('client_id') ?? ''}' was not found in the directory.`);
      if (form.get('client_secret') !== opts.clientSecret) return aad(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.');
      if (form.get('scope') !== 'https://vault.azure.net/.default') return aad(400, 'invalid_scope', 'AADSTS1002012: The provided value for scope is not valid.');
      const expiresIn = opts.expiresIn ?? 3599;
      const access = randomBytes(24).toString('base64url');
      tokens.set(access, Date.now() + expiresIn * 1000);
      return sendJson(res, 200, { token_type: 'Bearer', expires_in: expiresIn, ext_expires_in: expiresIn, access_token: access });
    }
    const secret = /^\/vaults\/([^/]+)\/secrets\/([^/]+)$/.exec(path);
    if (secret) {
      const challenge = {
        'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${opts.tenantId}", resource="https://vault.azure.net"`,
      };
      const bearer = /^Bearer (.+)$/.exec(header(req, 'Authorization') ?? '')?.[1];
      if (bearer === undefined) return kvError(res, 401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.', challenge);
      const expiry = tokens.get(bearer);
      if (expiry === undefined || Date.now() >= expiry) return kvError(res, 401, 'Unauthorized', 'AKV10032: Invalid issuer or token expired.', challenge);
      if (query.get('api-version') === null) return kvError(res, 400, 'BadParameter', 'The request URI contains an invalid or missing api-version.');
      if (query.get('api-version') !== '7.4') return kvError(res, 400, 'BadParameter', `The specified version (${query.get('api-version')}) is not recognized.`);
      const [vault, name] = [decodeURIComponent(secret[1]!), decodeURIComponent(secret[2]!)];
      const id = (version: string) => `https://${vault}.vault.azure.net/secrets/${name}/${version}`;
      const bundle = (e: { value: string; version: string; created: number }) => ({
        value: e.value,
        id: id(e.version),
        attributes: { enabled: true, created: e.created, updated: e.created, recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 },
        tags: {},
      });
      if (req.method === 'GET') {
        const latest = vaults.get(vault)?.get(name.toLowerCase())?.at(-1);
        if (!latest) return kvError(res, 404, 'SecretNotFound', `A secret with (name/id) ${name} was not found in this key vault.`);
        return sendJson(res, 200, bundle(latest));
      }
      if (req.method === 'PUT') {
        let body: { value?: unknown };
        try {
          body = JSON.parse(req.body) as { value?: unknown };
        } catch {
          return kvError(res, 400, 'BadParameter', 'The request body is not valid JSON.');
        }
        if (typeof body.value !== 'string') return kvError(res, 400, 'BadParameter', 'Property value is required.');
        return sendJson(res, 200, bundle(setSecret(vault, name, body.value)));
      }
    }
    return kvError(res, 404, 'NotFound', `no route ${req.method} ${path}`);
  });
  port = server.port;
  return Object.assign(server, {
    authorityUrl: `https://127.0.0.1:${port}`,
    vaultUrlTemplate: `https://127.0.0.1:${port}/vaults/{vault}`,
    setSecret: (vault: string, name: string, value: string) => void setSecret(vault, name, value),
    secret: (vault: string, name: string) => vaults.get(vault)?.get(name.toLowerCase())?.at(-1)?.value,
    tokenRequests: () => server.requests.filter((r) => r.url.includes('/oauth2/v2.0/token')),
    secretRequests: () => server.requests.filter((r) => r.url.startsWith('/vaults/')),
  });
}
