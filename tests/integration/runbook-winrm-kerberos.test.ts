/**
 * The sample runbook "Standard VDI - provision" end to end with Kerberos: the `sccm` integration authenticates its
 * AdminService calls with Negotiate (a keytab of krb-client@TEST.LOCAL from the suite's Samba KDC), and the runbook's
 * `winrm` steps reach the device's WinRM listener with the same integration's credentials, Kerberos too. Both sit
 * behind one loopback HTTPS server that accepts only SPNEGO tokens verified with the KDC's keytab for
 * HTTP/sccm.test.local (tests/support/spnego-server.ts: the AdminService routes in the child, the WS-Man listener of
 * tests/support/wsman-server.ts relayed behind it). vCenter and ServiceNow are the demo's stub integrations; the
 * directory is an in-memory fake (Samba's directory is tested by sample-runbooks.test.ts).
 *
 * Host names: the KDC knows one HTTP service, HTTP/sccm.test.local, so the "device" is called `sccm` and the runbook's
 * `deviceDnsSuffix` input makes it sccm.test.local; nothing resolves that name here, so this file answers
 * `*.test.local` with 127.0.0.1 (tests/support/loopback-names.ts), and the server's certificate names it.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createJobQueue, projectPath, type Directory, type JobQueue } from '../../adapter';
import { createIntegration, createIntegrationRuntime, loadIntegrationModelFile, upsertIntegrationModel } from '../../integration-model';
import { createWorkflowRuntime, type WorkflowRuntime } from '../../server/domain/runbooks/workflow-runtime';
import { parseWorkflowFile } from '../../workflows/document';
import type { RunWithSteps } from '../../workflows/engine';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { TEST_ENGINE_CONFIG } from '../support/engine-config';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { routeNamesToLoopback } from '../support/loopback-names';
import { createCa } from '../support/pki';
import { ensureKerberos, type SambaKerberos } from '../support/samba-kerberos';
import { writeStaleKeytab } from '../support/spnego-server';
import { startKerberosWsmanServer, type KerberosWsmanServer } from '../support/wsman-server';

jest.setTimeout(90_000);

const VDI = 'Standard VDI - provision';
const MACHINE_POLICY = '{00000000-0000-0000-0000-000000000021}';
const WMI = 'http://schemas.microsoft.com/wbem/wsman/1/wmi/';
/** A task sequence package whose ExecuteProgram the device's client answers with ReturnValue 5. */
const REFUSED_PACKAGE = 'PS1000FF';
const actor = { triggeredBy: 'system:test' };

let k: SambaKerberos;
let keytab: string;
let site: KerberosWsmanServer;
let stale: KerberosWsmanServer;
let staleKeytabPath: string;
let t: TestDatabase;
let queue: JobQueue;
let wf: WorkflowRuntime;
let mem: MemoryLogger;
const groupAdds: string[] = [];
let restoreNames: (() => void) | undefined;

/** Only what the sample calls: add the requester to the RDP group. */
const directory = {
  async addGroupMember(group: { value: string }, user: { value: string }) {
    groupAdds.push(`${group.value}:${user.value}`);
    return { changed: true, reason: 'added', groupDn: `CN=${group.value},DC=test,DC=local`, memberDn: `CN=${user.value},DC=test,DC=local` };
  },
} as unknown as Directory;

async function startVdiRun(devicePort: number, inputs: Record<string, unknown> = {}): Promise<string> {
  const run = await t.db.transaction((tx) =>
    wf.engine.startRun(tx, {
      workflow: VDI,
      inputs: { deviceDnsSuffix: '.test.local', winrmPort: devicePort, ...inputs },
      variables: {
        order: { id: 1, action: 'provision', source: 'portal', servicenow_ref: null, user_email: 'jane.doe@example.com', username: 'jane.doe' },
        asset: { id: 1, name: 'sccm' },
      },
      lockKey: null,
      createdBy: 'test',
    }),
  );
  return run.id;
}

/** Waits for the run to finish; delayed jobs (the poll's interval, retry back-off) are brought forward. */
async function finished(runId: string, timeoutMs = 60_000): Promise<RunWithSteps> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await t.db.query(`UPDATE pgboss.job SET start_after = now() WHERE name = 'workflow.step' AND state = 'created' AND start_after > now()`);
    const run = await wf.engine.getRun(runId);
    if (['succeeded', 'failed', 'cancelled'].includes(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} is ${run.status}: ${JSON.stringify(run.steps.map((s) => [s.stepId, s.attempt, s.status, s.error]))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const lastAttempts = (run: RunWithSteps): Record<string, string> => Object.fromEntries(run.steps.map((s) => [s.stepId, s.status]));

beforeAll(async () => {
  restoreNames = routeNamesToLoopback(/\.test\.local$/i);
  k = await ensureKerberos();
  keytab = readFileSync(k.clientKeytab).toString('base64');
  staleKeytabPath = join(k.krb5Conf, '..', `http-service-stale-winrm-${process.pid}.keytab`);
  writeStaleKeytab(k.httpServiceKeytab, staleKeytabPath);
  // One CA for the site server and every device, as an organisation's PKI issues them: the integration trusts it.
  const ca = createCa('WinRM test organisation CA');
  [site, stale] = await Promise.all([
    startKerberosWsmanServer(k, { returnValues: { [REFUSED_PACKAGE]: 5 }, spnego: { ca } }),
    // A device whose WinRM service holds keys that decrypt nothing (its account's password reset without a new keytab).
    startKerberosWsmanServer(k, { spnego: { keytab: staleKeytabPath, ca } }),
  ]);

  t = await createTestDatabase();
  mem = createMemoryLogger();
  queue = createJobQueue(t.db, { logger: mem.logger, schedule: false });
  await queue.start();
  wf = createWorkflowRuntime({
    db: t.db,
    queue,
    logger: mem.logger,
    integrations: createIntegrationRuntime({ db: t.db, queue, logger: mem.logger }),
    config: { ...TEST_ENGINE_CONFIG, pollingIntervalSeconds: 0.3 },
    directories: { get: async () => directory, close: async () => {} },
  });
  await wf.startWorkers({ teamSize: 3 });

  const model = async (file: string) => {
    const m = await loadIntegrationModelFile(projectPath('openapi', 'integrations', file));
    await t.db.transaction((tx) => upsertIntegrationModel(tx, m, 'system:test'));
    return m;
  };
  const [vcenter, servicenow, sccm] = await Promise.all([model('vcenter.yaml'), model('servicenow-table.yaml'), model('sccm-adminservice.yaml')]);
  await t.db.transaction(async (tx) => {
    // As the demo configures them: stub mode, answered from the models' examples.
    await createIntegration(tx, vcenter, { name: 'vcenter', model_id: vcenter.id, config: { server: { protocol: 'https', host: 'vcenter.demo.example.com' } }, stub_mode: true }, actor);
    await createIntegration(tx, servicenow, { name: 'servicenow', model_id: servicenow.id, config: { server: { protocol: 'https', host: 'snow.demo.example.com' } }, stub_mode: true }, actor);
    // The site server is reached at 127.0.0.1, so its SPN is named; the devices are reached by name (HTTP/<device>).
    await createIntegration(
      tx,
      sccm,
      {
        name: 'sccm',
        model_id: sccm.id,
        config: {
          server: { protocol: 'https', host: '127.0.0.1', port: site.port },
          authentication: { type: 'negotiate', principal: k.client.principal, keytab, spn: `HTTP/${k.httpServiceHost}` },
          mtls: { ca: site.spnego.caDataUrl },
          timeout: 10_000,
          logging: { level: 'debug' },
        },
      },
      actor,
    );
  });
  for (const file of ['servicenow-ritm-note.json', 'standard-vdi-provision.json']) {
    await wf.engine.saveWorkflow(parseWorkflowFile(readFileSync(projectPath('workflows', 'definitions', file), 'utf8')), 'system:test');
  }
}, 240_000);

afterAll(async () => {
  await wf?.stop();
  wf?.integrations.close();
  await queue?.stop({ graceful: false, timeoutMs: 2000 });
  await t?.drop();
  await Promise.all([site, stale].map((s) => s?.stop()));
  if (staleKeytabPath) rmSync(staleKeytabPath, { force: true });
  restoreNames?.();
});

describe('Standard VDI - provision with Kerberos AdminService and the WinRM trigger', () => {
  test('provisions: the WinRM listener received TriggerSchedule and ExecuteProgram from the Kerberos principal before the status poll', async () => {
    const adminBefore = (await site.spnego.events()).length;
    const run = await finished(await startVdiRun(site.port));
    expect(run.error).toBeNull();
    expect(run.status).toBe('succeeded');
    expect(lastAttempts(run)).toMatchObject({
      find_device: 'succeeded',
      start_task_sequence: 'succeeded',
      refresh_policy: 'succeeded',
      run_task_sequence: 'succeeded',
      wait_task_sequence: 'succeeded',
      from_servicenow: 'failed', // not ordered through ServiceNow: its error transition ends the run
    });
    expect(groupAdds).toEqual(['VDI-Users:jane.doe']);

    // The envelopes the listener accepted, in order, with the principal the SPNEGO acceptor proved.
    expect(site.rejections).toEqual([]);
    expect(site.calls.map(({ messageId: _id, ...c }) => c)).toEqual([
      { device: 'sccm.test.local', resourceUri: `${WMI}root/ccm/SMS_Client`, method: 'TriggerSchedule', params: { sScheduleID: MACHINE_POLICY }, principal: k.client.principal },
      { device: 'sccm.test.local', resourceUri: `${WMI}root/ccm/ClientSDK/CCM_ProgramsManager`, method: 'ExecuteProgram', params: { ProgramID: '*', PackageID: 'PS100020' }, principal: k.client.principal },
    ]);
    const run_ts = run.steps.find((s) => s.stepId === 'run_task_sequence');
    expect(run_ts?.output).toMatchObject({ device: 'sccm.test.local', method: 'ExecuteProgram', returnValue: 0, messageId: site.calls[1]!.messageId });

    // Every AdminService call and both WS-Man calls carried a Kerberos token the server verified, in runbook order.
    const seen = (await site.spnego.events()).slice(adminBefore);
    expect(seen.filter((e) => e.kind === 'refused')).toEqual([]);
    expect(seen.map((e) => [e.user, e.method, (e.url ?? '').split('?')[0]])).toEqual([
      [k.client.principal, 'GET', '/AdminService/wmi/SMS_R_System'],
      [k.client.principal, 'POST', "/AdminService/wmi/SMS_Collection('PS100012')/AdminService.AddMembershipRule"],
      [k.client.principal, 'POST', '/wsman'],
      [k.client.principal, 'POST', '/wsman'],
      [k.client.principal, 'GET', '/AdminService/wmi/SMS_ClassicDeploymentAssetDetails'],
    ]);
    // Both WinRM steps used the runtime's one client for the device (its kept-alive connection, its ticket).
    const wsmanPorts = seen.filter((e) => e.url === '/wsman').map((e) => e.remotePort);
    expect(new Set(wsmanPorts).size).toBe(1);
  });

  test('a non-zero ReturnValue from ExecuteProgram fails the run with WINRM_RETURN_VALUE naming it, after the retries the sample allows', async () => {
    const before = site.calls.length;
    const run = await finished(await startVdiRun(site.port, { taskSequencePackageId: REFUSED_PACKAGE }));
    expect(run.status).toBe('failed');
    expect(run.error).toEqual({ code: 'WINRM_RETURN_VALUE', stepId: 'run_task_sequence', message: 'ExecuteProgram on sccm.test.local returned ReturnValue 5 (0x00000005)' });
    const attempts = run.steps.filter((s) => s.stepId === 'run_task_sequence');
    expect(attempts.map((s) => s.status)).toEqual(['failed', 'failed', 'failed', 'failed']);
    expect(attempts.at(-1)?.output).toMatchObject({ returnValue: 5, output: { ReturnValue: '5' } });
    expect(lastAttempts(run)).not.toHaveProperty('wait_task_sequence');
    expect(site.calls.slice(before).map((c) => [c.method, c.params['PackageID'] ?? c.params['sScheduleID']])).toEqual([
      ['TriggerSchedule', MACHINE_POLICY],
      ['ExecuteProgram', REFUSED_PACKAGE],
      ['ExecuteProgram', REFUSED_PACKAGE],
      ['ExecuteProgram', REFUSED_PACKAGE],
      ['ExecuteProgram', REFUSED_PACKAGE],
    ]);
  });

  test('a device that cannot decrypt the ticket (stale keytab) fails the run at once with WINRM_AUTH naming the Kerberos errors', async () => {
    const run = await finished(await startVdiRun(stale.port));
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ code: 'WINRM_AUTH', stepId: 'refresh_policy' });
    expect(run.error?.message).toMatch(/^WSMAN_AUTH_FAILED: WS-Man TriggerSchedule on root\/ccm\/SMS_Client: .*refused the Kerberos authentication of krb-client@TEST\.LOCAL to HTTP\/sccm\.test\.local .*KRB_AP_ERR_MODIFIED/);
    // Refused credentials are not retried (each try would count toward a lockout).
    expect(run.steps.filter((s) => s.stepId === 'refresh_policy')).toHaveLength(1);
    expect(stale.calls).toEqual([]);
    expect((await stale.spnego.events()).at(-1)).toMatchObject({ kind: 'refused', reason: 'token not accepted' });
  });

  test('no keytab or token in any log line, step output or stored run', async () => {
    const stored = JSON.stringify((await t.db.query('SELECT * FROM workflow_runs')).rows) + JSON.stringify((await t.db.query('SELECT * FROM workflow_steps')).rows);
    for (const text of [mem.text(), stored]) {
      expect(text).not.toContain(keytab.slice(20, 80));
      expect(text).not.toMatch(/Negotiate [A-Za-z0-9+/]{20,}/);
    }
    expect(mem.text()).toContain('/wsman');
  });
});
