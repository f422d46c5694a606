// The sample runbooks in workflows/definitions/: each must compile against the vendor integration models in
// openapi/integrations/ (their operationIds and task input schemas), read only response fields those models declare,
// and be stored in export form. A model change that breaks a sample fails here, naming the task.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isRecord, projectPath } from '../../adapter';
import { loadIntegrationModelFile, operationInputSchema, operationOutputSchema, type IntegrationModel } from '../../integration-model';
import { scanTemplates } from '../templating';
import {
  compileWorkflow,
  exportWorkflow,
  staticCompileContext,
  type CompileContext,
  type CompiledWorkflow,
  type JsonSchema,
  type OperationInfo,
  type PollProbe,
  type WorkflowDocument,
  type WorkflowTask,
} from './index';

const DIR = path.join(__dirname, '../definitions');

/** Integration name (the part of a task's `operation` before the slash) -> its model under openapi/integrations/. */
const MODEL_FILES = { vcenter: 'vcenter.yaml', sccm: 'sccm-adminservice.yaml', servicenow: 'servicenow-table.yaml', xenserver: 'xenserver.yaml' } as const;
type IntegrationName = keyof typeof MODEL_FILES;

const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
const documents = files.map((f) => ({ file: f, text: readFileSync(path.join(DIR, f), 'utf8') }));
const parsed = documents.map((d) => ({ ...d, doc: JSON.parse(d.text) as WorkflowDocument }));
const sampleWorkflows = Object.fromEntries(parsed.map(({ doc }) => [doc.name, [{ version: doc.version ?? 1, inputSchema: doc.inputSchema }]]));

/**
 * The compile context the engine would build from these models: each integration's operations with the task input
 * and output schemas integration-model derives. The schema objects are built once per operation, so the compiler's
 * validator cache holds across documents.
 */
function modelCompileContext(models: Record<string, IntegrationModel>, workflows: typeof sampleWorkflows): CompileContext {
  const catalogue = new Map<string, Map<string, OperationInfo>>(
    Object.entries(models).map(([name, model]) => [
      name,
      new Map(model.operations.map((op) => [op.operationId, { inputSchema: operationInputSchema(op), outputSchema: operationOutputSchema(op) }])),
    ]),
  );
  return {
    lookupIntegration: (name) => {
      const ops = catalogue.get(name);
      return ops ? { operation: (id) => ops.get(id) } : undefined;
    },
    lookupWorkflow: staticCompileContext({ workflows }).lookupWorkflow,
  };
}

let models: Record<IntegrationName, IntegrationModel>;
let ctx: CompileContext;

beforeAll(async () => {
  const entries = await Promise.all(
    Object.entries(MODEL_FILES).map(async ([name, file]) => [name, await loadIntegrationModelFile(projectPath('openapi', 'integrations', file))] as const),
  );
  models = Object.fromEntries(entries) as Record<IntegrationName, IntegrationModel>;
  ctx = modelCompileContext(models, sampleWorkflows);
});

async function compiled(name: string): Promise<CompiledWorkflow> {
  const entry = parsed.find((p) => p.doc.name === name);
  if (!entry) throw new Error(`no sample named ${name}`);
  const r = await compileWorkflow(entry.doc, ctx);
  if (!r.ok) throw new Error(`${entry.file}: ${JSON.stringify(r.errors, null, 2)}`);
  return r.workflow;
}

/**
 * How many leading `segments` `schema` declares, when fewer than all: the index of the first segment that names no
 * declared property (or indexes a non-array); undefined when the whole path is declared or runs into an untyped
 * value. A property an open object (additionalProperties) would merely tolerate does not count: `ResourceID` where
 * the model says `ResourceId` must fail.
 */
function undeclaredAt(schema: JsonSchema, segments: readonly string[], defs: Record<string, JsonSchema>, depth = 0): number | undefined {
  if (depth === segments.length || !isRecord(schema)) return undefined;
  if (typeof schema.$ref === 'string') {
    const target = defs[schema.$ref.replace(/^#\/\$defs\//, '')];
    return target === undefined ? depth : undeclaredAt(target, segments, defs, depth);
  }
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const branches = schema[key];
    if (Array.isArray(branches)) {
      const misses = branches.map((b) => undeclaredAt(b as JsonSchema, segments, defs, depth));
      return misses.some((m) => m === undefined) ? undefined : Math.max(...(misses as number[]));
    }
  }
  const head = segments[depth] as string;
  if (schema.type === 'array' || schema.items !== undefined) {
    return /^\d+$/.test(head) ? undeclaredAt((schema.items ?? {}) as JsonSchema, segments, defs, depth + 1) : depth;
  }
  if (isRecord(schema.properties)) {
    if (!Object.prototype.hasOwnProperty.call(schema.properties, head)) return depth;
    return undeclaredAt(schema.properties[head] as JsonSchema, segments, defs, depth + 1);
  }
  return undefined;
}

/**
 * Every response field a workflow reads from an integration call (outgoing `from` paths, `{{steps.<id>.output...}}`,
 * a poll's `{{output...}}` on its probe, and `result...` of a poll's own output) that the operation's output schema
 * does not declare.
 */
function undeclaredResponseFields(wf: CompiledWorkflow): string[] {
  const problems: string[] = [];
  /** `segments` into the output of task `taskId`; `ofProbe`: into its poll probe's output rather than the poll's. */
  const check = (at: string, taskId: string, segments: string[], ofProbe = false) => {
    const task = wf.tasks[taskId]?.task;
    let call: WorkflowTask | PollProbe | undefined = task;
    let fieldPath = segments;
    if (task?.kind === 'poll') {
      call = task.task;
      // A poll's own output is {attempts, elapsedMs, result}; the compiler checks that first name, result is the probe's.
      if (!ofProbe) {
        if (segments[0] !== 'result') return;
        fieldPath = segments.slice(1);
      }
    }
    if (call?.kind !== 'integration') return;
    const [integration, operationId] = call.operation.split('/') as [string, string];
    const op = models[integration as IntegrationName].operations.find((o) => o.operationId === operationId);
    if (!op) throw new Error(`${at}: no operation ${call.operation}`);
    const schema = operationOutputSchema(op);
    const miss = undeclaredAt(schema, fieldPath, isRecord(schema) && isRecord(schema.$defs) ? (schema.$defs as Record<string, JsonSchema>) : {});
    if (miss !== undefined) problems.push(`${at}: '${fieldPath.join('.')}' - ${call.operation} declares no '${fieldPath[miss]}' there`);
  };
  for (const [id, { task }] of Object.entries(wf.tasks)) {
    for (const [name, spec] of Object.entries(task.outgoing ?? {})) {
      if (isRecord(spec) && typeof spec.from === 'string') check(`${id} outgoing ${name}`, id, spec.from.split('.'));
    }
    for (const ref of scanTemplates(task).references) {
      if (ref.kind !== 'template') continue;
      if (ref.root === 'steps' && ref.path[1] === 'output') check(`${id} ${ref.pointer}`, ref.path[0] as string, ref.path.slice(2));
      if (ref.root === 'output') check(`${id} ${ref.pointer}`, id, ref.path, true);
    }
  }
  return problems;
}

describe('sample definitions', () => {
  it('holds the Standard VDI, SaaS seat and XenServer VM sets', () => {
    expect(parsed.map((p) => p.doc.name).sort()).toEqual([
      'SaaS seat - deprovision',
      'SaaS seat - provision',
      'ServiceNow - RITM work note',
      'Standard VDI - deprovision',
      'Standard VDI - provision',
      'Standard VDI - reinstall',
      'XenServer VM - deprovision',
      'XenServer VM - provision',
    ]);
  });

  it('loads the vendor models the samples call without warnings or dropped operations', () => {
    for (const model of Object.values(models)) expect({ id: model.id, warnings: model.warnings, dropped: model.dropped }).toEqual({ id: model.id, warnings: [], dropped: [] });
  });

  it.each(documents.map((d) => [d.file, d.text]))('%s is stored in export form', (_file, text) => {
    expect(exportWorkflow(JSON.parse(text) as WorkflowDocument)).toBe(text);
  });

  it.each(parsed.map((p) => [p.file, p.doc.name]))('%s compiles against the integration models', async (_file, name) => {
    await expect(compiled(name)).resolves.toBeDefined();
  });

  it.each(parsed.map((p) => [p.file, p.doc.name]))('%s reads only response fields the models declare', async (_file, name) => {
    expect(undeclaredResponseFields(await compiled(name))).toEqual([]);
  });

  it('Standard VDI - provision powers on, customises, adds the AD group and polls the task sequence', async () => {
    const wf = await compiled('Standard VDI - provision');
    expect(wf.order).toEqual(['find_vm', 'check_vm_found', 'customise_guest', 'power_on', 'add_rdp_group', 'find_device', 'start_task_sequence', 'refresh_policy', 'run_task_sequence', 'wait_task_sequence', 'from_servicenow', 'note_ritm']);
    const kinds = Object.fromEntries(wf.order.map((id) => [id, wf.tasks[id]?.kind]));
    expect(kinds).toMatchObject({ power_on: 'integration', add_rdp_group: 'directory', refresh_policy: 'winrm', run_task_sequence: 'winrm', wait_task_sequence: 'poll', note_ritm: 'child' });
    // The WinRM trigger runs before the AdminService status poll, with the sccm integration's credentials.
    expect(wf.tasks.run_task_sequence?.task).toMatchObject({ connection: 'sccm', action: 'executeProgram', incoming: { packageId: '{{inputs.taskSequencePackageId}}' } });
    expect(wf.tasks.power_on?.task).toMatchObject({ operation: 'vcenter/api_vcenter_vm_power_action', incoming: { query: { action: 'start' } } });
    expect(wf.tasks.find_device?.task).toMatchObject({ outgoing: { resourceId: { from: 'body.value.0.ResourceId' } } });
    expect(wf.tasks.from_servicenow?.next).toEqual({ success: ['note_ritm'], error: ['workflow_end'] });
    expect(wf.tasks.note_ritm?.failsRunOnError).toBe(false);
  });

  it('Standard VDI - reinstall powers off (already off accepted), polls the OS deployment', async () => {
    const wf = await compiled('Standard VDI - reinstall');
    expect(wf.tasks.power_off?.task).toMatchObject({ operation: 'vcenter/api_vcenter_vm_power_action', acceptStatuses: [400], incoming: { query: { action: 'stop' } } });
    expect(wf.tasks.wait_task_sequence?.task).toMatchObject({ kind: 'poll', interval: '2m', maxDuration: '6h' });
  });

  it('Standard VDI - deprovision is a steps runbook whose last step is not critical', async () => {
    const wf = await compiled('Standard VDI - deprovision');
    expect(wf.order).toEqual(['remove_rdp_group', 'find_vm', 'shutdown_guest']);
    expect(wf.tasks.shutdown_guest?.task).toMatchObject({ operation: 'vcenter/api_vcenter_vm_guest_power_action', incoming: { query: { action: 'shutdown' } } });
    expect(wf.tasks.shutdown_guest?.next).toEqual({ success: ['workflow_end'], error: ['workflow_end'] });
  });

  it('the SaaS seat set goes through a signed provisioning webhook', async () => {
    for (const name of ['SaaS seat - provision', 'SaaS seat - deprovision']) {
      const wf = await compiled(name);
      const hook = Object.values(wf.tasks).find((t) => t.kind === 'webhook');
      expect(hook?.task).toMatchObject({ secretRef: 'webhooks.saas_seat_secret', incoming: { target_user: { email: '{{order.user_email}}' } } });
      expect(hook?.timeoutMs).toBe(30_000);
    }
  });
});

describe('sample definitions: model drift is caught', () => {
  const provision = () => JSON.parse(JSON.stringify(parsed.find((p) => p.doc.name === 'Standard VDI - provision')?.doc)) as WorkflowDocument & { tasks: Record<string, Record<string, unknown>> };

  it('fails to compile when an integration lacks an operation the samples use', async () => {
    const entry = parsed.find((p) => p.doc.name === 'Standard VDI - provision');
    const sccm = { ...models.sccm, operations: models.sccm.operations.filter((o) => o.operationId === 'get_device_by_name') };
    const narrow = modelCompileContext({ ...models, sccm }, {});
    const r = await compileWorkflow(entry?.doc, narrow);
    expect(!r.ok && r.errors.map((e) => [e.code, e.taskId])).toEqual([
      ['UNKNOWN_OPERATION', 'start_task_sequence'],
      ['UNKNOWN_OPERATION', 'wait_task_sequence'],
      ['UNKNOWN_WORKFLOW', 'note_ritm'],
    ]);
  });

  it("fails to compile when a task's input does not match the operation's input schema", async () => {
    const doc = provision();
    doc.tasks.power_on = { ...doc.tasks.power_on, incoming: { path: { vm: '$var.find_vm.vmId' }, query: { action: 'on' } } };
    const r = await compileWorkflow(doc, ctx);
    expect(!r.ok && r.errors.map((e) => [e.code, e.taskId, e.path])).toEqual([['INVALID_TASK_INPUT', 'power_on', '/tasks/power_on/incoming/query/action']]);
    delete (doc.tasks.power_on as { incoming: { query?: unknown } }).incoming.query;
    const missing = await compileWorkflow(doc, ctx);
    expect(!missing.ok && missing.errors.map((e) => [e.code, e.taskId, e.message])).toEqual([
      ['INVALID_TASK_INPUT', 'power_on', "must have required property 'query' (input of vcenter/api_vcenter_vm_power_action)"],
    ]);
  });

  it('reports a response field the model does not declare (its case included)', async () => {
    const doc = provision();
    doc.tasks.find_device = { ...doc.tasks.find_device, outgoing: { resourceId: { from: 'body.value.0.ResourceID' } } };
    const text = JSON.stringify(doc.tasks.wait_task_sequence).replace('.ResourceId}}', '.ResourceID}}').replace('{{output.body.value.0.StatusType}}', '{{output.body.value.Status}}');
    doc.tasks.wait_task_sequence = { ...(JSON.parse(text) as Record<string, unknown>), outgoing: { status: { from: 'result.body.value.0.Status' } } };
    const r = await compileWorkflow(doc, ctx);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(undeclaredResponseFields(r.workflow)).toEqual([
      "find_device outgoing resourceId: 'body.value.0.ResourceID' - sccm/get_device_by_name declares no 'ResourceID' there",
      "wait_task_sequence outgoing status: 'body.value.0.Status' - sccm/list_deployment_asset_details declares no 'Status' there",
      "wait_task_sequence /task/incoming/query/$filter: 'body.value.0.ResourceID' - sccm/get_device_by_name declares no 'ResourceID' there",
      "wait_task_sequence /until/conditions/0/left: 'body.value.Status' - sccm/list_deployment_asset_details declares no 'Status' there",
    ]);
  });
});
