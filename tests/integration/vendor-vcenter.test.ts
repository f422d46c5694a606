import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { bindTypedClient, statusOf, vcenter } from '../../adapter/clients';
import { createIntegrationClient, isEnvelope, TokenRequestError, type IntegrationClient } from '../../adapter/http';
import { projectPath } from '../../adapter/paths';
import { getOperation, loadIntegrationModelFile, operationOutputSchema, type IntegrationModel } from '../../integration-model';
import { sendJson, startLoopbackServer } from '../support/loopback-server';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { rewriteActionPaths, startPrism, type PrismMock } from '../support/prism';
import { startVcsim, type Vcsim } from '../support/vcsim';

const MODEL_FILE = projectPath('openapi/integrations/vcenter.yaml');
const VMWARE_SPEC = projectPath('../shared/reference/vsphere-automation-7.0.2-subset.openapi3.json');
const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('vcenter integration model', () => {
  it('loads with every operation kept and the session key as a dynamic API key', async () => {
    const model = await loadIntegrationModelFile(MODEL_FILE);
    expect(model.dropped).toEqual([]);
    expect(model.warnings).toEqual([]);
    expect(model.operations).toHaveLength(26);
    expect(model.securitySchemes.find((s) => s.name === 'sessionId')).toMatchObject({
      kind: 'apiKey',
      in: 'header',
      parameterName: 'vmware-api-session-id',
      dynamicRetrieval: { method: 'POST', url: 'https://vcenter.example.com/api/session' },
    });
    // Actions are one operation with a required enum, not VMware's `?action=` path keys.
    const power = getOperation(model, 'api_vcenter_vm_power_action');
    expect(power).toMatchObject({ method: 'POST', path: '/api/vcenter/vm/{vm}/power' });
    expect(power.parameters.find((p) => p.name === 'action')).toMatchObject({ in: 'query', required: true, schema: { enum: ['start', 'stop', 'reset', 'suspend'] } });
    expect(model.operations.every((o) => !o.path.includes('?'))).toBe(true);
  });
});

/**
 * vcsim 0.24.2 (built from Debian's packages by tests/support/vcsim.ts) serves the legacy vAPI session endpoints
 * for real: login with basic credentials, session id at /value, logout, 401 for a session that is gone.
 */
describe('vcenter session flow against vcsim', () => {
  let sim: Vcsim;
  let mem: MemoryLogger;
  const clients: IntegrationClient[] = [];
  const integration = (authentication: Record<string, unknown>): IntegrationClient => {
    const c = createIntegrationClient(
      { server: { host: '127.0.0.1', port: sim.port }, authentication, logging: { level: 'debug' } },
      { logger: mem.logger, name: 'vcenter' },
    );
    clients.push(c);
    return c;
  };
  const sessionKey = (): Record<string, unknown> => ({
    type: 'api_key',
    in: 'header',
    name: 'vmware-api-session-id',
    dynamic: {
      method: 'POST',
      url: `${sim.url}/rest/com/vmware/cis/session`,
      response_pointer: '/value',
      headers: { authorization: basic(sim.username, sim.password) },
    },
  });
  const logins = (): number => mem.lines.filter((l) => l['message'] === 'integration auth request').length;

  beforeAll(async () => {
    mem = createMemoryLogger();
    sim = await startVcsim();
  }, 600_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    await sim?.stop();
  });

  it('creates a session with basic credentials through the typed client; the id is at /value', async () => {
    const client = bindTypedClient(integration({ type: 'basic', username: sim.username, password: sim.password }));
    const { data, error, status } = await vcenter.restComVmwareCisSessionCreate({ client });
    expect(error).toBeUndefined();
    expect(status).toBe(200);
    expect(data?.value).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('buys the session id as a dynamic key, sends it as vmware-api-session-id, and renews it after a 401', async () => {
    const ic = integration(sessionKey());
    const client = bindTypedClient(ic);
    const before = logins();

    // The session the runtime bought works: vcsim names its user.
    const who = await ic.call({ method: 'POST', path: '/rest/com/vmware/cis/session', query: { '~action': 'get' } });
    if (!isEnvelope(who)) throw new Error(who);
    expect(who.status).toBe(200);
    expect(who.body).toMatchObject({ value: { user: sim.username } });
    expect(logins() - before).toBe(1);

    // Logging out ends that session on the server ...
    const out = await vcenter.restComVmwareCisSessionDelete({ client });
    expect(out.status).toBe(200);
    expect(logins() - before).toBe(1);

    // ... so the next call carries a dead id: vcsim answers 401, the runtime buys a new session once and retries.
    const again = await vcenter.restComVmwareCisSessionDelete({ client });
    expect(again.error).toBeUndefined();
    expect(again.status).toBe(200);
    expect(logins() - before).toBe(2);
    expect(mem.lines.some((l) => String(l['message']).startsWith('integration got 401'))).toBe(true);

    // The session ids never reach the logs.
    const ids = mem.lines
      .filter((l) => l['message'] === 'integration request')
      .map((l) => (l['headers'] as Record<string, unknown>)['vmware-api-session-id'])
      .filter((v) => v !== undefined);
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.every((v) => v === '[redacted]')).toBe(true);
  });

  it('fails with a clear error when the session endpoint refuses the login', async () => {
    // vcsim accepts any non-empty credentials, but none at all is a 401 from its own session endpoint.
    const ic = integration({ ...sessionKey(), dynamic: { method: 'POST', url: `${sim.url}/rest/com/vmware/cis/session`, response_pointer: '/value' } });
    const env = await ic.call({ method: 'DELETE', path: '/rest/com/vmware/cis/session' });
    if (!isEnvelope(env)) throw new Error(env);
    expect(env.status).toBe(401);
    expect(env.url).toBe(`${sim.url}/rest/com/vmware/cis/session`);
    await expect(vcenter.restComVmwareCisSessionDelete({ client: bindTypedClient(ic), throwOnError: true })).rejects.toBeInstanceOf(TokenRequestError);
  });
});

describe('vcenter session that keeps expiring', () => {
  it('renews the session once, then returns the 401 with VMware\'s error (no loop, no throw)', async () => {
    let logins = 0;
    const server = await startLoopbackServer((req, res) => {
      if (req.method === 'POST' && req.url === '/api/session') return sendJson(res, 201, `session-${++logins}`);
      // Every session is already gone by the time it is used (an idle timeout of zero, in effect).
      sendJson(res, 401, { error_type: 'UNAUTHENTICATED', messages: [{ id: 'vapi.security.authentication.invalid', default_message: 'Unable to authenticate user', args: [] }] });
    });
    const ic = createIntegrationClient(
      {
        server: { host: '127.0.0.1', port: server.port },
        authentication: { type: 'api_key', in: 'header', name: 'vmware-api-session-id', dynamic: { method: 'POST', url: `${server.url}/api/session`, headers: { authorization: basic('u', 'p') } } },
      },
      { logger: createMemoryLogger().logger, name: 'vcenter' },
    );
    try {
      const r = await vcenter.apiVcenterVmPowerAction({ client: bindTypedClient(ic), path: { vm: 'vm-42' }, query: { action: 'start' } });
      expect(statusOf(r)).toBe(401);
      expect(r.error).toMatchObject({ error_type: 'UNAUTHENTICATED' });
      expect(logins).toBe(2);
      const calls = server.requests.filter((q) => q.url.startsWith('/api/vcenter/vm/vm-42/power'));
      expect(calls.map((q) => [q.url, q.headers['vmware-api-session-id']])).toEqual([
        ['/api/vcenter/vm/vm-42/power?action=start', 'session-1'],
        ['/api/vcenter/vm/vm-42/power?action=start', 'session-2'],
      ]);
    } finally {
      ic.close();
      await server.close();
    }
  });
});

/**
 * The /api calls vcsim does not serve, made through the typed client bound to a real integration client, against
 * Prism validating every request: once serving VMware's own 7.0.2 description (action path keys rewritten so it can
 * route them), once serving our model. Against VMware's, the answers (generated from VMware's schemas) must also
 * satisfy our model's output schemas.
 */
describe.each([
  ['VMware 7.0.2 description', 'vmware'],
  ['our vcenter.yaml', 'model'],
] as const)('vcenter /api calls against Prism serving %s', (_label, which) => {
  let prism: PrismMock;
  let ic: IntegrationClient;
  let client: ReturnType<typeof bindTypedClient>;
  let model: IntegrationModel;
  let mem: MemoryLogger;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  /** Checks a 2xx answer against our model's output schema of `operationId`. */
  const conforms = (operationId: string, status: number, body: unknown): void => {
    const validate = ajv.compile(operationOutputSchema(getOperation(model, operationId)) as object);
    if (!validate({ ok: true, method: 'GET', url: prism.url, status, statusText: 'OK', headers: {}, body })) throw new Error(`${operationId}: ${ajv.errorsText(validate.errors)}`);
  };

  beforeAll(async () => {
    model = await loadIntegrationModelFile(MODEL_FILE);
    mem = createMemoryLogger();
    prism = await startPrism(which === 'vmware' ? rewriteActionPaths(JSON.parse(readFileSync(VMWARE_SPEC, 'utf8')) as Record<string, unknown>) : MODEL_FILE);
    ic = createIntegrationClient(
      {
        server: { host: '127.0.0.1', port: prism.port },
        authentication: {
          type: 'api_key',
          in: 'header',
          name: 'vmware-api-session-id',
          // The /api login: the body is the session id itself (a JSON string), so the pointer is blank.
          dynamic: { method: 'POST', url: `${prism.url}/api/session`, headers: { authorization: basic('administrator@vsphere.local', 'pw') } },
        },
      },
      { logger: mem.logger, name: 'vcenter' },
    );
    client = bindTypedClient(ic);
  }, 60_000);
  afterAll(async () => {
    ic?.close();
    await prism?.stop();
  });

  it('lists, gets, clones, creates and deletes virtual machines', async () => {
    const list = await vcenter.apiVcenterVmList({ client, query: { names: ['VDI-JDOE-01'], power_states: ['POWERED_OFF'] } });
    expect(list.error).toBeUndefined();
    expect(list.status).toBe(200);
    expect(Array.isArray(list.data)).toBe(true);
    conforms('api_vcenter_vm_list', 200, list.data);
    expect(list.config?.url).toContain('names=VDI-JDOE-01');

    const got = await vcenter.apiVcenterVmGet({ client, path: { vm: 'vm-42' } });
    expect(got.status).toBe(200);
    conforms('api_vcenter_vm_get', 200, got.data);

    const clone = await vcenter.apiVcenterVmCreate({
      client,
      query: { action: 'clone' },
      body: { source: 'vm-42', name: 'VDI-JDOE-01', placement: { folder: 'group-v1001', resource_pool: 'resgroup-9', datastore: 'datastore-11' }, power_on: false },
    });
    expect(clone.error).toBeUndefined();
    expect(clone.status).toBeGreaterThanOrEqual(200);
    expect(clone.status).toBeLessThan(300);
    expect(typeof clone.data).toBe('string');

    const created = await vcenter.apiVcenterVmCreate({ client, body: { guest_OS: 'WINDOWS_9_64', name: 'VDI-NEW-01', placement: { folder: 'group-v1001' } } });
    expect(created.error).toBeUndefined();
    expect(typeof created.data).toBe('string');

    const del = await vcenter.apiVcenterVmDelete({ client, path: { vm: 'vm-42' } });
    expect(del.status).toBe(204);
  });

  it('reads power state and starts, stops, resets and suspends through one action operation', async () => {
    const state = await vcenter.apiVcenterVmPowerGet({ client, path: { vm: 'vm-42' } });
    expect(state.status).toBe(200);
    conforms('api_vcenter_vm_power_get', 200, state.data);
    for (const action of ['start', 'stop', 'reset', 'suspend'] as const) {
      const r = await vcenter.apiVcenterVmPowerAction({ client, path: { vm: 'vm-42' }, query: { action } });
      expect([action, r.status]).toEqual([action, 204]);
    }
  });

  it('reads guest identity and guest power, and asks the guest to shut down and reboot', async () => {
    const identity = await vcenter.apiVcenterVmGuestIdentityGet({ client, path: { vm: 'vm-42' } });
    expect(identity.status).toBe(200);
    conforms('api_vcenter_vm_guest_identity_get', 200, identity.data);
    const guestPower = await vcenter.apiVcenterVmGuestPowerGet({ client, path: { vm: 'vm-42' } });
    expect(guestPower.status).toBe(200);
    conforms('api_vcenter_vm_guest_power_get', 200, guestPower.data);
    for (const action of ['shutdown', 'reboot'] as const) {
      const r = await vcenter.apiVcenterVmGuestPowerAction({ client, path: { vm: 'vm-42' }, query: { action } });
      expect([action, r.status]).toEqual([action, 204]);
    }
  });

  it('looks up the inventory a clone needs', async () => {
    const calls = [
      ['api_vcenter_datacenter_list', () => vcenter.apiVcenterDatacenterList({ client, query: { names: ['DC-East'] } })],
      ['api_vcenter_cluster_list', () => vcenter.apiVcenterClusterList({ client, query: { datacenters: ['datacenter-3'] } })],
      ['api_vcenter_folder_list', () => vcenter.apiVcenterFolderList({ client, query: { type: 'VIRTUAL_MACHINE', names: ['VDI'] } })],
      ['api_vcenter_datastore_list', () => vcenter.apiVcenterDatastoreList({ client, query: { datacenters: ['datacenter-3'] } })],
      ['api_vcenter_resource_pool_list', () => vcenter.apiVcenterResourcePoolList({ client, query: { clusters: ['domain-c8'] } })],
      ['api_vcenter_network_list', () => vcenter.apiVcenterNetworkList({ client, query: { types: ['DISTRIBUTED_PORTGROUP'] } })],
    ] as const;
    for (const [operationId, call] of calls) {
      const r = await call();
      expect([operationId, r.status]).toEqual([operationId, 200]);
      conforms(operationId, 200, r.data);
    }
  });

  it('reads and ends the session', async () => {
    const info = await vcenter.apiSessionGet({ client });
    expect(info.status).toBe(200);
    conforms('api_session_get', 200, info.data);
    const out = await vcenter.apiSessionDelete({ client });
    expect(out.status).toBe(204);
  });

  it('returns an unknown VM id as a typed 404 error, not a throw', async () => {
    // Prism answers with the declared 404 when asked to; the error body has VMware's standard error shape.
    const r = await vcenter.apiVcenterVmGet({ client, path: { vm: 'vm-999' }, headers: { prefer: 'code=404' } });
    expect(r.error).toBeDefined();
    expect(statusOf(r)).toBe(404);
    expect(r.data).toBeUndefined();
    expect(Array.isArray((r.error as { messages?: unknown })?.messages)).toBe(true);
  });

  it('sends nothing Prism finds invalid (an action outside the enum is refused by the mock)', async () => {
    const r = await vcenter.apiVcenterVmPowerAction({ client, path: { vm: 'vm-42' }, query: { action: 'explode' as 'start' } });
    expect(r.error).toBeDefined();
    expect(statusOf(r)).toBe(400);
    if (r.error === undefined) throw new Error('expected an error');
    expect(r.response?.headers['sl-violations']).toContain('action');
  });

  if (which === 'model') {
    it('sets a guest customization specification (not in the VMware subset)', async () => {
      const r = await vcenter.apiVcenterVmGuestCustomizationSet({ client, path: { vm: 'vm-42' }, body: { name: 'Windows-VDI' } });
      expect(r.status).toBe(204);
    });

    // Snapshots are VI/JSON API calls (vSphere 8.0 U1+): VMware's 7.0.2 Automation description has none to check
    // against, so these run against Prism serving our model only.
    it('creates, lists, reverts and deletes snapshots through the VI/JSON API, polling each task', async () => {
      const release = '8.0.1.0';
      const created = await vcenter.vimVmCreateSnapshotTask({ client, path: { release, moId: 'vm-42' }, body: { name: 'before-deprovision', memory: false, quiesce: false } });
      expect(created.error).toBeUndefined();
      expect(created.data).toMatchObject({ type: 'Task', value: expect.any(String) });
      conforms('vim_vm_create_snapshot_task', 200, created.data);
      const task = await vcenter.vimTaskGetInfo({ client, path: { release, moId: created.data!.value } });
      expect(task.status).toBe(200);
      conforms('vim_task_get_info', 200, task.data);
      expect(['queued', 'running', 'success', 'error']).toContain(task.data!.state);

      const listed = await vcenter.vimVmGetSnapshot({ client, path: { release, moId: 'vm-42' } });
      expect(listed.status).toBe(200);
      conforms('vim_vm_get_snapshot', 200, listed.data);
      const snapshot = listed.data!.rootSnapshotList![0]!.snapshot.value;

      const reverted = await vcenter.vimSnapshotRevertTask({ client, path: { release, moId: snapshot }, body: { suppressPowerOn: true } });
      expect(reverted.error).toBeUndefined();
      conforms('vim_snapshot_revert_task', 200, reverted.data);
      const removed = await vcenter.vimSnapshotRemoveTask({ client, path: { release, moId: snapshot }, body: { removeChildren: false, consolidate: true } });
      expect(removed.error).toBeUndefined();
      conforms('vim_snapshot_remove_task', 200, removed.data);
      // Prism refuses a call without the model's sessionId header (401), so each of these carried the session the
      // runtime bought at /api/session.
      const without = await fetch(`${prism.url}/sdk/vim25/${release}/VirtualMachine/vm-42/snapshot`);
      expect(without.status).toBe(401);
    });

    it('a snapshot request without memory/quiesce, or a release that is not a.b.c.d, is refused by the mock', async () => {
      const r = await vcenter.vimVmCreateSnapshotTask({ client, path: { release: '8.0.1.0', moId: 'vm-42' }, body: { name: 'x' } as never });
      expect(statusOf(r)).toBe(422);
      const bad = await vcenter.vimVmGetSnapshot({ client, path: { release: 'latest', moId: 'vm-42' } });
      expect(statusOf(bad)).toBe(422);
    });
  }
});
