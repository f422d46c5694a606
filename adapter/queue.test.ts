import { createTestDatabase, type TestDatabase } from '../tests/support/db';
import { createLogger } from './log';
import { createJobQueue, type JobQueue } from './queue';

/*
 * The job queue's own surface, over pg-boss on our database: what callers rely on beyond send/work (which every
 * domain test exercises) — transactional fetch and complete, a job's output read back by id, bulk sends, schedules.
 */
describe('JobQueue (both engines)', () => {
  let t: TestDatabase;
  let queue: JobQueue;
  const Q = 'test.queue-surface';

  beforeAll(async () => {
    t = await createTestDatabase();
    queue = createJobQueue(t.db, { logger: createLogger({ silent: true }), schedule: false });
    await queue.start();
    await queue.createQueue(Q);
  });
  afterAll(async () => {
    await queue.stop({ graceful: false, timeoutMs: 1000 });
    await t.drop();
  });

  test('a job sent in a transaction that rolls back does not exist; one that commits does, with its data', async () => {
    await expect(
      t.db.transaction(async (tx) => {
        await queue.send(tx, Q, { n: 1 }, { id: '00000000-0000-4000-8000-000000000001' });
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await queue.getJobById(Q, '00000000-0000-4000-8000-000000000001')).toBeNull();

    const id = await t.db.transaction((tx) => queue.send(tx, Q, { n: 2 }));
    expect(await queue.getJobById(Q, id)).toMatchObject({ id, name: Q, data: { n: 2 }, state: 'created' });
    await queue.deleteJob(Q, id);
    expect(await queue.getJobById(Q, id)).toBeNull();
  });

  test('a fetch that rolls back leaves the job queued; a completed job carries its output', async () => {
    const id = await queue.send(t.db, Q, { n: 3 });
    await expect(
      t.db.transaction(async (tx) => {
        const [job] = await queue.fetch(tx, Q);
        expect(job).toMatchObject({ id, data: { n: 3 } });
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect((await queue.getJobById(Q, id))?.state).toBe('created');

    await t.db.transaction(async (tx) => {
      const [job] = await queue.fetch<{ n: number }>(tx, Q);
      expect(job?.id).toBe(id);
      await queue.complete(tx, Q, id, { doubled: job!.data.n * 2 });
    });
    expect(await queue.getJobById(Q, id)).toMatchObject({ state: 'completed', output: { doubled: 6 } });
    await t.db.transaction(async (tx) => expect(await queue.fetch(tx, Q)).toEqual([]));
  });

  test('sendMany enqueues every job; a worker completes each with what its handler returns', async () => {
    const Many = 'test.queue-many';
    await queue.createQueue(Many);
    await queue.sendMany(Many, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    const seen: number[] = [];
    const worker = await queue.work<{ n: number }>(
      Many,
      async (jobs) => {
        for (const j of jobs) seen.push(j.data.n);
        return { ok: true };
      },
      { pollingIntervalSeconds: 0.5 },
    );
    const deadline = Date.now() + 15_000;
    while (seen.length < 3 && Date.now() < deadline) {
      queue.notifyWorker(worker);
      await new Promise((r) => setTimeout(r, 100));
    }
    await queue.offWork(worker);
    expect(seen.sort()).toEqual([1, 2, 3]);
  });

  test('a queue that does not exist refuses a job', async () => {
    await expect(queue.send(t.db, 'test.no-such-queue', {})).rejects.toThrow('queue test.no-such-queue refused the job');
  });

  test('schedules are kept one per queue, with their zone, until unscheduled', async () => {
    await queue.schedule(Q, '15 4 * * *', { why: 'test' }, { tz: 'Europe/Zurich' });
    await queue.schedule(Q, '30 4 * * *', {}, { tz: 'Europe/Zurich' });
    expect((await queue.getSchedules()).filter((s) => s.name === Q)).toEqual([{ name: Q, cron: '30 4 * * *', tz: 'Europe/Zurich' }]);
    await queue.unschedule(Q);
    expect((await queue.getSchedules()).filter((s) => s.name === Q)).toEqual([]);
  });
});
