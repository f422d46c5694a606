// The durable workflow engine: stored workflow versions, runs on pg-boss (step jobs; a step that follows another runs
// in the worker that finished that one), per-asset locks and concurrency limits, and the built-in executors
// (evaluate, transform, wait, child, poll).
export { createWorkflowEngine, DEFAULT_ENGINE_CONFIG, resumeFromFailure } from './engine';
export type { AlsoInTransaction, EngineConfig, RerunOptions, WorkflowEngine, WorkflowEngineOptions } from './engine';
export type { ExecutorRegistry, StepContext, StepError, StepResult, TaskExecutor } from './executor';
export { ConcurrencyLimitError, EngineError, RunInputError, RunNotFoundError, RunStateError, WorkflowNotFoundError } from './errors';
export type { EngineErrorCode } from './errors';
export { ACTIVE_RUN_STATUSES, FINISHED_RUN_STATUSES, RUN_STATUSES, STEP_STATUSES } from './types';
export type {
  ConcurrencyLimit,
  EngineHooks,
  EngineStepErrorCode,
  RunError,
  RunRecord,
  RunStatus,
  RunVariables,
  RunWithSteps,
  StartRunOptions,
  StepRecord,
  StepStatus,
  StoredWorkflow,
  WorkflowSummary,
} from './types';
export type { RunFilter } from './run-store';
export { BUILTIN_EXECUTORS, childExecutor, evaluateExecutor, pollExecutor, transformExecutor, waitExecutor } from './builtins';
export type { BuiltinContext, BuiltinExecutor, ChildRunInfo } from './builtins';
export { completeTask, initialState, retryDecision, retryDelayMs } from './graph';
export type { PendingState, RunState } from './graph';
