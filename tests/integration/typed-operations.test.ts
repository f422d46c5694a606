import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { modelDocumentDigest, typedModels, typedOperation } from '../../adapter/clients';
import { createIntegrationClient, isEnvelope, type IntegrationCallResult, type IntegrationClient } from '../../adapter/http';
import { buildTaskRequest, getOperation, loadIntegrationModelFile, type IntegrationModel, type TaskInput } from '../../integration-model';
import { closedPort, sendJson, startLoopbackServer, type LoopbackServer, type RecordedRequest } from '../support/loopback-server';
import { createMemoryLogger } from '../support/memory-logger';

// A runbook step calls a model's generated SDK function when the model is one a typed client was generated from.
// The step must not be able to tell: the envelope (and the request on the wire) is the generic call's, byte for
// byte, for the same task input. ServiceNow's Table API on loopback stands in for the instance.
const specFile = join(__dirname, '..', '..', 'openapi', 'integrations', 'servicenow-table.yaml');
const PASSWORD = 'snow-secret-pw';

let server: LoopbackServer;
let model: IntegrationModel;
let digest: string;
const clients: IntegrationClient[] = [];
const mem = createMemoryLogger();

function client(port: number, timeout?: number): IntegrationClient {
  const c = createIntegrationClient(
    {
      server: { protocol: 'http', host: '127.0.0.1', port },
      authentication: { type: 'basic', username: 'provisio', password: PASSWORD },
      logging: { level: 'debug' },
      ...(timeout !== undefined ? { timeout } : {}),
    },
    { logger: mem.logger, name: 'snow' },
  );
  clients.push(c);
  return c;
}

beforeAll(async () => {
  model = await loadIntegrationModelFile(specFile);
  digest = modelDocumentDigest(model.document);
  server = await startLoopbackServer((req, res) => {
    if (req.url.startsWith('/api/now/table/sc_req_item/missing')) return sendJson(res, 404, { error: { message: 'No Record found' } });
    if (req.url.startsWith('/api/now/table/sc_req_item/plain')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('not json at all');
      return;
    }
    if (req.url.startsWith('/api/now/table/sc_req_item/slow')) return undefined; // never answers
    return sendJson(res, req.method === 'POST' ? 201 : 200, { result: req.body ? JSON.parse(req.body) : [{ number: 'RITM0010001', sys_id: 'abc' }] }, { 'x-total-count': '1' });
  });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.close();
});
beforeEach(() => {
  server.requests.length = 0;
});

/** The envelope without the headers that change between two responses (date, connection timing). */
function comparable(result: IntegrationCallResult): unknown {
  if (!isEnvelope(result)) return result;
  const { date: _date, 'keep-alive': _ka, ...headers } = result.headers;
  return { ...result, headers };
}

/** What the server saw, without what differs between two connections. */
function wire(req: RecordedRequest): unknown {
  const { host: _h, connection: _c, ...headers } = req.headers;
  return { method: req.method, url: req.url, body: req.body, headers };
}

async function both(operationId: string, input: TaskInput): Promise<{ typed: IntegrationCallResult; generic: IntegrationCallResult }> {
  const c = client(server.port);
  const typed = typedOperation(digest, operationId);
  expect(typed).toBeDefined();
  const typedResult = await typed!(c, input);
  const genericResult = await c.call(buildTaskRequest(getOperation(model, operationId), input));
  return { typed: typedResult, generic: genericResult };
}

describe('typed operations: generated SDK functions behind the generic envelope', () => {
  test('the registry knows the model by the digest the runtime computes for the document it loaded', () => {
    const generated = typedModels().find((m) => m.name === 'servicenow-table');
    expect(generated?.digest).toBe(digest);
    // The generator hashes the file as parsed; the loader's document is the same object, whatever the key order.
    expect(modelDocumentDigest(parse(readFileSync(specFile, 'utf8')))).toBe(digest);
    expect(generated?.operationIds.sort()).toEqual(model.operations.map((o) => o.operationId).sort());
    for (const op of model.operations) expect(typedOperation(digest, op.operationId)).toBeDefined();
  });

  test('an edited document, or an operation it does not have, has no typed call: the caller takes the generic path', () => {
    const edited = structuredClone(model.document);
    (edited['info'] as Record<string, unknown>)['version'] = 'edited';
    expect(typedOperation(modelDocumentDigest(edited), 'getTableRecords')).toBeUndefined();
    expect(typedOperation(digest, 'noSuchOperation')).toBeUndefined();
    expect(typedOperation(digest, 'toString')).toBeUndefined();
  });

  test('GET with path and query: the same envelope and the same request as the generic call', async () => {
    const input = { path: { tableName: 'sc_req_item' }, query: { sysparm_query: 'number=RITM0010001', sysparm_limit: 1, sysparm_display_value: 'true' } };
    const { typed, generic } = await both('getTableRecords', input);
    expect(typed).toMatchObject({ ok: true, status: 200, method: 'GET', body: { result: [{ number: 'RITM0010001' }] } });
    expect(comparable(typed)).toEqual(comparable(generic));
    expect(server.requests).toHaveLength(2);
    expect(wire(server.requests[0]!)).toEqual(wire(server.requests[1]!));
    expect(server.requests[0]!.headers['authorization']).toBe(`Basic ${Buffer.from(`provisio:${PASSWORD}`).toString('base64')}`);
  });

  test('POST with a JSON body and a header: same envelope, same bytes sent', async () => {
    const input = { path: { tableName: 'sc_req_item' }, headers: { 'X-no-response-body': 'false' }, body: { short_description: 'Seat for Ana', quantity: 1 } };
    const { typed, generic } = await both('createTableRecord', input);
    expect(typed).toMatchObject({ ok: true, status: 201, body: { result: { short_description: 'Seat for Ana', quantity: 1 } } });
    expect(comparable(typed)).toEqual(comparable(generic));
    expect(wire(server.requests[0]!)).toEqual(wire(server.requests[1]!));
  });

  test('a 404 and a body that is not JSON are envelopes too, as the generic call gives them', async () => {
    const missing = await both('getTableRecord', { path: { tableName: 'sc_req_item', sys_id: 'missing' } });
    expect(missing.typed).toMatchObject({ ok: false, status: 404, body: { error: { message: 'No Record found' } } });
    expect(comparable(missing.typed)).toEqual(comparable(missing.generic));

    const plain = await both('getTableRecord', { path: { tableName: 'sc_req_item', sys_id: 'plain' } });
    expect(plain.typed).toMatchObject({ ok: true, status: 200, text: 'not json at all', parseError: { name: 'SyntaxError' } });
    expect(comparable(plain.typed)).toEqual(comparable(plain.generic));
  });

  test('calls not made are the same strings: a refused connection, a timeout, an aborted step', async () => {
    const port = await closedPort();
    const refused = client(port);
    const input = { path: { tableName: 'sc_req_item', sys_id: 'abc' } };
    const typedRefused = await typedOperation(digest, 'getTableRecord')!(refused, input);
    expect(typedRefused).toEqual(expect.stringContaining('refused the connection'));
    expect(typedRefused).toBe(await refused.call(buildTaskRequest(getOperation(model, 'getTableRecord'), input)));

    const slow = client(server.port, 200);
    const slowInput = { path: { tableName: 'sc_req_item', sys_id: 'slow' } };
    const timedOut = await typedOperation(digest, 'getTableRecord')!(slow, slowInput);
    expect(timedOut).toBe(await slow.call(buildTaskRequest(getOperation(model, 'getTableRecord'), slowInput)));
    expect(timedOut).toMatch(/timed out after 200 ms/);

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const aborted = await typedOperation(digest, 'getTableRecord')!(client(server.port), slowInput, controller.signal);
    expect(aborted).toBe(`The API call could not be made: GET ${server.url}/api/now/table/sc_req_item/slow: aborted before a response arrived`);
  });

  test('the typed call logs through the integration, the password redacted', async () => {
    mem.lines.length = 0;
    await typedOperation(digest, 'getTableRecords')!(client(server.port), { path: { tableName: 'sc_req_item' } });
    expect(mem.lines).toEqual(expect.arrayContaining([expect.objectContaining({ message: 'integration response', integration: 'snow', status: 200 })]));
    expect(mem.text()).not.toContain(PASSWORD);
    expect(mem.text()).not.toContain(Buffer.from(`provisio:${PASSWORD}`).toString('base64'));
  });
});
