// The sample runbooks in workflows/definitions/: each must compile against the integrations and operationIds the
// integration work provides (listed here, the contract between the two), and be stored in export form.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { compileWorkflow, exportWorkflow, staticCompileContext, type CompiledWorkflow, type WorkflowDocument } from './index';

const DIR = path.join(__dirname, '../definitions');

/** The operations the samples call, by integration: the integration models must expose these operationIds. */
const SAMPLE_OPERATIONS = {
  vcenter: ['api_vcenter_vm_list', 'api_vcenter_vm_guest_customization_set', 'api_vcenter_vm_power_start', 'api_vcenter_vm_power_stop', 'api_vcenter_vm_guest_power_shutdown'],
  sccm: ['get_device_by_name', 'add_collection_membership_rule', 'delete_collection_membership_rule', 'list_deployment_asset_details'],
  servicenow: ['getTableRecords', 'updateTableRecord'],
};

const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
const documents = files.map((f) => ({ file: f, text: readFileSync(path.join(DIR, f), 'utf8') }));
const parsed = documents.map((d) => ({ ...d, doc: JSON.parse(d.text) as WorkflowDocument }));
const ctx = staticCompileContext({
  integrations: SAMPLE_OPERATIONS,
  workflows: Object.fromEntries(parsed.map(({ doc }) => [doc.name, [{ version: doc.version ?? 1, inputSchema: doc.inputSchema }]])),
});

async function compiled(name: string): Promise<CompiledWorkflow> {
  const entry = parsed.find((p) => p.doc.name === name);
  if (!entry) throw new Error(`no sample named ${name}`);
  const r = await compileWorkflow(entry.doc, ctx);
  if (!r.ok) throw new Error(`${entry.file}: ${JSON.stringify(r.errors, null, 2)}`);
  return r.workflow;
}

describe('sample definitions', () => {
  it('holds the Standard VDI and SaaS seat sets', () => {
    expect(parsed.map((p) => p.doc.name).sort()).toEqual([
      'SaaS seat - deprovision',
      'SaaS seat - provision',
      'ServiceNow - RITM work note',
      'Standard VDI - deprovision',
      'Standard VDI - provision',
      'Standard VDI - reinstall',
    ]);
  });

  it.each(documents.map((d) => [d.file, d.text]))('%s is stored in export form', (_file, text) => {
    expect(exportWorkflow(JSON.parse(text) as WorkflowDocument)).toBe(text);
  });

  it.each(parsed.map((p) => [p.file, p.doc.name]))('%s compiles', async (_file, name) => {
    await expect(compiled(name)).resolves.toBeDefined();
  });

  it('Standard VDI - provision powers on, customises, adds the AD group and polls the task sequence', async () => {
    const wf = await compiled('Standard VDI - provision');
    expect(wf.order).toEqual(['find_vm', 'check_vm_found', 'customise_guest', 'power_on', 'add_rdp_group', 'find_device', 'start_task_sequence', 'wait_task_sequence', 'from_servicenow', 'note_ritm']);
    const kinds = Object.fromEntries(wf.order.map((id) => [id, wf.tasks[id]?.kind]));
    expect(kinds).toMatchObject({ power_on: 'integration', add_rdp_group: 'directory', wait_task_sequence: 'poll', note_ritm: 'child' });
    expect(wf.tasks.from_servicenow?.next).toEqual({ success: ['note_ritm'], error: ['workflow_end'] });
    expect(wf.tasks.note_ritm?.failsRunOnError).toBe(false);
  });

  it('Standard VDI - reinstall polls the OS deployment', async () => {
    const wf = await compiled('Standard VDI - reinstall');
    expect(wf.tasks.wait_task_sequence?.task).toMatchObject({ kind: 'poll', interval: '2m', maxDuration: '6h' });
  });

  it('Standard VDI - deprovision is a steps runbook whose last step is not critical', async () => {
    const wf = await compiled('Standard VDI - deprovision');
    expect(wf.order).toEqual(['remove_rdp_group', 'find_vm', 'shutdown_guest']);
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

  it('fails to compile when an integration lacks an operation the samples use', async () => {
    const entry = parsed.find((p) => p.doc.name === 'Standard VDI - provision');
    const narrow = staticCompileContext({ integrations: { ...SAMPLE_OPERATIONS, sccm: ['get_device_by_name'] }, workflows: {} });
    const r = await compileWorkflow(entry?.doc, narrow);
    expect(!r.ok && r.errors.map((e) => [e.code, e.taskId])).toEqual([
      ['UNKNOWN_OPERATION', 'start_task_sequence'],
      ['UNKNOWN_OPERATION', 'wait_task_sequence'],
      ['UNKNOWN_WORKFLOW', 'note_ritm'],
    ]);
  });
});
