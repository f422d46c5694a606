// A real OAuth 2.0 / OpenID Connect authorization server (oidc-provider) plus a protected resource, on loopback.
// oidc-provider is ESM-only and jest here runs CommonJS, so tests start this script as a child process
// (tests/support/oidc.ts) and talk to it over HTTP. It prints one JSON line {"port": N} when ready.
//
// Routes besides the provider's own:
//   GET  /resource/whoami      protected: accepts a live access token (client credentials, password or code grant)
//   GET  /interaction/:uid     logs in "alice" and grants consent at once (no forms), for the authorization code flow
//   GET  /_test/events         token endpoint requests and grant outcomes seen so far
//   POST /_test/revoke-all     destroys every access token the resource has accepted (server-side expiry, on demand)
import http from 'node:http';
import Provider from 'oidc-provider';
import { exitWithParent } from './exit-with-parent.mjs';

const TOKEN_TTL = Number(process.env.OIDC_TOKEN_TTL ?? '600'); // seconds
const events = [];
const accepted = new Set();

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const confidential = (id, extra) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  redirect_uris: [],
  response_types: [],
  grant_types: ['client_credentials'],
  scope: 'api:read api:write',
  ...extra,
});

const provider = new Provider(issuer, {
  clients: [
    confidential('cc-post', { token_endpoint_auth_method: 'client_secret_post' }),
    confidential('cc-basic', { token_endpoint_auth_method: 'client_secret_basic' }),
    confidential('pw-client', { grant_types: ['password', 'refresh_token'], token_endpoint_auth_method: 'client_secret_post' }),
    confidential('web-client', {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid offline_access api:read',
    }),
  ],
  scopes: ['openid', 'offline_access', 'api:read', 'api:write'],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    revocation: { enabled: true },
  },
  pkce: { required: () => false },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  cookies: { keys: ['test-cookie-key'] },
  ttl: {
    AccessToken: TOKEN_TTL,
    ClientCredentials: TOKEN_TTL,
    AuthorizationCode: 60,
    RefreshToken: 3600,
    Grant: 3600,
    Interaction: 600,
    Session: 600,
  },
});
provider.proxy = false;

// The resource owner password grant is not built in (OAuth 2.1 drops it); register it as vendors that keep it do.
provider.registerGrantType(
  'password',
  async (ctx, next) => {
    const { username, password, scope } = ctx.oidc.params;
    if (username !== 'alice' || password !== 'alice-pw') {
      ctx.status = 400;
      ctx.body = { error: 'invalid_grant', error_description: 'wrong username or password' };
      return next();
    }
    const { AccessToken, RefreshToken, Grant } = ctx.oidc.provider;
    const client = ctx.oidc.client;
    const grant = new Grant({ accountId: username, clientId: client.clientId });
    grant.addOIDCScope('openid offline_access');
    const grantId = await grant.save();
    const common = { accountId: username, client, grantId, gty: 'password', scope: scope || 'openid offline_access' };
    const at = new AccessToken(common);
    const accessToken = await at.save();
    const rt = new RefreshToken(common);
    const refreshToken = await rt.save();
    ctx.body = { access_token: accessToken, token_type: 'Bearer', expires_in: at.expiration, refresh_token: refreshToken, scope: at.scope };
    return next();
  },
  ['username', 'password', 'scope'],
);

provider.on('grant.success', (ctx) => {
  events.push({ kind: 'grant.success', grant_type: ctx.oidc.params.grant_type, client_id: ctx.oidc.client?.clientId });
});
provider.on('grant.error', (ctx, err) => {
  events.push({ kind: 'grant.error', grant_type: ctx.oidc.params?.grant_type, client_id: ctx.oidc.client?.clientId, error: err.message });
});

async function findToken(value) {
  return (await provider.ClientCredentials.find(value)) ?? (await provider.AccessToken.find(value));
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  const json = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  try {
    if (url.pathname === '/token') {
      events.push({
        kind: 'token.request',
        method: req.method,
        basic_auth: /^Basic /i.test(req.headers.authorization ?? ''),
        content_type: req.headers['content-type'],
      });
    }
    if (url.pathname === '/resource/whoami') {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const found = token ? await findToken(token) : undefined;
      if (!found || found.isExpired) {
        events.push({ kind: 'resource.denied' });
        return json(401, { error: 'invalid_token' });
      }
      accepted.add(token);
      events.push({ kind: 'resource.ok', client_id: found.clientId });
      return json(200, { client_id: found.clientId, sub: found.accountId ?? null, scope: found.scope });
    }
    if (url.pathname.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(req, res);
      const grant = new provider.Grant({ accountId: 'alice', clientId: details.params.client_id });
      grant.addOIDCScope(String(details.params.scope ?? 'openid'));
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { login: { accountId: 'alice' }, consent: { grantId } }, { mergeWithLastSubmission: false });
    }
    if (url.pathname === '/_test/events') return json(200, events);
    if (url.pathname === '/_test/revoke-all') {
      for (const t of accepted) {
        const found = await findToken(t);
        if (found) await found.destroy();
      }
      accepted.clear();
      return json(200, { ok: true });
    }
    return callback(req, res);
  } catch (e) {
    json(500, { error: String(e) });
  }
});

process.stdout.write(`${JSON.stringify({ port })}\n`);
// Exit with the test process even when it dies without stopping us.
exitWithParent();
process.on('SIGTERM', () => server.close(() => process.exit(0)));
