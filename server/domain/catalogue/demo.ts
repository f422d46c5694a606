import { randomBytes } from 'node:crypto';
import { projectPath, type Actor, type Database, type Logger } from '../../../adapter';
import { createIntegration, listIntegrations, loadIntegrationModelFile, upsertIntegrationModel } from '../../../integration-model';
import { readSetting, updateSettings } from '../settings/settings';
import { createAssetType, type AssetTypeCreateInput } from './asset-types';
import { createAsset } from './assets';
import { countAssetTypes, lockDemoLoad } from './store';

const DEMO_ACTOR: Actor = { triggeredBy: 'system:demo' };

/** The demo catalogue: a pooled desktop type with five instances and a personal SaaS seat. */
export const DEMO_ASSET_TYPES: readonly (AssetTypeCreateInput & { poolAssets: readonly string[] })[] = [
  {
    name: 'Standard VDI',
    description: 'Pooled Windows virtual desktop',
    assignment_model: 'capacity_pooled',
    pool_size: 5,
    max_per_user: 1,
    requires_approval: false,
    monthly_cost: 85,
    currency: 'EUR',
    cost_center: 'CC-IT-100',
    data_classification: { pii: true },
    attributes: [
      { key: 'project_code', type: 'string', required: false, help: 'Project to charge' },
      { key: 'cost_center', type: 'string', required: false, help: 'Overrides the type cost center' },
    ],
    allow_user_lists: true,
    provision_runbook: 'Standard VDI - provision',
    deprovision_runbook: 'Standard VDI - deprovision',
    reinstall_runbook: 'Standard VDI - reinstall',
    deprovision_policy: 'reinstall',
    poolAssets: ['VDI-POOL-001', 'VDI-POOL-002', 'VDI-POOL-003', 'VDI-POOL-004', 'VDI-POOL-005'],
  },
  {
    name: 'SaaS seat',
    description: 'Named seat in a SaaS application',
    assignment_model: 'personal',
    max_per_user: 1,
    requires_approval: true,
    monthly_cost: 12.5,
    currency: 'EUR',
    cost_center: 'CC-IT-200',
    attributes: [{ key: 'licence_tier', type: 'string', required: true, help: 'standard or pro' }],
    provision_runbook: 'SaaS seat - provision',
    deprovision_runbook: 'SaaS seat - deprovision',
    deprovision_policy: 'access_only',
    poolAssets: [],
  },
];

/** One demo integration: the model file it is built on, and the stub answers its config carries (stub.ts). */
export interface DemoIntegration {
  name: string;
  modelFile: string;
  host: string;
  /** `stub.responses`: what the sample runbooks need and the model's examples do not say. */
  stubResponses: Record<string, { status?: number; body?: unknown }>;
}

/**
 * The integrations the sample runbooks call, in stub mode. The models' examples already answer the vCenter calls
 * (the VM lookup finds a VM, customisation and power answer 204) and the RITM lookup; configured responses cover what
 * they leave empty: the SCCM deployment status the task-sequence polls wait for (StatusType 1 = success, so they end
 * at the first probe), the collection rule results, and the RITM work-note update.
 */
export const DEMO_INTEGRATIONS: readonly DemoIntegration[] = [
  { name: 'vcenter', modelFile: 'vcenter.yaml', host: 'vcenter.demo.example.com', stubResponses: {} },
  {
    name: 'sccm',
    modelFile: 'sccm-adminservice.yaml',
    host: 'sccm.demo.example.com',
    stubResponses: {
      add_collection_membership_rule: { body: { ReturnValue: 0 } },
      delete_collection_membership_rule: { body: { ReturnValue: 0 } },
      list_deployment_asset_details: { body: { value: [{ DeploymentID: 'PS120001', DeviceID: 16777220, StatusType: 1 }] } },
    },
  },
  {
    name: 'servicenow',
    modelFile: 'servicenow-table.yaml',
    host: 'demo.service-now.example.com',
    stubResponses: { updateTableRecord: { body: { result: { sys_id: '9d385017c611228701d22104cc95c371', number: 'RITM0010001' } } } },
  },
  {
    // The XenServer VM samples: the start task they poll has finished at the first probe.
    name: 'xenserver',
    modelFile: 'xenserver.yaml',
    host: 'xenserver.demo.example.com',
    stubResponses: { task_get_record: { body: { jsonrpc: '2.0', id: 'wait_started', result: { status: 'success', progress: 1 } } } },
  },
];

/**
 * DEMO=1 on an empty database (no asset type yet): something to order that provisions.
 * - the catalogue: a pooled "Standard VDI" type with five desktops and a personal "SaaS seat" type;
 * - the integrations the sample runbooks call (`vcenter`, `sccm`, `servicenow`), in stub mode with the stub
 *   responses above, unless an integration of that name exists already (an operator's own is never replaced);
 * - the `webhooks` settings: a generated `saas_seat_secret` (the SaaS seat samples sign with it; never logged) and
 *   `stub_mode`, so their provisioning webhooks are answered without a receiver.
 * Everything goes through the domain commands the admin API uses (validated, audited as `system:demo`), in one
 * transaction. The directory is not data: DirectoryProvider answers from the demo directory while
 * `active_directory` is not configured. Returns whether it loaded.
 */
export async function loadDemoData(db: Database, logger: Logger): Promise<boolean> {
  // Every start after the first: the catalogue is there, so nothing is parsed (the model files cost most of the
  // time here). Checked again under the lock below, where it decides.
  if ((await countAssetTypes(db)) > 0) return false;
  // Read before the transaction: parsing the model files is file I/O, not something to hold a lock over.
  const models = await Promise.all(DEMO_INTEGRATIONS.map(async (d) => ({ demo: d, model: await loadIntegrationModelFile(projectPath('openapi', 'integrations', d.modelFile)) })));
  return db.transaction(async (tx) => {
    // Several processes may start with DEMO=1 against one database: the first loads, the others then see rows.
    await lockDemoLoad(tx);
    if ((await countAssetTypes(tx)) > 0) return false;
    for (const { poolAssets, ...input } of DEMO_ASSET_TYPES) {
      const type = await createAssetType(tx, input, DEMO_ACTOR);
      for (const name of poolAssets) await createAsset(tx, { asset_type_id: type.id, name }, DEMO_ACTOR);
    }
    const existing = new Set((await listIntegrations(tx)).map((i) => i.name));
    const created: string[] = [];
    for (const { demo, model } of models) {
      if (existing.has(demo.name)) continue;
      // The same attribution the start-up model loader uses: `unchanged` (and unaudited) when it ran first.
      await upsertIntegrationModel(tx, model, `system:model-file:${demo.modelFile}`);
      const config = { server: { protocol: 'https', host: demo.host }, stub: { responses: demo.stubResponses } };
      await createIntegration(tx, model, { name: demo.name, model_id: model.id, config, stub_mode: true }, DEMO_ACTOR);
      created.push(demo.name);
    }
    const webhooks: Record<string, unknown> = { stub_mode: true };
    if ((await readSetting(tx, 'webhooks', 'saas_seat_secret')) === undefined) webhooks['saas_seat_secret'] = randomBytes(24).toString('base64url');
    await updateSettings(tx, 'webhooks', webhooks, DEMO_ACTOR);
    logger.info('demo data loaded', {
      asset_types: DEMO_ASSET_TYPES.map((t) => t.name),
      pool_assets: DEMO_ASSET_TYPES.reduce((n, t) => n + t.poolAssets.length, 0),
      integrations: created,
      stub_mode: true,
      webhooks_stub_mode: true,
    });
    return true;
  });
}
