// The run's progress through the graph, as pure functions: joins by dead-path elimination, retry decisions, and
// the state a rerun from the failed step starts with.
import { compileWorkflow, type CompiledWorkflow, type ResolvedRetryPolicy } from '../document';
import { resumeFromFailure } from './engine';
import { completeTask, initialState, retryDecision, retryDelayMs } from './graph';

async function compile(doc: unknown): Promise<CompiledWorkflow> {
  const r = await compileWorkflow(doc);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.workflow;
}

const call = { kind: 'integration', operation: 'x/y' } as const;
const t = (state: 'success' | 'error') => ({ state });

describe('completeTask (joins by dead-path elimination)', () => {
  it('runs a join after parallel branches once, when both have finished', async () => {
    const wf = await compile({
      name: 'fan',
      tasks: { a: call, b: call, j: call },
      transitions: { workflow_start: { a: t('success'), b: t('success') }, a: { j: t('success') }, b: { j: t('success') }, j: { workflow_end: t('success') } },
    });
    const { state, ready } = initialState(wf);
    expect(ready.sort()).toEqual(['a', 'b']);
    for (const id of ready) state.active[id] = 'tok';
    expect(completeTask(wf, state, 'a', 'succeeded', {})).toEqual([]);
    expect(completeTask(wf, state, 'b', 'succeeded', {})).toEqual(['j']);
  });

  it('after an if/else the join runs after the branch taken; the other branch is skipped', async () => {
    const wf = await compile({
      name: 'ifelse',
      tasks: { e: call, yes: call, no: call, j: call },
      transitions: { e: { yes: t('success'), no: t('error') }, yes: { j: t('success') }, no: { j: t('success') }, j: { workflow_end: t('success') } },
    });
    const { state } = initialState(wf);
    expect(completeTask(wf, state, 'e', 'failed', null)).toEqual(['no']);
    expect(state.done['yes']).toBe('skipped');
    expect(completeTask(wf, state, 'no', 'succeeded', {})).toEqual(['j']);
  });

  it('a dead path skips every task only it leads to', async () => {
    const wf = await compile({
      name: 'dead',
      tasks: { e: call, y1: call, y2: call, n: call },
      transitions: { e: { y1: t('success'), n: t('error') }, y1: { y2: t('success') }, y2: { workflow_end: t('success') }, n: { workflow_end: t('success') } },
    });
    const { state } = initialState(wf);
    expect(completeTask(wf, state, 'e', 'failed', null)).toEqual(['n']);
    expect(state.done).toMatchObject({ e: 'failed', y1: 'skipped', y2: 'skipped' });
  });

  it('collects outgoing and job variables of a finished task', async () => {
    const wf = await compile({ name: 'vars', steps: [{ id: 'a', ...call, outgoing: { id: { from: 'body.id', job: 'vmId' } } }] });
    const { state } = initialState(wf);
    completeTask(wf, state, 'a', 'succeeded', { body: { id: 'vm-1' } });
    expect(state.steps['a']).toEqual({ output: { body: { id: 'vm-1' } }, variables: { id: 'vm-1' }, status: 'succeeded' });
    expect(state.job).toEqual({ vmId: 'vm-1' });
  });
});

describe('retryDecision', () => {
  const policy: ResolvedRetryPolicy = {
    maxAttempts: 4,
    initialIntervalMs: 1000,
    backoffCoefficient: 2,
    maximumIntervalMs: 3000,
    maxDurationMs: null,
    retryableErrors: ['HTTP_5XX', 'TIMEOUT'],
  };

  it('backs off exponentially up to maximumInterval', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(policy, n))).toEqual([1000, 2000, 3000, 3000]);
  });

  it('retries retryable codes until maxAttempts', () => {
    expect(retryDecision(policy, { code: 'HTTP_5XX' }, 1, 0, 0)).toEqual({ retry: true, delayMs: 1000 });
    expect(retryDecision(policy, { code: 'HTTP_5XX' }, 3, 0, 0)).toEqual({ retry: true, delayMs: 3000 });
    expect(retryDecision(policy, { code: 'HTTP_5XX' }, 4, 0, 0)).toEqual({ retry: false });
  });

  it('never retries a code outside the list, and the executor flag wins over the list', () => {
    expect(retryDecision(policy, { code: 'HTTP_4XX' }, 1, 0, 0)).toEqual({ retry: false });
    expect(retryDecision(policy, { code: 'HTTP_5XX', retryable: false }, 1, 0, 0)).toEqual({ retry: false });
    expect(retryDecision(policy, { code: 'HTTP_4XX', retryable: true }, 1, 0, 0)).toEqual({ retry: true, delayMs: 1000 });
  });

  it('does not start an attempt after maxDuration since the first', () => {
    const bounded = { ...policy, maxDurationMs: 2500 };
    expect(retryDecision(bounded, { code: 'TIMEOUT' }, 1, 0, 1000)).toEqual({ retry: true, delayMs: 1000 });
    expect(retryDecision(bounded, { code: 'TIMEOUT' }, 2, 0, 1000)).toEqual({ retry: false });
  });
});

describe('resumeFromFailure', () => {
  it('keeps succeeded steps with their outputs and queues the failed one and those cut off', async () => {
    const wf = await compile({
      name: 'rerun',
      tasks: { a: call, b: call, c: call, d: call },
      transitions: { workflow_start: { a: t('success') }, a: { b: t('success'), c: t('success') }, b: { d: t('success') }, c: { d: t('success') }, d: { workflow_end: t('success') } },
    });
    const { state } = initialState(wf);
    completeTask(wf, state, 'a', 'succeeded', { body: 1 });
    state.active = { c: 'tok' }; // c was in flight when b failed the run
    state.done['b'] = 'failed';
    state.queued = ['c'];
    state.active = {};
    const next = resumeFromFailure(wf, state);
    expect(next.done).toEqual({ a: 'succeeded' });
    expect(next.steps['a']?.output).toEqual({ body: 1 });
    expect(next.queued.sort()).toEqual(['b', 'c']);
  });
});
