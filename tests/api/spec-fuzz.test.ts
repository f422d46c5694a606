// The spec-driven fuzz test: every operation of openapi/provisio.yaml gets a valid request built from the spec's
// examples and schemas and aimed at real resources created through the API, and that request's mutations (a fixed
// catalogue of hostile values in every place the operation has, plus seeded fast-check rounds). It fails on any 5xx,
// any 4xx that breaks the error contract (problem+json, or a SCIM Error on /scim), a 2xx to a body carrying NUL or a
// lone surrogate, any request without an answer within the bound, and a service that is not healthy afterwards.
// It also sets secrets with distinctive values (every writeOnly settings key, integration credentials and OAuth
// tokens, a Teams URL, the API tokens it mints) and fails when any of them appears in a response body or header or in
// a log line of the run (the API token in the answer that creates it is the one exception: shown once, by design).
// Requests go byte for byte over a loopback socket (tests/support/spec-fuzz-requests.ts), not through supertest,
// which would normalise the very paths under test.
//
//   FUZZ_SEED=<n>      replays a run (the seed is printed first)
//   FUZZ_ROUNDS=<n>    random mutations per operation on top of the catalogue (default 4)
//   FUZZ_ONLY=a,b      only these operationIds (with the same resources)
//   FUZZ_TIMEOUT_MS=<n> the bound on one answer (default 5000)
//   FUZZ_TRACE=1       prints every request with its status
//   FUZZ_REPORT=<file> writes every failure there (the output shows the first 60)
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import request from 'supertest';
import { createLogger } from '../../adapter';
import { buildApp } from '../../server/app';
import { createWorkflowRuntime, type WorkflowRuntime } from '../../server/domain/runbooks/workflow-runtime';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import { createTestApp, TEST_ADMIN_KEY, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { walkSpec, type SpecOperation } from '../support/spec-walk';
import {
  catalogueMutations,
  describeFailure,
  describeOperations,
  judgeAnswer,
  randomMutations,
  sendRaw,
  validRequest,
  type Fixture,
  type FuzzAnswer,
  type FuzzOperation,
  type Mutation,
} from '../support/spec-fuzz-requests';
import { TEST_ENGINE_CONFIG } from '../support/engine-config';

const SEED = process.env['FUZZ_SEED'] ? Number(process.env['FUZZ_SEED']) : Math.floor(Math.random() * 2 ** 31);
if (!Number.isInteger(SEED)) throw new Error(`FUZZ_SEED must be an integer, not ${process.env['FUZZ_SEED']}`);
const ROUNDS = process.env['FUZZ_ROUNDS'] ? Number(process.env['FUZZ_ROUNDS']) : 4;
const TIMEOUT_MS = process.env['FUZZ_TIMEOUT_MS'] ? Number(process.env['FUZZ_TIMEOUT_MS']) : 5000;
const ONLY = process.env['FUZZ_ONLY']?.split(',').map((s) => s.trim()).filter(Boolean);
const TRACE = process.env['FUZZ_TRACE'] === '1';
const REPORT = process.env['FUZZ_REPORT'];
const GRAPH_CLIENT_STATE = 'graph-client-state-0123456789';

/**
 * The secrets set during the run, by name: each value carries a marker (`fzsec…`) found nowhere else, so finding the
 * marker anywhere is finding the secret. API tokens are their own random text.
 */
class SecretRegistry {
  readonly #needles = new Map<string, string>();
  /** A fresh distinctive secret value, remembered as `name`. */
  make(name: string): string {
    const value = `fzsec${randomBytes(9).toString('hex')}${name.replace(/[^A-Za-z0-9]/g, '')}`;
    this.#needles.set(name, value);
    return value;
  }
  /** A secret set outside `make` (an API token, a fixed credential). */
  add(name: string, value: string): void {
    this.#needles.set(name, value);
  }
  get size(): number {
    return this.#needles.size;
  }
  /** The names of the secrets that `text` contains. */
  foundIn(text: string): string[] {
    const found: string[] = [];
    for (const [name, needle] of this.#needles) if (text.includes(needle)) found.push(name);
    return found;
  }
}

/** The service's own logger (its redaction included) writing every line, at every level, into memory. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, next) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(l);
      next();
    },
  });
  return { logger: createLogger({ level: 'silly', stream }), lines };
}

jest.setTimeout(15 * 60_000);

/** FNV-1a: a per-operation seed that does not move when operations are added to the spec. */
function opSeed(operationId: string): number {
  let h = 0x811c9dc5;
  for (const c of operationId) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return (h ^ SEED) >>> 0;
}

/** Safe operations first, then the writes, then deletions in an order where nothing deleted is still needed. */
const DELETE_ORDER = [
  'revokeIntegrationRole',
  'deleteIntegration',
  'deleteIntegrationModel',
  'deleteSchedule',
  'deleteAsset',
  'deleteAssetType',
  'scimDeleteGroup',
  'scimDeleteUser',
  'revokeApiToken',
];
function runOrder(ops: readonly SpecOperation[]): SpecOperation[] {
  const rank = (o: SpecOperation) => (o.method === 'get' ? 0 : o.method === 'delete' ? 2 : 1);
  const byName = (o: SpecOperation) => (o.method === 'delete' ? DELETE_ORDER.indexOf(o.operationId) + 1 || 99 : 0);
  return [...ops].sort((a, b) => rank(a) - rank(b) || byName(a) - byName(b));
}

describe(`spec-driven fuzz (${testEngine})`, () => {
  let base: TestApp;
  let wf: WorkflowRuntime;
  let server: http.Server;
  let loopback: LoopbackServer;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const { spec, operations } = walkSpec();
  const admin = { 'X-Admin-Key': TEST_ADMIN_KEY };
  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  /** Bearer tokens by the scope an operation needs, for operations the admin key cannot call. */
  const tokens: Record<string, string> = {};
  let fixtures: Record<string, Fixture> = {};
  /** supertest for setting up resources, where well-formed requests are all that is needed. */
  let api: () => request.Agent;
  const secrets = new SecretRegistry();
  const captured = capturingLogger();
  /** Where a secret was seen: `<secret name> in <place>`. */
  const leaks: string[] = [];
  const checkAnswer = (where: string, text: string, headerText: string) => {
    for (const name of secrets.foundIn(text)) leaks.push(`${name} in the body of ${where}`);
    for (const name of secrets.foundIn(headerText)) leaks.push(`${name} in a header of ${where}`);
  };

  async function must(res: request.Test, status: number): Promise<Record<string, unknown>> {
    const r = await res;
    if (r.status !== status) throw new Error(`setup: ${res.method} ${res.url} answered ${r.status}, not ${status}: ${r.text.slice(0, 500)}`);
    const body = r.body as Record<string, unknown>;
    // A minted token is answered once, by design: it becomes a secret from here on, checked in every later answer.
    if (res.method === 'POST' && /\/admin\/api-tokens$/.test(res.url) && typeof body['token'] === 'string') secrets.add(`api token ${String(body['name'])}`, body['token']);
    else checkAnswer(`setup ${res.method} ${res.url}`, r.text ?? '', JSON.stringify(r.headers));
    return body;
  }

  async function waitForRun(id: string, statuses: string[]): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const run = await must(api().get(`/admin/runs/${id}`).set(admin), 200);
      if (statuses.includes(String(run['status']))) return;
      if (Date.now() > deadline) throw new Error(`setup: run ${id} is ${String(run['status'])}, not ${statuses.join('|')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    // The one outside system every integration, webhook step and OAuth token endpoint points at: nothing leaves
    // the machine, and nothing waits on a timeout.
    const accessToken = secrets.make('oauth access token');
    const refreshToken = secrets.make('oauth refresh token');
    loopback = await startLoopbackServer((req, res) =>
      req.url.startsWith('/token')
        ? sendJson(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: 3600, refresh_token: refreshToken })
        : sendJson(res, 200, { status: 'ok', response: 'NO_PROVISIONING_ACTION' }),
    );
    // Every service of the app logs into memory (with the production logger's redaction), for the leak check.
    base = await createTestApp({}, { logger: captured.logger });
    const logger = captured.logger;
    secrets.add('admin key', TEST_ADMIN_KEY);
    secrets.add('hr.graph_client_state', GRAPH_CLIENT_STATE);
    wf = createWorkflowRuntime({ db: base.db, queue: base.queue, logger, integrations: base.integrations, config: TEST_ENGINE_CONFIG });
    const app = buildApp({ db: base.db, queue: base.queue, logger, workflowEngine: wf.engine, integrations: wf.integrations, linkSigner: base.linkSigner, adminKeyHash: async () => hashSecret(TEST_ADMIN_KEY) }, base.config);
    api = () => request.agent(app);
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

    // Tokens: one per bearer-only need, and the ones the token operations read and revoke.
    const mint = async (name: string, scopes: string[], role: string | null = null) =>
      must(api().post('/admin/api-tokens').set(admin).send({ name, scopes, role }), 201);
    const scim = await mint('fuzz-scim', ['scim:read', 'scim:write']);
    tokens['scim:read'] = tokens['scim:write'] = String(scim['token']);
    tokens['hr:leaver'] = String((await mint('fuzz-hr', ['hr:leaver']))['token']);
    tokens['webhook:in'] = String((await mint('fuzz-snow', ['webhook:in']))['token']);
    tokens['orders:write'] = String((await mint('fuzz-portal', ['orders:write']))['token']);
    const reader = await mint('fuzz-reader', ['admin:read'], 'auditor');
    const doomedToken = await mint('fuzz-doomed', ['admin:read'], 'auditor');

    // Settings the valid requests rely on: the Graph subscription's clientState (the spec example's).
    await must(api().put('/admin/settings/hr').set(admin).send({ graph_client_state: GRAPH_CLIENT_STATE }), 200);
    // Every other writeOnly settings key, each with a distinctive value in the first shape its schema accepts
    // (plain text, an https URL, a data: URL); a key that takes none of them is reported, not set.
    const sections = await must(api().get('/admin/settings').set(admin), 200);
    const unset: string[] = [];
    for (const info of sections['items'] as { section: string; secret_keys: string[] }[]) {
      for (const key of info.secret_keys) {
        if (info.section === 'hr' && key === 'graph_client_state') continue;
        const value = secrets.make(`${info.section}.${key}`);
        let set = false;
        const shapes = [value, `https://fuzz.example.test/${value}`, `data:text/plain,${value}`, `-----BEGIN PRIVATE KEY-----\n${value}\n-----END PRIVATE KEY-----\n`];
        for (const shape of shapes) {
          const r = await api().put(`/admin/settings/${info.section}`).set(admin).send({ [key]: shape });
          checkAnswer(`setup PUT /admin/settings/${info.section} ${key}`, r.text ?? '', JSON.stringify(r.headers));
          if (r.status === 200) {
            set = true;
            break;
          }
        }
        if (!set) unset.push(`${info.section}.${key}`);
      }
    }
    if (unset.length) process.stdout.write(`spec fuzz: writeOnly settings keys not set (no accepted shape): ${unset.join(', ')}\n`);

    // Asset types named as the spec's examples name them, so example bodies refer to real things.
    const vdi = await must(
      api().post('/admin/asset-types').set(admin).send({
        name: 'Standard VDI',
        assignment_model: 'personal',
        attributes: [{ key: 'project_code', type: 'string' }, { key: 'cost_center', type: 'string' }],
        teams_webhook_url: `https://contoso.webhook.office.com/webhookb2/${secrets.make('asset type teams_webhook_url')}`,
      }),
      201,
    );
    const pool = await must(api().post('/admin/asset-types').set(admin).send({ name: 'Fuzz pool', assignment_model: 'capacity_pooled', pool_size: 50 }), 201);
    await must(
      api().post('/admin/asset-types').set(admin).send({ name: 'Approved seat', assignment_model: 'personal', requires_approval: true, fallback_approver: 'manager@example.com' }),
      201,
    );
    const doomedType = await must(api().post('/admin/asset-types').set(admin).send({ name: 'Fuzz doomed type', assignment_model: 'personal' }), 201);
    const asset = await must(api().post('/admin/assets').set(admin).send({ asset_type_id: pool['id'], name: 'FUZZ-001' }), 201);
    const doomedAsset = await must(api().post('/admin/assets').set(admin).send({ asset_type_id: pool['id'], name: 'FUZZ-DOOMED' }), 201);

    // Orders: one to read, and one pending approval each for approve and decline.
    const order = await must(api().post('/orders').set(admin).send({ asset_type_name: 'Standard VDI', user_email: 'reader@example.com', user_name: 'Reader' }), 201);
    const pendingOrder = async (user: string) => {
      const o = await must(api().post('/orders').set(admin).send({ asset_type_name: 'Approved seat', user_email: user, user_name: user }), 201);
      if (o['status'] !== 'pending_approval') throw new Error(`setup: order for ${user} is ${String(o['status'])}`);
      return o['id'] as number;
    };
    const toApprove = await pendingOrder('approve.me@example.com');
    const toDecline = await pendingOrder('decline.me@example.com');

    // Integration models and integrations, all at the loopback server; the invoked one in stub mode as well.
    const helloInventory = await readFile(join(__dirname, '..', 'fixtures', 'integration-models', 'hello-inventory.yaml'), 'utf8');
    await must(api().post('/admin/integration-models').set(admin).send({ document: helloInventory }), 201);
    const petstore = await must(
      api().post('/admin/integration-models').set(admin).send({ document: await readFile(join(__dirname, '..', 'fixtures', 'integration-models', 'petstore-3.0.yaml'), 'utf8') }),
      201,
    );
    const loopbackConfig = {
      server: { host: '127.0.0.1', port: loopback.port, base_path: '/api' },
      authentication: { type: 'bearer', token: secrets.make('integration bearer token') },
      timeout: 2000,
    };
    const integration = async (name: string, extra: Record<string, unknown> = {}) =>
      must(api().post('/admin/integrations').set(admin).send({ name, model_id: 'Hello Inventory:1.0.0', config: loopbackConfig, health: { operation_id: 'ping' }, ...extra }), 201);
    const invoked = await integration('fuzz-invoked', { stub_mode: true });
    const edited = await integration('fuzz-edited');
    const doomedIntegration = await integration('fuzz-doomed');
    const oauth = await integration('fuzz-oauth', {
      config: {
        ...loopbackConfig,
        authentication: {
          type: 'oauth2_authorization_code',
          client_id: 'fuzz-client',
          client_secret: secrets.make('integration oauth client_secret'),
          token_url: `${loopback.url}/token`,
          authorization_url: `${loopback.url}/auth`,
          redirect_uri: 'http://127.0.0.1/oauth/callback',
        },
      },
    });
    const authorize = await must(api().get(`/admin/integrations/${String(oauth['id'])}/oauth/authorize`).set(admin).set('Accept', 'application/json'), 200);
    const oauthState = new URL(String(authorize['authorization_url'])).searchParams.get('state') ?? '';
    const roles = await must(api().get(`/admin/integrations/${String(edited['id'])}/roles`).set(admin), 200);
    const roleName = String((roles['items'] as { name: string }[])[0]!.name);
    await must(api().put(`/admin/integrations/${String(edited['id'])}/roles/${encodeURIComponent(roleName)}/tokens/${String(reader['id'])}`).set(admin), 200);

    // Workflows: the schedule example's `vdi-pool-sweep` with four versions (its examples pin 3 and 4), and one
    // that waits to be resumed, run by the engine's workers only while the runs are set up.
    for (let v = 1; v <= 4; v++) {
      await must(api().post('/admin/workflows').set(admin).send({ name: 'vdi-pool-sweep', description: `v${v}`, steps: [{ id: 'pause', kind: 'wait', until: 'duration', incoming: { duration: '1s' } }] }), 201);
    }
    await must(api().post('/admin/workflows').set(admin).send({ name: 'Wait for me', steps: [{ id: 'approve', kind: 'wait', until: 'resumed', timeout: '1h' }] }), 201);
    const schedule = async (name: string, workflow: string) =>
      must(api().post('/admin/schedules').set(admin).send({ name, workflow, cron: '0 3 * * *', overlap_policy: 'allow', enabled: false }), 201);
    const mainSchedule = await schedule('fuzz-main', 'vdi-pool-sweep');
    const doomedSchedule = await schedule('fuzz-doomed', 'vdi-pool-sweep');
    const waitSchedule = await schedule('fuzz-wait', 'Wait for me');
    const waitingRun = async () => String((await must(api().post(`/admin/schedules/${String(waitSchedule['id'])}/trigger`).set(admin), 201))['run_id']);
    await wf.startWorkers({ teamSize: 1 });
    const [readRun, cancelRun, resumeRun, rerunRun] = [await waitingRun(), await waitingRun(), await waitingRun(), await waitingRun()];
    for (const id of [readRun, cancelRun, resumeRun, rerunRun]) await waitForRun(id!, ['waiting']);
    await must(api().post(`/admin/runs/${rerunRun!}/cancel`).set(admin), 200);
    await wf.stop();

    // Script modules: the spec example's name, at version 1.
    await must(api().post('/admin/script-modules').set(admin).send({ name: 'sccm.device-status', runtime: 'bash', body: 'echo "{}"' }), 201);

    // SCIM users and groups.
    const scimAuth = { ...bearer(tokens['scim:write']!), 'Content-Type': 'application/scim+json' };
    const scimUser = async (userName: string) =>
      must(
        api().post('/scim/v2/Users').set(scimAuth).send(JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName, emails: [{ value: userName, primary: true }], active: true })),
        201,
      );
    const user = await scimUser('fuzz.user@example.com');
    const doomedUser = await scimUser('fuzz.doomed@example.com');
    const scimGroup = async (displayName: string) =>
      must(api().post('/scim/v2/Groups').set(scimAuth).send(JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName, members: [{ value: user['id'] }] })), 201);
    const group = await scimGroup('Fuzz group');
    const doomedGroup = await scimGroup('Fuzz doomed group');

    const loopbackUrl = (b: unknown) => JSON.parse(JSON.stringify(b).replace(/https:\/\/saas\.example\.com/g, loopback.url)) as never;
    const atLoopback = (host: unknown) => {
      const b = structuredClone(host) as { config?: { server?: Record<string, unknown> }; server?: Record<string, unknown> };
      const server = b.config?.server ?? b.server;
      if (server) Object.assign(server, { protocol: 'http', host: '127.0.0.1', port: loopback.port });
      return b as never;
    };
    fixtures = {
      getApiToken: { path: { id: reader['id'] as number } },
      revokeApiToken: { path: { id: doomedToken['id'] as number } },
      getAssetType: { path: { id: vdi['id'] as number } },
      updateAssetType: { path: { id: pool['id'] as number } },
      deleteAssetType: { path: { id: doomedType['id'] as number } },
      listAssets: { query: { asset_type_id: pool['id'] as number } },
      createAssetType: { body: (s) => ({ ...(s as object), name: 'Fuzz created type' }) },
      createAsset: { body: (s) => ({ ...(s as object), asset_type_id: pool['id'] as number }) },
      getAsset: { path: { id: asset['id'] as number } },
      updateAsset: { path: { id: asset['id'] as number } },
      deleteAsset: { path: { id: doomedAsset['id'] as number } },
      approveOrder: { path: { id: toApprove } },
      declineOrder: { path: { id: toDecline } },
      getOrder: { path: { id: order['id'] as number } },
      listOrders: { query: { user: 'reader@example.com' } },
      saveWorkflow: { body: loopbackUrl },
      importWorkflow: { body: loopbackUrl },
      getWorkflow: { path: { name: 'vdi-pool-sweep' }, query: { version: 2 } },
      listWorkflowVersions: { path: { name: 'vdi-pool-sweep' } },
      exportWorkflow: { path: { name: 'vdi-pool-sweep' }, query: { version: 2 } },
      setWorkflowConcurrency: { path: { name: 'vdi-pool-sweep' } },
      listRuns: { query: { workflow: 'Wait for me', order_id: undefined } },
      getRun: { path: { id: readRun! } },
      cancelRun: { path: { id: cancelRun! } },
      rerunRun: { path: { id: rerunRun! }, body: { from: 'start' } },
      resumeRunStep: { path: { id: resumeRun!, stepId: 'approve' } },
      receiveGraphLeaverNotification: { query: { validationToken: undefined } },
      scimGetResourceType: { path: { name: 'User' } },
      scimGetSchema: { path: { uri: 'urn:ietf:params:scim:schemas:core:2.0:User' } },
      scimListUsers: { query: { filter: 'userName eq "fuzz.user@example.com"', startIndex: 1, count: 10, attributes: 'userName', excludedAttributes: undefined } },
      scimGetUser: { path: { id: String(user['id']) }, query: { attributes: 'userName', excludedAttributes: undefined } },
      scimReplaceUser: { path: { id: String(user['id']) }, body: (s) => ({ ...(s as object), userName: 'fuzz.user@example.com', active: true }) },
      scimPatchUser: { path: { id: String(user['id']) } },
      scimDeleteUser: { path: { id: String(doomedUser['id']) } },
      scimListGroups: { query: { filter: 'displayName eq "Fuzz group"', startIndex: 1, count: 10, attributes: 'displayName', excludedAttributes: undefined } },
      scimGetGroup: { path: { id: String(group['id']) }, query: { attributes: 'displayName', excludedAttributes: undefined } },
      scimReplaceGroup: { path: { id: String(group['id']) }, body: (s) => ({ ...(s as object), displayName: 'Fuzz group', members: [{ value: user['id'] as string }] }) },
      scimPatchGroup: { path: { id: String(group['id']) }, body: (s) => JSON.parse(JSON.stringify(s).replace(/2819c223-7f76-453a-919d-413861904646/g, String(user['id']))) as never },
      scimDeleteGroup: { path: { id: String(doomedGroup['id']) } },
      getScriptModule: { path: { name: 'sccm.device-status' } },
      getScriptModuleVersion: { path: { name: 'sccm.device-status', version: 1 } },
      getSchedule: { path: { id: String(mainSchedule['id']) } },
      updateSchedule: { path: { id: String(mainSchedule['id']) }, body: (s) => ({ ...(s as object), name: 'fuzz-main' }) },
      deleteSchedule: { path: { id: String(doomedSchedule['id']) } },
      listScheduleRuns: { path: { id: String(waitSchedule['id']) } },
      triggerSchedule: { path: { id: String(mainSchedule['id']) } },
      // The example document is our own fixture model at another version, so the valid upload is new.
      createIntegrationModel: { body: (s) => ({ document: String((s as { document: string }).document).replace('version: 1.0.0', 'version: 9.0.0') }) },
      getIntegrationModel: { path: { modelId: 'Hello Inventory:1.0.0' } },
      deleteIntegrationModel: { path: { modelId: String(petstore['id']) } },
      createIntegration: { body: atLoopback },
      getIntegration: { path: { id: invoked['id'] as number } },
      updateIntegration: { path: { id: edited['id'] as number } },
      deleteIntegration: { path: { id: doomedIntegration['id'] as number } },
      cloneIntegration: { path: { id: edited['id'] as number } },
      getIntegrationConfig: { path: { id: edited['id'] as number } },
      putIntegrationConfig: { path: { id: edited['id'] as number }, body: (s) => ({ ...(atLoopback(s) as object), authentication: { type: 'bearer', token: secrets.make('integration bearer token (put)') } }) },
      // The example's password is replaced by a distinctive one, which every mutation of the request carries too.
      updateSettings: { path: { section: 'smtp' }, body: (s) => ({ ...(s as object), password: secrets.make('smtp.password (fuzzed)') }) },
      setIntegrationLogLevel: { path: { id: edited['id'] as number } },
      listIntegrationTasks: { path: { id: invoked['id'] as number } },
      invokeIntegrationTask: { path: { id: invoked['id'] as number, operationId: 'getItem' } },
      checkIntegrationHealth: { path: { id: edited['id'] as number } },
      authorizeIntegrationOAuth: { path: { id: oauth['id'] as number } },
      completeIntegrationOAuth: { query: { state: oauthState, code: 'fuzz-code', error: undefined, error_description: undefined, iss: undefined } },
      listIntegrationRoles: { path: { id: edited['id'] as number } },
      grantIntegrationRole: { path: { id: edited['id'] as number, role: roleName, tokenId: doomedToken['id'] as number } },
      revokeIntegrationRole: { path: { id: edited['id'] as number, role: roleName, tokenId: reader['id'] as number } },
    };
  });

  afterAll(async () => {
    agent.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await wf?.stop();
    await base?.close();
    await loopback?.close();
  });

  /** The admin key where the operation accepts it, else a bearer token holding the scope it needs; none when public. */
  function credentialsFor(op: SpecOperation): Record<string, string> {
    if (op.security.length === 0) return {};
    if (op.security.some((r) => 'adminKey' in r)) return admin;
    const token = op.requiredScopes.map((s) => tokens[s]).find(Boolean);
    if (!token) throw new Error(`no credentials for ${op.operationId}`);
    return bearer(token);
  }

  test('every operation, valid and mutated: no 5xx, every 4xx a well-formed error, answered in time, healthy after', async () => {
    const out = (s: string) => process.stdout.write(`${s}\n`);
    out(`spec fuzz: seed ${SEED} (replay with FUZZ_SEED=${SEED}), ${ROUNDS} random rounds per operation, ${TIMEOUT_MS} ms bound per answer`);
    const started = performance.now();
    const described = describeOperations(spec, runOrder(operations)).filter((f) => !ONLY || ONLY.includes(f.op.operationId));
    const failures: string[] = [];
    const failureClasses = new Map<string, number>();
    const validNot2xx: string[] = [];
    let requests = 0;
    let slowest = { ms: 0, what: '' };

    const send = async (f: FuzzOperation, m: Mutation): Promise<FuzzAnswer> => {
      const a = await sendRaw(server, agent, m.request, TIMEOUT_MS);
      requests += 1;
      if (a.kind === 'answer') {
        const minted = f.op.operationId === 'createApiToken' && a.status === 201 ? (JSON.parse(a.text) as { token?: unknown; name?: unknown }) : undefined;
        // The answer that mints a token shows it, once; from then on it is a secret like the others.
        if (minted && typeof minted.token === 'string') secrets.add(`api token ${String(minted.name)} (minted by the fuzz)`, minted.token);
        else checkAnswer(`${f.op.operationId} — ${m.name}`, a.text, a.headerText);
      }
      if (TRACE) out(`${a.ms} ms ${a.kind === 'answer' ? a.status : 'none'} ${f.op.operationId} — ${m.name}: ${m.request.method} ${`${m.request.path}${m.request.query ? `?${m.request.query}` : ''}`.slice(0, 160)}`);
      if (a.ms > slowest.ms) slowest = { ms: a.ms, what: `${f.op.operationId} — ${m.name}` };
      const why = judgeAnswer(m.request, a);
      if (why) {
        failures.push(describeFailure(f.op.operationId, m, a, why));
        const cls = why.replace(/^(\d)\d\d is not/, '$1xx is not').replace(/^SCIM \d+/, 'SCIM 4xx').replace(/^5\d\d$/, '5xx').replace(/^2\d\d to/, '2xx to').replace(/: such text.*/, '').replace(/within \d+ ms/, 'within the bound');
        failureClasses.set(cls, (failureClasses.get(cls) ?? 0) + 1);
      }
      return a;
    };

    for (const f of described) {
      const seed = opSeed(f.op.operationId);
      const valid = validRequest(spec, f, fixtures[f.op.operationId] ?? {}, credentialsFor(f.op));
      const mutations = [...catalogueMutations(f, valid, base.config.bodyLimitBytes, seed), ...randomMutations(f, valid, seed, ROUNDS)];
      const validMutation: Mutation = { name: 'valid request', request: valid };
      // The valid request meets the resources as set up; a deletion's mutations meet the resource before it goes.
      const sequence =
        f.op.method === 'delete'
          ? [...mutations.filter((m) => !m.mayChangeState), validMutation, ...mutations.filter((m) => m.mayChangeState)]
          : [validMutation, ...mutations];
      for (const m of sequence) {
        const a = await send(f, m);
        if (m === validMutation && a.kind === 'answer' && a.status >= 400) validNot2xx.push(`${f.op.operationId} ${a.status} ${a.text.slice(0, 400)}`);
      }
    }

    // Healthy afterwards: liveness, and authenticated reads through both kinds of credentials.
    const health = await sendRaw(server, agent, { method: 'GET', path: '/healthz', query: '', headers: {} }, TIMEOUT_MS);
    const adminRead = await sendRaw(server, agent, { method: 'GET', path: '/admin/asset-types', query: '', headers: admin }, TIMEOUT_MS);
    const scimRead = await sendRaw(server, agent, { method: 'GET', path: '/scim/v2/Users', query: '', headers: bearer(tokens['scim:read']!) }, TIMEOUT_MS);
    const statusOf = (a: FuzzAnswer) => (a.kind === 'answer' ? a.status : a.error);

    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    out(`spec fuzz: ${described.length} operations, ${requests} requests in ${seconds} s; slowest answer ${slowest.ms} ms (${slowest.what})`);
    if (validNot2xx.length) out(`spec fuzz: valid requests answered 4xx (${validNot2xx.length}):\n  ${validNot2xx.join('\n  ')}`);
    if (failures.length) {
      out(`spec fuzz: ${failures.length} failures (seed ${SEED}) by class: ${[...failureClasses].map(([k, n]) => `${k}: ${n}`).join('; ')}`);
      out(failures.slice(0, 60).join('\n'));
      if (failures.length > 60) out(`… and ${failures.length - 60} more${REPORT ? ` (all in ${REPORT})` : '; FUZZ_REPORT=<file> writes them all'}`);
      if (REPORT) await writeFile(REPORT, `${failures.join('\n')}\n`);
    }
    // No secret set during the run in any log line (every service's, setup included).
    for (const line of captured.lines) for (const name of secrets.foundIn(line)) leaks.push(`${name} in the log line ${line.slice(0, 300)}`);
    out(`spec fuzz: ${secrets.size} secrets set, ${captured.lines.length} log lines; ${leaks.length} leaks`);
    if (leaks.length) out(leaks.slice(0, 40).join('\n'));
    expect({ healthz: statusOf(health), adminRead: statusOf(adminRead), scimRead: statusOf(scimRead) }).toEqual({ healthz: 200, adminRead: 200, scimRead: 200 });
    expect(failures).toEqual([]);
    expect(secrets.size).toBeGreaterThan(20);
    expect(leaks).toEqual([]);
  });
});
