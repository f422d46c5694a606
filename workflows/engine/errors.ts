import { CodedError } from '../../adapter';

/**
 * Errors the engine's commands throw. Each has a stable `code` and carries the data a caller needs (no parsing of
 * messages); none knows HTTP: `server/errors.ts` decides each code's status. A workflow document that does not
 * compile is the document layer's `WorkflowValidationError` (code WORKFLOW_INVALID) with every issue.
 */
export type EngineErrorCode = 'WORKFLOW_NOT_FOUND' | 'RUN_NOT_FOUND' | 'RUN_STATE_CONFLICT' | 'WORKFLOW_CONCURRENCY_LIMIT' | 'RUN_INPUT_INVALID';

export abstract class EngineError<C extends EngineErrorCode = EngineErrorCode> extends CodedError<C> {}

/** Thrown when no stored workflow has that name (or that version). */
export class WorkflowNotFoundError extends EngineError<'WORKFLOW_NOT_FOUND'> {
  constructor(
    readonly workflow: string,
    readonly version: number | undefined,
  ) {
    super('WORKFLOW_NOT_FOUND', `workflow '${workflow}'${version !== undefined ? ` version ${version}` : ''} does not exist`);
    this.name = 'WorkflowNotFoundError';
  }
}

/** Thrown when no run has that id. */
export class RunNotFoundError extends EngineError<'RUN_NOT_FOUND'> {
  constructor(readonly runId: string) {
    super('RUN_NOT_FOUND', `run '${runId}' does not exist`);
    this.name = 'RunNotFoundError';
  }
}

/** Thrown when a command does not fit the run's status: cancel a finished run, rerun one that did not fail, resume a step that is not waiting. */
export class RunStateError extends EngineError<'RUN_STATE_CONFLICT'> {
  constructor(
    readonly runId: string,
    readonly runStatus: string,
    message: string,
  ) {
    super('RUN_STATE_CONFLICT', message);
    this.name = 'RunStateError';
  }
}

/** Thrown by startRun (and so by a rerun or a schedule's fire) when the workflow's concurrency limit is reached and its behaviour is `reject`. */
export class ConcurrencyLimitError extends EngineError<'WORKFLOW_CONCURRENCY_LIMIT'> {
  constructor(
    readonly workflow: string,
    readonly limit: number,
  ) {
    super('WORKFLOW_CONCURRENCY_LIMIT', `workflow '${workflow}' already has ${limit} active run(s), its limit`);
    this.name = 'ConcurrencyLimitError';
  }
}

/** Thrown by startRun (and a child task's start) when the inputs do not satisfy the pinned version's `inputSchema`. */
export class RunInputError extends EngineError<'RUN_INPUT_INVALID'> {
  constructor(
    readonly workflow: string,
    readonly version: number,
    /** JSON pointer into the inputs, e.g. `/group`; empty for the inputs as a whole. */
    readonly field: string,
    readonly reason: string,
  ) {
    super('RUN_INPUT_INVALID', `inputs of workflow '${workflow}' version ${version}: ${field || '(inputs)'} ${reason}`);
    this.name = 'RunInputError';
  }
}
