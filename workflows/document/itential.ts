/**
 * Importing an Itential workflow document (its JSON export). Tasks map onto our kinds where the meaning carries over:
 * - adapter tasks (`location: Adapter`) -> `integration` (`<app lower-cased>/<method name>`);
 * - WorkFlowEngine `merge`, `query`, `newVariable` -> `transform` (JSONata);
 * - WorkFlowEngine `evaluation` (one evaluation group) -> `evaluate`;
 * - WorkFlowEngine `childJob` -> `child`; `delay` -> `wait`;
 * - `workflow_start` / `workflow_end`, transitions by state (`failure` becomes `error`), `nodeLocation`.
 * Everything else is reported in `unmapped` with the reason, and left out of the document with the transitions
 * touching it; the result then usually needs work on the canvas before it compiles (compileWorkflow says where).
 */
import { isRecord } from '../../adapter';
import { RESERVED_TASK_IDS, WORKFLOW_END, WORKFLOW_START, type ConditionOperator, type GraphWorkflowDocument, type NodeLocation, type OutgoingVariable, type Transitions, type WorkflowTask } from './types';

export interface UnmappedItentialTask {
  taskId: string;
  /** Itential's method name (`ViewData`, `transformation`, ...). */
  name: string;
  app: string | null;
  type: string | null;
  reason: string;
}

export interface ItentialImportWarning {
  taskId: string | null;
  message: string;
}

export interface ItentialImportResult {
  document: GraphWorkflowDocument;
  unmapped: UnmappedItentialTask[];
  /** Things that were mapped but changed meaning or were dropped (adapter_id, error variables, guessed parameter places). */
  warnings: ItentialImportWarning[];
}

export type ParameterLocation = 'path' | 'query' | 'headers' | 'body';

export interface ItentialImportOptions {
  /** Our integration name for an Itential adapter app; default: the app name lower-cased. */
  integrationName?(app: string): string;
  /**
   * Where an adapter task's parameter goes in our `{path, query, headers, body}` input (from the integration model);
   * default: `body` for a parameter named body, else `query` with a warning.
   */
  parameterLocation?(integration: string, operationId: string, parameter: string): ParameterLocation | undefined;
}

/** Thrown when the JSON is not an Itential workflow at all (no `tasks` object). */
export class ItentialImportError extends Error {
  readonly code = 'ITENTIAL_IMPORT_INVALID' as const;
  constructor(message: string) {
    super(message);
    this.name = 'ItentialImportError';
  }
}

const ITENTIAL_OPERATORS: Record<string, ConditionOperator> = {
  '==': '==',
  '!=': '!=',
  '<': '<',
  '<=': '<=',
  '>': '>',
  '>=': '>=',
  contains: 'contains',
  '!contains': 'notContains',
};

// Itential's json-query paths, when they are plain dotted paths with indexes, read the same in JSONata.
const SIMPLE_QUERY = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*|\[\d+\])*$/;

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** Itential's `{task, variable}` reference objects (merge, childJob) become `$var.<task>.<variable>` strings. */
function convertValue(v: unknown): unknown {
  if (isRecord(v) && typeof v.task === 'string' && typeof v.variable === 'string' && Object.keys(v).every((k) => ['task', 'variable', 'editable'].includes(k))) {
    return v.task === 'static' ? v.variable : `$var.${v.task}.${v.variable}`;
  }
  if (Array.isArray(v)) return v.map(convertValue);
  if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, convertValue(x)]));
  return v;
}

/** `"result": "$var.job.updatedCR"` (also export to the job) or `null`; anything else is read as null. */
function outgoingSpec(value: unknown, from?: string): OutgoingVariable {
  const job = typeof value === 'string' && /^\$var\.job\.[A-Za-z_$][A-Za-z0-9_$-]*$/.test(value) ? value.slice('$var.job.'.length) : undefined;
  if (from === undefined) return job ? `$var.job.${job}` : null;
  return job ? { from, job } : { from };
}

function location(v: unknown): NodeLocation | undefined {
  return isRecord(v) && typeof v.x === 'number' && typeof v.y === 'number' ? { x: v.x, y: v.y } : undefined;
}

type Mapped = { task: WorkflowTask } | { reason: string };

class Importer {
  readonly warnings: ItentialImportWarning[] = [];
  constructor(readonly options: ItentialImportOptions) {}

  warn(taskId: string | null, message: string): void {
    this.warnings.push({ taskId, message });
  }

  common(raw: Record<string, unknown>): Partial<WorkflowTask> {
    const out: Partial<WorkflowTask> = {};
    const summary = str(raw.summary);
    const description = str(raw.description);
    const loc = location(raw.nodeLocation);
    if (summary) out.summary = summary.slice(0, 200);
    if (description) out.description = description.slice(0, 4000);
    if (loc) out.nodeLocation = loc;
    return out;
  }

  map(id: string, raw: Record<string, unknown>): Mapped {
    const name = str(raw.name) ?? '';
    const app = str(raw.app);
    const type = str(raw.type);
    const vars = isRecord(raw.variables) ? raw.variables : {};
    const incoming = isRecord(vars.incoming) ? vars.incoming : {};
    const outgoing = isRecord(vars.outgoing) ? vars.outgoing : {};
    if (typeof vars.error === 'string' && vars.error !== '') {
      this.warn(id, `the error variable ${vars.error} is not carried over: the step record keeps the error message`);
    }
    if (type === 'manual') {
      return {
        reason: `manual task (${name}): it waits for a person to act in Itential's UI; provisio has no human-task form. ` +
          'A wait task (until: resumed) resumed through the API is the closest; add it by hand.',
      };
    }
    if (raw.location === 'Adapter' && app) return this.adapter(id, raw, app, name, incoming, outgoing);
    if (app === 'WorkFlowEngine') return this.engineOperation(id, name, incoming, outgoing);
    return { reason: `${app ?? 'unknown app'} task '${name}' has no provisio equivalent (only adapters and some WorkFlowEngine operations map)` };
  }

  adapter(id: string, raw: Record<string, unknown>, app: string, name: string, incoming: Record<string, unknown>, outgoing: Record<string, unknown>): Mapped {
    const integration = this.options.integrationName?.(app) ?? app.toLowerCase();
    const input: Record<string, Record<string, unknown>> & { body?: unknown } = {};
    const guessed: string[] = [];
    for (const [param, value] of Object.entries(incoming)) {
      if (param === 'adapter_id') {
        this.warn(id, 'adapter_id dropped: it picks an Itential adapter instance; provisio calls the configured integration');
        continue;
      }
      let where = this.options.parameterLocation?.(integration, name, param);
      if (!where) {
        where = param === 'body' ? 'body' : 'query';
        if (param !== 'body') guessed.push(param);
      }
      if (where === 'body') {
        if (param === 'body') input.body = convertValue(value);
        else input.body = { ...(isRecord(input.body) ? input.body : {}), [param]: convertValue(value) };
      } else {
        input[where] = { ...(input[where] ?? {}), [param]: convertValue(value) };
      }
    }
    if (guessed.length > 0) this.warn(id, `parameters ${guessed.join(', ')} placed in query: check them against the operation's parameters`);
    const out: Record<string, OutgoingVariable> = {};
    for (const [k, v] of Object.entries(outgoing)) out[k] = outgoingSpec(v, k === 'result' ? 'body' : `body.${k}`);
    const task: WorkflowTask = {
      kind: 'integration',
      ...this.common(raw),
      operation: `${integration}/${name}`,
      ...(Object.keys(input).length > 0 ? { incoming: input } : {}),
      ...(Object.keys(out).length > 0 ? { outgoing: out } : {}),
    } as WorkflowTask;
    return { task };
  }

  engineOperation(id: string, name: string, incoming: Record<string, unknown>, outgoing: Record<string, unknown>): Mapped {
    const resultAs = (names: string[]): Record<string, OutgoingVariable> =>
      Object.fromEntries(names.filter((n) => n in outgoing).map((n) => [n, outgoingSpec(outgoing[n], 'result')]));
    switch (name) {
      case 'merge': {
        const items = Array.isArray(incoming.data_to_merge) ? incoming.data_to_merge : [];
        const object: Record<string, unknown> = {};
        for (const item of items) if (isRecord(item) && typeof item.key === 'string') object[item.key] = convertValue(item.value);
        return { task: { kind: 'transform', expression: '$', incoming: object, outgoing: resultAs(['merged_object']) } };
      }
      case 'query': {
        const query = str(incoming.query);
        if (query === null || !SIMPLE_QUERY.test(query)) {
          return { reason: `query '${String(incoming.query)}' uses json-query syntax beyond a plain path; rewrite it as a transform task (JSONata)` };
        }
        return { task: { kind: 'transform', expression: `obj.${query}`, incoming: { obj: convertValue(incoming.obj) }, outgoing: resultAs(['return_data']) } };
      }
      case 'newVariable': {
        const varName = str(incoming.name);
        if (!varName || !/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(varName)) return { reason: 'newVariable without a literal variable name' };
        return { task: { kind: 'transform', expression: 'value', incoming: { value: convertValue(incoming.value) }, outgoing: { [varName]: { from: 'result', job: varName } } } };
      }
      case 'evaluation':
        return this.evaluation(incoming);
      case 'childJob': {
        const workflow = str(incoming.workflow);
        if (!workflow) return { reason: 'childJob without a literal workflow name' };
        const loop = str(incoming.loopType);
        if (isRecord(incoming.transformation) && Object.keys(incoming.transformation).length > 0) {
          this.warn(id, 'childJob transformation (JST) not imported: map the inputs in incoming.inputs');
        }
        const inputs = isRecord(incoming.variables) ? (convertValue(incoming.variables) as Record<string, unknown>) : {};
        const task: WorkflowTask = {
          kind: 'child',
          workflow,
          ...(loop === 'parallel' || loop === 'sequential' ? { mode: loop } : {}),
          incoming: { ...(loop === 'parallel' || loop === 'sequential' ? { items: convertValue(incoming.data_array) } : {}), inputs },
          ...('job_details' in outgoing ? { outgoing: { job_details: outgoingSpec(outgoing.job_details, 'runs') } } : {}),
        };
        return { task };
      }
      case 'delay': {
        const time = incoming.time;
        const duration = typeof time === 'number' && Number.isInteger(time) && time >= 0 ? `${time}s` : typeof time === 'string' && /^\d+$/.test(time) ? `${time}s` : null;
        if (duration === null) return { reason: 'delay whose time is not a literal number of seconds' };
        return { task: { kind: 'wait', until: 'duration', incoming: { duration } } };
      }
      case 'transformation':
        return {
          reason: `runs the stored JST transformation ${String(incoming.tr_id ?? '')}, which is not part of the workflow document; ` +
            'rewrite it as a transform task (JSONata)',
        };
      default:
        return { reason: `WorkFlowEngine operation '${name}' has no provisio equivalent` };
    }
  }

  evaluation(incoming: Record<string, unknown>): Mapped {
    const groups = Array.isArray(incoming.evaluation_groups) ? incoming.evaluation_groups : [];
    if (groups.length !== 1 || !isRecord(groups[0])) return { reason: `evaluation with ${groups.length} groups: provisio's evaluate has one list of conditions (all or any)` };
    const group = groups[0];
    const evaluations = Array.isArray(group.evaluations) ? group.evaluations : [];
    const conditions = [];
    for (const e of evaluations) {
      if (!isRecord(e)) return { reason: 'evaluation with a malformed condition' };
      const op = ITENTIAL_OPERATORS[String(e.operator)];
      if (!op) return { reason: `evaluation operator '${String(e.operator)}' has no provisio equivalent` };
      if (typeof e.query === 'string' && e.query !== '') return { reason: 'evaluation with a json-query on an operand; rewrite the operand as a $var path' };
      conditions.push({ left: convertValue(e.operand_1), operator: op, right: convertValue(e.operand_2) });
    }
    if (conditions.length === 0) return { reason: 'evaluation without conditions' };
    return { task: { kind: 'evaluate', incoming: { match: group.all_true_to_pass === false ? 'any' : 'all', conditions } } };
  }
}

/**
 * Our document from an Itential workflow export, with the tasks that do not map and why.
 * @throws ItentialImportError when `json` has no `tasks` object.
 */
export function importItentialWorkflow(json: unknown, options: ItentialImportOptions = {}): ItentialImportResult {
  if (!isRecord(json) || !isRecord(json.tasks)) throw new ItentialImportError('not an Itential workflow: no tasks object');
  const importer = new Importer(options);
  const tasks: Record<string, WorkflowTask> = {};
  const unmapped: UnmappedItentialTask[] = [];
  const canvas: GraphWorkflowDocument['canvas'] = {};
  for (const [id, raw] of Object.entries(json.tasks)) {
    if (!isRecord(raw)) continue;
    if (id === WORKFLOW_START || id === WORKFLOW_END) {
      const loc = location(raw.nodeLocation);
      if (loc) canvas[id] = loc;
      continue;
    }
    const info = { taskId: id, name: str(raw.name) ?? '', app: str(raw.app), type: str(raw.type) };
    if ((RESERVED_TASK_IDS as readonly string[]).includes(id)) {
      unmapped.push({ ...info, reason: `task id '${id}' is reserved in provisio` });
      continue;
    }
    const mapped = importer.map(id, raw);
    if ('reason' in mapped) unmapped.push({ ...info, reason: mapped.reason });
    else tasks[id] = { ...mapped.task, ...importer.common(raw) } as WorkflowTask;
  }

  const transitions: Transitions = {};
  const rawTransitions = isRecord(json.transitions) ? json.transitions : {};
  const present = (id: string) => id === WORKFLOW_START || id === WORKFLOW_END || id in tasks;
  for (const [from, targets] of Object.entries(rawTransitions)) {
    if (!isRecord(targets)) continue;
    for (const [to, t] of Object.entries(targets)) {
      if (!isRecord(t)) continue;
      if (!present(from) || !present(to)) {
        importer.warn(present(from) ? from : null, `transition ${from} -> ${to} dropped: ${present(from) ? to : from} was not imported`);
        continue;
      }
      if (t.type === 'revert') {
        importer.warn(from, `revert transition ${from} -> ${to} dropped: loops back, and provisio has no cycles (use a poll task)`);
        continue;
      }
      const state = t.state === 'success' ? 'success' : 'error'; // Itential's `error` and `failure` are both our error
      (transitions[from] ??= {})[to] = { type: 'standard', state };
    }
  }

  const document: GraphWorkflowDocument = {
    name: str(json.name) ?? 'imported workflow',
    description: str(json.description) ?? `Imported from Itential${str(json.lastUpdatedVersion) ? ` ${String(json.lastUpdatedVersion)}` : ''}`,
    ...(isRecord(json.inputSchema) ? { inputSchema: json.inputSchema } : {}),
    ...(Object.keys(canvas).length > 0 ? { canvas } : {}),
    tasks,
    transitions,
  };
  return { document, unmapped, warnings: importer.warnings };
}
