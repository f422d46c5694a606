import { compileWorkflow, type CompileResult, type GraphWorkflowDocument, type StepsWorkflowDocument, type WorkflowIssue, type WorkflowTask } from './index';
import { clone, sampleContext, sampleDocument } from './test-support';

function errorsOf(r: CompileResult): WorkflowIssue[] {
  if (r.ok) throw new Error('expected the document to be rejected');
  return r.errors;
}

async function rejected(doc: unknown): Promise<WorkflowIssue[]> {
  return errorsOf(await compileWorkflow(doc, sampleContext));
}

function withTask(id: string, task: WorkflowTask, from = 'grant'): GraphWorkflowDocument {
  const doc = clone(sampleDocument());
  doc.tasks[id] = task;
  doc.transitions = { ...doc.transitions, [from]: { [id]: { type: 'standard', state: 'success' } }, [id]: { workflow_end: { type: 'standard', state: 'success' } } };
  return doc;
}

describe('compileWorkflow: a valid graph', () => {
  it('normalises tasks, edges, retry and timeouts', async () => {
    const r = await compileWorkflow(sampleDocument(), sampleContext);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const wf = r.workflow;
    expect(wf.start).toEqual(['find_vm']);
    expect(wf.order).toEqual(['find_vm', 'power_on', 'grant', 'report']);
    expect(wf.version).toBe(3);
    expect(wf.jobVariables).toEqual(['vm']);
    expect(wf.tasks.find_vm).toMatchObject({
      retry: { maxAttempts: 4, initialIntervalMs: 2000, backoffCoefficient: 2, maximumIntervalMs: 60000, maxDurationMs: null, retryableErrors: ['HTTP_5XX'] },
      timeoutMs: 30000,
      critical: true,
      next: { success: ['power_on'], error: [] },
      failsRunOnError: true,
      predecessors: [],
    });
    // An error transition: failure continues there and does not halt the run.
    expect(wf.tasks.power_on).toMatchObject({ next: { success: ['grant'], error: ['report'] }, failsRunOnError: false, timeoutMs: null });
    expect(wf.tasks.power_on?.retry).toEqual({ maxAttempts: 1, initialIntervalMs: 1000, backoffCoefficient: 2, maximumIntervalMs: 100000, maxDurationMs: null, retryableErrors: ['TIMEOUT', 'NETWORK', 'HTTP_429', 'HTTP_5XX'] });
    // critical: false without an error transition: failure goes the way success would.
    expect(wf.tasks.grant).toMatchObject({ critical: false, next: { success: ['workflow_end'], error: ['workflow_end'] }, failsRunOnError: false });
    expect(wf.tasks.report).toMatchObject({ predecessors: ['power_on'], nodeLocation: { x: 200, y: 300 } });
    expect(wf.tasks.grant?.outputSchema).toMatchObject({ required: ['changed'] });
  });

  it('starts from the single task without incoming transitions when workflow_start is not used', async () => {
    const doc = sampleDocument();
    delete doc.transitions?.workflow_start;
    const r = await compileWorkflow(doc, sampleContext);
    expect(r.ok && r.workflow.start).toEqual(['find_vm']);
  });

  it('skips the lookups a context does not offer', async () => {
    const doc = withTask('x', { kind: 'integration', operation: 'nowhere/nothing' });
    expect((await compileWorkflow(doc, {})).ok).toBe(true);
  });

  it('accepts parallel branches from workflow_start and a join', async () => {
    const doc: GraphWorkflowDocument = {
      name: 'Fan out',
      tasks: {
        a: { kind: 'wait', until: 'duration', incoming: { duration: '1s' } },
        b: { kind: 'wait', until: 'duration', incoming: { duration: 5 } },
        c: { kind: 'wait', until: 'resumed', timeout: '1h' },
      },
      transitions: {
        workflow_start: { a: { state: 'success' }, b: { state: 'success' } },
        a: { c: { state: 'success' } },
        b: { c: { state: 'success' } },
      },
    };
    const r = await compileWorkflow(doc);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.workflow.start).toEqual(['a', 'b']);
    expect(r.workflow.tasks.c?.predecessors).toEqual(['a', 'b']);
    expect(r.workflow.tasks.c?.timeoutMs).toBe(3_600_000);
  });
});

describe('compileWorkflow: the steps shorthand', () => {
  const steps: StepsWorkflowDocument = {
    name: 'Runbook',
    inputSchema: { type: 'object', properties: { group: { type: 'string' } } },
    steps: [
      { id: 'one', kind: 'directory', operation: 'findUser', incoming: { user: '{{order.username}}' } },
      { id: 'two', kind: 'directory', operation: 'addGroupMember', incoming: { user: '{{steps.one.output.user.dn}}', group: '{{inputs.group}}' }, critical: false },
      { id: 'three', kind: 'script', script: { module: 'Reset-Profile', version: 2 }, incoming: { USER: '{{order.username}}', DRY_RUN: false } },
    ],
  };

  it('compiles to a chain: each success to the next, critical: false continuing on error', async () => {
    const r = await compileWorkflow(steps, sampleContext);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.workflow.start).toEqual(['one']);
    expect(r.workflow.order).toEqual(['one', 'two', 'three']);
    expect(r.workflow.tasks.one?.next).toEqual({ success: ['two'], error: [] });
    expect(r.workflow.tasks.two?.next).toEqual({ success: ['three'], error: ['three'] });
    expect(r.workflow.tasks.three?.next).toEqual({ success: ['workflow_end'], error: [] });
    expect(r.workflow.tasks.two?.nodeLocation).toEqual({ x: 0, y: 240 });
    expect(r.workflow.graph.transitions?.workflow_start).toEqual({ one: { type: 'standard', state: 'success' } });
  });

  it('gives the same graph as the equivalent tasks/transitions document', async () => {
    const a = await compileWorkflow(steps, sampleContext);
    if (!a.ok) throw new Error('steps form rejected');
    const b = await compileWorkflow(a.workflow.graph, sampleContext);
    if (!b.ok) throw new Error('graph form rejected');
    expect(b.workflow.tasks).toEqual(a.workflow.tasks);
    expect(b.workflow.start).toEqual(a.workflow.start);
  });

  it('points errors in a steps document at /steps/<index>', async () => {
    const bad = clone(steps);
    (bad.steps[1] as { incoming: Record<string, unknown> }).incoming.group = '{{inputs.nope}}';
    expect(await rejected(bad)).toEqual([
      { code: 'UNKNOWN_VARIABLE', taskId: 'two', path: '/steps/1/incoming/group', message: "'{{inputs.nope}}': 'nope' is not a property of the input schema" },
    ]);
  });

  it('rejects duplicate step ids', async () => {
    const bad = clone(steps);
    (bad.steps[2] as { id: string }).id = 'one';
    expect(await rejected(bad)).toContainEqual(expect.objectContaining({ code: 'DUPLICATE_TASK', taskId: 'one', path: '/steps/2/id' }));
  });

  it('rejects an unknown script module version', async () => {
    const bad = clone(steps);
    (bad.steps[2] as { script: { version: number } }).script.version = 9;
    expect(await rejected(bad)).toEqual([
      { code: 'UNKNOWN_SCRIPT_MODULE', taskId: 'three', path: '/steps/2/script', message: "unknown script module 'Reset-Profile' version 9" },
    ]);
  });
});

describe('compileWorkflow: graph errors point at the task', () => {
  it('a transition to an unknown task', async () => {
    const doc = sampleDocument();
    doc.transitions!.grant = { ghost: { state: 'success' } };
    expect(await rejected(doc)).toEqual([
      { code: 'UNKNOWN_TRANSITION_TARGET', taskId: 'grant', path: '/transitions/grant/ghost', message: "transition to 'ghost', which is not a task" },
    ]);
  });

  it('transitions from an unknown task', async () => {
    const doc = sampleDocument();
    doc.transitions!.ghost = { grant: { state: 'success' } };
    expect(await rejected(doc)).toEqual([
      { code: 'UNKNOWN_TRANSITION_SOURCE', taskId: 'ghost', path: '/transitions/ghost', message: "transitions from 'ghost', which is not a task" },
    ]);
  });

  it('transitions out of workflow_end or into workflow_start', async () => {
    const doc = sampleDocument();
    doc.transitions!.workflow_end = { grant: { state: 'success' } };
    doc.transitions!.report = { workflow_start: { state: 'success' } };
    expect((await rejected(doc)).map((e) => [e.code, e.taskId, e.path])).toEqual([
      ['INVALID_TRANSITION', 'report', '/transitions/report/workflow_start'],
      ['INVALID_TRANSITION', null, '/transitions/workflow_end'],
    ]);
  });

  it('an unreachable task', async () => {
    const doc = sampleDocument();
    doc.tasks.orphan = { kind: 'wait', until: 'resumed' };
    expect(await rejected(doc)).toEqual([{ code: 'UNREACHABLE', taskId: 'orphan', path: '/tasks/orphan', message: "no transition path from the start leads to task 'orphan'" }]);
  });

  it('several roots without workflow_start', async () => {
    const doc = sampleDocument();
    delete doc.transitions!.workflow_start;
    doc.tasks.orphan = { kind: 'wait', until: 'resumed' };
    const errors = await rejected(doc);
    expect(errors.map((e) => [e.code, e.taskId])).toEqual([
      ['AMBIGUOUS_START', 'find_vm'],
      ['AMBIGUOUS_START', 'orphan'],
    ]);
  });

  it('a cycle, reported on the transition that closes it', async () => {
    const doc = sampleDocument();
    doc.transitions!.grant = { find_vm: { state: 'success' } };
    expect(await rejected(doc)).toEqual([
      {
        code: 'CYCLE',
        taskId: 'grant',
        path: '/transitions/grant/find_vm',
        message: "transition from 'grant' to 'find_vm' closes a cycle (find_vm -> power_on -> grant -> find_vm); repeat work with a poll task instead",
      },
    ]);
  });

  it('a graph that is one cycle has no start', async () => {
    const doc: GraphWorkflowDocument = {
      name: 'Loop',
      tasks: { a: { kind: 'wait', until: 'resumed' }, b: { kind: 'wait', until: 'resumed' } },
      transitions: { a: { b: { state: 'success' } }, b: { a: { state: 'error' } } },
    };
    expect((await rejected(doc)).map((e) => [e.code, e.taskId])).toEqual([
      ['NO_START', null],
      ['CYCLE', 'b'],
    ]);
  });

  it('a graph without tasks', async () => {
    expect(await rejected({ name: 'Empty', tasks: {} })).toEqual([{ code: 'NO_START', taskId: null, path: '/tasks', message: 'the workflow has no tasks' }]);
  });

  it('an input schema that is not an object schema, or not a schema', async () => {
    const doc = sampleDocument();
    doc.inputSchema = { type: 'string' };
    expect((await rejected(doc))[0]).toMatchObject({ code: 'INVALID_INPUT_SCHEMA', taskId: null, path: '/inputSchema/type' });
    doc.inputSchema = { type: 'object', properties: { group: { type: 'strung' } } };
    expect((await rejected(doc))[0]).toMatchObject({ code: 'INVALID_INPUT_SCHEMA', taskId: null, path: '/inputSchema' });
  });
});

describe('compileWorkflow: references and templates', () => {
  it.each<[string, Record<string, unknown>, Partial<WorkflowIssue>]>([
    ['$var to an unknown task', { user: '$var.ghost.x', group: 'g' }, { code: 'UNKNOWN_TASK_REFERENCE', path: '/tasks/grant/incoming/user', message: "'$var.ghost.x' names task 'ghost', which does not exist" }],
    ['$var to an unknown variable', { user: '$var.find_vm.vmid', group: 'g' }, { code: 'UNKNOWN_VARIABLE', path: '/tasks/grant/incoming/user', message: "'$var.find_vm.vmid': task 'find_vm' has no outgoing variable 'vmid' (it has vmId)" }],
    ['$var to a task that runs later', { user: '$var.report.x', group: 'g' }, { code: 'UNKNOWN_TASK_REFERENCE', message: "'$var.report.x' names task 'report', which cannot have run before 'grant' (no transition path leads from it here)" }],
    ['$var.job to an unknown job variable', { user: '$var.job.nobody', group: 'g' }, { code: 'UNKNOWN_VARIABLE', message: "'$var.job.nobody': 'nobody' is neither an input nor a job variable any task exports" }],
    ['an unknown template root', { user: '{{ordr.username}}', group: 'g' }, { code: 'UNKNOWN_TEMPLATE_ROOT', path: '/tasks/grant/incoming/user', message: "'{{ordr.username}}': unknown root 'ordr' (use order, asset, params, inputs, job, steps)" }],
    ['an unknown input', { user: 'u', group: '{{inputs.grp}}' }, { code: 'UNKNOWN_VARIABLE', path: '/tasks/grant/incoming/group' }],
    ['params without attr_', { user: 'u', group: '{{params.group}}' }, { code: 'UNKNOWN_VARIABLE', message: "'{{params.group}}': params are the order's config as params.attr_<key>" }],
    ['a step that is not a predecessor', { user: '{{steps.report.output.result}}', group: 'g' }, { code: 'UNKNOWN_TASK_REFERENCE' }],
    ['a step field other than output/status', { user: '{{steps.find_vm.result}}', group: 'g' }, { code: 'UNKNOWN_VARIABLE', message: "'{{steps.find_vm.result}}': a step offers 'output' and 'status', not 'result'" }],
    ['an output property the kind does not have', { user: '{{steps.find_vm.output.bdy.x}}', group: 'g' }, { code: 'UNKNOWN_VARIABLE', message: expect.stringContaining("the output of task 'find_vm' has no 'bdy'") }],
    ['item outside a child task', { user: '{{item.name}}', group: 'g' }, { code: 'TEMPLATE_NOT_ALLOWED' }],
    ['output outside a poll condition', { user: '{{output.body}}', group: 'g' }, { code: 'TEMPLATE_NOT_ALLOWED' }],
    ['a malformed template', { user: '{{order.username', group: 'g' }, { code: 'TEMPLATE_SYNTAX', path: '/tasks/grant/incoming/user' }],
  ])('rejects %s', async (_name, incoming, expected) => {
    const doc = sampleDocument();
    (doc.tasks.grant as { incoming: Record<string, unknown> }).incoming = incoming;
    const errors = await rejected(doc);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ taskId: 'grant', path: expect.stringMatching(/^\/tasks\/grant\/incoming\//), ...expected });
  });

  it('accepts every root where it is available', async () => {
    const doc = withTask('many', {
      kind: 'transform',
      expression: '$',
      incoming: { a: '{{order.user_email}}', b: '{{asset.attributes.x}}', c: '{{params.attr_size}}', d: '{{inputs.group}}', e: '{{job.vm}}', f: '{{steps.find_vm.output.body.0}}', g: '{{steps.find_vm.status}}', h: '$var.job.group' },
    });
    expect((await compileWorkflow(doc, sampleContext)).ok).toBe(true);
  });

  it('checks an outgoing variable against the output schema', async () => {
    const doc = sampleDocument();
    doc.tasks.power_on!.outgoing = { result: null, state: { from: 'bodyy.state' } };
    expect((await rejected(doc)).map((e) => [e.code, e.taskId, e.path])).toEqual([
      ['UNKNOWN_VARIABLE', 'power_on', '/tasks/power_on/outgoing/result'],
      ['UNKNOWN_VARIABLE', 'power_on', '/tasks/power_on/outgoing/state/from'],
    ]);
  });

  it('lets a webhook url use inputs only', async () => {
    const hook = (url: string): WorkflowTask => ({ kind: 'webhook', url, secretRef: 'webhooks.secret', incoming: { application: { app_id: 'a' }, target_user: { email: '{{order.user_email}}' } } });
    expect((await compileWorkflow(withTask('hook', hook('{{inputs.group}}')), sampleContext)).ok).toBe(true);
    expect(await rejected(withTask('hook', hook('https://x.example/{{order.username}}')))).toEqual([
      expect.objectContaining({ code: 'TEMPLATE_NOT_ALLOWED', taskId: 'hook', path: '/tasks/hook/url' }),
    ]);
  });
});

describe('compileWorkflow: kinds and the context', () => {
  it('rejects an unknown integration and an unknown operation', async () => {
    expect(await rejected(withTask('x', { kind: 'integration', operation: 'vsphere/api_vcenter_vm_list' }))).toEqual([
      { code: 'UNKNOWN_INTEGRATION', taskId: 'x', path: '/tasks/x/operation', message: "unknown integration 'vsphere'" },
    ]);
    expect(await rejected(withTask('x', { kind: 'integration', operation: 'vcenter/vm_power_on' }))).toEqual([
      { code: 'UNKNOWN_OPERATION', taskId: 'x', path: '/tasks/x/operation', message: "integration 'vcenter' has no operation 'vm_power_on'" },
    ]);
  });

  it('checks a winrm connection names an integration, and reads its output schema', async () => {
    const winrm = (connection: string): WorkflowTask => ({ kind: 'winrm', connection, action: 'executeProgram', incoming: { host: '{{asset.name}}', packageId: 'PS100123' } });
    expect(await rejected(withTask('ts', winrm('sccm')))).toEqual([
      { code: 'UNKNOWN_INTEGRATION', taskId: 'ts', path: '/tasks/ts/connection', message: "unknown integration 'sccm'" },
    ]);
    const ok = withTask('ts', { ...winrm('vcenter'), outgoing: { messageId: { from: 'messageId' } } } as WorkflowTask);
    expect((await compileWorkflow(ok, sampleContext)).ok).toBe(true);
    expect(await rejected(withTask('ts', { ...winrm('vcenter'), outgoing: { rv: { from: 'ReturnValue' } } } as WorkflowTask))).toEqual([
      {
        code: 'UNKNOWN_VARIABLE',
        taskId: 'ts',
        path: '/tasks/ts/outgoing/rv/from',
        message: "the output of task 'ts' has no 'ReturnValue' (it has device, method, resourceUri, messageId, returnValue, output)",
      },
    ]);
  });

  it("checks incoming against the operation's input schema, templates allowed", async () => {
    expect(await rejected(withTask('x', { kind: 'integration', operation: 'vcenter/api_vcenter_vm_power_action', incoming: { path: { vm: 'host-1' }, query: { action: 'start' } } }))).toEqual([
      { code: 'INVALID_TASK_INPUT', taskId: 'x', path: '/tasks/x/incoming/path/vm', message: 'must match pattern "^vm-" (input of vcenter/api_vcenter_vm_power_action)' },
    ]);
    expect(await rejected(withTask('x', { kind: 'integration', operation: 'vcenter/api_vcenter_vm_power_action', incoming: { query: { action: 'start', a: 1 } } }))).toEqual([
      expect.objectContaining({ code: 'INVALID_TASK_INPUT', path: '/tasks/x/incoming', message: "must have required property 'path' (input of vcenter/api_vcenter_vm_power_action)" }),
      { code: 'INVALID_TASK_INPUT', taskId: 'x', path: '/tasks/x/incoming/query/a', message: 'is not a known property here (input of vcenter/api_vcenter_vm_power_action)' },
    ]);
    const ok = withTask('x', { kind: 'integration', operation: 'vcenter/api_vcenter_vm_power_action', incoming: { path: { vm: '{{asset.attributes.vm}}' }, query: { action: 'start' } } });
    expect((await compileWorkflow(ok, sampleContext)).ok).toBe(true);
  });

  it('checks a poll probe operation and its conditions', async () => {
    const poll: WorkflowTask = {
      kind: 'poll',
      task: { kind: 'integration', operation: 'vcenter/api_vcenter_vm_lst', incoming: {} },
      until: { conditions: [{ left: '{{output.body.state}}', operator: 'matches', right: '(' }] },
      failWhen: { conditions: [{ left: '{{output.body}}', operator: 'empty', right: 1 }] },
      interval: '10s',
      maxDuration: '1h',
    };
    expect((await rejected(withTask('p', poll))).map((e) => [e.code, e.path])).toEqual([
      ['INVALID_REGEX', '/tasks/p/until/conditions/0/right'],
      ['SCHEMA', '/tasks/p/failWhen/conditions/0/right'],
      ['UNKNOWN_OPERATION', '/tasks/p/task/operation'],
    ]);
  });

  it('rejects a binary operator without a right operand', async () => {
    const doc = withTask('e', { kind: 'evaluate', incoming: { conditions: [{ left: 1, operator: '>' }] } });
    expect(await rejected(doc)).toEqual([{ code: 'SCHEMA', taskId: 'e', path: '/tasks/e/incoming/conditions/0', message: "operator '>' needs a right operand" }]);
  });

  it('rejects a transform whose JSONata does not parse', async () => {
    const errors = await rejected(withTask('t', { kind: 'transform', expression: '{"a": ', incoming: {} }));
    expect(errors).toEqual([expect.objectContaining({ code: 'INVALID_EXPRESSION', taskId: 't', path: '/tasks/t/expression' })]);
    expect(errors[0]?.message).toMatch(/^JSONata does not parse/);
  });

  it('checks child workflows: existence, version, inputs, items and recursion', async () => {
    const child = (t: Partial<Extract<WorkflowTask, { kind: 'child' }>>): WorkflowTask => ({ kind: 'child', workflow: 'Notify', ...t });
    expect((await compileWorkflow(withTask('c', child({ version: 1, incoming: { inputs: { anything: 1 } } })), sampleContext)).ok).toBe(true);
    expect(await rejected(withTask('c', child({ workflow: 'Ghost' })))).toEqual([{ code: 'UNKNOWN_WORKFLOW', taskId: 'c', path: '/tasks/c/workflow', message: "unknown workflow 'Ghost'" }]);
    expect(await rejected(withTask('c', child({ version: 7 })))).toEqual([expect.objectContaining({ code: 'UNKNOWN_WORKFLOW', message: "unknown workflow 'Notify' version 7" })]);
    expect((await rejected(withTask('c', child({ incoming: { inputs: { to: 'x', cc: 'y' } } })))).map((e) => [e.code, e.path, e.message])).toEqual([
      ['INVALID_TASK_INPUT', '/tasks/c/incoming/inputs', "workflow 'Notify' requires input 'vm'"],
      ['INVALID_TASK_INPUT', '/tasks/c/incoming/inputs/cc', "workflow 'Notify' has no input 'cc'"],
    ]);
    const overItems = child({ mode: 'parallel', concurrency: 4, incoming: { items: '{{steps.find_vm.output.body}}', inputs: { vm: '{{item.vm}}', to: 'n{{index}}' } } });
    expect((await compileWorkflow(withTask('c', overItems), sampleContext)).ok).toBe(true);
    expect(await rejected(withTask('c', child({ workflow: 'Sample' })))).toEqual([expect.objectContaining({ code: 'CYCLE', taskId: 'c', path: '/tasks/c/workflow' })]);
  });
});
