/**
 * Errors the engine's commands throw. Each has a stable `code` and the HTTP status a caller maps it to, and carries
 * the data the caller needs (no parsing of messages). A workflow document that does not compile is the document
 * layer's `WorkflowValidationError` (code WORKFLOW_INVALID, 422) with every issue.
 */
export type EngineErrorCode = 'WORKFLOW_NOT_FOUND' | 'RUN_NOT_FOUND' | 'RUN_STATE_CONFLICT' | 'WORKFLOW_CONCURRENCY_LIMIT' | 'RUN_INPUT_INVALID';

export abstract class EngineError extends Error {
  abstract readonly code: EngineErrorCode;
  abstract readonly status: number;
}

/** Thrown when no stored workflow has that name (or that version). */
export class WorkflowNotFoundError extends EngineError {
  readonly code = 'WORKFLOW_NOT_FOUND' as const;
  readonly status = 404;
  constructor(
    readonly workflow: string,
    readonly version: number | undefined,
  ) {
    super(`workflow '${workflow}'${version !== undefined ? ` version ${version}` : ''} does not exist`);
    this.name = 'WorkflowNotFoundError';
  }
}

/** Thrown when no run has that id. */
export class RunNotFoundError extends EngineError {
  readonly code = 'RUN_NOT_FOUND' as const;
  readonly status = 404;
  constructor(readonly runId: string) {
    super(`run '${runId}' does not exist`);
    this.name = 'RunNotFoundError';
  }
}

/** Thrown when a command does not fit the run's status: cancel a finished run, rerun one that did not fail, resume a step that is not waiting. */
export class RunStateError extends EngineError {
  readonly code = 'RUN_STATE_CONFLICT' as const;
  readonly status = 409;
  constructor(
    readonly runId: string,
    readonly runStatus: string,
    message: string,
  ) {
    super(message);
    this.name = 'RunStateError';
  }
}

/** Thrown by startRun when the workflow's concurrency limit is reached and its behaviour is `reject`. */
export class ConcurrencyLimitError extends EngineError {
  readonly code = 'WORKFLOW_CONCURRENCY_LIMIT' as const;
  readonly status = 429;
  constructor(
    readonly workflow: string,
    readonly limit: number,
  ) {
    super(`workflow '${workflow}' already has ${limit} active run(s), its limit`);
    this.name = 'ConcurrencyLimitError';
  }
}

/** Thrown by startRun (and a child task's start) when the inputs do not satisfy the pinned version's `inputSchema`. */
export class RunInputError extends EngineError {
  readonly code = 'RUN_INPUT_INVALID' as const;
  readonly status = 422;
  constructor(
    readonly workflow: string,
    readonly version: number,
    /** JSON pointer into the inputs, e.g. `/group`; empty for the inputs as a whole. */
    readonly field: string,
    readonly reason: string,
  ) {
    super(`inputs of workflow '${workflow}' version ${version}: ${field || '(inputs)'} ${reason}`);
    this.name = 'RunInputError';
  }
}
