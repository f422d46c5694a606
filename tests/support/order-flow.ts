// Orders carried out for real: the workflow engine with the real webhook executor, the order.provision /
// order.deprovision workers, and a provisioning service on loopback whose answer each test decides (per path and
// per asset name). Shared by the integration tests of personal assets, ServiceNow take-backs and pool integrity.
import { createJobQueue, createLogger, QueueName, type JobQueue } from '../../adapter';
import { createDeleteOrder, createOrder, getOrder, type DeleteOrderResult, type OrderRow } from '../../server/domain/orders/orders';
import { createOrderRuns, type OrderRuns } from '../../server/domain/orders/order-runs';
import { transitionOrder } from '../../server/domain/orders/order-status';
import { createWebhookExecutor } from '../../workflows/executors';
import { createWorkflowEngine, type WorkflowEngine } from '../../workflows/engine';
import { createTestDatabase, type TestDatabase } from './db';
import { sendJson, startLoopbackServer, type LoopbackServer, type RecordedRequest } from './loopback-server';
import { TEST_ENGINE_CONFIG } from './engine-config';

/** What the provisioning service answers to one webhook delivery. */
export type HookAnswer = { status: number; body?: unknown; delayMs?: number };
/** Decides the answer from the path (`/provision`, `/deprovision`, `/reinstall`, …) and the asset's name. */
export type HookDecider = (path: string, assetName: string, req: RecordedRequest) => HookAnswer;

export const OK: HookAnswer = { status: 200, body: { response: 'PROVISIONED_USER' } };
export const REFUSED: HookAnswer = { status: 200, body: { response: 'NO_PROVISIONING_ACTION' } };

export interface OrderFlow {
  t: TestDatabase;
  queue: JobQueue;
  engine: WorkflowEngine;
  runs: OrderRuns;
  hook: LoopbackServer;
  /** Replace to change what the provisioning service answers. */
  decide: HookDecider;
  /** Saves a one-step webhook runbook posting to `<hook><path>` with the order's user and the asset's name (and owner). */
  runbook(name: string, path: string, o?: { owner?: boolean }): Promise<void>;
  seedType(name: string, o: SeedType): Promise<number>;
  order(type: string, email: string): Promise<OrderRow>;
  takeBack(type: string, email: string, ref?: string): Promise<DeleteOrderResult>;
  /** What the leaver flow does to one order: revoked, and its order.deprovision job enqueued with the policy. */
  revoke(orderId: number, policy?: string): Promise<void>;
  waitForStatus(id: number, statuses: readonly string[], timeoutMs?: number): Promise<{ order: OrderRow; steps: { step_id: string; status: string; error_message: string | null }[] }>;
  /** Waits until no order is on its way anywhere and no asset is being reinstalled. */
  waitQuiet(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface SeedType {
  pooled?: boolean;
  poolSize?: number | null;
  provision?: string | null;
  deprovision?: string | null;
  reinstall?: string | null;
  policy?: 'access_only' | 'return_to_pool' | 'reinstall';
  assets?: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startOrderFlow(): Promise<OrderFlow> {
  const flow = {} as OrderFlow;
  flow.decide = () => OK;
  flow.hook = await startLoopbackServer(async (req, res) => {
    let label = '';
    try {
      label = String((JSON.parse(req.body) as { application?: { user_friendly_label?: unknown } }).application?.user_friendly_label ?? '');
    } catch {
      label = '';
    }
    const a = flow.decide(req.url, label, req);
    if (a.delayMs) await sleep(a.delayMs);
    if (a.body === undefined) {
      res.statusCode = a.status;
      res.end();
    } else sendJson(res, a.status, a.body);
  });
  flow.t = await createTestDatabase();
  const logger = createLogger({ silent: !process.env['TEST_LOGS'] });
  flow.queue = createJobQueue(flow.t.db, { logger, schedule: false });
  await flow.queue.start();
  flow.runs = createOrderRuns({ db: flow.t.db, queue: flow.queue, logger });
  flow.engine = createWorkflowEngine({
    db: flow.t.db,
    queue: flow.queue,
    logger,
    executors: { webhook: createWebhookExecutor({ logger, resolveSecret: () => undefined }) },
    hooks: flow.runs.hooks,
    config: TEST_ENGINE_CONFIG,
  });
  flow.runs.bind(flow.engine);
  await flow.engine.startWorkers({ teamSize: 4 });
  await flow.runs.registerWorkers();
  const db = flow.t.db;

  flow.runbook = async (name, path, o = {}) => {
    await flow.engine.saveWorkflow(
      {
        name,
        steps: [
          {
            id: 'call_hook',
            kind: 'webhook',
            summary: `${name} webhook`,
            url: `${flow.hook.url}${path}`,
            incoming: {
              application: { app_id: 'integrity', user_friendly_label: '{{asset.name}}' },
              target_user: { email: '{{order.user_email}}' },
              custom_fields: { username: '{{order.username}}', ...(o.owner ? { owner: '{{asset.owner_email}}' } : {}) },
            },
          },
        ],
      },
      'test',
    );
  };
  flow.seedType = async (name, o) => {
    const { rows } = await db.query<{ id: number }>(
      `INSERT INTO asset_types (name, assignment_model, pool_size, provision_runbook, deprovision_runbook, reinstall_runbook, deprovision_policy)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
      [name, o.pooled ? 'capacity_pooled' : 'personal', o.poolSize ?? null, o.provision ?? null, o.deprovision ?? null, o.reinstall ?? null, o.policy ?? 'access_only'],
    );
    const id = Number(rows[0]!.id);
    for (const a of o.assets ?? []) await db.query(`INSERT INTO assets (asset_type_id, name) VALUES ($1, $2)`, [id, a]);
    return id;
  };
  flow.order = (type, email) =>
    createOrder({ db, queue: flow.queue }, { assetType: { name: type }, source: 'api', userEmail: email, userName: email.split('@')[0]! }, { triggeredBy: 'system:test' });
  flow.takeBack = (type, email, ref) =>
    createDeleteOrder(
      { db, queue: flow.queue },
      { assetType: { name: type }, source: 'servicenow', servicenowRef: ref ?? null, userEmail: email, userName: email.split('@')[0]! },
      { triggeredBy: 'webhook:hmac' },
    );
  flow.revoke = async (orderId, policy) => {
    await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ deprovision_policy: string }>(
        'SELECT t.deprovision_policy FROM orders o JOIN asset_types t ON t.id = o.asset_type_id WHERE o.id = $1',
        [orderId],
      );
      await transitionOrder(tx, orderId, 'revoked', { triggeredBy: 'hr:native' });
      await flow.queue.send(tx, QueueName.ORDER_DEPROVISION, { orderId, reason: 'leaver', policy: policy ?? rows[0]!.deprovision_policy });
    });
  };
  flow.waitForStatus = async (id, statuses, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const o = await getOrder(db, id);
      if (o && statuses.includes(o.order.status)) return o;
      if (Date.now() > deadline) throw new Error(`order ${id} is ${o?.order.status}, expected ${statuses.join('|')}`);
      await sleep(100);
    }
  };
  flow.waitQuiet = async (timeoutMs = 90_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await db.query<{ busy: number; wiping: number; jobs: number; runs: number }>(
        `SELECT (SELECT count(*)::int FROM orders WHERE status IN ('processing', 'provisioning', 'deprovisioning')) AS busy,
                (SELECT count(*)::int FROM workflow_runs WHERE status IN ('pending', 'running', 'waiting')) AS runs,
                (SELECT count(*)::int FROM assets WHERE state = 'reinstall') AS wiping,
                (SELECT count(*)::int FROM pgboss.job WHERE name IN ('order.provision', 'order.deprovision') AND state IN ('created', 'retry', 'active')) AS jobs`,
      );
      const r = rows[0]!;
      // A revoked order's deprovision runs while the order stays `revoked`: its run is what is still on its way.
      if (r.busy === 0 && r.wiping === 0 && r.jobs === 0 && r.runs === 0) return;
      if (Date.now() > deadline) {
        const busy = await db.query(
          `SELECT id, action, status, target_order_id, assigned_asset_id, error_message FROM orders WHERE status IN ('processing', 'provisioning', 'deprovisioning')`,
        );
        throw new Error(`not quiet: ${JSON.stringify(r)} ${JSON.stringify(busy.rows)}`);
      }
      await sleep(200);
    }
  };
  flow.close = async () => {
    await flow.engine?.stop();
    await flow.queue?.stop({ graceful: false, timeoutMs: 2000 });
    await flow.t?.drop();
    await flow.hook?.close();
  };
  return flow;
}
