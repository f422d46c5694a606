// The order lifecycle (issue 11, part 4): cancel, return, extend, retry, the delayed start at requested_from and the
// expiry at requested_until, through the API with the real workflow engine, order consumers and pg-boss, on PGlite
// and (with DATABASE_URL) PostgreSQL. Runbooks are webhook runbooks against a loopback server.
//
// Two apps, two databases: `idle` works no queue, so an order stays where the API put it (the 409 paths, cancel
// before the runbook starts, a scheduled order's job waiting in pgboss.job, and a "restarted" worker picking it up);
// `live` runs the engine and the order consumers as `provisio serve` does.
import { createJobQueue, createLogger, type JobQueue } from '../../adapter';
import { createWorkflowRuntime, type WorkflowRuntime } from '../../server/domain/runbooks/workflow-runtime';
import { createTestApp, type TestApp } from '../support/app';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { mintTestToken } from '../support/orders';
import { TEST_ENGINE_CONFIG } from '../support/engine-config';

jest.setTimeout(90_000);

const ENGINE = TEST_ENGINE_CONFIG;
const DAY = 24 * 60 * 60 * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();

let idle: TestApp;
let live: TestApp;
let hook: LoopbackServer;
let idleWriter: string;
let liveWriter: string;
// What the provisioning service answers, by path; tests flip `/flaky`.
const answers: Record<string, { status: number; body?: unknown }> = {
  '/ok': { status: 200, body: { response: 'PROVISIONED_USER' } },
  '/gone': { status: 204 },
  '/flaky': { status: 200, body: { response: 'NO_PROVISIONING_ACTION' } },
};

function webhookRunbook(name: string, path: string): Record<string, unknown> {
  return {
    name,
    inputSchema: { type: 'object', properties: { url: { type: 'string', default: `${hook.url}${path}` } } },
    steps: [{ id: 'call_hook', kind: 'webhook', summary: 'Provisioning webhook', url: '{{inputs.url}}', incoming: { application: { app_id: 'lc' }, target_user: { email: '{{order.user_email}}' } } }],
  };
}

async function seedType(
  app: TestApp,
  name: string,
  o: { approval?: boolean; provision?: string; deprovision?: string; maxDays?: number; pooled?: string[] } = {},
): Promise<number> {
  const res = await app.http().post('/admin/asset-types').set(app.admin).send({
    name,
    assignment_model: o.pooled ? 'capacity_pooled' : 'personal',
    requires_approval: o.approval ?? false,
    ...(o.approval ? { fallback_approver: 'it-approvals@example.com' } : {}),
    ...(o.provision ? { provision_runbook: o.provision } : {}),
    ...(o.deprovision ? { deprovision_runbook: o.deprovision } : {}),
    ...(o.maxDays ? { max_duration_days: o.maxDays } : {}),
  });
  expect(res.status).toBe(201);
  expect(res.body.max_duration_days).toBe(o.maxDays ?? null);
  for (const a of o.pooled ?? []) await app.db.query('INSERT INTO assets (asset_type_id, name) VALUES ($1, $2)', [res.body.id, a]);
  return res.body.id as number;
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

async function placeOrder(app: TestApp, token: string, type: string, extra: Record<string, unknown> = {}, user = 'jane.doe@example.com') {
  const res = await app.http().post('/orders').set(bearer(token)).send({ asset_type_name: type, user_email: user, user_name: 'Jane Doe', ...extra });
  expect(res.status).toBe(201);
  return res.body as { id: number; status: string; job_id: string | null; requested_until: string | null; extension_requested_until: string | null };
}

async function statusOf(app: TestApp, id: number): Promise<string> {
  const { rows } = await app.db.query<{ status: string }>('SELECT status FROM orders WHERE id = $1', [id]);
  return rows[0]!.status;
}

async function waitForStatus(app: TestApp, id: number, statuses: string[], timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await statusOf(app, id);
    if (statuses.includes(s)) return s;
    if (Date.now() > deadline) throw new Error(`order ${id} is ${s}, expected ${statuses.join('|')}`);
    await sleep(100);
  }
}

async function transitions(app: TestApp, id: number): Promise<[string, string, string | null][]> {
  const { rows } = await app.db.query<{ diff: { after: { status: string; reason?: string } }; triggered_by: string }>(
    `SELECT diff, triggered_by FROM audit_log WHERE entity = 'order' AND entity_id = $1 AND action = 'transition' ORDER BY id`,
    [String(id)],
  );
  return rows.map((r) => [r.diff.after.status, r.triggered_by, r.diff.after.reason ?? null]);
}

async function auditActions(app: TestApp, id: number): Promise<{ action: string; diff: { before: Record<string, unknown> | null; after: Record<string, unknown> | null }; triggered_by: string }[]> {
  const { rows } = await app.db.query<{ action: string; diff: { before: Record<string, unknown> | null; after: Record<string, unknown> | null }; triggered_by: string }>(
    `SELECT action, diff, triggered_by FROM audit_log WHERE entity = 'order' AND entity_id = $1 ORDER BY id`,
    [String(id)],
  );
  return rows;
}

async function jobsOf(app: TestApp, queue: string, orderId: number): Promise<{ id: string; state: string; start_after: Date; data: Record<string, unknown> }[]> {
  const { rows } = await app.db.query<{ id: string; state: string; start_after: Date; data: Record<string, unknown> }>(
    `SELECT id::text AS id, state, start_after, data FROM pgboss.job WHERE name = $1 AND (data->>'orderId')::bigint = $2 ORDER BY created_on`,
    [queue, orderId],
  );
  return rows;
}

/** Moves an order straight to a status, as the flows would have (for the 409 paths on the idle app). */
async function forceStatus(app: TestApp, id: number, status: string): Promise<void> {
  await app.db.query('UPDATE orders SET status = $2 WHERE id = $1', [id, status]);
}

beforeAll(async () => {
  hook = await startLoopbackServer((req, res) => {
    const a = answers[req.url] ?? { status: 404, body: { detail: 'no such hook' } };
    if (a.body === undefined) {
      res.statusCode = a.status;
      res.end();
    } else sendJson(res, a.status, a.body);
  });
  idle = await createTestApp();
  live = await createTestApp({}, { workflows: { config: ENGINE } });
  idleWriter = await mintTestToken(idle.db, 'writer', ['orders:write']);
  liveWriter = await mintTestToken(live.db, 'writer', ['orders:write']);
  const engine = live.workflows!.engine;
  await engine.saveWorkflow(webhookRunbook('lc-provision', '/ok'), 'test');
  await engine.saveWorkflow(webhookRunbook('lc-deprovision', '/gone'), 'test');
  await engine.saveWorkflow(webhookRunbook('lc-flaky', '/flaky'), 'test');
  await live.workflows!.startWorkers({ teamSize: 2 });
});

afterAll(async () => {
  await live?.close();
  await idle?.close();
  await hook?.close();
});

describe('cancel', () => {
  test('an order waiting for approval: cancelled, its approval withdrawn, the caller and reason audited', async () => {
    await seedType(idle, 'Cancel approved', { approval: true });
    const o = await placeOrder(idle, idleWriter, 'Cancel approved');
    expect(o.status).toBe('pending_approval');
    const res = await idle.http().post(`/orders/${o.id}/cancel`).set(bearer(idleWriter)).send({ reason: 'no longer needed' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: o.id, status: 'cancelled', error_message: 'cancelled: no longer needed' });
    const { rows } = await idle.db.query<{ status: string; decided_by: string }>('SELECT status, decided_by FROM approvals WHERE order_id = $1', [o.id]);
    expect(rows).toEqual([{ status: 'withdrawn', decided_by: 'api:token:writer' }]);
    expect(await transitions(idle, o.id)).toEqual([['cancelled', 'api:token:writer', 'no longer needed']]);
    // Cancelled is final: a second cancel is a 409 naming the status.
    const again = await idle.http().post(`/orders/${o.id}/cancel`).set(bearer(idleWriter)).send({});
    expect(again.status).toBe(409);
    expect(again.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(again.body).toMatchObject({ code: 'ORDER_STATE_CONFLICT', order_status: 'cancelled', status: 409 });
  });

  test('a processing order before its runbook starts (no body needed); the admin key too', async () => {
    await seedType(idle, 'Cancel processing', { provision: 'lc-provision' });
    const o = await placeOrder(idle, idleWriter, 'Cancel processing');
    expect(o.status).toBe('processing');
    const res = await idle.http().post(`/orders/${o.id}/cancel`).set(idle.admin);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('cancelled');
    expect(await transitions(idle, o.id)).toEqual([['cancelled', 'admin:key', null]]);
  });

  test('409 once the runbook has started, with the current status; unknown order 404', async () => {
    await seedType(live, 'Cancel late', { provision: 'lc-provision' });
    const o = await placeOrder(live, liveWriter, 'Cancel late');
    await waitForStatus(live, o.id, ['provisioned']);
    const res = await live.http().post(`/orders/${o.id}/cancel`).set(bearer(liveWriter)).send({ reason: 'too late' });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'ORDER_STATE_CONFLICT', order_status: 'provisioned' });
    expect(res.body.detail).toContain(`order ${o.id}`);
    expect(await statusOf(live, o.id)).toBe('provisioned');

    const missing = await idle.http().post('/orders/987654321/cancel').set(bearer(idleWriter)).send({});
    expect(missing.status).toBe(404);
  });

  test('a scheduled order: cancelled; its delayed job later finds nothing to do', async () => {
    await seedType(idle, 'Cancel scheduled');
    const o = await placeOrder(idle, idleWriter, 'Cancel scheduled', { requested_from: inMs(DAY) });
    expect(o.status).toBe('scheduled');
    const res = await idle.http().post(`/orders/${o.id}/cancel`).set(bearer(idleWriter)).send({});
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('cancelled');
  });
});

describe('return', () => {
  test('a provisioned order: deprovisioning, the deprovision runbook runs, returned; the pool instance comes back', async () => {
    await seedType(live, 'Return me', { provision: 'lc-provision', deprovision: 'lc-deprovision', pooled: ['ret-01'] });
    const o = await placeOrder(live, liveWriter, 'Return me');
    await waitForStatus(live, o.id, ['provisioned']);
    const before = hook.requests.filter((r) => r.url === '/gone').length;
    const res = await live.http().post(`/orders/${o.id}/return`).set(bearer(liveWriter)).send({ reason: 'project over' });
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('deprovisioning');
    expect(res.body.job_id).not.toBe(o.job_id);
    const [job] = await live.db.query<{ data: Record<string, unknown> }>(`SELECT data FROM pgboss.job WHERE id = $1`, [res.body.job_id]).then((r) => r.rows);
    expect(job!.data).toMatchObject({ orderId: o.id, reason: 'return', policy: 'access_only' });
    await waitForStatus(live, o.id, ['returned']);
    expect(hook.requests.filter((r) => r.url === '/gone').length).toBe(before + 1);
    const { rows } = await live.db.query<{ state: string }>(`SELECT state FROM assets WHERE name = 'ret-01'`);
    expect(rows[0]!.state).toBe('free');
    const t = await transitions(live, o.id);
    expect(t).toContainEqual(['deprovisioning', 'api:token:writer', 'project over']);
    expect(t.at(-1)).toEqual(['returned', 'system:order-deprovision', null]);
  });

  test('409 naming the status for an order that holds nothing (waiting for approval, cancelled)', async () => {
    await seedType(idle, 'Return early', { approval: true });
    const o = await placeOrder(idle, idleWriter, 'Return early');
    const res = await idle.http().post(`/orders/${o.id}/return`).set(bearer(idleWriter)).send({});
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'ORDER_STATE_CONFLICT', order_status: 'pending_approval' });
    await idle.http().post(`/orders/${o.id}/cancel`).set(bearer(idleWriter)).send({});
    const after = await idle.http().post(`/orders/${o.id}/return`).set(bearer(idleWriter)).send({});
    expect(after.status).toBe(409);
    expect(after.body.order_status).toBe('cancelled');
  });
});

describe('extend', () => {
  test('within the maximum: applied at once, audited, the expiry moves; beyond it 422 naming requested_until', async () => {
    await seedType(idle, 'Extend free', { maxDays: 30 });
    const from = new Date(Date.now() - DAY).toISOString();
    const o = await placeOrder(idle, idleWriter, 'Extend free', { requested_from: from, requested_until: inMs(2 * DAY) });
    expect(o.status).toBe('processing');
    expect(await jobsOf(idle, 'order.expire', o.id)).toHaveLength(1);
    await forceStatus(idle, o.id, 'provisioned');

    const until = inMs(10 * DAY);
    const res = await idle.http().post(`/orders/${o.id}/extend`).set(bearer(idleWriter)).send({ requested_until: until, reason: 'longer project' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'provisioned', extension_requested_until: null });
    expect(new Date(res.body.requested_until).getTime()).toBe(new Date(until).getTime());
    const extend = (await auditActions(idle, o.id)).find((a) => a.action === 'extend')!;
    expect(extend.triggered_by).toBe('api:token:writer');
    expect(extend.diff.after).toMatchObject({ requested_until: new Date(until).toISOString(), reason: 'longer project' });
    const expiries = await jobsOf(idle, 'order.expire', o.id);
    expect(expiries).toHaveLength(2);
    expect(new Date(expiries[1]!.start_after).getTime()).toBe(new Date(until).getTime());
    expect(new Date(String(expiries[1]!.data['requestedUntil'])).getTime()).toBe(new Date(until).getTime());

    // Beyond 30 days from requested_from.
    const far = await idle.http().post(`/orders/${o.id}/extend`).set(bearer(idleWriter)).send({ requested_until: inMs(40 * DAY) });
    expect(far.status).toBe(422);
    expect(far.body.code).toBe('VALIDATION_FAILED');
    expect(far.body.errors).toEqual([expect.objectContaining({ path: '/body/requested_until' })]);
    expect(far.body.detail).toContain('30 days');
    // Not later than the current end.
    const earlier = await idle.http().post(`/orders/${o.id}/extend`).set(bearer(idleWriter)).send({ requested_until: inMs(5 * DAY) });
    expect(earlier.status).toBe(422);
    expect(earlier.body.errors[0].path).toBe('/body/requested_until');
    // Missing or malformed field: the spec's 400/422, never a 500.
    const missing = await idle.http().post(`/orders/${o.id}/extend`).set(bearer(idleWriter)).send({});
    expect([400, 422]).toContain(missing.status);
    expect(JSON.stringify(missing.body)).toContain('requested_until');
    expect(await statusOf(idle, o.id)).toBe('provisioned');
  });

  test('placing an order beyond the maximum is a 422 too', async () => {
    await seedType(idle, 'Extend capped', { maxDays: 7 });
    const res = await idle.http().post('/orders').set(bearer(idleWriter))
      .send({ asset_type_name: 'Extend capped', user_email: 'cap@example.com', user_name: 'Cap', requested_until: inMs(8 * DAY) });
    expect(res.status).toBe(422);
    expect(res.body.errors[0].path).toBe('/body/requested_until');
  });

  test('a type that requires approval: the extension waits (202), approving applies it, declining drops it', async () => {
    await seedType(idle, 'Extend approved', { approval: true, maxDays: 90 });
    const o = await placeOrder(idle, idleWriter, 'Extend approved', { requested_until: inMs(5 * DAY) });
    // Not while the order itself waits for approval.
    const early = await idle.http().post(`/orders/${o.id}/extend`).set(bearer(idleWriter)).send({ requested_until: inMs(6 * DAY) });
    expect(early.status).toBe(409);
    expect(early.body.order_status).toBe('pending_approval');
    const approved = await idle.http().post(`/orders/${o.id}/approve`).set(idle.admin).send({});
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ kind: 'order', order_status: 'processing' });
    await forceStatus(idle, o.id, 'provisioned');

    const until = inMs(20 * DAY);
    const res = await idle.http().post(`/orders/${o.id}/extend`).set(bearer(idleWriter)).send({ requested_until: until, reason: 'renewal' });
    expect(res.status).toBe(202);
    expect(new Date(res.body.extension_requested_until).getTime()).toBe(new Date(until).getTime());
    expect(new Date(res.body.requested_until).getTime()).toBe(new Date(o.requested_until!).getTime());
    const pending = await idle.http().get('/admin/approvals?status=pending').set(idle.admin);
    const mine = (pending.body.items as { order_id: number; kind: string; requested_until: string; approver_email: string }[]).find((a) => a.order_id === o.id)!;
    expect(mine).toMatchObject({ kind: 'extension', approver_email: 'it-approvals@example.com' });
    expect(new Date(mine.requested_until).getTime()).toBe(new Date(until).getTime());
    // A second extension while one waits: 409.
    const second = await idle.http().post(`/orders/${o.id}/extend`).set(bearer(idleWriter)).send({ requested_until: inMs(30 * DAY) });
    expect(second.status).toBe(409);
    expect(second.body.order_status).toBe('provisioned');

    const yes = await idle.http().post(`/orders/${o.id}/approve`).set(idle.admin).send({ reason: 'fine' });
    expect(yes.status).toBe(200);
    expect(yes.body).toMatchObject({ kind: 'extension', order_status: 'provisioned', approval: { kind: 'extension', status: 'approved' } });
    expect(new Date(yes.body.requested_until).getTime()).toBe(new Date(until).getTime());
    const after = await idle.http().get(`/orders/${o.id}`).set(idle.admin);
    expect(after.body.extension_requested_until).toBeNull();
    expect(new Date(after.body.requested_until).getTime()).toBe(new Date(until).getTime());

    // Declined: the end stays.
    const next = await idle.http().post(`/orders/${o.id}/extend`).set(bearer(idleWriter)).send({ requested_until: inMs(40 * DAY) });
    expect(next.status).toBe(202);
    const no = await idle.http().post(`/orders/${o.id}/decline`).set(idle.admin).send({ reason: 'no' });
    expect(no.status).toBe(200);
    expect(no.body).toMatchObject({ kind: 'extension', order_status: 'provisioned' });
    const final = await idle.http().get(`/orders/${o.id}`).set(idle.admin);
    expect(final.body.extension_requested_until).toBeNull();
    expect(new Date(final.body.requested_until).getTime()).toBe(new Date(until).getTime());
    expect((await auditActions(idle, o.id)).map((a) => a.action)).toEqual(
      expect.arrayContaining(['extension_requested', 'extend', 'extension_declined']),
    );
    // Deciding again: nothing waits.
    const stale = await idle.http().post(`/orders/${o.id}/approve`).set(idle.admin).send({});
    expect(stale.status).toBe(409);
  });

  test('409 in a state that does not allow it, with the status', async () => {
    await seedType(idle, 'Extend ended');
    const o = await placeOrder(idle, idleWriter, 'Extend ended');
    await forceStatus(idle, o.id, 'returned');
    const res = await idle.http().post(`/orders/${o.id}/extend`).set(bearer(idleWriter)).send({ requested_until: inMs(DAY) });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'ORDER_STATE_CONFLICT', order_status: 'returned' });
  });
});

describe('retry', () => {
  test('a failed provision reruns from the failed step and ends provisioned; 409 when not failed', async () => {
    await seedType(live, 'Retry me', { provision: 'lc-flaky' });
    const o = await placeOrder(live, liveWriter, 'Retry me');
    await waitForStatus(live, o.id, ['failed', 'provisioned']);
    expect(await statusOf(live, o.id)).toBe('failed');
    answers['/flaky'] = { status: 200, body: { response: 'PROVISIONED_USER' } };
    try {
      const res = await live.http().post(`/orders/${o.id}/retry`).set(bearer(liveWriter)).send({ reason: 'hook fixed' });
      expect(res.status).toBe(202);
      expect(['processing', 'provisioning', 'provisioned']).toContain(res.body.status);
      await waitForStatus(live, o.id, ['provisioned']);
      const { rows } = await live.db.query<{ n: number }>(`SELECT count(DISTINCT r.run_id)::int AS n FROM order_runs r WHERE order_id = $1 AND phase = 'provision'`, [o.id]);
      expect(rows[0]!.n).toBe(2);
      const retry = (await auditActions(live, o.id)).find((a) => a.action === 'retry')!;
      expect(retry.triggered_by).toBe('api:token:writer');
      expect(retry.diff.after).toMatchObject({ phase: 'provision', reason: 'hook fixed' });
      const again = await live.http().post(`/orders/${o.id}/retry`).set(bearer(liveWriter)).send({});
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({ code: 'ORDER_STATE_CONFLICT', order_status: 'provisioned' });
    } finally {
      answers['/flaky'] = { status: 200, body: { response: 'NO_PROVISIONING_ACTION' } };
    }
  });

  test('a provision whose runbook could not start is started afresh', async () => {
    await seedType(live, 'Retry fresh', { provision: 'lc-not-yet' });
    const o = await placeOrder(live, liveWriter, 'Retry fresh');
    await waitForStatus(live, o.id, ['failed']);
    await live.workflows!.engine.saveWorkflow(webhookRunbook('lc-not-yet', '/ok'), 'test');
    const res = await live.http().post(`/orders/${o.id}/retry`).set(live.admin).send({});
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('processing');
    await waitForStatus(live, o.id, ['provisioned']);
  });
});

describe('scheduled start', () => {
  test('requested_from ahead: scheduled, a durable job due then; it provisions at that time', async () => {
    await seedType(live, 'Later desk', { provision: 'lc-provision' });
    const from = inMs(3000);
    const o = await placeOrder(live, liveWriter, 'Later desk', { requested_from: from });
    expect(o.status).toBe('scheduled');
    const [job] = await jobsOf(live, 'order.provision', o.id);
    expect(job!.id).toBe(o.job_id);
    expect(new Date(job!.start_after).getTime()).toBe(new Date(from).getTime());
    await sleep(1000);
    expect(await statusOf(live, o.id)).toBe('scheduled');
    await waitForStatus(live, o.id, ['provisioned']);
    expect(Date.now()).toBeGreaterThanOrEqual(new Date(from).getTime());
    const t = await transitions(live, o.id);
    expect(t[0]).toEqual(['processing', 'system:schedule', 'requested_from reached']);
  });

  test('after approval too', async () => {
    await seedType(idle, 'Later approved', { approval: true });
    const from = inMs(DAY);
    const o = await placeOrder(idle, idleWriter, 'Later approved', { requested_from: from });
    const res = await idle.http().post(`/orders/${o.id}/approve`).set(idle.admin).send({});
    expect(res.status).toBe(200);
    expect(res.body.order_status).toBe('scheduled');
    const [job] = await jobsOf(idle, 'order.provision', o.id);
    expect(job!.id).toBe(res.body.job_id);
    expect(new Date(job!.start_after).getTime()).toBe(new Date(from).getTime());
  });

  test('the job survives a restart: a worker started afterwards on the same database runs it', async () => {
    await seedType(idle, 'Restart desk');
    const o = await placeOrder(idle, idleWriter, 'Restart desk', { requested_from: inMs(2000) });
    expect(o.status).toBe('scheduled');
    // The serving process had no workers; a new process (its own queue and engine on the same database) starts.
    const logger = createLogger({ silent: true });
    const queue: JobQueue = createJobQueue(idle.db, { logger, schedule: false });
    await queue.start();
    const rt: WorkflowRuntime = createWorkflowRuntime({ db: idle.db, queue, logger, integrations: idle.integrations, config: ENGINE });
    try {
      await rt.startWorkers({ teamSize: 1 });
      await waitForStatus(idle, o.id, ['provisioned']);
    } finally {
      await rt.stop();
      await queue.stop({ graceful: false, timeoutMs: 1000 });
    }
  });
});

describe('expiry', () => {
  test('at requested_until the order is returned by itself, audited system:expiry', async () => {
    await seedType(live, 'Short seat', { deprovision: 'lc-deprovision' });
    const o = await placeOrder(live, liveWriter, 'Short seat', { requested_until: inMs(3000) });
    await waitForStatus(live, o.id, ['provisioned']);
    await waitForStatus(live, o.id, ['returned']);
    const t = await transitions(live, o.id);
    expect(t).toContainEqual(['deprovisioning', 'system:expiry', expect.stringMatching(/^requested_until .* reached$/)]);
  });

  test('an extension re-schedules: the stale job does nothing, the new one returns the order', async () => {
    await seedType(live, 'Extended seat');
    // The first end leaves room for provisioning and the extension on a loaded machine (a CI run once took more
    // than 2.5 s to get here, and the first end then returned the order before it was extended).
    const firstEnd = inMs(6000);
    const o = await placeOrder(live, liveWriter, 'Extended seat', { requested_until: firstEnd });
    await waitForStatus(live, o.id, ['provisioned']);
    // Well past the first end, so the stale job's run falls between the two.
    const until = new Date(Math.max(Date.now() + 6000, new Date(firstEnd).getTime() + 5000)).toISOString();
    const ext = await live.http().post(`/orders/${o.id}/extend`).set(bearer(liveWriter)).send({ requested_until: until });
    expect(ext.status).toBe(200);
    // Past the first end (and the stale job's run): still provisioned.
    await sleep(Math.max(0, new Date(firstEnd).getTime() + 2000 - Date.now()));
    expect(Date.now()).toBeLessThan(new Date(until).getTime());
    expect(await statusOf(live, o.id)).toBe('provisioned');
    const [first] = await jobsOf(live, 'order.expire', o.id);
    expect(first!.state).toBe('completed');
    await waitForStatus(live, o.id, ['returned']);
    expect(Date.now()).toBeGreaterThanOrEqual(new Date(until).getTime());
  });

  test('an order still waiting for approval at its end is cancelled as expired', async () => {
    await seedType(live, 'Expired waiting', { approval: true });
    const o = await placeOrder(live, liveWriter, 'Expired waiting', { requested_until: inMs(2000) });
    expect(o.status).toBe('pending_approval');
    await waitForStatus(live, o.id, ['cancelled']);
    const { rows } = await live.db.query<{ status: string; decided_by: string }>('SELECT status, decided_by FROM approvals WHERE order_id = $1', [o.id]);
    expect(rows).toEqual([{ status: 'withdrawn', decided_by: 'system:expiry' }]);
  });
});
