import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSealed, openSecret, secretPlace } from '../../adapter';
import { loadIntegration, openIntegrationSecrets, storeOAuthTokens } from '../../integration-model';
import { selectAssetTypeTeamsWebhookUrl } from '../../server/domain/notifications/teams-store';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { hubSignature, seedAssetType, snowPayload } from '../support/orders';
import { grepTables } from '../support/raw-storage';
import { startVaultServer, type VaultServer } from '../support/secret-backend-servers';

// Loopback servers, a proxy child process and a migrated app per file: slow to start on a loaded 2-core machine.
jest.setTimeout(90_000);

// POST /admin/secrets/migrate against the loopback Vault (KV v2, token auth): dry run, real run, rerun, and the
// service still working with the references it leaves.
describe(`POST /admin/secrets/migrate (${testEngine})`, () => {
  const MODEL_ID = 'Hello Inventory:1.0.0';
  const VAULT_TOKEN = `hvs.root-${randomBytes(8).toString('hex')}`;
  const value = (label: string) => `${label}-${randomBytes(10).toString('hex')}`;
  const SNOW_SECRET = value('snow-hmac-secret');
  const SMTP_PASSWORD = value('smtp-pw');
  const BASIC_PASSWORD = value('inventory-pw');
  const CLIENT_SECRET = value('oauth-client-secret');
  const ACCESS_TOKEN = value('access-token');
  const TEAMS_URL = `https://hooks.example.com/workflows/${value('teams')}`;
  const MIGRATED = [SNOW_SECRET, SMTP_PASSWORD, BASIC_PASSWORD, CLIENT_SECRET, TEAMS_URL];

  let t: TestApp;
  let vault: VaultServer;
  let inventory: LoopbackServer;
  let inventoryId: number;
  let oauthId: number;
  let teamsTypeId: number;
  const post = (path: string, body?: unknown) => t.http().post(path).set(t.admin).send(body as object);
  const put = (path: string, body: unknown) => t.http().put(path).set(t.admin).send(body as object);
  const migrate = (body?: unknown) => post('/admin/secrets/migrate', body);
  const auditRows = async () =>
    (await t.db.query<{ diff: { after: Record<string, unknown> }; triggered_by: string }>(`SELECT diff, triggered_by FROM audit_log WHERE entity = 'secrets' AND action = 'migrate' ORDER BY id`)).rows;

  beforeAll(async () => {
    vault = await startVaultServer({ staticTokens: [VAULT_TOKEN] });
    inventory = await startLoopbackServer((req, res) => {
      const ok = req.headers.authorization === `Basic ${Buffer.from(`svc-inventory:${BASIC_PASSWORD}`).toString('base64')}`;
      return ok ? sendJson(res, 200, { id: 7, name: 'lotus' }) : sendJson(res, 401, { error: 'unauthorised' });
    });
    t = await createTestApp();
    expect((await post('/admin/integration-models', { document: await readFile(join(__dirname, '..', 'fixtures', 'integration-models', 'hello-inventory.yaml'), 'utf8') })).status).toBe(201);

    expect((await put('/admin/settings/servicenow', { webhook_secret: SNOW_SECRET })).status).toBe(200);
    expect((await put('/admin/settings/smtp', { host: 'smtp.example.com', username: 'mailer', password: SMTP_PASSWORD })).status).toBe(200);
    const inv = await post('/admin/integrations', {
      name: 'inventory',
      model_id: MODEL_ID,
      config: { server: { protocol: 'http', host: '127.0.0.1', port: inventory.port, base_path: '/api' }, authentication: { type: 'basic', username: 'svc-inventory', password: BASIC_PASSWORD } },
    });
    expect(inv.status).toBe(201);
    inventoryId = inv.body.id as number;
    const oauth = await post('/admin/integrations', {
      name: 'oauth app',
      model_id: MODEL_ID,
      config: {
        server: { protocol: 'https', host: 'api.example.com' },
        authentication: { type: 'oauth2_client_credentials', client_id: 'cid', client_secret: CLIENT_SECRET, token_url: 'https://idp.example.com/token' },
      },
    });
    expect(oauth.status).toBe(201);
    oauthId = oauth.body.id as number;
    // Tokens the service obtained itself: they stay where they are.
    await t.db.transaction((tx) => storeOAuthTokens(tx, oauthId, { access_token: ACCESS_TOKEN, refresh_token: value('refresh'), expires_at: 4_000_000_000 }));
    const type = await post('/admin/asset-types', {
      name: 'Teams seat', assignment_model: 'personal', requires_approval: true, fallback_approver: 'boss@example.com',
      monthly_cost: 1, currency: 'EUR', attributes: [], teams_webhook_url: TEAMS_URL,
    });
    expect(type.status).toBe(201);
    teamsTypeId = type.body.id as number;
    await seedAssetType(t.db, { name: 'SaaS seat' });
  });
  afterAll(async () => {
    await t.close();
    await vault.close();
    await inventory.close();
  });

  test('without secret_backend.migrate_to: 409 naming the setting; CCP as the target: 409, it cannot be written', async () => {
    const none = await migrate({});
    expect(none.status).toBe(409);
    expect(none.body).toMatchObject({ code: 'CONFLICT', secret_backend_code: 'SECRET_BACKEND_NOT_CONFIGURED' });
    expect(none.body.detail).toContain('secret_backend.migrate_to');

    expect((await put('/admin/settings/secret_backend', { migrate_to: 'ccp' })).status).toBe(200);
    const ccp = await migrate({ dry_run: true });
    expect(ccp.status).toBe(409);
    expect(ccp.body).toMatchObject({ code: 'CONFLICT', secret_backend_code: 'SECRET_BACKEND_READ_ONLY' });
    expect(ccp.body.detail).toContain('CyberArk CCP only hands out credentials');
    expect(await auditRows()).toEqual([]);
  });

  test('a dry run reports what would move and changes nothing', async () => {
    expect(
      (await put('/admin/settings/secret_backend', { migrate_to: 'vault', vault_url: vault.url, vault_token: VAULT_TOKEN, vault_ca_cert_pem: vault.serverCa.certPem })).status,
    ).toBe(200);
    const before = (await t.db.query(`SELECT key, value FROM app_config ORDER BY key`)).rows;
    const res = await migrate({ dry_run: true });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      dry_run: true,
      target: 'vault',
      rows: [
        { kind: 'setting', name: 'servicenow.webhook_secret', action: 'would_migrate' },
        { kind: 'setting', name: 'smtp.password', action: 'would_migrate' },
        { kind: 'integration', name: 'integration:inventory:/authentication/password', action: 'would_migrate' },
        { kind: 'integration', name: 'integration:oauth app:/authentication/client_secret', action: 'would_migrate' },
        { kind: 'teams_webhook', name: `teams_webhook:${teamsTypeId}`, action: 'would_migrate' },
      ],
      totals: { migrated: 0, would_migrate: 5, already_reference: 0, failed: 0 },
    });
    expect((await t.db.query(`SELECT key, value FROM app_config ORDER BY key`)).rows).toEqual(before);
    expect(vault.kvRequests()).toEqual([]);
    expect(await auditRows()).toEqual([]);
  });

  test('a real run writes each value to Vault, reads it back, and leaves sealed references; audited without values', async () => {
    const res = await migrate();
    expect(res.status).toBe(200);
    expect(res.body.totals).toEqual({ migrated: 5, would_migrate: 0, already_reference: 0, failed: 0 });
    expect(res.body.rows).toEqual([
      { kind: 'setting', name: 'servicenow.webhook_secret', action: 'migrated', reference: 'vault://provisio/settings/servicenow/webhook_secret#value' },
      { kind: 'setting', name: 'smtp.password', action: 'migrated', reference: 'vault://provisio/settings/smtp/password#value' },
      { kind: 'integration', name: 'integration:inventory:/authentication/password', action: 'migrated', reference: 'vault://provisio/integrations/inventory/authentication/password#value' },
      {
        kind: 'integration',
        name: 'integration:oauth app:/authentication/client_secret',
        action: 'migrated',
        reference: 'vault://provisio/integrations/oauth-app/authentication/client_secret#value',
      },
      { kind: 'teams_webhook', name: `teams_webhook:${teamsTypeId}`, action: 'migrated', reference: `vault://provisio/teams-webhooks/${teamsTypeId}#value` },
    ]);
    expect(vault.latest('provisio/settings/smtp/password')).toEqual({ value: SMTP_PASSWORD });
    expect(vault.latest('provisio/integrations/inventory/authentication/password')).toEqual({ value: BASIC_PASSWORD });
    expect(vault.latest(`provisio/teams-webhooks/${teamsTypeId}`)).toEqual({ value: TEAMS_URL });

    // Stored: the references, sealed like any secret.
    const smtp = (await t.db.query<{ value: unknown }>(`SELECT value FROM app_config WHERE key = 'smtp.password'`)).rows[0]!.value;
    expect(isSealed(smtp)).toBe(true);
    expect(await openSecret(t.db, smtp, secretPlace.setting('smtp.password'))).toBe('vault://provisio/settings/smtp/password#value');
    const inventoryRecord = await loadIntegration(t.db, inventoryId);
    expect(await openIntegrationSecrets(t.db, inventoryRecord)).toEqual({ '/authentication/password': 'vault://provisio/integrations/inventory/authentication/password#value' });
    // The OAuth token set is the service's own: untouched.
    const oauthSecrets = await openIntegrationSecrets(t.db, await loadIntegration(t.db, oauthId));
    expect(oauthSecrets['/authentication/access_token']).toBe(ACCESS_TOKEN);

    const audit = await auditRows();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.triggered_by).toBe('admin:key');
    expect(audit[0]!.diff.after).toMatchObject({ target: 'vault', totals: { migrated: 5 } });
    const text = JSON.stringify(audit[0]);
    for (const v of MIGRATED) expect(text).not.toContain(v);
    expect(JSON.stringify(res.body)).not.toContain(SMTP_PASSWORD);
  });

  test('a rerun finds every row already a reference and writes nothing', async () => {
    const writes = vault.kvRequests().filter((r) => r.method !== 'GET').length;
    const res = await migrate({ dry_run: false });
    expect(res.status).toBe(200);
    expect(res.body.totals).toEqual({ migrated: 0, would_migrate: 0, already_reference: 5, failed: 0 });
    expect(res.body.rows.map((r: { action: string }) => r.action)).toEqual(Array(5).fill('already_reference'));
    expect(vault.kvRequests().filter((r) => r.method !== 'GET').length).toBe(writes);
  });

  test('a row the backend refuses fails, named, and keeps its value; the rows already moved are not touched', async () => {
    const GRAPH_STATE = value('graph-client-state');
    expect((await put('/admin/settings/hr', { graph_client_state: GRAPH_STATE })).status).toBe(200);
    expect((await put('/admin/settings/secret_backend', { vault_token: 'hvs.not-a-valid-token' })).status).toBe(200);
    const res = await migrate();
    expect(res.status).toBe(200);
    expect(res.body.totals).toEqual({ migrated: 0, would_migrate: 0, already_reference: 5, failed: 1 });
    const failed = res.body.rows.find((r: { action: string }) => r.action === 'failed');
    expect(failed).toEqual({
      kind: 'setting',
      name: 'hr.graph_client_state',
      action: 'failed',
      error: expect.stringMatching(/^writing vault secret provisio\/settings\/hr\/graph_client_state failed: .*403/),
    });
    expect(JSON.stringify(res.body)).not.toContain(GRAPH_STATE);
    const stored = (await t.db.query<{ value: unknown }>(`SELECT value FROM app_config WHERE key = 'hr.graph_client_state'`)).rows[0]!.value;
    expect(await openSecret(t.db, stored, secretPlace.setting('hr.graph_client_state'))).toBe(GRAPH_STATE);
    expect((await put('/admin/settings/secret_backend', { vault_token: VAULT_TOKEN })).status).toBe(200);
  });

  test('the service works with the migrated secrets: a signed webhook verifies, an integration call authenticates, the Teams URL resolves', async () => {
    const raw = JSON.stringify(snowPayload('SaaS seat'));
    const signed = await t.http().post('/webhook/servicenow').set('Content-Type', 'application/json').set('X-Hub-Signature-256', hubSignature(raw, SNOW_SECRET)).send(raw);
    expect(signed.status).toBe(201);
    const forged = await t.http().post('/webhook/servicenow').set('Content-Type', 'application/json').set('X-Hub-Signature-256', hubSignature(raw, 'not-the-secret-0000')).send(raw);
    expect(forged.status).toBe(401);

    const call = await post(`/admin/integrations/${inventoryId}/tasks/getItem/invoke`, { path: { id: 7 } });
    expect(call.body).toMatchObject({ ok: true, status: 200, body: { id: 7 } });
    expect(inventory.requests.at(-1)!.headers.authorization).toBe(`Basic ${Buffer.from(`svc-inventory:${BASIC_PASSWORD}`).toString('base64')}`);

    expect(await selectAssetTypeTeamsWebhookUrl(t.db, teamsTypeId)).toBe(TEAMS_URL);
  });

  test('no migrated value is anywhere in the database', async () => {
    expect(await grepTables(t.db, ['svc-inventory'])).not.toEqual([]);
    expect(await grepTables(t.db, MIGRATED)).toEqual([]);
  });
});
