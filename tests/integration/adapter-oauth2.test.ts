import { createIntegrationClient, isEnvelope, type IntegrationClient, type IntegrationEnvelope, type OAuthTokens } from '../../adapter/http';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { closedPort } from '../support/loopback-server';
import { startOidcServer, type OidcEvent, type OidcServer } from '../support/oidc';

function envelope(result: IntegrationEnvelope | string): IntegrationEnvelope {
  if (!isEnvelope(result)) throw new Error(`expected an envelope, got the string: ${result}`);
  return result;
}

describe('OAuth 2.0 and OpenID Connect against a real authorization server (oidc-provider)', () => {
  let idp: OidcServer;
  let mem: MemoryLogger;
  let clock = Date.now();
  const clients: IntegrationClient[] = [];
  const client = (authentication: Record<string, unknown>, onTokens?: (t: OAuthTokens) => void): IntegrationClient => {
    const url = new URL(idp.resourceBase);
    const c = createIntegrationClient(
      { server: { host: url.hostname, port: Number(url.port), base_path: '/resource' }, authentication, logging: { level: 'debug' } },
      { logger: mem.logger, name: 'oauth', now: () => clock, ...(onTokens ? { onTokens } : {}) },
    );
    clients.push(c);
    return c;
  };
  const cc = (id: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    type: 'oauth2_client_credentials',
    client_id: id,
    client_secret: `${id}-secret`,
    token_url: idp.tokenUrl,
    scope: 'api:read',
    ...extra,
  });
  let mark = 0;
  const newEvents = async (): Promise<OidcEvent[]> => {
    const all = await idp.events();
    const fresh = all.slice(mark);
    mark = all.length;
    return fresh;
  };
  const kinds = (events: OidcEvent[]): string[] => events.map((e) => (e.grant_type ? `${e.kind}:${e.grant_type}` : e.kind));

  beforeAll(async () => {
    mem = createMemoryLogger();
    idp = await startOidcServer();
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await idp.stop();
  });
  beforeEach(async () => {
    await newEvents();
  });

  test('client credentials with client_secret_post (the default): token fetched once, then cached', async () => {
    const c = client(cc('cc-post'));
    const first = envelope(await c.call({ method: 'GET', path: '/whoami' }));
    expect(first).toMatchObject({ ok: true, status: 200, body: { client_id: 'cc-post', scope: 'api:read' } });
    envelope(await c.call({ method: 'GET', path: '/whoami' }));
    const events = await newEvents();
    expect(kinds(events)).toEqual(['token.request', 'grant.success:client_credentials', 'resource.ok', 'resource.ok']);
    expect(events[0]).toMatchObject({ basic_auth: false, content_type: 'application/x-www-form-urlencoded' });
  });

  test('client credentials with client_secret_basic sends the credentials in the Authorization header', async () => {
    const c = client(cc('cc-basic', { auth_method: 'client_secret_basic' }));
    expect(envelope(await c.call({ method: 'GET', path: '/whoami' })).body).toMatchObject({ client_id: 'cc-basic' });
    const events = await newEvents();
    expect(events[0]).toMatchObject({ kind: 'token.request', basic_auth: true });
  });

  test('a failed token request comes back as the token endpoint call (POST, its URL), the API is never called', async () => {
    const c = client(cc('cc-basic', { auth_method: 'client_secret_basic', client_secret: 'wrong-secret' }));
    expect(await c.call({ method: 'GET', path: '/whoami' })).toEqual({
      ok: false,
      method: 'POST',
      url: idp.tokenUrl,
      status: 401,
      statusText: 'Unauthorized',
      headers: expect.any(Object),
      body: { error: 'invalid_client', error_description: 'client authentication failed' },
    });
    expect(kinds(await newEvents())).toEqual(['token.request', 'grant.error:client_credentials']);
  });

  test('the token is refreshed shortly before it expires (expires_in 600 s: after 570 s, not at 560 s)', async () => {
    const c = client(cc('cc-post'));
    const start = clock;
    try {
      envelope(await c.call({ method: 'GET', path: '/whoami' }));
      clock = start + 560_000;
      envelope(await c.call({ method: 'GET', path: '/whoami' }));
      expect(kinds(await newEvents()).filter((k) => k.startsWith('grant'))).toEqual(['grant.success:client_credentials']);
      clock = start + 571_000;
      envelope(await c.call({ method: 'GET', path: '/whoami' }));
      expect(kinds(await newEvents())).toEqual(['token.request', 'grant.success:client_credentials', 'resource.ok']);
    } finally {
      clock = start;
    }
  });

  test('a 401 from the API fetches a new token once and retries', async () => {
    const c = client(cc('cc-post'));
    envelope(await c.call({ method: 'GET', path: '/whoami' }));
    await idp.revokeAll();
    await newEvents();
    expect(envelope(await c.call({ method: 'GET', path: '/whoami' }))).toMatchObject({ ok: true, status: 200 });
    expect(kinds(await newEvents())).toEqual(['resource.denied', 'token.request', 'grant.success:client_credentials', 'resource.ok']);
  });

  test('concurrent calls that all get 401 share one token refresh', async () => {
    const c = client(cc('cc-post'));
    envelope(await c.call({ method: 'GET', path: '/whoami' }));
    await idp.revokeAll();
    await newEvents();
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => c.call({ method: 'GET', path: '/whoami' })));
    expect(results.map((r) => envelope(r).status)).toEqual([200, 200, 200, 200, 200]);
    const events = kinds(await newEvents());
    expect(events.filter((k) => k === 'token.request')).toHaveLength(1);
    expect(events.filter((k) => k === 'resource.ok')).toHaveLength(5);
  });

  test('a pre-set access_token is used as is; when the API refuses it a real token is fetched', async () => {
    let obtained: OAuthTokens | undefined;
    const source = client(cc('cc-post'), (t) => (obtained = t));
    envelope(await source.call({ method: 'GET', path: '/whoami' }));
    expect(obtained?.access_token).toEqual(expect.any(String));
    expect(obtained?.expires_at).toBe(clock + 600_000);
    await newEvents();

    const preset = client(cc('cc-post', { access_token: obtained!.access_token }));
    expect(envelope(await preset.call({ method: 'GET', path: '/whoami' })).ok).toBe(true);
    expect(kinds(await newEvents())).toEqual(['resource.ok']);

    const stale = client(cc('cc-post', { access_token: 'not-a-live-token' }));
    expect(envelope(await stale.call({ method: 'GET', path: '/whoami' })).ok).toBe(true);
    expect(kinds(await newEvents())).toEqual(['resource.denied', 'token.request', 'grant.success:client_credentials', 'resource.ok']);
  });

  test('password grant: user credentials go to the token endpoint; the refresh token is used on expiry', async () => {
    const c = client({ type: 'oauth2_password', client_id: 'pw-client', client_secret: 'pw-client-secret', token_url: idp.tokenUrl, username: 'alice', password: 'alice-pw' });
    const start = clock;
    try {
      expect(envelope(await c.call({ method: 'GET', path: '/whoami' })).body).toMatchObject({ client_id: 'pw-client', sub: 'alice' });
      clock = start + 600_000;
      expect(envelope(await c.call({ method: 'GET', path: '/whoami' })).body).toMatchObject({ sub: 'alice' });
      expect(kinds(await newEvents()).filter((k) => k.startsWith('grant'))).toEqual(['grant.success:password', 'grant.success:refresh_token']);
    } finally {
      clock = start;
    }
  });

  test('password grant with a wrong password shows the token call', async () => {
    const c = client({ type: 'oauth2_password', client_id: 'pw-client', client_secret: 'pw-client-secret', token_url: idp.tokenUrl, username: 'alice', password: 'nope' });
    expect(await c.call({ method: 'GET', path: '/whoami' })).toMatchObject({
      ok: false,
      method: 'POST',
      url: idp.tokenUrl,
      status: 400,
      body: { error: 'invalid_grant' },
    });
  });

  test('authorization code: no call before authorization; the callback exchanges the code; refresh works', async () => {
    const c = client({
      type: 'oauth2_authorization_code',
      client_id: 'web-client',
      client_secret: 'web-client-secret',
      auth_method: 'client_secret_basic',
      token_url: idp.tokenUrl,
      authorization_url: `${idp.issuer}/auth`,
      redirect_uri: 'http://127.0.0.1/callback',
      scope: 'openid offline_access api:read',
    });
    expect(await c.call({ method: 'GET', path: '/whoami' })).toBe(
      `The integration did not have the information needed to make the API call: the authorization code flow has no token yet; an operator must authorize at ${idp.issuer}/auth`,
    );
    const authUrl = c.authorizationUrl('state-123');
    expect(authUrl).toContain(`${idp.issuer}/auth?response_type=code&client_id=web-client`);
    const callback = await idp.authorize(`${authUrl!}&prompt=consent`);
    expect(callback.get('state')).toBe('state-123');
    expect(await c.completeAuthorizationCode(callback.get('code')!)).toBeUndefined();
    expect(envelope(await c.call({ method: 'GET', path: '/whoami' })).body).toMatchObject({ client_id: 'web-client', sub: 'alice' });

    await idp.revokeAll();
    expect(envelope(await c.call({ method: 'GET', path: '/whoami' })).ok).toBe(true);
    expect(kinds(await newEvents()).filter((k) => k.startsWith('grant'))).toEqual(['grant.success:authorization_code', 'grant.success:refresh_token']);

    // A code can be used once: replaying it is the token endpoint's refusal.
    expect(await c.completeAuthorizationCode(callback.get('code')!)).toMatchObject({ ok: false, method: 'POST', url: idp.tokenUrl, status: 400, body: { error: 'invalid_grant' } });
  });

  test('OpenID Connect: the token endpoint comes from the discovery document', async () => {
    const c = client({ type: 'openid_connect', client_id: 'cc-post', client_secret: 'cc-post-secret', issuer: idp.issuer, scope: 'api:read' });
    expect(envelope(await c.call({ method: 'GET', path: '/whoami' })).body).toMatchObject({ client_id: 'cc-post' });
    expect(kinds(await newEvents())).toEqual(['token.request', 'grant.success:client_credentials', 'resource.ok']);
    const lines = mem.lines.filter((l) => l['message'] === 'integration auth request').map((l) => `${String(l['method'])} ${String(l['url'])}`);
    expect(lines).toEqual(expect.arrayContaining([`GET ${idp.issuer}/.well-known/openid-configuration`, `POST ${idp.issuer}/token`]));
  });

  test('OpenID Connect with an explicit discovery_url and client_secret_basic', async () => {
    const c = client({
      type: 'openid_connect',
      client_id: 'cc-basic',
      client_secret: 'cc-basic-secret',
      auth_method: 'client_secret_basic',
      discovery_url: `${idp.issuer}/.well-known/openid-configuration`,
    });
    expect(envelope(await c.call({ method: 'GET', path: '/whoami' })).body).toMatchObject({ client_id: 'cc-basic' });
    expect((await newEvents())[0]).toMatchObject({ kind: 'token.request', basic_auth: true });
  });

  test('an unreachable token endpoint is a string naming it', async () => {
    const port = await closedPort();
    const c = client(cc('cc-post', { token_url: `http://127.0.0.1:${port}/token` }));
    expect(await c.call({ method: 'GET', path: '/whoami' })).toEqual(
      expect.stringMatching(new RegExp(`^The API call could not be made: POST http://127.0.0.1:${port}/token: the server refused the connection`)),
    );
  });

  test('client secrets, passwords and tokens never reach the log', () => {
    const text = mem.text();
    expect(text).toContain('integration auth request');
    for (const secret of ['cc-post-secret', 'cc-basic-secret', 'alice-pw', 'web-client-secret']) expect(text).not.toContain(secret);
    expect(text).not.toMatch(/Bearer [A-Za-z0-9_-]{20,}/);
  });
});
