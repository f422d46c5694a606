import { QueueName } from '../../adapter';
import { processLeaverEvent } from '../../server/domain/identity/leaver';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { countRows, seedAssetType } from '../support/orders';
import { seedOrders, statusesOf } from '../support/leavers';

/**
 * The leaver's take-back is set-based (one statement for every order of the person: identity/store.ts
 * takeBackOrdersOf). These tests hold it to what the per-order flow did, for a person with many orders of every
 * status: each order moved once, audited once as `transitionOrder` audits, one `order.deprovision` job per revoked
 * order with the payload its consumer reads, and the job rows pg-boss itself would write.
 */
describe(`leaver fan-out over many orders of one person (${testEngine})`, () => {
  let t: TestApp;
  let typeId: number;

  beforeAll(async () => {
    t = await createTestApp();
    typeId = await seedAssetType(t.db, { name: 'Fan-out desktop' });
    await t.db.query(`UPDATE asset_types SET deprovision_policy = 'reinstall' WHERE id = $1`, [typeId]);
  });
  afterAll(async () => {
    await t.close();
  });

  const PER_STATUS = 60;
  const REVOKE = ['processing', 'provisioning', 'provisioned', 'failed'];
  const CANCEL = ['pending_approval', 'scheduled'];
  const LEFT_ALONE = ['deprovisioning', 'returned', 'cancelled', 'revoked'];

  test('every order revoked or cancelled once, audited once each, one deprovision job per revoked order', async () => {
    const statuses = [...REVOKE, ...CANCEL, ...LEFT_ALONE].flatMap((s) => Array.from({ length: PER_STATUS }, () => s));
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'many.orders@example.com', statuses });
    const byStatus = (s: string) => ids.filter((_, i) => statuses[i] === s);
    // A failed order carries its error: revoking it clears the error, as any transition out of `failed` does.
    await t.db.query(`UPDATE orders SET error_message = 'runbook failed' WHERE id = ANY($1::bigint[])`, [byStatus('failed')]);
    // A provisioned one with an older error keeps it (the transition does not touch it).
    const kept = byStatus('provisioned')[0]!;
    await t.db.query(`UPDATE orders SET error_message = 'old note' WHERE id = $1`, [kept]);
    const other = await seedOrders(t.db, { assetTypeId: typeId, email: 'bystander@example.com', statuses: ['provisioned', 'pending_approval'] });

    const out = await processLeaverEvent(t.leaver, { source: 'native', identity: { email: 'Many.Orders@example.com' }, triggeredBy: 'hr:fanout', dedupeKey: 'fanout-1', requestId: 'req-fanout' });
    const revoked = ids.filter((_, i) => REVOKE.includes(statuses[i]!));
    const cancelled = ids.filter((_, i) => CANCEL.includes(statuses[i]!));
    expect(out).toEqual({ eventId: expect.any(Number), status: 'processed', revokedOrders: revoked, cancelledOrders: cancelled });

    const now = await statusesOf(t.db, [...ids, ...other]);
    for (const [i, id] of ids.entries()) {
      const s = statuses[i]!;
      expect([id, now[id]]).toEqual([id, REVOKE.includes(s) ? 'revoked' : CANCEL.includes(s) ? 'cancelled' : s]);
    }
    expect([now[other[0]!], now[other[1]!]]).toEqual(['provisioned', 'pending_approval']);

    // One transition audit per moved order, exactly as transitionOrder writes it (only the fields that changed).
    const { rows: audits } = await t.db.query<{ id: string; entity_id: string; action: string; diff: unknown; triggered_by: string; request_id: string | null }>(
      `SELECT id, entity_id, action, diff, triggered_by, request_id FROM audit_log
        WHERE entity = 'order' AND entity_id = ANY($1::text[]) ORDER BY id`,
      [ids.map(String)],
    );
    const transitions = audits.filter((a) => a.action === 'transition');
    expect(transitions.map((a) => Number(a.entity_id))).toEqual([...revoked, ...cancelled].sort((a, b) => a - b));
    const diffOf = (id: number) => transitions.find((a) => Number(a.entity_id) === id)!.diff;
    expect(diffOf(byStatus('processing')[0]!)).toEqual({ before: { status: 'processing' }, after: { status: 'revoked' } });
    expect(diffOf(kept)).toEqual({ before: { status: 'provisioned' }, after: { status: 'revoked' } });
    expect(diffOf(byStatus('failed')[0]!)).toEqual({ before: { status: 'failed', error_message: 'runbook failed' }, after: { status: 'revoked', error_message: null } });
    expect(diffOf(byStatus('scheduled')[0]!)).toEqual({
      before: { status: 'scheduled', error_message: null },
      after: { status: 'cancelled', error_message: 'cancelled: the requester left' },
    });
    expect(new Set(audits.map((a) => `${a.triggered_by} ${a.request_id}`))).toEqual(new Set(['hr:fanout req-fanout']));
    const { rows: errors } = await t.db.query<{ id: string; error_message: string | null }>('SELECT id, error_message FROM orders WHERE id = ANY($1::bigint[])', [
      [kept, byStatus('failed')[0]!, byStatus('pending_approval')[0]!],
    ]);
    expect(Object.fromEntries(errors.map((r) => [Number(r.id), r.error_message]))).toEqual({
      [kept]: 'old note',
      [byStatus('failed')[0]!]: null,
      [byStatus('pending_approval')[0]!]: 'cancelled: the requester left',
    });

    // One dispatch audit per revoked order, after its transition, naming the job the event recorded for it.
    const dispatched = audits.filter((a) => a.action === 'deprovision_dispatched');
    expect(dispatched.map((a) => Number(a.entity_id))).toEqual(revoked);
    for (const id of revoked) {
      const mine = audits.filter((a) => Number(a.entity_id) === id).map((a) => a.action);
      expect([id, mine]).toEqual([id, ['transition', 'deprovision_dispatched']]);
    }
    const { rows: links } = await t.db.query<{ order_id: string; outcome: string; deprovision_job_id: string | null }>(
      'SELECT order_id, outcome, deprovision_job_id FROM leaver_event_orders WHERE event_id = $1 ORDER BY order_id',
      [out.eventId],
    );
    expect(links.map((l) => [Number(l.order_id), l.outcome])).toEqual(
      [...revoked.map((id) => [id, 'revoked']), ...cancelled.map((id) => [id, 'cancelled'])].sort((a, b) => Number(a[0]) - Number(b[0])),
    );
    const jobOf = new Map(links.filter((l) => l.outcome === 'revoked').map((l) => [Number(l.order_id), l.deprovision_job_id!]));
    for (const a of dispatched) {
      expect(a.diff).toEqual({ before: null, after: { job_id: jobOf.get(Number(a.entity_id)), reason: 'leaver', policy: 'reinstall', leaver_event_id: out.eventId } });
    }
    expect(links.filter((l) => l.outcome === 'cancelled').every((l) => l.deprovision_job_id === null)).toBe(true);

    // One job per revoked order, under the id the event recorded, carrying what the deprovision consumer reads.
    const { rows: jobs } = await t.db.query<{ id: string; data: Record<string, unknown>; state: string }>(
      `SELECT id::text AS id, data, state FROM pgboss.job WHERE name = $1 AND (data->>'leaverEventId')::bigint = $2`,
      [QueueName.ORDER_DEPROVISION, out.eventId],
    );
    expect(jobs).toHaveLength(revoked.length);
    for (const j of jobs) {
      const orderId = Number(j.data['orderId']);
      expect(j).toEqual({ id: jobOf.get(orderId), state: 'created', data: { orderId, reason: 'leaver', policy: 'reinstall', leaverEventId: out.eventId } });
    }
    // The event's own audit lists the same outcome.
    expect(await countRows(t.db, `audit_log WHERE entity = 'leaver_event' AND entity_id = $1 AND action = 'processed'`, [String(out.eventId)])).toBe(1);

    // The same person again (a new event): nothing is left to take back, nothing audited or queued twice.
    const again = await processLeaverEvent(t.leaver, { source: 'native', identity: { email: 'many.orders@example.com' }, triggeredBy: 'hr:fanout', dedupeKey: 'fanout-2' });
    expect(again).toMatchObject({ status: 'processed', revokedOrders: [], cancelledOrders: [] });
    expect(await countRows(t.db, `audit_log WHERE entity = 'order' AND entity_id = ANY($1::text[])`, [ids.map(String)])).toBe(audits.length);
    expect(await countRows(t.db, `pgboss.job WHERE name = $1 AND (data->>'orderId')::bigint = ANY($2::bigint[])`, [QueueName.ORDER_DEPROVISION, ids])).toBe(revoked.length);
  });

  test('the job rows are the ones pg-boss writes, and its fetch hands them to the deprovision worker as before', async () => {
    const [id] = await seedOrders(t.db, { assetTypeId: typeId, email: 'one.more@example.com', statuses: ['provisioned'] });
    const out = await processLeaverEvent(t.leaver, { source: 'native', identity: { email: 'one.more@example.com' }, triggeredBy: 'hr:fanout', dedupeKey: 'fanout-3' });
    expect(out.revokedOrders).toEqual([id]);
    // A job sent by pg-boss itself to the same queue, for comparison (everything but id, data and clock).
    const viaBoss = await t.queue.send(t.db, QueueName.ORDER_DEPROVISION, { orderId: -1 });
    const row = async (where: string, p: unknown[]) =>
      (
        await t.db.query(
          `SELECT name, priority, state, retry_limit, retry_count, retry_delay, retry_backoff, singleton_key, singleton_on,
                  expire_in::text AS expire_in, (keep_until - start_after)::text AS kept_for, dead_letter, policy, output
             FROM pgboss.job WHERE ${where}`,
          p,
        )
      ).rows[0];
    const ours = await row(`name = $1 AND (data->>'orderId')::bigint = $2`, [QueueName.ORDER_DEPROVISION, id]);
    expect(ours).toBeDefined();
    expect(ours).toEqual(await row('id = $1', [viaBoss]));
    await t.db.query('DELETE FROM pgboss.job WHERE id = $1', [viaBoss]);
    // pg-boss takes the job up (its fetch is what the `order.deprovision` worker polls with).
    const fetched = await t.db.transaction((tx) => t.queue.fetch<Record<string, unknown>>(tx, QueueName.ORDER_DEPROVISION, { batchSize: 1000 }));
    expect(fetched.map((j) => j.data)).toContainEqual({ orderId: id, reason: 'leaver', policy: 'reinstall', leaverEventId: out.eventId });
  });
});
