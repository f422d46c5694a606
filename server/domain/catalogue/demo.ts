import type { Database, Logger } from '../../../adapter';
import type { Actor } from '../../../adapter';
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

/**
 * DEMO=1: a small catalogue on an empty database, so a first start has something to order — a pooled
 * "Standard VDI" type with five desktops and a personal "SaaS seat" type. Goes through the same domain
 * commands as the admin API (so it is validated and audited as `system:demo`). Does nothing when any asset
 * type exists; returns whether it loaded.
 */
export async function loadDemoData(db: Database, logger: Logger): Promise<boolean> {
  return db.transaction(async (tx) => {
    // Several processes may start with DEMO=1 against one database: the first loads, the others then see rows.
    await lockDemoLoad(tx);
    if ((await countAssetTypes(tx)) > 0) return false;
    for (const { poolAssets, ...input } of DEMO_ASSET_TYPES) {
      const type = await createAssetType(tx, input, DEMO_ACTOR);
      for (const name of poolAssets) await createAsset(tx, { asset_type_id: type.id, name }, DEMO_ACTOR);
    }
    logger.info('demo catalogue loaded', {
      asset_types: DEMO_ASSET_TYPES.map((t) => t.name),
      pool_assets: DEMO_ASSET_TYPES.reduce((n, t) => n + t.poolAssets.length, 0),
    });
    return true;
  });
}
