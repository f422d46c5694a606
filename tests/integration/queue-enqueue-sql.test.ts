import { randomUUID } from 'node:crypto';
import { createJobQueue, createLogger, QueueName, type JobQueue } from '../../adapter';
import { createTestDatabase, type TestDatabase } from '../support/db';

/*
 * provisio_enqueue_job (migration 014) writes pg-boss jobs from SQL, so that an order and its job are one statement.
 * It mirrors pg-boss's own insert; these tests put the two side by side, for our queues as created and for a queue
 * with every policy option set, so that a pg-boss upgrade that changes what a job row holds fails here.
 */
describe('provisio_enqueue_job writes the row pg-boss send() writes', () => {
  let t: TestDatabase;
  let queue: JobQueue;
  const CUSTOM = 'test.enqueue-policy';

  beforeAll(async () => {
    t = await createTestDatabase();
    queue = createJobQueue(t.db, { logger: createLogger({ silent: true }), schedule: false });
    await queue.start();
    await queue.createQueue(CUSTOM, {
      policy: 'singleton',
      retryLimit: 5,
      retryDelaySeconds: 7,
      retryBackoff: true,
      expireInSeconds: 90,
      retentionMinutes: 30,
      deadLetter: QueueName.ORDER_PROVISION,
    });
  });
  afterAll(async () => {
    await queue.stop({ graceful: false, timeoutMs: 1000 });
    await t.drop();
  });

  // Everything but the id and the clock; keep_until is compared as its distance from start_after.
  const row = async (id: string) =>
    (
      await t.db.query(
        `SELECT name, data, priority, state, retry_limit, retry_count, retry_delay, retry_backoff, singleton_key,
                singleton_on, expire_in::text AS expire_in, (keep_until - start_after)::text AS kept_for, dead_letter,
                policy, output
           FROM pgboss.job WHERE id = $1`,
        [id],
      )
    ).rows[0];

  test.each([...Object.values(QueueName), CUSTOM])('queue %s', async (name) => {
    const data = { orderId: 42, nested: { list: [1, 'two'] } };
    const viaBoss = await queue.send(t.db, name, data, { id: randomUUID() });
    const ours = randomUUID();
    const { rows } = await t.db.query<{ id: string }>(`SELECT provisio_enqueue_job($1, $2::uuid, $3::jsonb, NULL) AS id`, [name, ours, JSON.stringify(data)]);
    expect(rows[0]!.id).toBe(ours);
    const expected = await row(viaBoss);
    expect(expected).toBeDefined();
    expect(await row(ours)).toEqual(expected);
  });

  test('a start time is honoured and keeps the retention after it', async () => {
    const at = new Date(Date.now() + 3_600_000);
    const viaBoss = await queue.send(t.db, QueueName.LEAVER_EFFECTIVE, {}, { startAfter: at });
    const ours = randomUUID();
    await t.db.query(`SELECT provisio_enqueue_job($1, $2::uuid, '{}'::jsonb, $3::timestamptz)`, [QueueName.LEAVER_EFFECTIVE, ours, at.toISOString()]);
    const starts = await t.db.query<{ id: string; start_after: Date }>(`SELECT id, start_after FROM pgboss.job WHERE id = ANY($1::uuid[])`, [[viaBoss, ours]]);
    expect(starts.rows.map((r) => r.start_after.getTime())).toEqual([at.getTime(), at.getTime()]);
    expect(await row(ours)).toEqual(await row(viaBoss));
  });

  test('a queue that does not exist is refused with PV005 (pg-boss answers no id; our queue adapter throws then)', async () => {
    await expect(queue.send(t.db, 'no.such.queue', {})).rejects.toThrow('queue no.such.queue refused the job');
    await expect(t.db.query(`SELECT provisio_enqueue_job('no.such.queue', NULL, '{}'::jsonb, NULL)`)).rejects.toMatchObject({ code: 'PV005' });
  });
});
