// Orders driven by runbook runs: the order.provision / order.deprovision consumers and the engine hooks, with the
// real webhook executor against a local HTTP server, on PGlite and PostgreSQL.
import { createJobQueue, createLogger, type JobQueue } from '../../adapter';
import { createDeleteOrder, createOrder, getOrder } from '../../server/domain/orders/orders';
import { createOrderRuns, type OrderRuns } from '../../server/domain/orders/order-runs';
import { transitionOrder } from '../../server/domain/orders/order-status';
import { createWebhookExecutor } from '../../workflows/executors';
import { createWorkflowEngine, type WorkflowEngine } from '../../workflows/engine';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { TEST_ENGINE_CONFIG } from '../support/engine-config';

jest.setTimeout(60_000);

let t: TestDatabase;
let queue: JobQueue;
let engine: WorkflowEngine;
let runs: OrderRuns;
let hook: LoopbackServer;
// What the provisioning service answers, by path.
const answers: Record<string, { status: number; body?: unknown }> = {
  '/ok': { status: 200, body: { response: 'PROVISIONED_USER' } },
  '/no': { status: 200, body: { response: 'NO_PROVISIONING_ACTION' } },
  '/gone': { status: 204 },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function webhookRunbook(name: string, path: string): Record<string, unknown> {
  return {
    name,
    inputSchema: { type: 'object', properties: { url: { type: 'string', default: `${hook.url}${path}` } } },
    steps: [
      {
        id: 'call_hook',
        kind: 'webhook',
        summary: 'Provisioning webhook',
        url: '{{inputs.url}}',
        incoming: {
          application: { app_id: 'pool_desktop', user_friendly_label: '{{asset.name}}' },
          target_user: { email: '{{order.user_email}}' },
          custom_fields: { username: '{{order.username}}', size: '{{params.attr_size}}' },
        },
      },
    ],
  };
}

async function seedType(
  name: string,
  o: { pooled?: boolean; provision?: string | null; deprovision?: string | null; reinstall?: string | null; policy?: string; assets?: string[] },
): Promise<number> {
  const { rows } = await t.db.query<{ id: number }>(
    `INSERT INTO asset_types (name, assignment_model, attributes, provision_runbook, deprovision_runbook, reinstall_runbook, deprovision_policy)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
    [
      name,
      o.pooled ? 'capacity_pooled' : 'personal',
      JSON.stringify([{ key: 'size', type: 'string', required: false }]),
      o.provision ?? null,
      o.deprovision ?? null,
      o.reinstall ?? null,
      o.policy ?? 'access_only',
    ],
  );
  const id = Number(rows[0]!.id);
  for (const a of o.assets ?? []) await t.db.query(`INSERT INTO assets (asset_type_id, name) VALUES ($1, $2)`, [id, a]);
  return id;
}

async function order(type: string, email = 'jane.doe@example.com') {
  return createOrder(
    { db: t.db, queue },
    { assetType: { name: type }, source: 'api', userEmail: email, userName: 'Jane Doe', config: { size: 'large' } },
    { triggeredBy: 'system:test' },
  );
}

async function waitForStatus(id: number, statuses: string[], timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const o = await getOrder(t.db, id);
    if (o && statuses.includes(o.order.status)) return o;
    if (Date.now() > deadline) throw new Error(`order ${id} is ${o?.order.status}, expected ${statuses.join('|')}`);
    await sleep(50);
  }
}

async function assetState(name: string): Promise<{ state: string; assigned_order_id: number | null }> {
  const { rows } = await t.db.query<{ state: string; assigned_order_id: number | null }>('SELECT state, assigned_order_id FROM assets WHERE name = $1', [name]);
  return { state: rows[0]!.state, assigned_order_id: rows[0]!.assigned_order_id === null ? null : Number(rows[0]!.assigned_order_id) };
}

async function waitForAsset(name: string, state: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const a = await assetState(name);
    if (a.state === state) return a;
    if (Date.now() > deadline) throw new Error(`asset ${name} is ${a.state}, expected ${state}`);
    await sleep(50);
  }
}

async function runCount(orderId: number): Promise<number> {
  const { rows } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM order_runs WHERE order_id = $1', [orderId]);
  return rows[0]!.n;
}

beforeAll(async () => {
  hook = await startLoopbackServer((req, res) => {
    const a = answers[req.url] ?? { status: 404, body: { detail: 'no such hook' } };
    if (a.body === undefined) {
      res.statusCode = a.status;
      res.end();
    } else sendJson(res, a.status, a.body);
  });
  t = await createTestDatabase();
  const logger = createLogger({ silent: true });
  queue = createJobQueue(t.db, { logger, schedule: false });
  await queue.start();
  runs = createOrderRuns({ db: t.db, queue, logger });
  engine = createWorkflowEngine({
    db: t.db,
    queue,
    logger,
    executors: { webhook: createWebhookExecutor({ logger, resolveSecret: () => undefined }) },
    hooks: runs.hooks,
    config: TEST_ENGINE_CONFIG,
  });
  runs.bind(engine);
  await engine.startWorkers({ teamSize: 2 });
  await runs.registerWorkers();
  for (const [name, path] of [
    ['Pool - provision', '/ok'],
    ['Pool - broken provision', '/no'],
    ['Pool - deprovision', '/gone'],
    ['Pool - reinstall', '/ok'],
    ['Pool - broken reinstall', '/no'],
  ] as const) {
    await engine.saveWorkflow(webhookRunbook(name, path), 'test');
  }
});

afterAll(async () => {
  await engine?.stop();
  await queue?.stop({ graceful: false, timeoutMs: 2000 });
  await t?.drop();
  await hook?.close();
});

describe('provision', () => {
  test('a pooled order runs its provision runbook: provisioned, asset in use, the step on the order', async () => {
    await seedType('Desk A', { pooled: true, provision: 'Pool - provision', assets: ['desk-a-01'] });
    const placed = await order('Desk A');
    const done = await waitForStatus(placed.id, ['provisioned', 'failed']);
    expect(done.order.status).toBe('provisioned');
    expect(done.order.assigned_asset_id).not.toBeNull();
    expect(await assetState('desk-a-01')).toEqual({ state: 'in_use', assigned_order_id: Number(placed.id) });
    expect(done.steps).toHaveLength(1);
    expect(done.steps[0]).toMatchObject({ step_id: 'call_hook', name: 'Provisioning webhook', status: 'succeeded', attempt: 1, error_message: null });
    expect(typeof done.steps[0]!.duration_ms).toBe('number');
    expect(done.steps[0]!.finished_at).not.toBeNull();
    // The webhook got the order's data and the asset's name.
    const sent = hook.requests.filter((r) => r.url === '/ok').map((r) => JSON.parse(r.body) as Record<string, unknown>);
    expect(sent.at(-1)).toMatchObject({
      application: { app_id: 'pool_desktop', user_friendly_label: 'desk-a-01' },
      target_user: { email: 'jane.doe@example.com' },
      custom_fields: { username: 'jane.doe', size: 'large' },
    });
    // The order went processing -> provisioning -> provisioned, attributed to the order flow.
    const audit = await t.db.query<{ diff: { after: { status: string } }; triggered_by: string }>(
      `SELECT diff, triggered_by FROM audit_log WHERE entity = 'order' AND entity_id = $1 AND action = 'transition' ORDER BY id`,
      [String(placed.id)],
    );
    expect(audit.rows.map((r) => [r.diff.after.status, r.triggered_by])).toEqual([
      ['provisioning', 'system:order-provision'],
      ['provisioned', 'system:order-provision'],
    ]);
    const stored = await t.db.query<{ input: Record<string, unknown>; output: Record<string, unknown> }>('SELECT input, output FROM order_steps WHERE order_id = $1', [placed.id]);
    expect(stored.rows[0]!.output).toMatchObject({ status: 200, response: 'PROVISIONED_USER' });
  });

  test('a failing step fails the order with its error and gives the asset back to the pool only through deprovision', async () => {
    await seedType('Desk B', { pooled: true, provision: 'Pool - broken provision', assets: ['desk-b-01'] });
    const placed = await order('Desk B');
    const done = await waitForStatus(placed.id, ['provisioned', 'failed']);
    expect(done.order.status).toBe('failed');
    expect(done.order.error_message).toMatch(/NO_PROVISIONING_ACTION/);
    expect(done.steps[0]).toMatchObject({ step_id: 'call_hook', status: 'failed' });
    expect(done.steps[0]!.error_message).toMatch(/NO_PROVISIONING_ACTION/);
  });

  test('rerunning the failed provision run takes the order back through provisioning', async () => {
    await seedType('Desk B2', { pooled: true, provision: 'Pool - broken provision', assets: ['desk-b2-01'] });
    const placed = await order('Desk B2', 'b2@example.com');
    await waitForStatus(placed.id, ['failed']);
    const { rows } = await t.db.query<{ run_id: string }>(`SELECT run_id::text AS run_id FROM order_runs WHERE order_id = $1`, [placed.id]);
    answers['/no'] = { status: 200, body: { response: 'PROVISIONED_USER' } };
    try {
      await engine.rerunRun(rows[0]!.run_id, { from: 'failed', createdBy: 'admin:key' });
      const done = await waitForStatus(placed.id, ['provisioned']);
      expect(done.order.error_message).toBeNull();
      expect(done.steps.map((s) => s.status)).toEqual(['failed', 'succeeded']);
      expect(await runCount(Number(placed.id))).toBe(2);
    } finally {
      answers['/no'] = { status: 200, body: { response: 'NO_PROVISIONING_ACTION' } };
    }
  });

  test('a type without a provision runbook is provisioned directly (audited)', async () => {
    await seedType('Desk C', { pooled: true, assets: ['desk-c-01'] });
    const placed = await order('Desk C');
    const done = await waitForStatus(placed.id, ['provisioned', 'failed']);
    expect(done.order.status).toBe('provisioned');
    expect(done.steps).toEqual([]);
    expect(await assetState('desk-c-01')).toEqual({ state: 'in_use', assigned_order_id: Number(placed.id) });
    const audit = await t.db.query<{ triggered_by: string }>(
      `SELECT triggered_by FROM audit_log WHERE entity = 'order' AND entity_id = $1 AND action = 'transition'`,
      [String(placed.id)],
    );
    expect(audit.rows.map((r) => r.triggered_by)).toEqual(['system:order-provision']);
    expect(await runCount(Number(placed.id))).toBe(0);
  });

  test('a pooled order with no free asset fails', async () => {
    await seedType('Desk Empty', { pooled: true, provision: 'Pool - provision' });
    const placed = await order('Desk Empty');
    const done = await waitForStatus(placed.id, ['provisioned', 'failed']);
    expect(done.order).toMatchObject({ status: 'failed', error_message: 'no free asset in the pool' });
  });

  test('an order a leaver revoked while processing is not provisioned', async () => {
    const typeId = await seedType('Desk D', { pooled: true, provision: 'Pool - provision', assets: ['desk-d-01'] });
    // Placed by hand (no job), revoked, then its job delivered.
    const { rows } = await t.db.query<{ id: number }>(
      `INSERT INTO orders (asset_type_id, status, source, user_email, user_name, created_by) VALUES ($1, 'processing', 'api', 'leaver@example.com', 'L', 'test') RETURNING id`,
      [typeId],
    );
    const id = Number(rows[0]!.id);
    await t.db.transaction((tx) => transitionOrder(tx, id, 'revoked', { triggeredBy: 'hr:native' }));
    await runs.provision(id);
    const o = await getOrder(t.db, id);
    expect(o!.order).toMatchObject({ status: 'revoked', assigned_asset_id: null });
    expect(await assetState('desk-d-01')).toEqual({ state: 'free', assigned_order_id: null });
    expect(await runCount(id)).toBe(0);
  });

  test('the same provision job delivered twice starts one run', async () => {
    const typeId = await seedType('Desk E', { pooled: true, provision: 'Pool - provision', assets: ['desk-e-01', 'desk-e-02'] });
    const { rows } = await t.db.query<{ id: number }>(
      `INSERT INTO orders (asset_type_id, status, source, user_email, user_name, config, created_by)
       VALUES ($1, 'processing', 'api', 'twice@example.com', 'T', '{"size":"small"}', 'test') RETURNING id`,
      [typeId],
    );
    const id = Number(rows[0]!.id);
    await Promise.all([runs.provision(id), runs.provision(id)]);
    await runs.provision(id);
    await waitForStatus(id, ['provisioned']);
    expect(await runCount(id)).toBe(1);
    const wr = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM workflow_runs WHERE variables->'order'->>'id' = $1`, [String(id)]);
    expect(wr.rows[0]!.n).toBe(1);
    const assets = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM assets WHERE assigned_order_id = $1`, [id]);
    expect(assets.rows[0]!.n).toBe(1);
  });
});

describe('deprovision', () => {
  test('a ServiceNow delete runs the deprovision runbook; return_to_pool frees the asset; the target is returned', async () => {
    await seedType('Desk F', { pooled: true, provision: 'Pool - provision', deprovision: 'Pool - deprovision', policy: 'return_to_pool', assets: ['desk-f-01'] });
    const placed = await order('Desk F', 'f@example.com');
    await waitForStatus(placed.id, ['provisioned']);
    const { order: del } = await createDeleteOrder(
      { db: t.db, queue },
      { assetType: { name: 'Desk F' }, source: 'servicenow', userEmail: 'f@example.com', userName: 'F' },
      { triggeredBy: 'webhook:hmac' },
    );
    expect(del.status).toBe('deprovisioning');
    const target = await waitForStatus(placed.id, ['returned', 'failed']);
    expect(target.order.status).toBe('returned');
    // The delete's own order ends with its target: returned, never provisioned.
    expect((await waitForStatus(del.id, ['returned', 'provisioned', 'failed'])).order.status).toBe('returned');
    expect(await assetState('desk-f-01')).toEqual({ state: 'free', assigned_order_id: null });
    expect(target.steps.map((s) => [s.step_id, s.status])).toEqual([
      ['call_hook', 'succeeded'],
      ['call_hook', 'succeeded'],
    ]);
  });

  test('a failed provision keeps its desktop and its place in the pool until a ServiceNow delete takes it back', async () => {
    const typeId = await seedType('Desk P', { pooled: true, provision: 'Pool - broken provision', deprovision: 'Pool - deprovision', policy: 'return_to_pool', assets: ['desk-p-01'] });
    await t.db.query('UPDATE asset_types SET pool_size = 1 WHERE id = $1', [typeId]);
    const placed = await order('Desk P', 'p1@example.com');
    expect((await waitForStatus(placed.id, ['provisioned', 'failed'])).order.status).toBe('failed');
    // Kept for a rerun: the pool's one desktop is still the failed order's, so there is no place for another order.
    expect(await assetState('desk-p-01')).toEqual({ state: 'in_use', assigned_order_id: placed.id });
    await expect(order('Desk P', 'p2@example.com')).rejects.toMatchObject({ code: 'CAPACITY_EXCEEDED' });

    const { order: del } = await createDeleteOrder(
      { db: t.db, queue },
      { assetType: { name: 'Desk P' }, source: 'servicenow', userEmail: 'p1@example.com', userName: 'P' },
      { triggeredBy: 'webhook:hmac' },
    );
    expect(del.target_order_id).toBe(placed.id);
    expect((await waitForStatus(placed.id, ['returned', 'failed'])).order.status).toBe('returned');
    expect(await assetState('desk-p-01')).toEqual({ state: 'free', assigned_order_id: null });
    expect((await order('Desk P', 'p2@example.com')).status).toBe('processing');
  });

  test('a leaver revocation with reinstall: asset reinstall, the reinstall runbook, then free', async () => {
    await seedType('Desk G', {
      pooled: true,
      provision: 'Pool - provision',
      deprovision: 'Pool - deprovision',
      reinstall: 'Pool - reinstall',
      policy: 'reinstall',
      assets: ['desk-g-01'],
    });
    const placed = await order('Desk G', 'g@example.com');
    await waitForStatus(placed.id, ['provisioned']);
    const id = Number(placed.id);
    await t.db.transaction(async (tx) => {
      await transitionOrder(tx, id, 'revoked', { triggeredBy: 'hr:native' });
    });
    const job = { orderId: id, reason: 'leaver', policy: 'reinstall', leaverEventId: 1 };
    await Promise.all([runs.deprovision(job), runs.deprovision(job)]);
    await waitForAsset('desk-g-01', 'free');
    const phases = await t.db.query<{ phase: string }>('SELECT phase FROM order_runs WHERE order_id = $1 ORDER BY created_at, phase', [id]);
    expect(phases.rows.map((r) => r.phase).sort()).toEqual(['deprovision', 'provision', 'reinstall']);
    const audit = await t.db.query<{ action: string }>(`SELECT action FROM audit_log WHERE entity = 'asset' AND entity_id = (SELECT id::text FROM assets WHERE name = 'desk-g-01') ORDER BY id`);
    expect(audit.rows.map((r) => r.action)).toEqual(['assign', 'release', 'reinstall_succeeded']);
    expect((await getOrder(t.db, id))!.order.status).toBe('revoked');
  });

  test('a failing reinstall runbook leaves the asset failed', async () => {
    await seedType('Desk H', { pooled: true, reinstall: 'Pool - broken reinstall', policy: 'reinstall', assets: ['desk-h-01'] });
    const placed = await order('Desk H', 'h@example.com');
    await waitForStatus(placed.id, ['provisioned']);
    await t.db.transaction((tx) => transitionOrder(tx, Number(placed.id), 'revoked', { triggeredBy: 'hr:native' }));
    await runs.deprovision({ orderId: Number(placed.id), reason: 'leaver', policy: 'reinstall' });
    await waitForAsset('desk-h-01', 'failed');
  });
});
