/**
 * Workflow documents as files: stable JSON so an export, an import and a second export are byte-identical and
 * diffs show real changes. Structural keys come in a fixed order; tasks (and transitions) in canvas order, top to
 * bottom then left to right (the order a reader follows), ties and unplaced tasks by id. Free-form objects
 * (incoming values, input schemas, payloads) keep their authored order: it is meaningful to people (form fields).
 */
import { isRecord } from '../../adapter';
import { WORKFLOW_END, WORKFLOW_START, isStepsDocument, type GraphWorkflowDocument, type NodeLocation, type WorkflowDocument } from './types';

const DOCUMENT_KEYS = ['name', 'version', 'description', 'inputSchema', 'canvas', 'steps', 'tasks', 'transitions'];
const TASK_KEYS = [
  'id', 'kind', 'summary', 'description',
  'operation', 'connection', 'action', 'acceptStatuses', 'url', 'secretRef', 'script', 'workflow', 'version', 'mode', 'concurrency', 'expression',
  'task', 'until', 'failWhen', 'interval', 'maxDuration',
  'incoming', 'outgoing', 'retry', 'timeout', 'critical', 'nodeLocation',
];
const RETRY_KEYS = ['maxAttempts', 'initialInterval', 'backoffCoefficient', 'maximumInterval', 'maxDuration', 'retryableErrors'];
const TRANSITION_KEYS = ['type', 'state'];
const LOCATION_KEYS = ['x', 'y'];

function ordered(o: Record<string, unknown>, keys: string[], map: (k: string, v: unknown) => unknown = (_k, v) => v): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = map(k, o[k]);
  for (const k of Object.keys(o).filter((k) => !keys.includes(k)).sort()) if (o[k] !== undefined) out[k] = map(k, o[k]);
  return out;
}

function location(v: unknown): unknown {
  return isRecord(v) ? ordered(v, LOCATION_KEYS) : v;
}

function task(t: unknown): unknown {
  if (!isRecord(t)) return t;
  return ordered(t, TASK_KEYS, (k, v) => {
    if (k === 'retry' && isRecord(v)) return ordered(v, RETRY_KEYS);
    if (k === 'nodeLocation') return location(v);
    if (k === 'task' && isRecord(v)) return task(v); // a poll's probe
    if (k === 'script' && isRecord(v)) return ordered(v, ['module', 'version']);
    return v;
  });
}

function canvasOrder(tasks: Record<string, unknown>): string[] {
  const pos = (id: string): NodeLocation | undefined => {
    const t = tasks[id];
    return isRecord(t) && isRecord(t.nodeLocation) ? (t.nodeLocation as unknown as NodeLocation) : undefined;
  };
  return Object.keys(tasks).sort((a, b) => {
    const pa = pos(a);
    const pb = pos(b);
    if (pa && !pb) return -1;
    if (!pa && pb) return 1;
    if (pa && pb && (pa.y !== pb.y || pa.x !== pb.x)) return pa.y - pb.y || pa.x - pb.x;
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

function graphParts(doc: GraphWorkflowDocument): { tasks: Record<string, unknown>; transitions?: Record<string, unknown> } {
  const order = canvasOrder(doc.tasks as Record<string, unknown>);
  const rank = (id: string): number => (id === WORKFLOW_START ? -1 : id === WORKFLOW_END ? Number.MAX_SAFE_INTEGER : order.indexOf(id) === -1 ? order.length : order.indexOf(id));
  const byRank = (a: string, b: string): number => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
  const tasks: Record<string, unknown> = {};
  for (const id of order) tasks[id] = task(doc.tasks[id]);
  if (!doc.transitions) return { tasks };
  const transitions: Record<string, unknown> = {};
  for (const from of Object.keys(doc.transitions).sort(byRank)) {
    const targets = doc.transitions[from] ?? {};
    const out: Record<string, unknown> = {};
    for (const to of Object.keys(targets).sort(byRank)) out[to] = ordered(targets[to] as unknown as Record<string, unknown>, TRANSITION_KEYS);
    transitions[from] = out;
  }
  return { tasks, transitions };
}

/** The document as file text: 2-space JSON in a stable order, ending with a newline. Does not validate. */
export function exportWorkflow(doc: WorkflowDocument): string {
  const body: Record<string, unknown> = { ...doc };
  if (isStepsDocument(doc)) body.steps = doc.steps.map(task);
  else Object.assign(body, graphParts(doc));
  if (isRecord(body.canvas)) body.canvas = ordered(body.canvas, [WORKFLOW_START, WORKFLOW_END], (_k, v) => location(v));
  return `${JSON.stringify(ordered(body, DOCUMENT_KEYS), null, 2)}\n`;
}

/** Thrown when a workflow file is not JSON; says where. */
export class WorkflowFileError extends Error {
  readonly code = 'WORKFLOW_FILE_INVALID' as const;
  constructor(message: string) {
    super(message);
    this.name = 'WorkflowFileError';
  }
}

/**
 * The JSON of a workflow file, unvalidated (pass it to compileWorkflow).
 * @throws WorkflowFileError when the text is not JSON or not an object.
 */
export function parseWorkflowFile(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new WorkflowFileError(`workflow file is not JSON: ${(e as Error).message}`);
  }
  if (!isRecord(value)) throw new WorkflowFileError('workflow file must hold a JSON object');
  return value;
}
