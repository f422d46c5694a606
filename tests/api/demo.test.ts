import { createLogger } from '../../adapter';
import { loadDemoData } from '../../server/domain/catalogue/demo';
import { createTestApp, type TestApp } from '../support/app';

describe('DEMO=1 catalogue (loadDemoData)', () => {
  let t: TestApp;
  const logger = createLogger({ silent: true });
  const counts = async () =>
    (
      await t.db.query<{ types: number; assets: number; audit: number }>(
        `SELECT (SELECT count(*)::int FROM asset_types) AS types, (SELECT count(*)::int FROM assets) AS assets,
                (SELECT count(*)::int FROM audit_log WHERE triggered_by = 'system:demo') AS audit`,
      )
    ).rows[0]!;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  test('loads a pooled VDI type with five free desktops and a personal SaaS seat, audited as system:demo', async () => {
    // Two starts racing on one database: exactly one loads.
    const loaded = await Promise.all([loadDemoData(t.db, logger), loadDemoData(t.db, logger)]);
    expect(loaded.sort()).toEqual([false, true]);
    expect(await counts()).toEqual({ types: 2, assets: 5, audit: 7 });

    const types = await t.http().get('/admin/asset-types').set(t.admin);
    expect(types.status).toBe(200);
    expect(types.body.items).toMatchObject([
      {
        name: 'SaaS seat',
        assignment_model: 'personal',
        requires_approval: true,
        monthly_cost: 12.5,
        currency: 'EUR',
        attributes: [{ key: 'licence_tier', type: 'string', required: true, help: 'standard or pro' }],
        deprovision_policy: 'access_only',
        pool: { total: 0 },
      },
      {
        name: 'Standard VDI',
        assignment_model: 'capacity_pooled',
        pool_size: 5,
        max_per_user: 1,
        monthly_cost: 85,
        data_classification: { pii: true, phi: false, pci: false },
        deprovision_policy: 'reinstall',
        reinstall_runbook: 'Standard VDI - reinstall',
        pool: { free: 5, in_use: 0, reinstall: 0, failed: 0, total: 5, fill_percent: 0, alert: 'none' },
      },
    ]);
    const assets = await t.http().get(`/admin/assets?asset_type_id=${types.body.items[1].id}`).set(t.admin);
    expect(assets.body.items.map((a: { name: string; state: string }) => `${a.name}:${a.state}`)).toEqual([
      'VDI-POOL-001:free',
      'VDI-POOL-002:free',
      'VDI-POOL-003:free',
      'VDI-POOL-004:free',
      'VDI-POOL-005:free',
    ]);
  });

  test('is idempotent: a second call changes nothing', async () => {
    expect(await loadDemoData(t.db, logger)).toBe(false);
    expect(await counts()).toEqual({ types: 2, assets: 5, audit: 7 });
  });

  test('leaves a database that already has a catalogue alone', async () => {
    await t.db.query('DELETE FROM assets');
    await t.db.query(`DELETE FROM asset_types WHERE name = 'Standard VDI'`);
    expect(await loadDemoData(t.db, logger)).toBe(false);
    expect(await counts()).toMatchObject({ types: 1, assets: 0 });
  });
});
