// OAuth 2.0 tokens a runbook step obtains are persisted: the workflow engine reaches integrations through the
// process's one integration runtime, built with the database, so a token fetched (or refreshed after a 401) inside
// a step is stored as the integration's secret and reused by the next run and by other processes.
import { randomBytes } from 'node:crypto';
import { createLogger } from '../../adapter';
import { createIntegration, createIntegrationModel, createIntegrationRuntime, loadIntegration, loadIntegrationModel, openIntegrationSecrets, type IntegrationRuntime } from '../../integration-model';
import { createWorkflowRuntime, type WorkflowRuntime } from '../../server/domain/runbooks/workflow-runtime';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { TEST_ENGINE_CONFIG } from '../support/engine-config';

jest.setTimeout(60_000);

const MODEL = {
  openapi: '3.0.3',
  info: { title: 'Secured Directory', version: '1.0.0' },
  paths: { '/whoami': { get: { operationId: 'whoami', responses: { '200': { description: 'the caller' } } } } },
};
const logger = createLogger({ silent: true });

describe(`a runbook step's OAuth tokens are persisted (${testEngine})`, () => {
  let t: TestApp;
  let server: LoopbackServer;
  let integrationId = 0;
  /** Access tokens the token endpoint issued, in order; those in `revoked` are refused by the API. */
  const issued: string[] = [];
  const revoked = new Set<string>();
  const started: WorkflowRuntime[] = [];
  const runtimes: IntegrationRuntime[] = [];

  const tokenRequests = () => server.requests.filter((r) => r.url === '/oauth/token').length;
  // Stored sealed (secrets at rest): opened here.
  const storedToken = async () => (await openIntegrationSecrets(t.db, await loadIntegration(t.db, integrationId)))['/authentication/access_token'];

  /** A workflow runtime on `integrations`, its workers started, as `serve` or `provisio worker` builds it. */
  async function startWorkflows(integrations: IntegrationRuntime): Promise<WorkflowRuntime> {
    const wf = createWorkflowRuntime({ db: t.db, queue: t.queue, logger, integrations, config: TEST_ENGINE_CONFIG });
    started.push(wf);
    await wf.startWorkers({ teamSize: 1 });
    return wf;
  }

  async function runToEnd(wf: WorkflowRuntime): Promise<void> {
    const run = await t.db.transaction((tx) => wf.engine.startRun(tx, { workflow: 'who am i', inputs: {}, lockKey: null, variables: {}, createdBy: 'test' }));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const current = await wf.engine.getRun(run.id);
      if (current.status === 'succeeded') return;
      if (['failed', 'cancelled'].includes(current.status) || Date.now() > deadline) throw new Error(`run ${current.status}: ${JSON.stringify(current.steps)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  beforeAll(async () => {
    server = await startLoopbackServer((req, res) => {
      if (req.url === '/oauth/token') {
        const params = new URLSearchParams(req.body);
        if (params.get('grant_type') !== 'client_credentials' || params.get('client_secret') !== 'runbook-secret') return sendJson(res, 401, { error: 'invalid_client' });
        const token = `issued-${issued.length + 1}-${randomBytes(8).toString('hex')}`;
        issued.push(token);
        return sendJson(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 3600 });
      }
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (!issued.includes(token) || revoked.has(token)) return sendJson(res, 401, { error: 'invalid_token' });
      return sendJson(res, 200, { token_number: issued.indexOf(token) + 1 });
    });
    t = await createTestApp();
    const model = await loadIntegrationModel(MODEL);
    integrationId = await t.db.transaction(async (tx) => {
      await createIntegrationModel(tx, model, { triggeredBy: 'test' });
      return createIntegration(
        tx,
        model,
        {
          name: 'secured',
          model_id: 'Secured Directory:1.0.0',
          config: {
            server: { protocol: 'http', host: '127.0.0.1', port: server.port },
            authentication: { type: 'oauth2_client_credentials', client_id: 'runbook', client_secret: 'runbook-secret', auth_method: 'client_secret_post', token_url: `${server.url}/oauth/token` },
          },
        },
        { triggeredBy: 'test' },
      );
    });
  });
  afterAll(async () => {
    for (const wf of started) await wf.stop();
    for (const r of runtimes) r.close();
    await t?.close();
    await server?.close();
  });

  test('the token fetched inside a run is stored; another process reuses it without asking for a new one', async () => {
    const first = await startWorkflows(t.integrations);
    await first.engine.saveWorkflow({ name: 'who am i', steps: [{ id: 'who', kind: 'integration', operation: 'secured/whoami' }] }, 'test');
    expect(await storedToken()).toBeUndefined();

    await runToEnd(first);
    await t.integrations.tokensPersisted();
    expect(tokenRequests()).toBe(1);
    expect(await storedToken()).toBe(issued[0]);
    await first.stop();

    // Another process: its own runtime, whose client starts from what the store holds.
    const other = createIntegrationRuntime({ db: t.db, queue: t.queue, logger });
    runtimes.push(other);
    const second = await startWorkflows(other);
    const apiCallsBefore = server.requests.length;
    await runToEnd(second);
    expect(tokenRequests()).toBe(1);
    expect(server.requests.slice(apiCallsBefore).map((r) => [r.url, r.headers.authorization])).toEqual([['/whoami', `Bearer ${issued[0]}`]]);
  });

  test('a token refreshed after a 401 inside a run replaces the stored one', async () => {
    revoked.add(issued[0]!);
    const wf = started.at(-1)!;
    await runToEnd(wf);
    await runtimes[0]!.tokensPersisted();
    expect(tokenRequests()).toBe(2);
    expect(await storedToken()).toBe(issued[1]);
    expect(server.requests.at(-1)!.headers.authorization).toBe(`Bearer ${issued[1]}`);
  });
});
