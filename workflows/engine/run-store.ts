// SQL of the run aggregate: runs (with their progress state) and one row per step attempt.
import type { Queryable } from '../../adapter';
import type { RunState } from './graph';
import type { RunError, RunRecord, RunStatus, RunVariables, StepRecord, StepStatus } from './types';

export interface RunRow {
  id: string;
  workflow_name: string;
  workflow_version: number;
  status: RunStatus;
  inputs: Record<string, unknown>;
  variables: RunVariables;
  state: RunState;
  lock_key: string | null;
  error_code: string | null;
  error_message: string | null;
  error_step: string | null;
  created_by: string | null;
  created_at: Date | string;
  started_at: Date | string | null;
  finished_at: Date | string | null;
  parent_run_id: string | null;
  parent_step_id: string | null;
  child_index: number | null;
  rerun_of: string | null;
}

interface StepRow {
  id: number;
  run_id: string;
  task_id: string;
  kind: string;
  attempt: number;
  status: StepStatus;
  input: unknown;
  output: unknown;
  error_code: string | null;
  error_message: string | null;
  started_at: Date | string;
  finished_at: Date | string | null;
  duration_ms: number | null;
  idempotency_key: string;
}

const iso = (v: Date | string): string => (v instanceof Date ? v.toISOString() : new Date(v).toISOString());
const isoOrNull = (v: Date | string | null): string | null => (v === null ? null : iso(v));

export function toRunRecord(r: RunRow): RunRecord {
  const error: RunError | null = r.error_code ? { code: r.error_code, message: r.error_message ?? '', stepId: r.error_step } : null;
  return {
    id: r.id,
    workflow: r.workflow_name,
    version: r.workflow_version,
    status: r.status,
    inputs: r.inputs,
    variables: r.variables,
    lockKey: r.lock_key,
    error,
    createdBy: r.created_by,
    createdAt: iso(r.created_at),
    startedAt: isoOrNull(r.started_at),
    finishedAt: isoOrNull(r.finished_at),
    parentRunId: r.parent_run_id,
    parentStepId: r.parent_step_id,
    rerunOf: r.rerun_of,
    outputs: r.state?.steps ?? {},
  };
}

export function toStepRecord(r: StepRow): StepRecord {
  return {
    id: r.id,
    runId: r.run_id,
    stepId: r.task_id,
    kind: r.kind,
    attempt: r.attempt,
    status: r.status,
    input: r.input,
    output: r.output,
    error: r.error_code ? { code: r.error_code, message: r.error_message ?? '' } : null,
    startedAt: iso(r.started_at),
    finishedAt: isoOrNull(r.finished_at),
    durationMs: r.duration_ms,
    idempotencyKey: r.idempotency_key,
  };
}

const RUN_COLUMNS = `id, workflow_name, workflow_version, status, inputs, variables, state, lock_key, error_code, error_message,
  error_step, created_by, created_at, started_at, finished_at, parent_run_id, parent_step_id, child_index, rerun_of`;
const STEP_COLUMNS = `id, run_id, task_id, kind, attempt, status, input, output, error_code, error_message, started_at, finished_at,
  duration_ms, idempotency_key`;

export interface NewRun {
  id: string;
  workflow: string;
  version: number;
  inputs: Record<string, unknown>;
  variables: RunVariables;
  state: RunState;
  lockKey: string | null;
  createdBy: string | null;
  parentRunId?: string | null;
  parentStepId?: string | null;
  childIndex?: number | null;
  rerunOf?: string | null;
}

export async function insertRun(q: Queryable, run: NewRun): Promise<RunRow> {
  const { rows } = await q.query<RunRow>(
    `INSERT INTO workflow_runs (id, workflow_name, workflow_version, status, inputs, variables, state, lock_key, created_by,
       parent_run_id, parent_step_id, child_index, rerun_of)
     VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12)
     RETURNING ${RUN_COLUMNS}`,
    [
      run.id,
      run.workflow,
      run.version,
      JSON.stringify(run.inputs),
      JSON.stringify(run.variables),
      JSON.stringify(run.state),
      run.lockKey,
      run.createdBy,
      run.parentRunId ?? null,
      run.parentStepId ?? null,
      run.childIndex ?? null,
      run.rerunOf ?? null,
    ],
  );
  return rows[0] as RunRow;
}

/** A child run already started by an earlier attempt of the same child task, if any. */
export async function selectChildRuns(q: Queryable, parentRunId: string, parentStepId: string): Promise<RunRow[]> {
  const { rows } = await q.query<RunRow>(
    `SELECT ${RUN_COLUMNS} FROM workflow_runs WHERE parent_run_id = $1 AND parent_step_id = $2 ORDER BY child_index`,
    [parentRunId, parentStepId],
  );
  return rows;
}

export async function selectRun(q: Queryable, id: string, forUpdate = false): Promise<RunRow | null> {
  const { rows } = await q.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM workflow_runs WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] ?? null;
}

export type RunPatch = { status?: RunStatus; state?: RunState; error?: RunError | null; started?: Date; finished?: Date };

// The run update of `updateRun` and `updateRunAndInsertNextAttempt`: parameters $1–$9 are `runPatchParams`.
const UPDATE_RUN_SQL = `UPDATE workflow_runs SET
       status = COALESCE($2, status),
       state = COALESCE($3::jsonb, state),
       error_code = CASE WHEN $4::boolean THEN $5 ELSE error_code END,
       error_message = CASE WHEN $4::boolean THEN $6 ELSE error_message END,
       error_step = CASE WHEN $4::boolean THEN $7 ELSE error_step END,
       started_at = COALESCE(started_at, $8),
       finished_at = COALESCE($9, finished_at)
     WHERE id = $1 RETURNING ${RUN_COLUMNS}`;

const runPatchParams = (id: string, patch: RunPatch): unknown[] => [
  id,
  patch.status ?? null,
  patch.state ? JSON.stringify(patch.state) : null,
  patch.error !== undefined,
  patch.error?.code ?? null,
  patch.error?.message ?? null,
  patch.error?.stepId ?? null,
  patch.started ?? null,
  patch.finished ?? null,
];

export async function updateRun(q: Queryable, id: string, patch: RunPatch): Promise<RunRow> {
  const { rows } = await q.query<RunRow>(UPDATE_RUN_SQL, runPatchParams(id, patch));
  return rows[0] as RunRow;
}

/**
 * `updateRun` and `insertNextAttempt` in one statement (one round trip instead of two), for a finish that keeps the
 * next task for its worker: the run row updated (the caller holds its lock), then attempt max+1 of `next.taskId`
 * inserted, running, with a lease, only when the updated run is `running` and no attempt of the task is running or
 * waiting. `attempt` null when nothing was inserted (the caller hands the task to a job instead).
 */
export async function updateRunAndInsertNextAttempt(
  q: Queryable,
  id: string,
  patch: RunPatch,
  next: Omit<NewStep, 'runId' | 'attempt' | 'idempotencyKey' | 'status'>,
): Promise<{ run: RunRow; attempt: { id: number; attempt: number } | null }> {
  // The INSERT reads the UPDATE's RETURNING, so it sees the run as updated; both see workflow_steps as it was
  // before the statement, which the UPDATE does not touch, so the NOT EXISTS and max(attempt) hold as in two statements.
  const { rows } = await q.query<RunRow & { next_attempt: { id: number; attempt: number } | null }>(
    `WITH r AS (${UPDATE_RUN_SQL}),
     n AS (SELECT COALESCE(max(attempt), 0) + 1 AS attempt FROM workflow_steps WHERE run_id = $1 AND task_id = $10),
     s AS (
       INSERT INTO workflow_steps (run_id, task_id, kind, attempt, status, input, started_at, idempotency_key, lease_until)
       SELECT r.id, $10, $11, n.attempt, 'running', $12, $13, r.id::text || ':' || $10 || ':' || n.attempt,
              now() + make_interval(secs => $14::double precision / 1000)
         FROM r, n
        WHERE r.status = 'running'
          AND NOT EXISTS (SELECT 1 FROM workflow_steps WHERE run_id = $1 AND task_id = $10 AND status IN ('running', 'waiting'))
       RETURNING id, attempt)
     SELECT r.*, (SELECT jsonb_build_object('id', s.id, 'attempt', s.attempt) FROM s) AS next_attempt FROM r`,
    [
      ...runPatchParams(id, patch),
      next.taskId,
      next.kind,
      JSON.stringify(next.input ?? null),
      next.startedAt,
      next.leaseMs,
    ],
  );
  const row = rows[0];
  if (!row) throw new Error(`workflow run ${id} not found while finishing a step`);
  const { next_attempt: attempt, ...run } = row;
  return { run, attempt: attempt === null ? null : { id: Number(attempt.id), attempt: Number(attempt.attempt) } };
}

/** Runs holding `lockKey` or counting against `workflow`'s limit (running or waiting). */
export async function countActive(q: Queryable, by: { lockKey?: string; workflow?: string }): Promise<number> {
  const { rows } = by.lockKey !== undefined
    ? await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM workflow_runs WHERE lock_key = $1 AND status IN ('running', 'waiting')`, [by.lockKey])
    : await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM workflow_runs WHERE workflow_name = $1 AND status IN ('running', 'waiting')`, [by.workflow]);
  return rows[0]?.n ?? 0;
}

/** Whether a pending run created before `createdAt` waits for the same lock (first come, first served). */
export async function hasOlderPending(q: Queryable, lockKey: string, runId: string): Promise<boolean> {
  const { rowCount } = await q.query(
    `SELECT 1 FROM workflow_runs p, workflow_runs me
      WHERE me.id = $2 AND p.lock_key = $1 AND p.status = 'pending' AND p.id <> me.id
        AND (p.created_at, p.id) < (me.created_at, me.id) LIMIT 1`,
    [lockKey, runId],
  );
  return rowCount > 0;
}

/** Pending runs that may be admitted after a run with this lock key / workflow finished, oldest first. */
export async function selectPendingCandidates(q: Queryable, lockKey: string | null, workflow: string): Promise<RunRow[]> {
  const { rows } = await q.query<RunRow>(
    `SELECT ${RUN_COLUMNS} FROM workflow_runs
      WHERE status = 'pending' AND ((lock_key IS NOT NULL AND lock_key = $1) OR workflow_name = $2)
      ORDER BY created_at, id LIMIT 50 FOR UPDATE`,
    [lockKey, workflow],
  );
  return rows;
}

export interface NewStep {
  runId: string;
  taskId: string;
  kind: string;
  attempt: number;
  status: StepStatus;
  input: unknown;
  startedAt: Date;
  idempotencyKey: string;
  leaseMs: number;
}

export async function insertStep(q: Queryable, s: NewStep): Promise<StepRow> {
  const { rows } = await q.query<StepRow>(
    `INSERT INTO workflow_steps (run_id, task_id, kind, attempt, status, input, started_at, idempotency_key, lease_until)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9::double precision / 1000))
     RETURNING ${STEP_COLUMNS}`,
    [s.runId, s.taskId, s.kind, s.attempt, s.status, JSON.stringify(s.input ?? null), s.startedAt, s.idempotencyKey, s.leaseMs],
  );
  return rows[0] as StepRow;
}

/**
 * The common case in one statement: attempt max+1 of a task, inserted only when no attempt of it is running or
 * waiting (those need a look first: a live lease, a lapsed one, a pending attempt to take up). Null otherwise.
 */
export async function insertNextAttempt(q: Queryable, s: Omit<NewStep, 'attempt' | 'idempotencyKey' | 'status'>): Promise<{ id: number; attempt: number } | null> {
  const { rows } = await q.query<{ id: number; attempt: number }>(
    `WITH n AS (SELECT COALESCE(max(attempt), 0) + 1 AS attempt FROM workflow_steps WHERE run_id = $1 AND task_id = $2)
     INSERT INTO workflow_steps (run_id, task_id, kind, attempt, status, input, started_at, idempotency_key, lease_until)
     SELECT $1, $2, $3, n.attempt, 'running', $4, $5, $1::text || ':' || $2 || ':' || n.attempt,
            now() + make_interval(secs => $6::double precision / 1000)
       FROM n
      WHERE NOT EXISTS (SELECT 1 FROM workflow_steps WHERE run_id = $1 AND task_id = $2 AND status IN ('running', 'waiting'))
     RETURNING id, attempt`,
    [s.runId, s.taskId, s.kind, JSON.stringify(s.input ?? null), s.startedAt, s.leaseMs],
  );
  return rows[0] ?? null;
}

/** The latest attempt of a task in a run, locked. */
export async function selectLatestStep(q: Queryable, runId: string, taskId: string): Promise<(StepRow & { lease_expired: boolean }) | null> {
  const { rows } = await q.query<StepRow & { lease_expired: boolean }>(
    `SELECT ${STEP_COLUMNS}, (lease_until IS NULL OR lease_until < now()) AS lease_expired
       FROM workflow_steps WHERE run_id = $1 AND task_id = $2 ORDER BY attempt DESC LIMIT 1 FOR UPDATE`,
    [runId, taskId],
  );
  return rows[0] ?? null;
}

/** Failed attempts of a task in a run (abandoned ones do not count against the retry policy). */
export async function countFailures(q: Queryable, runId: string, taskId: string): Promise<{ failures: number; firstStartedAt: Date | null }> {
  const { rows } = await q.query<{ failures: number; first: Date | string | null }>(
    `SELECT count(*) FILTER (WHERE status = 'failed')::int AS failures, min(started_at) AS first
       FROM workflow_steps WHERE run_id = $1 AND task_id = $2`,
    [runId, taskId],
  );
  const first = rows[0]?.first ?? null;
  return { failures: rows[0]?.failures ?? 0, firstStartedAt: first === null ? null : new Date(first) };
}

export interface StepOutcome {
  status: StepStatus;
  output?: unknown;
  error?: { code: string; message: string } | null;
  finishedAt: Date | null;
  durationMs: number | null;
}

export async function finishStep(q: Queryable, id: number, f: StepOutcome): Promise<StepRow> {
  return (await finishStepIf(q, id, f, false)) as StepRow;
}

/**
 * Records an attempt's outcome; with `onlyRunning`, only while it is still running (null when it was abandoned
 * meanwhile: its lease lapsed and the step was taken up again).
 */
export async function finishStepIf(q: Queryable, id: number, f: StepOutcome, onlyRunning = true): Promise<StepRow | null> {
  const { rows } = await q.query<StepRow>(
    `UPDATE workflow_steps SET status = $2, output = COALESCE($3::jsonb, output), error_code = $4, error_message = $5,
       finished_at = $6, duration_ms = $7, lease_until = NULL
     WHERE id = $1${onlyRunning ? ` AND status = 'running'` : ''} RETURNING ${STEP_COLUMNS}`,
    [id, f.status, f.output === undefined ? null : JSON.stringify(f.output), f.error?.code ?? null, f.error?.message ?? null, f.finishedAt, f.durationMs],
  );
  return rows[0] ?? null;
}

/**
 * The start of an attempt's finish in one statement (one round trip instead of two): the run locked, as
 * `selectRun(…, true)` does, and the outcome recorded only while the run is active, the task's current token is
 * `token` and the attempt is still running. Null when the run is gone; `step` null when the outcome was not recorded
 * (the caller tells a run that stopped from an attempt another worker took over by the run it got back).
 */
export async function lockRunAndFinishStep(
  q: Queryable,
  at: { runId: string; taskId: string; token: string; stepId: number },
  f: StepOutcome,
): Promise<{ run: RunRow; step: StepRow | null } | null> {
  const { rows } = await q.query<RunRow & { finished_step: StepRow | null }>(
    `WITH r AS (SELECT ${RUN_COLUMNS} FROM workflow_runs WHERE id = $1 FOR UPDATE),
          s AS (UPDATE workflow_steps SET status = $5, output = COALESCE($6::jsonb, output), error_code = $7, error_message = $8,
                  finished_at = $9, duration_ms = $10, lease_until = NULL
                 WHERE id = $4 AND status = 'running'
                   AND EXISTS (SELECT 1 FROM r WHERE r.status IN ('running', 'waiting') AND r.state -> 'active' ->> $2::text = $3::text)
                RETURNING ${STEP_COLUMNS})
     SELECT r.*, (SELECT to_jsonb(s) FROM s) AS finished_step FROM r`,
    [at.runId, at.taskId, at.token, at.stepId, f.status, f.output === undefined ? null : JSON.stringify(f.output), f.error?.code ?? null, f.error?.message ?? null, f.finishedAt, f.durationMs],
  );
  const row = rows[0];
  if (!row) return null;
  const { finished_step: step, ...run } = row;
  return { run, step };
}

/** Takes a waiting attempt up again (poll/wait/child re-enqueued): running, with a fresh lease. */
export async function resumeStep(q: Queryable, id: number, leaseMs: number): Promise<StepRow> {
  const { rows } = await q.query<StepRow>(
    `UPDATE workflow_steps SET status = 'running', lease_until = now() + make_interval(secs => $2::double precision / 1000)
      WHERE id = $1 RETURNING ${STEP_COLUMNS}`,
    [id, leaseMs],
  );
  return rows[0] as StepRow;
}

/** Renews the lease of a running attempt; returns its run's status, or null when the attempt is no longer running. */
export async function renewLease(q: Queryable, id: number, leaseMs: number): Promise<RunStatus | null> {
  const { rows } = await q.query<{ status: RunStatus }>(
    `UPDATE workflow_steps s SET lease_until = now() + make_interval(secs => $2::double precision / 1000)
       FROM workflow_runs r WHERE s.id = $1 AND s.status = 'running' AND r.id = s.run_id
     RETURNING r.status`,
    [id, leaseMs],
  );
  return rows[0]?.status ?? null;
}

/** Running attempts whose worker stopped renewing the lease. */
export async function selectLapsedSteps(q: Queryable, limit: number): Promise<{ id: number; run_id: string; task_id: string }[]> {
  const { rows } = await q.query<{ id: number; run_id: string; task_id: string }>(
    `SELECT id, run_id, task_id FROM workflow_steps WHERE status = 'running' AND lease_until < now() ORDER BY lease_until LIMIT $1`,
    [limit],
  );
  return rows;
}

export async function selectSteps(q: Queryable, runId: string): Promise<StepRecord[]> {
  const { rows } = await q.query<StepRow>(`SELECT ${STEP_COLUMNS} FROM workflow_steps WHERE run_id = $1 ORDER BY id`, [runId]);
  return rows.map(toStepRecord);
}

export async function selectRunIdsByParent(q: Queryable, parentRunId: string): Promise<string[]> {
  const { rows } = await q.query<{ id: string }>(
    `SELECT id FROM workflow_runs WHERE parent_run_id = $1 AND status IN ('pending', 'running', 'waiting')`,
    [parentRunId],
  );
  return rows.map((r) => r.id);
}

export interface RunFilter {
  workflow?: string;
  status?: RunStatus;
  limit?: number;
}

export async function selectRuns(q: Queryable, f: RunFilter): Promise<RunRecord[]> {
  const { rows } = await q.query<RunRow>(
    `SELECT ${RUN_COLUMNS} FROM workflow_runs
      WHERE ($1::text IS NULL OR workflow_name = $1) AND ($2::text IS NULL OR status = $2)
      ORDER BY created_at DESC, id DESC LIMIT $3`,
    [f.workflow ?? null, f.status ?? null, f.limit ?? 100],
  );
  return rows.map(toRunRecord);
}
