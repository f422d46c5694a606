import type { Database, Logger } from '../../adapter';
import { writeAudit } from './audit';

/**
 * DEMO=1: a small catalogue on an empty database, so a first start has something to order —
 * a pooled "Standard VDI" type with five desktops and a personal "SaaS seat" type.
 */
export async function loadDemoData(db: Database, logger: Logger): Promise<void> {
  await db.transaction(async (tx) => {
    const { rows } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM asset_types');
    if ((rows[0]?.n ?? 0) > 0) return;
    const vdi = await tx.query<{ id: number }>(
      `INSERT INTO asset_types (name, description, assignment_model, pool_size, max_per_user, requires_approval,
         monthly_cost, currency, cost_center, data_classification, attributes, allow_user_lists,
         provision_runbook, deprovision_runbook, reinstall_runbook, deprovision_policy)
       VALUES ('Standard VDI', 'Pooled Windows virtual desktop', 'capacity_pooled', 5, 1, false, 85.00, 'EUR', 'CC-IT-100',
         '{"pii": true, "phi": false, "pci": false}',
         '[{"key": "project_code", "type": "string", "required": false, "help": "Project to charge"},
           {"key": "cost_center", "type": "string", "required": false, "help": "Overrides the type cost center"}]',
         true, 'standard-vdi-provision', 'standard-vdi-deprovision', 'standard-vdi-reinstall', 'reinstall')
       RETURNING id`,
    );
    const saas = await tx.query<{ id: number }>(
      `INSERT INTO asset_types (name, description, assignment_model, max_per_user, requires_approval, monthly_cost, currency,
         cost_center, attributes, provision_runbook, deprovision_runbook, deprovision_policy)
       VALUES ('SaaS seat', 'Named seat in a SaaS application', 'personal', 1, true, 12.50, 'EUR', 'CC-IT-200',
         '[{"key": "licence_tier", "type": "string", "required": true, "help": "standard or pro"}]',
         'saas-seat-provision', 'saas-seat-deprovision', 'access_only')
       RETURNING id`,
    );
    const vdiId = vdi.rows[0]!.id;
    for (let i = 1; i <= 5; i++) {
      await tx.query(`INSERT INTO assets (asset_type_id, name) VALUES ($1, $2)`, [vdiId, `VDI-POOL-${String(i).padStart(3, '0')}`]);
    }
    for (const [id, name] of [[vdiId, 'Standard VDI'], [saas.rows[0]!.id, 'SaaS seat']] as const) {
      await writeAudit(tx, { entity: 'asset_type', entityId: id, action: 'create', after: { name }, triggeredBy: 'system:demo' });
    }
    logger.info('demo catalogue loaded', { asset_types: ['Standard VDI', 'SaaS seat'], pool_assets: 5 });
  });
}
