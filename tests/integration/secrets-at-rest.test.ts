import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SealedSecretError,
  SecretsKeyError,
  configureSecrets,
  decodeMasterKey,
  ensureSecretsKey,
  isSealed,
  openSecret,
  pemToDataUrl,
  secretPlace,
} from '../../adapter';
import { fullConfig, loadIntegration, openIntegrationSecrets, storeOAuthTokens } from '../../integration-model';
import { selectAssetTypeTeamsWebhookUrl } from '../../server/domain/notifications/teams-store';
import { sealPlaintextSecrets } from '../../server/domain/secrets';
import { readSettings, SETTINGS_SECTIONS, type SettingsSectionDef } from '../../server/domain/settings/settings';
import { createTestApp, type TestApp } from '../support/app';
import { createTestDatabase, testEngine } from '../support/db';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { createCa, issueClientCert } from '../support/pki';
import { countTables, grepDataDir, grepTables } from '../support/raw-storage';
import { TEST_SECRETS_KEY } from '../support/secrets';

// Every kind of secret, set through the API (or the OAuth code path), is usable and never in the raw storage: the
// PGlite files of the test's data directory, or every row of every table on PostgreSQL.
describe(`secrets at rest (${testEngine})`, () => {
  const MODEL_ID = 'Hello Inventory:1.0.0';
  const dir = mkdtempSync(join(tmpdir(), 'provisio-secrets-at-rest-'));
  const ca = createCa('secrets-at-rest CA');
  const client = issueClientCert(ca, 'secrets-at-rest client');
  /** Every secret value given during the suite: the raw storage must hold none of them. */
  const secrets: string[] = [];
  const secret = (label: string): string => {
    const v = `${label}-${randomBytes(12).toString('hex')}`;
    secrets.push(v);
    return v;
  };
  /** A plain value stored beside them (an integration's user name): the grep must find it, or it searched nothing. */
  const CONTROL = `svc-control-${randomBytes(8).toString('hex')}`;
  const BASIC_PASSWORD = secret('basic-pw');
  let t: TestApp;
  let closed = false;
  let inventory: LoopbackServer;

  const post = (path: string, body: unknown) => t.http().post(path).set(t.admin).send(body as object);
  const put = (path: string, body: unknown) => t.http().put(path).set(t.admin).send(body as object);

  beforeAll(async () => {
    inventory = await startLoopbackServer((req, res) => {
      const ok = req.headers.authorization === `Basic ${Buffer.from(`${CONTROL}:${BASIC_PASSWORD}`).toString('base64')}`;
      return ok ? sendJson(res, 200, { id: 7, name: 'real-lotus' }) : sendJson(res, 401, { error: 'unauthorised' });
    });
    t = await createTestApp({}, { dataDir: join(dir, 'pglite') });
    const model = await post('/admin/integration-models', { document: await readFile(join(__dirname, '..', 'fixtures', 'integration-models', 'hello-inventory.yaml'), 'utf8') });
    expect(model.status).toBe(201);
  });
  afterAll(async () => {
    if (!closed) await t.close();
    await inventory.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A valid value for a write-only settings key (and whatever it needs beside it), each secret recorded. */
  function secretSettings(section: string, def: SettingsSectionDef): Record<string, unknown> {
    const body: Record<string, unknown> = {};
    for (const [name, schema] of Object.entries(def.schema.properties)) {
      if (schema.writeOnly !== true) continue;
      if (name === 'mtls_key') {
        // A client key needs its certificate; the secret is the key, searched by a slice of its PEM body.
        body['mtls'] = { cert: pemToDataUrl(client.certPem) };
        body[name] = pemToDataUrl(client.keyPem);
        secrets.push(client.keyPem.split('\n')[5]!, (body[name] as string).slice(60, 140));
      } else if (name === 'proxy_password') {
        body['proxy'] = { override: true, mode: 'proxy', host: 'proxy.example.com', port: 3128, auth: { mode: 'basic', username: 'proxy-user' } };
        body[name] = secret('proxy-pw');
      } else if (String(schema['pattern'] ?? '').includes('PRIVATE KEY')) {
        body[name] = client.keyPem;
        secrets.push(client.keyPem.split('\n')[6]!);
      } else if (schema['pattern'] === '^https://') {
        body[name] = `https://hooks.example.com/${secret(`${section}-${name}`)}`;
      } else {
        body[name] = secret(`${section}-${name}-0123456789`);
      }
    }
    return body;
  }

  test('every write-only setting of every section is stored sealed and reads back opened', async () => {
    const sections = Object.entries(SETTINGS_SECTIONS as Record<string, SettingsSectionDef>).filter(([, d]) =>
      Object.values(d.schema.properties).some((p) => p.writeOnly === true),
    );
    expect(sections.map(([s]) => s)).toEqual(expect.arrayContaining(['servicenow', 'active_directory', 'smtp', 'webhooks', 'hr', 'teams']));
    for (const [section, def] of sections) {
      const body = secretSettings(section, def);
      const res = await put(`/admin/settings/${section}`, body);
      expect({ section, status: res.status, errors: res.body.errors }).toEqual({ section, status: 200, errors: undefined });
      const read = await readSettings(t.db, section as keyof typeof SETTINGS_SECTIONS);
      for (const [name, value] of Object.entries(body)) expect({ name, value: read[name] }).toEqual({ name, value });
      const { rows } = await t.db.query<{ key: string; value: unknown }>(`SELECT key, value FROM app_config WHERE section = $1 AND is_secret`, [section]);
      expect(rows.length).toBeGreaterThan(0);
      for (const r of rows) expect({ key: r.key, sealed: isSealed(r.value) }).toEqual({ key: r.key, sealed: true });
    }
  });

  test('integration credentials of every auth scheme, mTLS key and proxy password: sealed, and given to the client opened', async () => {
    const pw = () => secret('pw');
    const oauthClient = () => ({ client_id: 'cid', client_secret: secret('client-secret') });
    const schemes: Record<string, unknown>[] = [
      { type: 'basic', username: CONTROL, password: BASIC_PASSWORD },
      { type: 'bearer', token: secret('bearer') },
      { type: 'api_key', name: 'X-Key', value: secret('api-key') },
      { type: 'api_key', name: 'X-Key', dynamic: { method: 'POST', url: 'https://idp.example.com/key', body: { secret: secret('dyn-body') }, headers: { 'X-Auth': secret('dyn-header') } } },
      { type: 'aws_sigv4', access_key_id: 'AKIDEXAMPLE', secret_access_key: secret('aws-secret'), session_token: secret('aws-session'), region: 'eu-west-1', service: 'execute-api' },
      { type: 'oauth2_client_credentials', ...oauthClient(), token_url: 'https://idp.example.com/token' },
      { type: 'oauth2_password', ...oauthClient(), token_url: 'https://idp.example.com/token', username: 'u', password: pw() },
      { type: 'oauth2_authorization_code', ...oauthClient(), token_url: 'https://idp.example.com/token', authorization_url: 'https://idp.example.com/authorize' },
      { type: 'openid_connect', ...oauthClient(), issuer: 'https://idp.example.com' },
      { type: 'ntlm', username: 'DOM\\svc', password: pw() },
    ];
    const mtlsKey = pemToDataUrl(client.keyPem);
    secrets.push(mtlsKey.slice(60, 140));
    const ids: number[] = [];
    for (const [i, authentication] of schemes.entries()) {
      const config: Record<string, unknown> = { server: { protocol: 'http', host: '127.0.0.1', port: inventory.port, base_path: '/api' }, authentication };
      if (i === 0) {
        config['mtls'] = { cert: pemToDataUrl(client.certPem), key: mtlsKey };
        config['proxy'] = { override: true, mode: 'proxy', host: 'proxy.example.com', port: 3128, auth: { mode: 'basic', username: 'proxy-user', password: secret('int-proxy-pw') } };
      }
      const res = await post('/admin/integrations', { name: `scheme-${i}`, model_id: MODEL_ID, config });
      expect({ i, status: res.status, errors: res.body.errors }).toEqual({ i, status: 201, errors: undefined });
      ids.push(res.body.id as number);
      const record = await loadIntegration(t.db, res.body.id as number);
      expect(Object.values(record.secrets).length).toBeGreaterThan(0);
      for (const v of Object.values(record.secrets)) expect(isSealed(v)).toBe(true);
      // What the runtime builds its client from: the configuration as given.
      const full = fullConfig(record, await openIntegrationSecrets(t.db, record));
      expect(full['authentication']).toEqual(expect.objectContaining(authentication));
      if (i === 0) expect((full['mtls'] as { key: string }).key).toBe(mtlsKey);
    }
    // Really used: a call authenticates with the opened password (the proxy and mTLS settings dropped for it).
    const basic = await put(`/admin/integrations/${ids[0]!}/config`, {
      server: { protocol: 'http', host: '127.0.0.1', port: inventory.port, base_path: '/api' },
      authentication: { type: 'basic', username: CONTROL, password: '[redacted]' },
    });
    expect(basic.status).toBe(200);
    const call = await post(`/admin/integrations/${ids[0]!}/tasks/getItem/invoke`, { path: { id: 7 } });
    expect(call.body).toMatchObject({ ok: true, status: 200, body: { id: 7 } });
  });

  test('a clone opens with its own secrets; a sealed value copied to another integration does not open', async () => {
    const source = (await t.db.query<{ id: number }>(`SELECT id::int AS id FROM integrations WHERE name = 'scheme-1'`)).rows[0]!.id;
    const res = await post(`/admin/integrations/${source}/clone`, { name: 'scheme-1-copy' });
    expect(res.status).toBe(201);
    const [a, b] = [await loadIntegration(t.db, source), await loadIntegration(t.db, res.body.id as number)];
    expect(await openIntegrationSecrets(t.db, b)).toEqual(await openIntegrationSecrets(t.db, a));
    expect(b.secrets['/authentication/token']).not.toBe(a.secrets['/authentication/token']);
    // Someone who can write the database but lacks the key pastes A's sealed token into B: it does not open there.
    await expect(openIntegrationSecrets(t.db, { id: b.id, secrets: a.secrets })).rejects.toThrow(SealedSecretError);
    await expect(openIntegrationSecrets(t.db, { id: b.id, secrets: a.secrets })).rejects.toThrow(`integrations:${b.id}:/authentication/token`);
  });

  test('OAuth tokens stored through the code path are sealed and open for the client', async () => {
    const id = (await t.db.query<{ id: number }>(`SELECT id::int AS id FROM integrations WHERE name = 'scheme-7'`)).rows[0]!.id;
    const access = secret('access-token');
    const refresh = secret('refresh-token');
    await t.db.transaction((tx) => storeOAuthTokens(tx, id, { access_token: access, refresh_token: refresh, expires_at: 4_000_000_000 }));
    const record = await loadIntegration(t.db, id);
    for (const p of ['/authentication/access_token', '/authentication/refresh_token', '/authentication/expires_at']) expect(isSealed(record.secrets[p])).toBe(true);
    expect(fullConfig(record, await openIntegrationSecrets(t.db, record))['authentication']).toMatchObject({ access_token: access, refresh_token: refresh, expires_at: 4_000_000_000 });
  });

  test("an asset type's Teams webhook URL is stored sealed and opens for the sender", async () => {
    const url = `https://hooks.example.com/${secret('type-teams')}`;
    const res = await post('/admin/asset-types', {
      name: 'Sealed Teams seat', assignment_model: 'personal', requires_approval: true, fallback_approver: 'boss@example.com',
      monthly_cost: 1, currency: 'EUR', attributes: [], teams_webhook_url: url,
    });
    expect(res.status).toBe(201);
    const { rows } = await t.db.query<{ webhook_url: string }>('SELECT webhook_url FROM asset_type_teams_webhooks WHERE asset_type_id = $1', [res.body.id]);
    expect(isSealed(rows[0]!.webhook_url)).toBe(true);
    expect(await selectAssetTypeTeamsWebhookUrl(t.db, res.body.id as number)).toBe(url);
  });

  // Last: closes the app and reads the raw storage.
  test('no secret set during the suite is in the raw storage; the plain control value is', async () => {
    expect(secrets.length).toBeGreaterThan(25);
    if (testEngine === 'postgres') {
      expect(await countTables(t.db)).toBeGreaterThan(30);
      expect(await grepTables(t.db, [CONTROL])).not.toEqual([]);
      expect(await grepTables(t.db, secrets)).toEqual([]);
    } else {
      await t.close();
      closed = true;
      const files = join(dir, 'pglite');
      expect(grepDataDir(files, [CONTROL])).not.toEqual([]);
      expect(grepDataDir(files, secrets)).toEqual([]);
    }
  });
});

// Rows written in plain text before migration 025 read as they are, and the start-up pass seals them.
describe(`secrets at rest: the upgrade from plain text (${testEngine})`, () => {
  test('the start-up pass seals settings, integration secrets and Teams URLs; they read the same before and after', async () => {
    const t = await createTestDatabase();
    try {
      const { db } = t;
      await db.query(`INSERT INTO app_config (key, section, value, is_secret, updated_by) VALUES ('smtp.password', 'smtp', '"plain-smtp-pw"', true, 'test'), ('smtp.port', 'smtp', '587', false, 'test')`);
      await db.query(`INSERT INTO integration_models (id, title, version, source_version, document, created_by) VALUES ('Old:1', 'Old', '1', '3.0.3', '{}', 'test')`);
      const ins = await db.query<{ id: number }>(
        `INSERT INTO integrations (name, model_id, config, secrets, log_level, created_by)
         VALUES ('old', 'Old:1', '{"server":{"host":"h"}}', '{"/authentication/token":"plain-token"}', 'info', 'test') RETURNING id::int AS id`,
      );
      const integrationId = ins.rows[0]!.id;
      const type = await db.query<{ id: number }>(`INSERT INTO asset_types (name, assignment_model) VALUES ('Old type', 'personal') RETURNING id::int AS id`);
      const typeId = type.rows[0]!.id;
      await db.query(`INSERT INTO asset_type_teams_webhooks (asset_type_id, webhook_url, updated_by) VALUES ($1, 'https://hooks.example.com/plain', 'test')`, [typeId]);

      // Before the pass: plain values pass through.
      expect(await readSettings(db, 'smtp')).toEqual({ password: 'plain-smtp-pw', port: 587 });
      expect(await selectAssetTypeTeamsWebhookUrl(db, typeId)).toBe('https://hooks.example.com/plain');

      const first = await sealPlaintextSecrets(db);
      expect(first.sealed).toBe(3);
      expect(isSealed((await db.query<{ value: unknown }>(`SELECT value FROM app_config WHERE key = 'smtp.password'`)).rows[0]!.value)).toBe(true);
      expect((await db.query<{ value: unknown }>(`SELECT value FROM app_config WHERE key = 'smtp.port'`)).rows[0]!.value).toBe(587);
      expect(await readSettings(db, 'smtp')).toEqual({ password: 'plain-smtp-pw', port: 587 });
      expect(await selectAssetTypeTeamsWebhookUrl(db, typeId)).toBe('https://hooks.example.com/plain');
      const record = await loadIntegration(db, integrationId);
      expect(isSealed(record.secrets['/authentication/token'])).toBe(true);
      expect(await openIntegrationSecrets(db, record)).toEqual({ '/authentication/token': 'plain-token' });
      expect(await grepTables(db, ['plain-smtp-pw', 'plain-token', 'hooks.example.com/plain'])).toEqual([]);
      // Idempotent.
      expect((await sealPlaintextSecrets(db)).sealed).toBe(0);
    } finally {
      await t.drop();
    }
  });
});

// The start-up check: a wrong master key is refused before anything is read or written.
describe(`secrets at rest: the master key check (${testEngine})`, () => {
  const testKey = decodeMasterKey(TEST_SECRETS_KEY, 'test');
  afterEach(() => configureSecrets({ masterKey: testKey, source: 'the test key' }));

  test('ensureSecretsKey makes the first data key, accepts the right key, refuses a wrong one naming both key ids, and changes nothing', async () => {
    const t = await createTestDatabase();
    try {
      expect((await ensureSecretsKey(t.db)).created).toBe(true);
      expect((await ensureSecretsKey(t.db)).created).toBe(false);
      const sealed = await openSecret(t.db, 'not sealed', secretPlace.setting('x.y'));
      expect(sealed).toBe('not sealed');
      const before = (await t.db.query<{ row: string }>('SELECT t::text AS row FROM secret_keys t ORDER BY id')).rows;
      const stored = before[0]!.row;
      configureSecrets({ masterKey: randomBytes(32), source: 'the key file /somewhere/secrets.key' });
      const err = await ensureSecretsKey(t.db).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SecretsKeyError);
      expect((err as Error).message).toMatch(/the key file \/somewhere\/secrets\.key/);
      expect((err as Error).message).toMatch(/wrapped under master key [0-9a-f]{16}, the given key is [0-9a-f]{16}/);
      expect((err as Error).message).not.toContain(TEST_SECRETS_KEY);
      expect((await t.db.query<{ row: string }>('SELECT t::text AS row FROM secret_keys t ORDER BY id')).rows).toEqual(before);
      expect(stored).toContain((await t.db.query<{ master_key_id: string }>('SELECT master_key_id FROM secret_keys')).rows[0]!.master_key_id);
    } finally {
      await t.drop();
    }
  });
});
