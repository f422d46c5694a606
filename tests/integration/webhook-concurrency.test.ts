import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { countRows, hubSignature, nextRitm, seedAssetType, snowPayload } from '../support/orders';

const SECRET = 'concurrency-secret';

/**
 * Races on a listening server: every request of a batch is in flight at once (Promise.all over real sockets),
 * so on PostgreSQL they run in parallel transactions on separate connections. On PGlite (one connection) the
 * same tests still pin down the outcome.
 */
describe(`webhook under concurrent deliveries (${testEngine})`, () => {
  let t: TestApp;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    t = await createTestApp({ webhookSecretToken: SECRET });
    server = t.app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await t.close();
  });

  const deliver = (payload: Record<string, unknown>) => {
    const raw = JSON.stringify(payload);
    return request(base)
      .post('/webhook/servicenow')
      .set('Content-Type', 'application/json')
      .set('X-Hub-Signature-256', hubSignature(raw, SECRET))
      .send(raw);
  };
  const race = async (payloads: Record<string, unknown>[]) => {
    const responses = await Promise.all(payloads.map(deliver));
    const byStatus: Record<number, number> = {};
    for (const r of responses) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    return { responses, byStatus };
  };
  const ordersOfType = (name: string) =>
    countRows(t.db, 'orders o JOIN asset_types a ON a.id = o.asset_type_id WHERE a.name = $1', [name]);
  const createAuditsOfType = (name: string) =>
    countRows(
      t.db,
      `audit_log l JOIN orders o ON l.entity_id = o.id::text JOIN asset_types a ON a.id = o.asset_type_id
        WHERE l.entity = 'order' AND l.action = 'create' AND a.name = $1`,
      [name],
    );
  const jobsOfType = (name: string) =>
    countRows(t.db, `pgboss.job j JOIN orders o ON o.job_id = j.id::text JOIN asset_types a ON a.id = o.asset_type_id WHERE a.name = $1`, [name]);

  test.each([
    ['an unlimited type (no lock; the unique index decides)', 'Unlimited seat', {}],
    ['a pooled type (under the pool lock)', 'Pooled desktop', { assignment_model: 'capacity_pooled', pool_size: 1000 }],
    ['a quota type (under the per-user lock)', 'Quota seat', { max_per_user: 5 }],
  ] as const)('40 simultaneous deliveries of one RITM on %s: exactly one 201 and 39 x 409', async (_what, name, seed) => {
    await seedAssetType(t.db, { name, ...seed });
    const payload = snowPayload(name);
    const { responses, byStatus } = await race(Array.from({ length: 40 }, () => payload));
    expect(byStatus).toEqual({ 201: 1, 409: 39 });
    for (const r of responses.filter((r) => r.status === 409)) {
      expect(r.body).toMatchObject({ status: 409, detail: `Order with servicenow_ref '${payload['servicenow_ref']}' already exists` });
    }
    expect(await ordersOfType(name)).toBe(1);
    expect(await createAuditsOfType(name)).toBe(1);
    expect(await jobsOfType(name)).toBe(1);
  });

  test('a pool of capacity 5 under 15 simultaneous distinct requests: exactly 5 x 201, 10 x 429', async () => {
    const K = 5;
    await seedAssetType(t.db, { name: 'Race pool', assignment_model: 'capacity_pooled', pool_size: K });
    const payloads = Array.from({ length: 3 * K }, (_, i) => snowPayload('Race pool', { user_email: `user${i}@example.com` }));
    const { responses, byStatus } = await race(payloads);
    expect(byStatus).toEqual({ 201: K, 429: 2 * K });
    for (const r of responses.filter((r) => r.status === 429)) expect(r.body).toMatchObject({ code: 'CAPACITY_EXCEEDED' });
    expect(await ordersOfType('Race pool')).toBe(K);
    expect(await createAuditsOfType('Race pool')).toBe(K);
    expect(await jobsOfType('Race pool')).toBe(K);
  });

  test('a per-user quota of 2 under 12 simultaneous requests of one person (any spelling): exactly 2 x 201, others unaffected', async () => {
    await seedAssetType(t.db, { name: 'Race quota', max_per_user: 2 });
    const spellings = ['racer@example.com', 'Racer@Example.com', 'RACER@EXAMPLE.COM'];
    const mine = Array.from({ length: 12 }, (_, i) => snowPayload('Race quota', { user_email: spellings[i % 3] }));
    const others = Array.from({ length: 4 }, (_, i) => snowPayload('Race quota', { user_email: `other${i}@example.com` }));
    const { responses } = await race([...mine, ...others]);
    const statuses = responses.map((r) => r.status);
    const mineStatuses = statuses.slice(0, 12);
    expect(mineStatuses.filter((s) => s === 201)).toHaveLength(2);
    expect(mineStatuses.filter((s) => s === 429)).toHaveLength(10);
    for (const r of responses.slice(0, 12).filter((r) => r.status === 429)) expect(r.body).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    expect(statuses.slice(12)).toEqual([201, 201, 201, 201]);
    expect(await countRows(t.db, 'orders WHERE user_email = $1', ['racer@example.com'])).toBe(2);
  });

  test('a pool with a per-user quota under a mixed race honours both limits', async () => {
    await seedAssetType(t.db, { name: 'Race both', assignment_model: 'capacity_pooled', pool_size: 4, max_per_user: 1 });
    // 3 people x 4 requests each: each person gets at most 1, so exactly 3 succeed although the pool has 4.
    const payloads = Array.from({ length: 12 }, (_, i) => snowPayload('Race both', { user_email: `p${i % 3}@example.com`, servicenow_ref: nextRitm() }));
    const { byStatus, responses } = await race(payloads);
    expect(byStatus).toEqual({ 201: 3, 429: 9 });
    expect(responses.filter((r) => r.status === 429).every((r) => r.body.code === 'QUOTA_EXCEEDED')).toBe(true);
    expect(await ordersOfType('Race both')).toBe(3);
  });
});
