import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { processLeaverEvent, type LeaverApproverHook } from '../../server/domain/identity/leaver';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { createMemoryLogger } from '../support/memory-logger';
import { countRows, hubSignature, mintTestToken, seedAssetType } from '../support/orders';
import { deprovisionJobsPerOrder, hrFixture, seedOrders, statusesOf } from '../support/leavers';

const SECRET = 'leaver-concurrency-secret';

/**
 * Leaver deliveries racing on a listening server: every request of a batch is in flight at once (Promise.all
 * over real sockets), so on PostgreSQL they run in parallel transactions on separate connections, and only the
 * database's locks and unique keys keep an order from being revoked, or its runbook dispatched, twice.
 */
describe(`leaver flow under concurrent deliveries (${testEngine})`, () => {
  let t: TestApp;
  let server: Server;
  let base: string;
  let token: string;
  let typeId: number;

  beforeAll(async () => {
    t = await createTestApp({ webhookSecretToken: SECRET });
    server = t.app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    token = await mintTestToken(t.db, 'hr-race', ['hr:leaver']);
    typeId = await seedAssetType(t.db, { name: 'Race desktop' });
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await t.close();
  });

  const post = async (body: unknown, auth: 'bearer' | 'hmac'): Promise<{ status: number; body: { results: { status: string; revoked_orders: number[] }[] } }> => {
    const raw = JSON.stringify(body);
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (auth === 'bearer') headers['Authorization'] = `Bearer ${token}`;
    else headers['X-Hub-Signature-256'] = hubSignature(raw, SECRET);
    const res = await fetch(`${base}/hr/leaver`, { method: 'POST', headers, body: raw });
    return { status: res.status, body: (await res.json()) as { results: { status: string; revoked_orders: number[] }[] } };
  };

  /** Every order revoked exactly once: one link row, one audited transition, one deprovision job. */
  async function expectRevokedOnce(ids: number[]) {
    expect(Object.values(await statusesOf(t.db, ids))).toEqual(ids.map(() => 'revoked'));
    expect(await deprovisionJobsPerOrder(t.db, ids)).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    const { rows } = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_log WHERE entity = 'order' AND action = 'transition'
          AND diff->'after'->>'status' = 'revoked' AND entity_id = ANY($1::text[]) GROUP BY entity_id`,
      [ids.map(String)],
    );
    expect(rows.map((r) => r.n)).toEqual(ids.map(() => 1));
    expect(await countRows(t.db, `leaver_event_orders WHERE order_id = ANY($1::bigint[]) AND outcome = 'revoked'`, [ids])).toBe(ids.length);
  }

  test('20 simultaneous events for one person from two HR sources (and duplicates of each): each order revoked once, one job each', async () => {
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'racer@example.com', employeeId: 'R-1', statuses: Array(10).fill('provisioned') });
    const workday = hrFixture<Record<string, unknown>>('workday');
    const bodies = Array.from({ length: 20 }, (_, i) =>
      i % 2 === 0
        ? { email: 'Racer@Example.com', event_id: `native-${i % 4}`, source: 'peoplesoft' }
        : { ...workday, Event_ID: `wd-${i % 3}`, Worker: { Employee_ID: 'R-1' } },
    );
    const responses = await Promise.all(bodies.map((b, i) => post(b, i % 3 === 0 ? 'hmac' : 'bearer')));
    expect(responses.map((r) => r.status)).toEqual(bodies.map(() => 202));
    const statuses = responses.map((r) => r.body.results[0]!.status);
    // 2 native keys + 3 Workday keys: five events, the other fifteen deliveries are duplicates.
    expect(statuses.filter((s) => s === 'processed')).toHaveLength(5);
    expect(statuses.filter((s) => s === 'duplicate')).toHaveLength(15);
    const revoked = responses.flatMap((r) => r.body.results[0]!.revoked_orders).sort((a, b) => a - b);
    expect(revoked).toEqual(ids);
    await expectRevokedOnce(ids);
    expect(await countRows(t.db, `leaver_events WHERE person_key = 'racer@example.com'`)).toBe(5);
  });

  test('SCIM and HR firing together (in-process SCIM calls racing HTTP deliveries): nothing twice', async () => {
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'both@example.com', statuses: [...Array(6).fill('provisioned'), 'pending_approval'] });
    const deps = { db: t.db, queue: t.queue, logger: createMemoryLogger().logger };
    const scim = Array.from({ length: 5 }, (_, i) =>
      processLeaverEvent(deps, { source: 'scim', identity: { userName: 'BOTH@example.com' }, triggeredBy: 'scim:token:okta', dedupeKey: `scim:u-both:${i % 2}` }),
    );
    const http = Array.from({ length: 10 }, (_, i) => post({ email: 'both@example.com', event_id: `both-${i % 2}` }, i % 2 ? 'hmac' : 'bearer'));
    const [scimOut, httpOut] = await Promise.all([Promise.all(scim), Promise.all(http)]);
    const revoked = [...scimOut.flatMap((o) => o.revokedOrders), ...httpOut.flatMap((r) => r.body.results[0]!.revoked_orders)].sort((a, b) => a - b);
    expect(revoked).toEqual(ids.slice(0, 6));
    await expectRevokedOnce(ids.slice(0, 6));
    expect(await statusesOf(t.db, [ids[6]!])).toEqual({ [ids[6]!]: 'cancelled' });
    expect(await countRows(t.db, `leaver_event_orders WHERE order_id = $1`, [ids[6]])).toBe(1);
  });

  test('the approver hook runs inside the leaver transaction and its orders are recorded as superseded', async () => {
    const [ordered] = await seedOrders(t.db, { assetTypeId: typeId, email: 'requester@example.com', statuses: ['pending_approval'] });
    await seedOrders(t.db, { assetTypeId: typeId, email: 'approver@example.com', statuses: ['provisioned'] });
    const seen: string[][] = [];
    const hook: LeaverApproverHook = async (tx, ctx) => {
      seen.push([...ctx.emails]);
      // A real hook re-routes the approval; here it proves it runs in the same transaction as the revocations.
      const { rows } = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM orders WHERE user_email = 'approver@example.com' AND status = 'revoked'`);
      return rows[0]!.n === 1 ? [ordered!] : [];
    };
    const out = await processLeaverEvent(
      { db: t.db, queue: t.queue, logger: createMemoryLogger().logger, approverHooks: [hook] },
      { source: 'native', identity: { email: 'approver@example.com' }, triggeredBy: 'hr:native', dedupeKey: 'approver-1' },
    );
    expect(out.status).toBe('processed');
    expect(seen).toEqual([['approver@example.com']]);
    const { rows } = await t.db.query<{ outcome: string; status: string }>(
      `SELECT l.outcome, o.status FROM leaver_event_orders l JOIN orders o ON o.id = l.order_id WHERE l.event_id = $1 AND l.order_id = $2`,
      [out.eventId, ordered],
    );
    // Superseding an approval leaves the requester's order waiting (for another approver).
    expect(rows).toEqual([{ outcome: 'superseded', status: 'pending_approval' }]);
  });
});
