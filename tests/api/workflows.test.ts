// /admin/workflows and /admin/runs through the app, with a real workflow engine (PGlite or PostgreSQL).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import type { Express } from 'express';
import { createJobQueue, createLogger, type JobQueue } from '../../adapter';
import { buildApp } from '../../server/app';
import { buildConfig } from '../../server/config';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import { createOrder } from '../../server/domain/orders/orders';
import { createWorkflowRuntime, type WorkflowRuntime } from '../../server/domain/runbooks/workflow-runtime';
import { TASK_KIND_SPECS, TASK_KINDS } from '../../workflows/document';
import { TEST_ADMIN_KEY } from '../support/app';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { createIntegrationRuntime } from '../../integration-model';
import { TEST_ENGINE_CONFIG } from '../support/engine-config';

jest.setTimeout(60_000);

const admin = { 'X-Admin-Key': TEST_ADMIN_KEY };
let t: TestDatabase;
let queue: JobQueue;
let wf: WorkflowRuntime;
let app: Express;
let hook: LoopbackServer;
let reader: Record<string, string>;
const http = () => request(app);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const linear = (name: string, url: string) => ({
  name,
  description: 'one webhook',
  inputSchema: { type: 'object', properties: { url: { type: 'string', default: url } } },
  steps: [
    {
      id: 'call',
      kind: 'webhook',
      summary: 'Call the hook',
      url: '{{inputs.url}}',
      incoming: { application: { app_id: 'x' }, target_user: { email: 'a@example.com' } },
    },
  ],
});

async function waitForRun(id: string, statuses: string[]): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await http().get(`/admin/runs/${id}`).set(admin);
    if (statuses.includes(res.body.status as string)) return res.body as Record<string, unknown>;
    if (Date.now() > deadline) throw new Error(`run ${id} is ${String(res.body.status)}`);
    await sleep(50);
  }
}

beforeAll(async () => {
  hook = await startLoopbackServer((req, res) =>
    req.url === '/ok' ? sendJson(res, 200, { response: 'PROVISIONED_USER' }) : sendJson(res, 200, { response: 'NO_PROVISIONING_ACTION' }),
  );
  t = await createTestDatabase();
  const logger = createLogger({ silent: !process.env['TEST_LOGS'] });
  queue = createJobQueue(t.db, { logger, schedule: false });
  await queue.start();
  wf = createWorkflowRuntime({ db: t.db, queue, logger, integrations: createIntegrationRuntime({ db: t.db, queue, logger }), config: TEST_ENGINE_CONFIG });
  await wf.startWorkers({ teamSize: 2 });
  const config = buildConfig({ validateResponses: true, adminKey: TEST_ADMIN_KEY });
  app = buildApp({ db: t.db, queue, logger, workflowEngine: wf.engine, integrations: wf.integrations, adminKeyHash: async () => hashSecret(TEST_ADMIN_KEY) }, config);
  const minted = await http().post('/admin/api-tokens').set(admin).send({ name: 'auditor', scopes: ['admin:read'], role: 'auditor' });
  expect(minted.status).toBe(201);
  reader = { Authorization: `Bearer ${minted.body.token as string}` };
});

afterAll(async () => {
  await wf?.stop();
  await queue?.stop({ graceful: false, timeoutMs: 2000 });
  await t?.drop();
  await hook?.close();
});

describe('workflow documents', () => {
  test('save creates versions; get, versions and list show them', async () => {
    const first = await http().post('/admin/workflows').set(admin).send(linear('Hook once', `${hook.url}/ok`));
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ name: 'Hook once', version: 1, created_by: 'admin:key', document: { name: 'Hook once' } });
    const second = await http().post('/admin/workflows').set(admin).send({ ...linear('Hook once', `${hook.url}/ok`), description: 'v2' });
    expect(second.body.version).toBe(2);

    const latest = await http().get(`/admin/workflows/${encodeURIComponent('Hook once')}`).set(reader);
    expect(latest.status).toBe(200);
    expect(latest.body).toMatchObject({ version: 2, document: { description: 'v2' } });
    const v1 = await http().get(`/admin/workflows/${encodeURIComponent('Hook once')}?version=1`).set(reader);
    expect(v1.body).toMatchObject({ version: 1, document: { description: 'one webhook' } });
    expect((await http().get('/admin/workflows/Hook%20once/versions').set(reader)).body).toEqual({ name: 'Hook once', versions: [1, 2] });
    const list = await http().get('/admin/workflows').set(reader);
    expect(list.status).toBe(200);
    expect(list.body.items).toEqual([expect.objectContaining({ name: 'Hook once', latest_version: 2, description: 'v2' })]);

    expect((await http().get('/admin/workflows/nope').set(reader)).status).toBe(404);
    expect((await http().get('/admin/workflows/nope/versions').set(reader)).status).toBe(404);
    // An auditor reads but does not write.
    expect((await http().post('/admin/workflows').set(reader).send(linear('x', 'http://x'))).status).toBe(403);
  });

  test('a document that does not compile is a 422 pointing at the task', async () => {
    const res = await http()
      .post('/admin/workflows')
      .set(admin)
      .send({
        name: 'Broken',
        tasks: {
          a: { kind: 'integration', operation: 'nosuch/op' },
          b: { kind: 'wait', until: 'duration', incoming: { duration: '{{inputs.missing}}' } },
        },
        transitions: { workflow_start: { a: { type: 'standard', state: 'success' } }, a: { workflow_end: { type: 'standard', state: 'success' } } },
      });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ status: 422, code: 'VALIDATION_FAILED' });
    const paths = (res.body.errors as { path: string; message: string }[]).map((e) => e.path);
    expect(paths.some((p) => p.startsWith('/body/tasks/a'))).toBe(true);
    expect(paths.some((p) => p.startsWith('/body/tasks/b'))).toBe(true);
    expect((await http().get('/admin/workflows/Broken').set(admin)).status).toBe(404);
  });

  test('a step whose kind is not a string is a 422 naming it, never reaching the compiler', async () => {
    for (const doc of [{ name: 'KindNumber', steps: [{ id: 's', kind: 123 }] }, { name: 'KindNumber', tasks: { a: { kind: 5 } } }]) {
      const res = await http().post('/admin/workflows').set(admin).send(doc);
      expect(res.status).toBe(422);
      expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path: expect.stringMatching(/^\/body\/(steps\/0|tasks\/a)\/kind$/) })]));
    }
    expect((await http().get('/admin/workflows/KindNumber').set(admin)).status).toBe(404);
  });

  test('export is a file download of the stable export; importing it gives a new version', async () => {
    const res = await http().get('/admin/workflows/Hook%20once/export?version=1').set(reader);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.headers['content-disposition']).toBe('attachment; filename="hook-once.json"');
    expect(res.text.endsWith('}\n')).toBe(true);
    const doc = JSON.parse(res.text) as Record<string, unknown>;
    expect(doc).toMatchObject({ name: 'Hook once', description: 'one webhook' });

    const imported = await http().post('/admin/workflows/import').set(admin).send(doc);
    expect(imported.status).toBe(200);
    expect(imported.body).toMatchObject({ format: 'provisio', unmapped: [], warnings: [], issues: [], saved: { name: 'Hook once', version: 3 } });
    const again = await http().get('/admin/workflows/Hook%20once/export').set(reader);
    expect(again.text).toBe(res.text.replace('"version": 1', '"version": 3'));
  });

  test('an Itential document is converted; unmapped tasks listed; not saved while it does not compile', async () => {
    const itential = JSON.parse(await readFile(join(__dirname, '..', 'fixtures', 'workflows', 'itential-vm-power-on.json'), 'utf8')) as object;
    const res = await http().post('/admin/workflows/import').set(admin).send(itential);
    expect(res.status).toBe(200);
    expect(res.body.format).toBe('itential');
    expect(res.body.saved).toBeNull();
    expect(res.body.unmapped).toEqual([expect.objectContaining({ task_id: '0a09', name: 'ViewData', app: 'WorkFlowEngine', type: 'manual' })]);
    expect(res.body.warnings.length).toBeGreaterThan(0);
    expect(res.body.document.tasks['0a02']).toMatchObject({ kind: 'integration', operation: 'vcenter/rest_vcenter_vm_list' });
    // No vcenter integration is configured here: the issue points at the task.
    expect((res.body.issues as { path: string }[]).some((i) => i.path.startsWith('/body/tasks/0a02'))).toBe(true);
    expect((await http().get('/admin/workflows/Power%20On%20VM').set(admin)).status).toBe(404);
  });

  test('concurrency limit set and removed', async () => {
    const set = await http().put('/admin/workflows/Hook%20once/concurrency').set(admin).send({ max_active: 2, on_limit: 'reject' });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({ max_active: 2, on_limit: 'reject' });
    expect(await wf.engine.getConcurrencyLimit('Hook once')).toEqual({ maxActive: 2, onLimit: 'reject' });
    const cleared = await http().put('/admin/workflows/Hook%20once/concurrency').set(admin).send({ max_active: null });
    expect(cleared.body).toEqual({ max_active: null });
    expect(await wf.engine.getConcurrencyLimit('Hook once')).toBeNull();
    expect((await http().put('/admin/workflows/nope/concurrency').set(admin).send({ max_active: 1 })).status).toBe(404);
    expect((await http().put('/admin/workflows/Hook%20once/concurrency').set(admin).send({ max_active: 0 })).status).toBe(422);
  });
});

describe('the canvas palette', () => {
  test('lists every built-in kind with its schemas, and each integration operation', async () => {
    const model = await http()
      .post('/admin/integration-models')
      .set(admin)
      .send({ document: await readFile(join(__dirname, '..', 'fixtures', 'integration-models', 'hello-inventory.yaml'), 'utf8') });
    expect(model.status).toBe(201);
    const integration = await http()
      .post('/admin/integrations')
      .set(admin)
      .send({ name: 'inventory', model_id: 'Hello Inventory:1.0.0', config: { server: { host: '127.0.0.1', port: 9 } } });
    expect(integration.status).toBe(201);

    const res = await http().get('/admin/workflows/tasks').set(reader);
    expect(res.status).toBe(200);
    const items = res.body.items as { name: string; source: string; kind: string; inputSchema: unknown; outputSchema: unknown; operationId?: string; integration?: string }[];
    for (const kind of TASK_KINDS) {
      const item = items.find((i) => i.source === 'builtin' && i.name === kind);
      expect(item).toMatchObject({ kind, inputSchema: TASK_KIND_SPECS[kind].inputSchema, outputSchema: TASK_KIND_SPECS[kind].outputSchema });
    }
    const ops = items.filter((i) => i.source === 'integration').map((i) => i.name);
    expect(ops).toEqual(expect.arrayContaining(['inventory/ping', 'inventory/listItems', 'inventory/createItem', 'inventory/getItem', 'inventory/deleteItem']));
    const getItem = items.find((i) => i.name === 'inventory/getItem')!;
    expect(getItem).toMatchObject({ kind: 'integration', integration: 'inventory', operationId: 'getItem', method: 'GET' });
    expect(getItem.inputSchema).toEqual(expect.objectContaining({ type: 'object' }));

    // A workflow using an operation of the integration now compiles.
    const saved = await http()
      .post('/admin/workflows')
      .set(admin)
      .send({ name: 'List inventory', steps: [{ id: 'list', kind: 'integration', operation: 'inventory/listItems' }] });
    expect(saved.status).toBe(201);
  });
});

describe('runs', () => {
  async function startRun(workflow: string, inputs: Record<string, unknown> = {}): Promise<string> {
    const run = await t.db.transaction((tx) => wf.engine.startRun(tx, { workflow, inputs, createdBy: 'test' }));
    return run.id;
  }

  test('a run with its steps; listed with filters', async () => {
    const id = await startRun('Hook once', { url: `${hook.url}/ok` });
    const run = await waitForRun(id, ['succeeded', 'failed']);
    expect(run).toMatchObject({ id, workflow: 'Hook once', status: 'succeeded', error: null, order_id: null, rerun_of: null });
    expect(run['steps']).toEqual([
      expect.objectContaining({ step_id: 'call', kind: 'webhook', attempt: 1, status: 'succeeded', output: expect.objectContaining({ response: 'PROVISIONED_USER' }), idempotency_key: `${id}:call:1` }),
    ]);
    expect(typeof (run['steps'] as { duration_ms: unknown }[])[0]!.duration_ms).toBe('number');
    const listed = await http().get('/admin/runs?workflow=Hook%20once&status=succeeded').set(reader);
    expect(listed.status).toBe(200);
    expect((listed.body.items as { id: string }[]).map((r) => r.id)).toContain(id);
    expect((await http().get('/admin/runs?status=failed').set(reader)).body.items.map((r: { id: string }) => r.id)).not.toContain(id);
    expect((await http().get('/admin/runs/6f0c9a4e-8a51-4d0e-9a53-2a7f5c1d9b10').set(reader)).status).toBe(404);
  });

  test('a failed run is rerun (history kept); a finished run cannot be cancelled', async () => {
    await http().post('/admin/workflows').set(admin).send(linear('Hook broken', `${hook.url}/no`));
    const id = await startRun('Hook broken', { url: `${hook.url}/no` });
    const failed = await waitForRun(id, ['failed', 'succeeded']);
    expect(failed).toMatchObject({ status: 'failed', error: { step_id: 'call' } });
    const rerun = await http().post(`/admin/runs/${id}/rerun`).set(admin).send({ from: 'failed' });
    expect(rerun.status).toBe(201);
    expect(rerun.body).toMatchObject({ rerun_of: id, workflow: 'Hook broken' });
    await waitForRun(rerun.body.id as string, ['failed']);
    expect((await http().post(`/admin/runs/${id}/cancel`).set(admin)).status).toBe(409);
    expect((await http().post(`/admin/runs/${id}/rerun`).set(admin).send({ from: 'sideways' })).status).toBe(422);
    expect((await http().post(`/admin/runs/${id}/rerun`).set(reader).send({ from: 'start' })).status).toBe(403);
  });

  test('a waiting run is resumed through its step, another is cancelled', async () => {
    await http()
      .post('/admin/workflows')
      .set(admin)
      .send({ name: 'Wait for me', steps: [{ id: 'approve', kind: 'wait', until: 'resumed', timeout: '10m' }] });
    const id = await startRun('Wait for me');
    await waitForRun(id, ['waiting']);
    const resumed = await http().post(`/admin/runs/${id}/steps/approve/resume`).set(admin).send({ data: { approved: true } });
    expect(resumed.status).toBe(200);
    const done = await waitForRun(id, ['succeeded', 'failed']);
    expect(done['status']).toBe('succeeded');

    const other = await startRun('Wait for me');
    await waitForRun(other, ['waiting']);
    const cancelled = await http().post(`/admin/runs/${other}/cancel`).set(admin);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    const audit = await t.db.query<{ action: string }>(`SELECT action FROM audit_log WHERE entity = 'workflow_run' ORDER BY id`);
    expect(audit.rows.map((r) => r.action)).toEqual(['rerun', 'resume', 'cancel']);
  });
});

describe('integration tasks in stub mode', () => {
  test('a run against a stub-mode integration completes with the example body, and the host sees no request', async () => {
    // The "real" host answers 503 to anything: a request that got through would fail the step and be recorded.
    const host = await startLoopbackServer((_req, res) => sendJson(res, 503, { error: 'should not be called' }));
    try {
      const created = await http()
        .post('/admin/integrations')
        .set(admin)
        .send({ name: 'inventory-stub', model_id: 'Hello Inventory:1.0.0', stub_mode: true, config: { server: { host: '127.0.0.1', port: host.port, base_path: '/api' } } });
      expect(created.status).toBe(201);
      const saved = await http()
        .post('/admin/workflows')
        .set(admin)
        .send({ name: 'Stubbed lookup', steps: [{ id: 'get', kind: 'integration', operation: 'inventory-stub/getItem', incoming: { path: { id: 7 } } }] });
      expect(saved.status).toBe(201);

      const run = await waitForRun((await t.db.transaction((tx) => wf.engine.startRun(tx, { workflow: 'Stubbed lookup', createdBy: 'test' }))).id, ['succeeded', 'failed']);
      expect(run['status']).toBe('succeeded');
      const step = (run['steps'] as { step_id: string; status: string; output: Record<string, unknown> }[])[0]!;
      expect(step).toMatchObject({ step_id: 'get', status: 'succeeded' });
      expect(step.output).toMatchObject({ ok: true, method: 'GET', url: `http://127.0.0.1:${host.port}/api/items/7`, status: 200, body: { id: 7, name: 'lotus' } });
      expect((step.output['headers'] as Record<string, string>)['x-provisio-stub']).toBe('true');
      expect(host.requests).toHaveLength(0);

      // Out of stub mode the same runbook really calls the host (and fails on its 503): the stub was what kept it away.
      expect((await http().patch(`/admin/integrations/${created.body.id as number}`).set(admin).send({ stub_mode: false })).status).toBe(200);
      await http()
        .post('/admin/workflows')
        .set(admin)
        .send({ name: 'Stubbed lookup', steps: [{ id: 'get', kind: 'integration', operation: 'inventory-stub/getItem', incoming: { path: { id: 7 } }, retry: { maxAttempts: 1 } }] });
      const real = await waitForRun((await t.db.transaction((tx) => wf.engine.startRun(tx, { workflow: 'Stubbed lookup', createdBy: 'test' }))).id, ['succeeded', 'failed']);
      expect(real).toMatchObject({ status: 'failed', error: { code: 'HTTP_5XX', step_id: 'get' } });
      expect(host.requests.length).toBeGreaterThanOrEqual(1);
    } finally {
      await host.close();
    }
  });
});

describe('orders driven by runs, seen through the API', () => {
  test('GET /orders/{id} shows the runbook step with its duration; the run is listed by order', async () => {
    const { rows } = await t.db.query<{ id: number }>(
      `INSERT INTO asset_types (name, assignment_model, provision_runbook) VALUES ('Hooked seat', 'personal', 'Hook once') RETURNING id`,
    );
    expect(rows[0]).toBeDefined();
    const order = await createOrder(
      { db: t.db, queue },
      { assetType: { name: 'Hooked seat' }, source: 'api', userEmail: 'sam@example.com', userName: 'Sam' },
      { triggeredBy: 'system:test' },
    );
    let body: Record<string, unknown> = {};
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const res = await http().get(`/orders/${order.id}`).set(admin);
      expect(res.status).toBe(200);
      body = res.body as Record<string, unknown>;
      if (body['status'] === 'provisioned' || body['status'] === 'failed') break;
      await sleep(50);
    }
    expect(body['status']).toBe('provisioned');
    const steps = body['steps'] as { step_id: string; name: string; status: string; attempt: number; duration_ms: number | null }[];
    expect(steps).toEqual([expect.objectContaining({ step_id: 'call', name: 'Call the hook', status: 'succeeded', attempt: 1 })]);
    expect(typeof steps[0]!.duration_ms).toBe('number');

    const runs = await http().get(`/admin/runs?order_id=${order.id}`).set(reader);
    expect(runs.status).toBe(200);
    // A personal type's order gets its own asset, so the run is locked on that asset, as a pooled one is.
    expect(body['assigned_asset_id']).toEqual(expect.any(Number));
    expect(runs.body.items).toEqual([expect.objectContaining({ workflow: 'Hook once', status: 'succeeded', order_id: Number(order.id), lock_key: `asset:${String(body['assigned_asset_id'])}` })]);
    const run = await http().get(`/admin/runs/${runs.body.items[0].id as string}`).set(reader);
    expect(run.body).toMatchObject({ order_id: Number(order.id), variables: { order: { id: Number(order.id), user_email: 'sam@example.com', username: 'sam' } } });
  });
});
