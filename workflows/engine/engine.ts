/**
 * The durable workflow engine on pg-boss: step jobs on queue `workflow.step`.
 *
 * Durability. A run's progress (which tasks are active, finished, their outputs) lives in `workflow_runs.state`;
 * each attempt is a `workflow_steps` row. A worker takes a job in two short transactions around the side effect:
 * the claim (run row locked: the run is still active and this job's token is the task's current one; an attempt
 * row is inserted, status running, with a lease) and the finish (run row locked again: the attempt's outcome is
 * recorded, the transitions resolved, and the next steps' jobs sent in the SAME transaction). So a step's record
 * and the run's state are committed before the next step is enqueued, and nothing is half-written.
 * The finish keeps one of the tasks it makes runnable for its own worker instead of sending it a job: the kept
 * task's attempt row is inserted (running, with a lease) in that same transaction, which is all a claim would
 * do, and the worker runs it next. So a step that follows another costs one transaction, not a job's two.
 *
 * Crashes. A running attempt renews its lease while it runs. When a worker dies (SIGKILL), its lease lapses;
 * the sweeper of any other worker process (or a redelivery of the job, whichever comes first; a kept step has no
 * job, so the sweeper) marks the attempt `abandoned` and dispatches the task again with a new token, so it runs again
 * as a NEW attempt with a new idempotency key. Finished steps are never dispatched again: each dispatch carries a
 * token (the pg-boss job id) stored in the run's state; a job whose token is not the task's current one (a
 * redelivered job of a finished step, a superseded delayed retry) does nothing.
 *
 * Locks and limits. Runs with the same lock key (the asset), and runs beyond a workflow's concurrency limit,
 * stay `pending` and are admitted, oldest first, in the transaction that finishes the run holding the slot.
 * Admission decisions take one transaction-scoped advisory lock, so two processes never admit two holders;
 * runs without a lock key or limit skip it.
 */
import { randomUUID } from 'node:crypto';
import { QueueName, redact, withLogContext, type Database, type JobQueue, type Logger, type Queryable, type SendOptions } from '../../adapter';
import { deferSpan, endDeferredSpan, failSpan, inSpan, observeRun, observeStep } from '../../adapter';
import { compileInputValidator, compileWorkflow, WorkflowValidationError, type CompileContext, type CompiledTask, type CompiledWorkflow } from '../document';
import { renderValue, type TemplateVariables } from '../templating';
import { BUILTIN_EXECUTORS, stepErrorOf, type BuiltinContext, type ChildRunInfo } from './builtins';
import { ConcurrencyLimitError, RunInputError, RunNotFoundError, RunStateError, WorkflowNotFoundError } from './errors';
import type { ExecutorRegistry, StepContext, StepError, StepResult, TaskExecutor } from './executor';
import { completeTask, initialState, normaliseState, retryDecision, type RunState } from './graph';
import * as runs from './run-store';
import type { RunRow } from './run-store';
import type {
  ConcurrencyLimit,
  EngineHooks,
  RunRecord,
  RunStatus,
  RunWithSteps,
  StartRunOptions,
  StoredWorkflow,
  WorkflowSummary,
} from './types';
import * as store from './workflow-store';

export interface EngineConfig {
  /** A running attempt's lease (ms); renewed every third of it. A worker silent this long is considered gone. */
  leaseMs: number;
  /** How often each worker process looks for lapsed leases (ms). */
  sweepIntervalMs: number;
  /** Per-attempt timeout when a task sets none (ms). */
  defaultTimeoutMs: number;
  /** How long an idle worker waits before looking for a step job again (s). Workers of this process are also woken
   * directly when this process enqueues a step, so this bounds only the latency of work enqueued elsewhere. */
  pollingIntervalSeconds: number;
  /** A child task waiting for its runs looks again this often if no child wakes it (ms); a safety net only. */
  childRecheckMs: number;
  /** pg-boss redeliveries of a step job that expired while active, 1 s apart (the sweeper usually got there first). */
  jobRetryLimit: number;
  /** pg-boss expiry of an active step job (s). Longer steps are safe: their lease, not the job, says they are alive. */
  jobExpireSeconds: number;
  /** How long stop() waits for steps in flight before giving up on them (ms); their leases lapse and another worker takes them up. */
  stopTimeoutMs: number;
}

export const DEFAULT_ENGINE_CONFIG: Readonly<EngineConfig> = Object.freeze({
  leaseMs: 30_000,
  sweepIntervalMs: 5_000,
  defaultTimeoutMs: 300_000,
  pollingIntervalSeconds: 2,
  childRecheckMs: 60_000,
  jobRetryLimit: 5,
  jobExpireSeconds: 900,
  stopTimeoutMs: 30_000,
});

export interface WorkflowEngineOptions {
  db: Database;
  queue: JobQueue;
  logger: Logger;
  /** Executors for the kinds that call out (integration, webhook, script, directory); evaluate, transform, wait,
   * child and poll are built in (an entry here overrides a built-in). */
  executors: ExecutorRegistry;
  hooks?: EngineHooks;
  /** ms since epoch; recorded step times, executors' `now()`, waits and retry bounds read it. */
  clock?: () => number;
  /** Lookups for saveWorkflow (integrations, script modules); the engine adds the workflow lookup itself. */
  compileContext?: CompileContext;
  config?: Partial<EngineConfig>;
}

export interface RerunOptions {
  /** `start`: every task again. `failed`: keep the tasks that succeeded; run again those that failed or were cut off. */
  from: 'failed' | 'start';
  createdBy?: string;
}

/**
 * Work of the caller's that must commit or roll back with the engine's own change (its audit row): run in the
 * engine's transaction, after the change, with what the change produced.
 */
export type AlsoInTransaction<T> = (tx: Queryable, result: T) => Promise<void>;

export interface WorkflowEngine {
  /**
   * Compiles `doc` (with the engine's lookups plus `ctx`) and stores it as the next version of its name.
   * @throws WorkflowValidationError (WORKFLOW_INVALID) carrying every compiler issue.
   */
  saveWorkflow(doc: unknown, by: string, ctx?: CompileContext, also?: AlsoInTransaction<StoredWorkflow>): Promise<StoredWorkflow>;
  /** @throws WorkflowNotFoundError */
  getWorkflow(name: string, version?: number): Promise<StoredWorkflow>;
  listWorkflows(): Promise<WorkflowSummary[]>;
  listVersions(name: string): Promise<number[]>;
  /** Sets (or with null removes) a workflow's concurrency limit. */
  setConcurrencyLimit(name: string, limit: ConcurrencyLimit | null, also?: AlsoInTransaction<void>): Promise<void>;
  getConcurrencyLimit(name: string): Promise<ConcurrencyLimit | null>;
  /**
   * Creates a run of the latest (or given) version inside the caller's transaction, and enqueues its first steps
   * in it, so the run exists and starts exactly when the caller commits. The run is `running`, or `pending` while
   * its lock key is held or its workflow's limit (behaviour `queue`) is reached.
   * The inputs are validated against the pinned version's `inputSchema` and stored with its defaults filled in.
   * @throws WorkflowNotFoundError; RunInputError naming the field when the inputs do not validate;
   * ConcurrencyLimitError when the limit is reached and its behaviour is `reject`.
   */
  startRun(tx: Queryable, opts: StartRunOptions): Promise<RunRecord>;
  /**
   * Cancels a pending, running or waiting run (and its child runs): no further step runs; a step in flight is
   * aborted through its signal and its outcome only recorded.
   * @throws RunNotFoundError; RunStateError when the run has already finished.
   */
  cancelRun(runId: string, also?: AlsoInTransaction<RunRecord>): Promise<RunRecord>;
  /**
   * Reruns a failed or cancelled run as a NEW run linked by `rerunOf` (the old run and its steps stay as they
   * were: history is kept). `failed`: the new run starts with the old run's successful steps (their outputs and
   * variables) and runs again the tasks that failed or were cut off. Goes through lock and limit admission.
   * @throws RunNotFoundError; RunStateError when the run did not fail or was not cancelled.
   */
  rerunRun(runId: string, opts: RerunOptions, also?: AlsoInTransaction<RunRecord>): Promise<RunRecord>;
  /**
   * Resumes a `wait` task (until: resumed) with `data` (its output's `data`). The task may already be waiting or
   * still about to wait. @throws RunNotFoundError; RunStateError when the run is not active or the step is not a
   * wait that is active.
   */
  resumeRun(runId: string, stepId: string, data?: unknown, also?: AlsoInTransaction<RunRecord>): Promise<RunRecord>;
  /** @throws RunNotFoundError */
  getRun(runId: string): Promise<RunWithSteps>;
  listRuns(filter?: runs.RunFilter): Promise<RunRecord[]>;
  /** Starts `teamSize` (default 2) step workers and the lease sweeper in this process. */
  startWorkers(opts?: { teamSize?: number }): Promise<void>;
  /** Stops this process's workers and the sweeper, waiting up to `stopTimeoutMs` for steps in flight. */
  stop(): Promise<void>;
}

interface StepJob {
  runId: string;
  taskId: string;
  token: string;
}

/** What a finish did: `wake` this process's idle workers; `next`, an attempt claimed for this worker to run. */
interface Finished {
  wake: boolean;
  next: Claim | null;
}

interface Claim {
  run: RunRow;
  wf: CompiledWorkflow;
  task: CompiledTask;
  token: string;
  stepRowId: number;
  attempt: number;
  /** When this invocation began (clock ms), for duration_ms. */
  startedAtMs: number;
  /** When the attempt first began (a pending attempt is taken up several times). */
  attemptStartedAtMs: number;
  variables: TemplateVariables;
  input: Record<string, unknown>;
  /** Rendering the input failed: the attempt fails with this instead of running. */
  renderError: StepResult | null;
}

// One key for all admission decisions (lock keys and concurrency limits); held to the end of the transaction.
const ADMISSION_LOCK = 7_302_114_803;
const ACTIVE: readonly RunStatus[] = ['running', 'waiting'];

type AnyExecutor = (task: CompiledTask, input: Record<string, unknown>, ctx: BuiltinContext) => Promise<StepResult>;

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export function createWorkflowEngine(options: WorkflowEngineOptions): WorkflowEngine {
  const { db, queue, logger } = options;
  const hooks = options.hooks ?? {};
  const clock = options.clock ?? Date.now;
  const config: EngineConfig = Object.freeze({ ...DEFAULT_ENGINE_CONFIG, ...(options.config ?? {}) });
  for (const [k, v] of Object.entries(config)) {
    const bad = typeof v !== 'number' || !Number.isFinite(v) || (k === 'jobRetryLimit' ? v < 0 : v <= 0);
    if (bad) throw new RangeError(`workflow engine config ${k} must be a ${k === 'jobRetryLimit' ? 'non-negative' : 'positive'} number, got ${String(v)}`);
  }
  const executors: Record<string, AnyExecutor | undefined> = { ...BUILTIN_EXECUTORS, ...(options.executors as Record<string, TaskExecutor | undefined>) } as Record<
    string,
    AnyExecutor | undefined
  >;
  const registry: ExecutorRegistry = { ...(BUILTIN_EXECUTORS as ExecutorRegistry), ...options.executors };
  // Stored versions never change, so their compiled graphs can be kept (a cache, not coordination).
  const compiled = new Map<string, Promise<CompiledWorkflow>>();
  const inputValidators = new Map<string, ReturnType<typeof compileInputValidator>>();
  // This process's step workers: loops, each idle between polls unless woken.
  const loops: Promise<void>[] = [];
  const sleepers = new Set<() => void>();
  let sweeper: NodeJS.Timeout | null = null;
  let sweeping = false;
  let stopping = true;

  function compileStored(wf: StoredWorkflow): Promise<CompiledWorkflow> {
    const key = `${wf.name}@${wf.version}`;
    let p = compiled.get(key);
    if (!p) {
      p = compileWorkflow(wf.document).then((r) => {
        if (!r.ok) throw new WorkflowValidationError(r.errors);
        return r.workflow;
      });
      p.catch(() => compiled.delete(key));
      compiled.set(key, p);
    }
    return p;
  }

  /**
   * The run's inputs checked against the version's own `inputSchema`, with its defaults filled in. A version
   * without one takes its inputs as given (the compiled graph's closed fallback schema is not applied).
   */
  function checkedInputs(wf: StoredWorkflow, inputs: Record<string, unknown>): Record<string, unknown> {
    const schema = wf.document.inputSchema;
    if (!schema) return inputs;
    const key = `${wf.name}@${wf.version}`;
    let validate = inputValidators.get(key);
    if (!validate) {
      validate = compileInputValidator(schema);
      inputValidators.set(key, validate);
    }
    const r = validate(inputs);
    if (!r.ok) throw new RunInputError(wf.name, wf.version, r.path, r.message);
    return r.inputs;
  }

  async function loadCompiled(q: Queryable, name: string, version: number): Promise<CompiledWorkflow> {
    const key = `${name}@${version}`;
    const cached = compiled.get(key);
    if (cached) return cached;
    const stored = await store.selectWorkflow(q, name, version);
    if (!stored) throw new WorkflowNotFoundError(name, version);
    return compileStored(stored);
  }

  /** Sends the job that may run `taskId` (after `delayMs`); returns its token. */
  async function dispatch(tx: Queryable, runId: string, taskId: string, delayMs = 0): Promise<string> {
    const token = randomUUID();
    const data: StepJob = { runId, taskId, token };
    const opts: SendOptions = {
      id: token,
      retryLimit: config.jobRetryLimit,
      retryDelaySeconds: 1,
      expireInSeconds: config.jobExpireSeconds,
    };
    // pg-boss compares startAfter with the database clock, so this is wall time, not the injectable clock.
    if (delayMs > 0) opts.startAfter = new Date(Date.now() + delayMs);
    await queue.send(tx, QueueName.WORKFLOW_STEP, data, opts);
    return token;
  }

  function wakeWorkers(): void {
    for (const wake of [...sleepers]) wake();
  }

  function idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleepers.add(wake);
    });
  }

  // ---------------------------------------------------------------------------------------------- admission

  async function admissionLock(tx: Queryable): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [ADMISSION_LOCK]);
  }

  async function mayAdmit(tx: Queryable, row: RunRow, limit: ConcurrencyLimit | null): Promise<boolean> {
    if (row.lock_key !== null) {
      if ((await runs.countActive(tx, { lockKey: row.lock_key })) > 0) return false;
      if (await runs.hasOlderPending(tx, row.lock_key, row.id)) return false;
    }
    if (limit && (await runs.countActive(tx, { workflow: row.workflow_name })) >= limit.maxActive) return false;
    return true;
  }

  /** Moves a pending run to running and sends its first jobs. */
  async function admit(tx: Queryable, row: RunRow): Promise<RunRow> {
    const state = normaliseState(row.state);
    for (const taskId of state.queued) state.active[taskId] = await dispatch(tx, row.id, taskId);
    state.queued = [];
    const updated = await runs.updateRun(tx, row.id, { status: 'running', state, started: new Date(clock()) });
    await hooks.runStarted?.(tx, runs.toRunRecord(updated));
    return updated;
  }

  /** Admits what a finished run made room for: pending runs waiting for its lock key or its workflow's slot. True when it admitted one. */
  async function promotePending(tx: Queryable, finished: RunRow): Promise<boolean> {
    const limit = await store.selectLimit(tx, finished.workflow_name);
    if (finished.lock_key === null && limit === null) return false;
    let admitted = false;
    await admissionLock(tx);
    const limits = new Map<string, ConcurrencyLimit | null>([[finished.workflow_name, limit]]);
    for (const c of await runs.selectPendingCandidates(tx, finished.lock_key, finished.workflow_name)) {
      if (!limits.has(c.workflow_name)) limits.set(c.workflow_name, await store.selectLimit(tx, c.workflow_name));
      if (await mayAdmit(tx, c, limits.get(c.workflow_name) ?? null)) {
        await admit(tx, c);
        admitted = true;
      }
    }
    return admitted;
  }

  /** Inserts a run and admits it at once when nothing holds it back. */
  async function createRun(tx: Queryable, opts: StartRunOptions, link: Partial<runs.NewRun> = {}, presetState?: RunState): Promise<RunRow> {
    const stored = await store.selectWorkflow(tx, opts.workflow, opts.version);
    if (!stored) throw new WorkflowNotFoundError(opts.workflow, opts.version);
    const wf = await compileStored(stored);
    // Before anything is written: invalid inputs leave nothing behind even if the caller commits.
    const inputs = checkedInputs(stored, opts.inputs ?? {});
    const lockKey = opts.lockKey ?? null;
    const limit = await store.selectLimit(tx, stored.name);
    if (lockKey !== null || limit !== null) await admissionLock(tx);
    // Checked before the insert: a rejected start leaves nothing behind even if the caller commits.
    if (limit && limit.onLimit === 'reject' && (await runs.countActive(tx, { workflow: stored.name })) >= limit.maxActive) {
      throw new ConcurrencyLimitError(stored.name, limit.maxActive);
    }
    let state = presetState;
    if (!state) {
      const init = initialState(wf);
      state = init.state;
      state.queued = init.ready;
    }
    // The run's span continues the caller's trace (the order's, a parent step's); its steps continue from it.
    const trace = deferSpan();
    if (trace) state.trace = trace;
    const row = await runs.insertRun(tx, {
      id: randomUUID(),
      workflow: stored.name,
      version: stored.version,
      inputs,
      variables: opts.variables ?? {},
      state,
      lockKey,
      createdBy: opts.createdBy ?? null,
      ...link,
    });
    if (lockKey === null && limit === null) return admit(tx, row);
    return (await mayAdmit(tx, row, limit)) ? admit(tx, row) : row;
  }

  // ---------------------------------------------------------------------------------------------- telemetry

  /** A step attempt's metric, once its finish committed; a `pending` answer has not ended the attempt yet. */
  function stepEnded(c: Claim, result: StepResult): void {
    if (result.ok === 'pending') return;
    observeStep(c.task.kind, result.ok ? 'succeeded' : 'failed', Math.max(0, clock() - c.attemptStartedAtMs) / 1000);
  }

  /**
   * A run reached its final status: its metric, and its span recorded from where it began. Called inside the
   * finishing transaction; one that rolls back is retried and may count the run again (rare, and only metrics).
   */
  function runEnded(row: RunRow): void {
    const seconds = Math.max(0, clock() - new Date(row.created_at).getTime()) / 1000;
    observeRun(row.workflow_name, row.status, seconds);
    const trace = (row.state as Partial<RunState> | null)?.trace;
    if (trace) {
      const attributes = { 'provisio.workflow': row.workflow_name, 'provisio.workflow_version': row.workflow_version, 'provisio.run_status': row.status };
      endDeferredSpan(trace, `workflow.run ${row.workflow_name}`, attributes, row.status === 'failed' ? `${row.error_code ?? 'FAILED'}: ${row.error_message ?? ''}` : undefined);
    }
  }

  // ---------------------------------------------------------------------------------------------- run endings

  /**
   * After a run reached a final status in `tx`: hooks, admission of waiting runs, the parent woken, children cancelled.
   * True when it sent step jobs (an admitted run's, the parent's), which this process's idle workers may take.
   */
  async function afterFinish(tx: Queryable, row: RunRow): Promise<boolean> {
    const record = runs.toRunRecord(row);
    runEnded(row);
    if (row.status === 'succeeded') await hooks.runSucceeded?.(tx, record);
    else if (row.status === 'failed' && record.error) await hooks.runFailed?.(tx, record, record.error);
    else if (row.status === 'cancelled') await hooks.runCancelled?.(tx, record);
    if (row.status !== 'succeeded') {
      for (const childId of await runs.selectRunIdsByParent(tx, row.id)) await cancelInTx(tx, childId);
    }
    const admitted = await promotePending(tx, row);
    const parentWoken = row.parent_run_id && row.parent_step_id ? await wakeStep(tx, row.parent_run_id, row.parent_step_id) : false;
    return admitted || parentWoken;
  }

  /**
   * Something a pending step waits for happened (a child finished, a resume). A waiting attempt is dispatched at
   * once; an attempt still running is flagged, so its `pending` answer re-enqueues without delay.
   */
  async function wakeStep(tx: Queryable, runId: string, taskId: string, resume?: { data: unknown }): Promise<boolean> {
    const run = await runs.selectRun(tx, runId, true);
    if (!run || !ACTIVE.includes(run.status)) return false;
    const state = normaliseState(run.state);
    if (state.active[taskId] === undefined) return false;
    const pending = (state.pending[taskId] ??= { since: clock() });
    if (resume) pending.resume = resume;
    const latest = await runs.selectLatestStep(tx, runId, taskId);
    if (latest?.status === 'waiting') state.active[taskId] = await dispatch(tx, runId, taskId);
    else pending.wake = true;
    await runs.updateRun(tx, runId, { state });
    return true;
  }

  async function cancelInTx(tx: Queryable, runId: string): Promise<RunRow> {
    const run = await runs.selectRun(tx, runId, true);
    if (!run) throw new RunNotFoundError(runId);
    if (!['pending', 'running', 'waiting'].includes(run.status)) {
      throw new RunStateError(runId, run.status, `run ${runId} is ${run.status}; only a pending, running or waiting run can be cancelled`);
    }
    const state = normaliseState(run.state);
    // Waiting attempts end now; a running one is aborted by its heartbeat and recorded when it returns.
    for (const taskId of Object.keys(state.active)) {
      const latest = await runs.selectLatestStep(tx, runId, taskId);
      if (latest?.status === 'waiting') {
        const now = clock();
        await runs.finishStep(tx, latest.id, {
          status: 'cancelled',
          error: { code: 'CANCELLED', message: 'the run was cancelled' },
          finishedAt: new Date(now),
          durationMs: Math.max(0, now - new Date(latest.started_at).getTime()),
        });
      }
    }
    cutOff(state);
    const updated = await runs.updateRun(tx, runId, { status: 'cancelled', state, finished: new Date(clock()) });
    await afterFinish(tx, updated);
    return updated;
  }

  // ---------------------------------------------------------------------------------------------- a step job

  function templateVariables(run: RunRow, state: RunState): TemplateVariables {
    return { ...(run.variables ?? {}), inputs: run.inputs ?? {}, job: state.job, steps: state.steps };
  }

  /** Kinds whose `incoming` the engine renders; the others render their own (conditions, per item, per probe). */
  function renderInput(task: CompiledTask, vars: TemplateVariables): Record<string, unknown> {
    if (task.kind === 'evaluate' || task.kind === 'child' || task.kind === 'poll') return {};
    const incoming = (task.task as { incoming?: unknown }).incoming;
    return (renderValue(incoming ?? {}, vars) ?? {}) as Record<string, unknown>;
  }

  /** The task's input rendered from the run's variables; a template that fails makes the attempt fail with it. */
  function prepareInput(task: CompiledTask, variables: TemplateVariables): { input: Record<string, unknown>; renderError: StepResult | null } {
    try {
      return { input: renderInput(task, variables), renderError: null };
    } catch (e) {
      return { input: {}, renderError: stepErrorOf(e) ?? { ok: false, error: { code: 'TEMPLATE', message: messageOf(e), retryable: false } } };
    }
  }

  /**
   * The common case of a claim, for a run row locked in `tx` whose state names `token` for `task`: the task's next
   * attempt inserted, running, with a lease. Null when an attempt of it is already running or waiting.
   */
  async function startNextAttempt(tx: Queryable, run: RunRow, wf: CompiledWorkflow, task: CompiledTask, token: string): Promise<Claim | null> {
    const now = clock();
    const variables = templateVariables(run, normaliseState(run.state));
    const { input, renderError } = prepareInput(task, variables);
    const first = await runs.insertNextAttempt(tx, { runId: run.id, taskId: task.id, kind: task.kind, input: redact(input), startedAt: new Date(now), leaseMs: config.leaseMs });
    if (!first) return null;
    return { run, wf, task, token, stepRowId: first.id, attempt: first.attempt, startedAtMs: now, attemptStartedAtMs: now, variables, input, renderError };
  }

  async function claim(tx: Queryable, job: StepJob): Promise<Claim | null> {
    const run = await runs.selectRun(tx, job.runId, true);
    if (!run || !ACTIVE.includes(run.status)) return null;
    const state = normaliseState(run.state);
    if (state.active[job.taskId] !== job.token) return null;
    const wf = await loadCompiled(tx, run.workflow_name, run.workflow_version);
    const task = wf.tasks[job.taskId];
    if (!task) return null;
    const first = await startNextAttempt(tx, run, wf, task, job.token);
    if (first) {
      return run.status === 'running' ? first : { ...first, run: await runs.updateRun(tx, run.id, { status: 'running' }) };
    }
    const now = clock();
    const variables = templateVariables(run, state);
    const { input, renderError } = prepareInput(task, variables);
    // An attempt is running or waiting: a live lease (a redelivered job: that worker finishes it), a lapsed one
    // (its worker is gone: abandon it), or a pending attempt to take up again.
    let latest = await runs.selectLatestStep(tx, run.id, job.taskId);
    if (latest && latest.status === 'running') {
      if (!latest.lease_expired) return null;
      await abandon(tx, latest);
      latest = { ...latest, status: 'abandoned' };
    }
    let stepRowId: number;
    let attempt: number;
    let attemptStartedAtMs = now;
    if (latest && latest.status === 'waiting' && state.pending[job.taskId]) {
      // A pending attempt (poll, wait, child) taken up again: the same attempt continues.
      const resumed = await runs.resumeStep(tx, latest.id, config.leaseMs);
      stepRowId = resumed.id;
      attempt = resumed.attempt;
      attemptStartedAtMs = new Date(resumed.started_at).getTime();
    } else {
      attempt = (latest?.attempt ?? 0) + 1;
      const inserted = await runs.insertStep(tx, {
        runId: run.id,
        taskId: task.id,
        kind: task.kind,
        attempt,
        status: 'running',
        input: redact(input),
        startedAt: new Date(now),
        idempotencyKey: `${run.id}:${task.id}:${attempt}`,
        leaseMs: config.leaseMs,
      });
      stepRowId = inserted.id;
    }
    let current = run;
    if (run.status !== 'running') current = await runs.updateRun(tx, run.id, { status: 'running' });
    return { run: current, wf, task, token: job.token, stepRowId, attempt, startedAtMs: now, attemptStartedAtMs, variables, input, renderError };
  }

  async function abandon(tx: Queryable, step: { id: number; started_at: Date | string }): Promise<void> {
    const now = clock();
    await runs.finishStep(tx, step.id, {
      status: 'abandoned',
      error: { code: 'WORKER_LOST', message: 'the worker running this attempt stopped renewing its lease (crashed or killed); the step runs again' },
      finishedAt: new Date(now),
      durationMs: Math.max(0, now - new Date(step.started_at).getTime()),
    });
  }

  function builtinContext(c: Claim, signal: AbortSignal, pending: RunState['pending'][string] | undefined): BuiltinContext {
    const base: StepContext = {
      runId: c.run.id,
      stepId: c.task.id,
      attempt: c.attempt,
      idempotencyKey: `${c.run.id}:${c.task.id}:${c.attempt}`,
      signal,
      logger: logger.child({ runId: c.run.id, stepId: c.task.id, attempt: c.attempt }),
      variables: c.variables,
      now: clock,
    };
    return {
      ...base,
      pending,
      executors: registry,
      childRecheckMs: config.childRecheckMs,
      listChildren: async (): Promise<ChildRunInfo[]> =>
        (await runs.selectChildRuns(db, c.run.id, c.task.id)).map((r) => ({
          index: r.child_index ?? 0,
          runId: r.id,
          status: r.status,
          output: normaliseState(r.state).job,
        })),
      startChild: async (index, inputs) => {
        const t = c.task.task;
        if (t.kind !== 'child') return;
        await db.transaction(async (tx) => {
          const existing = await runs.selectChildRuns(tx, c.run.id, c.task.id);
          if (existing.some((r) => r.child_index === index)) return;
          const opts: StartRunOptions = { workflow: t.workflow, inputs, variables: c.run.variables, createdBy: `run:${c.run.id}` };
          if (t.version !== undefined) opts.version = t.version;
          await createRun(tx, opts, { parentRunId: c.run.id, parentStepId: c.task.id, childIndex: index });
        });
        wakeWorkers();
      },
    };
  }

  /** Runs one attempt: the executor raced against its timeout, the lease renewed meanwhile. Never throws. */
  async function execute(c: Claim, pending: RunState['pending'][string] | undefined): Promise<StepResult> {
    if (c.renderError) return c.renderError;
    const executor = executors[c.task.kind];
    if (!executor) return { ok: false, error: { code: 'NO_EXECUTOR' as StepError['code'], message: `no executor is configured for task kind '${c.task.kind}'`, retryable: false } };
    const controller = new AbortController();
    // A wait's timeout bounds the whole wait, which the executor checks; each of its attempts returns at once.
    const timeoutMs = c.task.kind === 'wait' ? config.defaultTimeoutMs : (c.task.timeoutMs ?? config.defaultTimeoutMs);
    let settle: (r: StepResult) => void = () => undefined;
    const aborted = new Promise<StepResult>((resolve) => (settle = resolve));
    const timer = setTimeout(() => {
      controller.abort(new Error('timeout'));
      settle({ ok: false, error: { code: 'TIMEOUT', message: `step '${c.task.id}' timed out after ${timeoutMs} ms` } });
    }, timeoutMs);
    const heartbeat = setInterval(() => {
      runs
        .renewLease(db, c.stepRowId, config.leaseMs)
        .then((status) => {
          if (status === null || !ACTIVE.includes(status)) {
            controller.abort(new Error('cancelled'));
            settle({ ok: false, error: { code: 'CANCELLED' as StepError['code'], message: `the run is ${status ?? 'no longer running this attempt'}`, retryable: false } });
          }
        })
        .catch((e: unknown) => logger.warn('lease renewal failed', { runId: c.run.id, stepId: c.task.id, err: messageOf(e) }));
    }, Math.max(100, Math.floor(config.leaseMs / 3)));
    try {
      const traceparent = (c.run.state as Partial<RunState> | null)?.trace?.traceparent;
      const attributes = { 'provisio.workflow': c.run.workflow_name, 'provisio.task_id': c.task.id, 'provisio.task_kind': c.task.kind, 'provisio.attempt': c.attempt };
      const run = inSpan(`workflow.step ${c.task.id}`, { parent: traceparent, attributes }, async (span) => {
        const r = await executor(c.task, c.input, builtinContext(c, controller.signal, pending));
        if (r.ok === false) failSpan(span, `${r.error.code}: ${r.error.message}`);
        return r;
      }).catch((e: unknown): StepResult => {
        const known = stepErrorOf(e);
        if (known) return known;
        return { ok: false, error: { code: 'EXECUTOR_CRASHED' as StepError['code'], message: `the executor threw: ${messageOf(e)}`, retryable: false } };
      });
      return await Promise.race([run, aborted]);
    } finally {
      clearTimeout(timer);
      clearInterval(heartbeat);
    }
  }

  /**
   * Records an attempt's outcome and routes the run on, in `tx`. `wake`: jobs this process's idle workers may take
   * were sent. `next`: the attempt this worker runs next (see `activate`), already claimed in `tx`.
   */
  async function finish(tx: Queryable, c: Claim, result: StepResult): Promise<Finished> {
    const none: Finished = { wake: false, next: null };
    const now = clock();
    const timing = { finishedAt: new Date(now), durationMs: Math.max(0, now - c.attemptStartedAtMs) };
    // The outcome as recorded while the run goes on; the run is locked and the attempt recorded in one statement.
    const outcome: runs.StepOutcome =
      result.ok === 'pending'
        ? { status: 'waiting', output: result.state ?? null, error: null, finishedAt: null, durationMs: null }
        : result.ok === true
          ? { status: 'succeeded', output: result.output ?? null, error: null, ...timing }
          : { status: 'failed', output: result.error.output, error: { code: result.error.code, message: result.error.message }, ...timing };
    const locked = await runs.lockRunAndFinishStep(tx, { runId: c.run.id, taskId: c.task.id, token: c.token, stepId: c.stepRowId }, outcome);
    if (!locked) return none;
    const { run, step } = locked;
    const state = normaliseState(run.state);
    const runActive = ACTIVE.includes(run.status) && state.active[c.task.id] === c.token;

    if (!step && runActive) return none; // superseded: the lease lapsed and another worker took the step up as a new attempt
    if (!step) {
      // Cancelled (or failed by a sibling) meanwhile: record what happened, route nothing.
      const recorded = await runs.finishStepIf(tx, c.stepRowId, {
        status: result.ok === true ? 'succeeded' : 'cancelled',
        output: result.ok === true ? result.output : result.ok === false ? result.error.output : undefined,
        error: result.ok === false ? { code: result.error.code, message: result.error.message } : result.ok === 'pending' ? { code: 'CANCELLED', message: `the run is ${run.status}` } : null,
        ...timing,
      });
      if (recorded) await hooks.stepFinished?.(tx, runs.toRunRecord(run), runs.toStepRecord(recorded));
      return none;
    }

    if (result.ok === 'pending') {
      const prev = state.pending[c.task.id];
      const wake = prev?.wake === true;
      state.pending[c.task.id] = { since: prev?.since ?? c.attemptStartedAtMs, state: result.state, ...(prev?.resume ? { resume: prev.resume } : {}) };
      state.active[c.task.id] = await dispatch(tx, run.id, c.task.id, wake ? 0 : Math.max(0, result.delayMs));
      // A run is waiting when every active task is waiting.
      const allWaiting = Object.keys(state.active).every((id) => state.pending[id] !== undefined);
      await runs.updateRun(tx, run.id, allWaiting ? { status: 'waiting', state } : { state });
      return { wake: wake || result.delayMs <= 0, next: null };
    }

    let runPatch: Parameters<typeof runs.updateRun>[2] = {};
    let dispatched = false;
    let kept: string | null = null;
    if (result.ok === true) {
      ({ kept, dispatched } = await activate(tx, run.id, state, completeTask(c.wf, state, c.task.id, 'succeeded', result.output ?? null)));
    } else {
      const { failures, firstStartedAt } = await runs.countFailures(tx, run.id, c.task.id);
      const decision = retryDecision(c.task.retry, result.error, failures, firstStartedAt?.getTime() ?? c.attemptStartedAtMs, now);
      if (decision.retry) {
        state.active[c.task.id] = await dispatch(tx, run.id, c.task.id, decision.delayMs);
        dispatched = decision.delayMs <= 0;
      } else if (c.task.failsRunOnError) {
        delete state.pending[c.task.id];
        state.done[c.task.id] = 'failed';
        state.steps[c.task.id] = { output: result.error.output ?? null, variables: {}, status: 'failed' };
        cutOff(state, c.task.id);
        runPatch = { status: 'failed', error: { code: result.error.code, message: result.error.message, stepId: c.task.id }, finished: new Date(now) };
      } else {
        ({ kept, dispatched } = await activate(tx, run.id, state, completeTask(c.wf, state, c.task.id, 'failed', result.error.output ?? null)));
      }
    }
    if (runPatch.status === undefined && Object.keys(state.active).length === 0) {
      runPatch = { status: 'succeeded', finished: new Date(now) };
    }
    // The kept task starts in this transaction: as a claim does, that makes the run running.
    if (kept !== null && runPatch.status === undefined && run.status !== 'running') runPatch.status = 'running';
    runPatch.state = state;
    let finalRow: RunRow;
    let next: Claim | null = null;
    const keptTask = kept === null ? undefined : c.wf.tasks[kept];
    if (keptTask) {
      // The run update and the kept task's attempt in one statement. The input is rendered beforehand from the state
      // as the database returns it (a JSON round trip), which is what a claim from a job would render it from.
      const keptAt = clock();
      const variables = templateVariables(run, normaliseState(JSON.parse(JSON.stringify(state)) as RunState));
      const { input, renderError } = prepareInput(keptTask, variables);
      const merged = await runs.updateRunAndInsertNextAttempt(tx, run.id, runPatch, {
        taskId: keptTask.id,
        kind: keptTask.kind,
        input: redact(input),
        startedAt: new Date(keptAt),
        leaseMs: config.leaseMs,
      });
      finalRow = merged.run;
      if (merged.attempt) {
        const token = state.active[keptTask.id] as string;
        next = { run: finalRow, wf: c.wf, task: keptTask, token, stepRowId: merged.attempt.id, attempt: merged.attempt.attempt, startedAtMs: keptAt, attemptStartedAtMs: keptAt, variables, input, renderError };
      } else {
        // An attempt of it is already running or waiting (not for a task that just became runnable, but the claim
        // path knows what to do with one): hand it to a job after all.
        state.active[keptTask.id] = await dispatch(tx, run.id, keptTask.id);
        finalRow = await runs.updateRun(tx, run.id, { state });
        dispatched = true;
      }
    } else {
      finalRow = await runs.updateRun(tx, run.id, runPatch);
    }
    await hooks.stepFinished?.(tx, runs.toRunRecord(finalRow), runs.toStepRecord(step));
    // Only when the ending sent jobs: waking every idle worker at each run's end cost each of them an empty fetch.
    if ((finalRow.status === 'succeeded' || finalRow.status === 'failed') && (await afterFinish(tx, finalRow))) dispatched = true;
    return { wake: dispatched, next };
  }

  /**
   * Puts the tasks a finished step made runnable in `state.active`. The first is kept for the worker that finished
   * the step: it claims the task's attempt in the same transaction and runs it next, so a step that follows another
   * costs one transaction instead of a job's two (claim, finish) and the job's own rows. Its token is one no job
   * carries. The others get a job each, as does every task once this process is stopping. Durability is the same
   * either way: the attempt row is committed, with its lease, before the attempt runs; if this worker dies, the
   * lease lapses and the sweeper dispatches the task again as a new attempt.
   */
  async function activate(tx: Queryable, runId: string, state: RunState, ready: string[]): Promise<{ kept: string | null; dispatched: boolean }> {
    let kept: string | null = null;
    let dispatched = false;
    for (const next of ready) {
      if (kept === null && !stopping) {
        kept = next;
        state.active[next] = randomUUID();
      } else {
        state.active[next] = await dispatch(tx, runId, next);
        dispatched = true;
      }
    }
    return { kept, dispatched };
  }

  /**
   * Takes one step job and runs it, then the attempts its finish kept for this worker; false when the queue had
   * none. The job is fetched inside the claim transaction and completed inside the finish transaction, so a step
   * from a job costs two commits, as a bare pg-boss job does (fetch, complete), and a claim that rolls back leaves
   * the job in the queue. A kept step costs one commit, its finish.
   */
  async function workOne(): Promise<boolean> {
    let jobId = '';
    const claimed: Claim | null | 'empty' = await db.transaction(async (tx) => {
      const [job] = await queue.fetch<StepJob>(tx, QueueName.WORKFLOW_STEP);
      if (!job) return 'empty' as const;
      jobId = job.id;
      const c = await claim(tx, job.data);
      // A stale job (finished step, superseded token, cancelled run): done with it.
      if (!c) await queue.complete(tx, QueueName.WORKFLOW_STEP, job.id);
      return c;
    });
    if (claimed === 'empty') return false;
    if (claimed === null) return true;
    const kept = await withLogContext({ jobId }, async () => {
      const pending = normaliseState(claimed.run.state).pending[claimed.task.id];
      const result = await execute(claimed, pending);
      const finished = await db.transaction(async (tx) => {
        const f = await finish(tx, claimed, result);
        await queue.complete(tx, QueueName.WORKFLOW_STEP, jobId);
        return f;
      });
      stepEnded(claimed, result);
      if (finished.wake) wakeWorkers();
      return finished.next;
    });
    await runKept(kept);
    return true;
  }

  /** Runs the attempts each finish kept for this worker, one after the other, each finished in one transaction. */
  async function runKept(first: Claim | null): Promise<void> {
    for (let c = first; c !== null; ) {
      const claimed = c;
      const result = await execute(claimed, undefined);
      const finished = await db.transaction((tx) => finish(tx, claimed, result));
      stepEnded(claimed, result);
      if (finished.wake) wakeWorkers();
      c = finished.next;
    }
  }

  async function workLoop(): Promise<void> {
    while (!stopping) {
      let worked = false;
      try {
        worked = await workOne();
      } catch (e) {
        // The claim rolled back (its job stays queued) or the finish failed (the lease lapses, the sweeper re-runs it).
        logger.error('workflow step worker error', { err: messageOf(e) });
        await idle(1000);
        continue;
      }
      if (!worked && !stopping) await idle(config.pollingIntervalSeconds * 1000);
    }
  }

  /** Lapsed leases: mark the attempt abandoned and dispatch the task again, each in its own transaction. */
  async function sweep(): Promise<void> {
    if (sweeping || stopping) return;
    sweeping = true;
    try {
      for (const s of await runs.selectLapsedSteps(db, 50)) {
        const redispatched = await db.transaction(async (tx) => {
          const run = await runs.selectRun(tx, s.run_id, true);
          const latest = await runs.selectLatestStep(tx, s.run_id, s.task_id);
          if (!run || !latest || latest.id !== s.id || latest.status !== 'running' || !latest.lease_expired) return false;
          await abandon(tx, latest);
          const state = normaliseState(run.state);
          if (!ACTIVE.includes(run.status) || state.active[s.task_id] === undefined) return false;
          state.active[s.task_id] = await dispatch(tx, run.id, s.task_id);
          await runs.updateRun(tx, run.id, { state });
          logger.warn('step attempt abandoned: lease lapsed; dispatched again', { runId: run.id, stepId: s.task_id, attempt: latest.attempt });
          return true;
        });
        if (redispatched) wakeWorkers();
      }
    } catch (e) {
      logger.error('workflow lease sweep failed', { err: messageOf(e) });
    } finally {
      sweeping = false;
    }
  }

  async function lookupWorkflow(name: string, version: number | undefined) {
    const wf = await store.selectWorkflow(db, name, version);
    if (!wf) return undefined;
    const info: { version: number; inputSchema?: Record<string, unknown> } = { version: wf.version };
    if (wf.document.inputSchema) info.inputSchema = wf.document.inputSchema;
    return info;
  }

  return {
    async saveWorkflow(doc, by, ctx = {}, also) {
      // Compiled before the transaction: the lookups query the database, which PGlite would serialise behind it.
      const result = await compileWorkflow(doc, { lookupWorkflow, ...options.compileContext, ...ctx });
      if (!result.ok) throw new WorkflowValidationError(result.errors);
      const name = result.workflow.name;
      const saved = await db.transaction(async (tx) => {
        await store.lockWorkflowName(tx, name);
        const version = await store.nextVersion(tx, name);
        const stored = await store.insertWorkflow(tx, name, version, { ...(doc as object), version } as StoredWorkflow['document'], by);
        await also?.(tx, stored);
        return stored;
      });
      return saved;
    },

    async getWorkflow(name, version) {
      const wf = await store.selectWorkflow(db, name, version);
      if (!wf) throw new WorkflowNotFoundError(name, version);
      return wf;
    },

    listWorkflows: () => store.selectWorkflowSummaries(db),
    listVersions: (name) => store.selectWorkflowVersions(db, name),
    setConcurrencyLimit: (name, limit, also) =>
      db.transaction(async (tx) => {
        await store.upsertLimit(tx, name, limit);
        await also?.(tx, undefined);
      }),
    getConcurrencyLimit: (name) => store.selectLimit(db, name),

    async startRun(tx, opts) {
      const row = await createRun(tx, opts);
      // The caller commits later; local workers are nudged shortly after instead of waiting for their next poll.
      if (!stopping) for (const ms of [25, 150]) setTimeout(wakeWorkers, ms).unref();
      return runs.toRunRecord(row);
    },

    async cancelRun(runId, also) {
      const record = await db.transaction(async (tx) => {
        const r = runs.toRunRecord(await cancelInTx(tx, runId));
        await also?.(tx, r);
        return r;
      });
      wakeWorkers();
      return record;
    },

    async rerunRun(runId, opts, also) {
      const record = await db.transaction(async (tx) => {
        const old = await runs.selectRun(tx, runId, false);
        if (!old) throw new RunNotFoundError(runId);
        if (old.status !== 'failed' && old.status !== 'cancelled') {
          throw new RunStateError(runId, old.status, `run ${runId} is ${old.status}; only a failed or cancelled run can be rerun`);
        }
        const start: StartRunOptions = { workflow: old.workflow_name, version: old.workflow_version, inputs: old.inputs, variables: old.variables, lockKey: old.lock_key };
        if (opts.createdBy !== undefined) start.createdBy = opts.createdBy;
        let preset: RunState | undefined;
        if (opts.from === 'failed') {
          const wf = await loadCompiled(tx, old.workflow_name, old.workflow_version);
          preset = resumeFromFailure(wf, normaliseState(old.state));
        }
        const r = runs.toRunRecord(await createRun(tx, start, { rerunOf: old.id }, preset));
        await also?.(tx, r);
        return r;
      });
      wakeWorkers();
      return record;
    },

    async resumeRun(runId, stepId, data, also) {
      const record = await db.transaction(async (tx) => {
        const run = await runs.selectRun(tx, runId, true);
        if (!run) throw new RunNotFoundError(runId);
        const wf = await loadCompiled(tx, run.workflow_name, run.workflow_version);
        const task = wf.tasks[stepId];
        if (!task || task.task.kind !== 'wait' || task.task.until !== 'resumed') {
          throw new RunStateError(runId, run.status, `run ${runId} has no wait task '${stepId}' that waits to be resumed`);
        }
        if (!(await wakeStep(tx, runId, stepId, { data: data ?? null }))) {
          throw new RunStateError(runId, run.status, `step '${stepId}' of run ${runId} is not waiting (the run is ${run.status})`);
        }
        const r = runs.toRunRecord((await runs.selectRun(tx, runId, false)) as RunRow);
        await also?.(tx, r);
        return r;
      });
      wakeWorkers();
      return record;
    },

    async getRun(runId) {
      const row = await runs.selectRun(db, runId, false);
      if (!row) throw new RunNotFoundError(runId);
      return { ...runs.toRunRecord(row), steps: await runs.selectSteps(db, runId) };
    },

    listRuns: (filter = {}) => runs.selectRuns(db, filter),

    async startWorkers(opts = {}) {
      if (!stopping) return;
      stopping = false;
      await queue.createQueue(QueueName.WORKFLOW_STEP);
      const teamSize = Math.max(1, opts.teamSize ?? 2);
      for (let i = 0; i < teamSize; i++) loops.push(workLoop());
      sweeper = setInterval(() => void sweep(), config.sweepIntervalMs);
      sweeper.unref();
    },

    async stop() {
      stopping = true;
      if (sweeper) clearInterval(sweeper);
      sweeper = null;
      wakeWorkers();
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, config.stopTimeoutMs)));
      await Promise.race([Promise.allSettled(loops.splice(0)), gaveUp]);
      clearTimeout(timer);
    },
  };
}

/**
 * A run ends with tasks still active (siblings of the failed step, or all of them on cancel): they are kept in
 * `queued`, so a rerun from the failed step runs them again; a finished run is never admitted, so nothing sends them.
 */
function cutOff(state: RunState, except?: string): void {
  const cut = Object.keys(state.active).filter((id) => id !== except);
  state.queued = [...new Set([...state.queued, ...cut])];
  state.active = {};
}

/**
 * The state a rerun from the failed step starts with: the old run's succeeded (and skipped) tasks stay done with
 * their outputs; tasks that failed, were active or had been reached but not finished run again.
 */
export function resumeFromFailure(wf: CompiledWorkflow, old: RunState): RunState {
  const state: RunState = { active: {}, done: {}, arrivals: {}, steps: {}, job: { ...old.job }, pending: {}, queued: [] };
  const queued = new Set<string>();
  for (const [id, how] of Object.entries(old.done)) {
    if (how === 'failed' && wf.tasks[id]?.failsRunOnError) {
      queued.add(id);
      continue;
    }
    state.done[id] = how;
    if (old.steps[id]) state.steps[id] = old.steps[id];
  }
  for (const id of [...Object.keys(old.active), ...old.queued]) queued.add(id);
  for (const [id, a] of Object.entries(old.arrivals)) if (!state.done[id] && !queued.has(id)) state.arrivals[id] = { taken: [...a.taken], dead: [...a.dead] };
  for (const id of queued) if (old.arrivals[id]) state.arrivals[id] = { taken: [...old.arrivals[id].taken], dead: [...old.arrivals[id].dead] };
  // A cancelled run that never started has nothing done and nothing active: run it from the start tasks.
  state.queued = queued.size > 0 ? [...queued] : Object.keys(state.done).length === 0 ? initialState(wf).ready : [];
  return state;
}

