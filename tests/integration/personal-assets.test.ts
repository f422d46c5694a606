// Personal assignment (issue 11, part 5): a personal type's order creates, or reuses, a dedicated instance bound to
// its user; the deprovision policy decides whether the binding survives the return. Real engine, real webhook
// runbooks on loopback, PGlite or PostgreSQL.
import { testEngine } from '../support/db';
import { startOrderFlow, type OrderFlow } from '../support/order-flow';

jest.setTimeout(120_000);

let f: OrderFlow;

interface AssetRow {
  id: number;
  name: string;
  state: string;
  owner_email: string | null;
  assigned_order_id: number | null;
}

async function assetsOf(type: string): Promise<AssetRow[]> {
  const { rows } = await f.t.db.query<AssetRow>(
    `SELECT a.id::int AS id, a.name, a.state, a.owner_email, a.assigned_order_id::int AS assigned_order_id
       FROM assets a JOIN asset_types t ON t.id = a.asset_type_id WHERE t.name = $1 ORDER BY a.id`,
    [type],
  );
  return rows;
}

beforeAll(async () => {
  f = await startOrderFlow();
  await f.runbook('Seat - provision', '/provision', { owner: true });
  await f.runbook('Seat - deprovision', '/deprovision');
  await f.runbook('Desk - provision', '/provision');
  f.decide = (path) => (path === '/deprovision' ? { status: 204 } : { status: 200, body: { response: 'PROVISIONED_USER' } });
});
afterAll(async () => {
  await f?.close();
});

describe(`personal assignment (${testEngine})`, () => {
  test('an order creates a dedicated instance named <type>-<local part>, bound to the user, in use by the order; the runbook sees it', async () => {
    await f.seedType('SaaS Seat', { provision: 'Seat - provision', deprovision: 'Seat - deprovision', policy: 'access_only' });
    const placed = await f.order('SaaS Seat', 'Jane.Doe@example.com');
    const done = await f.waitForStatus(placed.id, ['provisioned', 'failed']);
    expect(done.order.status).toBe('provisioned');
    const [seat] = await assetsOf('SaaS Seat');
    expect(seat).toEqual({ id: done.order.assigned_asset_id, name: 'saas-seat-jane.doe', state: 'in_use', owner_email: 'jane.doe@example.com', assigned_order_id: placed.id });
    const sent = f.hook.requests.filter((r) => r.url === '/provision').map((r) => JSON.parse(r.body) as Record<string, Record<string, unknown>>);
    expect(sent.at(-1)).toMatchObject({ application: { user_friendly_label: 'saas-seat-jane.doe' }, custom_fields: { owner: 'jane.doe@example.com' } });
    const audit = await f.t.db.query<{ action: string; triggered_by: string }>(
      `SELECT action, triggered_by FROM audit_log WHERE entity = 'asset' AND entity_id = $1 ORDER BY id`,
      [String(seat!.id)],
    );
    expect(audit.rows).toEqual([
      { action: 'create', triggered_by: 'system:order-provision' },
      { action: 'assign', triggered_by: 'system:order-provision' },
    ]);
  });

  test('access_only: returned, the instance stays bound to its user and their next order reuses it; another user gets their own', async () => {
    const first = (await f.t.db.query<{ id: number }>(`SELECT id::int AS id FROM orders WHERE user_email = 'jane.doe@example.com' AND action = 'provision'`)).rows[0]!;
    const del = await f.takeBack('SaaS Seat', 'jane.doe@example.com');
    expect(del.queued).toBe(false);
    await f.waitForStatus(del.order.id, ['returned']);
    expect(await assetsOf('SaaS Seat')).toEqual([
      { id: expect.any(Number), name: 'saas-seat-jane.doe', state: 'free', owner_email: 'jane.doe@example.com', assigned_order_id: null },
    ]);
    const again = await f.order('SaaS Seat', 'jane.doe@example.com');
    const done = await f.waitForStatus(again.id, ['provisioned', 'failed']);
    const seats = await assetsOf('SaaS Seat');
    expect(seats).toHaveLength(1);
    expect(done.order.assigned_asset_id).toBe(seats[0]!.id);
    expect(seats[0]).toMatchObject({ state: 'in_use', assigned_order_id: again.id, owner_email: 'jane.doe@example.com' });
    expect(first.id).not.toBe(again.id);

    const bob = await f.order('SaaS Seat', 'bob@example.com');
    await f.waitForStatus(bob.id, ['provisioned']);
    // A namesake at another domain: the name is taken, so the next one is numbered.
    const namesake = await f.order('SaaS Seat', 'jane.doe@contoso.example');
    await f.waitForStatus(namesake.id, ['provisioned']);
    expect((await assetsOf('SaaS Seat')).map((a) => [a.name, a.owner_email, a.assigned_order_id])).toEqual([
      ['saas-seat-jane.doe', 'jane.doe@example.com', again.id],
      ['saas-seat-bob', 'bob@example.com', bob.id],
      ['saas-seat-jane.doe-2', 'jane.doe@contoso.example', namesake.id],
    ]);
  });

  test('two orders of one user at once get two instances, never one shared', async () => {
    await f.seedType('Named laptop', { provision: 'Seat - provision' });
    const placed = await Promise.all([f.order('Named laptop', 'twice@example.com'), f.order('Named laptop', 'twice@example.com')]);
    for (const p of placed) await f.waitForStatus(p.id, ['provisioned']);
    const seats = await assetsOf('Named laptop');
    expect(seats.map((s) => s.name).sort()).toEqual(['named-laptop-twice', 'named-laptop-twice-2']);
    expect(new Set(seats.map((s) => s.assigned_order_id))).toEqual(new Set(placed.map((p) => p.id)));
  });

  test('return_to_pool drops the binding: the instance goes to the next person instead of a new one', async () => {
    await f.seedType('Shared licence', { provision: 'Seat - provision', deprovision: 'Seat - deprovision', policy: 'return_to_pool' });
    const a = await f.order('Shared licence', 'alice@example.com');
    await f.waitForStatus(a.id, ['provisioned']);
    const del = await f.takeBack('Shared licence', 'alice@example.com');
    await f.waitForStatus(del.order.id, ['returned']);
    expect(await assetsOf('Shared licence')).toEqual([
      { id: expect.any(Number), name: 'shared-licence-alice', state: 'free', owner_email: null, assigned_order_id: null },
    ]);
    const c = await f.order('Shared licence', 'carol@example.com');
    await f.waitForStatus(c.id, ['provisioned']);
    expect(await assetsOf('Shared licence')).toEqual([
      { id: expect.any(Number), name: 'shared-licence-alice', state: 'in_use', owner_email: 'carol@example.com', assigned_order_id: c.id },
    ]);
  });

  test('a leaver revocation applies the policy to the personal instance too', async () => {
    await f.seedType('Leaver seat', { provision: 'Seat - provision', deprovision: 'Seat - deprovision', policy: 'access_only' });
    const o = await f.order('Leaver seat', 'leaving@example.com');
    await f.waitForStatus(o.id, ['provisioned']);
    await f.revoke(o.id);
    await f.waitQuiet();
    expect(await assetsOf('Leaver seat')).toEqual([
      { id: expect.any(Number), name: 'leaver-seat-leaving', state: 'free', owner_email: 'leaving@example.com', assigned_order_id: null },
    ]);
  });

  test('a pooled type still draws from its pool and creates nothing', async () => {
    await f.seedType('Pool desk', { pooled: true, provision: 'Desk - provision', assets: ['desk-01'] });
    const o = await f.order('Pool desk', 'pooled@example.com');
    await f.waitForStatus(o.id, ['provisioned']);
    const second = await f.order('Pool desk', 'pooled2@example.com');
    expect((await f.waitForStatus(second.id, ['provisioned', 'failed'])).order).toMatchObject({ status: 'failed', error_message: 'no free asset in the pool', assigned_asset_id: null });
    expect(await assetsOf('Pool desk')).toEqual([{ id: expect.any(Number), name: 'desk-01', state: 'in_use', owner_email: null, assigned_order_id: o.id }]);
  });
});
