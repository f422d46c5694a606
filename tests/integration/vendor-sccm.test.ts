import { bindTypedClient, sccm, statusOf, type TypedClient } from '../../adapter/clients';
import { createIntegrationClient, type IntegrationClient } from '../../adapter/http';
import { projectPath } from '../../adapter/paths';
import { loadIntegrationModelFile, type IntegrationModel } from '../../integration-model';
import { createMemoryLogger } from '../support/memory-logger';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { startPrism, type PrismMock } from '../support/prism';
import { expectConforms, seen, type SeenRequest } from '../support/vendor-mocks';

const MODEL_FILE = projectPath('openapi/integrations/sccm-adminservice.yaml');
const BASE = 'https://sccm.example.com/AdminService';
const USER = 'TEST\\svc-sccm';
const PASSWORD = 'Sccm-Passw0rd!';
const AUTH = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

const system = { '@odata.etag': '1', __CLASS: 'SMS_R_System', ResourceId: 16777220, Name: 'VDI-JDOE-01', NetbiosName: 'VDI-JDOE-01', Client: 1, MACAddresses: ['00:50:56:AA:BB:CC'] };
const odata = (set: string, value: unknown[]): Record<string, unknown> => ({ '@odata.context': `${BASE}/wmi/$metadata#${set}`, value });

/**
 * A loopback AdminService: the routes the model names, answering with AdminService-shaped OData bodies, and 401
 * without the expected credentials. The SMS Provider's own authentication is Windows Negotiate; the runtime's basic
 * scheme stands in for it here (the transport and the typed client are what these tests exercise).
 */
function adminService(req: SeenRequest): [number, unknown] {
  if (req.authorization !== AUTH) return [401, ''];
  const route = `${req.method} ${req.path}`;
  switch (route) {
    case 'GET /AdminService/v1.0/Device':
      return [200, odata('Device', [{ MachineId: 16777220, Name: 'VDI-JDOE-01', SMSID: 'GUID:1A2B', ClientVersion: '5.00.9106.1000' }])];
    case 'GET /AdminService/v1.0/Device(16777220)':
      return [200, odata('Device', [{ MachineId: 16777220, Name: 'VDI-JDOE-01' }])];
    case 'GET /AdminService/v1.0/Device(16777220)/ResourceCollectionMembership':
      return [200, odata('ResourceCollectionMembership', [{ Collection: { CollectionId: 'SMS00001', Name: 'All Systems' } }])];
    case 'GET /AdminService/wmi/SMS_R_System':
      return [200, odata('SMS_R_System', req.query['$filter'] === "Name eq 'VDI-JDOE-01'" ? [system] : [])];
    case 'GET /AdminService/wmi/SMS_R_System(16777220)':
      return [200, odata('SMS_R_System', [system])];
    case 'GET /AdminService/wmi/SMS_R_System(99)':
      return [404, { error: { code: '404', message: 'Not found' } }];
    case 'DELETE /AdminService/wmi/SMS_R_System(16777220)':
      return [200, ''];
    case 'POST /AdminService/wmi/SMS_Site.ImportMachineEntry':
      return [200, { '@odata.context': `${BASE}/wmi/$metadata#AdminService.SMS_Site_ImportMachineEntry`, ReturnValue: 0, ResourceID: 16777230, MachineExists: false }];
    case 'GET /AdminService/wmi/SMS_Collection':
      return [200, odata('SMS_Collection', [{ CollectionID: 'PS100012', Name: 'VDI - OSD', CollectionType: 2, LimitToCollectionID: 'SMS00001', MemberCount: 3 }])];
    case "POST /AdminService/wmi/SMS_Collection('PS100012')/AdminService.AddMembershipRule":
    case "POST /AdminService/wmi/SMS_Collection('PS100012')/AdminService.DeleteMembershipRule":
      return [200, { '@odata.context': `${BASE}/wmi/$metadata#AdminService.SMS_Collection_AddMembershipRule`, ReturnValue: 0 }];
    case 'GET /AdminService/wmi/SMS_FullCollectionMembership':
      return [200, odata('SMS_FullCollectionMembership', [{ CollectionID: 'PS100012', ResourceID: 16777220, Name: 'VDI-JDOE-01', IsDirect: true, SiteCode: 'PS1' }])];
    case 'GET /AdminService/wmi/SMS_TaskSequencePackage':
      return [200, odata('SMS_TaskSequencePackage', [{ PackageID: 'PS100034', Name: 'Windows 11 VDI', BootImageID: 'PS100005' }])];
    case 'GET /AdminService/wmi/SMS_ClassicDeploymentAssetDetails':
      return [200, odata('SMS_ClassicDeploymentAssetDetails', [{ DeploymentID: 'PS120034', DeviceID: 16777220, DeviceName: 'VDI-JDOE-01', StatusType: 2, StatusDescription: 'In progress' }])];
    case 'GET /AdminService/wmi/SMS_DeploymentSummary':
      return [200, odata('SMS_DeploymentSummary', [{ DeploymentID: 'PS120034', CollectionID: 'PS100012', SoftwareName: 'Windows 11 VDI', NumberSuccess: 1, NumberInProgress: 2, NumberErrors: 0, NumberUnknown: 0, NumberTargeted: 3 }])];
    default:
      return [404, { error: { code: '404', message: `no route ${route}` } }];
  }
}

describe('SCCM AdminService through the typed client (loopback AdminService)', () => {
  let server: LoopbackServer;
  let ic: IntegrationClient;
  let client: TypedClient;
  let model: IntegrationModel;
  const last = (): SeenRequest => seen(server.requests[server.requests.length - 1] as (typeof server.requests)[number]);

  beforeAll(async () => {
    model = await loadIntegrationModelFile(MODEL_FILE);
    server = await startLoopbackServer((req, res) => {
      const [status, body] = adminService(seen(req));
      if (body === '') {
        res.writeHead(status);
        return void res.end();
      }
      sendJson(res, status, body);
    });
    ic = createIntegrationClient(
      { server: { host: '127.0.0.1', port: server.port }, authentication: { type: 'basic', username: USER, password: PASSWORD } },
      { logger: createMemoryLogger().logger, name: 'sccm' },
    );
    client = bindTypedClient(ic);
  });
  afterAll(async () => {
    ic?.close();
    await server?.close();
  });

  it('loads with every operation kept', () => {
    expect(model.dropped).toEqual([]);
    expect(model.warnings).toEqual([]);
    expect(model.operations.map((o) => o.operationId).sort()).toEqual([
      'add_collection_membership_rule',
      'delete_collection_membership_rule',
      'delete_device',
      'get_device',
      'get_device_by_name',
      'get_system_resource',
      'import_machine_entry',
      'list_collections',
      'list_deployment_asset_details',
      'list_deployment_summaries',
      'list_device_collections',
      'list_devices',
      'list_full_collection_membership',
      'list_task_sequence_packages',
    ]);
  });

  it('finds a device by name with an OData filter on the WMI route', async () => {
    const r = await sccm.getDeviceByName({ client, query: { $filter: "Name eq 'VDI-JDOE-01'", $select: 'ResourceId,Name' } });
    expect(r.error).toBeUndefined();
    expect(r.data?.value[0]?.ResourceId).toBe(16777220);
    expect(last()).toMatchObject({
      method: 'GET',
      path: '/AdminService/wmi/SMS_R_System',
      query: { $filter: "Name eq 'VDI-JDOE-01'", $select: 'ResourceId,Name' },
      authorization: AUTH,
    });
    expectConforms(model, 'get_device_by_name', 200, r.data);

    const none = await sccm.getDeviceByName({ client, query: { $filter: "Name eq 'NOPE'" } });
    expect(none.data?.value).toEqual([]);
  });

  it('reads a device on both routes and its collections', async () => {
    const byId = await sccm.getSystemResource({ client, path: { resourceId: 16777220 } });
    expect(byId.data?.value[0]?.Name).toBe('VDI-JDOE-01');
    expect(last()).toMatchObject({ method: 'GET', path: '/AdminService/wmi/SMS_R_System(16777220)' });
    expectConforms(model, 'get_system_resource', 200, byId.data);

    const list = await sccm.listDevices({ client, query: { $filter: "Name eq 'VDI-JDOE-01'", $top: 5 } });
    expect(list.data?.value[0]?.MachineId).toBe(16777220);
    expect(last()).toMatchObject({ method: 'GET', path: '/AdminService/v1.0/Device', query: { $filter: "Name eq 'VDI-JDOE-01'", $top: '5' } });
    expectConforms(model, 'list_devices', 200, list.data);

    const one = await sccm.getDevice({ client, path: { resourceId: 16777220 } });
    expect(statusOf(one)).toBe(200);
    expect(last().path).toBe('/AdminService/v1.0/Device(16777220)');

    const cols = await sccm.listDeviceCollections({ client, path: { resourceId: 16777220 }, query: { $expand: 'Collection', $select: 'Collection' } });
    expect(statusOf(cols)).toBe(200);
    expect(last()).toMatchObject({ path: '/AdminService/v1.0/Device(16777220)/ResourceCollectionMembership', query: { $expand: 'Collection', $select: 'Collection' } });
    expectConforms(model, 'list_device_collections', 200, cols.data);
  });

  it('imports a computer with SMS_Site.ImportMachineEntry and deletes a device', async () => {
    const imported = await sccm.importMachineEntry({ client, body: { NetbiosName: 'VDI-JDOE-02', MACAddress: '00:50:56:AA:BB:CD', OverwriteExistingRecord: false } });
    expect(imported.data).toMatchObject({ ReturnValue: 0, ResourceID: 16777230, MachineExists: false });
    expect(last()).toMatchObject({
      method: 'POST',
      path: '/AdminService/wmi/SMS_Site.ImportMachineEntry',
      body: { NetbiosName: 'VDI-JDOE-02', MACAddress: '00:50:56:AA:BB:CD', OverwriteExistingRecord: false },
      contentType: 'application/json',
    });
    expectConforms(model, 'import_machine_entry', 200, imported.data);

    const del = await sccm.deleteDevice({ client, path: { resourceId: 16777220 } });
    expect(statusOf(del)).toBe(200);
    expect(last()).toMatchObject({ method: 'DELETE', path: '/AdminService/wmi/SMS_R_System(16777220)' });
  });

  it('adds and removes a direct membership rule and reads the evaluated membership', async () => {
    const rule = { '@odata.type': '#AdminService.SMS_CollectionRuleDirect' as const, ResourceClassName: 'SMS_R_System' as const, RuleName: 'VDI-JDOE-01', ResourceID: 16777220 };
    const added = await sccm.addCollectionMembershipRule({ client, path: { collectionId: 'PS100012' }, body: { collectionRule: rule } });
    expect(added.data?.ReturnValue).toBe(0);
    expect(last()).toMatchObject({
      method: 'POST',
      path: "/AdminService/wmi/SMS_Collection('PS100012')/AdminService.AddMembershipRule",
      body: { collectionRule: rule },
    });
    expectConforms(model, 'add_collection_membership_rule', 200, added.data);

    const removed = await sccm.deleteCollectionMembershipRule({ client, path: { collectionId: 'PS100012' }, body: { collectionRule: rule } });
    expect(removed.data?.ReturnValue).toBe(0);
    expect(last()).toMatchObject({ method: 'POST', path: "/AdminService/wmi/SMS_Collection('PS100012')/AdminService.DeleteMembershipRule", body: { collectionRule: rule } });

    const members = await sccm.listFullCollectionMembership({ client, query: { $filter: "CollectionID eq 'PS100012' and ResourceID eq 16777220" } });
    expect(members.data?.value).toEqual([expect.objectContaining({ CollectionID: 'PS100012', ResourceID: 16777220, IsDirect: true })]);
    expect(last().query).toEqual({ $filter: "CollectionID eq 'PS100012' and ResourceID eq 16777220" });
    expectConforms(model, 'list_full_collection_membership', 200, members.data);

    const cols = await sccm.listCollections({ client, query: { $filter: "Name eq 'VDI - OSD'", $orderby: 'Name' } });
    expect(cols.data?.value[0]?.CollectionID).toBe('PS100012');
    expectConforms(model, 'list_collections', 200, cols.data);
  });

  it('finds task sequences and reads deployment status', async () => {
    const ts = await sccm.listTaskSequencePackages({ client, query: { $filter: "Name eq 'Windows 11 VDI'", $select: 'Name,PackageID' } });
    expect(ts.data?.value[0]?.PackageID).toBe('PS100034');
    expect(last()).toMatchObject({ path: '/AdminService/wmi/SMS_TaskSequencePackage', query: { $filter: "Name eq 'Windows 11 VDI'", $select: 'Name,PackageID' } });
    expectConforms(model, 'list_task_sequence_packages', 200, ts.data);

    const assets = await sccm.listDeploymentAssetDetails({ client, query: { $filter: "DeploymentID eq 'PS120034' and DeviceName eq 'VDI-JDOE-01'" } });
    expect(assets.data?.value[0]?.StatusType).toBe(2);
    expectConforms(model, 'list_deployment_asset_details', 200, assets.data);

    const summary = await sccm.listDeploymentSummaries({ client, query: { $filter: "CollectionID eq 'PS100012'" } });
    expect(summary.data?.value[0]).toMatchObject({ NumberInProgress: 2, NumberTargeted: 3 });
    expectConforms(model, 'list_deployment_summaries', 200, summary.data);
  });

  it('returns an unknown ResourceID as a typed OData 404 error', async () => {
    const r = await sccm.getSystemResource({ client, path: { resourceId: 99 } });
    expect(statusOf(r)).toBe(404);
    expect(r.data).toBeUndefined();
    expect(r.error).toEqual({ error: { code: '404', message: 'Not found' } });
  });

  it('answers 401 as a result, not a throw, when the credentials are wrong', async () => {
    const bad = createIntegrationClient(
      { server: { host: '127.0.0.1', port: server.port }, authentication: { type: 'basic', username: USER, password: 'wrong' } },
      { logger: createMemoryLogger().logger, name: 'sccm' },
    );
    try {
      const r = await sccm.getDeviceByName({ client: bindTypedClient(bad), query: { $filter: "Name eq 'VDI-JDOE-01'" } });
      expect(statusOf(r)).toBe(401);
    } finally {
      bad.close();
    }
  });
});

describe('SCCM AdminService requests validated by Prism serving our model', () => {
  let prism: PrismMock;
  let ic: IntegrationClient;
  let client: TypedClient;

  beforeAll(async () => {
    prism = await startPrism(MODEL_FILE);
    ic = createIntegrationClient({ server: { host: '127.0.0.1', port: prism.port } }, { logger: createMemoryLogger().logger, name: 'sccm' });
    client = bindTypedClient(ic);
  }, 60_000);
  afterAll(async () => {
    ic?.close();
    await prism?.stop();
  });

  it('accepts every call the runbooks make', async () => {
    const rule = { '@odata.type': '#AdminService.SMS_CollectionRuleDirect' as const, ResourceClassName: 'SMS_R_System' as const, RuleName: 'VDI-JDOE-01', ResourceID: 16777220 };
    const results = {
      get_device_by_name: await sccm.getDeviceByName({ client, query: { $filter: "Name eq 'VDI-JDOE-01'" } }),
      get_system_resource: await sccm.getSystemResource({ client, path: { resourceId: 16777220 } }),
      delete_device: await sccm.deleteDevice({ client, path: { resourceId: 16777220 } }),
      list_devices: await sccm.listDevices({ client, query: { $top: 10 } }),
      get_device: await sccm.getDevice({ client, path: { resourceId: 16777220 } }),
      list_device_collections: await sccm.listDeviceCollections({ client, path: { resourceId: 16777220 }, query: { $expand: 'Collection' } }),
      import_machine_entry: await sccm.importMachineEntry({ client, body: { NetbiosName: 'VDI-JDOE-02', MACAddress: '00:50:56:AA:BB:CD' } }),
      list_collections: await sccm.listCollections({ client, query: { $filter: "Name eq 'VDI - OSD'" } }),
      add_collection_membership_rule: await sccm.addCollectionMembershipRule({ client, path: { collectionId: 'PS100012' }, body: { collectionRule: rule } }),
      delete_collection_membership_rule: await sccm.deleteCollectionMembershipRule({ client, path: { collectionId: 'PS100012' }, body: { collectionRule: rule } }),
      list_full_collection_membership: await sccm.listFullCollectionMembership({ client, query: { $filter: "CollectionID eq 'PS100012'" } }),
      list_task_sequence_packages: await sccm.listTaskSequencePackages({ client, query: { $select: 'Name,PackageID' } }),
      list_deployment_asset_details: await sccm.listDeploymentAssetDetails({ client, query: { $filter: "DeploymentID eq 'PS120034'" } }),
      list_deployment_summaries: await sccm.listDeploymentSummaries({ client, query: { $filter: "CollectionID eq 'PS100012'" } }),
    };
    const statuses = Object.fromEntries(Object.entries(results).map(([k, r]) => [k, statusOf(r)]));
    for (const [k, s] of Object.entries(statuses)) expect([k, s !== undefined && s >= 200 && s < 300]).toEqual([k, true]);

    // A body the model does not allow is refused by the mock: the model constrains what runbooks send.
    const bad = await sccm.importMachineEntry({ client, body: { NetbiosName: 'A-NAME-LONGER-THAN-15', MACAddress: 'not-a-mac' } });
    // Prism answers with the operation's declared 400 and lists the violations.
    expect(statusOf(bad)).toBe(400);
    if (bad.error === undefined) throw new Error('expected an error');
    expect(bad.response?.headers['sl-violations']).toMatch(/NetbiosName|MACAddress/);
  });
});
