// The XenServer / XCP-ng model (openapi/integrations/xenserver.yaml) against the loopback XenAPI JSON-RPC server of
// tests/support/xenapi-server.ts: every operation through the integration runtime with the generated typed client
// and the runtime's `xenapi_session` authentication, the session renewed after SESSION_INVALID, XenAPI failures
// (inside HTTP 200) turned into precise errors, and the sample runbooks xenserver-vm-provision.json and
// xenserver-vm-deprovision.json run end to end through the workflow engine. PGlite and PostgreSQL.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { bindTypedClient, statusOf, xenapiResult, XenApiError, xenserver, type TypedClient } from '../../adapter/clients';
import { createJobQueue, createLogger, type JobQueue } from '../../adapter';
import { createIntegrationClient, TokenRequestError, type IntegrationClient } from '../../adapter/http';
import { projectPath } from '../../adapter/paths';
import {
  createIntegration,
  createIntegrationModel,
  createIntegrationRuntime,
  loadIntegrationModelFile,
  type IntegrationModel,
  type IntegrationRuntime,
} from '../../integration-model';
import { workflowCompileContext } from '../../server/domain/runbooks/workflow-runtime';
import { createWorkflowEngine, type RunStatus, type RunWithSteps, type WorkflowEngine } from '../../workflows/engine';
import { createIntegrationExecutor } from '../../workflows/executors';
import { createTestDatabase, testEngine, type TestDatabase } from '../support/db';
import { TEST_ENGINE_CONFIG } from '../support/engine-config';
import { compiledTask, stepContext } from '../support/executors';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { rejectedTaskSchemas } from '../support/strict-task-schemas';
import { startXenApiServer, type XenApiServer } from '../support/xenapi-server';

const MODEL_FILE = projectPath('openapi/integrations/xenserver.yaml');
const TEMPLATE = 'Windows 11 VDI template';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A JSON-RPC body; the session parameter is "" (the runtime's xenapi_session scheme writes its own). */
const rpc = <M extends string, P extends unknown[]>(method: M, ...params: P) => ({ body: { jsonrpc: '2.0' as const, method, params: ['', ...params] as ['', ...P], id: 1 } });

describe('xenserver integration model', () => {
  it('loads with every operation kept, one path per XenAPI call under /jsonrpc, unique operationIds', async () => {
    const model = await loadIntegrationModelFile(MODEL_FILE);
    expect(model.dropped).toEqual([]);
    expect(model.warnings).toEqual([]);
    expect(model.operations).toHaveLength(28);
    expect(new Set(model.operations.map((o) => o.operationId)).size).toBe(28);
    // Each path's suffix is the JSON-RPC method its body must name; operationIds are that method, dots as underscores.
    const doc = parse(await readFile(MODEL_FILE, 'utf8')) as { paths: Record<string, { post: { operationId: string; requestBody: { content: Record<string, { schema: { properties: { method: { enum: string[] } } } }> } } }> };
    for (const [path, item] of Object.entries(doc.paths)) {
      const method = item.post.requestBody.content['application/json']!.schema.properties.method.enum;
      expect([path, method]).toEqual([`/jsonrpc/${method[0]}`, [path.slice('/jsonrpc/'.length)]]);
      expect(item.post.operationId).toBe(method[0]!.replace(/\./g, '_'));
    }
    expect(model.operations.every((o) => o.method === 'POST')).toBe(true);
  });
});

describe.each([['xenserver.yaml'], ['vcenter.yaml']])('%s task schemas', (file) => {
  it('compile under a strict JSON Schema validator, for every operation (snapshot calls included)', async () => {
    const model = await loadIntegrationModelFile(projectPath('openapi/integrations', file));
    expect(rejectedTaskSchemas(model)).toEqual([]);
  });
});

describe('xenserver through the integration runtime and the typed client', () => {
  let xen: XenApiServer;
  let mem: MemoryLogger;
  const clients: IntegrationClient[] = [];
  const integration = (password?: string): { ic: IntegrationClient; client: TypedClient } => {
    const ic = createIntegrationClient(
      {
        server: { protocol: 'http', host: '127.0.0.1', port: xen.port },
        authentication: { type: 'xenapi_session', username: xen.username, password: password ?? xen.password },
        logging: { level: 'debug' },
      },
      { logger: mem.logger, name: 'xenserver' },
    );
    clients.push(ic);
    return { ic, client: bindTypedClient(ic) };
  };
  const logins = (): number => xen.calls.filter((c) => c === 'session.login_with_password').length;

  beforeAll(async () => {
    mem = createMemoryLogger();
    xen = await startXenApiServer({ taskDelayMs: 100 });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await xen.close();
  });

  it('clone -> provision -> start (task, polled) -> snapshot -> revert -> shutdown -> destroy with disks, on one session', async () => {
    const { client } = integration();
    const before = logins();

    const [template] = xenapiResult(await xenserver.vmGetByNameLabel({ client, ...rpc('VM.get_by_name_label', TEMPLATE) }));
    expect(template).toBe(xen.templateRef(TEMPLATE));
    const vm = xenapiResult(await xenserver.vmClone({ client, ...rpc('VM.clone', template!, 'vdi-alice') }));
    expect(xen.vms.get(vm)).toMatchObject({ name_label: 'vdi-alice', is_a_template: true, VBDs: [] });
    xenapiResult(await xenserver.vmProvision({ client, ...rpc('VM.provision', vm) }));
    xenapiResult(await xenserver.vmSetIsATemplate({ client, ...rpc('VM.set_is_a_template', vm, false) }));

    // Async: a task reference at once, pending, then success.
    const task = xenapiResult(await xenserver.asyncVmStart({ client, ...rpc('Async.VM.start', vm, false, false) }));
    expect(task).toMatch(/^OpaqueRef:/);
    expect(xenapiResult(await xenserver.taskGetStatus({ client, ...rpc('task.get_status', task) }))).toBe('pending');
    let status = 'pending';
    for (let i = 0; i < 50 && status === 'pending'; i++) {
      await sleep(20);
      status = xenapiResult(await xenserver.taskGetStatus({ client, ...rpc('task.get_status', task) }));
    }
    expect(status).toBe('success');
    expect(xenapiResult(await xenserver.taskGetRecord({ client, ...rpc('task.get_record', task) }))).toMatchObject({ status: 'success', progress: 1 });
    expect(xenapiResult(await xenserver.taskGetResult({ client, ...rpc('task.get_result', task) }))).toBe('');
    xenapiResult(await xenserver.taskDestroy({ client, ...rpc('task.destroy', task) }));
    expect(xenapiResult(await xenserver.vmGetPowerState({ client, ...rpc('VM.get_power_state', vm) }))).toBe('Running');

    // Async snapshot: the task's result is the snapshot reference in XML-RPC form.
    const snapTask = xenapiResult(await xenserver.asyncVmSnapshot({ client, ...rpc('Async.VM.snapshot', vm, 'vdi-alice baseline') }));
    await sleep(250);
    const snapResult = xenapiResult(await xenserver.taskGetResult({ client, ...rpc('task.get_result', snapTask) }));
    const snap = /^<value>(OpaqueRef:[^<]+)<\/value>$/.exec(snapResult)?.[1];
    expect(snap).toBeDefined();
    const record = xenapiResult(await xenserver.vmGetRecord({ client, ...rpc('VM.get_record', vm) }));
    expect(record).toMatchObject({ name_label: 'vdi-alice', power_state: 'Running', is_a_template: false, snapshots: [snap] });
    expect(xenapiResult(await xenserver.vmGetByUuid({ client, ...rpc('VM.get_by_uuid', record.uuid!) }))).toBe(vm);

    // A synchronous snapshot too, then revert to it: the VM is halted (disk-only snapshots carry no memory).
    const snap2 = xenapiResult(await xenserver.vmSnapshot({ client, ...rpc('VM.snapshot', vm, 'before revert') }));
    xenapiResult(await xenserver.vmCleanShutdown({ client, ...rpc('VM.clean_shutdown', vm) }));
    xenapiResult(await xenserver.vmStart({ client, ...rpc('VM.start', vm, false, false) }));
    xenapiResult(await xenserver.vmHardShutdown({ client, ...rpc('VM.hard_shutdown', vm) }));
    xenapiResult(await xenserver.vmRevert({ client, ...rpc('VM.revert', snap2) }));
    expect(xen.vms.get(vm)!.power_state).toBe('Halted');

    // Clean-up: the disks of the VM and its snapshots are destroyed after their VMs.
    const disks: string[] = [];
    for (const owner of [vm, snap!, snap2]) {
      for (const vbd of xenapiResult(await xenserver.vmGetVbds({ client, ...rpc('VM.get_VBDs', owner) }))) {
        disks.push(xenapiResult(await xenserver.vbdGetVdi({ client, ...rpc('VBD.get_VDI', vbd) })));
      }
      xenapiResult(await xenserver.vmDestroy({ client, ...rpc('VM.destroy', owner) }));
    }
    expect(disks).toHaveLength(3);
    for (const vdi of disks) xenapiResult(await xenserver.vdiDestroy({ client, ...rpc('VDI.destroy', vdi) }));
    expect(disks.some((d) => xen.vdis.has(d))).toBe(false);
    expect([...xen.vms.values()].map((v) => v.name_label)).toEqual([TEMPLATE]);

    // One login for all of it; the session reference went out on every call and never reached the logs.
    expect(logins() - before).toBe(1);
    const session = [...xen.sessions].at(-1)!;
    expect(xen.requests.filter((r) => !r.body.includes('session.login_with_password')).every((r) => (JSON.parse(r.body) as { params: string[] }).params[0] === session)).toBe(true);
    expect(JSON.stringify(mem.lines)).not.toContain(session);
    expect(JSON.stringify(mem.lines)).not.toContain(xen.password);
    // Each call went to its own path: XAPI would route all of them to /jsonrpc.
    expect(xen.requests.some((r) => r.url === '/jsonrpc/VM.clone')).toBe(true);
  });

  it('logs in again once after SESSION_INVALID and retries the call', async () => {
    const { client } = integration();
    xenapiResult(await xenserver.vmGetByNameLabel({ client, ...rpc('VM.get_by_name_label', TEMPLATE) }));
    const before = logins();
    xen.sessions.clear(); // every session expires (as after a pool master restart)
    const refs = xenapiResult(await xenserver.vmGetByNameLabel({ client, ...rpc('VM.get_by_name_label', TEMPLATE) }));
    expect(refs).toEqual([xen.templateRef(TEMPLATE)]);
    expect(logins() - before).toBe(1);
    expect(mem.lines.some((l) => String(l['message']).startsWith('integration got its credentials rejected'))).toBe(true);
  });

  it('a refused login fails the call with SESSION_AUTHENTICATION_FAILED, never showing the password', async () => {
    const { client } = integration('wrong-password');
    const r = xenserver.vmGetByNameLabel({ client, ...rpc('VM.get_by_name_label', TEMPLATE), throwOnError: true });
    await expect(r).rejects.toBeInstanceOf(TokenRequestError);
    await expect(xenserver.vmGetByNameLabel({ client, ...rpc('VM.get_by_name_label', TEMPLATE), throwOnError: true })).rejects.toThrow(/XenAPI SESSION_AUTHENTICATION_FAILED/);
    expect(JSON.stringify(mem.lines)).not.toContain('wrong-password');
  });

  it.each([
    ['VM_BAD_POWER_STATE', 'clean shutdown of a halted VM', async (client: TypedClient, vm: string) => xenserver.vmCleanShutdown({ client, ...rpc('VM.clean_shutdown', vm) }), (vm: string) => [vm, 'running', 'halted']],
    ['VM_BAD_POWER_STATE', 'destroy of a running VM', async (client: TypedClient, vm: string) => {
      await xenserver.vmStart({ client, ...rpc('VM.start', vm, false, false) });
      return xenserver.vmDestroy({ client, ...rpc('VM.destroy', vm) });
    }, (vm: string) => [vm, 'halted', 'running']],
    ['HANDLE_INVALID', 'a VM reference that does not exist', async (client: TypedClient) => xenserver.vmStart({ client, ...rpc('VM.start', 'OpaqueRef:nope', false, false) }), () => ['VM', 'OpaqueRef:nope']],
    ['UUID_INVALID', 'a UUID no VM has', async (client: TypedClient) => xenserver.vmGetByUuid({ client, ...rpc('VM.get_by_uuid', '00000000-0000-0000-0000-000000000000') }), () => ['VM', '00000000-0000-0000-0000-000000000000']],
    ['VM_IS_TEMPLATE', 'starting a template', async (client: TypedClient) => xenserver.vmStart({ client, ...rpc('VM.start', xen.templateRef(TEMPLATE), false, false) }), () => [xen.templateRef(TEMPLATE), 'start']],
  ] as const)('%s for %s: HTTP 200, and xenapiResult throws the XenAPI code and parameters', async (code, _what, call, params) => {
    const { client } = integration();
    const vm = xenapiResult(await xenserver.vmClone({ client, ...rpc('VM.clone', xen.templateRef(TEMPLATE), `err-${code}`) }));
    xenapiResult(await xenserver.vmProvision({ client, ...rpc('VM.provision', vm) }));
    xenapiResult(await xenserver.vmSetIsATemplate({ client, ...rpc('VM.set_is_a_template', vm, false) }));
    const r = await call(client, vm);
    expect(statusOf(r)).toBe(200);
    let thrown: unknown;
    try {
      xenapiResult(r);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(XenApiError);
    expect(thrown).toMatchObject({ code, params: params(vm) });
  });

  it('a failed Async task reports the XenAPI error in error_info', async () => {
    const { client } = integration();
    const vm = xenapiResult(await xenserver.vmClone({ client, ...rpc('VM.clone', xen.templateRef(TEMPLATE), 'async-fail') }));
    const task = xenapiResult(await xenserver.asyncVmCleanShutdown({ client, ...rpc('Async.VM.clean_shutdown', vm) }));
    await sleep(250);
    expect(xenapiResult(await xenserver.taskGetStatus({ client, ...rpc('task.get_status', task) }))).toBe('failure');
    expect(xenapiResult(await xenserver.taskGetErrorInfo({ client, ...rpc('task.get_error_info', task) }))).toEqual(['VM_BAD_POWER_STATE', vm, 'running', 'halted']);
  });

  it('Async clone and provision complete as tasks; session.logout ends the session', async () => {
    const { client } = integration();
    const task = xenapiResult(await xenserver.asyncVmClone({ client, ...rpc('Async.VM.clone', xen.templateRef(TEMPLATE), 'async-clone') }));
    await sleep(250);
    const vm = /<value>(.*)<\/value>/.exec(xenapiResult(await xenserver.taskGetResult({ client, ...rpc('task.get_result', task) })))![1]!;
    expect(xen.vms.get(vm)?.name_label).toBe('async-clone');
    xenapiResult(await xenserver.asyncVmProvision({ client, ...rpc('Async.VM.provision', vm) }));
    await sleep(250);
    expect(xen.vms.get(vm)!.VBDs).toHaveLength(1);
    const live = xen.sessions.size;
    xenapiResult(await xenserver.sessionLogout({ client, ...rpc('session.logout') }));
    expect(xen.sessions.size).toBe(live - 1);
  });

  it('without the runtime scheme, a caller-held session works and a dead one is SESSION_INVALID', async () => {
    const ic = createIntegrationClient({ server: { protocol: 'http', host: '127.0.0.1', port: xen.port } }, { logger: mem.logger, name: 'xenserver-plain' });
    clients.push(ic);
    const client = bindTypedClient(ic);
    const session = xenapiResult(
      await xenserver.sessionLoginWithPassword({ client, body: { jsonrpc: '2.0', method: 'session.login_with_password', params: [xen.username, xen.password, '1.0', 'test'], id: 'l' } }),
    );
    const call = () => xenserver.vmGetByNameLabel({ client, body: { jsonrpc: '2.0', method: 'VM.get_by_name_label', params: [session, TEMPLATE], id: 2 } });
    expect(xenapiResult(await call())).toEqual([xen.templateRef(TEMPLATE)]);
    xenapiResult(await xenserver.sessionLogout({ client, body: { jsonrpc: '2.0', method: 'session.logout', params: [session], id: 3 } }));
    await expect(call().then(xenapiResult)).rejects.toMatchObject({ code: 'SESSION_INVALID' });
  });
});

describe(`xenserver sample runbooks through the workflow engine (${testEngine})`, () => {
  let t: TestDatabase;
  let queue: JobQueue;
  let runtime: IntegrationRuntime;
  let engine: WorkflowEngine;
  let xen: XenApiServer;
  let model: IntegrationModel;

  const start = async (workflow: string, asset: string): Promise<string> =>
    (await t.db.transaction((tx) => engine.startRun(tx, { workflow, inputs: {}, variables: { asset: { name: asset } }, createdBy: 'test' }))).id;
  async function waitFor(runId: string, statuses: RunStatus[]): Promise<RunWithSteps> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const run = await engine.getRun(runId);
      if (statuses.includes(run.status)) return run;
      if (Date.now() > deadline) throw new Error(`run ${runId} is ${run.status}: ${JSON.stringify(run.steps.map((s) => [s.stepId, s.status, s.error]))}`);
      await sleep(100);
    }
  }

  beforeAll(async () => {
    t = await createTestDatabase();
    const logger = createLogger({ silent: true });
    xen = await startXenApiServer({ taskDelayMs: 1500 });
    model = await loadIntegrationModelFile(MODEL_FILE);
    await t.db.transaction(async (tx) => {
      await createIntegrationModel(tx, model, { triggeredBy: 'test' });
      await createIntegration(
        tx,
        model,
        {
          name: 'xenserver',
          model_id: model.id,
          config: { server: { protocol: 'http', host: '127.0.0.1', port: xen.port }, authentication: { type: 'xenapi_session', username: xen.username, password: xen.password }, timeout: 5000 },
        },
        { triggeredBy: 'test' },
      );
    });
    queue = createJobQueue(t.db, { logger, schedule: false });
    await queue.start();
    runtime = createIntegrationRuntime({ db: t.db, logger });
    engine = createWorkflowEngine({
      db: t.db,
      queue,
      logger,
      executors: { integration: createIntegrationExecutor({ integrations: runtime }) },
      compileContext: workflowCompileContext(t.db, runtime),
      config: TEST_ENGINE_CONFIG,
    });
    for (const f of ['xenserver-vm-provision.json', 'xenserver-vm-deprovision.json']) {
      await engine.saveWorkflow(JSON.parse(await readFile(projectPath('workflows/definitions', f), 'utf8')), 'test');
    }
    await engine.startWorkers({ teamSize: 2 });
  }, 60_000);
  afterAll(async () => {
    await engine?.stop();
    await queue?.stop({ graceful: false, timeoutMs: 2000 });
    runtime?.close();
    await xen?.close();
    await t?.drop();
  });

  it('provisions (clone, provision, start polled to success, baseline snapshot), then deprovisions (shutdown, destroy)', async () => {
    const run = await waitFor(await start('XenServer VM - provision', 'xvdi-001'), ['succeeded', 'failed']);
    expect(run.status).toBe('succeeded');
    const vm = [...xen.vms.values()].find((v) => v.name_label === 'xvdi-001' && !v.is_a_snapshot)!;
    expect(vm).toMatchObject({ power_state: 'Running', is_a_template: false, provisioned: true });
    expect(vm.snapshots.map((s) => xen.vms.get(s)!.name_label)).toEqual(['xvdi-001 baseline']);
    // The start task was polled while pending (the server keeps it pending 1.5 s, the poll interval is 1 s).
    expect(xen.calls.filter((c) => c === 'task.get_record').length).toBeGreaterThanOrEqual(2);
    // The session reference is in no stored step output.
    expect(JSON.stringify(run)).not.toContain([...xen.sessions][0]!);

    const down = await waitFor(await start('XenServer VM - deprovision', 'xvdi-001'), ['succeeded', 'failed']);
    expect(down.status).toBe('succeeded');
    expect(xen.vms.has(vm.ref)).toBe(false);
    expect(xen.calls.filter((c) => c === 'session.login_with_password')).toHaveLength(1);
  });

  it('deprovisioning a VM that is not running fails at the shutdown with VM_BAD_POWER_STATE, destroying nothing', async () => {
    expect((await waitFor(await start('XenServer VM - provision', 'xvdi-002'), ['succeeded', 'failed'])).status).toBe('succeeded');
    const vm = [...xen.vms.values()].find((v) => v.name_label === 'xvdi-002' && !v.is_a_snapshot)!;
    vm.power_state = 'Halted'; // the user shut it down
    const run = await waitFor(await start('XenServer VM - deprovision', 'xvdi-002'), ['succeeded', 'failed']);
    expect(run.status).toBe('failed');
    const step = run.steps.find((s) => s.stepId === 'shutdown_vm')!;
    expect(step.error).toMatchObject({ code: 'RPC_ERROR', message: expect.stringContaining(`VM_BAD_POWER_STATE [${vm.ref}, running, halted]`) });
    expect(run.steps.find((s) => s.stepId === 'destroy_vm')?.status ?? 'not run').not.toBe('succeeded');
    expect(xen.vms.has(vm.ref)).toBe(true);
  });

  it('a template that does not exist stops the run before the clone', async () => {
    const run = await t.db.transaction((tx) =>
      engine.startRun(tx, { workflow: 'XenServer VM - provision', inputs: { templateName: 'No such template' }, variables: { asset: { name: 'xvdi-003' } }, createdBy: 'test' }),
    );
    const done = await waitFor(run.id, ['succeeded', 'failed']);
    expect(done.status).toBe('failed');
    expect(done.steps.find((s) => s.stepId === 'template_found')!.error).toMatchObject({ code: 'CONDITION_FALSE' });
    expect(done.steps.some((s) => s.stepId === 'clone_template' && s.status === 'succeeded')).toBe(false);
    expect([...xen.vms.values()].some((v) => v.name_label === 'xvdi-003')).toBe(false);
  });

  it('a session the runtime cannot renew is SESSION_INVALID, without the reference in the error', async () => {
    // An integration that holds no scheme of its own: the "" session parameter goes out as is.
    await t.db.transaction((tx) =>
      createIntegration(tx, model, { name: 'xen-nosession', model_id: model.id, config: { server: { protocol: 'http', host: '127.0.0.1', port: xen.port } } }, { triggeredBy: 'test' }),
    );
    const executor = createIntegrationExecutor({ integrations: runtime });
    const result = await executor(compiledTask({ kind: 'integration', operation: 'xen-nosession/VM_get_by_name_label' }), rpc('VM.get_by_name_label', TEMPLATE), stepContext());
    expect(result).toMatchObject({ ok: false, error: { code: 'RPC_ERROR', message: expect.stringMatching(/answered SESSION_INVALID$/) } });
  });
});
