/**
 * What is wrong with a workflow document, each problem pointing at the task it is about, so a save can answer 422
 * with `{taskId, path, message}` per problem and a canvas can highlight the node.
 */

export const WORKFLOW_ISSUE_CODES = [
  'SCHEMA', // the document does not match the JSON Schema
  'UNKNOWN_KIND', // a task's kind is not one of ours
  'DUPLICATE_TASK', // two steps share an id
  'UNKNOWN_TRANSITION_SOURCE', // transitions from a task that does not exist
  'UNKNOWN_TRANSITION_TARGET', // a transition to a task that does not exist
  'INVALID_TRANSITION', // out of workflow_end, into workflow_start
  'AMBIGUOUS_START', // several tasks without incoming transitions and no workflow_start transitions
  'NO_START', // nothing to start from
  'UNREACHABLE', // no path from the start leads to the task
  'CYCLE', // transitions form a loop (poll is the loop construct)
  'TEMPLATE_SYNTAX', // a malformed {{...}} or $var reference
  'UNKNOWN_TEMPLATE_ROOT', // {{foo.x}} where foo is not a known root
  'TEMPLATE_NOT_ALLOWED', // a root that is not available where it is used ({{item}} outside a child over items, ...)
  'UNKNOWN_TASK_REFERENCE', // $var.<task> or {{steps.<task>}} naming a task that does not exist or cannot have run before
  'UNKNOWN_VARIABLE', // $var.<task>.<name> naming no outgoing variable, {{inputs.x}} not in the input schema, ...
  'INVALID_INPUT_SCHEMA', // inputSchema is not a usable JSON Schema of an object
  'INVALID_EXPRESSION', // a transform's JSONata does not parse
  'INVALID_REGEX', // a literal `matches` pattern does not compile
  'UNKNOWN_INTEGRATION', // ctx does not know the integration
  'UNKNOWN_OPERATION', // ctx knows the integration but not the operationId
  'INVALID_TASK_INPUT', // incoming does not match the operation's (or child workflow's) input schema
  'UNKNOWN_WORKFLOW', // ctx does not know the child workflow (or that version)
  'UNKNOWN_SCRIPT_MODULE', // ctx does not know the script module version
] as const;
export type WorkflowIssueCode = (typeof WORKFLOW_ISSUE_CODES)[number];

export interface WorkflowIssue {
  code: WorkflowIssueCode;
  /** The task the problem is about; null for document-level problems (name, inputSchema, ...). */
  taskId: string | null;
  /** RFC 6901 pointer into the document as submitted (a steps document is pointed at by `/steps/<index>`). */
  path: string;
  message: string;
}

/** Thrown by {@link assertValidWorkflow}-style callers that prefer exceptions; carries every issue. */
export class WorkflowValidationError extends Error {
  readonly code = 'WORKFLOW_INVALID' as const;
  constructor(readonly issues: WorkflowIssue[]) {
    super(`workflow document is invalid: ${issues.map((i) => `${i.taskId ? `task ${i.taskId}: ` : ''}${i.path} ${i.message}`).join('; ')}`);
    this.name = 'WorkflowValidationError';
  }
}

