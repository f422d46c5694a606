/**
 * The run's progress through the compiled graph, as pure functions over a JSON state stored on the run row.
 *
 * Joins use dead-path elimination (as BPMN engines and Airflow's trigger rules do): when a task finishes, the
 * transitions it takes are "taken" and its other outgoing transitions are "dead". A task runs once, when every
 * one of its predecessors has resolved its transition into it and at least one was taken; when all are dead the
 * task is skipped and its own transitions die in turn. So a join after parallel branches waits for all of them,
 * and a join after an if/else (evaluate success vs error) runs after the one branch that ran, never twice and
 * never stuck. The run is done when no task is active.
 */
import type { DeferredSpan } from '../../adapter';
import { WORKFLOW_END, collectOutgoingVariables, type CompiledWorkflow, type ResolvedRetryPolicy, type StepErrorCode } from '../document';
import type { StepVariables } from '../templating';

export interface PendingState {
  /** ms since epoch when the step first went pending (poll/wait/child start). */
  since: number;
  /** What the executor asked to keep between re-enqueues. */
  state?: unknown;
  /** Set by resumeRun for a `wait` task until resumed. */
  resume?: { data: unknown };
  /** Something the step waits for happened (a child finished, a resume) while its attempt was still running: re-enqueue at once. */
  wake?: boolean;
}

export interface RunState {
  /**
   * Tasks enqueued or running -> the dispatch token (the pg-boss job id, or for a task a finishing worker kept for
   * itself, an id no job carries) whose job may run them; any other job is stale.
   */
  active: Record<string, string>;
  /** Finished tasks and how; skipped: every transition into it died. */
  done: Record<string, 'succeeded' | 'failed' | 'skipped'>;
  /** Per task, the predecessors whose transition into it was taken or died. */
  arrivals: Record<string, { taken: string[]; dead: string[] }>;
  steps: Record<string, StepVariables>;
  job: Record<string, unknown>;
  pending: Record<string, PendingState>;
  /** Tasks to dispatch when a pending run is admitted (its lock and concurrency slot are free). */
  queued: string[];
  /**
   * The run's span while tracing is on: begun where the run was created, continued by each step (possibly in
   * another process), recorded when the run ends. Absent when tracing was off at its start.
   */
  trace?: DeferredSpan;
}

export function emptyState(): RunState {
  return { active: {}, done: {}, arrivals: {}, steps: {}, job: {}, pending: {}, queued: [] };
}

/** Accepts state from the database, filling fields an older row may lack. */
export function normaliseState(raw: unknown): RunState {
  const s = (raw ?? {}) as Partial<RunState>;
  const state: RunState = { active: s.active ?? {}, done: s.done ?? {}, arrivals: s.arrivals ?? {}, steps: s.steps ?? {}, job: s.job ?? {}, pending: s.pending ?? {}, queued: s.queued ?? [] };
  if (s.trace) state.trace = s.trace;
  return state;
}

/**
 * Records a finished task and resolves its transitions. Returns the tasks that became runnable (the caller
 * dispatches them and puts them in `active`). Mutates `state`.
 */
export function completeTask(
  wf: CompiledWorkflow,
  state: RunState,
  taskId: string,
  outcome: 'succeeded' | 'failed',
  output: unknown,
): string[] {
  const task = wf.tasks[taskId];
  if (!task) throw new Error(`workflow ${wf.name} has no task ${taskId}`);
  delete state.active[taskId];
  delete state.pending[taskId];
  state.done[taskId] = outcome;
  const { variables, job } = collectOutgoingVariables(task.task, output);
  state.steps[taskId] = { output, variables, status: outcome };
  Object.assign(state.job, job);
  const taken = new Set(outcome === 'succeeded' ? task.next.success : task.next.error);
  const all = new Set([...task.next.success, ...task.next.error]);
  const ready: string[] = [];
  for (const to of all) {
    if (to === WORKFLOW_END) continue;
    arrive(wf, state, taskId, to, taken.has(to), ready);
  }
  return ready;
}

function arrive(wf: CompiledWorkflow, state: RunState, from: string, to: string, taken: boolean, ready: string[]): void {
  const a = (state.arrivals[to] ??= { taken: [], dead: [] });
  const list = taken ? a.taken : a.dead;
  if (!list.includes(from)) list.push(from);
  const target = wf.tasks[to];
  if (!target || state.done[to] !== undefined || state.active[to] !== undefined) return;
  const resolved = new Set([...a.taken, ...a.dead]);
  if (!target.predecessors.every((p) => resolved.has(p))) return;
  // A start task carries workflow_start's taken transition, so it runs even when its other predecessors died.
  if (a.taken.length > 0) {
    ready.push(to);
    return;
  }
  // Every way in died: skip it, and its own transitions die too.
  state.done[to] = 'skipped';
  for (const next of new Set([...target.next.success, ...target.next.error])) {
    if (next !== WORKFLOW_END) arrive(wf, state, to, next, false, ready);
  }
}

/**
 * A new run's state and the tasks to run first. A start task that also has predecessors (besides workflow_start)
 * waits for them like a join, its transition from workflow_start already taken.
 */
export function initialState(wf: CompiledWorkflow): { state: RunState; ready: string[] } {
  const state = emptyState();
  const ready: string[] = [];
  for (const id of wf.start) {
    if ((wf.tasks[id]?.predecessors.length ?? 0) === 0) ready.push(id);
    else state.arrivals[id] = { taken: ['workflow_start'], dead: [] };
  }
  return { state, ready };
}

/** The wait before attempt `failures + 1`, given `failures` failed attempts so far (Temporal's formula). */
export function retryDelayMs(policy: ResolvedRetryPolicy, failures: number): number {
  const raw = policy.initialIntervalMs * Math.pow(policy.backoffCoefficient, Math.max(0, failures - 1));
  return Math.min(Math.round(raw), policy.maximumIntervalMs);
}

/**
 * Whether a failed attempt is retried, and after how long. Not when: the error is not retryable (the executor's
 * `retryable` flag wins over the policy's list), attempts are used up, or the next attempt would start after
 * maxDuration since the first began.
 */
export function retryDecision(
  policy: ResolvedRetryPolicy,
  error: { code: string; retryable?: boolean },
  failures: number,
  firstStartedAt: number,
  now: number,
): { retry: true; delayMs: number } | { retry: false } {
  const retryable = error.retryable ?? policy.retryableErrors.includes(error.code as StepErrorCode);
  if (!retryable || failures >= policy.maxAttempts) return { retry: false };
  const delayMs = retryDelayMs(policy, failures);
  if (policy.maxDurationMs !== null && now + delayMs - firstStartedAt > policy.maxDurationMs) return { retry: false };
  return { retry: true, delayMs };
}
