// The contract between the engine and the task executors: what one attempt of one step gets, and what it returns.
// The engine owns durability (records, retries, timeouts, re-enqueueing); an executor only performs one attempt.
import type { Logger } from '../../adapter';
import type { CompiledTask, StepErrorCode } from '../document';
import type { TemplateVariables } from '../templating';

/** What an executor gets for one attempt of one step. */
export interface StepContext {
  runId: string;
  stepId: string; // the task id in the workflow
  attempt: number; // 1-based
  /** Sent by integration and webhook calls as the `Idempotency-Key` header: `${runId}:${stepId}:${attempt}`. */
  idempotencyKey: string;
  /** Aborted when the attempt times out or the run is cancelled. */
  signal: AbortSignal;
  logger: Logger;
  /** The run's variables (order, asset, params, inputs, steps outputs, job vars) for executors that need more than `input`. */
  variables: TemplateVariables;
  /** ms since epoch; injectable clock. */
  now(): number;
}

export interface StepError {
  code: StepErrorCode;
  message: string;
  /** Overrides the policy's retryableErrors when set (e.g. a 4xx that must never be retried). */
  retryable?: boolean;
  /** Whatever the task produced before failing (e.g. the envelope of a non-accepted status). */
  output?: unknown;
}

export type StepResult =
  | { ok: true; output: unknown }
  | { ok: false; error: StepError }
  /** poll / wait: not done yet; the engine re-enqueues the step after `delayMs` without holding a worker. */
  | { ok: 'pending'; delayMs: number; state?: unknown };

/** `input` is the task's `incoming` variables already rendered against the run's variables. */
export type TaskExecutor = (task: CompiledTask, input: Record<string, unknown>, ctx: StepContext) => Promise<StepResult>;

/** Executors by task kind; the engine is constructed with one of these. */
export type ExecutorRegistry = Partial<Record<CompiledTask['kind'], TaskExecutor>>;
