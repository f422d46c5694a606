import type { Response } from 'supertest';
import { createIntegrationRuntime, loadIntegration, openIntegrationSecrets } from '../../integration-model';
import { createTestApp, type TestApp } from '../support/app';
import { createMemoryLogger } from '../support/memory-logger';
import { startOidcServer, type OidcServer } from '../support/oidc';

// A one-operation model of the provider's protected resource (GET /resource/whoami).
const MODEL = `openapi: 3.0.3
info: { title: OIDC Resource, version: 1.0.0 }
paths:
  /whoami:
    get:
      operationId: whoami
      responses:
        '200':
          description: Who the token belongs to.
          content:
            application/json:
              schema: { type: object }
`;
const MODEL_ID = 'OIDC Resource:1.0.0';

describe('integration OAuth 2.0 authorization-code flow', () => {
  let t: TestApp;
  let idp: OidcServer;
  let integrationId = 0;
  const bodies: string[] = [];

  function record(res: Response): Response {
    bodies.push(res.text ?? '');
    return res;
  }
  const get = async (path: string, headers: Record<string, string> = t.admin) => record(await t.http().get(path).set(headers));
  const callback = async (params: URLSearchParams) => record(await t.http().get(`/oauth/callback?${params.toString()}`));
  // The stored secrets, opened (they are stored sealed: secrets at rest).
  const secretsOf = async (id: number) =>
    openIntegrationSecrets(t.db, { id, secrets: (await t.db.query<{ secrets: Record<string, unknown> }>('SELECT secrets FROM integrations WHERE id = $1', [id])).rows[0]!.secrets });

  /** The provider URL the app redirects an operator to. */
  async function authorizationUrl(id = integrationId): Promise<string> {
    const res = await get(`/admin/integrations/${id}/oauth/authorize`);
    expect(res.status).toBe(302);
    return res.headers['location'] as string;
  }

  beforeAll(async () => {
    idp = await startOidcServer();
    t = await createTestApp();
    expect((await t.http().post('/admin/integration-models').set(t.admin).send({ document: MODEL })).status).toBe(201);
    const res = await t
      .http()
      .post('/admin/integrations')
      .set(t.admin)
      .send({
        name: 'idp-resource',
        model_id: MODEL_ID,
        config: {
          server: { host: '127.0.0.1', port: Number(new URL(idp.issuer).port), base_path: '/resource' },
          authentication: {
            type: 'oauth2_authorization_code',
            client_id: 'web-client',
            client_secret: 'web-client-secret',
            auth_method: 'client_secret_basic',
            token_url: idp.tokenUrl,
            authorization_url: `${idp.issuer}/auth`,
            // The redirect URI registered at the provider; the test carries the redirect to /oauth/callback itself.
            redirect_uri: 'http://127.0.0.1/callback',
            scope: 'openid offline_access api:read',
          },
          timeout: 5000,
        },
      });
    expect(res.status).toBe(201);
    integrationId = res.body.id as number;
    // It starts the OIDC provider in a child process and builds the app: minutes on a loaded machine, not a hang.
  }, 120_000);
  afterAll(async () => {
    await t.close();
    await idp.stop();
  });

  test('authorize answers a redirect to the provider, or the URL as JSON for Swagger UI', async () => {
    const location = await authorizationUrl();
    const url = new URL(location);
    expect(`${url.origin}${url.pathname}`).toBe(`${idp.issuer}/auth`);
    expect(url.searchParams.get('client_id')).toBe('web-client');
    expect(url.searchParams.get('redirect_uri')).toBe('http://127.0.0.1/callback');
    expect(url.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const json = await t.http().get(`/admin/integrations/${integrationId}/oauth/authorize`).set(t.admin).set('Accept', 'application/json');
    expect(json.status).toBe(200);
    expect(Object.keys(json.body as object)).toEqual(['authorization_url']);
    const state = new URL(json.body.authorization_url as string).searchParams.get('state');
    expect(state).not.toBe(url.searchParams.get('state'));

    // Stored hashed, bound to the integration, ten minutes.
    const { rows } = await t.db.query<{ state_hash: string; integration_id: number; ttl: number }>(
      `SELECT state_hash, integration_id::int AS integration_id, extract(epoch FROM expires_at - created_at)::int AS ttl FROM oauth_states`,
    );
    expect(rows.map((r) => r.state_hash)).not.toContain(state);
    expect(rows.every((r) => r.integration_id === integrationId && r.ttl === 600)).toBe(true);
  });

  test('authorize needs an admin and an integration using the authorization-code flow', async () => {
    expect((await t.http().get(`/admin/integrations/${integrationId}/oauth/authorize`)).status).toBe(401);
    expect((await get('/admin/integrations/999999/oauth/authorize')).status).toBe(404);
    const other = await t
      .http()
      .post('/admin/integrations')
      .set(t.admin)
      .send({ name: 'idp-bearer', model_id: MODEL_ID, config: { server: { host: '127.0.0.1', port: 1 }, authentication: { type: 'bearer', token: 'bearer-Xy77' } } });
    expect(other.status).toBe(201);
    const res = await get(`/admin/integrations/${other.body.id as number}/oauth/authorize`);
    expect(res.status).toBe(409);
    expect(res.body.detail).toContain('authorization-code');
  });

  describe('after the operator authorizes at the provider', () => {
    let params: URLSearchParams;
    let tokens: { access: string; refresh: string };

    beforeAll(async () => {
      params = await idp.authorize(`${await authorizationUrl()}&prompt=consent`);
      expect(params.get('code')).toBeTruthy();
    });

    test('the callback stores the tokens as secrets and answers none of them', async () => {
      const started = Date.now();
      const res = await callback(params);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ integration_id: integrationId, integration_name: 'idp-resource', authorized: true, expires_at: expect.any(String) });
      expect(Date.parse(res.body.expires_at as string)).toBeGreaterThan(started + 500_000);

      const secrets = await secretsOf(integrationId);
      expect(secrets).toMatchObject({
        '/authentication/client_secret': 'web-client-secret',
        '/authentication/access_token': expect.any(String),
        '/authentication/refresh_token': expect.any(String),
        '/authentication/expires_at': Date.parse(res.body.expires_at as string),
      });
      tokens = { access: secrets['/authentication/access_token'] as string, refresh: secrets['/authentication/refresh_token'] as string };

      const read = await get(`/admin/integrations/${integrationId}`);
      expect(read.status).toBe(200);
      expect(read.body.config.authentication).toMatchObject({ access_token: '[redacted]', refresh_token: '[redacted]', expires_at: '[redacted]' });
      await get('/admin/integrations');

      const audit = await t.db.query<{ action: string; diff: unknown; triggered_by: string }>(
        `SELECT action, diff, triggered_by FROM audit_log WHERE entity = 'integration' AND entity_id = $1 ORDER BY id`,
        [String(integrationId)],
      );
      const authorized = audit.rows.find((r) => r.action === 'oauth_authorized');
      expect(authorized).toMatchObject({ triggered_by: 'admin:key', diff: { after: { expires_at: res.body.expires_at, refreshable: true } } });
      expect(audit.rows.map((r) => r.action)).toContain('oauth_authorization_started');
      const auditText = JSON.stringify(audit.rows);
      expect(auditText).not.toContain(tokens.access);
      expect(auditText).not.toContain(tokens.refresh);
      for (const body of bodies) {
        expect(body).not.toContain(tokens.access);
        expect(body).not.toContain(tokens.refresh);
      }
    });

    test('a task of the protected model runs with the stored tokens, here and in another process', async () => {
      const res = await t.http().post(`/admin/integrations/${integrationId}/tasks/whoami/invoke`).set(t.admin).send({});
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ ok: true, status: 200, body: { client_id: 'web-client', sub: 'alice' } });

      // A fresh runtime, as after a restart or in another process, builds its client from the stored secrets.
      const fresh = createIntegrationRuntime({ db: t.db, logger: createMemoryLogger().logger });
      try {
        const result = await fresh.invoke(await loadIntegration(t.db, integrationId), 'whoami', {});
        expect(result).toMatchObject({ ok: true, body: { client_id: 'web-client', sub: 'alice' } });
      } finally {
        fresh.close();
      }
    });

    test('tokens refreshed after a 401 are persisted too', async () => {
      await idp.revokeAll();
      const res = await t.http().post(`/admin/integrations/${integrationId}/tasks/whoami/invoke`).set(t.admin).send({});
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ ok: true, body: { sub: 'alice' } });
      let secrets = await secretsOf(integrationId);
      for (let i = 0; i < 50 && secrets['/authentication/access_token'] === tokens.access; i++) {
        await new Promise((r) => setTimeout(r, 50));
        secrets = await secretsOf(integrationId);
      }
      expect(secrets['/authentication/access_token']).not.toBe(tokens.access);
      expect(secrets['/authentication/refresh_token']).toEqual(expect.any(String));
    });

    test('a state is used once: replaying the callback is a 400 and changes nothing', async () => {
      const before = await secretsOf(integrationId);
      const res = await callback(params);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ status: 400, detail: expect.stringContaining('unknown or was already used') });
      expect(await secretsOf(integrationId)).toEqual(before);
    });
  });

  test('an unknown state is a 400', async () => {
    const res = await callback(new URLSearchParams({ code: 'whatever', state: 'not-a-state-we-issued' }));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ status: 400, detail: expect.stringContaining('unknown or was already used') });
  });

  test('an expired state is a 400 and is consumed', async () => {
    const state = new URL(await authorizationUrl()).searchParams.get('state')!;
    await t.db.query(`UPDATE oauth_states SET expires_at = now() - interval '1 second'`);
    const res = await callback(new URLSearchParams({ code: 'whatever', state }));
    expect(res.status).toBe(400);
    expect(res.body.detail).toContain('expired');
    expect((await callback(new URLSearchParams({ code: 'whatever', state }))).body.detail).toContain('unknown or was already used');
  });

  test("the provider's error is a 400 naming it, and nothing is stored", async () => {
    const before = await secretsOf(integrationId);
    // No session at the provider and no prompt allowed: it redirects back with login_required.
    const params = await idp.authorize(`${await authorizationUrl()}&prompt=none`);
    expect(params.get('error')).toBe('login_required');
    const res = await callback(params);
    expect(res.status).toBe(400);
    expect(res.body.detail).toContain("error 'login_required'");
    expect(await secretsOf(integrationId)).toEqual(before);
    // The state went with it.
    expect((await callback(params)).body.detail).toContain('unknown or was already used');
  });

  test('a code the token endpoint refuses is a 400 and stores nothing', async () => {
    const before = await secretsOf(integrationId);
    const state = new URL(await authorizationUrl()).searchParams.get('state')!;
    const res = await callback(new URLSearchParams({ code: 'forged-code', state }));
    expect(res.status).toBe(400);
    expect(res.body.detail).toBe(`the code exchange failed: POST ${idp.tokenUrl} answered 400 (invalid_grant)`);
    expect(await secretsOf(integrationId)).toEqual(before);
  });
});
