import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createLogger } from '../../adapter';
import { loadIntegrationModelFiles } from '../../integration-model';
import { createTestApp, type TestApp } from '../support/app';

const FIXTURES = join(__dirname, '..', 'fixtures', 'integration-models');
const fixture = (name: string) => readFile(join(FIXTURES, name), 'utf8');
const modelPath = (id: string) => `/admin/integration-models/${encodeURIComponent(id)}`;

describe('integration models API', () => {
  let t: TestApp;
  let auditor: Record<string, string>;

  beforeAll(async () => {
    t = await createTestApp();
    const minted = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'models-auditor', scopes: ['admin:read'], role: 'auditor' });
    expect(minted.status).toBe(201);
    auditor = { Authorization: `Bearer ${minted.body.token as string}` };
  });
  afterAll(async () => {
    await t.close();
  });

  test('imports a document sent as JSON: id, operations, and the dropped ones with the reason', async () => {
    const document = parse(await fixture('hello-inventory.yaml')) as Record<string, unknown>;
    const res = await t.http().post('/admin/integration-models').set(t.admin).send(document);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      id: 'Hello Inventory:1.0.0',
      title: 'Hello Inventory',
      version: '1.0.0',
      source_version: '3.0.3',
      source: 'api',
      verbs: ['GET', 'POST', 'DELETE'],
      security_schemes: [{ name: 'bearer', kind: 'httpBearer' }],
      integration_count: 0,
      created_by: 'admin:key',
      dropped: [{ method: 'GET', path: '/legacy', reason: 'missing operationId' }],
    });
    expect(res.body.operations.map((o: { operationId: string }) => o.operationId)).toEqual(['ping', 'listItems', 'createItem', 'getItem', 'deleteItem']);
    expect(res.body.operations[3]).toEqual({ operationId: 'getItem', method: 'GET', path: '/items/{id}', summary: 'Get an item' });

    const audit = await t.db.query<{ action: string; triggered_by: string }>(
      `SELECT action, triggered_by FROM audit_log WHERE entity = 'integration_model' AND entity_id = $1`,
      ['Hello Inventory:1.0.0'],
    );
    expect(audit.rows).toEqual([{ action: 'create', triggered_by: 'admin:key' }]);
  });

  test('imports YAML text sent as {document}; a Swagger 2.0 document is converted', async () => {
    const yamlRes = await t.http().post('/admin/integration-models').set(t.admin).send({ document: await fixture('petstore-3.0.yaml') });
    expect(yamlRes.status).toBe(201);
    expect(yamlRes.body.id).toBe('Petstore:1.2.0');

    const swagger = await t.http().post('/admin/integration-models').set(t.admin).send({ document: await fixture('legacy-swagger-2.0.json') });
    expect(swagger.status).toBe(201);
    expect(swagger.body.source_version).toBe('2.0');
  });

  test('the same id again is a 409', async () => {
    const res = await t.http().post('/admin/integration-models').set(t.admin).send({ document: await fixture('hello-inventory.yaml') });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'CONFLICT' });
    expect(res.body.detail).toContain('Hello Inventory:1.0.0');
  });

  test('an invalid document is a 422 that says where, with lines for text', async () => {
    const res = await t.http().post('/admin/integration-models').set(t.admin).send({ document: await fixture('invalid-model.yaml') });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    const paths = (res.body.errors as { path: string }[]).map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['/body/document/paths/~1things/get/parameters/0/required']));
    expect(paths.some((p) => p.startsWith('/body/document/paths/~1things/get/responses/200/content/application~1json/schema'))).toBe(true);
    const required = (res.body.issues as { path: string; line?: number }[]).find((i) => i.path === '/paths/~1things/get/parameters/0/required');
    expect(required?.line).toBe(12);

    const notOpenApi = await t.http().post('/admin/integration-models').set(t.admin).send({ hello: 'world' });
    expect(notOpenApi.status).toBe(422);
    expect(notOpenApi.body.errors[0].path).toBe('/body');
    const notYaml = await t.http().post('/admin/integration-models').set(t.admin).send({ document: 'openapi: [unclosed' });
    expect(notYaml.status).toBe(422);
    expect((await t.db.query(`SELECT 1 FROM integration_models WHERE id LIKE 'Broken%'`)).rowCount).toBe(0);
  });

  test('our own spec loads as an integration model with no operation dropped', async () => {
    const spec = await t.http().get('/openapi.json');
    const res = await t.http().post('/admin/integration-models').set(t.admin).send(spec.body);
    expect(res.status).toBe(201);
    expect(res.body.id).toBe(`${spec.body.info.title}:${spec.body.info.version}`);
    expect(res.body.dropped).toEqual([]);
    expect(res.body.operations.map((o: { operationId: string }) => o.operationId)).toEqual(
      expect.arrayContaining(['createIntegrationModel', 'invokeIntegrationTask', 'createOrder', 'getHealth']),
    );
    expect(res.body.warnings).toEqual([]);
  });

  test('lists and reads models; readers with admin:read may, but may not import', async () => {
    const list = await t.http().get('/admin/integration-models').set(auditor);
    expect(list.status).toBe(200);
    const hello = list.body.items.find((m: { id: string }) => m.id === 'Hello Inventory:1.0.0');
    expect(hello).toMatchObject({ operation_count: 5, dropped_count: 1, integration_count: 0, source: 'api' });

    const one = await t.http().get(modelPath('Hello Inventory:1.0.0')).set(auditor);
    expect(one.status).toBe(200);
    expect(one.body.operations).toHaveLength(5);

    const missing = await t.http().get(modelPath('Nope:0')).set(t.admin);
    expect(missing.status).toBe(404);

    const denied = await t.http().post('/admin/integration-models').set(auditor).send({ document: await fixture('hello-inventory.yaml') });
    expect(denied.status).toBe(403);
  });

  test('delete: 409 while an integration uses the model, 204 after', async () => {
    const created = await t.http().post('/admin/integrations').set(t.admin).send({
      name: 'uses-petstore',
      model_id: 'Petstore:1.2.0',
      config: { server: { host: '127.0.0.1', port: 9 } },
    });
    expect(created.status).toBe(201);
    const blocked = await t.http().delete(modelPath('Petstore:1.2.0')).set(t.admin);
    expect(blocked.status).toBe(409);
    expect(blocked.body.detail).toContain('uses-petstore');

    expect((await t.http().delete(`/admin/integrations/${created.body.id as number}`).set(t.admin)).status).toBe(204);
    expect((await t.http().delete(modelPath('Petstore:1.2.0')).set(t.admin)).status).toBe(204);
    expect((await t.http().get(modelPath('Petstore:1.2.0')).set(t.admin)).status).toBe(404);
    expect((await t.http().delete(modelPath('Petstore:1.2.0')).set(t.admin)).status).toBe(404);
  });

  test('start-up loading: every file of the directory is upserted; an invalid one is logged and skipped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'provisio-models-'));
    try {
      await writeFile(join(dir, 'ids.yaml'), await fixture('operation-ids.yaml'));
      await writeFile(join(dir, 'broken.yaml'), await fixture('invalid-model.yaml'));
      await writeFile(join(dir, 'README.md'), 'not a model');
      const logger = createLogger({ silent: true });
      const first = await loadIntegrationModelFiles(t.db, logger, dir);
      expect(first.failed).toEqual(['broken.yaml']);
      expect(first.loaded).toHaveLength(1);
      const id = first.loaded[0]!;
      const row = await t.http().get(modelPath(id)).set(t.admin);
      expect(row.status).toBe(200);
      expect(row.body.source).toBe('file');
      expect(row.body.created_by).toBe('system:model-file:ids.yaml');
      expect(row.body.dropped.length).toBeGreaterThan(0);

      // Loading again changes nothing: no second audit row.
      await loadIntegrationModelFiles(t.db, logger, dir);
      const audit = await t.db.query(`SELECT 1 FROM audit_log WHERE entity = 'integration_model' AND entity_id = $1`, [id]);
      expect(audit.rowCount).toBe(1);

      expect(await loadIntegrationModelFiles(t.db, logger, join(dir, 'absent'))).toEqual({ loaded: [], failed: [] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('start-up loading skips a file whose text is unchanged since it was loaded, and reloads it once it changes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'provisio-models-'));
    const logger = createLogger({ silent: true });
    const text = (await fixture('hello-inventory.yaml')).replace(/title: Hello Inventory/, 'title: Hashed Inventory');
    const file = join(dir, 'hashed.yaml');
    try {
      await writeFile(file, text);
      const first = await loadIntegrationModelFiles(t.db, logger, dir);
      expect(first).toEqual({ loaded: ['Hashed Inventory:1.0.0'], failed: [] });
      const id = first.loaded[0]!;
      const stored = await t.db.query<{ sha: string }>('SELECT source_sha256 AS sha FROM integration_models WHERE id = $1', [id]);
      expect(stored.rows[0]!.sha).toMatch(/^[0-9a-f]{64}$/);

      // A stored document that no longer matches the file shows whether the file was read again: unchanged text
      // is not parsed, so the stored row stays as it is.
      await t.db.query(`UPDATE integration_models SET title = 'marker' WHERE id = $1`, [id]);
      expect(await loadIntegrationModelFiles(t.db, logger, dir)).toEqual({ loaded: [id], failed: [] });
      expect((await t.db.query<{ title: string }>('SELECT title FROM integration_models WHERE id = $1', [id])).rows[0]!.title).toBe('marker');

      // Changed text (one operation's summary): parsed, validated and stored, with the new hash, audited as an update.
      await writeFile(file, text.replace(/summary: ([^\n]+)/, 'summary: Changed $1'));
      expect(await loadIntegrationModelFiles(t.db, logger, dir)).toEqual({ loaded: [id], failed: [] });
      const after = await t.db.query<{ title: string; sha: string }>('SELECT title, source_sha256 AS sha FROM integration_models WHERE id = $1', [id]);
      expect(after.rows[0]!.title).toBe('Hashed Inventory');
      expect(after.rows[0]!.sha).not.toBe(stored.rows[0]!.sha);
      const audit = await t.db.query<{ action: string }>(`SELECT action FROM audit_log WHERE entity = 'integration_model' AND entity_id = $1 ORDER BY id`, [id]);
      expect(audit.rows.map((r) => r.action)).toEqual(['create', 'update']);

      // A file that has become invalid is reported as before, whatever was loaded from it.
      await writeFile(file, await fixture('invalid-model.yaml'));
      expect((await loadIntegrationModelFiles(t.db, logger, dir)).failed).toEqual(['hashed.yaml']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
