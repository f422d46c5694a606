// The sample runbooks of workflows/definitions/ run end to end through the app: saved through /admin/workflows against
// the configured integrations, asset types as the demo catalogue defines them, orders placed through the API. The
// vCenter session comes from vcsim (the dynamic-key flow); vcsim has no /api/vcenter/vm REST calls and Prism answers
// them with examples unrelated to the allocated VM, so those, SCCM's AdminService, ServiceNow's Table API and the SaaS
// provisioning service are loopback servers implementing the paths the samples call (the VM calls accept only a
// session vcsim says is live). The desktops' WinRM listener is the loopback WS-Man endpoint of wsman-server.ts over
// HTTPS, reached by name (`<asset>.winrm.test`, routed to loopback in this process) with the sccm integration's
// credentials. The directory is the real Samba AD. PGlite and PostgreSQL.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import { Attribute, Change, Client } from 'ldapts';
import { createJobQueue, createLogger, pemToDataUrl, type JobQueue } from '../../adapter';
import { projectPath } from '../../adapter/paths';
import { createIntegrationRuntime, loadIntegrationModelFile, loadIntegrationModelFiles } from '../../integration-model';
import { buildApp } from '../../server/app';
import { buildConfig } from '../../server/config';
import { createAssetType } from '../../server/domain/catalogue/asset-types';
import { createAsset } from '../../server/domain/catalogue/assets';
import { DEMO_ASSET_TYPES } from '../../server/domain/catalogue/demo';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import { createWorkflowRuntime, type WorkflowRuntime } from '../../server/domain/runbooks/workflow-runtime';
import { signWebhookBody } from '../../workflows/executors';
import { TEST_ADMIN_KEY } from '../support/app';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { startHttpsLoopbackServer, type HttpsLoopbackServer } from '../support/https-loopback';
import { routeNamesToLoopback } from '../support/loopback-names';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { mintTestToken, nextRitm, snowPayload } from '../support/orders';
import { ensureSambaAd, SEED_USER_PASSWORD, type SambaAd } from '../support/samba-ad';
import { startVcsim, type Vcsim } from '../support/vcsim';
import { seen } from '../support/vendor-mocks';
import { TEST_ENGINE_CONFIG } from '../support/engine-config';
import { createWsmanHandler, type WsmanState } from '../support/wsman-server';

jest.setTimeout(60_000);

const admin = { 'X-Admin-Key': TEST_ADMIN_KEY };
const SAMPLES = projectPath('workflows/definitions');
const SAAS_SECRET = 'saas-seat-signing-secret';
const RDP_GROUP = 'VDI-Users'; // the samples' default rdpGroup input
// The one Samba is shared by every directory test and by both engine runs: this file orders for a user of its own
// per engine, so no other test sees its group changes.
const AD_USER = process.env['DATABASE_URL'] ? 'sample-pg' : 'sample-pglite';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let t: TestDatabase;
let queue: JobQueue;
let wf: WorkflowRuntime;
let app: Express;
let ad: SambaAd;
let sim: Vcsim;
let vc: LoopbackServer;
let sccm: LoopbackServer;
let snow: LoopbackServer;
let saas: LoopbackServer;
let winrm: HttpsLoopbackServer;
let restoreNames: (() => void) | undefined;
const wsman: WsmanState = { calls: [], schedules: new Map(), rejections: [] };
let snowBearer: string;
const http = () => request(app);
const groupDn = () => `CN=${RDP_GROUP},${ad.seed.ou}`;

// vCenter: VM name -> id and power state, as the inventory answers it.
const vms = new Map<string, { vm: string; power_state: 'POWERED_ON' | 'POWERED_OFF' }>();
// SCCM: deployment status answers still to give per deployment id (then 1 = success).
const progression = new Map<string, number[]>();

// Session ids vcsim confirmed (by naming their user), as the VM calls carried them.
const sessions = new Set<string>();

async function liveSession(id: unknown): Promise<boolean> {
  if (typeof id !== 'string' || id === '') return false;
  if (sessions.has(id)) return true;
  const res = await fetch(`${sim.url}/rest/com/vmware/cis/session?~action=get`, { method: 'POST', headers: { 'vmware-api-session-id': id } });
  if (res.status !== 200 || ((await res.json()) as { value?: { user?: string } }).value?.user !== sim.username) return false;
  sessions.add(id);
  return true;
}

async function vcenterHandler(req: Parameters<Parameters<typeof startLoopbackServer>[0]>[0], res: Parameters<Parameters<typeof startLoopbackServer>[0]>[1]): Promise<void> {
  const s = seen(req);
  if (!(await liveSession(req.headers['vmware-api-session-id']))) return sendJson(res, 401, { error_type: 'UNAUTHENTICATED' });
  if (s.method === 'GET' && s.path === '/api/vcenter/vm') {
    const names = ([] as string[]).concat(s.query['names'] ?? []);
    return sendJson(res, 200, names.filter((n) => vms.has(n)).map((n) => ({ vm: vms.get(n)!.vm, name: n, power_state: vms.get(n)!.power_state, cpu_count: 2, memory_size_MiB: 8192 })));
  }
  const m = /^\/api\/vcenter\/vm\/([^/]+)\/(guest\/customization|power|guest\/power)$/.exec(s.path);
  const entry = m ? [...vms.values()].find((v) => v.vm === m[1]) : undefined;
  if (!m || !entry) return sendJson(res, 404, { error_type: 'NOT_FOUND' });
  if (s.method === 'PUT' && m[2] === 'guest/customization') {
    res.statusCode = 204;
    return void res.end();
  }
  if (s.method === 'POST' && m[2] === 'power') {
    const want = s.query['action'] === 'start' ? 'POWERED_ON' : s.query['action'] === 'stop' ? 'POWERED_OFF' : undefined;
    if (!want) return sendJson(res, 400, { error_type: 'INVALID_ARGUMENT' });
    if (entry.power_state === want) return sendJson(res, 400, { error_type: 'ALREADY_IN_DESIRED_STATE' });
    entry.power_state = want;
    res.statusCode = 204;
    return void res.end();
  }
  if (s.method === 'POST' && m[2] === 'guest/power' && s.query['action'] === 'shutdown') {
    if (entry.power_state === 'POWERED_OFF') return sendJson(res, 400, { error_type: 'NOT_ALLOWED_IN_CURRENT_STATE' });
    entry.power_state = 'POWERED_OFF';
    res.statusCode = 204;
    return void res.end();
  }
  return sendJson(res, 404, { error_type: 'NOT_FOUND' });
}

function sccmHandler(req: Parameters<Parameters<typeof startLoopbackServer>[0]>[0], res: Parameters<Parameters<typeof startLoopbackServer>[0]>[1]): void {
  const s = seen(req);
  if (s.method === 'GET' && s.path === '/AdminService/wmi/SMS_R_System') {
    const name = /^Name eq '([^']+)'$/.exec(String(s.query['$filter']))?.[1];
    const id = name ? Number(vms.get(name)?.vm.replace(/\D/g, '')) + 16777000 : NaN;
    return sendJson(res, 200, { value: Number.isFinite(id) ? [{ ResourceId: id, Name: name, Client: 1, Active: 1 }] : [] });
  }
  if (s.method === 'POST' && /^\/AdminService\/wmi\/SMS_Collection\('[^']+'\)\/AdminService\.(Add|Delete)MembershipRule$/.test(s.path)) {
    return sendJson(res, 200, { ReturnValue: 0 });
  }
  if (s.method === 'GET' && s.path === '/AdminService/wmi/SMS_ClassicDeploymentAssetDetails') {
    const f = /^DeploymentID eq '([^']+)' and DeviceID eq (\d+)$/.exec(String(s.query['$filter']));
    if (!f) return sendJson(res, 400, { error: { message: 'bad filter' } });
    const left = progression.get(f[1]!) ?? [];
    const status = left.shift() ?? 1;
    progression.set(f[1]!, left);
    return sendJson(res, 200, { value: [{ DeploymentID: f[1], DeviceID: Number(f[2]), StatusType: status }] });
  }
  return sendJson(res, 404, { error: { message: 'not found' } });
}

// ServiceNow: RITM number -> sys_id, and the work notes written.
const ritms = new Map<string, string>();
const workNotes: { sysId: string; note: string }[] = [];
function snowHandler(req: Parameters<Parameters<typeof startLoopbackServer>[0]>[0], res: Parameters<Parameters<typeof startLoopbackServer>[0]>[1]): void {
  const s = seen(req);
  if (s.method === 'GET' && s.path === '/api/now/table/sc_req_item') {
    const number = /^number=(RITM\d+)$/.exec(String(s.query['sysparm_query']))?.[1];
    if (number && !ritms.has(number)) ritms.set(number, `sys${ritms.size + 1}`.padEnd(32, '0'));
    return sendJson(res, 200, { result: number ? [{ sys_id: ritms.get(number), number }] : [] });
  }
  const m = /^\/api\/now\/table\/sc_req_item\/([0-9a-z]+)$/.exec(s.path);
  if (s.method === 'PATCH' && m) {
    const note = (s.body as { work_notes?: string }).work_notes ?? '';
    workNotes.push({ sysId: m[1]!, note });
    return sendJson(res, 200, { result: { sys_id: m[1], work_notes: '' } });
  }
  return sendJson(res, 404, { error: { message: 'No Record found' } });
}

/** Saves one sample through the API; `inputs` replaces input defaults (a deployment's own endpoints). */
async function saveSample(file: string, inputs: Record<string, unknown> = {}): Promise<void> {
  const doc = JSON.parse(await readFile(join(SAMPLES, file), 'utf8')) as { inputSchema: { properties: Record<string, { default?: unknown }> } };
  for (const [k, v] of Object.entries(inputs)) doc.inputSchema.properties[k]!.default = v;
  const res = await http().post('/admin/workflows').set(admin).send(doc);
  if (res.status !== 201) throw new Error(`${file}: ${res.status} ${JSON.stringify(res.body)}`);
}

async function ldapClient(): Promise<Client> {
  const c = new Client({ url: ad.ldapsUrl, tlsOptions: { ca: await readFile(ad.caCertPath) }, timeout: 15_000 });
  await c.bind(ad.bindDn, ad.bindPassword);
  return c;
}

async function groupMembers(): Promise<string[]> {
  const c = await ldapClient();
  try {
    const { searchEntries } = await c.search(groupDn(), { scope: 'base', attributes: ['member'] });
    const m = searchEntries[0]?.['member'];
    return (m === undefined ? [] : Array.isArray(m) ? m : [m]).map(String);
  } finally {
    await c.unbind();
  }
}

async function userDn(sam: string): Promise<string> {
  const c = await ldapClient();
  try {
    const { searchEntries } = await c.search(ad.seed.ou, { scope: 'sub', filter: `(sAMAccountName=${sam})`, attributes: ['1.1'] });
    return searchEntries[0]!.dn;
  } finally {
    await c.unbind();
  }
}

/** This run's own enabled user (created once, then reused), and the samples' RDP group without it. */
async function prepareGroup(): Promise<void> {
  const c = await ldapClient();
  try {
    try {
      await c.add(`CN=${AD_USER},${ad.seed.ou}`, [
        new Attribute({ type: 'objectClass', values: ['top', 'person', 'organizationalPerson', 'user'] }),
        new Attribute({ type: 'sAMAccountName', values: [AD_USER] }),
        new Attribute({ type: 'userPrincipalName', values: [`${AD_USER}@test.local`] }),
        new Attribute({ type: 'mail', values: [`${AD_USER}@test.local`] }),
        new Attribute({ type: 'displayName', values: [`Sample ${AD_USER}`] }),
        new Attribute({ type: 'unicodePwd', values: [Buffer.from(`"${SEED_USER_PASSWORD}"`, 'utf16le')] }),
        new Attribute({ type: 'userAccountControl', values: ['512'] }),
      ]);
    } catch (e) {
      if ((e as { code?: unknown }).code !== 68) throw e;
    }
    try {
      await c.add(groupDn(), { objectClass: ['top', 'group'], cn: RDP_GROUP, sAMAccountName: RDP_GROUP, groupType: '-2147483646' });
    } catch (e) {
      if ((e as { code?: unknown }).code !== 68) throw e;
    }
    const dn = await userDn(AD_USER);
    try {
      await c.modify(groupDn(), new Change({ operation: 'delete', modification: new Attribute({ type: 'member', values: [dn] }) }));
    } catch (e) {
      if (![16, 53].includes((e as { code?: number }).code ?? 0)) throw e;
    }
  } finally {
    await c.unbind();
  }
}

/** Polls the order; delayed poll probes (1-2 min apart in the samples) are brought forward so the test stays short. */
async function waitForOrder(id: number, statuses: string[], timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await t.db.query(`UPDATE pgboss.job SET start_after = now() WHERE name = 'workflow.step' AND state = 'created' AND start_after > now()`);
    const res = await http().get(`/orders/${id}`).set(admin);
    if (statuses.includes(res.body.status as string)) return res.body as Record<string, unknown>;
    if (Date.now() > deadline) throw new Error(`order ${id} is ${String(res.body.status)} (${String(res.body.error_message)}), expected ${statuses.join('|')}`);
    await sleep(100);
  }
}

async function waitForAsset(name: string, state: string, timeoutMs = 30_000): Promise<{ state: string; assigned_order_id: number | null }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await t.db.query(`UPDATE pgboss.job SET start_after = now() WHERE name = 'workflow.step' AND state = 'created' AND start_after > now()`);
    const { rows } = await t.db.query<{ state: string; assigned_order_id: number | null }>('SELECT state, assigned_order_id FROM assets WHERE name = $1', [name]);
    const a = rows[0]!;
    if (a.state === state) return { state: a.state, assigned_order_id: a.assigned_order_id === null ? null : Number(a.assigned_order_id) };
    if (Date.now() > deadline) throw new Error(`asset ${name} is ${a.state}, expected ${state}`);
    await sleep(100);
  }
}

beforeAll(async () => {
  restoreNames = routeNamesToLoopback(/\.winrm\.test$/i);
  const handleWsman = createWsmanHandler(wsman);
  [ad, sim, vc, sccm, snow, saas, winrm] = await Promise.all([
    ensureSambaAd(),
    startVcsim(),
    startLoopbackServer(vcenterHandler),
    startLoopbackServer(sccmHandler),
    startLoopbackServer(snowHandler),
    startLoopbackServer((req, res) => {
      if (req.url === '/webhooks/provision') return sendJson(res, 200, { response: 'PROVISIONED_USER' });
      res.statusCode = req.url === '/webhooks/deprovision' ? 204 : 404;
      res.end();
    }),
    startHttpsLoopbackServer((req, res) => handleWsman(req, res), { dnsNames: ['*.winrm.test'] }),
  ]);
  await prepareGroup();
  for (const [i, name] of DEMO_ASSET_TYPES[0]!.poolAssets.entries()) vms.set(name, { vm: `vm-${101 + i}`, power_state: 'POWERED_OFF' });

  t = await createTestDatabase();
  const logger = createLogger({ silent: !process.env['TEST_LOGS'] });
  queue = createJobQueue(t.db, { logger, schedule: false });
  await queue.start();
  wf = createWorkflowRuntime({ db: t.db, queue, logger, integrations: createIntegrationRuntime({ db: t.db, queue, logger }), config: { ...TEST_ENGINE_CONFIG, pollingIntervalSeconds: 0.3 } });
  await wf.startWorkers({ teamSize: 3 });
  app = buildApp(
    { db: t.db, queue, logger, workflowEngine: wf.engine, integrations: wf.integrations, adminKeyHash: async () => hashSecret(TEST_ADMIN_KEY) },
    buildConfig({ validateResponses: true, adminKey: TEST_ADMIN_KEY }),
  );
  snowBearer = await mintTestToken(t.db, 'snow', ['webhook:in']);

  await loadIntegrationModelFiles(t.db, logger, projectPath('openapi/integrations'));
  const modelId = async (file: string) => (await loadIntegrationModelFile(projectPath('openapi/integrations', file))).id;
  const integrations: [string, string, LoopbackServer, Record<string, unknown>][] = [
    [
      'vcenter',
      'vcenter.yaml',
      vc,
      {
        type: 'api_key',
        in: 'header',
        name: 'vmware-api-session-id',
        dynamic: {
          method: 'POST',
          url: `${sim.url}/rest/com/vmware/cis/session`,
          response_pointer: '/value',
          headers: { authorization: `Basic ${Buffer.from(`${sim.username}:${sim.password}`).toString('base64')}` },
        },
      },
    ],
    ['sccm', 'sccm-adminservice.yaml', sccm, { type: 'basic', username: 'CORP\\svc-sccm', password: 'sccm-pass' }],
    ['servicenow', 'servicenow-table.yaml', snow, { type: 'basic', username: 'svc.provisio', password: 'snow-pass' }],
  ];
  for (const [name, file, server, authentication] of integrations) {
    const res = await http()
      .post('/admin/integrations')
      .set(admin)
      // The sccm integration's connection also reaches the desktops' WinRM listeners: it trusts their CA.
      .send({ name, model_id: await modelId(file), config: { server: { host: '127.0.0.1', port: server.port }, authentication, timeout: 5000, ...(name === 'sccm' ? { mtls: { ca: pemToDataUrl(winrm.serverCa.certPem) } } : {}) } });
    if (res.status !== 201) throw new Error(`integration ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  }

  const dir = await http()
    .put('/admin/settings/active_directory')
    .set(admin)
    .send({ server: ad.host, port: 636, use_tls: true, bind_dn: ad.bindDn, bind_password: ad.bindPassword, base_dn: ad.seed.ou, ca_cert_pem: await readFile(ad.caCertPath, 'utf8') });
  if (dir.status !== 200) throw new Error(`active_directory settings: ${dir.status} ${JSON.stringify(dir.body)}`);
  // The samples sign their webhooks with the `webhooks.saas_seat_secret` setting, which is write-only.
  const secret = await http().put('/admin/settings/webhooks').set(admin).send({ saas_seat_secret: SAAS_SECRET });
  if (secret.status !== 200) throw new Error(`webhooks settings: ${secret.status} ${JSON.stringify(secret.body)}`);
  expect(JSON.stringify(secret.body)).not.toContain(SAAS_SECRET);

  // Children first: the provision runbooks run the RITM note as a child workflow.
  await saveSample('servicenow-ritm-note.json');
  await saveSample('standard-vdi-provision.json', { deviceDnsSuffix: '.winrm.test', winrmPort: winrm.port });
  await saveSample('standard-vdi-deprovision.json');
  await saveSample('standard-vdi-reinstall.json');
  await saveSample('saas-seat-provision.json', { provisionUrl: `${saas.url}/webhooks/provision` });
  await saveSample('saas-seat-deprovision.json', { deprovisionUrl: `${saas.url}/webhooks/deprovision` });

  // The demo catalogue, through the same domain commands; the seat without approval so the order runs at once.
  await t.db.transaction(async (tx) => {
    for (const { poolAssets, ...input } of DEMO_ASSET_TYPES) {
      const type = await createAssetType(tx, { ...input, requires_approval: false }, { triggeredBy: 'system:test' });
      for (const name of poolAssets) await createAsset(tx, { asset_type_id: type.id, name }, { triggeredBy: 'system:test' });
    }
  });
}, 120_000);

afterAll(async () => {
  await wf?.stop();
  await queue?.stop({ graceful: false, timeoutMs: 2000 });
  await t?.drop();
  await Promise.all([vc, sccm, snow, saas, winrm].map((s) => s?.close()));
  restoreNames?.();
  await sim?.stop();
});

describe('Standard VDI (pooled)', () => {
  let orderId: number;
  let assetName: string;
  const email = `${AD_USER}@test.local`;

  test('a ServiceNow order provisions a desktop: vCenter, AD group, SCCM task sequence with its poll, RITM note', async () => {
    const ritm = nextRitm();
    progression.set('PS120001', [2, 2]); // in progress twice, then success
    const placed = await http()
      .post('/webhook/servicenow')
      .set({ Authorization: `Bearer ${snowBearer}` })
      .send(snowPayload('Standard VDI', { servicenow_ref: ritm, user_email: email, user_name: 'VDI User' }));
    expect(placed.status).toBe(201);
    orderId = placed.body.id as number;

    const done = await waitForOrder(orderId, ['provisioned', 'failed']);
    expect(done).toMatchObject({ status: 'provisioned', error_message: null });
    const { rows } = await t.db.query<{ name: string; state: string; assigned_order_id: number }>('SELECT name, state, assigned_order_id FROM assets WHERE id = $1', [done['assigned_asset_id']]);
    assetName = rows[0]!.name;
    expect(rows[0]).toMatchObject({ state: 'in_use' });
    expect(Number(rows[0]!.assigned_order_id)).toBe(orderId);

    const steps = done['steps'] as { step_id: string; status: string }[];
    const byId = Object.fromEntries(steps.map((s) => [s.step_id, s.status]));
    expect(byId).toMatchObject({
      find_vm: 'succeeded',
      check_vm_found: 'succeeded',
      customise_guest: 'succeeded',
      power_on: 'succeeded',
      add_rdp_group: 'succeeded',
      find_device: 'succeeded',
      start_task_sequence: 'succeeded',
      refresh_policy: 'succeeded',
      run_task_sequence: 'succeeded',
      wait_task_sequence: 'succeeded',
      from_servicenow: 'succeeded',
      note_ritm: 'succeeded',
    });

    // vCenter: lookup, customisation and power-on of the allocated VM, each with one session bought from vcsim.
    const vcCalls = vc.requests.map(seen);
    const vmId = vms.get(assetName)!.vm;
    expect(vcCalls.map((c) => `${c.method} ${c.path}`)).toEqual(['GET /api/vcenter/vm', `PUT /api/vcenter/vm/${vmId}/guest/customization`, `POST /api/vcenter/vm/${vmId}/power`]);
    expect(new Set(vc.requests.map((r) => r.headers['vmware-api-session-id'])).size).toBe(1);
    expect(sessions.has(String(vc.requests[0]!.headers['vmware-api-session-id']))).toBe(true);
    expect(vcCalls.find((c) => c.path === '/api/vcenter/vm')!.query).toEqual({ names: assetName });
    expect(vcCalls.find((c) => c.path.endsWith('/guest/customization'))!.body).toEqual({ name: 'Win11-VDI' });
    expect(vcCalls.find((c) => c.path.endsWith('/power'))!.query).toEqual({ action: 'start' });
    expect(vms.get(assetName)!.power_state).toBe('POWERED_ON');

    // SCCM: the device, the direct rule on the task sequence collection, and probes until success.
    const sc = sccm.requests.map(seen);
    const resourceId = Number(vmId.replace(/\D/g, '')) + 16777000;
    expect(sc[0]).toMatchObject({ method: 'GET', path: '/AdminService/wmi/SMS_R_System', query: { $filter: `Name eq '${assetName}'` } });
    expect(sc[1]).toMatchObject({
      method: 'POST',
      path: "/AdminService/wmi/SMS_Collection('PS100012')/AdminService.AddMembershipRule",
      body: { collectionRule: { '@odata.type': '#AdminService.SMS_CollectionRuleDirect', ResourceClassName: 'SMS_R_System', RuleName: assetName, ResourceID: resourceId } },
    });
    const probes = sc.filter((c) => c.path === '/AdminService/wmi/SMS_ClassicDeploymentAssetDetails');
    expect(probes).toHaveLength(3);
    expect(probes[0]!.query).toEqual({ $filter: `DeploymentID eq 'PS120001' and DeviceID eq ${resourceId}` });
    expect(sc.every((c) => c.authorization === `Basic ${Buffer.from('CORP\\svc-sccm:sccm-pass').toString('base64')}`)).toBe(true);

    // WinRM: machine policy, then the task sequence started on the desktop, with the sccm integration's credentials.
    const device = `${assetName.toLowerCase()}.winrm.test`;
    expect(wsman.rejections).toEqual([]);
    expect(wsman.calls.map((c) => [c.device, c.method, c.params])).toEqual([
      [device, 'TriggerSchedule', { sScheduleID: '{00000000-0000-0000-0000-000000000021}' }],
      [device, 'ExecuteProgram', { ProgramID: '*', PackageID: 'PS100020' }],
    ]);
    expect(winrm.requests.every((r) => r.headers.authorization === `Basic ${Buffer.from('CORP\\svc-sccm:sccm-pass').toString('base64')}`)).toBe(true);

    // AD: the user is now a member of the RDP group (read back from Samba).
    expect(await groupMembers()).toContain(await userDn(AD_USER));

    // ServiceNow: the RITM found by number and noted.
    const sysId = ritms.get(ritm);
    expect(sysId).toBeDefined();
    expect(workNotes).toContainEqual({ sysId, note: `Desktop ${assetName} is ready for ${AD_USER}.` });
  });

  test('taking it back deprovisions (RDP access revoked, guest shut down) and the reinstall returns the desktop to the pool', async () => {
    const vcBefore = vc.requests.length;
    const sccmBefore = sccm.requests.length;
    progression.set('PS120007', [2]);
    const res = await http()
      .post('/webhook/servicenow')
      .set({ Authorization: `Bearer ${snowBearer}` })
      .send(snowPayload('Standard VDI', { action: 'delete', user_email: email, user_name: 'VDI User' }));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ action: 'delete', target_order_id: orderId });

    const target = await waitForOrder(orderId, ['returned', 'failed']);
    expect(target['status']).toBe('returned');
    const deleteOrder = await waitForOrder(res.body.id as number, ['provisioned', 'completed', 'returned', 'failed']);
    expect(deleteOrder['status']).not.toBe('failed');
    expect(await waitForAsset(assetName, 'free')).toEqual({ state: 'free', assigned_order_id: null });

    expect(await groupMembers()).not.toContain(await userDn(AD_USER));
    const vmId = vms.get(assetName)!.vm;
    const vcCalls = vc.requests.slice(vcBefore).map(seen).map((c) => `${c.method} ${c.path} ${JSON.stringify(c.query)}`);
    // Deprovision shuts the guest down; reinstall finds it already off (400 accepted) and PXE-boots it.
    expect(vcCalls).toEqual(
      expect.arrayContaining([
        `POST /api/vcenter/vm/${vmId}/guest/power {"action":"shutdown"}`,
        `POST /api/vcenter/vm/${vmId}/power {"action":"stop"}`,
        `POST /api/vcenter/vm/${vmId}/power {"action":"start"}`,
      ]),
    );
    const sc = sccm.requests.slice(sccmBefore).map(seen).map((c) => `${c.method} ${c.path}`);
    expect(sc).toEqual([
      'GET /AdminService/wmi/SMS_R_System',
      "POST /AdminService/wmi/SMS_Collection('PS100020')/AdminService.AddMembershipRule",
      'GET /AdminService/wmi/SMS_ClassicDeploymentAssetDetails',
      'GET /AdminService/wmi/SMS_ClassicDeploymentAssetDetails',
      "POST /AdminService/wmi/SMS_Collection('PS100020')/AdminService.DeleteMembershipRule",
    ]);
  });
});

describe('SaaS seat (personal)', () => {
  const email = `seat.${AD_USER}@example.com`;

  test('provisioned and taken back through the signed provisioning webhooks', async () => {
    const placed = await http()
      .post('/orders')
      .set(admin)
      .send({ asset_type_name: 'SaaS seat', user_email: email, user_name: 'Seat User', config: { licence_tier: 'pro' } });
    expect(placed.status).toBe(201);
    const done = await waitForOrder(placed.body.id as number, ['provisioned', 'failed']);
    expect(done).toMatchObject({ status: 'provisioned', error_message: null });
    expect(Object.fromEntries((done['steps'] as { step_id: string; status: string }[]).map((s) => [s.step_id, s.status]))).toMatchObject({
      provision_seat: 'succeeded',
    });
    const prov = saas.requests.filter((r) => r.url === '/webhooks/provision');
    expect(prov).toHaveLength(1);
    expect(JSON.parse(prov[0]!.body)).toMatchObject({
      application: { app_id: 'saas_seat', user_friendly_label: 'SaaS seat' },
      permissions: [{ label: 'Standard seat', value: 'Standard seat', type: 'PERMISSION', source: 'MANUAL' }],
      target_user: { email },
      request_comment: `provisio order ${String(placed.body.id)}`,
      custom_fields: { username: `seat.${AD_USER}` },
    });
    expect(JSON.stringify(prov[0]!.headers)).not.toContain(SAAS_SECRET);
    // Signed with the settings secret the sample names.
    const signedOk = (r: { headers: Record<string, string | string[] | undefined>; body: string }) =>
      r.headers['x-provisio-signature'] === signWebhookBody(SAAS_SECRET, Number(r.headers['x-provisio-timestamp']), r.body);
    expect(signedOk(prov[0]!)).toBe(true);

    const res = await http()
      .post('/webhook/servicenow')
      .set({ Authorization: `Bearer ${snowBearer}` })
      .send(snowPayload('SaaS seat', { action: 'delete', user_email: email, user_name: 'Seat User' }));
    expect(res.status).toBe(201);
    expect(res.body.target_order_id).toBe(placed.body.id);
    expect((await waitForOrder(placed.body.id as number, ['returned', 'failed']))['status']).toBe('returned');
    const deprov = saas.requests.filter((r) => r.url === '/webhooks/deprovision');
    expect(deprov).toHaveLength(1);
    expect(signedOk(deprov[0]!)).toBe(true);
    expect(JSON.parse(deprov[0]!.body)).toMatchObject({ target_user: { email }, request_comment: `provisio order ${String(placed.body.id)} returned` });
  });
});
