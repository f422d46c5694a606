import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Response } from 'supertest';
import { pemToDataUrl } from '../../adapter';
import { createIntegrationRuntime, loadIntegration, openIntegrationSecrets, runDueHealthChecks } from '../../integration-model';
import { createTestApp, type TestApp } from '../support/app';
import { closedPort, sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { createMemoryLogger } from '../support/memory-logger';
import { createCa, issueClientCert } from '../support/pki';

const MODEL_ID = 'Hello Inventory:1.0.0';
// Every secret set anywhere in this file; none may ever appear in a response body or an audit row.
const BEARER = 'bearer-secret-Zq81xW';
const BEARER_2 = 'bearer-rotated-Ty64pL';
const BASIC_PASSWORD = 'basic-password-Kp27wQ';
const PROXY_PASSWORD = 'proxy-password-Rf03nV';
const API_KEY = 'api-key-value-Mm55hD';
const CLIENT_SECRET = 'client-secret-Hh90gB';

describe('integrations API', () => {
  let t: TestApp;
  let inventory: LoopbackServer;
  /** What /api/ping answers: health checks flip it. */
  let pingMode: 'ok' | 'fail' | 'slow' = 'ok';
  let acceptedBearer = BEARER;
  const bodies: string[] = [];
  const ca = createCa('provisio test CA');
  const client = issueClientCert(ca, 'provisio-client');
  const other = issueClientCert(ca, 'someone-else');
  const expired = issueClientCert(ca, 'expired', { notBefore: new Date(Date.now() - 3 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
  let mtlsKeyDataUrl = '';

  /** Every response goes through here so the leak test can read them all. */
  function record(res: Response): Response {
    bodies.push(res.text ?? '');
    return res;
  }
  const get = async (path: string, as: Record<string, string> = t.admin) => record(await t.http().get(path).set(as));
  const post = async (path: string, body: unknown, as: Record<string, string> = t.admin) => record(await t.http().post(path).set(as).send(body as object));
  const put = async (path: string, body: unknown, as: Record<string, string> = t.admin) => record(await t.http().put(path).set(as).send(body as object));
  const patch = async (path: string, body: unknown, as: Record<string, string> = t.admin) => record(await t.http().patch(path).set(as).send(body as object));
  const del = async (path: string, as: Record<string, string> = t.admin) => record(await t.http().delete(path).set(as));

  const inventoryConfig = (auth: Record<string, unknown> = { type: 'bearer', token: BEARER }) => ({
    server: { host: '127.0.0.1', port: inventory.port, base_path: '/api' },
    authentication: auth,
    timeout: 5000,
  });

  async function createIntegration(body: Record<string, unknown>): Promise<{ id: number; name: string }> {
    const res = await post('/admin/integrations', { model_id: MODEL_ID, ...body });
    expect(res.status).toBe(201);
    return res.body as { id: number; name: string };
  }

  async function mint(name: string): Promise<{ id: number; headers: Record<string, string> }> {
    const res = await t.http().post('/admin/api-tokens').set(t.admin).send({ name, scopes: ['admin:read'], role: 'auditor' });
    expect(res.status).toBe(201);
    return { id: res.body.id as number, headers: { Authorization: `Bearer ${res.body.token as string}` } };
  }

  const requestsTo = (path: string) => inventory.requests.filter((r) => r.url.split('?')[0] === path);

  beforeAll(async () => {
    mtlsKeyDataUrl = pemToDataUrl(client.keyPem);
    inventory = await startLoopbackServer(async (req, res) => {
      const auth = req.headers.authorization;
      const basicOk = auth === `Basic ${Buffer.from(`svc:${BASIC_PASSWORD}`).toString('base64')}`;
      if (auth !== `Bearer ${acceptedBearer}` && !basicOk) return sendJson(res, 401, { error: 'unauthorised' });
      const url = new URL(req.url, 'http://x');
      if (url.pathname === '/api/ping') {
        if (pingMode === 'fail') return sendJson(res, 503, { status: 'down' });
        if (pingMode === 'slow') await new Promise((r) => setTimeout(r, 150));
        return sendJson(res, 200, { status: 'ok' });
      }
      if (url.pathname === '/api/items' && req.method === 'GET') {
        return sendJson(res, 200, [{ id: 1, name: 'real-widget', q: url.searchParams.get('q'), limit: url.searchParams.get('limit') }]);
      }
      if (url.pathname === '/api/items' && req.method === 'POST') return sendJson(res, 201, { id: 99, ...(JSON.parse(req.body) as object) });
      const m = /^\/api\/items\/(\d+)$/.exec(url.pathname);
      if (m && req.method === 'GET') return m[1] === '7' ? sendJson(res, 200, { id: 7, name: 'real-lotus' }) : sendJson(res, 404, { error: 'no such item' });
      if (m && req.method === 'DELETE') {
        res.writeHead(204).end();
        return;
      }
      sendJson(res, 404, { error: 'no route' });
    });
    t = await createTestApp();
    const model = await post('/admin/integration-models', { document: await readFile(join(__dirname, '..', 'fixtures', 'integration-models', 'hello-inventory.yaml'), 'utf8') });
    expect(model.status).toBe(201);
  });
  afterAll(async () => {
    await t.close();
    await inventory.close();
  });

  describe('create and read', () => {
    test('applies defaults, answers secrets as the marker and generates one admin role plus one per verb', async () => {
      const res = await post('/admin/integrations', {
        name: 'inventory',
        model_id: MODEL_ID,
        config: {
          ...inventoryConfig(),
          proxy: { override: false, auth: { mode: 'basic', username: 'proxy-user', password: PROXY_PASSWORD } },
        },
        health: { operation_id: 'ping' },
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        name: 'inventory',
        model_id: MODEL_ID,
        log_level: 'info',
        stub_mode: false,
        health: { operation_id: 'ping', slow_ms: 2000 },
        health_status: { status: 'unknown', checked_at: null, detail: null, http_status: null, latency_ms: null },
        roles: ['inventory:admin', 'inventory:GET', 'inventory:POST', 'inventory:DELETE'],
        created_by: 'admin:key',
      });
      expect(res.body.config).toEqual({
        server: { protocol: 'http', host: '127.0.0.1', port: inventory.port, base_path: '/api' },
        authentication: { type: 'bearer', token: '[redacted]' },
        timeout: 5000,
        tls: { enabled: false, reject_unauthorized: true },
        cluster: { override: false },
        proxy: { override: false, mode: 'direct', auth: { mode: 'basic', username: 'proxy-user', password: '[redacted]' } },
        logging: { level: 'info' },
      });

      const stored = await t.db.query<{ config: unknown; secrets: Record<string, unknown> }>('SELECT config, secrets FROM integrations WHERE id = $1', [res.body.id]);
      expect(JSON.stringify(stored.rows[0]!.config)).not.toContain(BEARER);
      // Stored sealed (secrets at rest); opened, they are the values given.
      expect(JSON.stringify(stored.rows[0]!.secrets)).not.toContain(BEARER);
      expect(await openIntegrationSecrets(t.db, { id: res.body.id, secrets: stored.rows[0]!.secrets })).toEqual({
        '/authentication/token': BEARER,
        '/proxy/auth/password': PROXY_PASSWORD,
      });

      const one = await get(`/admin/integrations/${res.body.id as number}`);
      expect(one.status).toBe(200);
      expect(one.body).toEqual(res.body);
      const list = await get('/admin/integrations');
      expect(list.body.items.map((i: { name: string }) => i.name)).toContain('inventory');

      const audit = await t.db.query<{ diff: { after: Record<string, unknown> } }>(
        `SELECT diff FROM audit_log WHERE entity = 'integration' AND entity_id = $1 AND action = 'create'`,
        [String(res.body.id)],
      );
      expect(audit.rows[0]!.diff.after).toMatchObject({ name: 'inventory', credentials_changed: ['/authentication/token', '/proxy/auth/password'] });
    });

    test('a configuration that breaks the schema is a 422 naming the field', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ server: { host: 'h', port: 70000 } }, '/body/config/server/port'],
        [{ server: { host: 'h' }, authentication: { type: 'kerberos' } }, '/body/config/authentication/type'],
        [{ server: { host: 'h' }, proxy: { override: true, mode: 'proxy', port: 3128 } }, '/body/config/proxy/host'],
        [{ server: {} }, '/body/config/server/host'],
        [{ server: { host: 'h' }, authentication: { type: 'basic', username: 'u' } }, '/body/config/authentication/password'],
      ];
      for (const [config, path] of cases) {
        const res = await post('/admin/integrations', { name: 'bad', model_id: MODEL_ID, config });
        expect(res.status).toBe(422);
        expect(res.body.code).toBe('VALIDATION_FAILED');
        expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
      }
      const unknownModel = await post('/admin/integrations', { name: 'bad', model_id: 'Nope:1', config: { server: { host: 'h' } } });
      expect(unknownModel.status).toBe(422);
      expect(unknownModel.body.errors[0].path).toBe('/body/model_id');
      const healthNeedsInput = await post('/admin/integrations', { name: 'bad', model_id: MODEL_ID, config: { server: { host: 'h' } }, health: { operation_id: 'getItem' } });
      expect(healthNeedsInput.status).toBe(422);
      expect(healthNeedsInput.body.errors[0].path).toBe('/body/health/operation_id');
      const badName = await post('/admin/integrations', { name: 'a:b', model_id: MODEL_ID, config: { server: { host: 'h' } } });
      expect(badName.status).toBe(422);
      const taken = await post('/admin/integrations', { name: 'inventory', model_id: MODEL_ID, config: { server: { host: 'h' } } });
      expect(taken.status).toBe(409);
      expect((await t.db.query(`SELECT 1 FROM integrations WHERE name = 'bad'`)).rowCount).toBe(0);
    });

    test('client certificate material is checked at save time', async () => {
      const base = { server: { host: '127.0.0.1', protocol: 'https' } };
      const cases: [Record<string, unknown>, string, RegExp][] = [
        [{ cert: pemToDataUrl(client.certPem), key: pemToDataUrl(other.keyPem) }, '/body/config/mtls/key', /does not match/],
        [{ cert: pemToDataUrl(expired.certPem), key: pemToDataUrl(expired.keyPem) }, '/body/config/mtls/cert', /expired/],
        [{ cert: pemToDataUrl('-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n'), key: mtlsKeyDataUrl }, '/body/config/mtls/cert', /not a PEM/],
        [{ ca: pemToDataUrl('garbage') }, '/body/config/mtls/ca', /not a PEM/],
      ];
      for (const [mtls, path, why] of cases) {
        const res = await post('/admin/integrations', { name: 'tls-bad', model_id: MODEL_ID, config: { ...base, mtls } });
        expect(res.status).toBe(422);
        const err = (res.body.errors as { path: string; message: string }[]).find((e) => e.path === path);
        expect(err?.message).toMatch(why);
      }
      const ok = await createIntegration({
        name: 'inventory-mtls',
        config: { ...base, mtls: { cert: pemToDataUrl(client.certPem), key: mtlsKeyDataUrl, ca: pemToDataUrl(ca.certPem) } },
      });
      const view = await get(`/admin/integrations/${ok.id}`);
      expect(view.body.config.mtls).toEqual({ cert: pemToDataUrl(client.certPem), key: '[redacted]', ca: pemToDataUrl(ca.certPem) });
    });
  });

  describe('tasks', () => {
    let id: number;
    beforeAll(async () => {
      id = (await get('/admin/integrations')).body.items.find((i: { name: string }) => i.name === 'inventory').id;
    });

    test('every operation is a task with input and output schemas and the role it needs', async () => {
      const res = await get(`/admin/integrations/${id}/tasks`);
      expect(res.status).toBe(200);
      expect(res.body.items.map((x: { name: string }) => x.name)).toEqual([
        'inventory/ping',
        'inventory/listItems',
        'inventory/createItem',
        'inventory/getItem',
        'inventory/deleteItem',
      ]);
      const getItem = res.body.items.find((x: { operationId: string }) => x.operationId === 'getItem');
      expect(getItem).toMatchObject({ method: 'GET', path: '/items/{id}', summary: 'Get an item', requiredRole: 'inventory:GET' });
      expect(getItem.inputSchema).toMatchObject({ type: 'object', required: ['path'], properties: { path: { required: ['id'] } } });
      expect(getItem.outputSchema).toMatchObject({ type: 'object', properties: { body: { type: 'object', required: ['id', 'name'] } } });
      expect(res.body.items.find((x: { operationId: string }) => x.operationId === 'createItem').requiredRole).toBe('inventory:POST');
    });

    test('invoke calls the real server with the configured auth and answers its envelope', async () => {
      const before = inventory.requests.length;
      const res = await post(`/admin/integrations/${id}/tasks/getItem/invoke`, { path: { id: 7 } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        ok: true,
        method: 'GET',
        url: `http://127.0.0.1:${inventory.port}/api/items/7`,
        status: 200,
        statusText: 'OK',
        body: { id: 7, name: 'real-lotus' },
      });
      expect(res.body.headers['content-type']).toBe('application/json');
      expect(inventory.requests.length).toBe(before + 1);
      expect(inventory.requests.at(-1)!.headers.authorization).toBe(`Bearer ${BEARER}`);

      const list = await post(`/admin/integrations/${id}/tasks/listItems/invoke`, { query: { limit: 5, q: 'wid get' } });
      expect(list.status).toBe(200);
      expect(list.body.body).toEqual([{ id: 1, name: 'real-widget', q: 'wid get', limit: '5' }]);

      const created = await post(`/admin/integrations/${id}/tasks/createItem/invoke`, { body: { name: 'fresh' } });
      expect(created.body).toMatchObject({ ok: true, method: 'POST', status: 201, body: { id: 99, name: 'fresh' } });
      expect(inventory.requests.at(-1)!.headers['content-type']).toMatch(/^application\/json/);

      const deleted = await post(`/admin/integrations/${id}/tasks/deleteItem/invoke`, { path: { id: 3 } });
      expect(deleted.body).toMatchObject({ ok: true, method: 'DELETE', status: 204, body: null });
    });

    test('a failing remote answer is still a 200 carrying the envelope with ok false', async () => {
      const res = await post(`/admin/integrations/${id}/tasks/getItem/invoke`, { path: { id: 8 } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ ok: false, status: 404, statusText: 'Not Found', body: { error: 'no such item' } });
    });

    test('unknown operation 404; input checked against the task input schema 422 naming the field', async () => {
      const unknown = await post(`/admin/integrations/${id}/tasks/nope/invoke`, {});
      expect(unknown.status).toBe(404);
      const missingInput = await post(`/admin/integrations/${id}/tasks/getItem/invoke`, {});
      expect(missingInput.status).toBe(422);
      expect(missingInput.body.errors).toEqual([{ path: '/body/path', message: 'is required' }]);
      const wrongType = await post(`/admin/integrations/${id}/tasks/getItem/invoke`, { path: { id: 'seven' } });
      expect(wrongType.status).toBe(422);
      expect(wrongType.body.errors[0].path).toBe('/body/path/id');
      const extra = await post(`/admin/integrations/${id}/tasks/createItem/invoke`, { body: { name: 'x', colour: 'red' } });
      expect(extra.status).toBe(422);
      expect(extra.body.errors[0].path).toBe('/body/body/colour');
      const stranger = await post(`/admin/integrations/${id}/tasks/listItems/invoke`, { query: { limit: 0 } });
      expect(stranger.status).toBe(422);
      expect(stranger.body.errors[0].path).toBe('/body/query/limit');
    });

    test('a call that could not be made is a 502 whose detail says why', async () => {
      const dead = await createIntegration({ name: 'inventory-dead', config: { server: { host: '127.0.0.1', port: await closedPort() }, timeout: 2000 } });
      const res = await post(`/admin/integrations/${dead.id}/tasks/ping/invoke`, {});
      expect(res.status).toBe(502);
      expect(res.body).toMatchObject({ status: 502, title: 'Bad Gateway', code: 'INTEGRATION_CALL_FAILED' });
      expect(res.body.detail).toMatch(/127\.0\.0\.1/);

      // Routed to a gateway cluster with no live worker: the timeout error, never silently called from here instead.
      const routed = await createIntegration({ name: 'inventory-dmz', config: { ...inventoryConfig(), timeout: 500, cluster: { override: true, cluster_id: 'dmz' } } });
      const before = inventory.requests.length;
      const viaCluster = await post(`/admin/integrations/${routed.id}/tasks/ping/invoke`, {});
      expect(viaCluster.status).toBe(502);
      expect(viaCluster.body.detail).toBe("no worker of cluster 'dmz' answered within 500 ms");
      expect(inventory.requests.length).toBe(before);
    });
  });

  describe('roles', () => {
    let id: number;
    beforeAll(async () => {
      id = (await get('/admin/integrations')).body.items.find((i: { name: string }) => i.name === 'inventory').id;
    });

    test('only tokens holding the verb role or the admin role may invoke; grants are listed, audited and revocable', async () => {
      const reader = await mint('runbook-reader');
      const getPath = `/admin/integrations/${id}/tasks/getItem/invoke`;
      const postPath = `/admin/integrations/${id}/tasks/createItem/invoke`;

      const denied = await post(getPath, { path: { id: 7 } }, reader.headers);
      expect(denied.status).toBe(403);
      expect(denied.body.detail).toContain("'inventory:GET'");

      const granted = await put(`/admin/integrations/${id}/roles/GET/tokens/${reader.id}`, {});
      expect(granted.status).toBe(200);
      expect(granted.body).toMatchObject({ name: 'inventory:GET', kind: 'GET', source: MODEL_ID, tokens: [{ token_id: reader.id, token_name: 'runbook-reader', granted_by: 'admin:key' }] });
      // Idempotent, by short or full name.
      expect((await put(`/admin/integrations/${id}/roles/${encodeURIComponent('inventory:GET')}/tokens/${reader.id}`, {})).status).toBe(200);

      const allowed = await post(getPath, { path: { id: 7 } }, reader.headers);
      expect(allowed.status).toBe(200);
      expect(allowed.body.body).toEqual({ id: 7, name: 'real-lotus' });
      expect((await post(postPath, { body: { name: 'n' } }, reader.headers)).status).toBe(403);

      const roles = await get(`/admin/integrations/${id}/roles`, reader.headers);
      expect(roles.status).toBe(200);
      expect(roles.body.items.map((r: { name: string }) => r.name)).toEqual(['inventory:admin', 'inventory:GET', 'inventory:POST', 'inventory:DELETE']);
      expect(roles.body.items[1].tokens).toHaveLength(1);

      const admin = await mint('runbook-admin');
      expect((await put(`/admin/integrations/${id}/roles/admin/tokens/${admin.id}`, {})).status).toBe(200);
      expect((await post(postPath, { body: { name: 'n' } }, admin.headers)).status).toBe(200);

      expect((await del(`/admin/integrations/${id}/roles/GET/tokens/${reader.id}`)).status).toBe(204);
      expect((await post(getPath, { path: { id: 7 } }, reader.headers)).status).toBe(403);
      expect((await del(`/admin/integrations/${id}/roles/GET/tokens/${reader.id}`)).status).toBe(404);

      expect((await put(`/admin/integrations/${id}/roles/PATCH/tokens/${reader.id}`, {})).status).toBe(404);
      expect((await put(`/admin/integrations/${id}/roles/GET/tokens/99999`, {})).status).toBe(404);
      // Granting is a write: a reader may not grant itself.
      expect((await put(`/admin/integrations/${id}/roles/GET/tokens/${reader.id}`, {}, reader.headers)).status).toBe(403);

      const audit = await t.db.query<{ action: string }>(
        `SELECT action FROM audit_log WHERE entity = 'integration' AND entity_id = $1 AND action IN ('grant_role', 'revoke_role') ORDER BY id`,
        [String(id)],
      );
      expect(audit.rows.map((r) => r.action)).toEqual(['grant_role', 'grant_role', 'revoke_role']);
    });

    test('a superadmin token may invoke without a grant', async () => {
      const res = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'super', scopes: ['admin:*'], role: 'superadmin' });
      const out = await post(`/admin/integrations/${id}/tasks/ping/invoke`, {}, { Authorization: `Bearer ${res.body.token as string}` });
      expect(out.status).toBe(200);
    });
  });

  describe('configuration changes', () => {
    let id: number;
    beforeAll(async () => {
      id = (await get('/admin/integrations')).body.items.find((i: { name: string }) => i.name === 'inventory').id;
    });

    test('advanced view: GET shows markers; PUT of the same document keeps the stored secrets', async () => {
      const view = await get(`/admin/integrations/${id}/config`);
      expect(view.status).toBe(200);
      expect(view.body.authentication).toEqual({ type: 'bearer', token: '[redacted]' });

      const back = await put(`/admin/integrations/${id}/config`, { ...view.body, timeout: 4000 });
      expect(back.status).toBe(200);
      expect(back.body).toEqual({ ...view.body, timeout: 4000 });
      const secrets = await t.db.query<{ secrets: Record<string, unknown> }>('SELECT secrets FROM integrations WHERE id = $1', [id]);
      expect((await openIntegrationSecrets(t.db, { id, secrets: secrets.rows[0]!.secrets }))['/authentication/token']).toBe(BEARER);
      // The rebuilt client still authenticates with the kept secret.
      expect((await post(`/admin/integrations/${id}/tasks/getItem/invoke`, { path: { id: 7 } })).body.status).toBe(200);

      const bad = await put(`/admin/integrations/${id}/config`, { ...view.body, server: { host: 'h', port: 70000 } });
      expect(bad.status).toBe(422);
      expect(bad.body.errors.map((e: { path: string }) => e.path)).toContain('/body/server/port');
      const unknownField = await put(`/admin/integrations/${id}/config`, { ...view.body, colour: 'red' });
      expect(unknownField.status).toBe(422);
      expect(unknownField.body.errors[0].path).toBe('/body/colour');
      // A marker where nothing is stored cannot be resolved.
      const noSecret = await put(`/admin/integrations/${id}/config`, { ...view.body, authentication: { type: 'basic', username: 'svc', password: '[redacted]' } });
      expect(noSecret.status).toBe(422);
      expect(noSecret.body.errors[0].path).toBe('/body/authentication/password');

      const audit = await t.db.query<{ diff: { before: Record<string, unknown>; after: Record<string, unknown> } }>(
        `SELECT diff FROM audit_log WHERE entity = 'integration' AND entity_id = $1 AND action = 'update_config'`,
        [String(id)],
      );
      expect(audit.rows).toHaveLength(1);
      expect(audit.rows[0]!.diff.after).not.toHaveProperty('credentials_changed');
    });

    test('a changed secret is used at once and audited by field, never by value', async () => {
      acceptedBearer = BEARER_2;
      const stale = await post(`/admin/integrations/${id}/tasks/getItem/invoke`, { path: { id: 7 } });
      expect(stale.body.status).toBe(401);

      const view = (await get(`/admin/integrations/${id}/config`)).body as Record<string, unknown>;
      const res = await patch(`/admin/integrations/${id}`, { config: { ...view, authentication: { type: 'bearer', token: BEARER_2 } } });
      expect(res.status).toBe(200);
      expect(res.body.config.authentication).toEqual({ type: 'bearer', token: '[redacted]' });
      const fresh = await post(`/admin/integrations/${id}/tasks/getItem/invoke`, { path: { id: 7 } });
      expect(fresh.body.status).toBe(200);
      expect(inventory.requests.at(-1)!.headers.authorization).toBe(`Bearer ${BEARER_2}`);

      const audit = await t.db.query<{ diff: { after: Record<string, unknown> } }>(
        `SELECT diff FROM audit_log WHERE entity = 'integration' AND entity_id = $1 AND action = 'update' ORDER BY id DESC LIMIT 1`,
        [String(id)],
      );
      expect(audit.rows[0]!.diff.after['credentials_changed']).toEqual(['/authentication/token']);

      // Switch to basic auth through the advanced view: the password is a new secret.
      const basic = await put(`/admin/integrations/${id}/config`, { ...view, authentication: { type: 'basic', username: 'svc', password: BASIC_PASSWORD } });
      expect(basic.status).toBe(200);
      expect(basic.body.authentication).toEqual({ type: 'basic', username: 'svc', password: '[redacted]' });
      expect((await post(`/admin/integrations/${id}/tasks/getItem/invoke`, { path: { id: 7 } })).body.status).toBe(200);
      acceptedBearer = BEARER;
    });

    test('other auth types keep their secrets out of reads too', async () => {
      const apiKey = await createIntegration({ name: 'inventory-apikey', config: { server: { host: 'h' }, authentication: { type: 'api_key', name: 'X-Key', value: API_KEY } } });
      const oauth = await createIntegration({
        name: 'inventory-oauth',
        config: { server: { host: 'h' }, authentication: { type: 'oauth2_client_credentials', client_id: 'cid', client_secret: CLIENT_SECRET, token_url: 'http://h/token' } },
      });
      expect((await get(`/admin/integrations/${apiKey.id}/config`)).body.authentication).toEqual({ type: 'api_key', name: 'X-Key', in: 'header', value: '[redacted]' });
      expect((await get(`/admin/integrations/${oauth.id}/config`)).body.authentication).toEqual({
        type: 'oauth2_client_credentials',
        client_id: 'cid',
        client_secret: '[redacted]',
        token_url: 'http://h/token',
        auth_method: 'client_secret_post',
      });
    });

    test('clone: same configuration and secrets, new name, fresh roles, no grants', async () => {
      const res = await post(`/admin/integrations/${id}/clone`, { name: 'inventory-copy' });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ name: 'inventory-copy', model_id: MODEL_ID, roles: ['inventory-copy:admin', 'inventory-copy:GET', 'inventory-copy:POST', 'inventory-copy:DELETE'] });
      const original = await get(`/admin/integrations/${id}`);
      expect(res.body.config).toEqual(original.body.config);
      const invoked = await post(`/admin/integrations/${res.body.id as number}/tasks/getItem/invoke`, { path: { id: 7 } });
      expect(invoked.body).toMatchObject({ ok: true, body: { id: 7, name: 'real-lotus' } });
      const roles = await get(`/admin/integrations/${res.body.id as number}/roles`);
      expect(roles.body.items.every((r: { tokens: unknown[] }) => r.tokens.length === 0)).toBe(true);
      expect((await post(`/admin/integrations/${id}/clone`, { name: 'inventory-copy' })).status).toBe(409);
      expect((await post('/admin/integrations/99999/clone', { name: 'x' })).status).toBe(404);
    });

    test('rename renames the roles; the log level changes at once and shows in reads', async () => {
      const renamed = await patch(`/admin/integrations/${id}`, { name: 'inventory-main' });
      expect(renamed.status).toBe(200);
      expect(renamed.body.roles[0]).toBe('inventory-main:admin');
      const level = await put(`/admin/integrations/${id}/log-level`, { level: 'debug' });
      expect(level.status).toBe(200);
      expect(level.body).toEqual({ level: 'debug' });
      expect((await get(`/admin/integrations/${id}`)).body.log_level).toBe('debug');
      expect((await get(`/admin/integrations/${id}/config`)).body.logging.level).toBe('debug');
      expect((await put(`/admin/integrations/${id}/log-level`, { level: 'loud' })).status).toBe(422);
      expect((await patch(`/admin/integrations/${id}`, { name: 'inventory' })).status).toBe(200);
    });
  });

  test('the runtime applies a new log level without rebuilding the client', async () => {
    const mem = createMemoryLogger();
    const runtime = createIntegrationRuntime({ db: t.db, logger: mem.logger });
    const id = (await get('/admin/integrations')).body.items.find((i: { name: string }) => i.name === 'inventory').id as number;
    try {
      await t.db.query(`UPDATE integrations SET log_level = 'error' WHERE id = $1`, [id]);
      const quiet = await loadIntegration(t.db, id);
      const clientBefore = await runtime.clientFor(quiet);
      await runtime.invoke(quiet, 'ping', {});
      expect(mem.lines.filter((l) => l['message'] === 'integration response')).toHaveLength(0);

      runtime.setLogLevel(id, 'info');
      await runtime.invoke({ ...quiet, log_level: 'info' }, 'ping', {});
      expect(await runtime.clientFor({ ...quiet, log_level: 'info' })).toBe(clientBefore);
      expect(mem.lines.filter((l) => l['message'] === 'integration response')).toHaveLength(1);
      expect(mem.text()).not.toContain(BEARER);
    } finally {
      runtime.close();
      await t.db.query(`UPDATE integrations SET log_level = 'info' WHERE id = $1`, [id]);
    }
  });

  test('stub mode answers from the model examples without any request to the server', async () => {
    const stub = await createIntegration({ name: 'inventory-stub', config: inventoryConfig(), stub_mode: true });
    const before = inventory.requests.length;

    const item = await post(`/admin/integrations/${stub.id}/tasks/getItem/invoke`, { path: { id: 7 } });
    expect(item.status).toBe(200);
    expect(item.body).toMatchObject({ ok: true, method: 'GET', url: `http://127.0.0.1:${inventory.port}/api/items/7`, status: 200, statusText: 'OK', body: { id: 7, name: 'lotus' } });
    expect(item.body.headers['x-provisio-stub']).toBe('true');
    const list = await post(`/admin/integrations/${stub.id}/tasks/listItems/invoke`, { query: { q: 'x' } });
    expect(list.body).toMatchObject({ status: 200, url: `http://127.0.0.1:${inventory.port}/api/items?q=x`, body: [{ id: 1, name: 'widget' }, { id: 2, name: 'gadget' }] });
    const created = await post(`/admin/integrations/${stub.id}/tasks/createItem/invoke`, { body: { name: 'whatever' } });
    expect(created.body).toMatchObject({ ok: true, status: 201, body: { id: 42, name: 'stubbed' } });
    const deleted = await post(`/admin/integrations/${stub.id}/tasks/deleteItem/invoke`, { path: { id: 1 } });
    expect(deleted.body).toMatchObject({ ok: true, status: 204, body: null });
    // Input is still validated in stub mode.
    expect((await post(`/admin/integrations/${stub.id}/tasks/getItem/invoke`, {})).status).toBe(422);

    expect(inventory.requests.length).toBe(before);

    const off = await patch(`/admin/integrations/${stub.id}`, { stub_mode: false });
    expect(off.body.stub_mode).toBe(false);
    expect((await post(`/admin/integrations/${stub.id}/tasks/getItem/invoke`, { path: { id: 7 } })).body.body).toEqual({ id: 7, name: 'real-lotus' });
    expect(inventory.requests.length).toBe(before + 1);
  });

  test('health check: online, degraded (non-2xx or slow), offline; stored and shown in reads', async () => {
    const id = (await get('/admin/integrations')).body.items.find((i: { name: string }) => i.name === 'inventory').id as number;
    pingMode = 'ok';
    const online = await post(`/admin/integrations/${id}/health-check`, {});
    expect(online.status).toBe(200);
    expect(online.body).toMatchObject({ status: 'online', detail: null, http_status: 200 });
    expect(typeof online.body.latency_ms).toBe('number');
    expect((await get(`/admin/integrations/${id}`)).body.health_status).toEqual(online.body);

    pingMode = 'fail';
    const failing = await post(`/admin/integrations/${id}/health-check`, {});
    expect(failing.body).toMatchObject({ status: 'degraded', http_status: 503 });
    expect(failing.body.detail).toContain('503');

    pingMode = 'slow';
    expect((await patch(`/admin/integrations/${id}`, { health: { operation_id: 'ping', slow_ms: 50 } })).status).toBe(200);
    const slow = await post(`/admin/integrations/${id}/health-check`, {});
    expect(slow.body).toMatchObject({ status: 'degraded', http_status: 200 });
    expect(slow.body.detail).toMatch(/slower than 50 ms/);
    pingMode = 'ok';

    const dead = await createIntegration({ name: 'inventory-offline', config: { server: { host: '127.0.0.1', port: await closedPort() } }, health: { operation_id: 'ping' } });
    const offline = await post(`/admin/integrations/${dead.id}/health-check`, {});
    expect(offline.body).toMatchObject({ status: 'offline', http_status: null });
    expect(offline.body.detail).toMatch(/127\.0\.0\.1/);
    expect((await get(`/admin/integrations/${dead.id}`)).body.health_status.status).toBe('offline');

    const none = await createIntegration({ name: 'inventory-nohealth', config: { server: { host: 'h' } } });
    expect((await post(`/admin/integrations/${none.id}/health-check`, {})).status).toBe(409);
    expect((await patch(`/admin/integrations/${id}`, { health: null })).body.health).toBeNull();
  });

  test('scheduled health checks run for integrations whose interval has passed', async () => {
    pingMode = 'ok';
    const due = await createIntegration({ name: 'inventory-scheduled', config: inventoryConfig(), health: { operation_id: 'ping', interval_s: 60 } });
    const runtime = createIntegrationRuntime({ db: t.db, logger: createMemoryLogger().logger });
    try {
      const first = await runDueHealthChecks(t.db, runtime, createMemoryLogger().logger);
      expect(first).toContain(due.id);
      expect((await get(`/admin/integrations/${due.id}`)).body.health_status).toMatchObject({ status: 'online', http_status: 200 });
      // Checked just now: not due again for a minute.
      expect(await runDueHealthChecks(t.db, runtime, createMemoryLogger().logger)).not.toContain(due.id);
      await t.db.query(`UPDATE integrations SET health_checked_at = now() - interval '61 seconds' WHERE id = $1`, [due.id]);
      expect(await runDueHealthChecks(t.db, runtime, createMemoryLogger().logger)).toContain(due.id);
    } finally {
      runtime.close();
    }
    expect((await patch(`/admin/integrations/${due.id}`, { health: { operation_id: 'ping', interval_s: 5 } })).status).toBe(422);
  });

  test('delete removes the integration with its roles and grants', async () => {
    const doomed = await createIntegration({ name: 'inventory-doomed', config: { server: { host: 'h' } } });
    const tok = await mint('doomed-holder');
    expect((await put(`/admin/integrations/${doomed.id}/roles/GET/tokens/${tok.id}`, {})).status).toBe(200);
    expect((await del(`/admin/integrations/${doomed.id}`)).status).toBe(204);
    expect((await get(`/admin/integrations/${doomed.id}`)).status).toBe(404);
    expect((await t.db.query('SELECT 1 FROM integration_roles WHERE integration_id = $1', [doomed.id])).rowCount).toBe(0);
    expect((await t.db.query('SELECT 1 FROM api_token_integration_roles WHERE token_id = $1', [tok.id])).rowCount).toBe(0);
    expect((await del(`/admin/integrations/${doomed.id}`)).status).toBe(404);
  });

  test('reads need admin:read, writes admin:*', async () => {
    const reader = await mint('plain-reader');
    expect((await get('/admin/integrations', reader.headers)).status).toBe(200);
    expect((await post('/admin/integrations', { name: 'nope', model_id: MODEL_ID, config: { server: { host: 'h' } } }, reader.headers)).status).toBe(403);
    expect((await t.http().get('/admin/integrations')).status).toBe(401);
  });

  // Last: reads every response this file received and every audit row written.
  test('no secret ever appears in a response body or an audit row', async () => {
    const secrets = [BEARER, BEARER_2, BASIC_PASSWORD, PROXY_PASSWORD, API_KEY, CLIENT_SECRET, mtlsKeyDataUrl, mtlsKeyDataUrl.slice(40, 120)];
    expect(bodies.length).toBeGreaterThan(50);
    const all = bodies.join('\n');
    for (const s of secrets) expect(all).not.toContain(s);
    const audit = await t.db.query<{ diff: unknown }>(`SELECT diff FROM audit_log`);
    const auditText = JSON.stringify(audit.rows);
    expect(auditText).toContain('credentials_changed');
    for (const s of secrets) expect(auditText).not.toContain(s);
  });
});
