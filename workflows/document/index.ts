// Workflow documents: the JSON format runbooks are written in (close to Itential's), its JSON Schema, the compiler
// that checks a document and normalises it into the graph the engine runs, the Itential importer, and stable export.
// Pure: no database, no I/O; what the outside world knows comes in through CompileContext callbacks.
export {
  CONDITION_OPERATORS,
  DIRECTORY_OPERATIONS,
  RESERVED_TASK_IDS,
  STEP_ERROR_CODES,
  TASK_KINDS,
  WINRM_ACTIONS,
  WORKFLOW_END,
  WORKFLOW_START,
  isStepsDocument,
} from './types';
export type {
  ChildTask,
  Condition,
  ConditionOperator,
  ConditionSet,
  DirectoryOperation,
  DirectoryTask,
  Duration,
  EvaluateTask,
  GraphWorkflowDocument,
  IntegrationTask,
  NodeLocation,
  OutgoingVariable,
  PollProbe,
  PollTask,
  RetryPolicy,
  ScriptTask,
  StepErrorCode,
  StepsWorkflowDocument,
  TaskCommon,
  TaskKind,
  TransformTask,
  Transition,
  Transitions,
  WaitTask,
  WebhookTask,
  WinrmAction,
  WinrmTask,
  WorkflowDocument,
  WorkflowStep,
  WorkflowTask,
} from './types';
export { SECRET_REF_PATTERN, WORKFLOW_DOCUMENT_SCHEMA } from './schema';
export { TASK_KIND_SPECS, DIRECTORY_OPERATION_SCHEMAS, WINRM_ACTION_SCHEMAS, WEBHOOK_PAYLOAD_SCHEMA, ENVELOPE_SCHEMA } from './kinds';
export type { TaskKindSpec } from './kinds';
export { templatable } from './templatable';
export type { JsonSchema } from './templatable';
export { parseDuration } from './duration';
export { WORKFLOW_ISSUE_CODES, WorkflowValidationError } from './issues';
export type { WorkflowIssue, WorkflowIssueCode } from './issues';
export { compileInputValidator, validateWorkflowDocument } from './validate';
export { compileWorkflow, DEFAULT_RETRYABLE_ERRORS } from './compile';
export type { ChildWorkflowInfo, CompileContext, CompileResult, CompiledTask, CompiledWorkflow, IntegrationInfo, OperationInfo, ResolvedRetryPolicy } from './compile';
export { staticCompileContext } from './context';
export type { StaticCompileContextDefinition } from './context';
export { stepsToGraph } from './steps';
export { collectOutgoingVariables } from './outgoing';
export { applyOperator, evaluateConditionSet, ConditionError, UNARY_OPERATORS } from './conditions';
export type { ConditionOutcome, ConditionSetOutcome } from './conditions';
export { evaluateTransform, checkTransformExpression, TransformError, TRANSFORM_LIMITS } from './transform';
export { importItentialWorkflow } from './itential';
export type { ItentialImportResult, UnmappedItentialTask } from './itential';
export { exportWorkflow, parseWorkflowFile, WorkflowFileError } from './export';
