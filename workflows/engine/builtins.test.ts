// The engine's own executors with a fake context (no database): evaluate, transform, wait, poll and child.
import type { CompiledTask, WorkflowTask } from '../document';
import { compiledTask, stepContext } from '../../tests/support/executors';
import { childExecutor, evaluateExecutor, pollExecutor, transformExecutor, waitExecutor, type BuiltinContext, type ChildRunInfo } from './builtins';
import type { StepResult, TaskExecutor } from './executor';
import type { PendingState } from './graph';

function ctx(over: Partial<BuiltinContext> = {}): BuiltinContext {
  return {
    ...stepContext(),
    pending: undefined,
    executors: {},
    listChildren: async () => [],
    startChild: async () => undefined,
    childRecheckMs: 60_000,
    ...over,
  };
}

const task = (t: WorkflowTask, timeoutMs: number | null = null): CompiledTask => compiledTask(t, { timeoutMs });

describe('evaluate', () => {
  const t = task({ kind: 'evaluate', incoming: { conditions: [{ left: '{{inputs.n}}', operator: '>', right: 3 }] } });
  it('succeeds when the conditions hold and fails with CONDITION_FALSE (not retryable) otherwise', async () => {
    expect(await evaluateExecutor(t, {}, ctx({ variables: { inputs: { n: 5 } } }))).toMatchObject({ ok: true, output: { result: true } });
    expect(await evaluateExecutor(t, {}, ctx({ variables: { inputs: { n: 1 } } }))).toMatchObject({ ok: false, error: { code: 'CONDITION_FALSE', retryable: false } });
  });
  it('fails with TEMPLATE naming a missing variable', async () => {
    const r = await evaluateExecutor(t, {}, ctx({ variables: {} }));
    expect(r).toMatchObject({ ok: false, error: { code: 'TEMPLATE' } });
    expect((r as { error: { message: string } }).error.message).toContain('inputs.n');
  });
});

describe('transform', () => {
  it('evaluates JSONata over the rendered input; a bad expression at run time is INVALID_INPUT', async () => {
    expect(await transformExecutor(task({ kind: 'transform', expression: 'a + b' }), { a: 1, b: 2 }, ctx())).toEqual({ ok: true, output: { result: 3 } });
    expect(await transformExecutor(task({ kind: 'transform', expression: '$number("x") + $error("boom")' }), {}, ctx())).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
  });
});

describe('wait', () => {
  it('answers pending for the rest of its duration, then succeeds', async () => {
    const t = task({ kind: 'wait', until: 'duration', incoming: { duration: '5s' } });
    expect(await waitExecutor(t, { duration: '5s' }, ctx({ now: () => 1000 }))).toEqual({ ok: 'pending', delayMs: 5000 });
    const pending: PendingState = { since: 1000 };
    expect(await waitExecutor(t, { duration: '5s' }, ctx({ now: () => 4000, pending }))).toEqual({ ok: 'pending', delayMs: 2000 });
    expect(await waitExecutor(t, { duration: '5s' }, ctx({ now: () => 6500, pending }))).toEqual({ ok: true, output: { waitedMs: 5500, resumed: false } });
  });
  it('waits until resumed, bounded by the task timeout', async () => {
    const t = task({ kind: 'wait', until: 'resumed' }, 10_000);
    expect(await waitExecutor(t, {}, ctx({ now: () => 0 }))).toEqual({ ok: 'pending', delayMs: 10_000 });
    expect(await waitExecutor(t, {}, ctx({ now: () => 3000, pending: { since: 0, resume: { data: { ok: 1 } } } }))).toEqual({
      ok: true,
      output: { waitedMs: 3000, resumed: true, data: { ok: 1 } },
    });
    expect(await waitExecutor(t, {}, ctx({ now: () => 10_000, pending: { since: 0 } }))).toMatchObject({ ok: false, error: { code: 'TIMEOUT' } });
  });
});

describe('poll', () => {
  const t = task({
    kind: 'poll',
    task: { kind: 'script', script: { module: 'probe', version: 1 }, incoming: { ID: '{{inputs.id}}' } },
    until: { conditions: [{ left: '{{output.state}}', operator: '==', right: 'done' }] },
    failWhen: { conditions: [{ left: '{{output.state}}', operator: '==', right: 'error' }] },
    interval: '10s',
    maxDuration: '30s',
  });
  const probe = (state: string) => {
    const calls: { input: Record<string, unknown>; key: string }[] = [];
    const exec: TaskExecutor = async (_t, input, c): Promise<StepResult> => {
      calls.push({ input, key: c.idempotencyKey });
      return { ok: true, output: { state } };
    };
    return { exec, calls };
  };

  it('probes with rendered input and its own idempotency key, and answers pending until the condition holds', async () => {
    const p = probe('running');
    const r = await pollExecutor(t, {}, ctx({ executors: { script: p.exec }, variables: { inputs: { id: 'PS1' } }, now: () => 0 }));
    expect(r).toEqual({ ok: 'pending', delayMs: 10_000, state: { attempts: 1 } });
    expect(p.calls).toEqual([{ input: { ID: 'PS1' }, key: 'run-1:t1:1:probe-1' }]);
    const done = probe('done');
    expect(await pollExecutor(t, {}, ctx({ executors: { script: done.exec }, variables: { inputs: { id: 'PS1' } }, now: () => 12_000, pending: { since: 0, state: { attempts: 1 } } }))).toEqual({
      ok: true,
      output: { attempts: 2, elapsedMs: 12_000, result: { state: 'done' } },
    });
  });
  it('fails with POLL_EXHAUSTED when failWhen holds or maxDuration would pass', async () => {
    const vars = { inputs: { id: 'PS1' } };
    expect(await pollExecutor(t, {}, ctx({ executors: { script: probe('error').exec }, variables: vars }))).toMatchObject({ ok: false, error: { code: 'POLL_EXHAUSTED' } });
    expect(await pollExecutor(t, {}, ctx({ executors: { script: probe('running').exec }, variables: vars, now: () => 25_000, pending: { since: 0 } }))).toMatchObject({
      ok: false,
      error: { code: 'POLL_EXHAUSTED', output: { attempts: 1, elapsedMs: 25_000 } },
    });
  });
});

describe('child', () => {
  const t = task({ kind: 'child', workflow: 'kid', mode: 'parallel', concurrency: 2, incoming: { items: '{{inputs.users}}', inputs: { user: '{{item}}', n: '{{index}}' } } });

  function fakeChildren() {
    const runs: ChildRunInfo[] = [];
    const started: [number, Record<string, unknown>][] = [];
    return {
      runs,
      started,
      over: {
        listChildren: async () => runs.map((r) => ({ ...r })),
        startChild: async (index: number, inputs: Record<string, unknown>) => {
          started.push([index, inputs]);
          runs.push({ index, runId: `c${index}`, status: 'running', output: {} });
        },
      },
    };
  }

  it('starts at most `concurrency` children at once with item and index, then waits without holding a worker', async () => {
    const f = fakeChildren();
    const vars = { inputs: { users: ['ann', 'bob', 'cy'] } };
    expect(await childExecutor(t, {}, ctx({ ...f.over, variables: vars }))).toEqual({ ok: 'pending', delayMs: 60_000 });
    expect(f.started).toEqual([
      [0, { user: 'ann', n: 0 }],
      [1, { user: 'bob', n: 1 }],
    ]);
    f.runs[0]!.status = 'succeeded';
    await childExecutor(t, {}, ctx({ ...f.over, variables: vars }));
    expect(f.started.map(([i]) => i)).toEqual([0, 1, 2]);
    for (const r of f.runs) r.status = 'succeeded';
    expect(await childExecutor(t, {}, ctx({ ...f.over, variables: vars }))).toMatchObject({ ok: true, output: { runs: [{ index: 0 }, { index: 1 }, { index: 2 }] } });
  });

  it('fails with CHILD_FAILED once a child failed and its started siblings finished', async () => {
    const f = fakeChildren();
    f.runs.push({ index: 0, runId: 'c0', status: 'failed', output: {} }, { index: 1, runId: 'c1', status: 'running', output: {} });
    const vars = { inputs: { users: ['ann', 'bob', 'cy'] } };
    expect(await childExecutor(t, {}, ctx({ ...f.over, variables: vars }))).toMatchObject({ ok: 'pending' });
    expect(f.started).toEqual([]);
    f.runs[1]!.status = 'succeeded';
    expect(await childExecutor(t, {}, ctx({ ...f.over, variables: vars }))).toMatchObject({ ok: false, error: { code: 'CHILD_FAILED' } });
  });

  it('rejects items that do not render to an array', async () => {
    expect(await childExecutor(t, {}, ctx({ variables: { inputs: { users: 'ann' } } }))).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
  });
});
