/**
 * CyberArk Conjur (Conjur Open Source / Secrets Manager Enterprise, REST API of Conjur v5):
 *  - authn: `POST /authn/<account>/<url-encoded login>/authenticate` with the API key as the body and
 *    `Accept-Encoding: base64` → the access token, base64-encoded (a JSON token when the server ignores the
 *    header: we encode it ourselves). Tokens live 8 minutes; one is reused for 7.
 *  - read:  `GET /secrets/<account>/variable/<url-encoded identifier>` with
 *    `Authorization: Token token="<base64 token>"` → the value as stored (any bytes; read as UTF-8).
 *  - write: `POST /secrets/<account>/variable/<url-encoded identifier>` with the value as the body → 201. The
 *    variable must be declared in policy first: Conjur answers 404 otherwise.
 * `conjur://<identifier>#<field>` reads one field of a variable whose value is a JSON object.
 */
import { createHash } from 'node:crypto';
import { SecretBackendError, type SecretBackend, type SecretBackendSettings, type SecretReference } from '../backend';
import { formatSecretReference } from '../references';
import { backendRequest, type BackendDeps, describeFailure, failureOf, pickField, requireSettings, stringSetting, urlUnder, type BackendResponse } from './http';

/** The clock and logger of one backend instance. */
interface Ctx {
  now: () => number;
  logger: BackendDeps['logger'];
}

/** Conjur access tokens are valid for 8 minutes; this leaves a minute for clock skew and the request in flight. */
const TOKEN_REUSE_MS = 7 * 60_000;

interface ConjurToken {
  header: string;
  renewAt: number;
}

/** Access tokens by identity (URL, account, login, API key digest); a pending authn is shared by concurrent reads. */
const tokens = new Map<string, Promise<ConjurToken>>();

/** Forgets every access token (tests). */
export function forgetConjurTokens(): void {
  tokens.clear();
}

function identityOf(settings: SecretBackendSettings, reference: string): { url: string; account: string; login: string; apiKey: string; key: string } {
  const [url, account, login, apiKey] = requireSettings(settings, ['conjur_url', 'conjur_account', 'conjur_login', 'conjur_api_key'], reference, 'conjur') as [
    string,
    string,
    string,
    string,
  ];
  const key = createHash('sha256').update(JSON.stringify([url, account, login, apiKey])).digest('hex');
  return { url, account, login, apiKey, key };
}

const caOf = (settings: SecretBackendSettings) => stringSetting(settings, 'conjur_ca_cert_pem');

async function authenticate(settings: SecretBackendSettings, reference: string, ctx: Ctx): Promise<ConjurToken> {
  const id = identityOf(settings, reference);
  const started = ctx.now();
  const { res, text } = await backendRequest(
    'conjur',
    caOf(settings),
    {
      method: 'POST',
      url: urlUnder(id.url, `/authn/${encodeURIComponent(id.account)}/${encodeURIComponent(id.login)}/authenticate`, 'conjur_url', reference),
      headers: { 'Content-Type': 'text/plain', 'Accept-Encoding': 'base64', Accept: '*/*' },
      body: id.apiKey,
      secretValues: [id.apiKey],
    },
    reference,
    ctx.logger,
  );
  if (!res.ok) {
    const why = `${reference}: Conjur refused the API key authentication of ${id.login}: ${describeFailure(res)}`;
    throw res.status === 401 || res.status === 403
      ? new SecretBackendError('SECRET_BACKEND_AUTH_FAILED', why, reference)
      : failureOf(res, reference, `Conjur authentication of ${id.login} failed`);
  }
  const body = text.trim();
  if (body === '') throw new SecretBackendError('SECRET_BACKEND_AUTH_FAILED', `${reference}: Conjur answered the authentication with an empty token`, reference);
  // A JSON token (it starts with `{`) is what Conjur sends without `Accept-Encoding: base64`.
  const encoded = body.startsWith('{') ? Buffer.from(body, 'utf8').toString('base64') : body;
  return { header: `Token token="${encoded}"`, renewAt: started + TOKEN_REUSE_MS };
}

async function tokenFor(settings: SecretBackendSettings, reference: string, ctx: Ctx, fresh = false): Promise<string> {
  const { key } = identityOf(settings, reference);
  let pending = fresh ? undefined : tokens.get(key);
  if (pending) {
    const held = await pending.catch(() => undefined);
    if (held && ctx.now() < held.renewAt) return held.header;
    if (tokens.get(key) === pending) tokens.delete(key);
    pending = undefined;
  }
  pending = authenticate(settings, reference, ctx);
  tokens.set(key, pending);
  pending.catch(() => {
    if (tokens.get(key) === pending) tokens.delete(key);
  });
  return (await pending).header;
}

/** Sends with a cached token; a 401 (the token expired early, or the key was rotated) authenticates once more. */
async function withToken(settings: SecretBackendSettings, reference: string, ctx: Ctx, send: (header: string) => Promise<BackendResponse>): Promise<BackendResponse> {
  let out = await send(await tokenFor(settings, reference, ctx));
  if (out.res.status === 401) out = await send(await tokenFor(settings, reference, ctx, true));
  return out;
}

function variableUrl(settings: SecretBackendSettings, identifier: string, reference: string): URL {
  const { url, account } = identityOf(settings, reference);
  // The identifier is one path parameter: its slashes are encoded too, as the Conjur API documents.
  return urlUnder(url, `/secrets/${encodeURIComponent(account)}/variable/${encodeURIComponent(identifier)}`, 'conjur_url', reference);
}

export function createConjurBackend(deps: BackendDeps = {}): SecretBackend {
  const ctx: Ctx = { now: deps.now ?? Date.now, logger: deps.logger };
  return {
    scheme: 'conjur',
    async read(ref: SecretReference, settings: SecretBackendSettings): Promise<string> {
      const reference = ref.raw;
      const url = variableUrl(settings, ref.path, reference);
      const { res, text } = await withToken(settings, reference, ctx, (header) =>
        backendRequest('conjur', caOf(settings), { method: 'GET', url, headers: { Authorization: header, Accept: '*/*' }, secretHeaders: ['Authorization'] }, reference, ctx.logger),
      );
      if (!res.ok) {
        // Conjur answers 404 both for an undeclared variable and for one declared without a value yet.
        throw failureOf(res, reference, 'reading the variable from Conjur failed');
      }
      if (ref.field === undefined) return text;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new SecretBackendError('SECRET_NOT_FOUND', `${reference}: the variable's value is not a JSON object, so it has no field '${ref.field}'`, reference);
      }
      return pickField(parsed, ref.field, reference);
    },
    async write(name: string, value: string, settings: SecretBackendSettings): Promise<SecretReference> {
      const raw = formatSecretReference('conjur', name);
      const url = variableUrl(settings, name, raw);
      const { res } = await withToken(settings, raw, ctx, (header) =>
        backendRequest(
          'conjur',
          caOf(settings),
          { method: 'POST', url, headers: { Authorization: header, 'Content-Type': 'text/plain' }, body: value, secretHeaders: ['Authorization'], secretValues: [value] },
          raw,
          ctx.logger,
        ),
      );
      if (res.status === 404) {
        throw new SecretBackendError(
          'SECRET_NOT_FOUND',
          `${raw}: Conjur has no variable '${name}' in account ${stringSetting(settings, 'conjur_account') ?? ''}: declare it in policy (!variable ${name}) before migrating to it`,
          raw,
        );
      }
      if (!res.ok) throw failureOf(res, raw, 'writing the variable to Conjur failed');
      return { scheme: 'conjur', raw, path: name };
    },
  };
}

export const conjurBackend = createConjurBackend();
