/**
 * External secret backends end to end: settings secrets and integration secrets holding references
 * (`vault://…`, `conjur://…`, `azurekv://…`) resolved at read time through loopback HTTPS servers implementing
 * Vault's KV v2 and auth API, Conjur's authn and variables API and Azure's v2.0 token and Key Vault 7.4 secrets API
 * (tests/support/secret-backend-servers.ts), reached over verified TLS with the `*_ca_cert_pem` keys; the resolver's
 * cache (hits, expiry, single flight, remembered failures), login token renewal, and the 422s for malformed
 * references, on PGlite or PostgreSQL.
 *
 * The resolver's clock is a fake one the tests move: TTLs and token leases pass without waiting.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { clearSecretCache, configureSecretResolver, createSecretBackends, forgetAzureTokens, forgetConjurTokens, forgetVaultLogins, resolveSecretReference } from '../../adapter/secrets';
import { projectPath } from '../../adapter';
import { readSetting } from '../../server/domain/settings/settings';
import type { GraphWorkflowDocument, WebhookTask } from '../../workflows/document';
import { createIntegrationExecutor, createWebhookExecutor } from '../../workflows/executors';
import { renderValue } from '../../workflows/templating';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { compiledTask, stepContext } from '../support/executors';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { startAzureServer, startConjurServer, startVaultServer, type AzureServer, type ConjurServer, type VaultServer } from '../support/secret-backend-servers';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server';

jest.setTimeout(60_000);

const VAULT_TOKEN = 'hvs.static-root-token-for-tests';
const APPROLE = { roleId: 'role-1234', secretId: 'approle-secret-id-5678' };
const K8S = { role: 'provisio', jwt: 'eyJhbGciOiJSUzI1NiJ9.k8s-service-account.sig' };
const CONJUR = { account: 'acme', login: 'host/provisio/app', apiKey: 'conjur-api-key-3x9v2' };
const AZURE = { tenantId: 'tenant-0001', clientId: 'client-0001', clientSecret: 'azure-client-secret~42' };

// Values held only by the backends; none may reach a log line, a response or the database.
const SMTP_PASSWORDS = { vault: 'smtp-from-vault-P4ss', conjur: 'smtp-from-conjur-P4ss', azurekv: 'smtp-from-azure-P4ss' };
const API_PASSWORDS = { vault: 'api-from-vault-S3cret', conjur: 'api-from-conjur-S3cret', azurekv: 'api-from-azure-S3cret' };

const MODEL = {
  openapi: '3.0.3',
  info: { title: 'Secret Lab', version: '1.0.0' },
  paths: { '/whoami': { get: { operationId: 'whoami', responses: { '200': { description: 'who you are' } } } } },
};

describe(`external secret backends (${testEngine})`, () => {
  let t: TestApp;
  let vault: VaultServer;
  let conjur: ConjurServer;
  let azure: AzureServer;
  let smtp: TestSmtpServer;
  let api: LoopbackServer;
  let mem: MemoryLogger;
  let clock = Date.now();
  /** What the API server accepts as Basic credentials (user `svc`). */
  let apiPassword = '';
  const tick = (ms: number) => (clock += ms);

  async function putSettings(section: string, values: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await t.http().put(`/admin/settings/${section}`).set(t.admin).send(values);
    return { status: res.status, body: res.body as Record<string, unknown> };
  }

  async function createIntegration(name: string, password: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await t
      .http()
      .post('/admin/integrations')
      .set(t.admin)
      .send({
        name,
        model_id: 'Secret Lab:1.0.0',
        config: { server: { protocol: 'http', host: '127.0.0.1', port: api.port }, authentication: { type: 'basic', username: 'svc', password } },
      });
    return { status: res.status, body: res.body as Record<string, unknown> };
  }

  const invoke = (id: number) => t.http().post(`/admin/integrations/${id}/tasks/whoami/invoke`).set(t.admin).send({});

  beforeAll(async () => {
    mem = createMemoryLogger();
    configureSecretResolver({ logger: mem.logger, now: () => clock });
    t = await createTestApp();
    vault = await startVaultServer({ staticTokens: [VAULT_TOKEN], approle: APPROLE, kubernetes: K8S, leaseDuration: 600, namespace: 'team-a' });
    conjur = await startConjurServer(CONJUR);
    azure = await startAzureServer(AZURE);
    smtp = await startSmtpServer({ tls: 'starttls', auth: { user: 'provisio', pass: SMTP_PASSWORDS.vault } });
    api = await startLoopbackServer((req, res) => {
      const expected = `Basic ${Buffer.from(`svc:${apiPassword}`).toString('base64')}`;
      if (req.headers['authorization'] !== expected) return sendJson(res, 401, { error: 'bad credentials' });
      return sendJson(res, 200, { user: 'svc' });
    });
    const model = await t.http().post('/admin/integration-models').set(t.admin).send(MODEL);
    expect(model.status).toBe(201);

    vault.put('provisio/smtp', { password: SMTP_PASSWORDS.vault, note: 'two fields' });
    vault.put('provisio/api', { value: API_PASSWORDS.vault });
    conjur.declare('provisio/smtp/password', SMTP_PASSWORDS.conjur);
    conjur.declare('provisio/api', JSON.stringify({ password: API_PASSWORDS.conjur, user: 'svc' }));
    azure.setSecret('corp-kv-01', 'smtp-password', SMTP_PASSWORDS.azurekv);
    azure.setSecret('corp-kv-01', 'api-password', API_PASSWORDS.azurekv);

    const saved = await putSettings('secret_backend', {
      vault_url: vault.url,
      vault_namespace: 'team-a',
      vault_auth: 'token',
      vault_token: VAULT_TOKEN,
      vault_ca_cert_pem: vault.serverCa.certPem,
      conjur_url: conjur.url,
      conjur_account: CONJUR.account,
      conjur_login: CONJUR.login,
      conjur_api_key: CONJUR.apiKey,
      conjur_ca_cert_pem: conjur.serverCa.certPem,
      azure_tenant_id: AZURE.tenantId,
      azure_client_id: AZURE.clientId,
      azure_client_secret: AZURE.clientSecret,
      azure_authority_url: azure.authorityUrl,
      azure_vault_url_template: azure.vaultUrlTemplate,
      azure_ca_cert_pem: azure.serverCa.certPem,
    });
    expect(saved.status).toBe(200);
    expect(saved.body['secrets']).toMatchObject({ vault_token: { configured: true }, conjur_api_key: { configured: true }, azure_client_secret: { configured: true } });
  });

  afterAll(async () => {
    await smtp?.stop();
    await Promise.all([vault?.close(), conjur?.close(), azure?.close(), api?.close()]);
    await t?.close();
    configureSecretResolver({});
  });

  beforeEach(() => {
    clearSecretCache();
    tick(3_600_000);
  });

  describe('settings secrets', () => {
    test.each([
      ['vault', 'vault://provisio/smtp#password'],
      ['conjur', 'conjur://provisio/smtp/password'],
      ['azurekv', 'azurekv://corp-kv-01/smtp-password'],
    ] as const)('%s: smtp.password as a reference sends the test mail with the value it names', async (backend, reference) => {
      smtp.setCredentials({ user: 'provisio', pass: SMTP_PASSWORDS[backend] });
      expect((await putSettings('smtp', smtp.settings({ password: reference }))).status).toBe(200);
      const res = await t.http().post('/admin/settings/smtp/test').set(t.admin).send({ to: 'it-ops@example.com' });
      expect({ status: res.status, body: res.status === 200 ? null : res.body }).toEqual({ status: 200, body: null });
      const mail = await smtp.waitForMail((m) => m.envelope.to.includes('it-ops@example.com') && m.user === 'provisio');
      expect(mail.secure).toBe(true);
      smtp.clear();
      // The stored row is the reference, sealed like any secret: neither the value nor the reference in clear.
      const row = await t.db.query<{ value: unknown }>(`SELECT value FROM app_config WHERE key = 'smtp.password'`);
      expect(JSON.stringify(row.rows[0]!.value)).not.toContain(SMTP_PASSWORDS[backend]);
      expect(JSON.stringify(row.rows[0]!.value)).not.toContain(reference);
    });

    test('a reference that cannot be resolved fails the use with a problem naming the reference, never a value', async () => {
      expect((await putSettings('smtp', smtp.settings({ password: 'vault://provisio/nowhere#password' }))).status).toBe(200);
      const res = await t.http().post('/admin/settings/smtp/test').set(t.admin).send({ to: 'it-ops@example.com' });
      expect(res.status).toBe(502);
      expect(res.body).toMatchObject({ code: 'INTEGRATION_CALL_FAILED', secret_backend_code: 'SECRET_NOT_FOUND', reference: 'vault://provisio/nowhere#password' });
      expect(res.body.detail).toContain('vault://provisio/nowhere#password');
      expect(res.body.detail).toContain('HTTP 404');
    });
  });

  test('a webhook signing secret held in Vault signs the delivery; while it cannot be read the step fails retryably naming it', async () => {
    const sample = JSON.parse(readFileSync(projectPath('workflows', 'definitions', 'saas-seat-provision.json'), 'utf8')) as GraphWorkflowDocument;
    const task = { ...(sample.tasks['provision_seat'] as WebhookTask), url: `${api.url}/hooks/provision` };
    const receiver = await startLoopbackServer((_req, res) => sendJson(res, 200, { response: 'PROVISIONED_USER' }));
    try {
      task.url = `${receiver.url}/hooks/provision`;
      const reference = 'vault://provisio/webhook#secret';
      expect((await putSettings('webhooks', { saas_seat_secret: reference })).status).toBe(200);
      // As the workflow runtime resolves it (server/domain/runbooks/workflow-runtime.ts): through readSetting.
      const executor = createWebhookExecutor({
        logger: mem.logger,
        resolveSecret: async (ref) => (await readSetting(t.db, 'webhooks', ref.slice('webhooks.'.length))) as string | undefined,
      });
      const vars = { order: { id: 'ord-1', username: 'pparker', user_email: 'peterparker@example.com', source: 'portal' }, inputs: { appId: 'a', appLabel: 'A', permission: 'p' } };
      const run = () => executor(compiledTask(task, { id: 'provision_seat' }), renderValue(task.incoming, vars) as Record<string, unknown>, stepContext({ variables: vars, now: () => 1_800_000_000_000 }));

      const failed = await run();
      expect(failed).toMatchObject({ ok: false, error: { code: 'NETWORK', retryable: true, message: expect.stringContaining(reference) } });
      expect(receiver.requests).toHaveLength(0);

      vault.put('provisio/webhook', { secret: 'whsec-from-vault-99' });
      tick(10_001);
      expect(await run()).toMatchObject({ ok: true });
      const req = receiver.requests[0]!;
      const expected = `sha256=${createHmac('sha256', 'whsec-from-vault-99').update(`${req.headers['x-provisio-timestamp'] as string}.${req.body}`).digest('hex')}`;
      expect(req.headers['x-provisio-signature']).toBe(expected);
    } finally {
      await putSettings('webhooks', { saas_seat_secret: null });
      await receiver.close();
    }
  });

  describe('integration secrets', () => {
    test.each([
      ['vault', 'vault://provisio/api'],
      ['conjur', 'conjur://provisio/api#password'],
      ['azurekv', 'azurekv://corp-kv-01/api-password'],
    ] as const)('%s: the Basic password of an integration is read from the backend for a real call', async (backend, reference) => {
      apiPassword = API_PASSWORDS[backend];
      const created = await createIntegration(`lab-${backend}`, reference);
      expect(created.status).toBe(201);
      const res = await invoke(created.body['id'] as number);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ ok: true, status: 200, body: { user: 'svc' } });
      // The API answers the reference as redacted, like any secret.
      const view = await t.http().get(`/admin/integrations/${created.body['id'] as number}`).set(t.admin);
      expect(view.body.config.authentication.password).toBe('[redacted]');
    });

    test('a rotated value rebuilds the client after the TTL; within it, calls cost no backend request', async () => {
      apiPassword = 'rotating-v1-Pw';
      vault.put('provisio/rotating', { value: 'rotating-v1-Pw' });
      const created = await createIntegration('lab-rotating', 'vault://provisio/rotating');
      const id = created.body['id'] as number;
      expect((await invoke(id)).body).toMatchObject({ ok: true });
      const reads = vault.kvRequests().length;
      for (let i = 0; i < 3; i++) expect((await invoke(id)).body).toMatchObject({ ok: true });
      expect(vault.kvRequests().length).toBe(reads);

      // The backend rotates the secret: the old value still serves until the TTL lapses, then the new one is used.
      vault.put('provisio/rotating', { value: 'rotating-v2-Pw' });
      apiPassword = 'rotating-v2-Pw';
      tick(61_000);
      expect((await invoke(id)).body).toMatchObject({ ok: true, status: 200 });
      expect(vault.kvRequests().length).toBe(reads + 1);
    });

    test('bad input: a step whose password names a missing path fails naming the reference; after the negative TTL, once the secret exists, the same call succeeds', async () => {
      expect((await putSettings('secret_backend', { negative_ttl_seconds: 1 })).status).toBe(200);
      apiPassword = 'late-arriving-Pw';
      const reference = 'vault://provisio/late#password';
      const created = await createIntegration('lab-late', reference);
      expect(created.status).toBe(201);
      const executor = createIntegrationExecutor({ integrations: t.integrations });
      const step = compiledTask({ kind: 'integration', operation: 'lab-late/whoami' });

      const failed = await executor(step, {}, stepContext());
      expect(failed.ok).toBe(false);
      const message = JSON.stringify(failed);
      expect(message).toContain(reference);
      expect(message).not.toContain('late-arriving-Pw');

      // Within the negative TTL the failure is remembered: no new request, even with the secret now there.
      vault.put('provisio/late', { password: 'late-arriving-Pw' });
      const before = vault.kvRequests().length;
      expect((await executor(step, {}, stepContext())).ok).toBe(false);
      expect(vault.kvRequests().length).toBe(before);

      tick(1_001);
      const ok = await executor(step, {}, stepContext());
      expect(ok).toMatchObject({ ok: true, output: { ok: true, status: 200 } });
      expect(vault.kvRequests().length).toBe(before + 1);
      expect((await putSettings('secret_backend', { negative_ttl_seconds: null })).status).toBe(200);
    });

    test('an unreachable backend fails the call with a 502 naming the reference and the transport reason', async () => {
      const created = await createIntegration('lab-unreachable', 'conjur://provisio/api#password');
      await conjur.close();
      try {
        forgetConjurTokens();
        const res = await invoke(created.body['id'] as number);
        expect(res.status).toBe(502);
        expect(res.body.detail).toContain('conjur://provisio/api#password');
        expect(res.body.detail).toMatch(/could not be reached/);
      } finally {
        conjur = await restartConjur();
      }
    });
  });

  /** A new Conjur server (the old one was closed) with the same variables, and the settings pointed at it. */
  async function restartConjur(): Promise<ConjurServer> {
    const fresh = await startConjurServer(CONJUR);
    fresh.declare('provisio/smtp/password', SMTP_PASSWORDS.conjur);
    fresh.declare('provisio/api', JSON.stringify({ password: API_PASSWORDS.conjur, user: 'svc' }));
    await putSettings('secret_backend', { conjur_url: fresh.url, conjur_ca_cert_pem: fresh.serverCa.certPem });
    return fresh;
  }

  describe('the cache', () => {
    test('a second read within the TTL asks nothing; after the TTL the backend is asked again', async () => {
      const before = vault.kvRequests().length;
      expect(await resolveSecretReference(t.db, 'vault://provisio/smtp#password')).toBe(SMTP_PASSWORDS.vault);
      expect(await resolveSecretReference(t.db, 'vault://provisio/smtp#password')).toBe(SMTP_PASSWORDS.vault);
      tick(59_000);
      expect(await resolveSecretReference(t.db, 'vault://provisio/smtp#password')).toBe(SMTP_PASSWORDS.vault);
      expect(vault.kvRequests().length).toBe(before + 1);
      tick(2_000);
      expect(await resolveSecretReference(t.db, 'vault://provisio/smtp#password')).toBe(SMTP_PASSWORDS.vault);
      expect(vault.kvRequests().length).toBe(before + 2);
    });

    test('cache_ttl_seconds sets the TTL', async () => {
      expect((await putSettings('secret_backend', { cache_ttl_seconds: 5 })).status).toBe(200);
      const before = vault.kvRequests().length;
      await resolveSecretReference(t.db, 'vault://provisio/smtp#note');
      tick(4_000);
      await resolveSecretReference(t.db, 'vault://provisio/smtp#note');
      expect(vault.kvRequests().length).toBe(before + 1);
      tick(1_500);
      await resolveSecretReference(t.db, 'vault://provisio/smtp#note');
      expect(vault.kvRequests().length).toBe(before + 2);
      expect((await putSettings('secret_backend', { cache_ttl_seconds: null })).status).toBe(200);
    });

    test('concurrent misses of one reference share one fetch', async () => {
      const before = azure.secretRequests().length;
      const values = await Promise.all(Array.from({ length: 8 }, () => resolveSecretReference(t.db, 'azurekv://corp-kv-01/smtp-password')));
      expect(new Set(values)).toEqual(new Set([SMTP_PASSWORDS.azurekv]));
      expect(azure.secretRequests().length).toBe(before + 1);
    });

    test('a failure is remembered for the negative TTL (10 s by default), then retried', async () => {
      const ref = 'azurekv://corp-kv-01/not-yet-there';
      const before = azure.secretRequests().length;
      await expect(resolveSecretReference(t.db, ref)).rejects.toThrow(/azurekv:\/\/corp-kv-01\/not-yet-there: .*HTTP 404 \(SecretNotFound: A secret with/);
      tick(9_000);
      await expect(resolveSecretReference(t.db, ref)).rejects.toMatchObject({ code: 'SECRET_NOT_FOUND', reference: ref });
      expect(azure.secretRequests().length).toBe(before + 1);
      azure.setSecret('corp-kv-01', 'not-yet-there', 'arrived-Val');
      tick(1_500);
      expect(await resolveSecretReference(t.db, ref)).toBe('arrived-Val');
      expect(azure.secretRequests().length).toBe(before + 2);
    });
  });

  describe('backend specifics', () => {
    test('Vault: the namespace header is sent; a field that is missing, a KV path that is missing, a bad token', async () => {
      await resolveSecretReference(t.db, 'vault://provisio/smtp#password');
      expect(vault.kvRequests().at(-1)!.headers['x-vault-namespace']).toBe('team-a');
      await expect(resolveSecretReference(t.db, 'vault://provisio/smtp#nope')).rejects.toThrow("vault://provisio/smtp#nope: the secret has no field 'nope'");
      // Two fields and none named: the whole secret as JSON text.
      expect(JSON.parse(await resolveSecretReference(t.db, 'vault://provisio/smtp'))).toEqual({ password: SMTP_PASSWORDS.vault, note: 'two fields' });
      expect((await putSettings('secret_backend', { vault_token: 'hvs.wrong' })).status).toBe(200);
      await expect(resolveSecretReference(t.db, 'vault://provisio/api')).rejects.toMatchObject({
        code: 'SECRET_BACKEND_AUTH_FAILED',
        message: 'vault://provisio/api: reading the secret from Vault failed: HTTP 403 (permission denied)',
      });
      expect((await putSettings('secret_backend', { vault_token: VAULT_TOKEN })).status).toBe(200);
    });

    test('Vault AppRole: one login serves reads until 80% of its lease; then a new login; a 403 with a login token logs in once more', async () => {
      forgetVaultLogins();
      expect((await putSettings('secret_backend', { vault_auth: 'approle', vault_role_id: APPROLE.roleId, vault_secret_id: APPROLE.secretId })).status).toBe(200);
      try {
        const logins = vault.logins().length;
        expect(await resolveSecretReference(t.db, 'vault://provisio/api')).toBe(API_PASSWORDS.vault);
        expect(JSON.parse(vault.logins().at(-1)!.body)).toEqual({ role_id: APPROLE.roleId, secret_id: APPROLE.secretId });
        tick(61_000); // past the value's TTL, well within the 600 s lease
        expect(await resolveSecretReference(t.db, 'vault://provisio/api')).toBe(API_PASSWORDS.vault);
        expect(vault.logins().length).toBe(logins + 1);
        tick(480_000); // past 80% of the lease
        expect(await resolveSecretReference(t.db, 'vault://provisio/api')).toBe(API_PASSWORDS.vault);
        expect(vault.logins().length).toBe(logins + 2);

        vault.revokeLoginTokens();
        tick(61_000);
        expect(await resolveSecretReference(t.db, 'vault://provisio/api')).toBe(API_PASSWORDS.vault);
        expect(vault.logins().length).toBe(logins + 3);

        expect((await putSettings('secret_backend', { vault_secret_id: 'wrong-secret-id' })).status).toBe(200);
        await expect(resolveSecretReference(t.db, 'vault://provisio/api')).rejects.toMatchObject({
          code: 'SECRET_BACKEND_AUTH_FAILED',
          message: 'vault://provisio/api: the Vault approle login was refused: HTTP 400 (invalid role or secret ID)',
        });
      } finally {
        await putSettings('secret_backend', { vault_auth: 'token', vault_role_id: null, vault_secret_id: null });
      }
    });

    test('Vault Kubernetes: the JWT is read from its file and sent with the role', async () => {
      forgetVaultLogins();
      const dir = mkdtempSync(path.join(tmpdir(), 'provisio-k8s-'));
      const jwtPath = path.join(dir, 'token');
      writeFileSync(jwtPath, `${K8S.jwt}\n`);
      expect((await putSettings('secret_backend', { vault_auth: 'kubernetes', vault_kubernetes_role: K8S.role, vault_kubernetes_jwt_path: jwtPath })).status).toBe(200);
      try {
        expect(await resolveSecretReference(t.db, 'vault://provisio/api')).toBe(API_PASSWORDS.vault);
        expect(JSON.parse(vault.logins().at(-1)!.body)).toEqual({ role: K8S.role, jwt: K8S.jwt });
        await putSettings('secret_backend', { vault_kubernetes_jwt_path: path.join(dir, 'missing') });
        forgetVaultLogins();
        await expect(resolveSecretReference(t.db, 'vault://provisio/smtp#password')).rejects.toMatchObject({ code: 'SECRET_BACKEND_NOT_CONFIGURED' });
      } finally {
        await putSettings('secret_backend', { vault_auth: 'token', vault_kubernetes_role: null, vault_kubernetes_jwt_path: null });
      }
    });

    test('Vault write (for the migration): a new KV version, read back through the reference it answers', async () => {
      const backend = createSecretBackends({ now: () => clock }).get('vault')!;
      const settings = { vault_url: vault.url, vault_namespace: 'team-a', vault_token: VAULT_TOKEN, vault_ca_cert_pem: vault.serverCa.certPem };
      const ref = await backend.write!('provisio/settings/smtp/password', 'migrated-Val', settings);
      expect(ref).toEqual({ scheme: 'vault', raw: 'vault://provisio/settings/smtp/password#value', path: 'provisio/settings/smtp/password', field: 'value' });
      expect(vault.latest('provisio/settings/smtp/password')).toEqual({ value: 'migrated-Val' });
      expect(await resolveSecretReference(t.db, ref.raw)).toBe('migrated-Val');
    });

    test('Conjur: one authn per 7 minutes, the token sent base64-encoded; write needs a declared variable', async () => {
      forgetConjurTokens();
      const authn = conjur.authnRequests().length;
      expect(await resolveSecretReference(t.db, 'conjur://provisio/smtp/password')).toBe(SMTP_PASSWORDS.conjur);
      expect(await resolveSecretReference(t.db, 'conjur://provisio/api#user')).toBe('svc');
      expect(conjur.authnRequests().length).toBe(authn + 1);
      expect(conjur.authnRequests().at(-1)!.body).toBe(CONJUR.apiKey);
      expect(conjur.authnRequests().at(-1)!.url).toBe(`/authn/acme/${encodeURIComponent(CONJUR.login)}/authenticate`);
      expect(conjur.variableRequests().at(-1)!.url).toBe(`/secrets/acme/variable/${encodeURIComponent('provisio/api')}`);
      tick(7 * 60_000 + 1);
      expect(await resolveSecretReference(t.db, 'conjur://provisio/api#password')).toBe(API_PASSWORDS.conjur);
      expect(conjur.authnRequests().length).toBe(authn + 2);

      const backend = createSecretBackends({ now: () => clock }).get('conjur')!;
      const settings = { conjur_url: conjur.url, conjur_account: 'acme', conjur_login: CONJUR.login, conjur_api_key: CONJUR.apiKey, conjur_ca_cert_pem: conjur.serverCa.certPem };
      await expect(backend.write!('provisio/undeclared', 'x-Val', settings)).rejects.toThrow(/declare it in policy/);
      conjur.declare('provisio/declared');
      expect((await backend.write!('provisio/declared', 'written-Val', settings)).raw).toBe('conjur://provisio/declared');
      expect(conjur.value('provisio/declared')).toBe('written-Val');
      await expect(resolveSecretReference(t.db, 'conjur://nothing/here')).rejects.toMatchObject({ code: 'SECRET_NOT_FOUND' });
    });

    test('Azure: the token request carries the client credentials and scope; a token serves until shortly before it expires; a wrong secret is AUTH_FAILED', async () => {
      forgetAzureTokens();
      const tokens = azure.tokenRequests().length;
      await resolveSecretReference(t.db, 'azurekv://corp-kv-01/api-password');
      const form = new URLSearchParams(azure.tokenRequests().at(-1)!.body);
      expect(Object.fromEntries(form)).toEqual({ grant_type: 'client_credentials', client_id: AZURE.clientId, client_secret: AZURE.clientSecret, scope: 'https://vault.azure.net/.default' });
      expect(azure.secretRequests().at(-1)!.url).toBe('/vaults/corp-kv-01/secrets/api-password?api-version=7.4');
      tick(61_000);
      await resolveSecretReference(t.db, 'azurekv://corp-kv-01/api-password');
      expect(azure.tokenRequests().length).toBe(tokens + 1);
      tick(3_600_000);
      await resolveSecretReference(t.db, 'azurekv://corp-kv-01/api-password');
      expect(azure.tokenRequests().length).toBe(tokens + 2);

      forgetAzureTokens();
      expect((await putSettings('secret_backend', { azure_client_secret: 'not-the-secret' })).status).toBe(200);
      await expect(resolveSecretReference(t.db, 'azurekv://corp-kv-01/api-password')).rejects.toThrow(/HTTP 401 \(invalid_client: AADSTS7000215/);
      expect((await putSettings('secret_backend', { azure_client_secret: AZURE.clientSecret })).status).toBe(200);
    });

    test('TLS is verified: without the CA PEM a backend is unreachable, saying why', async () => {
      expect((await putSettings('secret_backend', { vault_ca_cert_pem: null })).status).toBe(200);
      try {
        await expect(resolveSecretReference(t.db, 'vault://provisio/api')).rejects.toMatchObject({ code: 'SECRET_BACKEND_UNREACHABLE' });
        await expect(resolveSecretReference(t.db, 'vault://provisio/api')).rejects.toThrow(/certificate/i);
      } finally {
        await putSettings('secret_backend', { vault_ca_cert_pem: vault.serverCa.certPem });
      }
    });
  });

  describe('422 for malformed references when saved', () => {
    test('a settings secret that starts like a reference but does not parse names the key and what is wrong', async () => {
      const res = await t.http().put('/admin/settings/smtp').set(t.admin).send({ password: 'vault://provisio//smtp' });
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: '/body/password', message: expect.stringContaining('empty segment') }] });
      const azureBad = await t.http().put('/admin/settings/servicenow').set(t.admin).send({ webhook_secret: 'azurekv://kv/x' });
      expect(azureBad.body).toMatchObject({ errors: [{ path: '/body/webhook_secret', message: expect.stringContaining('vault name must be 3-24') }] });
    });

    test('a well-formed reference is stored even where the value has rules of its own (a URL, a minimum length)', async () => {
      expect((await putSettings('teams', { webhook_url: 'vault://provisio/teams#url' })).status).toBe(200);
      expect((await putSettings('servicenow', { webhook_secret: 'conjur://a#b' })).status).toBe(200);
      await putSettings('teams', { webhook_url: null });
      await putSettings('servicenow', { webhook_secret: null });
    });

    test("the secret_backend section's own secrets cannot be references", async () => {
      const res = await t.http().put('/admin/settings/secret_backend').set(t.admin).send({ vault_token: 'vault://other/token' });
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ errors: [{ path: '/body/vault_token', message: "cannot be a secret reference: a backend's credentials cannot come from a backend" }] });
    });

    test('an integration secret that does not parse: 422 at /body/config/<pointer>', async () => {
      const res = await createIntegration('lab-bad', 'awssm://arn:aws:s3:::bucket#password');
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ path: '/body/config/authentication/password', message: expect.stringContaining('not a Secrets Manager secret ARN') }],
      });
    });
  });

  test('no backend-held value and no backend credential reached a log line', () => {
    const text = mem.text();
    for (const v of [...Object.values(SMTP_PASSWORDS), ...Object.values(API_PASSWORDS), VAULT_TOKEN, APPROLE.secretId, K8S.jwt, CONJUR.apiKey, AZURE.clientSecret]) {
      expect(text).not.toContain(v);
    }
    expect(text.length).toBeGreaterThan(100);
  });
});
