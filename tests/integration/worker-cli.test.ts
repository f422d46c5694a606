// `provisio worker` as an operator runs it: a separate process with no HTTP that runs the workflow step workers and
// the order consumers. An order placed elsewhere is provisioned by it; SIGTERM stops it cleanly.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createJobQueue, createLogger, createPgliteDatabase, createPostgresDatabase, migrate, type Database } from '../../adapter';
import { createOrder, getOrder } from '../../server/domain/orders/orders';
import { createWorkflowRuntime } from '../../server/domain/runbooks/workflow-runtime';
import { spawnCli, waitForOutput } from '../support/cli';
import { createTestDatabase, testEngine, type TestDatabase } from '../support/db';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { createIntegrationRuntime } from '../../integration-model';

jest.setTimeout(90_000);

describe(`provisio worker (${testEngine})`, () => {
  let dataDir: string;
  let pg: TestDatabase | undefined;
  let hook: LoopbackServer;
  let env: Record<string, string | undefined>;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'provisio-worker-'));
    if (testEngine === 'postgres') pg = await createTestDatabase({ migrate: false });
    env = { DATA_DIR: dataDir, DATABASE_URL: pg?.url, LOG_LEVEL: 'info' };
    hook = await startLoopbackServer((_req, res) => sendJson(res, 200, { response: 'PROVISIONED_USER' }));
  });
  afterAll(async () => {
    await hook?.close();
    await pg?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A short-lived connection to the worker's database (PGlite allows one process at a time). */
  async function withDb<T>(fn: (db: Database) => Promise<T>): Promise<T> {
    const db = pg ? createPostgresDatabase({ connectionString: pg.url! }) : await createPgliteDatabase({ dataDir: join(dataDir, 'pglite') });
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  }

  test('provisions an order placed by another process, then exits 0 on SIGTERM', async () => {
    const orderId = await withDb(async (db) => {
      await migrate(db);
      const logger = createLogger({ silent: true });
      const queue = createJobQueue(db, { logger, schedule: false });
      await queue.start();
      try {
        // Saved through an engine that runs no workers here: only the worker process executes steps.
        const { engine } = createWorkflowRuntime({ db, queue, logger, integrations: createIntegrationRuntime({ db, queue, logger }) });
        await engine.saveWorkflow(
          {
            name: 'Seat by hook',
            inputSchema: { type: 'object', properties: { url: { type: 'string', default: `${hook.url}/provision` } } },
            steps: [{ id: 'hook', kind: 'webhook', summary: 'Provision', url: '{{inputs.url}}', incoming: { application: { app_id: 'seat' }, target_user: { email: '{{order.user_email}}' } } }],
          },
          'test',
        );
        await db.query(`INSERT INTO asset_types (name, assignment_model, provision_runbook) VALUES ('Seat', 'personal', 'Seat by hook')`);
        const order = await createOrder({ db, queue }, { assetType: { name: 'Seat' }, source: 'api', userEmail: 'w@example.com', userName: 'W' }, { triggeredBy: 'system:test' });
        return Number(order.id);
      } finally {
        await queue.stop({ graceful: false, timeoutMs: 2000 });
      }
    });

    const child = spawnCli(['worker'], env);
    let exitCode: number | null | undefined;
    const exited = new Promise<void>((resolve) => child.on('exit', (code) => ((exitCode = code), resolve())));
    try {
      await waitForOutput(child, /"message":"worker started"/);
      const deadline = Date.now() + 30_000;
      while (hook.requests.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(hook.requests.map((r) => r.url)).toEqual(['/provision']);
      expect(JSON.parse(hook.requests[0]!.body)).toMatchObject({ target_user: { email: 'w@example.com' } });
      // The step's finish (and the order's move) commits right after the reply.
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    expect(exitCode).toBe(0);
    const after = await withDb((db) => getOrder(db, orderId));
    expect(after!.order.status).toBe('provisioned');
    expect(after!.steps).toEqual([expect.objectContaining({ step_id: 'hook', name: 'Provision', status: 'succeeded' })]);
  });
});
