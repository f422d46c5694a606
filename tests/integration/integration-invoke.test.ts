// The integration runtime's `invoke`, as runbook steps reach it (through the integration executor), against a real
// database (PGlite, or PostgreSQL when DATABASE_URL is set) and a real HTTP server on loopback: the request on the
// wire, the version-keyed cache (one round trip per step, a change seen at the next step), stub mode, typed clients.
import { readdirSync } from 'node:fs';
import { createLogger, modelDocumentDigest, projectPath, typedOperation, type IntegrationCallResult, type IntegrationEnvelope } from '../../adapter';
import {
  InvocationError,
  createIntegration,
  createIntegrationModel,
  createIntegrationRuntime,
  loadIntegrationModel,
  loadIntegrationModelFiles,
  updateIntegration,
  upsertIntegrationModel,
  type IntegrationModel,
  type IntegrationRuntime,
  type TypedOperations,
} from '../../integration-model';
import { createIntegrationExecutor } from '../../workflows/executors';
import { countingDatabase, type CountingDatabase } from '../support/counting-db';
import { createTestDatabase, testEngine, type TestDatabase } from '../support/db';
import { compiledTask, stepContext } from '../support/executors';
import { closedPort, sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';

const actor = { triggeredBy: 'test' };
const logger = createLogger({ silent: true });

const document = (extraPaths: Record<string, unknown> = {}) => ({
  openapi: '3.0.3',
  info: { title: 'Invoke Lab', version: '1.0.0' },
  paths: {
    '/vm/{vm}/power': {
      post: {
        operationId: 'power',
        parameters: [
          { name: 'vm', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'action', in: 'query', required: true, schema: { type: 'string', enum: ['start', 'stop'] } },
          { name: 'names', in: 'query', schema: { type: 'array', items: { type: 'string' } } },
          { name: 'X-Trace', in: 'header', schema: { type: 'integer' } },
          { name: 'Idempotency-Key', in: 'header', schema: { type: 'string' } },
          { name: 'session', in: 'cookie', schema: { type: 'string' } },
        ],
        requestBody: { content: { 'application/json': { schema: { type: 'object' } } } },
        responses: { '200': { description: 'done', content: { 'application/json': { schema: { type: 'object' }, example: { stubbed: true } } } } },
      },
    },
    '/slow': { get: { operationId: 'slow', responses: { '200': { description: 'eventually' } } } },
    ...extraPaths,
  },
});
const MODEL_ID = 'Invoke Lab:1.0.0';

describe(`integration runtime invoke (${testEngine})`, () => {
  let t: TestDatabase;
  let api: LoopbackServer;
  let db: CountingDatabase;
  let runtime: IntegrationRuntime;
  let model: IntegrationModel;
  let vcenterId = 0;
  const runtimes: IntegrationRuntime[] = [];
  const config = (over: Record<string, unknown> = {}) => ({
    server: { protocol: 'http', host: '127.0.0.1', port: api.port },
    authentication: { type: 'bearer', token: 'tok-secret-1' },
    ...over,
  });
  const newRuntime = (deps: { typedOperations?: TypedOperations } = {}) => {
    const r = createIntegrationRuntime({ db, logger, ...deps });
    runtimes.push(r);
    return r;
  };
  /** Statements sent while `fn` ran. */
  async function statementsOf(fn: () => Promise<unknown>): Promise<string[]> {
    const from = db.statements.length;
    await fn();
    return db.statements.slice(from);
  }

  beforeAll(async () => {
    t = await createTestDatabase();
    db = countingDatabase(t.db);
    api = await startLoopbackServer((req, res) => {
      if (req.url === '/slow') return undefined; // never answers
      return sendJson(res, 200, { seen: req.url });
    });
    model = await loadIntegrationModel(document());
    await t.db.transaction(async (tx) => {
      await createIntegrationModel(tx, model, actor);
      vcenterId = await createIntegration(tx, model, { name: 'vcenter', model_id: MODEL_ID, config: config() }, actor);
    });
    runtime = newRuntime();
  });
  afterAll(async () => {
    for (const r of runtimes) r.close();
    await api.close();
    await t.drop();
  });
  beforeEach(() => {
    api.requests.length = 0;
  });

  const power = { path: { vm: 'vm 1/../x?y#z' }, query: { action: 'start' } };

  test('a runbook step: path parameters encoded, query, headers, cookies and body sent, our idempotency key wins', async () => {
    const executor = createIntegrationExecutor({ integrations: runtime });
    const input = {
      path: { vm: 'vm 1/../x?y#z' },
      query: { action: 'start', names: ['a', 'b'] },
      headers: { 'X-Trace': 7, 'Idempotency-Key': 'forged' },
      cookies: { session: 'a b' },
      body: { note: 'done' },
    };
    const result = await executor(compiledTask({ kind: 'integration', operation: 'vcenter/power' }), input, stepContext({ attempt: 3 }));
    expect(result).toMatchObject({ ok: true, output: { ok: true, method: 'POST', status: 200 } });
    const req = api.requests[0]!;
    expect(req.url).toBe('/vm/vm%201%2F..%2Fx%3Fy%23z/power?action=start&names=a&names=b');
    expect(req.headers['idempotency-key']).toBe('run-1:t1:3');
    expect(req.headers['authorization']).toBe('Bearer tok-secret-1');
    expect(req.headers['x-trace']).toBe('7');
    expect(req.headers['cookie']).toBe('session=a%20b');
    expect(req.headers['content-type']).toBe('application/json');
    expect(JSON.parse(req.body)).toEqual({ note: 'done' });
    expect(JSON.stringify(result)).not.toContain('tok-secret-1');
  });

  test('once cached, resolving the integration is one query per step; a change to it is seen at the next step', async () => {
    const fresh = newRuntime();
    const first = await statementsOf(() => fresh.invoke('vcenter', 'power', power));
    expect(first.length).toBeGreaterThan(1);
    for (let i = 0; i < 3; i++) {
      const sent = await statementsOf(() => fresh.invoke('vcenter', 'power', power));
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatch(/FROM integrations i JOIN integration_models m/);
    }
    expect(api.requests.map((r) => r.headers['authorization'])).toEqual(Array(4).fill('Bearer tok-secret-1'));

    // Changed through another process (the store, not this runtime): the new token is used at the next call.
    await t.db.transaction((tx) => updateIntegration(tx, model, vcenterId, { config: config({ authentication: { type: 'bearer', token: 'tok-secret-2' } }) }, actor));
    await fresh.invoke('vcenter', 'power', power);
    expect(api.requests.at(-1)!.headers['authorization']).toBe('Bearer tok-secret-2');
    expect(await statementsOf(() => fresh.invoke('vcenter', 'power', power))).toHaveLength(1);

    // Stub mode switched on: answered from the model's example, without a request.
    const before = api.requests.length;
    await t.db.transaction((tx) => updateIntegration(tx, model, vcenterId, { stub_mode: true }, actor));
    expect(await fresh.invoke('vcenter', 'power', power)).toMatchObject({ ok: true, status: 200, body: { stubbed: true }, headers: { 'x-provisio-stub': 'true' } });
    expect(api.requests.length).toBe(before);
    await t.db.transaction((tx) => updateIntegration(tx, model, vcenterId, { stub_mode: false }, actor));

    // Renamed: the old name is gone at once.
    await t.db.transaction((tx) => updateIntegration(tx, model, vcenterId, { name: 'vcenter-renamed' }, actor));
    await expect(fresh.invoke('vcenter', 'power', power)).rejects.toMatchObject({ name: 'InvocationError', code: 'NOT_FOUND' });
    expect(await fresh.invoke('vcenter-renamed', 'power', power)).toMatchObject({ ok: true });
    await t.db.transaction((tx) => updateIntegration(tx, model, vcenterId, { name: 'vcenter' }, actor));
  });

  test('a model replaced in place (file reload) is seen at the next step', async () => {
    const fresh = newRuntime();
    await expect(fresh.invoke('vcenter', 'ping', {})).rejects.toMatchObject({ code: 'NOT_FOUND', message: "model 'Invoke Lab:1.0.0' has no operation 'ping'" });
    const reloaded = await loadIntegrationModel(document({ '/ping': { get: { operationId: 'ping', responses: { '200': { description: 'up' } } } } }));
    await t.db.transaction((tx) => upsertIntegrationModel(tx, reloaded, 'test'));
    expect(await fresh.invoke('vcenter', 'ping', {})).toMatchObject({ ok: true, body: { seen: '/ping' } });
  });

  test('input the operation refuses and unknown names are InvocationErrors, and no request is made', async () => {
    const refused = await runtime.invoke('vcenter', 'power', { path: { vm: 'v1' }, query: { action: 'explode' } }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InvocationError);
    expect(refused).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: '/body/query/action', message: expect.stringContaining('allowed values') }] });
    await expect(runtime.invoke('vcenter', 'power', { path: { vm: '' }, query: { action: 'start' } })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ path: '/body/path/vm', message: 'has no value' }],
    });
    await expect(runtime.invoke('nowhere', 'power', power)).rejects.toMatchObject({ code: 'NOT_FOUND', message: "integration 'nowhere' does not exist" });
    expect(api.requests).toHaveLength(0);
  });

  test('no response: a refused connection and the timeout are strings; the step signal aborts the call', async () => {
    const port = await closedPort();
    await t.db.transaction(async (tx) => {
      await createIntegration(tx, model, { name: 'refused', model_id: MODEL_ID, config: config({ server: { protocol: 'http', host: '127.0.0.1', port } }) }, actor);
      await createIntegration(tx, model, { name: 'slowpoke', model_id: MODEL_ID, config: config({ timeout: 300 }) }, actor);
    });
    expect(await runtime.invoke('refused', 'power', power)).toEqual(expect.stringContaining('refused the connection'));
    expect(await runtime.invoke('slowpoke', 'slow', {})).toEqual(expect.stringContaining('timed out'));

    const executor = createIntegrationExecutor({ integrations: runtime });
    const ctx = stepContext();
    const started = Date.now();
    const pending = executor(compiledTask({ kind: 'integration', operation: 'vcenter/slow' }), {}, ctx);
    setTimeout(() => ctx.controller.abort(), 100);
    expect(await pending).toMatchObject({ ok: false, error: { code: 'TIMEOUT' } });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test("a model with a generated client: invoke dispatches to its SDK function, bound to the integration's client", async () => {
    const typedCalls: { input: unknown; signal: AbortSignal | undefined }[] = [];
    const typed: TypedOperations = {
      digest: (doc) => ((doc['info'] as { title?: string }).title === 'Invoke Lab' ? 'digest-of-invoke-lab' : 'other'),
      operation: (digest, operationId) =>
        digest === 'digest-of-invoke-lab' && operationId === 'power'
          ? async (client, input, signal): Promise<IntegrationCallResult> => {
              typedCalls.push({ input, signal });
              // The generated function sends through the integration's own axios instance (auth, TLS, proxy).
              return client.call({ method: 'POST', path: `/typed/${String(input.path?.['vm'])}`, headers: { 'Idempotency-Key': String(input.headers?.['Idempotency-Key']) } });
            }
          : undefined,
    };
    const withTyped = newRuntime({ typedOperations: typed });
    const signal = new AbortController().signal;
    const result = (await withTyped.invoke('vcenter', 'power', { path: { vm: 'v7' }, query: { action: 'start' }, headers: { 'Idempotency-Key': 'forged' } }, { signal, idempotencyKey: 'run:s:1' })) as IntegrationEnvelope;
    expect(result).toMatchObject({ ok: true, body: { seen: '/typed/v7' } });
    expect(typedCalls).toEqual([{ input: { path: { vm: 'v7' }, query: { action: 'start' }, headers: { 'Idempotency-Key': 'run:s:1' } }, signal }]);
    expect(api.requests.map((r) => [r.url, r.headers['authorization'], r.headers['idempotency-key']])).toEqual([['/typed/v7', 'Bearer tok-secret-2', 'run:s:1']]);

    // An operation without a generated function takes the generic path; stub mode never reaches the typed client.
    expect(await withTyped.invoke('vcenter', 'ping', {})).toMatchObject({ body: { seen: '/ping' } });
    await t.db.transaction((tx) => updateIntegration(tx, model, vcenterId, { stub_mode: true }, actor));
    expect(await withTyped.invoke('vcenter', 'power', power)).toMatchObject({ body: { stubbed: true } });
    await t.db.transaction((tx) => updateIntegration(tx, model, vcenterId, { stub_mode: false }, actor));
    expect(typedCalls).toHaveLength(1);
  });

  test('every model of openapi/integrations/, as the runtime reads it back from the database, has its generated client', async () => {
    const { loaded } = await loadIntegrationModelFiles(t.db, logger, projectPath('openapi', 'integrations'));
    expect(loaded).toHaveLength(readdirSync(projectPath('openapi', 'integrations')).filter((f) => /\.(ya?ml|json)$/.test(f)).length);
    const fresh = newRuntime();
    for (const id of loaded) {
      // The store keeps the document as jsonb (its own key order); the digest must not depend on it.
      const model = await fresh.modelOf({ model_id: id });
      const digest = modelDocumentDigest(model.document);
      expect(model.operations.filter((op) => typedOperation(digest, op.operationId) === undefined).map((op) => `${id} ${op.operationId}`)).toEqual([]);
    }
  });
});
