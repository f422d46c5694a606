// The workflows room: workflow documents (format, schema, compiler, import/export), templating, the durable engine,
// the task executors and the cron schedules. What the server and the tests need is named here; the rest stays inside.

// Documents.
export {
  DEFAULT_RETRYABLE_ERRORS,
  exportWorkflow,
  importItentialWorkflow,
  SECRET_REF_PATTERN,
  TASK_KIND_SPECS,
  TASK_KINDS,
  WorkflowFileError,
  WorkflowValidationError,
} from './document';
export type {
  CompileContext,
  CompiledTask,
  DirectoryOperation,
  IntegrationInfo,
  IntegrationTask,
  ItentialImportResult,
  JsonSchema,
  WorkflowIssue,
  WorkflowTask,
} from './document';

// Templating.
export { MissingVariableError, TemplateSyntaxError } from './templating';
export type { TemplateErrorCode, TemplateVariables } from './templating';

// The engine.
export { ConcurrencyLimitError, createWorkflowEngine, RunInputError, RunNotFoundError, RunStateError, WorkflowNotFoundError } from './engine';
export type {
  EngineConfig,
  EngineErrorCode,
  EngineHooks,
  ExecutorRegistry,
  RunRecord,
  RunStatus,
  RunWithSteps,
  StepContext,
  StepRecord,
  StepResult,
  StoredWorkflow,
  TaskExecutor,
  WorkflowEngine,
} from './engine';

// Task executors.
export {
  createDirectoryExecutor,
  createWinrmExecutor,
  createIntegrationExecutor,
  createScriptExecutor,
  createScriptModuleVersion,
  createWebhookExecutor,
  getScriptModule,
  listScriptModules,
  listScriptModuleVersions,
  ScriptModuleInputError,
  scriptModuleExists,
  signWebhookBody,
} from './executors';
export type { ScriptModule } from './executors';

// Cron schedules.
export {
  createSchedule,
  createScheduler,
  deleteSchedule,
  getSchedule,
  listScheduleFires,
  listSchedules,
  ScheduleConflictError,
  ScheduleInputError,
  ScheduleNotFoundError,
  startScheduler,
  triggerSchedule,
  updateSchedule,
} from './schedules';
export type { Schedule, ScheduleErrorCode, ScheduleFire, ScheduleInput, SchedulePatch, Scheduler, TickReport } from './schedules';
