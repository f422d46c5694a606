/**
 * The workflow document: what `/admin/workflows` stores and the files in `workflows/definitions/` hold. Its shape
 * follows an Itential workflow (tasks keyed by id, incoming/outgoing variables, `$var` references, transitions by
 * state, canvas positions) so designers coming from Itential recognise it. The JSON Schema is in `schema.ts`.
 *
 * Choices, and why:
 * - Transitions keep Itential's exact shape, `transitions[from][to] = {type: 'standard', state}`, with the
 *   `workflow_start` / `workflow_end` pseudo-tasks. One state per target (as in Itential); `failure` is folded into
 *   `error`. Several success targets run in parallel. Cycles are refused: repetition is a `poll` task, so a run's
 *   step history is always a DAG walk and crash-resume never has to reason about loop counters.
 * - Without `workflow_start` transitions, the single task with no incoming transition is the start; several such
 *   tasks must be named from `workflow_start` (a stray, unconnected task is an error, not a silent parallel start).
 * - Kind-specific static configuration (operation, url, secretRef, script module, expression, child workflow) sits on
 *   the task and is never templated; `incoming` holds the values that may be templates. So an order's data can fill
 *   in parameters but cannot choose which operation runs, where a webhook goes or which secret signs it.
 * - `incoming`/`outgoing` sit directly on the task instead of under Itential's `variables`, and the task's type is
 *   `kind` (Itential's `type` means automatic/manual/operation, a different thing).
 */

export const TASK_KINDS = ['integration', 'directory', 'winrm', 'webhook', 'script', 'poll', 'evaluate', 'transform', 'child', 'wait'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

/** Pseudo-tasks of the canvas, as in Itential; they are never declared in `tasks`. */
export const WORKFLOW_START = 'workflow_start';
export const WORKFLOW_END = 'workflow_end';
/** Task ids a document may not declare: the canvas pseudo-tasks and `job` (the `$var.job.*` namespace). */
export const RESERVED_TASK_IDS = [WORKFLOW_START, WORKFLOW_END, 'job'] as const;

/** Milliseconds, or a string such as `500ms`, `30s`, `5m`, `2h`, `1d`. */
export type Duration = number | string;

export interface NodeLocation {
  x: number;
  y: number;
}

/**
 * The error classes a step failure is sorted into; `retry.retryableErrors` names them. The engine classifies every
 * failure into exactly one of these.
 */
export const STEP_ERROR_CODES = [
  'TIMEOUT', // the attempt (or the call inside it) ran past its timeout
  'NETWORK', // the call could not be made or got no response
  'HTTP_429', // a non-accepted 429
  'HTTP_4XX', // any other non-accepted 4xx
  'HTTP_5XX', // a non-accepted 5xx
  'RPC_ERROR', // a 2xx JSON-RPC answer with an `error` member (XenAPI: SESSION_INVALID, VM_BAD_POWER_STATE, ...)
  'WEBHOOK_REJECTED', // a provisioning webhook answered anything but PROVISIONED_USER or 204
  'SCRIPT_FAILED', // non-zero exit, or stdout that is not JSON
  'DIRECTORY', // the directory refused or failed the operation
  'WINRM_AUTH', // a WinRM endpoint (or the KDC for its ticket) refused the connection's credentials
  'WINRM_FAULT', // a WinRM endpoint answered a SOAP fault (its WS-Man subcode and WMI/Win32 code are named)
  'WINRM_RETURN_VALUE', // the WMI method ran and returned a non-zero ReturnValue (named in the message)
  'CONDITION_FALSE', // an evaluate task's conditions did not hold
  'POLL_EXHAUSTED', // a poll task's maximum duration passed, or its failWhen condition held
  'CHILD_FAILED', // a child workflow run failed
  'TEMPLATE', // a template named a variable that is not set
  'INVALID_INPUT', // the rendered input does not match the task's input schema
] as const;
export type StepErrorCode = (typeof STEP_ERROR_CODES)[number];

export interface RetryPolicy {
  /** Attempts in all, the first included. Default 1: a step runs once unless its policy says otherwise. */
  maxAttempts?: number;
  /** Wait before the second attempt. Default 1s. */
  initialInterval?: Duration;
  /** Each later wait is the previous one times this. Default 2. */
  backoffCoefficient?: number;
  /** Upper bound of one wait. Default 100 x initialInterval (as Temporal). */
  maximumInterval?: Duration;
  /** No new attempt starts after this long since the first began. Default: unbounded. */
  maxDuration?: Duration;
  /** Which failures are retried. Default: TIMEOUT, NETWORK, HTTP_429, HTTP_5XX (transient ones only). */
  retryableErrors?: StepErrorCode[];
}

/**
 * An outgoing variable, readable downstream as `$var.<task>.<name>`:
 * - `null`: the output's property of the same name (Itential's `"result": null`);
 * - `"$var.job.<name>"`: the same, and also exported as job variable `<name>` (Itential's shape);
 * - `{from, job}`: the value at dot path `from` in the output, optionally exported as job variable `job`.
 */
export type OutgoingVariable = null | string | { from?: string; job?: string };

/** A JSON value whose strings may be `{{...}}` templates or `$var` references. */
export type TemplatedValue = unknown;

export const CONDITION_OPERATORS = [
  '==',
  '!=',
  '<',
  '<=',
  '>',
  '>=',
  'contains',
  'notContains',
  'in',
  'notIn',
  'exists',
  'notExists',
  'empty',
  'notEmpty',
  'matches',
  'startsWith',
  'endsWith',
] as const;
export type ConditionOperator = (typeof CONDITION_OPERATORS)[number];

export interface Condition {
  left: TemplatedValue;
  operator: ConditionOperator;
  /** Absent for the unary operators exists, notExists, empty, notEmpty. */
  right?: TemplatedValue;
}

export interface ConditionSet {
  /** `all` (default) or `any`; evaluation stops at the first condition that decides the result. */
  match?: 'all' | 'any';
  conditions: Condition[];
}

export interface TaskCommon {
  /** The label on the canvas (Itential's `summary`). */
  summary?: string;
  description?: string;
  outgoing?: Record<string, OutgoingVariable>;
  retry?: RetryPolicy;
  /** Per attempt. Absent: the engine's default for the kind. */
  timeout?: Duration;
  /** Default true: a failure without an `error` transition halts the run. False: the run continues along success. */
  critical?: boolean;
  nodeLocation?: NodeLocation;
}

export interface IntegrationTask extends TaskCommon {
  kind: 'integration';
  /** `<integration>/<operationId>` of an integration model. */
  operation: string;
  /** Non-2xx statuses that count as success (e.g. 404 on a delete that is already done). */
  acceptStatuses?: number[];
  /** The operation's input: `{path, query, headers, cookies, body}` as the integration model's task schema says. */
  incoming?: { path?: Record<string, TemplatedValue>; query?: Record<string, TemplatedValue>; headers?: Record<string, TemplatedValue>; cookies?: Record<string, TemplatedValue>; body?: TemplatedValue };
}

export const DIRECTORY_OPERATIONS = ['addGroupMember', 'removeGroupMember', 'setAttribute', 'findUser', 'findManager'] as const;
export type DirectoryOperation = (typeof DIRECTORY_OPERATIONS)[number];

export interface DirectoryTask extends TaskCommon {
  kind: 'directory';
  operation: DirectoryOperation;
  incoming: Record<string, TemplatedValue>;
}

/**
 * What a `winrm` task asks of the ConfigMgr client on a device, through WS-Management:
 * - `triggerSchedule`: `SMS_Client.TriggerSchedule(scheduleId)` (root\ccm), e.g. machine policy retrieval, so the
 *   client picks up a task sequence deployment at once;
 * - `executeProgram`: `CCM_ProgramsManager.ExecuteProgram(programId, packageId)` (root\ccm\ClientSDK), runs an
 *   available deployment (a task sequence: program id `*`) now.
 */
export const WINRM_ACTIONS = ['triggerSchedule', 'executeProgram'] as const;
export type WinrmAction = (typeof WINRM_ACTIONS)[number];

export interface WinrmTask extends TaskCommon {
  kind: 'winrm';
  /**
   * The integration whose connection (authentication: NTLM or Negotiate/Kerberos, TLS trust, proxy, timeout) reaches
   * the devices, typically the SCCM one. Static: a runbook names where the credentials live, never the credentials.
   */
  connection: string;
  action: WinrmAction;
  /** `host`, `port`, `https`, `spn` of the device, and the action's parameters (`scheduleId`, or `packageId`/`programId`). */
  incoming: Record<string, TemplatedValue>;
}

export interface WebhookTask extends TaskCommon {
  kind: 'webhook';
  /** The receiver. Templates here may only name `inputs` (never order data), so an order cannot steer the call. */
  url: string;
  /** Settings key (`<section>.<name>`) of the HMAC-SHA256 secret that signs the body. Static: never a template. */
  secretRef?: string;
  /** The Lumos provisioning-webhook payload: application, permissions, target_user, access_length, ... */
  incoming: Record<string, TemplatedValue>;
}

export interface ScriptTask extends TaskCommon {
  kind: 'script';
  script: { module: string; version: number };
  /** Parameters, passed to the script in its environment; names are environment variable names. */
  incoming?: Record<string, TemplatedValue>;
}

/** The task a poll repeats: an integration, directory or script call (no retry/outgoing of its own). */
export type PollProbe =
  | Pick<IntegrationTask, 'kind' | 'operation' | 'acceptStatuses' | 'incoming' | 'timeout'>
  | Pick<DirectoryTask, 'kind' | 'operation' | 'incoming' | 'timeout'>
  | Pick<ScriptTask, 'kind' | 'script' | 'incoming' | 'timeout'>;

export interface PollTask extends TaskCommon {
  kind: 'poll';
  task: PollProbe;
  /** Holds on the probe's output (`{{output...}}`): the poll succeeds. */
  until: ConditionSet;
  /** Holds on the probe's output: the poll fails at once (POLL_EXHAUSTED) instead of waiting out maxDuration. */
  failWhen?: ConditionSet;
  interval: Duration;
  maxDuration: Duration;
}

export interface EvaluateTask extends TaskCommon {
  kind: 'evaluate';
  /** True: the task succeeds (success transition). False: it fails with CONDITION_FALSE (error transition). */
  incoming: ConditionSet;
}

export interface TransformTask extends TaskCommon {
  kind: 'transform';
  /** A JSONata expression evaluated with the rendered `incoming` object as its input. */
  expression: string;
  incoming?: Record<string, TemplatedValue>;
}

export interface ChildTask extends TaskCommon {
  kind: 'child';
  workflow: string;
  /** Pinned version; absent: the latest version when the parent run starts. */
  version?: number;
  /** Over an array: one run per element, sequential (default) or parallel (at most `concurrency` at once). */
  mode?: 'sequential' | 'parallel';
  concurrency?: number;
  /** `items`: the array to run over (absent: run once); `inputs`: the child's inputs, may use `{{item}}`/`{{index}}`. */
  incoming?: { items?: TemplatedValue; inputs?: Record<string, TemplatedValue> };
}

export interface WaitTask extends TaskCommon {
  kind: 'wait';
  /** `duration`: resume after `incoming.duration`; `resumed`: until an API call resumes it (bounded by `timeout`). */
  until: 'duration' | 'resumed';
  incoming?: { duration?: TemplatedValue };
}

export type WorkflowTask = IntegrationTask | DirectoryTask | WinrmTask | WebhookTask | ScriptTask | PollTask | EvaluateTask | TransformTask | ChildTask | WaitTask;

/** Itential's transition value: `{type: 'standard', state}`. `failure` is not ours: the importer maps it to `error`. */
export interface Transition {
  state: 'success' | 'error';
  type?: 'standard';
}

/** from task id (or `workflow_start`) -> to task id (or `workflow_end`) -> transition. */
export type Transitions = Record<string, Record<string, Transition>>;

export type WorkflowStep = WorkflowTask & { id: string };

interface DocumentCommon {
  name: string;
  /** Assigned by the store on save; a run pins the version it started with. */
  version?: number;
  description?: string;
  /** JSON Schema (type object) of the run's inputs, read as `{{inputs.<name>}}` and `$var.job.<name>`. */
  inputSchema?: Record<string, unknown>;
  /** Canvas positions of the pseudo-tasks. */
  canvas?: { workflow_start?: NodeLocation; workflow_end?: NodeLocation };
}

export interface GraphWorkflowDocument extends DocumentCommon {
  tasks: Record<string, WorkflowTask>;
  transitions?: Transitions;
}

/** The runbook shorthand: each step's success leads to the next; `critical: false` also continues on error. */
export interface StepsWorkflowDocument extends DocumentCommon {
  steps: WorkflowStep[];
}

export type WorkflowDocument = GraphWorkflowDocument | StepsWorkflowDocument;

export function isStepsDocument(doc: WorkflowDocument): doc is StepsWorkflowDocument {
  return Array.isArray((doc as StepsWorkflowDocument).steps);
}
