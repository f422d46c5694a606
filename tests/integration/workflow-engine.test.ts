// The workflow engine end to end on a real database (PGlite, or PostgreSQL with DATABASE_URL): real pg-boss
// workers in this process, a fake `integration` executor whose behaviour the operation name picks.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowValidationError } from '../../workflows/document';
import { ConcurrencyLimitError, RunInputError, RunStateError, type StepRecord } from '../../workflows/engine';
import { createSchedule, triggerSchedule } from '../../workflows/schedules';
import { testEngine } from '../support/db';
import { createEngineHarness, linear, sleep, type EngineHarness } from '../support/workflow-engine';

const steps = (run: { steps: StepRecord[] }, id: string) => run.steps.filter((s) => s.stepId === id);
const ms = (iso: string | null) => new Date(iso as string).getTime();

describe(`workflow engine (${testEngine})`, () => {
  let h: EngineHarness;

  beforeAll(async () => {
    h = await createEngineHarness();
    const counters = new Map<string, number>();
    const count = (key: string) => {
      const n = (counters.get(key) ?? 0) + 1;
      counters.set(key, n);
      return n;
    };
    h.behaviours['flaky'] = async (_input, ctx) =>
      ctx.attempt < 3 ? { ok: false, error: { code: 'HTTP_5XX', message: `flaky attempt ${ctx.attempt}` } } : { ok: true, output: { attempt: ctx.attempt } };
    h.behaviours['fail5xxFinal'] = async () => ({ ok: false, error: { code: 'HTTP_5XX', message: 'never again', retryable: false } });
    h.behaviours['counter'] = async (_input, ctx) => ({ ok: true, output: { count: count(`${ctx.runId}:${ctx.stepId}`) } });
    h.behaviours['toggle'] = async () =>
      (h as unknown as { failToggle: boolean }).failToggle ? { ok: false, error: { code: 'HTTP_4XX', message: 'toggle is set' } } : { ok: true, output: { toggled: true } };
  });
  afterAll(async () => {
    await h.close();
  });

  it('saves versions and rejects an invalid document with the compiler issues', async () => {
    const a = await h.engine.saveWorkflow(linear('versions', [['a', 'ok']]), 'admin:test');
    const b = await h.engine.saveWorkflow(linear('versions', [['a', 'ok'], ['b', 'ok']]), 'admin:test');
    expect([a.version, b.version]).toEqual([1, 2]);
    expect((await h.engine.getWorkflow('versions')).version).toBe(2);
    expect((await h.engine.getWorkflow('versions', 1)).document).toMatchObject({ name: 'versions', version: 1 });
    const bad = { name: 'bad', steps: [{ id: 'a', kind: 'integration', operation: 'fake/ok', incoming: { body: '{{nosuchroot.x}}' } }] };
    const err = await h.engine.saveWorkflow(bad, 'admin:test').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowValidationError);
    expect((err as WorkflowValidationError).issues[0]).toMatchObject({ code: 'UNKNOWN_TEMPLATE_ROOT', taskId: 'a' });
    // A run pins the version it started with.
    const runId = await h.start('versions');
    await h.engine.saveWorkflow(linear('versions', [['x', 'ok']]), 'admin:test');
    const run = await h.waitFor(runId, ['succeeded']);
    expect(run.version).toBe(2);
    expect(run.steps.map((s) => s.stepId)).toEqual(['a', 'b']);
  });

  it('runs a linear workflow: templates between steps, secrets redacted in step input, hooks in order', async () => {
    await h.engine.saveWorkflow(
      linear(
        'linear',
        [
          ['a', 'ok', { incoming: { body: { user: '{{inputs.user}}', password: 'hunter2' } }, outgoing: { u: { from: 'body.user' } } }],
          ['b', 'ok', { incoming: { body: { fromA: '$var.a.u', asset: '{{asset.name}}' } } }],
          ['c', 'ok'],
        ],
        { type: 'object', properties: { user: { type: 'string' } } },
      ),
      'test',
    );
    const id = await h.start('linear', { inputs: { user: 'jdoe' }, variables: { asset: { name: 'VDI-0001' } } });
    const run = await h.waitFor(id, ['succeeded', 'failed']);
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s) => [s.stepId, s.attempt, s.status])).toEqual([
      ['a', 1, 'succeeded'],
      ['b', 1, 'succeeded'],
      ['c', 1, 'succeeded'],
    ]);
    expect(steps(run, 'a')[0]?.input).toEqual({ body: { user: 'jdoe', password: '[redacted]' } });
    expect(steps(run, 'b')[0]?.output).toEqual({ ok: true, status: 200, body: { fromA: 'jdoe', asset: 'VDI-0001' } });
    expect(steps(run, 'a')[0]?.idempotencyKey).toBe(`${id}:a:1`);
    for (const s of run.steps) expect(s.durationMs).toBeGreaterThanOrEqual(0);
    // The executor really got the secret; only the record is redacted.
    expect(h.calls.find((c) => c.runId === id && c.stepId === 'a')?.input).toEqual({ body: { user: 'jdoe', password: 'hunter2' } });
    expect(h.hookLog.filter((l) => l.includes(id))).toEqual([`started:${id}`, `step:${id}:a:succeeded`, `step:${id}:b:succeeded`, `step:${id}:c:succeeded`, `succeeded:${id}`]);
  });

  it('a critical failure halts the run with that step error', async () => {
    await h.engine.saveWorkflow(linear('critical', [['a', 'ok'], ['b', 'fail4xx'], ['c', 'ok']]), 'test');
    const id = await h.start('critical');
    const run = await h.waitFor(id, ['succeeded', 'failed']);
    expect(run.status).toBe('failed');
    expect(run.error).toEqual({ code: 'HTTP_4XX', message: 'bad request from fake', stepId: 'b' });
    expect(steps(run, 'b')[0]).toMatchObject({ status: 'failed', error: { code: 'HTTP_4XX', message: 'bad request from fake' } });
    expect(steps(run, 'c')).toHaveLength(0);
    expect(h.hookLog).toContain(`failed:${id}:HTTP_4XX`);
  });

  it('a non-critical failure continues along success', async () => {
    await h.engine.saveWorkflow(linear('noncritical', [['a', 'ok'], ['b', 'fail4xx', { critical: false }], ['c', 'ok']]), 'test');
    const run = await h.waitFor(await h.start('noncritical'), ['succeeded', 'failed']);
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s) => [s.stepId, s.status])).toEqual([
      ['a', 'succeeded'],
      ['b', 'failed'],
      ['c', 'succeeded'],
    ]);
  });

  it('follows an error transition, and the task on the other branch never runs', async () => {
    await h.engine.saveWorkflow(
      {
        name: 'errortransition',
        tasks: {
          a: { kind: 'integration', operation: 'fake/fail4xx' },
          onok: { kind: 'integration', operation: 'fake/ok' },
          onerror: { kind: 'integration', operation: 'fake/ok' },
        },
        transitions: {
          workflow_start: { a: { state: 'success' } },
          a: { onok: { state: 'success' }, onerror: { state: 'error' } },
          onok: { workflow_end: { state: 'success' } },
          onerror: { workflow_end: { state: 'success' } },
        },
      },
      'test',
    );
    const run = await h.waitFor(await h.start('errortransition'), ['succeeded', 'failed']);
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s) => [s.stepId, s.status])).toEqual([
      ['a', 'failed'],
      ['onerror', 'succeeded'],
    ]);
  });

  it('joins: after parallel branches the join runs once, after both; after an if/else it runs after the branch taken', async () => {
    await h.engine.saveWorkflow(
      {
        name: 'joins',
        inputSchema: { type: 'object', properties: { n: { type: 'integer' } } },
        tasks: {
          left: { kind: 'integration', operation: 'fake/slow', incoming: { body: { ms: 150 } } },
          right: { kind: 'integration', operation: 'fake/ok' },
          double: { kind: 'transform', expression: '{"n": n * 2}', incoming: { n: '{{inputs.n}}' }, outgoing: { n: { from: 'result.n' } } },
          big: { kind: 'evaluate', incoming: { conditions: [{ left: '$var.double.n', operator: '>=', right: 10 }] } },
          yes: { kind: 'transform', expression: '"big"' },
          no: { kind: 'transform', expression: '"small"' },
          final: { kind: 'integration', operation: 'fake/ok' },
        },
        transitions: {
          workflow_start: { left: { state: 'success' }, right: { state: 'success' } },
          left: { double: { state: 'success' } },
          right: { double: { state: 'success' } },
          double: { big: { state: 'success' } },
          big: { yes: { state: 'success' }, no: { state: 'error' } },
          yes: { final: { state: 'success' } },
          no: { final: { state: 'success' } },
          final: { workflow_end: { state: 'success' } },
        },
      },
      'test',
    );
    const big = await h.waitFor(await h.start('joins', { inputs: { n: 7 } }), ['succeeded', 'failed']);
    expect(big.status).toBe('succeeded');
    expect(big.steps.map((s) => s.stepId).sort()).toEqual(['big', 'double', 'final', 'left', 'right', 'yes']);
    expect(ms(steps(big, 'double')[0]?.startedAt ?? null)).toBeGreaterThanOrEqual(ms(steps(big, 'left')[0]?.finishedAt ?? null));
    expect(big.outputs['yes']?.output).toEqual({ result: 'big' });
    const small = await h.waitFor(await h.start('joins', { inputs: { n: 1 } }), ['succeeded', 'failed']);
    expect(small.status).toBe('succeeded');
    expect(small.steps.map((s) => s.stepId).sort()).toEqual(['big', 'double', 'final', 'left', 'no', 'right']);
    expect(steps(small, 'big')[0]).toMatchObject({ status: 'failed', error: { code: 'CONDITION_FALSE' } });
  });

  it('retries retryable errors with backoff, and stops at maxAttempts', async () => {
    await h.engine.saveWorkflow(
      linear('retries', [['a', 'flaky', { retry: { maxAttempts: 3, initialInterval: '200ms', backoffCoefficient: 2 } }]]),
      'test',
    );
    const run = await h.waitFor(await h.start('retries'), ['succeeded', 'failed']);
    expect(run.status).toBe('succeeded');
    const a = steps(run, 'a');
    expect(a.map((s) => [s.attempt, s.status, s.error?.code ?? null])).toEqual([
      [1, 'failed', 'HTTP_5XX'],
      [2, 'failed', 'HTTP_5XX'],
      [3, 'succeeded', null],
    ]);
    // Waits of 200 ms, then 400 ms (a little slack for timer and clock granularity).
    expect(ms(a[1]!.startedAt) - ms(a[0]!.finishedAt)).toBeGreaterThanOrEqual(180);
    expect(ms(a[2]!.startedAt) - ms(a[1]!.finishedAt)).toBeGreaterThanOrEqual(380);
    expect(new Set(a.map((s) => s.idempotencyKey)).size).toBe(3);

    await h.engine.saveWorkflow(linear('retries-exhausted', [['a', 'fail5xx', { retry: { maxAttempts: 2, initialInterval: '50ms' } }]]), 'test');
    const exhausted = await h.waitFor(await h.start('retries-exhausted'), ['succeeded', 'failed']);
    expect(exhausted.status).toBe('failed');
    expect(steps(exhausted, 'a')).toHaveLength(2);
  });

  it('does not retry non-retryable errors (by the policy, or flagged by the executor)', async () => {
    await h.engine.saveWorkflow(linear('noretry', [['a', 'fail4xx', { retry: { maxAttempts: 3, initialInterval: '50ms' } }]]), 'test');
    const run = await h.waitFor(await h.start('noretry'), ['succeeded', 'failed']);
    expect(run.status).toBe('failed');
    expect(steps(run, 'a')).toHaveLength(1);
    await h.engine.saveWorkflow(linear('noretry-flag', [['a', 'fail5xxFinal', { retry: { maxAttempts: 3, initialInterval: '50ms' } }]]), 'test');
    const flagged = await h.waitFor(await h.start('noretry-flag'), ['succeeded', 'failed']);
    expect(flagged.status).toBe('failed');
    expect(steps(flagged, 'a')).toHaveLength(1);
  });

  it('times a step out through its signal', async () => {
    await h.engine.saveWorkflow(linear('timeout', [['a', 'block', { timeout: '300ms' }], ['b', 'ok']]), 'test');
    const run = await h.waitFor(await h.start('timeout'), ['succeeded', 'failed']);
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ code: 'TIMEOUT', stepId: 'a' });
    expect(steps(run, 'a')[0]?.durationMs).toBeGreaterThanOrEqual(290);
    expect(steps(run, 'b')).toHaveLength(0);
  });

  it('cancels a run: the step in flight is aborted and no further step runs', async () => {
    await h.engine.saveWorkflow(linear('cancel', [['a', 'block'], ['b', 'ok']]), 'test');
    const id = await h.start('cancel');
    await h.waitFor(id, ['running']);
    for (let i = 0; i < 100 && !h.calls.some((c) => c.runId === id); i++) await sleep(50);
    const cancelled = await h.engine.cancelRun(id);
    expect(cancelled.status).toBe('cancelled');
    for (let i = 0; i < 100 && !(await h.engine.getRun(id)).steps.every((s) => s.status !== 'running'); i++) await sleep(50);
    await sleep(300);
    const run = await h.engine.getRun(id);
    expect(run.status).toBe('cancelled');
    expect(run.steps.map((s) => [s.stepId, s.status])).toEqual([['a', 'cancelled']]);
    expect(h.hookLog).toContain(`cancelled:${id}`);
    await expect(h.engine.cancelRun(id)).rejects.toBeInstanceOf(RunStateError);
  });

  it("a caller's work in the engine's transaction (its audit row) commits or rolls back with the change", async () => {
    const auditFails = async () => {
      throw new Error('audit write failed');
    };
    await h.engine.saveWorkflow(linear('atomic', [['a', 'block']]), 'test');
    await expect(h.engine.saveWorkflow(linear('atomic', [['a', 'ok']]), 'test', {}, auditFails)).rejects.toThrow('audit write failed');
    expect(await h.engine.listVersions('atomic')).toEqual([1]);
    const seen: number[] = [];
    await h.engine.saveWorkflow(linear('atomic', [['a', 'block']]), 'test', {}, async (_tx, saved) => {
      seen.push(saved.version);
    });
    expect(seen).toEqual([2]);

    await expect(h.engine.setConcurrencyLimit('atomic', { maxActive: 1, onLimit: 'queue' }, auditFails)).rejects.toThrow('audit write failed');
    expect(await h.engine.getConcurrencyLimit('atomic')).toBeNull();

    const id = await h.start('atomic');
    await h.waitFor(id, ['running']);
    await expect(h.engine.cancelRun(id, auditFails)).rejects.toThrow('audit write failed');
    expect((await h.engine.getRun(id)).status).toBe('running');
    const cancelled = await h.engine.cancelRun(id, async (tx, run) => {
      const { rows } = await tx.query<{ status: string }>('SELECT status FROM workflow_runs WHERE id = $1', [run.id]);
      seen.push(rows[0]?.status === 'cancelled' ? 1 : 0);
    });
    expect(cancelled.status).toBe('cancelled');
    expect(seen).toEqual([2, 1]);
    await expect(h.engine.rerunRun(id, { from: 'start' }, auditFails)).rejects.toThrow('audit write failed');
    expect((await h.engine.listRuns({ workflow: 'atomic', limit: 10 })).map((r) => r.id)).toEqual([id]);
  });

  it('reruns a failed run from the failed step and from the start, keeping history', async () => {
    const flag = h as unknown as { failToggle: boolean };
    flag.failToggle = true;
    await h.engine.saveWorkflow(linear('rerun', [['a', 'ok', { outgoing: { status: null } }], ['b', 'toggle'], ['c', 'ok', { incoming: { body: '$var.a.status' } }]]), 'test');
    const firstId = await h.start('rerun');
    const first = await h.waitFor(firstId, ['failed', 'succeeded']);
    expect(first.status).toBe('failed');
    flag.failToggle = false;
    const fromFailed = await h.engine.rerunRun(firstId, { from: 'failed' });
    expect(fromFailed.rerunOf).toBe(firstId);
    const second = await h.waitFor(fromFailed.id, ['failed', 'succeeded']);
    expect(second.status).toBe('succeeded');
    expect(second.steps.map((s) => s.stepId)).toEqual(['b', 'c']); // a is not run again; its output carried over
    expect(second.outputs['a']?.status).toBe('succeeded');
    expect((await h.engine.getRun(firstId)).status).toBe('failed'); // history kept
    await expect(h.engine.rerunRun(fromFailed.id, { from: 'start' })).rejects.toBeInstanceOf(RunStateError);
    const fromStart = await h.engine.rerunRun(firstId, { from: 'start' });
    const third = await h.waitFor(fromStart.id, ['failed', 'succeeded']);
    expect(third.status).toBe('succeeded');
    expect(third.steps.map((s) => s.stepId)).toEqual(['a', 'b', 'c']);
  });

  it('runs with the same lock key execute one after the other (the later waits pending)', async () => {
    await h.engine.saveWorkflow(linear('locked', [['a', 'slow', { incoming: { body: { ms: 250 } } }], ['b', 'slow', { incoming: { body: { ms: 250 } } }]]), 'test');
    const [one, two, other] = await Promise.all([h.start('locked', { lockKey: 'asset:1' }), h.start('locked', { lockKey: 'asset:1' }), h.start('locked', { lockKey: 'asset:2' })]);
    const statuses = await Promise.all([one, two, other].map(async (id) => (await h.engine.getRun(id)).status));
    expect(statuses.filter((s) => s === 'pending')).toHaveLength(1);
    const runs = await Promise.all([one, two, other].map((id) => h.waitFor(id, ['succeeded', 'failed'])));
    for (const r of runs) expect(r.status).toBe('succeeded');
    const [r1, r2, r3] = runs as [typeof runs[0], typeof runs[0], typeof runs[0]];
    const span = (r: typeof r1) => [Math.min(...r.steps.map((s) => ms(s.startedAt))), Math.max(...r.steps.map((s) => ms(s.finishedAt)))] as const;
    const [s1, s2, s3] = [span(r1), span(r2), span(r3)];
    // The two asset:1 runs never overlap; asset:2 ran beside one of them.
    expect(s1[1] <= s2[0] || s2[1] <= s1[0]).toBe(true);
    expect((s3[0] < s1[1] && s1[0] < s3[1]) || (s3[0] < s2[1] && s2[0] < s3[1])).toBe(true);
  });

  it('cancelling the lock holder admits the next pending run; a pending run can be cancelled', async () => {
    await h.engine.saveWorkflow(linear('holder', [['a', 'block'], ['b', 'ok']]), 'test');
    const holder = await h.start('holder', { lockKey: 'asset:cancel' });
    const next = await h.start('holder', { lockKey: 'asset:cancel' });
    const last = await h.start('holder', { lockKey: 'asset:cancel' });
    await h.waitFor(holder, ['running']);
    expect((await h.engine.getRun(next)).status).toBe('pending');
    expect((await h.engine.cancelRun(last)).status).toBe('cancelled');
    await h.engine.cancelRun(holder);
    await h.waitFor(next, ['running']);
    await h.engine.cancelRun(next);
    expect((await h.engine.getRun(last)).steps).toEqual([]);
  });

  it('a concurrency limit queues or rejects further runs', async () => {
    await h.engine.saveWorkflow(linear('limited', [['a', 'slow', { incoming: { body: { ms: 200 } } }]]), 'test');
    await h.engine.setConcurrencyLimit('limited', { maxActive: 1, onLimit: 'queue' });
    const ids = [await h.start('limited'), await h.start('limited')];
    expect((await h.engine.getRun(ids[1] as string)).status).toBe('pending');
    const [r1, r2] = await Promise.all(ids.map((id) => h.waitFor(id, ['succeeded', 'failed'])));
    expect(r2!.status).toBe('succeeded');
    expect(ms(r2!.steps[0]!.startedAt)).toBeGreaterThanOrEqual(ms(r1!.steps[0]!.finishedAt));

    await h.engine.setConcurrencyLimit('limited', { maxActive: 1, onLimit: 'reject' });
    const holder = await h.start('limited');
    const err = await h.start('limited').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConcurrencyLimitError);
    expect(err).toMatchObject({ code: 'WORKFLOW_CONCURRENCY_LIMIT', limit: 1 });
    expect((await h.engine.listRuns({ workflow: 'limited' })).length).toBe(3); // the rejected start left no row
    await h.waitFor(holder, ['succeeded']);
    await h.engine.setConcurrencyLimit('limited', null);
  });

  it('waits until resumed while holding its lock; waits for a duration', async () => {
    await h.engine.saveWorkflow({
      name: 'approval',
      steps: [
        { id: 'a', kind: 'integration', operation: 'fake/ok' },
        { id: 'w', kind: 'wait', until: 'resumed', outgoing: { approved: { from: 'data.approved' } } },
        { id: 'c', kind: 'integration', operation: 'fake/ok', incoming: { body: '$var.w.approved' } },
      ],
    }, 'test');
    const id = await h.start('approval', { lockKey: 'asset:wait' });
    await h.waitFor(id, ['waiting']);
    const blocked = await h.start('approval', { lockKey: 'asset:wait' });
    await sleep(300);
    expect((await h.engine.getRun(blocked)).status).toBe('pending');
    await expect(h.engine.resumeRun(id, 'a', {})).rejects.toBeInstanceOf(RunStateError);
    await h.engine.resumeRun(id, 'w', { approved: true });
    const run = await h.waitFor(id, ['succeeded', 'failed']);
    expect(run.status).toBe('succeeded');
    expect(steps(run, 'w')[0]).toMatchObject({ status: 'succeeded', output: { resumed: true, data: { approved: true } } });
    expect(steps(run, 'c')[0]?.output).toEqual({ ok: true, status: 200, body: true });
    // The pending run got the lock once the first finished, and now waits for its own resume.
    await h.waitFor(blocked, ['waiting']);
    await h.engine.cancelRun(blocked);

    await h.engine.saveWorkflow({ name: 'pause', steps: [{ id: 'w', kind: 'wait', until: 'duration', incoming: { duration: '400ms' } }] }, 'test');
    const paused = await h.waitFor(await h.start('pause'), ['succeeded', 'failed']);
    expect(paused.status).toBe('succeeded');
    expect((steps(paused, 'w')[0]?.output as { waitedMs: number }).waitedMs).toBeGreaterThanOrEqual(400);
  });

  describe('inputs against the inputSchema', () => {
    const schema = {
      type: 'object',
      properties: { group: { type: 'string', default: 'VDI-Users' }, retries: { type: 'integer', minimum: 0, default: 2 }, user: { type: 'string' } },
      required: ['user'],
    };
    beforeAll(async () => {
      await h.engine.saveWorkflow(linear('with-inputs', [['a', 'ok', { incoming: { body: { group: '{{inputs.group}}', user: '{{inputs.user}}' } } }]], schema), 'test');
    });

    it('fills in the defaults and stores them on the run; what the caller gave wins', async () => {
      const given = { user: 'jdoe' };
      const run = await h.waitFor(await h.start('with-inputs', { inputs: given }), ['succeeded', 'failed']);
      expect(run.status).toBe('succeeded');
      expect(run.inputs).toEqual({ user: 'jdoe', group: 'VDI-Users', retries: 2 });
      expect(steps(run, 'a')[0]?.input).toEqual({ body: { group: 'VDI-Users', user: 'jdoe' } });
      expect(given).toEqual({ user: 'jdoe' }); // the caller's object is not mutated
      const own = await h.waitFor(await h.start('with-inputs', { inputs: { user: 'x', group: 'Own' } }), ['succeeded', 'failed']);
      expect(own.inputs).toEqual({ user: 'x', group: 'Own', retries: 2 });
    });

    it('rejects invalid inputs with a RunInputError naming the field, and writes nothing', async () => {
      const before = (await h.engine.listRuns({ workflow: 'with-inputs' })).length;
      const start = (inputs: Record<string, unknown>) =>
        h.t.db.transaction((tx) => h.engine.startRun(tx, { workflow: 'with-inputs', inputs, createdBy: 'test' })).catch((e: unknown) => e);
      const wrongType = await start({ user: 'jdoe', retries: 'three' });
      expect(wrongType).toBeInstanceOf(RunInputError);
      expect(wrongType).toMatchObject({ code: 'RUN_INPUT_INVALID', workflow: 'with-inputs', field: '/retries', reason: 'must be integer' });
      expect((wrongType as Error).message).toContain('/retries');
      expect(await start({ group: 'G' })).toMatchObject({ field: '/user', reason: "must have required property 'user'" });
      expect(await start({ user: 'jdoe', retries: -1 })).toMatchObject({ field: '/retries' });
      expect((await h.engine.listRuns({ workflow: 'with-inputs' })).length).toBe(before);
    });

    it('a schedule fire and a child run get the defaults too; a child with invalid inputs fails its step', async () => {
      const s = await h.t.db.transaction((tx) => createSchedule(tx, { name: 'inputs-defaults', workflow: 'with-inputs', inputs: { user: 'sched' }, cron: '0 3 * * *', enabled: false }, 'test'));
      const fire = await h.t.db.transaction((tx) => triggerSchedule(tx, h.engine, s.id, 'test'));
      const fired = await h.waitFor(fire.runId as string, ['succeeded', 'failed']);
      expect(fired.inputs).toEqual({ user: 'sched', group: 'VDI-Users', retries: 2 });

      await h.engine.saveWorkflow({ name: 'parent-inputs', steps: [{ id: 'kid', kind: 'child', workflow: 'with-inputs', incoming: { inputs: { user: 'kid' } } }] }, 'test');
      const parent = await h.waitFor(await h.start('parent-inputs'), ['succeeded', 'failed']);
      expect(parent.status).toBe('succeeded');
      const out = steps(parent, 'kid')[0]?.output as { runs: { runId: string }[] };
      expect((await h.engine.getRun(out.runs[0]!.runId)).inputs).toEqual({ user: 'kid', group: 'VDI-Users', retries: 2 });

      await h.engine.saveWorkflow({ name: 'parent-bad-inputs', steps: [{ id: 'kid', kind: 'child', workflow: 'with-inputs', incoming: { inputs: { user: 'kid', retries: 'x' } } }] }, 'test');
      const bad = await h.waitFor(await h.start('parent-bad-inputs'), ['succeeded', 'failed']);
      expect(bad.status).toBe('failed');
      expect(bad.error).toMatchObject({ code: 'INVALID_INPUT', stepId: 'kid' });
      expect(bad.error?.message).toContain('/retries');
      expect(steps(bad, 'kid')).toHaveLength(1); // not retried
    });
  });

  it('runs child workflows over an array, in parallel and in sequence, and fails on a failed child', async () => {
    await h.engine.saveWorkflow(linear('child-ok', [['x', 'ok', { incoming: { body: '{{inputs.n}}' }, outgoing: { n: { from: 'body', job: 'n' } } }]], { type: 'object', properties: { n: {} } }), 'test');
    await h.engine.saveWorkflow(linear('child-bad', [['x', 'fail4xx']]), 'test');
    for (const mode of ['parallel', 'sequential'] as const) {
      await h.engine.saveWorkflow(
        { name: `parent-${mode}`, steps: [{ id: 'kids', kind: 'child', workflow: 'child-ok', mode, incoming: { items: [1, 2, 3], inputs: { n: '{{item}}' } } }] },
        'test',
      );
      const parentId = await h.start(`parent-${mode}`);
      const parent = await h.waitFor(parentId, ['succeeded', 'failed']);
      expect(parent.status).toBe('succeeded');
      const out = steps(parent, 'kids')[0]?.output as { runs: { index: number; status: string; output: unknown; runId: string }[] };
      expect(out.runs.map((r) => [r.index, r.status, r.output])).toEqual([
        [0, 'succeeded', { n: 1 }],
        [1, 'succeeded', { n: 2 }],
        [2, 'succeeded', { n: 3 }],
      ]);
      const child = await h.engine.getRun(out.runs[0]!.runId);
      expect(child.parentRunId).toBe(parentId);
      if (mode === 'sequential') {
        const kids = await Promise.all(out.runs.map((r) => h.engine.getRun(r.runId)));
        for (let i = 1; i < kids.length; i++) expect(ms(kids[i]!.startedAt)).toBeGreaterThanOrEqual(ms(kids[i - 1]!.finishedAt));
      }
    }
    await h.engine.saveWorkflow({ name: 'parent-bad', steps: [{ id: 'kid', kind: 'child', workflow: 'child-bad' }] }, 'test');
    const bad = await h.waitFor(await h.start('parent-bad'), ['succeeded', 'failed']);
    expect(bad.status).toBe('failed');
    expect(bad.error).toMatchObject({ code: 'CHILD_FAILED', stepId: 'kid' });
  });

  it('polls until its condition holds, and fails when maxDuration passes', async () => {
    const poll = (name: string, target: number, maxDuration: string) => ({
      name,
      steps: [
        {
          id: 'p',
          kind: 'poll',
          task: { kind: 'integration', operation: 'fake/counter' },
          until: { conditions: [{ left: '{{output.count}}', operator: '>=', right: target }] },
          interval: '100ms',
          maxDuration,
        },
      ],
    });
    await h.engine.saveWorkflow(poll('poll-ok', 3, '10s'), 'test');
    const ok = await h.waitFor(await h.start('poll-ok'), ['succeeded', 'failed']);
    expect(ok.status).toBe('succeeded');
    expect(steps(ok, 'p')).toHaveLength(1); // one attempt, taken up again between probes
    expect(steps(ok, 'p')[0]?.output).toMatchObject({ attempts: 3, result: { count: 3 } });
    expect(new Set(h.calls.filter((c) => c.runId === ok.id).map((c) => c.idempotencyKey)).size).toBe(3);

    await h.engine.saveWorkflow(poll('poll-exhausted', 1000, '1500ms'), 'test');
    const exhausted = await h.waitFor(await h.start('poll-exhausted'), ['succeeded', 'failed']);
    expect(exhausted.status).toBe('failed');
    expect(exhausted.error).toMatchObject({ code: 'POLL_EXHAUSTED', stepId: 'p' });
    const probes = h.calls.filter((c) => c.runId === exhausted.id).length;
    // Probed again after the first (a loaded machine stretches the 100 ms between probes, so no more is promised),
    // and never more often than every 100 ms over the 1,500 ms allowed.
    expect(probes).toBeGreaterThanOrEqual(2);
    expect(probes).toBeLessThanOrEqual(16);
  });

  it('fails a step whose template names a missing variable, naming it', async () => {
    await h.engine.saveWorkflow(linear('missing', [['a', 'ok', { incoming: { body: { user: '{{order.username}}' } } }]]), 'test');
    const run = await h.waitFor(await h.start('missing', { variables: { order: { id: 7 } } }), ['succeeded', 'failed']);
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('TEMPLATE');
    expect(run.error?.message).toContain('order.username');
    expect(h.calls.some((c) => c.runId === run.id)).toBe(false);
  });

  it('runs the step that follows another in the worker that finished it, without a job; a stopping worker leaves it to a job', async () => {
    const stepJobs = async (runId: string) =>
      (
        await h.t.db.query<{ task: string }>(`SELECT data->>'taskId' AS task FROM pgboss.job WHERE name = 'workflow.step' AND data->>'runId' = $1 ORDER BY created_on, task`, [runId])
      ).rows.map((r) => r.task);
    await h.engine.saveWorkflow(linear('kept', [['a', 'ok'], ['b', 'ok'], ['c', 'ok']]), 'test');
    const id = await h.start('kept');
    const run = await h.waitFor(id, ['succeeded', 'failed']);
    expect(run.steps.map((s) => [s.stepId, s.attempt, s.status])).toEqual([
      ['a', 1, 'succeeded'],
      ['b', 1, 'succeeded'],
      ['c', 1, 'succeeded'],
    ]);
    expect(await stepJobs(id)).toEqual(['a']);

    // Parallel branches: the worker keeps one, the others get jobs; the join after them is kept by whoever is last.
    await h.engine.saveWorkflow(
      {
        name: 'kept-branches',
        tasks: { a: { kind: 'integration', operation: 'fake/ok' }, l: { kind: 'integration', operation: 'fake/ok' }, r: { kind: 'integration', operation: 'fake/ok' }, j: { kind: 'integration', operation: 'fake/ok' } },
        transitions: {
          workflow_start: { a: { state: 'success' } },
          a: { l: { state: 'success' }, r: { state: 'success' } },
          l: { j: { state: 'success' } },
          r: { j: { state: 'success' } },
          j: { workflow_end: { state: 'success' } },
        },
      },
      'test',
    );
    const branched = await h.waitFor(await h.start('kept-branches'), ['succeeded', 'failed']);
    expect(branched.steps.map((s) => s.stepId).sort()).toEqual(['a', 'j', 'l', 'r']);
    expect(await stepJobs(branched.id)).toHaveLength(2);

    await h.engine.saveWorkflow(linear('kept-stop', [['a', 'slow', { incoming: { body: { ms: 400 } } }], ['b', 'ok']]), 'test');
    const stopped = await h.start('kept-stop');
    for (let i = 0; i < 100 && !h.calls.some((c) => c.runId === stopped); i++) await sleep(20);
    try {
      await h.engine.stop();
      const left = await h.engine.getRun(stopped);
      expect(left.status).toBe('running');
      expect(left.steps.map((s) => [s.stepId, s.status])).toEqual([['a', 'succeeded']]);
      expect(await stepJobs(stopped)).toEqual(['a', 'b']);
    } finally {
      await h.engine.startWorkers({ teamSize: 3 });
    }
    expect((await h.waitFor(stopped, ['succeeded', 'failed'])).status).toBe('succeeded');
  });

  // A real worker process is killed with SIGKILL in the middle of a step; another process finishes the run.
  // Skipped on PGlite: it is an in-memory database inside this process, which no worker process can reach.
  const onPostgres = testEngine === 'postgres' ? it : it.skip;
  onPostgres(`resumes a run on another worker process after the first is SIGKILLed mid-step; finished steps run once${testEngine === 'postgres' ? '' : ' (PostgreSQL only: PGlite is in-process, no second process can reach it)'}`, async () => {
    await h.engine.saveWorkflow(linear('crash', [['a', 'ok'], ['b', 'ok'], ['c', 'ok']]), 'test');
    // The workers of this process would take the run; park them so only the child processes work.
    await h.engine.stop();
    const dir = mkdtempSync(join(tmpdir(), 'wf-crash-'));
    const log = join(dir, 'calls.log');
    const worker = (blockStep: string | null): ChildProcess =>
      spawn(process.execPath, ['--import', 'tsx', join(__dirname, '..', 'support', 'workflow-worker.ts')], {
        env: { ...process.env, WORKER_DATABASE_URL: h.t.url, CALL_LOG: log, BLOCK_STEP: blockStep ?? '' },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
    const lines = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []);
    const first = worker('b');
    let second: ChildProcess | null = null;
    try {
      const id = await h.start('crash');
      for (let i = 0; i < 400 && !lines().some((l) => l.startsWith('b 1 ')); i++) await sleep(50);
      expect(lines().some((l) => l.startsWith('b 1 '))).toBe(true);
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      second = worker(null);
      const run = await h.waitFor(id, ['succeeded', 'failed'], 30_000);
      expect(run.status).toBe('succeeded');
      expect(run.steps.map((s) => [s.stepId, s.attempt, s.status])).toEqual([
        ['a', 1, 'succeeded'],
        ['b', 1, 'abandoned'],
        ['b', 2, 'succeeded'],
        ['c', 1, 'succeeded'],
      ]);
      expect(steps(run, 'b')[0]?.error?.code).toBe('WORKER_LOST');
      const calls = lines().map((l) => l.split(' ').slice(0, 2).join(' '));
      expect(calls).toEqual(['a 1', 'b 1', 'b 2', 'c 1']);
      const pids = new Set(lines().map((l) => l.split(' ')[2]));
      expect(pids.size).toBe(2);
    } finally {
      first.kill('SIGKILL');
      second?.kill('SIGTERM');
      if (second) await new Promise((r) => second?.once('exit', r));
      await h.engine.startWorkers({ teamSize: 3 });
    }
  });
});
