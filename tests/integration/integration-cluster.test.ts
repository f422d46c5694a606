// Calls of an integration routed to a gateway cluster are made by that cluster's workers through the queue, never by
// the process that asks. On PGlite the worker runs in this process (one process owns the database); on PostgreSQL it
// is a real `provisio worker --cluster edge-1` child process.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createLogger } from '../../adapter';
import { clusterQueueName, createIntegrationRuntime, registerClusterWorker, type IntegrationRuntime } from '../../integration-model';
import { createWorkflowRuntime, type WorkflowRuntime } from '../../server/domain/runbooks/workflow-runtime';
import { createTestApp, type TestApp } from '../support/app';
import { spawnCli, waitForOutput } from '../support/cli';
import { testEngine } from '../support/db';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';

jest.setTimeout(90_000);

const MODEL_ID = 'Hello Inventory:1.0.0';
const BEARER = 'cluster-bearer-Wq27nS';

describe(`integration calls routed to a gateway cluster (${testEngine})`, () => {
  let t: TestApp;
  let target: LoopbackServer;
  let child: ChildProcessWithoutNullStreams | undefined;
  let inProcess: IntegrationRuntime | undefined;
  let workflows: WorkflowRuntime | undefined;

  const post = (path: string, body: unknown) => t.http().post(path).set(t.admin).send(body as object);
  const config = (extra: Record<string, unknown>) => ({
    server: { host: '127.0.0.1', port: target.port, base_path: '/api' },
    authentication: { type: 'bearer', token: BEARER },
    ...extra,
  });
  async function createIntegration(name: string, cfg: Record<string, unknown>): Promise<number> {
    const res = await post('/admin/integrations', { name, model_id: MODEL_ID, config: cfg });
    expect(res.status).toBe(201);
    return res.body.id as number;
  }

  beforeAll(async () => {
    target = await startLoopbackServer((req, res) => {
      if (req.headers.authorization !== `Bearer ${BEARER}`) return sendJson(res, 401, { error: 'unauthorised' });
      return sendJson(res, 200, { status: 'ok', via: 'target' });
    });
    t = await createTestApp();
    const model = await post('/admin/integration-models', { document: await readFile(join(__dirname, '..', 'fixtures', 'integration-models', 'hello-inventory.yaml'), 'utf8') });
    expect(model.status).toBe(201);
    if (t.databaseUrl) {
      child = spawnCli(['worker', '--cluster', 'edge-1'], { DATABASE_URL: t.databaseUrl, LOG_LEVEL: 'info' });
      await waitForOutput(child, /"message":"cluster worker started"/);
    } else {
      // The worker's own runtime, as in a `provisio worker --cluster` process (it has no queue to route calls on).
      const logger = createLogger({ silent: true });
      inProcess = createIntegrationRuntime({ db: t.db, logger });
      await registerClusterWorker({ db: t.db, queue: t.queue, logger, integrations: inProcess, cluster: 'edge-1', teamSize: 1 });
    }
  });
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    inProcess?.close();
    await workflows?.stop();
    await t?.close();
    await target?.close();
  });

  test('invoke on a cluster-routed integration returns the envelope the worker got from the target', async () => {
    const id = await createIntegration('edge-inventory', config({ cluster: { override: true, cluster_id: 'edge-1' }, timeout: 20_000 }));
    const before = target.requests.length;
    const res = await post(`/admin/integrations/${id}/tasks/ping/invoke`, {});
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, method: 'GET', url: `http://127.0.0.1:${target.port}/api/ping`, status: 200, body: { status: 'ok', via: 'target' } });
    // The worker made the call with the integration's secret, loaded from the database in its own process.
    expect(target.requests.slice(before).map((r) => [r.method, r.url, r.headers.authorization])).toEqual([['GET', '/api/ping', `Bearer ${BEARER}`]]);
    // The finished job is removed: responses are not kept in the queue's tables.
    const left = await t.db.query(`SELECT 1 FROM pgboss.job WHERE name = $1`, [clusterQueueName('edge-1')]);
    expect(left.rows).toEqual([]);
  });

  test('a runbook integration task on a cluster-routed integration is executed by the cluster worker', async () => {
    workflows = createWorkflowRuntime({ db: t.db, queue: t.queue, logger: createLogger({ silent: true }), integrations: t.integrations });
    await workflows.startWorkers({ teamSize: 1 });
    await workflows.engine.saveWorkflow({ name: 'edge ping', steps: [{ id: 'ping', kind: 'integration', operation: 'edge-inventory/ping' }] }, 'test');
    const before = target.requests.length;
    const run = await t.db.transaction((tx) => workflows!.engine.startRun(tx, { workflow: 'edge ping', inputs: {}, lockKey: null, variables: {}, createdBy: 'test' }));
    const deadline = Date.now() + 30_000;
    let status = run.status;
    while (!['succeeded', 'failed', 'cancelled'].includes(status) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await workflows.engine.getRun(run.id)).status;
    }
    if (status !== 'succeeded') throw new Error(JSON.stringify((await workflows.engine.getRun(run.id)).steps));
    expect(status).toBe('succeeded');
    expect(target.requests.slice(before).map((r) => [r.method, r.url, r.headers.authorization])).toEqual([['GET', '/api/ping', `Bearer ${BEARER}`]]);
  });

  test('a cluster with no live worker is the timeout error after the timeout, and no call is made from here', async () => {
    const id = await createIntegration('nowhere-inventory', config({ cluster: { override: true, cluster_id: 'nowhere' }, timeout: 1200 }));
    const before = target.requests.length;
    const started = Date.now();
    const res = await post(`/admin/integrations/${id}/tasks/ping/invoke`, {});
    const took = Date.now() - started;
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ status: 502, code: 'INTEGRATION_CALL_FAILED', detail: "no worker of cluster 'nowhere' answered within 1200 ms" });
    expect(took).toBeGreaterThanOrEqual(1200);
    expect(target.requests.length).toBe(before);
    // The unanswered job is withdrawn, so a worker that starts later never makes a call nobody waits for.
    const left = await t.db.query(`SELECT 1 FROM pgboss.job WHERE name = $1`, [clusterQueueName('nowhere')]);
    expect(left.rows).toEqual([]);
  });

  test('a `cluster_no_proxy` proxy override routes to the default cluster too (no worker here: the timeout error)', async () => {
    const id = await createIntegration('default-inventory', config({ proxy: { override: true, mode: 'cluster_no_proxy' }, timeout: 800 }));
    const res = await post(`/admin/integrations/${id}/tasks/ping/invoke`, {});
    expect(res.status).toBe(502);
    expect(res.body.detail).toBe("no worker of cluster 'default' answered within 800 ms");
  });

  test('a `direct` integration is called from this process, unaffected by clusters', async () => {
    const id = await createIntegration('direct-inventory', config({ proxy: { override: true, mode: 'direct' }, timeout: 5000 }));
    const before = target.requests.length;
    const res = await post(`/admin/integrations/${id}/tasks/ping/invoke`, {});
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, status: 200, body: { status: 'ok' } });
    expect(target.requests.length).toBe(before + 1);
  });
});
