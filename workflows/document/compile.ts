/**
 * `compileWorkflow`: a workflow document checked and normalised into the graph the engine runs, or every problem
 * found, each pointing at its task. Checks: the JSON Schema; transitions to and from known tasks; one start; every
 * task reachable; no cycles (poll is the loop construct); every `$var` and `{{...}}` reference names a known root,
 * a task that can have run before, and a variable that exists; transform expressions parse; and, through the
 * callbacks of `ctx`, that integrations, operations, child workflows and script modules exist.
 */
import { scanTemplates, type TemplateReference } from '../templating';
import { UNARY_OPERATORS } from './conditions';
import { parseDuration } from './duration';
import { escapePointerToken as escapePointer, isRecord } from '../../adapter';
import type { WorkflowIssue, WorkflowIssueCode } from './issues';
import { DIRECTORY_OPERATION_SCHEMAS, ENVELOPE_SCHEMA, TASK_KIND_SPECS, WINRM_ACTION_SCHEMAS } from './kinds';
import { outgoingJobVariable, outgoingSourcePath } from './outgoing';
import { stepsToGraph } from './steps';
import { templatable, type JsonSchema } from './templatable';
import { checkTransformExpression } from './transform';
import {
  WORKFLOW_END,
  WORKFLOW_START,
  isStepsDocument,
  type ConditionSet,
  type GraphWorkflowDocument,
  type NodeLocation,
  type PollProbe,
  type StepErrorCode,
  type TaskKind,
  type WorkflowDocument,
  type WorkflowTask,
} from './types';
import { compileForeignSchema, formatSchemaErrors, validateWorkflowDocument } from './validate';

type MaybePromise<T> = T | Promise<T>;

export interface OperationInfo {
  /** The operation's task input schema (`{path, query, headers, body}`); when given, `incoming` is checked against it. */
  inputSchema?: JsonSchema;
  /** The operation's output (envelope) schema; when given, output references are checked against it. */
  outputSchema?: JsonSchema;
}

export interface IntegrationInfo {
  /** The operation, or undefined when the integration has no such operationId. */
  operation(operationId: string): OperationInfo | undefined;
}

export interface ChildWorkflowInfo {
  version: number;
  inputSchema?: JsonSchema;
}

/**
 * What the compiler asks the outside world. Each callback is optional: without it, that check is skipped (a document
 * can be checked on its own, e.g. in an import preview). The engine supplies all of them on save.
 */
export interface CompileContext {
  lookupIntegration?(name: string): MaybePromise<IntegrationInfo | undefined>;
  /** `version` undefined: whether any version exists (the child runs the latest). */
  lookupWorkflow?(name: string, version: number | undefined): MaybePromise<ChildWorkflowInfo | undefined>;
  lookupScriptModule?(module: string, version: number): MaybePromise<boolean>;
}

export interface ResolvedRetryPolicy {
  maxAttempts: number;
  initialIntervalMs: number;
  backoffCoefficient: number;
  maximumIntervalMs: number;
  /** null: no bound besides maxAttempts. */
  maxDurationMs: number | null;
  retryableErrors: StepErrorCode[];
}

export const DEFAULT_RETRYABLE_ERRORS: readonly StepErrorCode[] = ['TIMEOUT', 'NETWORK', 'HTTP_429', 'HTTP_5XX'];

export interface CompiledTask {
  id: string;
  kind: TaskKind;
  /** The task as written (without the step id of a steps document). */
  task: WorkflowTask;
  retry: ResolvedRetryPolicy;
  /** Per attempt; null: the engine's default for the kind. */
  timeoutMs: number | null;
  critical: boolean;
  /** Where the run goes after this task, by outcome; may contain `workflow_end`. */
  next: { success: string[]; error: string[] };
  /** True when a failure halts the run: no error transition and critical. */
  failsRunOnError: boolean;
  /** Tasks with a transition into this one. */
  predecessors: string[];
  nodeLocation: NodeLocation;
  outputSchema: JsonSchema;
}

export interface CompiledWorkflow {
  name: string;
  version: number | null;
  description: string;
  inputSchema: JsonSchema;
  /** Tasks started when a run begins. */
  start: string[];
  /** Every task, in a topological order of the transitions. */
  order: string[];
  tasks: Record<string, CompiledTask>;
  /** Job variables some task exports (`$var.job.<name>`), besides the inputs. */
  jobVariables: string[];
  /** The document as a graph (a steps document expanded), what the canvas edits. */
  graph: GraphWorkflowDocument;
}

export type CompileResult = { ok: true; workflow: CompiledWorkflow } | { ok: false; errors: WorkflowIssue[] };

const DEFAULT_LOCATION: NodeLocation = { x: 0, y: 0 };

// The engine's catalogue hands out the same schema objects save after save: compile each one once.
const operationValidators = new WeakMap<object, ReturnType<typeof compileForeignSchema>>();

function operationValidator(schema: JsonSchema): ReturnType<typeof compileForeignSchema> {
  if (!isRecord(schema)) return compileForeignSchema(templatable(schema));
  let v = operationValidators.get(schema);
  if (v === undefined) {
    v = compileForeignSchema(templatable(schema));
    operationValidators.set(schema, v);
  }
  return v;
}

/** The top-level property names of an object schema whose properties are closed, else undefined (anything goes). */
function closedProperties(schema: JsonSchema | undefined): string[] | undefined {
  if (!isRecord(schema)) return undefined;
  if (Array.isArray(schema.anyOf)) {
    const parts = (schema.anyOf as JsonSchema[]).map(closedProperties);
    if (parts.some((p) => p === undefined)) return undefined;
    return [...new Set(parts.flat() as string[])];
  }
  if (schema.additionalProperties === false && isRecord(schema.properties)) return Object.keys(schema.properties);
  return undefined;
}

function resolveRetry(task: WorkflowTask): ResolvedRetryPolicy {
  const r = task.retry ?? {};
  const initialIntervalMs = r.initialInterval !== undefined ? parseDuration(r.initialInterval) : 1000;
  return {
    maxAttempts: r.maxAttempts ?? 1,
    initialIntervalMs,
    backoffCoefficient: r.backoffCoefficient ?? 2,
    maximumIntervalMs: r.maximumInterval !== undefined ? parseDuration(r.maximumInterval) : initialIntervalMs * 100,
    maxDurationMs: r.maxDuration !== undefined ? parseDuration(r.maxDuration) : null,
    retryableErrors: r.retryableErrors ?? [...DEFAULT_RETRYABLE_ERRORS],
  };
}

/** Where a template may appear in a task, and which special roots it may use there. */
interface TemplateSite {
  pointer: string; // relative to the task
  value: unknown;
  allowItem?: boolean;
  allowOutput?: boolean;
  onlyInputs?: boolean;
}

function templateSites(task: WorkflowTask): TemplateSite[] {
  switch (task.kind) {
    case 'poll': {
      const sites: TemplateSite[] = [{ pointer: '/task/incoming', value: task.task.incoming }];
      sites.push({ pointer: '/until', value: task.until, allowOutput: true });
      if (task.failWhen) sites.push({ pointer: '/failWhen', value: task.failWhen, allowOutput: true });
      return sites;
    }
    case 'child': {
      const sites: TemplateSite[] = [];
      if (task.incoming?.items !== undefined) sites.push({ pointer: '/incoming/items', value: task.incoming.items });
      if (task.incoming?.inputs !== undefined) sites.push({ pointer: '/incoming/inputs', value: task.incoming.inputs, allowItem: task.incoming.items !== undefined });
      return sites;
    }
    case 'webhook':
      return [
        { pointer: '/url', value: task.url, onlyInputs: true },
        { pointer: '/incoming', value: task.incoming },
      ];
    default:
      return [{ pointer: '/incoming', value: task.incoming }];
  }
}

class Compiler {
  readonly errors: WorkflowIssue[] = [];
  readonly graph: GraphWorkflowDocument;
  readonly ids: string[];
  readonly stepIndex = new Map<string, number>();
  readonly inputNames: Set<string>;
  readonly jobVariables = new Set<string>();
  readonly outputSchemas = new Map<string, JsonSchema>();
  readonly ancestors = new Map<string, Set<string>>();
  successors = new Map<string, { to: string; state: 'success' | 'error' }[]>();
  start: string[] = [];
  hasCycle = false;

  constructor(
    readonly doc: WorkflowDocument,
    readonly ctx: CompileContext,
  ) {
    if (isStepsDocument(doc)) {
      doc.steps.forEach((s, i) => {
        if (this.stepIndex.has(s.id)) this.issue('DUPLICATE_TASK', s.id, `/steps/${i}/id`, `step id '${s.id}' is already used by step ${this.stepIndex.get(s.id)}`, true);
        else this.stepIndex.set(s.id, i);
      });
      this.graph = stepsToGraph(doc);
    } else {
      this.graph = doc;
    }
    this.ids = Object.keys(this.graph.tasks);
    this.inputNames = new Set(isRecord(doc.inputSchema?.properties) ? Object.keys(doc.inputSchema.properties) : []);
  }

  /** The document pointer of a task-relative pointer: `/tasks/<id>...` or, for a steps document, `/steps/<i>...`. */
  taskPath(taskId: string, rest = ''): string {
    const i = this.stepIndex.get(taskId);
    return i !== undefined ? `/steps/${i}${rest}` : `/tasks/${escapePointer(taskId)}${rest}`;
  }

  issue(code: WorkflowIssueCode, taskId: string | null, path: string, message: string, absolute = false): void {
    this.errors.push({ code, taskId, path: absolute || taskId === null ? path : this.taskPath(taskId, path), message });
  }

  task(id: string): WorkflowTask {
    return this.graph.tasks[id] as WorkflowTask;
  }

  checkInputSchema(): void {
    const schema = this.doc.inputSchema;
    if (schema === undefined) return;
    if (schema.type !== 'object') {
      this.issue('INVALID_INPUT_SCHEMA', null, '/inputSchema/type', "the input schema must describe an object (type: 'object')");
      return;
    }
    const compiled = compileForeignSchema(schema);
    if (typeof compiled === 'string') this.issue('INVALID_INPUT_SCHEMA', null, '/inputSchema', `not a usable JSON Schema: ${compiled}`);
  }

  checkTransitions(): void {
    const transitions = this.graph.transitions ?? {};
    for (const id of [WORKFLOW_START, ...this.ids]) this.successors.set(id, []);
    for (const [from, targets] of Object.entries(transitions)) {
      if (from === WORKFLOW_END) {
        if (Object.keys(targets).length > 0) this.issue('INVALID_TRANSITION', null, `/transitions/${WORKFLOW_END}`, 'workflow_end has no outgoing transitions');
        continue;
      }
      if (from !== WORKFLOW_START && !this.graph.tasks[from]) {
        this.issue('UNKNOWN_TRANSITION_SOURCE', from, `/transitions/${escapePointer(from)}`, `transitions from '${from}', which is not a task`, true);
        continue;
      }
      for (const [to, t] of Object.entries(targets)) {
        const path = `/transitions/${escapePointer(from)}/${escapePointer(to)}`;
        const taskId = from === WORKFLOW_START ? (this.graph.tasks[to] ? to : null) : from;
        if (to === WORKFLOW_START) {
          this.issue('INVALID_TRANSITION', taskId, path, 'no transition may lead into workflow_start', true);
          continue;
        }
        if (to !== WORKFLOW_END && !this.graph.tasks[to]) {
          this.issue('UNKNOWN_TRANSITION_TARGET', taskId, path, `transition to '${to}', which is not a task`, true);
          continue;
        }
        if (from === WORKFLOW_START && to === WORKFLOW_END) {
          this.issue('INVALID_TRANSITION', null, path, 'workflow_start must lead to a task', true);
          continue;
        }
        if (from === WORKFLOW_START && t.state !== 'success') {
          this.issue('INVALID_TRANSITION', taskId, path, "transitions from workflow_start are on 'success'", true);
          continue;
        }
        this.successors.get(from)?.push({ to, state: t.state });
      }
    }
  }

  findStart(): void {
    const fromStart = (this.successors.get(WORKFLOW_START) ?? []).map((e) => e.to);
    if (fromStart.length > 0) {
      this.start = fromStart;
      return;
    }
    const hasIncoming = new Set<string>();
    for (const id of this.ids) for (const e of this.successors.get(id) ?? []) hasIncoming.add(e.to);
    const roots = this.ids.filter((id) => !hasIncoming.has(id));
    if (this.ids.length === 0) {
      this.issue('NO_START', null, '/tasks', 'the workflow has no tasks');
    } else if (roots.length === 0) {
      this.issue('NO_START', null, '/transitions', 'every task has an incoming transition, so none can start; add a transition from workflow_start');
    } else if (roots.length > 1) {
      for (const r of roots) {
        this.issue('AMBIGUOUS_START', r, '', `several tasks have no incoming transition (${roots.join(', ')}); say which start with transitions from workflow_start`);
      }
    } else {
      this.start = roots;
    }
  }

  checkReachabilityAndCycles(): void {
    if (this.start.length > 0) {
      const seen = new Set<string>(this.start);
      const queue = [...this.start];
      while (queue.length) {
        const id = queue.shift() as string;
        for (const e of this.successors.get(id) ?? []) if (e.to !== WORKFLOW_END && !seen.has(e.to)) (seen.add(e.to), queue.push(e.to));
      }
      for (const id of this.ids) if (!seen.has(id)) this.issue('UNREACHABLE', id, '', `no transition path from the start leads to task '${id}'`);
    }
    // Depth-first: an edge to a task still on the stack closes a cycle; report it on that transition.
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (id: string): void => {
      state.set(id, 'open');
      stack.push(id);
      for (const e of this.successors.get(id) ?? []) {
        if (e.to === WORKFLOW_END) continue;
        const s = state.get(e.to);
        if (s === 'open') {
          this.hasCycle = true;
          const loop = [...stack.slice(stack.indexOf(e.to)), e.to].join(' -> ');
          this.issue('CYCLE', id, `/transitions/${escapePointer(id)}/${escapePointer(e.to)}`, `transition from '${id}' to '${e.to}' closes a cycle (${loop}); repeat work with a poll task instead`, true);
        } else if (s === undefined) {
          visit(e.to);
        }
      }
      stack.pop();
      state.set(id, 'done');
    };
    for (const id of [...this.start, ...this.ids]) if (!state.has(id)) visit(id);
  }

  computeAncestors(): void {
    const preds = new Map<string, string[]>(this.ids.map((id) => [id, []]));
    for (const id of this.ids) for (const e of this.successors.get(id) ?? []) if (e.to !== WORKFLOW_END) preds.get(e.to)?.push(id);
    for (const id of this.ids) {
      const seen = new Set<string>();
      const queue = [...(preds.get(id) ?? [])];
      while (queue.length) {
        const p = queue.shift() as string;
        if (seen.has(p)) continue;
        seen.add(p);
        queue.push(...(preds.get(p) ?? []));
      }
      this.ancestors.set(id, seen);
    }
  }

  async resolveOutputSchemas(): Promise<void> {
    for (const id of this.ids) {
      const task = this.task(id);
      let schema: JsonSchema = TASK_KIND_SPECS[task.kind].outputSchema;
      if (task.kind === 'directory') schema = DIRECTORY_OPERATION_SCHEMAS[task.operation].outputSchema;
      if (task.kind === 'winrm') schema = WINRM_ACTION_SCHEMAS[task.action].outputSchema;
      if (task.kind === 'integration') schema = (await this.checkOperation(id, task.operation, task.incoming, ''))?.outputSchema ?? ENVELOPE_SCHEMA;
      this.outputSchemas.set(id, schema);
    }
  }

  /** Checks `<integration>/<operationId>` through ctx; returns what ctx knows of it. */
  async checkOperation(taskId: string, operation: string, incoming: unknown, prefix: string): Promise<OperationInfo | undefined> {
    if (!this.ctx.lookupIntegration) return undefined;
    const slash = operation.indexOf('/');
    const integration = operation.slice(0, slash);
    const operationId = operation.slice(slash + 1);
    const info = await this.ctx.lookupIntegration(integration);
    if (!info) {
      this.issue('UNKNOWN_INTEGRATION', taskId, `${prefix}/operation`, `unknown integration '${integration}'`);
      return undefined;
    }
    const op = info.operation(operationId);
    if (!op) {
      this.issue('UNKNOWN_OPERATION', taskId, `${prefix}/operation`, `integration '${integration}' has no operation '${operationId}'`);
      return undefined;
    }
    if (op.inputSchema !== undefined) {
      const validate = operationValidator(op.inputSchema);
      if (typeof validate === 'string') {
        this.issue('INVALID_TASK_INPUT', taskId, `${prefix}/operation`, `the input schema of '${operation}' does not compile: ${validate}`);
      } else if (!validate(incoming ?? {})) {
        for (const e of formatSchemaErrors(validate.errors ?? [], `${prefix}/incoming`)) {
          this.issue('INVALID_TASK_INPUT', taskId, e.path, `${e.message} (input of ${operation})`);
        }
      }
    }
    return op;
  }

  collectJobVariables(): void {
    for (const id of this.ids) {
      for (const spec of Object.values(this.task(id).outgoing ?? {})) {
        const job = outgoingJobVariable(spec);
        if (job) this.jobVariables.add(job);
      }
    }
  }

  checkOutgoing(id: string): void {
    const props = closedProperties(this.outputSchemas.get(id));
    if (!props) return;
    for (const [name, spec] of Object.entries(this.task(id).outgoing ?? {})) {
      const first = outgoingSourcePath(name, spec)[0] as string;
      if (!props.includes(first)) {
        const where = spec !== null && typeof spec === 'object' && spec.from ? `/outgoing/${escapePointer(name)}/from` : `/outgoing/${escapePointer(name)}`;
        this.issue('UNKNOWN_VARIABLE', id, where, `the output of task '${id}' has no '${first}' (it has ${props.join(', ')})`);
      }
    }
  }

  /** A reference to another task must name one that can have finished before this one runs. */
  checkTaskReference(id: string, path: string, target: string, expression: string): boolean {
    if (!this.graph.tasks[target]) {
      this.issue('UNKNOWN_TASK_REFERENCE', id, path, `'${expression}' names task '${target}', which does not exist`);
      return false;
    }
    if (!this.ancestors.get(id)?.has(target)) {
      this.issue('UNKNOWN_TASK_REFERENCE', id, path, `'${expression}' names task '${target}', which cannot have run before '${id}' (no transition path leads from it here)`);
      return false;
    }
    return true;
  }

  checkReference(id: string, site: TemplateSite, ref: TemplateReference): void {
    const path = site.pointer + ref.pointer;
    const known = (name: string) => this.inputNames.has(name) || this.jobVariables.has(name);
    if (ref.kind === 'var') {
      if (site.onlyInputs) {
        this.issue('TEMPLATE_NOT_ALLOWED', id, path, `'${ref.expression}': only {{inputs.*}} may be used here`);
        return;
      }
      if (ref.task === 'job') {
        if (!known(ref.name)) this.issue('UNKNOWN_VARIABLE', id, path, `'${ref.expression}': '${ref.name}' is neither an input nor a job variable any task exports`);
        return;
      }
      if (!this.checkTaskReference(id, path, ref.task, ref.expression)) return;
      const outgoing = this.task(ref.task).outgoing ?? {};
      if (!Object.prototype.hasOwnProperty.call(outgoing, ref.name)) {
        const names = Object.keys(outgoing);
        this.issue('UNKNOWN_VARIABLE', id, path, `'${ref.expression}': task '${ref.task}' has no outgoing variable '${ref.name}'${names.length ? ` (it has ${names.join(', ')})` : ''}`);
      }
      return;
    }
    if (site.onlyInputs && ref.root !== 'inputs') {
      this.issue('TEMPLATE_NOT_ALLOWED', id, path, `'{{${ref.expression}}}': only {{inputs.*}} may be used here, so order data cannot steer where a call goes`);
      return;
    }
    const [first, second, ...rest] = ref.path;
    switch (ref.root) {
      case 'order':
      case 'asset':
        return;
      case 'params':
        if (first !== undefined && !first.startsWith('attr_')) this.issue('UNKNOWN_VARIABLE', id, path, `'{{${ref.expression}}}': params are the order's config as params.attr_<key>`);
        return;
      case 'inputs':
        if (first === undefined) return;
        if (!this.inputNames.has(first)) this.issue('UNKNOWN_VARIABLE', id, path, `'{{${ref.expression}}}': '${first}' is not a property of the input schema`);
        return;
      case 'job':
        if (first !== undefined && !known(first)) this.issue('UNKNOWN_VARIABLE', id, path, `'{{${ref.expression}}}': '${first}' is neither an input nor a job variable any task exports`);
        return;
      case 'steps': {
        if (first === undefined) return;
        if (!this.checkTaskReference(id, path, first, `{{${ref.expression}}}`)) return;
        if (second === undefined) return;
        if (second !== 'output' && second !== 'status') {
          this.issue('UNKNOWN_VARIABLE', id, path, `'{{${ref.expression}}}': a step offers 'output' and 'status', not '${second}'`);
          return;
        }
        const props = second === 'output' ? closedProperties(this.outputSchemas.get(first)) : undefined;
        if (props && rest[0] !== undefined && !props.includes(rest[0])) {
          this.issue('UNKNOWN_VARIABLE', id, path, `'{{${ref.expression}}}': the output of task '${first}' has no '${rest[0]}' (it has ${props.join(', ')})`);
        }
        return;
      }
      case 'item':
      case 'index':
        if (!site.allowItem) this.issue('TEMPLATE_NOT_ALLOWED', id, path, `'{{${ref.expression}}}': item and index exist only in the inputs of a child task that runs over items`);
        return;
      case 'output':
        if (!site.allowOutput) this.issue('TEMPLATE_NOT_ALLOWED', id, path, `'{{${ref.expression}}}': output exists only in a poll task's until/failWhen conditions`);
        return;
      default:
        this.issue('UNKNOWN_TEMPLATE_ROOT', id, path, `'{{${ref.expression}}}': unknown root '${ref.root}' (use order, asset, params, inputs, job, steps)`);
    }
  }

  checkTemplates(id: string): void {
    for (const site of templateSites(this.task(id))) {
      const scan = scanTemplates(site.value);
      for (const p of scan.problems) this.issue('TEMPLATE_SYNTAX', id, site.pointer + p.pointer, p.message);
      for (const ref of scan.references) this.checkReference(id, site, ref);
    }
  }

  checkConditions(id: string, set: ConditionSet, pointer: string): void {
    set.conditions.forEach((c, i) => {
      const unary = UNARY_OPERATORS.includes(c.operator);
      if (unary && c.right !== undefined) this.issue('SCHEMA', id, `${pointer}/conditions/${i}/right`, `operator '${c.operator}' takes no right operand`);
      if (!unary && c.right === undefined) this.issue('SCHEMA', id, `${pointer}/conditions/${i}`, `operator '${c.operator}' needs a right operand`);
      if (c.operator === 'matches' && typeof c.right === 'string' && !c.right.includes('{{') && !c.right.startsWith('$var.')) {
        try {
          new RegExp(c.right);
        } catch (e) {
          this.issue('INVALID_REGEX', id, `${pointer}/conditions/${i}/right`, `invalid regular expression: ${(e as Error).message}`);
        }
      }
    });
  }

  async checkKind(id: string): Promise<void> {
    const task = this.task(id);
    switch (task.kind) {
      case 'transform': {
        const error = checkTransformExpression(task.expression);
        if (error) this.issue('INVALID_EXPRESSION', id, '/expression', error);
        return;
      }
      case 'evaluate':
        this.checkConditions(id, task.incoming, '/incoming');
        return;
      case 'poll':
        this.checkConditions(id, task.until, '/until');
        if (task.failWhen) this.checkConditions(id, task.failWhen, '/failWhen');
        await this.checkProbe(id, task.task);
        return;
      case 'script':
        await this.checkScript(id, task.script, '');
        return;
      case 'child':
        await this.checkChild(id);
        return;
      case 'winrm':
        // The connection is an integration: unknown, it is the same issue as an operation's unknown integration.
        if (this.ctx.lookupIntegration && !(await this.ctx.lookupIntegration(task.connection))) {
          this.issue('UNKNOWN_INTEGRATION', id, '/connection', `unknown integration '${task.connection}'`);
        }
        return;
      default:
        return;
    }
  }

  async checkProbe(id: string, probe: PollProbe): Promise<void> {
    if (probe.kind === 'integration') await this.checkOperation(id, probe.operation, probe.incoming, '/task');
    if (probe.kind === 'script') await this.checkScript(id, probe.script, '/task');
  }

  async checkScript(id: string, script: { module: string; version: number }, prefix: string): Promise<void> {
    if (!this.ctx.lookupScriptModule) return;
    if (!(await this.ctx.lookupScriptModule(script.module, script.version))) {
      this.issue('UNKNOWN_SCRIPT_MODULE', id, `${prefix}/script`, `unknown script module '${script.module}' version ${script.version}`);
    }
  }

  async checkChild(id: string): Promise<void> {
    const task = this.task(id);
    if (task.kind !== 'child') return;
    if (task.workflow === this.doc.name) {
      this.issue('CYCLE', id, '/workflow', 'a workflow cannot run itself as a child');
      return;
    }
    if (!this.ctx.lookupWorkflow) return;
    const info = await this.ctx.lookupWorkflow(task.workflow, task.version);
    if (!info) {
      this.issue('UNKNOWN_WORKFLOW', id, '/workflow', `unknown workflow '${task.workflow}'${task.version !== undefined ? ` version ${task.version}` : ''}`);
      return;
    }
    const schema = info.inputSchema;
    if (!isRecord(schema)) return;
    const inputs = task.incoming?.inputs ?? {};
    const props = isRecord(schema.properties) ? Object.keys(schema.properties) : undefined;
    for (const r of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
      if (!(r in inputs)) this.issue('INVALID_TASK_INPUT', id, '/incoming/inputs', `workflow '${task.workflow}' requires input '${r}'`);
    }
    if (props && schema.additionalProperties === false) {
      for (const k of Object.keys(inputs)) {
        if (!props.includes(k)) this.issue('INVALID_TASK_INPUT', id, `/incoming/inputs/${escapePointer(k)}`, `workflow '${task.workflow}' has no input '${k}'`);
      }
    }
  }

  topologicalOrder(): string[] {
    const indegree = new Map<string, number>(this.ids.map((id) => [id, 0]));
    for (const id of this.ids) for (const e of this.successors.get(id) ?? []) if (e.to !== WORKFLOW_END) indegree.set(e.to, (indegree.get(e.to) ?? 0) + 1);
    const queue = this.ids.filter((id) => indegree.get(id) === 0);
    const order: string[] = [];
    while (queue.length) {
      const id = queue.shift() as string;
      order.push(id);
      for (const e of this.successors.get(id) ?? []) {
        if (e.to === WORKFLOW_END) continue;
        const n = (indegree.get(e.to) ?? 0) - 1;
        indegree.set(e.to, n);
        if (n === 0) queue.push(e.to);
      }
    }
    return order;
  }

  build(): CompiledWorkflow {
    const tasks: Record<string, CompiledTask> = {};
    const predecessors = new Map<string, string[]>(this.ids.map((id) => [id, []]));
    for (const id of this.ids) for (const e of this.successors.get(id) ?? []) if (e.to !== WORKFLOW_END) predecessors.get(e.to)?.push(id);
    for (const id of this.ids) {
      const task = this.task(id);
      const edges = this.successors.get(id) ?? [];
      const success = edges.filter((e) => e.state === 'success').map((e) => e.to);
      const explicitError = edges.filter((e) => e.state === 'error').map((e) => e.to);
      const critical = task.critical ?? true;
      tasks[id] = {
        id,
        kind: task.kind,
        task,
        retry: resolveRetry(task),
        timeoutMs: task.timeout !== undefined ? parseDuration(task.timeout) : null,
        critical,
        // Non-critical without an error transition: a failure continues the way success would.
        next: { success, error: explicitError.length > 0 ? explicitError : critical ? [] : success },
        failsRunOnError: explicitError.length === 0 && critical,
        predecessors: predecessors.get(id) ?? [],
        nodeLocation: task.nodeLocation ?? DEFAULT_LOCATION,
        outputSchema: this.outputSchemas.get(id) ?? TASK_KIND_SPECS[task.kind].outputSchema,
      };
    }
    return {
      name: this.doc.name,
      version: this.doc.version ?? null,
      description: this.doc.description ?? '',
      inputSchema: this.doc.inputSchema ?? { type: 'object', properties: {}, additionalProperties: false },
      start: this.start,
      order: this.topologicalOrder(),
      tasks,
      jobVariables: [...this.jobVariables].sort(),
      graph: this.graph,
    };
  }
}

/**
 * Checks a workflow document and normalises it into the graph the engine runs.
 * Returns every problem found rather than throwing; schema problems are reported alone (later checks need a
 * well-formed document). Never throws for a bad document; a ctx callback that throws propagates.
 */
export async function compileWorkflow(doc: unknown, ctx: CompileContext = {}): Promise<CompileResult> {
  const schemaIssues = validateWorkflowDocument(doc);
  if (schemaIssues.length > 0) return { ok: false, errors: schemaIssues };
  const c = new Compiler(doc as WorkflowDocument, ctx);
  c.checkInputSchema();
  c.checkTransitions();
  c.findStart();
  c.checkReachabilityAndCycles();
  c.computeAncestors();
  c.collectJobVariables();
  await c.resolveOutputSchemas();
  for (const id of c.ids) {
    c.checkOutgoing(id);
    c.checkTemplates(id);
    await c.checkKind(id);
  }
  if (c.errors.length > 0) return { ok: false, errors: c.errors };
  return { ok: true, workflow: c.build() };
}
