import type { Queryable } from '../../adapter';
import type { StepErrorCode, WorkflowDocument } from '../document';
import type { StepVariables } from '../templating';

export const RUN_STATUSES = ['pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const ACTIVE_RUN_STATUSES: readonly RunStatus[] = ['running', 'waiting'];
export const FINISHED_RUN_STATUSES: readonly RunStatus[] = ['succeeded', 'failed', 'cancelled'];

/** abandoned: its worker was lost mid-attempt (crash, SIGKILL); the step ran again as a new attempt. */
export const STEP_STATUSES = ['running', 'waiting', 'succeeded', 'failed', 'abandoned', 'cancelled'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

/** Error codes of a run or step besides the task kinds' StepErrorCode. */
export type EngineStepErrorCode = StepErrorCode | 'WORKER_LOST' | 'CANCELLED' | 'NO_EXECUTOR' | 'EXECUTOR_CRASHED';

export interface StoredWorkflow {
  name: string;
  version: number;
  document: WorkflowDocument;
  createdAt: string;
  createdBy: string;
}

export interface WorkflowSummary {
  name: string;
  latestVersion: number;
  description: string;
  updatedAt: string;
}

export interface StepRecord {
  id: number;
  runId: string;
  /** The task id in the workflow. */
  stepId: string;
  kind: string;
  attempt: number;
  status: StepStatus;
  /** The rendered input, secrets redacted. */
  input: unknown;
  output: unknown;
  error: { code: string; message: string } | null;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  idempotencyKey: string;
}

export interface RunError {
  code: string;
  message: string;
  /** The task whose failure failed the run; null when the run failed outside a step. */
  stepId: string | null;
}

export interface RunRecord {
  id: string;
  workflow: string;
  version: number;
  status: RunStatus;
  inputs: Record<string, unknown>;
  variables: RunVariables;
  lockKey: string | null;
  error: RunError | null;
  createdBy: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  parentRunId: string | null;
  parentStepId: string | null;
  rerunOf: string | null;
  /** Finished tasks' outputs and outgoing variables (what `{{steps.*}}` and `$var.*` read). */
  outputs: Record<string, StepVariables>;
}

export interface RunWithSteps extends RunRecord {
  /** Every attempt of every step, in the order they started. */
  steps: StepRecord[];
}

/** What templates read besides inputs and step outputs: given by whoever starts the run (the order domain). */
export interface RunVariables {
  order?: Record<string, unknown>;
  asset?: Record<string, unknown>;
  params?: Record<string, unknown>;
}

export interface StartRunOptions {
  workflow: string;
  /** Absent: the latest version; the run pins it. */
  version?: number;
  inputs?: Record<string, unknown>;
  variables?: RunVariables;
  /** Runs with the same key (the asset) never execute at once; a later one stays pending until the holder finishes. */
  lockKey?: string | null;
  /** Attribution, e.g. `system:order-provision` or `admin:<token>`. */
  createdBy?: string;
}

export interface ConcurrencyLimit {
  /** Runs running or waiting at once, across versions. */
  maxActive: number;
  /** `queue`: a further run stays pending until one finishes; `reject`: startRun throws ConcurrencyLimitError. */
  onLimit: 'queue' | 'reject';
}

/**
 * Told to the owner of runs (the order domain) inside the engine's own transaction, so what it writes commits
 * exactly with the run's state. A hook that throws rolls the engine's change back (and the job is retried).
 */
export interface EngineHooks {
  runStarted?(tx: Queryable, run: RunRecord): Promise<void>;
  stepFinished?(tx: Queryable, run: RunRecord, step: StepRecord): Promise<void>;
  runSucceeded?(tx: Queryable, run: RunRecord): Promise<void>;
  runFailed?(tx: Queryable, run: RunRecord, error: RunError): Promise<void>;
  runCancelled?(tx: Queryable, run: RunRecord): Promise<void>;
}
