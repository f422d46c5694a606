import { createIntegrationClient, type IntegrationClient, type IntegrationEnvelope } from '../../adapter/http';
import { compiledTask, stepContext } from '../../tests/support/executors';
import { createMemoryLogger } from '../../tests/support/memory-logger';
import { closedPort, sendJson, startLoopbackServer, type LoopbackServer } from '../../tests/support/loopback-server';
import type { IntegrationTask } from '../document';
import { buildIntegrationRequest, createIntegrationExecutor, type ResolvedOperation } from './integration';

// The operations of a small "vcenter" model, as integration-model would resolve them.
const OPERATIONS: Record<string, ResolvedOperation> = {
  power_start: { method: 'post', path: '/api/vcenter/vm/{vm}/power', parameters: [{ name: 'vm', in: 'path', required: true }] },
  vm_delete: { method: 'delete', path: '/api/vcenter/vm/{vm}' },
  vm_list: { method: 'get', path: '/api/vcenter/vm' },
  note: { method: 'patch', path: '/api/now/table/{table}/{sys_id}', requestBody: { contentType: 'application/json' } },
  slow: { method: 'get', path: '/api/slow' },
};

let server: LoopbackServer;
let refusedPort: number;
const clients: IntegrationClient[] = [];
const mem = createMemoryLogger();

function client(port: number, timeout?: number): IntegrationClient {
  const c = createIntegrationClient(
    { server: { protocol: 'http', host: '127.0.0.1', port }, authentication: { type: 'bearer', token: 'tok-secret' }, ...(timeout ? { timeout } : {}) },
    { logger: mem.logger, name: 'vcenter' },
  );
  clients.push(c);
  return c;
}

beforeAll(async () => {
  server = await startLoopbackServer((req, res) => {
    const path = req.url.split('?')[0] ?? '';
    if (path === '/api/slow') return undefined; // never answers
    if (path.startsWith('/api/vcenter/vm/gone')) return sendJson(res, 404, { error_type: 'NOT_FOUND' });
    if (path === '/api/vcenter/vm/busy/power') return sendJson(res, 503, { error_type: 'SERVICE_UNAVAILABLE' });
    if (path === '/api/vcenter/vm/limit/power') return sendJson(res, 429, {});
    return sendJson(res, 200, { method: req.method, url: req.url, body: req.body ? (JSON.parse(req.body) as unknown) : null });
  });
  refusedPort = await closedPort();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.close();
});
beforeEach(() => {
  server.requests.length = 0;
});

function executorFor(port: () => number, timeout?: number) {
  return createIntegrationExecutor({
    resolveOperation: (integration, operationId) => (integration === 'vcenter' ? OPERATIONS[operationId] : undefined),
    getClient: (integration) => (integration === 'vcenter' ? client(port(), timeout) : undefined),
  });
}
const executor = executorFor(() => server.port);

function task(operationId: string, over: Partial<IntegrationTask> = {}): IntegrationTask {
  return { kind: 'integration', operation: `vcenter/${operationId}`, ...over };
}

describe('integration executor through a real integration client', () => {
  test('2xx: output is the envelope; the server sees the idempotency key and the encoded path parameter', async () => {
    const ctx = stepContext({ attempt: 3 });
    const result = await executor(compiledTask(task('power_start')), { path: { vm: 'vm 1/../x?y#z' }, query: { action: 'start' } }, ctx);
    expect(result.ok).toBe(true);
    const env = (result as { output: IntegrationEnvelope }).output;
    expect(env).toMatchObject({ ok: true, method: 'POST', status: 200 });
    const req = server.requests[0]!;
    expect(req.url).toBe('/api/vcenter/vm/vm%201%2F..%2Fx%3Fy%23z/power?action=start');
    expect(req.headers['idempotency-key']).toBe('run-1:t1:3');
    expect(req.headers['authorization']).toBe('Bearer tok-secret');
  });

  test('query arrays, headers, cookies and a JSON body are sent; an input Idempotency-Key never replaces ours', async () => {
    const input = {
      path: { table: 'sc_req_item', sys_id: 'abc' },
      query: { names: ['a', 'b'] },
      headers: { 'X-Trace': 7, 'idempotency-key': 'forged' },
      cookies: { session: 'a b' },
      body: { work_notes: 'done' },
    };
    const result = await executor(compiledTask(task('note')), input, stepContext());
    expect(result.ok).toBe(true);
    const req = server.requests[0]!;
    expect(req.method).toBe('PATCH');
    expect(decodeURIComponent(req.url)).toBe('/api/now/table/sc_req_item/abc?names=a&names=b');
    expect(req.headers['x-trace']).toBe('7');
    expect(req.headers['cookie']).toBe('session=a%20b');
    expect(req.headers['idempotency-key']).toBe('run-1:t1:1');
    expect(req.headers['content-type']).toBe('application/json');
    expect(JSON.parse(req.body)).toEqual({ work_notes: 'done' });
  });

  test('a non-accepted 404 is HTTP_4XX with the envelope as output; listed in acceptStatuses it is success', async () => {
    const failedResult = await executor(compiledTask(task('vm_delete')), { path: { vm: 'gone' } }, stepContext());
    expect(failedResult).toMatchObject({
      ok: false,
      error: { code: 'HTTP_4XX', message: expect.stringContaining('answered 404'), output: { ok: false, status: 404, body: { error_type: 'NOT_FOUND' } } },
    });
    const accepted = await executor(compiledTask(task('vm_delete', { acceptStatuses: [404] })), { path: { vm: 'gone' } }, stepContext());
    expect(accepted).toMatchObject({ ok: true, output: { ok: false, status: 404 } });
  });

  test('5xx is HTTP_5XX and 429 is HTTP_429 (the retry policy decides)', async () => {
    expect(await executor(compiledTask(task('power_start')), { path: { vm: 'busy' } }, stepContext())).toMatchObject({
      ok: false,
      error: { code: 'HTTP_5XX', output: { status: 503 } },
    });
    expect(await executor(compiledTask(task('power_start')), { path: { vm: 'limit' } }, stepContext())).toMatchObject({
      ok: false,
      error: { code: 'HTTP_429', output: { status: 429 } },
    });
  });

  test("a refused connection is the client's string error, as NETWORK", async () => {
    const refused = executorFor(() => refusedPort);
    const result = await refused(compiledTask(task('vm_list')), {}, stepContext());
    expect(result).toMatchObject({ ok: false, error: { code: 'NETWORK', message: expect.stringContaining('refused the connection') } });
    expect((result as { error: { retryable?: boolean } }).error.retryable).toBeUndefined();
  });

  test("the client's own timeout and an aborted step are TIMEOUT", async () => {
    const short = executorFor(() => server.port, 200);
    expect(await short(compiledTask(task('slow')), {}, stepContext())).toMatchObject({ ok: false, error: { code: 'TIMEOUT', message: expect.stringContaining('timed out') } });

    const ctx = stepContext();
    const started = Date.now();
    const pending = executor(compiledTask(task('slow')), {}, ctx);
    setTimeout(() => ctx.controller.abort(), 100);
    expect(await pending).toMatchObject({ ok: false, error: { code: 'TIMEOUT', message: expect.stringContaining('aborted') } });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('unknown integration or operation and a missing path parameter are INVALID_INPUT, never retried, without a call', async () => {
    const bad = async (t: IntegrationTask, input: Record<string, unknown> = {}) => executor(compiledTask(t), input, stepContext());
    expect(await bad({ kind: 'integration', operation: 'sccm/x' })).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', retryable: false } });
    expect(await bad(task('nope'))).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', message: "integration 'vcenter' has no operation 'nope'" } });
    expect(await bad(task('power_start'), { path: {} })).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', message: "vcenter/power_start: path parameter 'vm' has no value" } });
    expect(server.requests).toHaveLength(0);
  });

  test('with validateInput, an input the operation refuses is INVALID_INPUT without a call', async () => {
    const checked = createIntegrationExecutor({
      resolveOperation: (_i, op) => OPERATIONS[op],
      getClient: () => client(server.port),
      validateInput: (_i, _op, input) => (typeof (input['query'] as { action?: unknown } | undefined)?.action === 'string' ? [] : ['/query/action is required']),
    });
    expect(await checked(compiledTask(task('power_start')), { path: { vm: 'v1' } }, stepContext())).toEqual({
      ok: false,
      error: { code: 'INVALID_INPUT', retryable: false, message: 'vcenter/power_start: the input does not match the operation: /query/action is required' },
    });
    expect(server.requests).toHaveLength(0);
    expect((await checked(compiledTask(task('power_start')), { path: { vm: 'v1' }, query: { action: 'start' } }, stepContext())).ok).toBe(true);
  });

  test('getClient may hand out any object with call (a stub-mode integration)', async () => {
    const stub = createIntegrationExecutor({
      resolveOperation: (_i, op) => OPERATIONS[op],
      getClient: () => ({ call: async (req) => ({ ok: true, method: req.method, url: req.path, status: 200, statusText: 'OK', headers: {}, body: [{ vm: 'vm-1' }] }) }),
    });
    expect(await stub(compiledTask(task('vm_list')), {}, stepContext())).toMatchObject({ ok: true, output: { status: 200, body: [{ vm: 'vm-1' }] } });
    expect(server.requests).toHaveLength(0);
  });

  test('the bearer token never appears in results or the error message', async () => {
    const result = await executor(compiledTask(task('vm_delete')), { path: { vm: 'gone' } }, stepContext());
    expect(JSON.stringify(result)).not.toContain('tok-secret');
  });
});

describe('buildIntegrationRequest', () => {
  test('a string body for a JSON operation is sent as a JSON string; for text as is', () => {
    expect(buildIntegrationRequest({ method: 'post', path: '/x', requestBody: { contentType: 'application/json' } }, { body: 'hi' }).body).toBe('"hi"');
    expect(buildIntegrationRequest({ method: 'post', path: '/x', requestBody: { contentType: 'text/plain' } }, { body: 'hi' }).body).toBe('hi');
  });
});
