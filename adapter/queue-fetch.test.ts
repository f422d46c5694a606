import { createTestDatabase, type TestDatabase } from '../tests/support/db';
import { createLogger } from './log';
import { createJobQueue, FETCH_SQL, type JobQueue } from './queue';

/*
 * Our fetch is pg-boss's with one change (the order: due first, an index order), so a worker's fetch reads one
 * index entry instead of sorting every queued job. These tests pin both halves: the text is still pg-boss's, and
 * the plan has no sort on a fresh table (no ANALYZE, as in a new installation or a bench database).
 */
describe('JobQueue fetch (both engines)', () => {
  let t: TestDatabase;
  let queue: JobQueue;
  const Q = 'test.queue-fetch';

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

  test("is pg-boss's fetch but for its ORDER BY (an upgrade of pg-boss that changes its fetch fails here)", () => {
    const plans = require('pg-boss/src/plans.js') as { fetchNextJob(schema: string): (o: object) => string };
    const theirs = plans.fetchNextJob('pgboss')({});
    expect(theirs).toContain('ORDER BY priority desc, created_on, id');
    expect(FETCH_SQL).toBe(theirs.replace('ORDER BY priority desc, created_on, id', 'ORDER BY start_after'));
  });

  test('takes due jobs in the order they became due, skips future ones, and leaves a rolled-back fetch queued', async () => {
    const due = await t.db.transaction(async (tx) => [
      await queue.send(tx, Q, { n: 1 }, { startAfter: new Date(Date.now() - 60_000) }),
      await queue.send(tx, Q, { n: 2 }, { startAfter: new Date(Date.now() - 30_000) }),
    ]);
    await t.db.transaction((tx) => queue.send(tx, Q, { n: 3 }, { startAfter: new Date(Date.now() + 3_600_000) }));
    await expect(
      t.db.transaction(async (tx) => {
        expect((await queue.fetch(tx, Q)).map((j) => j.id)).toEqual([due[0]]);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    const fetched = await t.db.transaction(async (tx) => {
      const jobs = await queue.fetch<{ n: number }>(tx, Q, { batchSize: 5 });
      for (const j of jobs) await queue.complete(tx, Q, j.id);
      return jobs;
    });
    expect(fetched.map((j) => j.data.n).sort()).toEqual([1, 2]);
    expect(await t.db.transaction((tx) => queue.fetch(tx, Q))).toEqual([]);
  });

  test('on a fresh table with many queued jobs the plan reads the fetch index in order: no sort', async () => {
    await queue.sendMany(Q, Array.from({ length: 500 }, (_, n) => ({ n })));
    const plan = await t.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${FETCH_SQL}`, [Q, 1]);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
    // The CTE `next` (its line and the deeper-indented ones under it) scans the queue; only the window over its
    // one row, elsewhere in the plan, may sort.
    const lines = plan.split('\n');
    const at = lines.findIndex((l) => l.trim() === 'CTE next');
    const depth = (l: string) => l.length - l.trimStart().length;
    const end = lines.findIndex((l, i) => i > at && depth(l) <= depth(lines[at] as string));
    const next = lines.slice(at, end < 0 ? undefined : end).join('\n');
    expect(at).toBeGreaterThanOrEqual(0);
    expect(next).toMatch(/Index Scan using \w+_i5/);
    expect(next).not.toMatch(/Sort/);
  });
});
