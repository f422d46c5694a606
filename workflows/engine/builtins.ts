/**
 * The executors the engine brings for the kinds that decide or wait rather than call out: evaluate, transform,
 * wait, child and poll. wait, child and poll never hold a worker while they wait: they answer `pending` and the
 * engine re-enqueues the step with a delay (or at once when what it waits for happens).
 */
import {
  ConditionError,
  TransformError,
  evaluateConditionSet,
  evaluateTransform,
  parseDuration,
  type CompiledTask,
  type Duration,
  type WorkflowTask,
} from '../document';
import { MissingVariableError, TemplateError, renderValue } from '../templating';
import { RunInputError } from './errors';
import type { ExecutorRegistry, StepContext, StepError, StepResult } from './executor';
import type { PendingState } from './graph';
import type { RunStatus } from './types';

export interface ChildRunInfo {
  index: number;
  runId: string;
  status: RunStatus;
  /** The child's job variables: what it exported (`$var.job.*`). */
  output: unknown;
}

/** What the engine's own executors get besides the contract's StepContext. */
export interface BuiltinContext extends StepContext {
  /** Set when this step answered `pending` before: when it first did, what it kept, and a resume if one came. */
  pending: PendingState | undefined;
  /** The registry, for poll's probe. */
  executors: ExecutorRegistry;
  /** Child runs this step started, by index. */
  listChildren(): Promise<ChildRunInfo[]>;
  /** Starts child run `index` once (a second call for the same index does nothing). */
  startChild(index: number, inputs: Record<string, unknown>): Promise<void>;
  /** How long a waiting child task sleeps before looking again if no child wakes it (a safety net). */
  childRecheckMs: number;
}

export type BuiltinExecutor = (task: CompiledTask, input: Record<string, unknown>, ctx: BuiltinContext) => Promise<StepResult>;

const fail = (code: StepError['code'], message: string, extra: Partial<StepError> = {}): StepResult => ({ ok: false, error: { code, message, ...extra } });

/** Errors the pure helpers throw, as step errors; anything else propagates (the engine records it). */
export function stepErrorOf(e: unknown): StepResult | null {
  if (e instanceof MissingVariableError) return fail('TEMPLATE', e.message, { retryable: false });
  if (e instanceof TemplateError) return fail('TEMPLATE', e.message, { retryable: false });
  if (e instanceof ConditionError || e instanceof TransformError) return fail('INVALID_INPUT', e.message, { retryable: false });
  // A child's inputs that its workflow's inputSchema rejects: retrying would render the same inputs again.
  if (e instanceof RunInputError) return fail('INVALID_INPUT', e.message, { retryable: false });
  return null;
}

async function guarded(fn: () => Promise<StepResult>): Promise<StepResult> {
  try {
    return await fn();
  } catch (e) {
    const r = stepErrorOf(e);
    if (r) return r;
    throw e;
  }
}

export const evaluateExecutor: BuiltinExecutor = (task, _input, ctx) =>
  guarded(async () => {
    const t = task.task;
    if (t.kind !== 'evaluate') return fail('INVALID_INPUT', `task ${task.id} is not an evaluate task`);
    const outcome = evaluateConditionSet(t.incoming, ctx.variables);
    if (outcome.result) return { ok: true, output: outcome };
    return fail('CONDITION_FALSE', `the conditions of '${task.id}' did not hold`, { retryable: false, output: outcome });
  });

export const transformExecutor: BuiltinExecutor = (task, input) =>
  guarded(async () => {
    const t = task.task;
    if (t.kind !== 'transform') return fail('INVALID_INPUT', `task ${task.id} is not a transform task`);
    return { ok: true, output: await evaluateTransform(t.expression, input) };
  });

// An unbounded wait for a resume still looks again once a day, so nothing depends on one job living for months.
const RESUME_RECHECK_MS = 24 * 3600_000;

export const waitExecutor: BuiltinExecutor = (task, input, ctx) =>
  guarded(async () => {
    const t = task.task;
    if (t.kind !== 'wait') return fail('INVALID_INPUT', `task ${task.id} is not a wait task`);
    const now = ctx.now();
    const since = ctx.pending?.since ?? now;
    const waited = Math.max(0, now - since);
    if (t.until === 'duration') {
      const raw = input['duration'];
      if (typeof raw !== 'string' && typeof raw !== 'number') return fail('INVALID_INPUT', `wait '${task.id}' needs incoming.duration such as '30s'`, { retryable: false });
      let ms: number;
      try {
        ms = parseDuration(raw as Duration);
      } catch (e) {
        return fail('INVALID_INPUT', `wait '${task.id}': ${(e as Error).message}`, { retryable: false });
      }
      if (waited >= ms) return { ok: true, output: { waitedMs: waited, resumed: false } };
      return { ok: 'pending', delayMs: ms - waited };
    }
    if (ctx.pending?.resume) return { ok: true, output: { waitedMs: waited, resumed: true, data: ctx.pending.resume.data ?? null } };
    // For a wait until resumed, the task's timeout bounds the whole wait (each attempt itself returns at once).
    if (task.timeoutMs !== null) {
      if (waited >= task.timeoutMs) return fail('TIMEOUT', `wait '${task.id}' was not resumed within ${task.timeoutMs} ms`, { retryable: false });
      return { ok: 'pending', delayMs: task.timeoutMs - waited };
    }
    return { ok: 'pending', delayMs: RESUME_RECHECK_MS };
  });

export const pollExecutor: BuiltinExecutor = (task, _input, ctx) =>
  guarded(async () => {
    const t = task.task;
    if (t.kind !== 'poll') return fail('INVALID_INPUT', `task ${task.id} is not a poll task`);
    const probe = ctx.executors[t.task.kind];
    if (!probe) return fail('INVALID_INPUT', `no executor for the probe kind '${t.task.kind}' of poll '${task.id}'`, { retryable: false });
    const now = ctx.now();
    const since = ctx.pending?.since ?? now;
    const attempts = ((ctx.pending?.state as { attempts?: number } | undefined)?.attempts ?? 0) + 1;
    const input = renderValue(t.task.incoming ?? {}, ctx.variables) as Record<string, unknown>;
    const probeTask: CompiledTask = {
      ...task,
      kind: t.task.kind,
      task: t.task as WorkflowTask,
      timeoutMs: t.task.timeout !== undefined ? parseDuration(t.task.timeout) : task.timeoutMs,
    };
    // Each probe is its own call: a server that honours Idempotency-Key must not answer a later probe from its cache.
    const result = await probe(probeTask, input, { ...ctx, idempotencyKey: `${ctx.idempotencyKey}:probe-${attempts}` });
    if (result.ok === false) return result;
    const output = result.ok === true ? result.output : null;
    const elapsedMs = Math.max(0, ctx.now() - since);
    const summary = { attempts, elapsedMs, result: output };
    const vars = { ...ctx.variables, output };
    if (t.failWhen && evaluateConditionSet(t.failWhen, vars).result) {
      return fail('POLL_EXHAUSTED', `poll '${task.id}': failWhen held after ${attempts} probe(s)`, { retryable: false, output: summary });
    }
    if (result.ok === true && evaluateConditionSet(t.until, vars).result) return { ok: true, output: summary };
    const interval = parseDuration(t.interval);
    if (elapsedMs + interval > parseDuration(t.maxDuration)) {
      return fail('POLL_EXHAUSTED', `poll '${task.id}': the condition did not hold within ${t.maxDuration} (${attempts} probe(s))`, { retryable: false, output: summary });
    }
    return { ok: 'pending', delayMs: interval, state: { attempts } };
  });

const FINISHED: readonly RunStatus[] = ['succeeded', 'failed', 'cancelled'];

export const childExecutor: BuiltinExecutor = (task, _input, ctx) =>
  guarded(async () => {
    const t = task.task;
    if (t.kind !== 'child') return fail('INVALID_INPUT', `task ${task.id} is not a child task`);
    let items: unknown[] | null = null;
    if (t.incoming?.items !== undefined) {
      const rendered = renderValue(t.incoming.items, ctx.variables);
      if (!Array.isArray(rendered)) return fail('INVALID_INPUT', `child '${task.id}': incoming.items must render to an array`, { retryable: false });
      items = rendered;
    }
    const count = items === null ? 1 : items.length;
    const limit = t.mode === 'parallel' ? Math.max(1, t.concurrency ?? count) : 1;
    let runs = await ctx.listChildren();
    const failed = runs.find((r) => r.status === 'failed' || r.status === 'cancelled');
    const report = () => ({ runs: runs.map((r) => ({ index: r.index, runId: r.runId, status: r.status, output: r.output })) });
    // Sequential stops at the first failure; parallel lets started siblings finish, then fails.
    const unfinished = runs.filter((r) => !FINISHED.includes(r.status));
    if (failed && (t.mode !== 'parallel' || unfinished.length === 0)) {
      return fail('CHILD_FAILED', `child run ${failed.runId} (${t.workflow}, item ${failed.index}) ${failed.status}`, { retryable: false, output: report() });
    }
    if (!failed) {
      const started = new Set(runs.map((r) => r.index));
      let running = unfinished.length;
      for (let i = 0; i < count && running < limit; i++) {
        if (started.has(i)) continue;
        const vars = items === null ? ctx.variables : { ...ctx.variables, item: items[i], index: i };
        await ctx.startChild(i, renderValue(t.incoming?.inputs ?? {}, vars) as Record<string, unknown>);
        running++;
      }
      runs = await ctx.listChildren();
    }
    if (runs.length === count && runs.every((r) => r.status === 'succeeded')) return { ok: true, output: report() };
    return { ok: 'pending', delayMs: ctx.childRecheckMs };
  });

export const BUILTIN_EXECUTORS = {
  evaluate: evaluateExecutor,
  transform: transformExecutor,
  wait: waitExecutor,
  poll: pollExecutor,
  child: childExecutor,
} as const;
