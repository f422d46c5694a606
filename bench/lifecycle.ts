// npm run bench:lifecycle — the order lifecycle's overhead over the bare engine (issue 11).
// On PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test; a throwaway database beside it).
// One process serves the API and works the queue, as `provisio serve` does. A 5-step runbook whose steps call a
// stub-mode integration (answered from the model's examples, no network) is run twice, BENCH_ORDERS times each
// (default 500), BENCH_CONCURRENCY at a time (default 20):
//   - engine: runs started directly with engine.startRun, as the order flow starts them (same variables, lock key);
//   - lifecycle: `POST /orders` over HTTP with a bearer token, for a type whose provision runbook is that workflow,
//     until the order is `provisioned` (the order consumer, the run, the hooks copying steps, the transitions).
// Each lane keeps one item in flight: it starts the next as soon as its current one is done. Completion is seen by
// one shared poller reading the database every POLL_MS for both phases, so polling costs both the same.
// Prints items/s, p50/p99 time-to-done (from the client's start to the poller seeing it done), the wall time of each
// phase and the ratio lifecycle / engine. Target: lifecycle at most 1.3x the engine-only time.
// BENCH_PHASES=lifecycle,engine changes the order the phases run in (default: engine first).
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createLogger, projectPath, type Database } from '../adapter';
import { buildApp } from '../server/app';
import { buildConfig } from '../server/config';
import { buildServices, type Runtime } from '../server/main';
import { createJobQueue } from '../adapter';
import { createIntegrationRuntime, loadIntegrationModelFiles } from '../integration-model';
import { mintToken } from '../server/domain/tokens/api-tokens';
import { createBenchDatabase } from './support/database';
import { countingDatabase } from '../tests/support/counting-db';

const ORDERS = Number(process.env['BENCH_ORDERS'] ?? 500);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 20);
const POLL_MS = Number(process.env['BENCH_POLL_MS'] ?? 10);
const PHASES = (process.env['BENCH_PHASES'] ?? 'engine,lifecycle').split(',');
const WORKFLOW = 'bench-lifecycle-5-steps';
const TYPE = 'Bench seat';

const workflow = {
  name: WORKFLOW,
  description: 'Five stub integration calls, one after the other.',
  steps: Array.from({ length: 5 }, (_, i) => ({
    id: `step_${i + 1}`,
    kind: 'integration',
    operation: 'bench-snow/getTableRecords',
    incoming: { path: { tableName: 'sc_req_item' }, query: { sysparm_query: 'requested_for.email={{order.user_email}}', sysparm_limit: 1 } },
  })),
};

/** Resolves each awaited id when the database says it is done; one query per tick for everything in flight. */
class DonePoller {
  readonly #waiting = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  #timer: NodeJS.Timeout | undefined;
  constructor(private readonly db: Database, private readonly sql: string) {}

  wait(id: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#timer ??= setTimeout(() => void this.#tick(), POLL_MS);
    });
  }

  async #tick(): Promise<void> {
    const ids = [...this.#waiting.keys()];
    let rows: { id: string; state: 'done' | 'failed' }[];
    try {
      rows = (await this.db.query<{ id: string; state: 'done' | 'failed' }>(this.sql, [ids])).rows;
    } catch (e) {
      // The bench is ending (or broken): everyone waiting hears it instead of a timer throwing into the void.
      for (const w of this.#waiting.values()) w.reject(e instanceof Error ? e : new Error(String(e)));
      this.#waiting.clear();
      this.#timer = undefined;
      return;
    }
    for (const r of rows) {
      const w = this.#waiting.get(String(r.id));
      if (!w) continue;
      this.#waiting.delete(String(r.id));
      if (r.state === 'done') w.resolve();
      else w.reject(new Error(`${r.id} failed`));
    }
    this.#timer = this.#waiting.size ? setTimeout(() => void this.#tick(), POLL_MS) : undefined;
  }
}

interface PhaseResult {
  name: string;
  wallMs: number;
  perSecond: number;
  p50: number;
  p99: number;
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** BENCH lanes, each keeping one item in flight until `total` items are done. */
async function lanes(name: string, total: number, one: (i: number) => Promise<void>): Promise<PhaseResult> {
  const times: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < total; i = next++) {
        const s = performance.now();
        await one(i);
        times.push(performance.now() - s);
      }
    }),
  );
  const wallMs = performance.now() - t0;
  times.sort((a, b) => a - b);
  return { name, wallMs, perSecond: (total / wallMs) * 1000, p50: percentile(times, 50), p99: percentile(times, 99) };
}

async function main(): Promise<void> {
  const logger = createLogger(process.env['BENCH_LOG'] ? { level: process.env['BENCH_LOG'] } : { silent: true });
  const bench = await createBenchDatabase({ max: 20 });
  // Everything the service sends is counted (pg-boss's statements too); the bench's own pollers use the raw pool.
  const db = countingDatabase(bench.db);
  let server: Server | undefined;
  let stop: (() => Promise<void>) | undefined;
  try {
    const queue = createJobQueue(db, { logger, schedule: false });
    await queue.start();
    const rt: Runtime = { db, queue, logger, integrations: createIntegrationRuntime({ db, queue, logger }) };
    await loadIntegrationModelFiles(db, logger, projectPath('openapi', 'integrations'));
    const services = buildServices(rt);
    const { engine } = services.workflows;
    const config = buildConfig({ validateResponses: false });
    const app = buildApp({ ...rt, workflowEngine: engine, requesterDirectory: services.requesterDirectory, leaver: services.leaver, adminKeyHash: async () => undefined }, config);
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const actor = { role: 'superadmin' as const, triggeredBy: 'system:bench' };
    const admin = (await db.transaction((tx) => mintToken(tx, { name: 'bench-admin', scopes: ['admin:*'], role: null, expiresAt: null }, actor))).token;
    const orderer = (await db.transaction((tx) => mintToken(tx, { name: 'bench-orders', scopes: ['orders:write'], role: null, expiresAt: null }, actor))).token;
    const api = async (method: string, path: string, token: string, body?: unknown): Promise<Record<string, unknown>> => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const json = (await res.json()) as Record<string, unknown>;
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };

    // The integration, the workflow and the type, through the admin API as an operator would set them up.
    const models = (await api('GET', '/admin/integration-models', admin)) as { items: { id: string; title?: string }[] };
    const snowModel = models.items.find((m) => m.id.startsWith('ServiceNow Table API'));
    if (!snowModel) throw new Error('the ServiceNow Table model is not loaded');
    await api('POST', '/admin/integrations', admin, { name: 'bench-snow', model_id: snowModel.id, config: { server: { protocol: 'https', host: 'snow.invalid', port: 443 } }, stub_mode: true });
    await api('POST', '/admin/workflows', admin, workflow);
    await api('POST', '/admin/asset-types', admin, { name: TYPE, assignment_model: 'personal', requires_approval: false, provision_runbook: WORKFLOW });

    await services.workflows.startWorkers();
    stop = async () => {
      await services.workflows.stop();
      await queue.stop({ graceful: false, timeoutMs: 2000 });
    };

    const runs = new DonePoller(
      bench.db,
      `SELECT id::text AS id, CASE WHEN status = 'succeeded' THEN 'done' ELSE 'failed' END AS state
         FROM workflow_runs WHERE id::text = ANY($1::text[]) AND status IN ('succeeded', 'failed', 'cancelled')`,
    );
    const orders = new DonePoller(
      bench.db,
      `SELECT id::text AS id, CASE WHEN status = 'provisioned' THEN 'done' ELSE 'failed' END AS state
         FROM orders WHERE id = ANY($1::bigint[]) AND status IN ('provisioned', 'failed', 'cancelled')`,
    );

    const phases: Record<string, () => Promise<PhaseResult>> = {
      engine: () =>
        lanes('engine (startRun)', ORDERS, async (i) => {
          const run = await engine.startRun(db, {
            workflow: WORKFLOW,
            inputs: {},
            variables: { order: { id: i, user_email: `engine${i}@bench.example` }, asset: {}, params: {} },
            lockKey: `order:engine-${i}`,
            createdBy: 'system:bench',
          });
          await runs.wait(run.id);
        }),
      lifecycle: () =>
        lanes('lifecycle (POST /orders)', ORDERS, async (i) => {
          const order = await api('POST', '/orders', orderer, {
            asset_type_name: TYPE,
            user_email: `user${i}@bench.example`,
            user_name: `User ${i}`,
          });
          await orders.wait(String(order['id']));
        }),
    };
    // Warm-up: the JIT, the pools and the caches, with a few of each, not counted.
    for (const name of PHASES) if (!phases[name]) throw new Error(`unknown phase ${name} (BENCH_PHASES: engine, lifecycle)`);
    process.stdout.write(`warming up (10 of each)…\n`);
    await lanes('warm-up', 10, async (i) => {
      const run = await engine.startRun(db, { workflow: WORKFLOW, inputs: {}, variables: { order: { id: i, user_email: `warm-engine${i}@bench.example` }, asset: {}, params: {} }, lockKey: `order:warm-${i}`, createdBy: 'system:bench' });
      await runs.wait(run.id);
      const order = await api('POST', '/orders', orderer, { asset_type_name: TYPE, user_email: `warm${i}@bench.example`, user_name: 'W' });
      await orders.wait(String(order['id']));
    });

    const results: PhaseResult[] = [];
    const statementsOf = new Map<string, string[]>();
    for (const name of PHASES) {
      const before = db.statements.length;
      results.push(await phases[name]!());
      statementsOf.set(name, db.statements.slice(before));
    }

    const fmt = (n: number, d = 1) => n.toFixed(d);
    process.stdout.write(`\n${ORDERS} items per phase, ${CONCURRENCY} concurrent, 5 stub steps, PostgreSQL, poll ${POLL_MS} ms\n`);
    process.stdout.write(`| phase | wall s | items/s | p50 ms | p99 ms |\n|---|---|---|---|---|\n`);
    for (const r of results) process.stdout.write(`| ${r.name} | ${fmt(r.wallMs / 1000, 2)} | ${fmt(r.perSecond)} | ${fmt(r.p50)} | ${fmt(r.p99)} |\n`);
    const byName = (prefix: string) => results.find((r) => r.name.startsWith(prefix));
    const e = byName('engine');
    const l = byName('lifecycle');
    if (e && l) {
      const ratio = l.wallMs / e.wallMs;
      process.stdout.write(`\nlifecycle / engine wall time: ${ratio.toFixed(2)}x (target <= 1.3x: ${ratio <= 1.3 ? 'met' : 'NOT met'}); p50 ${(l.p50 / e.p50).toFixed(2)}x, p99 ${(l.p99 / e.p99).toFixed(2)}x\n`);
    }
    for (const [name, sql] of statementsOf) process.stdout.write(`${name}: ${(sql.length / ORDERS).toFixed(1)} SQL statements per item (BEGIN/COMMIT not counted)\n`);
    if (process.env['BENCH_SQL']) {
      // Which statements the lifecycle sends beyond the engine's, per item: where its overhead goes.
      const tally = (sql: string[] = []) => sql.reduce((m, q) => m.set(q.replace(/\s+/g, ' ').slice(0, 90), (m.get(q.replace(/\s+/g, ' ').slice(0, 90)) ?? 0) + 1), new Map<string, number>());
      const e = tally(statementsOf.get('engine'));
      const l = tally(statementsOf.get('lifecycle'));
      const extra = [...l].map(([q, n]) => [q, (n - (e.get(q) ?? 0)) / ORDERS] as const).filter(([, n]) => Math.abs(n) >= 0.05).sort((a, b) => b[1] - a[1]);
      for (const [q, n] of extra) process.stdout.write(`  ${n >= 0 ? '+' : ''}${n.toFixed(2)}  ${q}\n`);
    }
    const steps = await bench.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM order_steps`);
    process.stdout.write(`order steps recorded: ${steps.rows[0]?.n ?? 0} (expected ${(ORDERS + 10) * 5})\n`);
  } finally {
    await stop?.();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await bench.drop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench:lifecycle failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
