// The run store's merged finish statement (run update + the kept task's next attempt, one round trip), on PGlite and,
// with DATABASE_URL, on PostgreSQL: it inserts what `insertNextAttempt` would, and nothing when the run is no longer
// running or an attempt of the task is still running or waiting.
import { randomUUID } from 'node:crypto';
import { createJobQueue, createLogger, type Database } from '../../adapter';
import { createTestDatabase, type TestDatabase } from '../../tests/support/db';
import { createWorkflowEngine } from './engine';
import { emptyState, type RunState } from './graph';
import * as runs from './run-store';
import * as store from './workflow-store';

describe('updateRunAndInsertNextAttempt', () => {
  let t: TestDatabase;
  const WF = 'merged-finish';

  beforeAll(async () => {
    t = await createTestDatabase();
    await t.db.transaction((tx) => store.insertWorkflow(tx, WF, 1, { name: WF, version: 1, steps: [{ id: 'a', kind: 'transform', expression: '1' }] } as never, 'test'));
  });
  afterAll(() => t.drop());

  async function newRun(status: 'running' | 'waiting' = 'running'): Promise<string> {
    const id = randomUUID();
    await t.db.transaction(async (tx) => {
      await runs.insertRun(tx, { id, workflow: WF, version: 1, inputs: {}, variables: {}, state: emptyState(), lockKey: null, createdBy: null });
      await runs.updateRun(tx, id, { status, started: new Date() });
    });
    return id;
  }
  const next = (taskId: string) => ({ taskId, kind: 'transform', input: { x: 1 }, startedAt: new Date(), leaseMs: 30_000 });
  const stateWith = (active: Record<string, string>): RunState => ({ ...emptyState(), active });

  it('updates the run and inserts the next attempt, running with a lease, keyed as insertNextAttempt keys it', async () => {
    const id = await newRun('waiting');
    const r = await t.db.transaction(async (tx) => {
      await runs.selectRun(tx, id, true);
      return runs.updateRunAndInsertNextAttempt(tx, id, { status: 'running', state: stateWith({ b: 'tok' }) }, next('b'));
    });
    expect(r.run).toMatchObject({ id, status: 'running', state: { active: { b: 'tok' } } });
    expect(r.attempt).toEqual({ id: expect.any(Number), attempt: 1 });
    const steps = await runs.selectSteps(t.db, id);
    expect(steps).toEqual([expect.objectContaining({ id: r.attempt?.id, stepId: 'b', attempt: 1, status: 'running', input: { x: 1 }, idempotencyKey: `${id}:b:1` })]);
    const { rows } = await t.db.query<{ leased: boolean }>(`SELECT lease_until > now() AS leased FROM workflow_steps WHERE run_id = $1`, [id]);
    expect(rows[0]?.leased).toBe(true);

    // The attempt finished: the next one of the same task is attempt 2.
    await runs.finishStep(t.db, Number(r.attempt?.id), { status: 'failed', error: { code: 'X', message: 'x' }, finishedAt: new Date(), durationMs: 1 });
    const again = await t.db.transaction((tx) => runs.updateRunAndInsertNextAttempt(tx, id, {}, next('b')));
    expect(again.attempt?.attempt).toBe(2);
    expect((await runs.selectSteps(t.db, id)).map((s) => s.idempotencyKey)).toEqual([`${id}:b:1`, `${id}:b:2`]);
  });

  it('inserts nothing while an attempt of the task is running or waiting, but still updates the run', async () => {
    const id = await newRun();
    const first = await t.db.transaction((tx) => runs.updateRunAndInsertNextAttempt(tx, id, {}, next('c')));
    expect(first.attempt?.attempt).toBe(1);
    const second = await t.db.transaction((tx) => runs.updateRunAndInsertNextAttempt(tx, id, { state: stateWith({ c: 'tok2' }) }, next('c')));
    expect(second.attempt).toBeNull();
    expect(second.run.state.active).toEqual({ c: 'tok2' });
    await t.db.query(`UPDATE workflow_steps SET status = 'waiting' WHERE run_id = $1`, [id]);
    expect((await t.db.transaction((tx) => runs.updateRunAndInsertNextAttempt(tx, id, {}, next('c')))).attempt).toBeNull();
    expect(await runs.selectSteps(t.db, id)).toHaveLength(1);
  });

  it.each(['succeeded', 'failed', 'cancelled'] as const)('inserts nothing when the update leaves the run %s', async (status) => {
    const id = await newRun();
    const r = await t.db.transaction((tx) =>
      runs.updateRunAndInsertNextAttempt(tx, id, { status, finished: new Date(), ...(status === 'failed' ? { error: { code: 'E', message: 'e', stepId: 'a' } } : {}) }, next('d')),
    );
    expect(r.run.status).toBe(status);
    expect(r.attempt).toBeNull();
    expect(await runs.selectSteps(t.db, id)).toEqual([]);
  });

  it('inserts nothing for a run that is not running (already cancelled, no status in the patch)', async () => {
    const id = await newRun();
    await runs.updateRun(t.db, id, { status: 'cancelled', finished: new Date() });
    const r = await t.db.transaction((tx) => runs.updateRunAndInsertNextAttempt(tx, id, {}, next('e')));
    expect(r).toMatchObject({ run: { status: 'cancelled' }, attempt: null });
    expect(await runs.selectSteps(t.db, id)).toEqual([]);
  });
});

describe('a kept step costs one transaction of two statements', () => {
  let t: TestDatabase;
  afterAll(() => t?.drop());

  it('finishes a step and claims the next in the same two statements; only a job step fetches and completes', async () => {
    t = await createTestDatabase();
    const logger = createLogger({ silent: true });
    const queue = createJobQueue(t.db, { logger, schedule: false });
    await queue.start();
    // Every transaction the engine opens, as the list of statements it sent (BEGIN and COMMIT not included).
    const txs: string[][] = [];
    const db: Database = {
      get kind() {
        return t.db.kind;
      },
      query: (sql, params) => t.db.query(sql, params),
      exec: (sql) => t.db.exec(sql),
      close: () => t.db.close(),
      transaction: (fn) =>
        t.db.transaction((tx) => {
          const sent: string[] = [];
          txs.push(sent);
          return fn({ query: (sql, params) => (sent.push(sql), tx.query(sql, params)), exec: (sql) => (sent.push(sql), tx.exec(sql)) });
        }),
    } as Database;
    const engine = createWorkflowEngine({ db, queue, logger, executors: { integration: async () => ({ ok: true, output: { n: 1 } }) }, config: { pollingIntervalSeconds: 0.5 } });
    try {
      await engine.saveWorkflow({ name: 'rt', steps: ['a', 'b', 'c', 'd'].map((id) => ({ id, kind: 'integration', operation: 'x/op' })) }, 'test');
      const run = await t.db.transaction((tx) => engine.startRun(tx, { workflow: 'rt', inputs: {} }));
      txs.length = 0;
      await engine.startWorkers({ teamSize: 1 });
      for (let i = 0; i < 500 && (await engine.getRun(run.id)).status !== 'succeeded'; i++) await new Promise((r) => setTimeout(r, 20));
      await engine.stop();
      expect((await engine.getRun(run.id)).steps.map((s) => [s.stepId, s.status])).toEqual([['a', 'succeeded'], ['b', 'succeeded'], ['c', 'succeeded'], ['d', 'succeeded']]);
      const finishes = txs.filter((sent) => sent.some((s) => s.includes('FROM workflow_runs WHERE id = $1 FOR UPDATE),')));
      const kind = (s: string) =>
        /WITH next as/.test(s) ? 'fetch' : /WITH results AS/.test(s) ? 'complete' : /WITH r AS \(SELECT/.test(s) ? 'lock+finish' : /WITH r AS \(\s*UPDATE/.test(s) ? 'update+next' : /^\s*UPDATE workflow_runs/.test(s) ? 'update' : 'other';
      // a (from a job): its finish keeps b and completes the job; b and c keep the next; d ends the run.
      expect(finishes.map((sent) => sent.map(kind))).toEqual([
        ['lock+finish', 'update+next', 'complete'],
        ['lock+finish', 'update+next'],
        ['lock+finish', 'update+next'],
        ['lock+finish', 'update', 'other'],
      ]);
    } finally {
      await engine.stop();
      await queue.stop({ graceful: false, timeoutMs: 1000 });
    }
  });
});
