// Stub mode's configured responses (`config.stub.responses`, integration-model/runtime/stub.ts): set through the API,
// validated with the field named, answered instead of the model's example, kept out of the transport's configuration.
import { createLogger } from '../../adapter';
import { projectPath } from '../../adapter/paths';
import { fullConfig, loadIntegration, loadIntegrationModelFile, loadIntegrationModelFiles, openIntegrationSecrets } from '../../integration-model';
import { createTestApp, type TestApp } from '../support/app';

describe('stub mode: configured responses per operation', () => {
  let t: TestApp;
  let modelId: string;
  let id: number;

  beforeAll(async () => {
    t = await createTestApp();
    await loadIntegrationModelFiles(t.db, createLogger({ silent: true }), projectPath('openapi', 'integrations'));
    modelId = (await loadIntegrationModelFile(projectPath('openapi', 'integrations', 'sccm-adminservice.yaml'))).id;
  });
  afterAll(async () => {
    await t.close();
  });

  const invoke = (operationId: string, body: Record<string, unknown> = {}) =>
    t.http().post(`/admin/integrations/${id}/tasks/${operationId}/invoke`).set(t.admin).send(body);
  const filter = { query: { $filter: "DeploymentID eq 'PS1' and DeviceID eq 1" } };

  test('created with a stub response: that operation answers it, the others their model example', async () => {
    const res = await t
      .http()
      .post('/admin/integrations')
      .set(t.admin)
      .send({
        name: 'sccm-stubbed',
        model_id: modelId,
        stub_mode: true,
        config: {
          server: { host: 'sccm.example.com' },
          authentication: { type: 'basic', username: 'svc', password: 'stub-secret-pw' },
          stub: { responses: { list_deployment_asset_details: { body: { value: [{ StatusType: 2 }] }, headers: { 'x-odata-count': '1' } } } },
        },
      });
    expect(res.status).toBe(201);
    id = res.body.id as number;
    // Defaults applied (status 200); secrets stay redacted beside it.
    expect(res.body.config.stub).toEqual({ responses: { list_deployment_asset_details: { status: 200, body: { value: [{ StatusType: 2 }] }, headers: { 'x-odata-count': '1' } } } });
    expect(res.body.config.authentication.password).toBe('[redacted]');

    const configured = await invoke('list_deployment_asset_details', filter);
    expect(configured.status).toBe(200);
    expect(configured.body).toMatchObject({
      ok: true,
      status: 200,
      method: 'GET',
      body: { value: [{ StatusType: 2 }] },
      headers: { 'x-provisio-stub': 'configured', 'x-odata-count': '1', 'content-type': 'application/json' },
    });
    expect(configured.body.url).toContain('http://sccm.example.com/AdminService/wmi/SMS_ClassicDeploymentAssetDetails?%24filter=');

    const example = await invoke('get_device_by_name', { query: { $filter: "Name eq 'VDI-1'" } });
    expect(example.body).toMatchObject({ ok: true, body: { value: [{ ResourceId: 16777220 }] }, headers: { 'x-provisio-stub': 'true' } });
  });

  test('the advanced view reads and replaces them; a non-2xx response rehearses a failure', async () => {
    const get = await t.http().get(`/admin/integrations/${id}/config`).set(t.admin);
    expect(get.status).toBe(200);
    expect(get.body.stub.responses.list_deployment_asset_details.body).toEqual({ value: [{ StatusType: 2 }] });
    const put = await t
      .http()
      .put(`/admin/integrations/${id}/config`)
      .set(t.admin)
      .send({ ...get.body, stub: { responses: { list_deployment_asset_details: { status: 503, body: { error: { message: 'busy' } } } } } });
    expect(put.status).toBe(200);
    const failed = await invoke('list_deployment_asset_details', filter);
    expect(failed.status).toBe(200);
    expect(failed.body).toMatchObject({ ok: false, status: 503, statusText: 'Service Unavailable', body: { error: { message: 'busy' } } });
    // The stored password survived the round trip through the marker.
    expect(await openIntegrationSecrets(t.db, await loadIntegration(t.db, id))).toEqual({ '/authentication/password': 'stub-secret-pw' });
  });

  test('the transport never sees them', async () => {
    const record = await loadIntegration(t.db, id);
    expect(record.config['stub']).toBeDefined();
    const full = fullConfig(record, await openIntegrationSecrets(t.db, record));
    expect(full['stub']).toBeUndefined();
    expect(full['server']).toEqual({ protocol: 'http', host: 'sccm.example.com' });
  });

  test.each([
    [{ responses: { list_deployment_asset_details: { status: 700 } } }, '/body/config/stub/responses/list_deployment_asset_details/status'],
    [{ responses: { list_deployment_asset_details: { code: 200 } } }, '/body/config/stub/responses/list_deployment_asset_details/code'],
    [{ responses: { list_deployment_asset_details: { headers: { 'bad header': 'x' } } } }, '/body/config/stub/responses/list_deployment_asset_details/headers'],
    [{ responses: { list_deployment_asset_details: { body: 'x'.repeat(300 * 1024) } } }, '/body/config/stub/responses/list_deployment_asset_details/body'],
    [{ answers: {} }, '/body/config/stub/answers'],
    [{ responses: { no_such_operation: { status: 200 } } }, '/body/config/stub/responses/no_such_operation'],
  ])('a bad stub %# is a 422 naming the field, and nothing is stored', async (stub, path) => {
    const before = (await t.http().get(`/admin/integrations/${id}/config`).set(t.admin)).body;
    const res = await t.http().patch(`/admin/integrations/${id}`).set(t.admin).send({ config: { server: { host: 'sccm.example.com' }, stub } });
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
    expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
    expect((await t.http().get(`/admin/integrations/${id}/config`).set(t.admin)).body).toEqual(before);
  });

  test('an unknown operation is refused by the advanced view too, under /body', async () => {
    const get = await t.http().get(`/admin/integrations/${id}/config`).set(t.admin);
    const res = await t.http().put(`/admin/integrations/${id}/config`).set(t.admin).send({ ...get.body, stub: { responses: { nope: {} } } });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([expect.objectContaining({ path: '/body/stub/responses/nope' })]);
  });
});
