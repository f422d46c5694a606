// Observability end to end, on PGlite and PostgreSQL: an order placed through the API runs a runbook whose
// integration step calls a real HTTP server on loopback. `/metrics` (through the API with `metrics:read`, and
// through the separate listener) then shows that request, the order, the run and its steps, the call, the queue,
// the outbox and the pool, with values. With tracing on, a loopback OTLP/HTTP receiver gets one trace from the
// inbound request through the order, the run and each step to the outbound call, whose server saw the same
// trace id in `traceparent`; with tracing off nothing carries one. Log lines written in a traced request name it.
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import request from 'supertest';
import { createLogger, flushTraces, startTracing, stopTracing } from '../../adapter';
import { createIntegration, createIntegrationModel, loadIntegrationModel } from '../../integration-model';
import { buildApp } from '../../server/app';
import { listenForMetrics } from '../../server/http/metrics-listener';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { mintTestToken } from '../support/orders';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import { parseExposition, type Exposition } from '../support/prometheus';
import { TEST_ENGINE_CONFIG } from '../support/engine-config';

jest.setTimeout(90_000);

const ENGINE = TEST_ENGINE_CONFIG;
const MODEL = {
  openapi: '3.0.3',
  info: { title: 'Account Desk', version: '1.0.0' },
  paths: {
    '/accounts': {
      post: {
        operationId: 'createAccount',
        requestBody: { content: { 'application/json': { schema: { type: 'object' } } } },
        responses: { '201': { description: 'created' } },
      },
    },
  },
};
const RUNBOOK = {
  name: 'open account',
  steps: [
    { id: 'prepare', kind: 'transform', expression: '{"login": email}', incoming: { email: '{{order.user_email}}' } },
    { id: 'create', kind: 'integration', operation: 'accountdesk/createAccount', incoming: { body: { login: '{{steps.prepare.output.result.login}}' } } },
  ],
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TRACE_ID = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

describe(`metrics and traces (${testEngine})`, () => {
  let t: TestApp;
  let desk: LoopbackServer;
  let otlp: OtlpReceiver;
  let metricsReader = '';
  let adminReader = '';
  let user = 0;

  async function placeOrder(headers: Record<string, string> = {}): Promise<number> {
    user += 1;
    const res = await t
      .http()
      .post('/orders')
      .set({ ...t.admin, ...headers })
      .send({ asset_type_name: 'CRM seat', user_email: `user${user}@example.com`, user_name: `User ${user}` });
    expect(res.status).toBe(201);
    return res.body.id as number;
  }

  async function waitProvisioned(id: number): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { rows } = await t.db.query<{ status: string; error_message: string | null }>('SELECT status, error_message FROM orders WHERE id = $1', [id]);
      if (rows[0]?.status === 'provisioned') return;
      if (rows[0]?.status === 'failed' || Date.now() > deadline) throw new Error(`order ${id}: ${JSON.stringify(rows[0])}`);
      await sleep(100);
    }
  }

  async function scrape(): Promise<Exposition> {
    const res = await t.http().get('/metrics').set({ Authorization: `Bearer ${metricsReader}` });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseExposition(res.text);
  }

  beforeAll(async () => {
    desk = await startLoopbackServer((_req, res) => sendJson(res, 201, { id: 'acc-1' }));
    otlp = await startOtlpReceiver();
    t = await createTestApp({}, { workflows: { config: ENGINE } });
    const model = await loadIntegrationModel(MODEL);
    await t.db.transaction(async (tx) => {
      await createIntegrationModel(tx, model, { triggeredBy: 'test' });
      await createIntegration(
        tx,
        model,
        { name: 'accountdesk', model_id: 'Account Desk:1.0.0', config: { server: { protocol: 'http', host: '127.0.0.1', port: desk.port }, authentication: { type: 'none' } } },
        { triggeredBy: 'test' },
      );
    });
    await t.workflows!.engine.saveWorkflow(RUNBOOK, 'test');
    await t.db.query(`INSERT INTO asset_types (name, assignment_model, provision_runbook) VALUES ('CRM seat', 'personal', 'open account')`);
    // A pooled type with instances in two states, and outbox rows waiting: the gauges have something to count.
    const pool = await t.db.query<{ id: number }>(`INSERT INTO asset_types (name, assignment_model) VALUES ('Lab VM', 'capacity_pooled') RETURNING id`);
    for (const [name, state] of [['vm-1', 'free'], ['vm-2', 'free'], ['vm-3', 'failed']] as const) {
      await t.db.query('INSERT INTO assets (asset_type_id, name, state) VALUES ($1, $2, $3)', [pool.rows[0]!.id, name, state]);
    }
    metricsReader = await mintTestToken(t.db, 'scraper', ['metrics:read']);
    adminReader = await mintTestToken(t.db, 'auditor', ['admin:read']);
    await t.workflows!.startWorkers({ teamSize: 2 });
  });

  afterAll(async () => {
    await stopTracing();
    await t?.workflows?.stop();
    await t?.close();
    await desk?.close();
    await otlp?.close();
  });

  test('GET /metrics needs metrics:read: 401 without credentials, 403 with another scope', async () => {
    const none = await t.http().get('/metrics');
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('UNAUTHENTICATED');
    const other = await t.http().get('/metrics').set({ Authorization: `Bearer ${adminReader}` });
    expect(other.status).toBe(403);
    expect(other.body.code).toBe('FORBIDDEN');
  });

  test('after an order whose runbook calls an integration, the exposition has its request, order, run, steps and call', async () => {
    const before = await scrape();
    const created = before.value('provisio_http_request_duration_seconds_count', { operation_id: 'createOrder', status: '201' }) ?? 0;
    const id = await placeOrder();
    await waitProvisioned(id);
    // The run's end is recorded in the transaction that finishes it; the order turns provisioned in that same one.
    const m = await scrape();

    expect(m.types.get('provisio_http_request_duration_seconds')).toBe('histogram');
    expect(m.value('provisio_http_request_duration_seconds_count', { operation_id: 'createOrder', status: '201' })).toBe(created + 1);
    // The 401 and 403 of the test before were counted under the operation, not a path.
    expect(m.value('provisio_http_request_duration_seconds_count', { operation_id: 'getMetrics', status: '401' })).toBe(1);
    expect(m.value('provisio_http_request_duration_seconds_count', { operation_id: 'getMetrics', status: '403' })).toBe(1);
    expect(m.find('provisio_http_request_duration_seconds_count').every((s) => !s.labels['operation_id']!.includes('/'))).toBe(true);

    expect(m.value('provisio_orders', { action: 'provision', status: 'provisioned' })).toBe(1);
    expect(m.value('provisio_workflow_runs_total', { workflow: 'open account', outcome: 'succeeded' })).toBe(1);
    expect(m.value('provisio_workflow_run_duration_seconds_count', { workflow: 'open account', outcome: 'succeeded' })).toBe(1);
    expect(m.value('provisio_workflow_steps_total', { kind: 'transform', outcome: 'succeeded' })).toBe(1);
    expect(m.value('provisio_workflow_steps_total', { kind: 'integration', outcome: 'succeeded' })).toBe(1);
    expect(m.value('provisio_workflow_step_duration_seconds_count', { kind: 'integration', outcome: 'succeeded' })).toBe(1);
    expect(m.value('provisio_integration_call_duration_seconds_count', { integration: 'accountdesk', status_class: '2xx' })).toBe(1);
    // Every bucket at or above the sum holds the call; +Inf holds all.
    expect(m.value('provisio_integration_call_duration_seconds_bucket', { integration: 'accountdesk', status_class: '2xx', le: '+Inf' })).toBe(1);
    expect(m.value('provisio_integration_call_duration_seconds_sum', { integration: 'accountdesk', status_class: '2xx' })).toBeGreaterThan(0);

    expect(m.value('provisio_pool_instances', { asset_type: 'Lab VM', state: 'free' })).toBe(2);
    expect(m.value('provisio_pool_instances', { asset_type: 'Lab VM', state: 'failed' })).toBe(1);
    // The personal instance the order was given.
    expect(m.value('provisio_pool_instances', { asset_type: 'CRM seat', state: 'in_use' })).toBe(1);
    expect(m.types.get('provisio_process_cpu_seconds_total')).toBe('counter');
  });

  test('queue and outbox depth are read from the database at each scrape', async () => {
    await t.queue.createQueue('telemetry.probe');
    await t.db.transaction(async (tx) => {
      for (let i = 0; i < 3; i++) await t.queue.send(tx, 'telemetry.probe' as never, { i }, { startAfter: new Date(Date.now() + 3600_000) });
    });
    // Two mails given up on (dead), one queued, one sent (not depth: it left).
    await t.db.query(
      `INSERT INTO outbox (channel, template, recipients_to, data, state, next_attempt_at, triggered_by)
       VALUES ('mail', 'probe', '{a@example.com}', '{}', 'dead', NULL, 'system:test'), ('mail', 'probe', '{a@example.com}', '{}', 'dead', NULL, 'system:test'),
              ('teams', 'probe', '{}', '{}', 'queued', now() + interval '1 hour', 'system:test'), ('mail', 'probe', '{a@example.com}', '{}', 'sent', NULL, 'system:test')`,
    );
    const m = await scrape();
    expect(m.value('provisio_queue_jobs', { queue: 'telemetry.probe', state: 'created' })).toBe(3);
    expect(m.value('provisio_outbox_messages', { channel: 'mail', state: 'dead' })).toBe(2);
    expect(m.value('provisio_outbox_messages', { channel: 'teams', state: 'queued' })).toBe(1);
    expect(m.value('provisio_outbox_messages', { channel: 'mail', state: 'sent' })).toBeUndefined();
    // Gauges are not remembered: what left the database leaves the exposition.
    await t.db.query(`DELETE FROM pgboss.job WHERE name = 'telemetry.probe'`);
    expect((await scrape()).value('provisio_queue_jobs', { queue: 'telemetry.probe', state: 'created' })).toBeUndefined();
  });

  test('SCIM requests are counted by operation and status, leaver events by source and outcome', async () => {
    const scim = await mintTestToken(t.db, 'idp', ['scim:read']);
    const hr = await mintTestToken(t.db, 'hr', ['hr:leaver']);
    const before = await scrape();
    const listed = before.value('provisio_scim_requests_total', { operation: 'scimListUsers', status: '200' }) ?? 0;
    expect((await t.http().get('/scim/v2/Users').set({ Authorization: `Bearer ${scim}` })).status).toBe(200);
    expect((await t.http().get('/scim/v2/Users/no-such-id').set({ Authorization: `Bearer ${scim}` })).status).toBe(404);
    const leaver = (email: string) => t.http().post('/hr/leaver').set({ Authorization: `Bearer ${hr}` }).send({ email, source: 'native', event_id: 'telemetry-1' });
    // Someone holding nothing: the orders above stay as they are for the tests after this one.
    expect((await leaver('nobody@example.com')).status).toBe(202);
    await leaver('nobody@example.com');
    const m = await scrape();
    expect(m.value('provisio_scim_requests_total', { operation: 'scimListUsers', status: '200' })).toBe(listed + 1);
    expect(m.value('provisio_scim_requests_total', { operation: 'scimGetUser', status: '404' })).toBe(1);
    expect(m.value('provisio_leaver_events_total', { source: 'native', outcome: 'no_matching_user' })).toBe(1);
    expect(m.value('provisio_leaver_events_total', { source: 'native', outcome: 'duplicate' })).toBe(1);
  });

  test('the separate listener serves the same exposition without credentials, and nothing else', async () => {
    const server: Server = await listenForMetrics({ db: t.db, logger: createLogger({ silent: true }), host: '127.0.0.1', port: 0 });
    try {
      const res = await request(server).get('/metrics');
      expect(res.status).toBe(200);
      const m = parseExposition(res.text);
      expect(m.value('provisio_orders', { action: 'provision', status: 'provisioned' })).toBe(1);
      expect(m.value('provisio_workflow_runs_total', { workflow: 'open account', outcome: 'succeeded' })).toBe(1);
      expect((await request(server).get('/orders')).status).toBe(404);
      expect((await request(server).post('/metrics')).status).toBe(405);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('with tracing off, the integration receives no traceparent', async () => {
    const from = desk.requests.length;
    await waitProvisioned(await placeOrder());
    const calls = desk.requests.slice(from);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.headers['traceparent']).toBeUndefined();
    expect(otlp.spans).toHaveLength(0);
  });

  test('with tracing on, one trace runs from the inbound request through order, run and steps to the outbound call', async () => {
    startTracing({ endpoint: otlp.endpoint, serviceName: 'provisio-test' });
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const from = desk.requests.length;
    await waitProvisioned(await placeOrder({ traceparent: `00-${callerTrace}-${callerSpan}-01` }));
    await flushTraces();

    const call = desk.requests.slice(from);
    expect(call).toHaveLength(1);
    const sent = TRACE_ID.exec(String(call[0]!.headers['traceparent']));
    expect(sent?.[1]).toBe(callerTrace);

    const spans = otlp.spans.filter((s) => s.traceId === callerTrace);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const one = (pred: (s: ReceivedSpan) => boolean, what: string): ReceivedSpan => {
      const found = spans.filter(pred);
      if (found.length !== 1) throw new Error(`${found.length} spans for ${what}: ${spans.map((s) => s.name).join(', ')}`);
      return found[0]!;
    };
    const server = one((s) => s.kind === 2 && s.attributes['provisio.operation_id'] === 'createOrder', 'the request');
    const placed = one((s) => s.name === 'order.place', 'the placement');
    const provision = one((s) => s.name === 'order.provision', 'the provisioning job');
    const run = one((s) => s.name === 'workflow.run open account', 'the run');
    const prepare = one((s) => s.name === 'workflow.step prepare', 'step prepare');
    const create = one((s) => s.name === 'workflow.step create', 'step create');
    const client = one((s) => s.kind === 3 && s.attributes['provisio.integration'] === 'accountdesk', 'the outbound call');

    expect(server.parentSpanId).toBe(callerSpan);
    expect(server.name).toBe('POST /orders');
    expect(server.serviceName).toBe('provisio-test');
    expect(placed.parentSpanId).toBe(server.spanId);
    expect(provision.parentSpanId).toBe(placed.spanId);
    expect(run.parentSpanId).toBe(provision.spanId);
    expect(run.attributes['provisio.run_status']).toBe('succeeded');
    expect(prepare.parentSpanId).toBe(run.spanId);
    expect(create.parentSpanId).toBe(run.spanId);
    expect(create.attributes['provisio.task_kind']).toBe('integration');
    expect(client.parentSpanId).toBe(create.spanId);
    expect(client.attributes['http.response.status_code']).toBe(201);
    // The server called continues from the client span itself.
    expect(sent?.[2]).toBe(client.spanId);
    // Every parent named is in the trace (or is the caller's own span).
    for (const s of spans) expect(s.parentSpanId === callerSpan || byId.has(s.parentSpanId)).toBe(true);
  });

  test('a log line written during a traced request carries its trace id', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, next) {
        for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        next();
      },
    });
    const logger = createLogger({ level: 'http', stream: sink });
    const app = buildApp({ db: t.db, queue: t.queue, logger, integrations: t.integrations, adminKeyHash: async () => undefined }, t.config);
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const res = await request(app).get('/healthz').set('traceparent', `00-${traceId}-b7ad6b7169203331-01`);
    expect(res.status).toBe(200);
    await new Promise((r) => setImmediate(r));
    const line = lines.find((l) => l['message'] === 'request');
    expect(line).toMatchObject({ trace_id: traceId, path: '/healthz', status: 200 });
    expect(line!['span_id']).toMatch(/^[0-9a-f]{16}$/);
    expect(line!['span_id']).not.toBe('b7ad6b7169203331');
  });
});
