import { bindTypedClient, servicenow, statusOf, type TypedClient } from '../../adapter/clients';
import { createIntegrationClient, type IntegrationClient } from '../../adapter/http';
import { projectPath } from '../../adapter/paths';
import { loadIntegrationModelFile, type IntegrationModel } from '../../integration-model';
import { createMemoryLogger } from '../support/memory-logger';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { startPrism, type PrismMock } from '../support/prism';
import { expectConforms, seen, type SeenRequest } from '../support/vendor-mocks';

const MODEL_FILE = projectPath('openapi/integrations/servicenow-table.yaml');
const RITM_SYS_ID = '9d385017c611228701d22104cc95c371';
const USER = 'svc.provisio';
const PASSWORD = 'Snow-Passw0rd!';
const CLIENT_ID = 'provisio-client';
const CLIENT_SECRET = 'snow-client-secret';

/**
 * A loopback ServiceNow instance: the Table API over an in-memory sc_req_item table (basic or bearer
 * authentication) and /oauth_token.do issuing bearer tokens for the password grant, as an instance does.
 */
describe('ServiceNow Table API through the typed client (loopback instance)', () => {
  let server: LoopbackServer;
  let model: IntegrationModel;
  const clients: IntegrationClient[] = [];
  let issued: string | undefined;
  const table = new Map<string, Record<string, string>>([
    [RITM_SYS_ID, { sys_id: RITM_SYS_ID, number: 'RITM0010001', state: '1', short_description: 'Standard VDI', work_notes: '' }],
  ]);
  const last = (): SeenRequest => seen(server.requests[server.requests.length - 1] as (typeof server.requests)[number]);
  const integration = (authentication: Record<string, unknown>): TypedClient => {
    const ic = createIntegrationClient({ server: { host: '127.0.0.1', port: server.port }, authentication }, { logger: createMemoryLogger().logger, name: 'servicenow' });
    clients.push(ic);
    return bindTypedClient(ic);
  };
  const basicClient = (): TypedClient => integration({ type: 'basic', username: USER, password: PASSWORD });

  beforeAll(async () => {
    model = await loadIntegrationModelFile(MODEL_FILE);
    server = await startLoopbackServer((raw, res) => {
      const req = seen(raw);
      if (req.method === 'POST' && req.path === '/oauth_token.do') {
        const form = new URLSearchParams(raw.body);
        if (form.get('grant_type') !== 'password' || form.get('username') !== USER || form.get('password') !== PASSWORD || form.get('client_secret') !== CLIENT_SECRET) {
          return sendJson(res, 401, { error: 'access_denied' });
        }
        issued = `tok-${Date.now()}`;
        return sendJson(res, 200, { access_token: issued, token_type: 'Bearer', expires_in: 1800, scope: 'useraccount' });
      }
      const okAuth = req.authorization === `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` || (issued !== undefined && req.authorization === `Bearer ${issued}`);
      if (!okAuth) return sendJson(res, 401, { error: { message: 'User Not Authenticated', detail: 'Required to provide Auth information' }, status: 'failure' });
      const m = /^\/api\/now\/table\/([A-Za-z0-9_]+)(?:\/([0-9a-f]{32}))?$/.exec(req.path);
      if (!m || m[1] !== 'sc_req_item') return sendJson(res, 400, { error: { message: 'Invalid table', detail: null }, status: 'failure' });
      const sysId = m[2];
      const pick = (r: Record<string, string>): Record<string, string> => {
        const fields = typeof req.query['sysparm_fields'] === 'string' ? req.query['sysparm_fields'].split(',') : undefined;
        return fields ? Object.fromEntries(Object.entries(r).filter(([k]) => fields.includes(k))) : r;
      };
      const notFound = (): void => sendJson(res, 404, { error: { message: 'No Record found', detail: "Record doesn't exist or ACL restricts the record retrieval" }, status: 'failure' });
      if (sysId === undefined) {
        if (req.method === 'GET') {
          const q = typeof req.query['sysparm_query'] === 'string' ? req.query['sysparm_query'] : '';
          const [field, value] = q.split('=');
          const rows = [...table.values()].filter((r) => !field || r[field] === value);
          const limit = Number(req.query['sysparm_limit'] ?? rows.length);
          return sendJson(res, 200, { result: rows.slice(0, limit).map(pick) }, { 'x-total-count': String(rows.length) });
        }
        if (req.method === 'POST') {
          const id = `${'a'.repeat(31)}${table.size}`;
          const row = { sys_id: id, number: `RITM00100${table.size + 1}`, ...(req.body as Record<string, string>) };
          table.set(id, row);
          return sendJson(res, 201, { result: row }, { location: `${server.url}/api/now/table/sc_req_item/${id}` });
        }
      } else {
        const row = table.get(sysId);
        if (!row) return notFound();
        if (req.method === 'GET') return sendJson(res, 200, { result: pick(row) });
        if (req.method === 'PATCH' || req.method === 'PUT') {
          // Journal fields (work_notes) append, as ServiceNow does; the record answers with the latest entry.
          Object.assign(row, req.body as Record<string, string>);
          return sendJson(res, 200, { result: pick(row) });
        }
        if (req.method === 'DELETE') {
          table.delete(sysId);
          res.writeHead(204);
          return void res.end();
        }
      }
      return sendJson(res, 405, { error: { message: 'Method not allowed' }, status: 'failure' });
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.close();
  });

  it('loads with every operation kept, basic and OAuth 2.0 schemes', () => {
    expect(model.dropped).toEqual([]);
    expect(model.warnings).toEqual([]);
    expect(model.operations.map((o) => o.operationId).sort()).toEqual([
      'createTableRecord',
      'deleteTableRecord',
      'getTableRecord',
      'getTableRecords',
      'replaceTableRecord',
      'updateTableRecord',
    ]);
    expect(model.securitySchemes.map((s) => s.kind)).toEqual(['httpBasic', 'oauth2']);
  });

  it('finds the RITM by number with an encoded query (basic auth)', async () => {
    const client = basicClient();
    const r = await servicenow.getTableRecords({
      client,
      path: { tableName: 'sc_req_item' },
      query: { sysparm_query: 'number=RITM0010001', sysparm_limit: 1, sysparm_fields: 'sys_id,number,state', sysparm_exclude_reference_link: true },
    });
    if (r.error !== undefined) throw new Error(`unexpected error ${JSON.stringify(r.error)}`);
    expect(r.data.result).toEqual([{ sys_id: RITM_SYS_ID, number: 'RITM0010001', state: '1' }]);
    expect(r.headers['x-total-count']).toBe('1');
    expect(last()).toMatchObject({
      method: 'GET',
      path: '/api/now/table/sc_req_item',
      query: { sysparm_query: 'number=RITM0010001', sysparm_limit: '1', sysparm_fields: 'sys_id,number,state', sysparm_exclude_reference_link: 'true' },
      authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`,
    });
    expectConforms(model, 'getTableRecords', 200, r.data);
  });

  it('writes a work note and the state back to the RITM with PATCH', async () => {
    const client = basicClient();
    const r = await servicenow.updateTableRecord({
      client,
      path: { tableName: 'sc_req_item', sys_id: RITM_SYS_ID },
      query: { sysparm_fields: 'sys_id,state,work_notes' },
      body: { work_notes: 'Provisioned VDI-JDOE-01 (vm-1042).', state: '3' },
    });
    expect(statusOf(r)).toBe(200);
    expect(r.data?.result).toEqual({ sys_id: RITM_SYS_ID, state: '3', work_notes: 'Provisioned VDI-JDOE-01 (vm-1042).' });
    expect(last()).toMatchObject({
      method: 'PATCH',
      path: `/api/now/table/sc_req_item/${RITM_SYS_ID}`,
      query: { sysparm_fields: 'sys_id,state,work_notes' },
      body: { work_notes: 'Provisioned VDI-JDOE-01 (vm-1042).', state: '3' },
      contentType: 'application/json',
    });
    expectConforms(model, 'updateTableRecord', 200, r.data);
  });

  it('creates, reads, replaces and deletes a record', async () => {
    const client = basicClient();
    const created = await servicenow.createTableRecord({ client, path: { tableName: 'sc_req_item' }, body: { short_description: 'SaaS seat' } });
    expect(statusOf(created)).toBe(201);
    const id = created.data?.result.sys_id as string;
    expect(last()).toMatchObject({ method: 'POST', path: '/api/now/table/sc_req_item', body: { short_description: 'SaaS seat' } });
    expectConforms(model, 'createTableRecord', 201, created.data);

    const got = await servicenow.getTableRecord({ client, path: { tableName: 'sc_req_item', sys_id: id }, query: { sysparm_display_value: 'true' } });
    expect(got.data?.result).toMatchObject({ sys_id: id, short_description: 'SaaS seat' });
    expect(last().query).toEqual({ sysparm_display_value: 'true' });

    const put = await servicenow.replaceTableRecord({ client, path: { tableName: 'sc_req_item', sys_id: id }, body: { state: '7' } });
    expect(put.data?.result).toMatchObject({ state: '7' });
    expect(last().method).toBe('PUT');

    const del = await servicenow.deleteTableRecord({ client, path: { tableName: 'sc_req_item', sys_id: id } });
    expect(statusOf(del)).toBe(204);
    expect(last()).toMatchObject({ method: 'DELETE', path: `/api/now/table/sc_req_item/${id}` });

    const gone = await servicenow.getTableRecord({ client, path: { tableName: 'sc_req_item', sys_id: id } });
    expect(statusOf(gone)).toBe(404);
    expect(gone.error).toMatchObject({ error: { message: 'No Record found' }, status: 'failure' });
  });

  it('authenticates with OAuth 2.0 (password grant at /oauth_token.do) and sends the bearer token', async () => {
    const client = integration({
      type: 'oauth2_password',
      token_url: `${server.url}/oauth_token.do`,
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      username: USER,
      password: PASSWORD,
    });
    const r = await servicenow.getTableRecord({ client, path: { tableName: 'sc_req_item', sys_id: RITM_SYS_ID } });
    expect(statusOf(r)).toBe(200);
    expect(last().authorization).toBe(`Bearer ${issued}`);
    const tokenCall = server.requests.find((q) => q.url === '/oauth_token.do');
    expect(tokenCall && new URLSearchParams(tokenCall.body).get('client_id')).toBe(CLIENT_ID);
  });

  it('returns bad credentials as a typed 401', async () => {
    const client = integration({ type: 'basic', username: USER, password: 'wrong' });
    const r = await servicenow.getTableRecords({ client, path: { tableName: 'sc_req_item' } });
    expect(statusOf(r)).toBe(401);
    expect(r.error).toMatchObject({ error: { message: 'User Not Authenticated' } });
  });
});

describe('ServiceNow Table API requests validated by Prism serving our model', () => {
  let prism: PrismMock;
  let ic: IntegrationClient;
  let client: TypedClient;

  beforeAll(async () => {
    prism = await startPrism(MODEL_FILE);
    ic = createIntegrationClient(
      { server: { host: '127.0.0.1', port: prism.port }, authentication: { type: 'basic', username: USER, password: PASSWORD } },
      { logger: createMemoryLogger().logger, name: 'servicenow' },
    );
    client = bindTypedClient(ic);
  }, 60_000);
  afterAll(async () => {
    ic?.close();
    await prism?.stop();
  });

  it('accepts every call a runbook makes, and refuses a table name the model does not allow', async () => {
    const path = { tableName: 'sc_req_item', sys_id: RITM_SYS_ID };
    const statuses = {
      getTableRecords: statusOf(await servicenow.getTableRecords({ client, path: { tableName: 'sc_req_item' }, query: { sysparm_query: 'number=RITM0010001', sysparm_limit: 1 } })),
      createTableRecord: statusOf(await servicenow.createTableRecord({ client, path: { tableName: 'sc_req_item' }, body: { short_description: 'x' } })),
      getTableRecord: statusOf(await servicenow.getTableRecord({ client, path })),
      updateTableRecord: statusOf(await servicenow.updateTableRecord({ client, path, body: { work_notes: 'done', state: '3' } })),
      replaceTableRecord: statusOf(await servicenow.replaceTableRecord({ client, path, body: { state: '3' } })),
      deleteTableRecord: statusOf(await servicenow.deleteTableRecord({ client, path })),
    };
    expect(statuses).toEqual({ getTableRecords: 200, createTableRecord: 201, getTableRecord: 200, updateTableRecord: 200, replaceTableRecord: 200, deleteTableRecord: 204 });

    const bad = await servicenow.getTableRecords({ client, path: { tableName: 'sc_req_item;drop' } });
    expect(statusOf(bad)).toBe(400);
  });
});
