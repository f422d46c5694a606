// ServiceNow `action: delete` against real runs (issue 11, part 6): a take-back sent while its target's provision
// still runs is queued and runs after it; the delete's own order ends `returned` or `failed`, never `provisioned`.
import { cancelOrder } from '../../server/domain/orders/lifecycle';
import { testEngine } from '../support/db';
import { REFUSED, startOrderFlow, type OrderFlow } from '../support/order-flow';

jest.setTimeout(120_000);

let f: OrderFlow;
/** Asset names whose provision the service answers slowly, and those whose deprovision it refuses. */
const slow = new Set<string>();
const refuseProvision = new Set<string>();
const refuseDeprovision = new Set<string>();

async function asset(name: string) {
  const { rows } = await f.t.db.query<{ id: number; state: string; assigned_order_id: number | null; error_message: string | null }>(
    'SELECT id::int AS id, state, assigned_order_id::int AS assigned_order_id, error_message FROM assets WHERE name = $1',
    [name],
  );
  return rows[0]!;
}

async function runsOf(orderId: number) {
  const { rows } = await f.t.db.query<{ id: string; phase: string; request_order_id: number | null; created_at: Date; finished_at: Date | null }>(
    `SELECT w.id::text AS id, r.phase, r.request_order_id::int AS request_order_id, w.created_at, w.finished_at
       FROM order_runs r JOIN workflow_runs w ON w.id = r.run_id WHERE r.order_id = $1 ORDER BY w.created_at`,
    [orderId],
  );
  return rows;
}

beforeAll(async () => {
  f = await startOrderFlow();
  await f.runbook('Desk - provision', '/provision');
  await f.runbook('Desk - deprovision', '/deprovision');
  f.decide = (path, name) => {
    const delayMs = slow.has(name) ? 2500 : 0;
    if (path === '/provision') return refuseProvision.has(name) ? { ...REFUSED, delayMs } : { status: 200, body: { response: 'PROVISIONED_USER' }, delayMs };
    return refuseDeprovision.has(name) ? REFUSED : { status: 204 };
  };
  // One type per test, each with its one desktop, so every test knows which asset its order gets.
  for (const name of ['slow', 'queued', 'broken', 'stuck', 'cancelled']) {
    await f.seedType(`Desk ${name}`, { pooled: true, provision: 'Desk - provision', deprovision: 'Desk - deprovision', policy: 'return_to_pool', assets: [`desk-${name}`] });
  }
});
afterAll(async () => {
  await f?.close();
});

describe(`ServiceNow delete (${testEngine})`, () => {
  test('sent while the provision runs: queued (no job), run after the provision ends; the delete ends returned with the steps', async () => {
    slow.add('desk-slow');
    const placed = await f.order('Desk slow', 'slow@example.com');
    await f.waitForStatus(placed.id, ['provisioning']);
    const del = await f.takeBack('Desk slow', 'slow@example.com', 'RITM7000001');
    expect(del.queued).toBe(true);
    expect(del.order).toMatchObject({ action: 'delete', status: 'deprovisioning', target_order_id: placed.id, servicenow_ref: 'RITM7000001' });
    const jobs = await f.t.db.query('SELECT 1 FROM pgboss.job WHERE id = $1', [del.order.job_id]);
    expect(jobs.rows).toHaveLength(0);
    // The target is left to its provision meanwhile.
    expect((await f.waitForStatus(placed.id, ['provisioning', 'provisioned', 'deprovisioning', 'returned'])).order.status).not.toBe('failed');

    const target = await f.waitForStatus(placed.id, ['returned', 'failed']);
    expect(target.order.status).toBe('returned');
    const own = await f.waitForStatus(del.order.id, ['returned', 'failed', 'provisioned']);
    expect(own.order).toMatchObject({ status: 'returned', error_message: null });
    expect(own.steps.map((s) => [s.step_id, s.status])).toEqual([['call_hook', 'succeeded']]);
    expect(await asset('desk-slow')).toMatchObject({ state: 'free', assigned_order_id: null });

    // The deprovision run started only once the provision run had finished, and was dispatched under the delete's job id.
    const [prov, deprov] = await runsOf(placed.id);
    expect([prov!.phase, deprov!.phase, deprov!.request_order_id]).toEqual(['provision', 'deprovision', del.order.id]);
    expect(new Date(deprov!.created_at).getTime()).toBeGreaterThanOrEqual(new Date(prov!.finished_at!).getTime());
    const job = await f.t.db.query<{ data: unknown }>('SELECT data FROM pgboss.job WHERE id = $1', [del.order.job_id]);
    expect(job.rows[0]!.data).toEqual({ orderId: del.order.id, targetOrderId: placed.id });
    // The target's trail: provisioned by the flow, then taken back on behalf of the webhook that asked.
    const trail = await f.t.db.query<{ status: string; triggered_by: string }>(
      `SELECT diff->'after'->>'status' AS status, triggered_by FROM audit_log WHERE entity = 'order' AND entity_id = $1 AND action = 'transition' ORDER BY id`,
      [String(placed.id)],
    );
    expect(trail.rows).toEqual([
      { status: 'provisioning', triggered_by: 'system:order-provision' },
      { status: 'provisioned', triggered_by: 'system:order-provision' },
      { status: 'deprovisioning', triggered_by: 'webhook:hmac' },
      { status: 'returned', triggered_by: 'system:order-deprovision' },
    ]);
  });

  test('sent before the provision job ran (target processing): queued, and taken back when the provision ends', async () => {
    const { rows } = await f.t.db.query<{ id: number }>(
      `INSERT INTO orders (asset_type_id, status, source, user_email, user_name, created_by)
       SELECT id, 'processing', 'api', 'queued@example.com', 'Q', 'test' FROM asset_types WHERE name = 'Desk queued' RETURNING id::int AS id`,
    );
    const id = rows[0]!.id;
    const del = await f.takeBack('Desk queued', 'queued@example.com');
    expect(del.queued).toBe(true);
    await f.runs.provision(id);
    expect((await f.waitForStatus(id, ['returned', 'failed'])).order.status).toBe('returned');
    expect(await asset('desk-queued')).toMatchObject({ state: 'free', assigned_order_id: null });
    expect((await f.waitForStatus(del.order.id, ['returned', 'failed'])).order.status).toBe('returned');
  });

  test('queued for an order then cancelled before its runbook started: the delete has nothing to take back and ends returned', async () => {
    const { rows } = await f.t.db.query<{ id: number }>(
      `INSERT INTO orders (asset_type_id, status, source, user_email, user_name, created_by)
       SELECT id, 'processing', 'api', 'cancelled@example.com', 'C', 'test' FROM asset_types WHERE name = 'Desk cancelled' RETURNING id::int AS id`,
    );
    const id = rows[0]!.id;
    const del = await f.takeBack('Desk cancelled', 'cancelled@example.com');
    expect(del.queued).toBe(true);
    const cancelled = await cancelOrder({ db: f.t.db, queue: f.queue }, id, { triggeredBy: 'api:token:test', reason: 'changed my mind' });
    expect(cancelled.status).toBe('cancelled');
    expect((await f.waitForStatus(del.order.id, ['returned', 'failed'])).order).toMatchObject({ status: 'returned' });
    expect(await asset('desk-cancelled')).toMatchObject({ state: 'free', assigned_order_id: null });
  });

  test('queued behind a provision that fails: the half-built order is taken back all the same', async () => {
    refuseProvision.add('desk-broken');
    slow.add('desk-broken');
    const placed = await f.order('Desk broken', 'broken@example.com');
    await f.waitForStatus(placed.id, ['provisioning']);
    const del = await f.takeBack('Desk broken', 'broken@example.com');
    expect(del.queued).toBe(true);
    expect((await f.waitForStatus(placed.id, ['returned', 'failed'], 40_000)).order.status).toBe('returned');
    expect((await f.waitForStatus(del.order.id, ['returned', 'failed'])).order.status).toBe('returned');
    expect(await asset('desk-broken')).toMatchObject({ state: 'free', assigned_order_id: null });
    refuseProvision.delete('desk-broken');
  });

  test('a deprovision that fails: the delete and its target show the error, the asset is failed with it, no stale pointer; a rerun recovers the orders', async () => {
    refuseDeprovision.add('desk-stuck');
    const placed = await f.order('Desk stuck', 'stuck@example.com');
    const provisioned = await f.waitForStatus(placed.id, ['provisioned']);
    expect(provisioned.order.assigned_asset_id).toBe((await asset('desk-stuck')).id);
    const del = await f.takeBack('Desk stuck', 'stuck@example.com');
    expect(del.queued).toBe(false);
    const own = await f.waitForStatus(del.order.id, ['returned', 'failed', 'provisioned']);
    expect(own.order.status).toBe('failed');
    expect(own.order.error_message).toMatch(/NO_PROVISIONING_ACTION/);
    const target = await f.waitForStatus(placed.id, ['failed']);
    expect(target.order.error_message).toMatch(/NO_PROVISIONING_ACTION/);
    expect(target.order.assigned_asset_id).toBeNull();
    const stuck = await asset('desk-stuck');
    expect(stuck).toMatchObject({ state: 'failed', assigned_order_id: null });
    expect(stuck.error_message).toMatch(new RegExp(`^deprovision of order ${placed.id} failed: .*NO_PROVISIONING_ACTION`));

    // ServiceNow sends another delete: the order's one deprovision run failed, so this one ends failed saying so
    // (rather than waiting for a run that never starts), and the target is failed again.
    const again = await f.takeBack('Desk stuck', 'stuck@example.com');
    const againDone = await f.waitForStatus(again.order.id, ['failed', 'returned']);
    expect(againDone.order.error_message).toMatch(/^the deprovision run \S+ of order \d+ failed earlier; rerun it/);
    expect((await f.waitForStatus(placed.id, ['failed'])).order.assigned_asset_id).toBeNull();

    // The service is fixed; rerunning the failed deprovision run takes both orders back into the flow and ends them.
    refuseDeprovision.delete('desk-stuck');
    const deprov = (await runsOf(placed.id)).find((r) => r.phase === 'deprovision')!;
    await f.engine.rerunRun(deprov.id, { from: 'failed', createdBy: 'admin:key' });
    expect((await f.waitForStatus(placed.id, ['returned'])).order.status).toBe('returned');
    expect((await f.waitForStatus(del.order.id, ['returned'])).order.error_message).toBeNull();
    // What the failed run left on the instance is unknown: it stays out of service until an admin puts it back.
    expect((await asset('desk-stuck')).state).toBe('failed');
  });
});
