import { createLogger, openSecret, secretPlace } from '../../adapter';
import { projectPath } from '../../adapter/paths';
import { loadIntegrationModelFile, loadIntegrationModelFiles } from '../../integration-model';
import { loadDemoData } from '../../server/domain/catalogue/demo';
import { loadSampleWorkflows, SAMPLE_WORKFLOWS_DIR } from '../../server/domain/runbooks/workflow-runtime';
import { createTestApp, type TestApp } from '../support/app';
import { createMemoryLogger } from '../support/memory-logger';

const logger = createLogger({ silent: true });

describe('DEMO=1 data (loadDemoData)', () => {
  let t: TestApp;
  const counts = async () =>
    (
      await t.db.query<{ types: number; assets: number; integrations: number; audit: number }>(
        `SELECT (SELECT count(*)::int FROM asset_types) AS types, (SELECT count(*)::int FROM assets) AS assets,
                (SELECT count(*)::int FROM integrations) AS integrations,
                (SELECT count(*)::int FROM audit_log WHERE triggered_by = 'system:demo') AS audit`,
      )
    ).rows[0]!;

  beforeAll(async () => {
    t = await createTestApp({ demo: true }, { workflows: true });
  });
  afterAll(async () => {
    await t.close();
  });

  test('loads the catalogue, the stub integrations and the webhook settings, audited as system:demo', async () => {
    // Two starts racing on one database: exactly one loads.
    const loaded = await Promise.all([loadDemoData(t.db, logger), loadDemoData(t.db, logger)]);
    expect(loaded.sort()).toEqual([false, true]);
    // 2 types + 5 desktops + 4 integrations (vcenter, sccm, servicenow, xenserver) + 1 settings change.
    expect(await counts()).toEqual({ types: 2, assets: 5, integrations: 4, audit: 12 });

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

    const integrations = await t.http().get('/admin/integrations').set(t.admin);
    expect(integrations.status).toBe(200);
    expect(integrations.body.items.map((i: { name: string; stub_mode: boolean; created_by: string }) => [i.name, i.stub_mode, i.created_by])).toEqual([
      ['sccm', true, 'system:demo'],
      ['servicenow', true, 'system:demo'],
      ['vcenter', true, 'system:demo'],
      ['xenserver', true, 'system:demo'],
    ]);
    const sccm = integrations.body.items.find((i: { name: string }) => i.name === 'sccm');
    expect(sccm.config.stub.responses.list_deployment_asset_details).toEqual({
      status: 200,
      body: { value: [{ DeploymentID: 'PS120001', DeviceID: 16777220, StatusType: 1 }] },
    });

    // The SaaS samples' signing secret is generated and write-only; deliveries are stubbed.
    const webhooks = await t.http().get('/admin/settings/webhooks').set(t.admin);
    expect(webhooks.status).toBe(200);
    expect(JSON.stringify(webhooks.body)).toContain('stub_mode');
    const { rows } = await t.db.query<{ key: string; is_secret: boolean; value: unknown }>(`SELECT key, is_secret, value FROM app_config WHERE section = 'webhooks' ORDER BY key`);
    expect(rows.map((r) => [r.key, r.is_secret])).toEqual([
      ['webhooks.saas_seat_secret', true],
      ['webhooks.stub_mode', false],
    ]);
    expect(rows[0]!.value).toEqual(expect.stringMatching(/^enc:v1:/));
    const secret = (await openSecret(t.db, rows[0]!.value, secretPlace.setting('webhooks.saas_seat_secret'))) as string;
    expect(secret.length).toBeGreaterThanOrEqual(16);
    expect(JSON.stringify(webhooks.body)).not.toContain(secret);
    const audit = await t.db.query<{ diff: unknown }>(`SELECT diff FROM audit_log WHERE entity = 'settings' AND triggered_by = 'system:demo'`);
    expect(JSON.stringify(audit.rows)).not.toContain(secret);
  });

  test('with the demo integrations every sample loads, and the log names them', async () => {
    const mem = createMemoryLogger();
    const result = await loadSampleWorkflows(t.workflows!.engine, SAMPLE_WORKFLOWS_DIR, mem.logger, {
      integrationExists: async (n) => (await t.integrations.resolve(n)) !== undefined,
    });
    expect(result.waiting).toEqual([]);
    expect(result.loaded.sort()).toEqual([
      'SaaS seat - deprovision',
      'SaaS seat - provision',
      'ServiceNow - RITM work note',
      'Standard VDI - deprovision',
      'Standard VDI - provision',
      'Standard VDI - reinstall',
      'XenServer VM - deprovision',
      'XenServer VM - provision',
    ]);
    expect(mem.lines.find((l) => l['message'] === 'sample workflows loaded')).toMatchObject({ workflows: expect.arrayContaining(result.loaded) });
    // Loading again stores nothing new.
    expect(await loadSampleWorkflows(t.workflows!.engine, SAMPLE_WORKFLOWS_DIR, logger)).toEqual({ loaded: [], waiting: [] });
  });

  test('a demo stub answers what the samples wait for: the task-sequence poll ends at its first probe', async () => {
    const sccm = (await t.http().get('/admin/integrations').set(t.admin)).body.items.find((i: { name: string }) => i.name === 'sccm');
    const res = await t
      .http()
      .post(`/admin/integrations/${sccm.id}/tasks/list_deployment_asset_details/invoke`)
      .set(t.admin)
      .send({ query: { $filter: "DeploymentID eq 'PS120001' and DeviceID eq 16777220" } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, status: 200, body: { value: [{ StatusType: 1 }] }, headers: { 'x-provisio-stub': 'configured' } });
  });

  test('is idempotent: a second call changes nothing', async () => {
    expect(await loadDemoData(t.db, logger)).toBe(false);
    expect(await counts()).toEqual({ types: 2, assets: 5, integrations: 4, audit: 12 });
  });

  test('leaves a database that already has a catalogue alone', async () => {
    await t.db.query('DELETE FROM assets');
    await t.db.query(`DELETE FROM asset_types WHERE name = 'Standard VDI'`);
    expect(await loadDemoData(t.db, logger)).toBe(false);
    expect(await counts()).toMatchObject({ types: 1, assets: 0 });
  });
});

describe('DEMO=1 samples waiting for integrations', () => {
  let t: TestApp;
  const workflowNames = async (): Promise<string[]> => {
    const res = await t.http().get('/admin/workflows').set(t.admin);
    expect(res.status).toBe(200);
    return (res.body.items as { name: string }[]).map((w) => w.name).sort();
  };
  const createStub = async (name: string, modelFile: string) => {
    const model = await loadIntegrationModelFile(projectPath('openapi', 'integrations', modelFile));
    return t.http().post('/admin/integrations').set(t.admin).send({ name, model_id: model.id, config: { server: { host: `${name}.example.com` } }, stub_mode: true });
  };

  beforeAll(async () => {
    t = await createTestApp({ demo: true }, { workflows: true });
    await loadIntegrationModelFiles(t.db, logger, projectPath('openapi', 'integrations'));
  });
  afterAll(async () => {
    await t.close();
  });

  test('without integrations only the webhook sample loads; the log says what the others wait for', async () => {
    const mem = createMemoryLogger();
    const result = await loadSampleWorkflows(t.workflows!.engine, SAMPLE_WORKFLOWS_DIR, mem.logger, {
      integrationExists: async (n) => (await t.integrations.resolve(n)) !== undefined,
    });
    expect(result.loaded).toEqual(['SaaS seat - deprovision']);
    const waiting = Object.fromEntries(result.waiting.map((w) => [w.workflow, w.waiting_for]));
    expect(waiting).toEqual({
      'SaaS seat - provision': ['workflow:ServiceNow - RITM work note'],
      'ServiceNow - RITM work note': ['integration:servicenow'],
      'Standard VDI - deprovision': ['integration:vcenter'],
      'Standard VDI - provision': ['integration:sccm', 'integration:vcenter', 'workflow:ServiceNow - RITM work note'],
      'Standard VDI - reinstall': ['integration:sccm', 'integration:vcenter'],
      'XenServer VM - deprovision': ['integration:xenserver'],
      'XenServer VM - provision': ['integration:xenserver'],
    });
    const logged = mem.lines.filter((l) => l['message'] === 'sample workflow waiting: it does not compile yet');
    expect(logged.map((l) => l['workflow']).sort()).toEqual(Object.keys(waiting).sort());
    expect(logged.find((l) => l['workflow'] === 'Standard VDI - reinstall')).toMatchObject({ waiting_for: ['integration:sccm', 'integration:vcenter'] });
  });

  test('creating the integrations through the API loads the samples at once, without a restart', async () => {
    expect(await workflowNames()).toEqual(['SaaS seat - deprovision']);
    expect((await createStub('servicenow', 'servicenow-table.yaml')).status).toBe(201);
    expect(await workflowNames()).toEqual(['SaaS seat - deprovision', 'SaaS seat - provision', 'ServiceNow - RITM work note']);
    expect((await createStub('vcenter', 'vcenter.yaml')).status).toBe(201);
    expect(await workflowNames()).toContain('Standard VDI - deprovision');
    expect(await workflowNames()).not.toContain('Standard VDI - provision');
    // Created under another name, then renamed to what the samples call: the rename counts.
    const sccm = await createStub('sccm-lab', 'sccm-adminservice.yaml');
    expect(sccm.status).toBe(201);
    expect(await workflowNames()).not.toContain('Standard VDI - provision');
    expect((await t.http().patch(`/admin/integrations/${sccm.body.id}`).set(t.admin).send({ name: 'sccm' })).status).toBe(200);
    expect(await workflowNames()).toEqual([
      'SaaS seat - deprovision',
      'SaaS seat - provision',
      'ServiceNow - RITM work note',
      'Standard VDI - deprovision',
      'Standard VDI - provision',
      'Standard VDI - reinstall',
    ]);
    // Each sample once: the retries never stored a second version.
    const versions = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM workflows`);
    expect(versions.rows[0]!.n).toBe(6);
  });
});
