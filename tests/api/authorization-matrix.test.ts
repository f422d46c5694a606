import { randomBytes } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import request from 'supertest';
import { createLogger } from '../../adapter';
import { buildApp } from '../../server/app';
import { ROLES, SCOPES } from '../../server/auth/principal';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import { createWorkflowRuntime, type WorkflowRuntime } from '../../server/domain/runbooks/workflow-runtime';
import { createTestApp, TEST_ADMIN_KEY, type TestApp } from '../support/app';
import { hubSignature } from '../support/orders';
import { CORE_USER, SCIM_ERROR, userBody } from '../support/scim';
import {
  declaredOutcome,
  fillPath,
  pathVariants,
  requestBodyOf,
  resolveSpecPath,
  walkSpec,
  type PathValues,
  type PathVariantName,
  type PresentedCredential,
  type SpecOperation,
} from '../support/spec-walk';

// The authorization matrix, generated from openapi/provisio.yaml: every operation × every credential (each role ×
// each single scope, the admin key, an HMAC signature, revoked, expired, unknown, malformed and missing
// credentials) answers the outcome its `security`, `x-required-scopes` and `x-allowed-roles` declare; every
// variant of every path (case, slashes, dot segments, percent-encoding) and every undeclared method addresses
// nothing it should not, and changes nothing.
//
// "Admitted" is observed without side effects: each matrix request carries an undeclared query parameter.
// Authentication runs before request validation (server/app.ts) and validation refuses undeclared query
// parameters, so an admitted request answers 400 naming the probe and no handler runs. The first test checks
// that this holds for every operation, so that a 400 in the matrix means "admitted" and nothing else.
//
// MATRIX_SEED=<n> replays an order; MATRIX_CONCURRENCY=<n> bounds the requests in flight (default 8);
// MATRIX_FAILURES=<file> appends every failure line to that file (a test's message lists the first 120 only).

const { spec, operations } = walkSpec();
const PROBE = 'matrix_probe';
const WEBHOOK_SECRET = 'matrix-webhook-secret';
const APPROVER_EMAIL = 'matrix-approver@example.com';
const SEED = process.env['MATRIX_SEED'] ? Number(process.env['MATRIX_SEED']) >>> 0 : randomBytes(4).readUInt32LE(0);
const CONCURRENCY = Math.max(1, Number(process.env['MATRIX_CONCURRENCY'] ?? 8));
/** Failures listed in full per test; the rest are counted. */
const MAX_LISTED = 120;

/** A credential of the matrix: what the spec sees (`presented`) and the headers that carry it. */
interface MatrixCredential {
  name: string;
  presented: PresentedCredential;
  /** Filled in `beforeAll`, once tokens exist; `body` is the exact request body, for signatures. */
  headers: (body: string) => Record<string, string>;
}

const ALL_SCOPES: readonly string[] = SCOPES;
const tokenName = (role: string | null, scope: string) => `matrix-${role ?? 'none'}-${scope.replace(':', '.').replace('*', 'all')}`;
const raw = new Map<string, string>(); // credential name → raw xpat_ token, once minted
const bearer = (name: string) => () => ({ Authorization: `Bearer ${raw.get(name)!}` });

const TOKEN_CREDENTIALS: MatrixCredential[] = [...ROLES, null].flatMap((role) =>
  SCOPES.map((scope) => {
    const name = `token:${role ?? 'none'}:${scope}`;
    return { name, presented: { kind: 'bearer', scopes: [scope], role }, headers: bearer(name) } satisfies MatrixCredential;
  }),
);
const CREDENTIALS: MatrixCredential[] = [
  ...TOKEN_CREDENTIALS,
  { name: 'admin-key', presented: { kind: 'adminKey' }, headers: () => ({ 'X-Admin-Key': TEST_ADMIN_KEY }) },
  { name: 'hmac', presented: { kind: 'hubSignature' }, headers: (body) => ({ 'X-Hub-Signature-256': hubSignature(body, WEBHOOK_SECRET) }) },
  // Revoked and expired tokens hold every scope and no role: if either were honoured, it would be admitted everywhere.
  { name: 'revoked-token', presented: { kind: 'invalid', scheme: 'bearerAuth' }, headers: bearer('revoked-token') },
  { name: 'expired-token', presented: { kind: 'invalid', scheme: 'bearerAuth' }, headers: bearer('expired-token') },
  { name: 'unknown-token', presented: { kind: 'invalid', scheme: 'bearerAuth' }, headers: bearer('unknown-token') },
  { name: 'bearer-not-xpat', presented: { kind: 'invalid', scheme: 'bearerAuth' }, headers: () => ({ Authorization: 'Bearer not-an-api-token' }) },
  { name: 'bearer-without-token', presented: { kind: 'invalid', scheme: 'bearerAuth' }, headers: () => ({ Authorization: 'Bearer' }) },
  { name: 'basic-auth', presented: { kind: 'invalid', scheme: 'bearerAuth' }, headers: () => ({ Authorization: 'Basic bWF0cml4Om1hdHJpeA==' }) },
  { name: 'admin-key-as-bearer', presented: { kind: 'invalid', scheme: 'bearerAuth' }, headers: () => ({ Authorization: `Bearer ${TEST_ADMIN_KEY}` }) },
  { name: 'admin-key-wrong', presented: { kind: 'invalid', scheme: 'adminKey' }, headers: () => ({ 'X-Admin-Key': 'not-the-admin-key' }) },
  { name: 'token-as-admin-key', presented: { kind: 'invalid', scheme: 'adminKey' }, headers: () => ({ 'X-Admin-Key': raw.get('token:superadmin:admin:*')! }) },
  { name: 'signature-wrong-secret', presented: { kind: 'invalid', scheme: 'hubSignature' }, headers: (body) => ({ 'X-Hub-Signature-256': hubSignature(body, 'not-the-secret') }) },
  { name: 'signature-malformed', presented: { kind: 'invalid', scheme: 'hubSignature' }, headers: () => ({ 'X-Hub-Signature-256': 'sha256=not-hex' }) },
  { name: 'missing', presented: { kind: 'none' }, headers: () => ({}) },
];
const credential = (name: string) => CREDENTIALS.find((c) => c.name === name)!;
const ADMIN_KEY = credential('admin-key');
const MISSING = credential('missing');

// ---------------------------------------------------------------------------------------------------------------
// Requests and expectations

interface Sent {
  status: number;
  body: unknown;
  allow: string | undefined;
}

/** What a response must be. */
type Expectation =
  /** Admitted by authentication, then refused by validation for the probe: 400 naming it (SCIM or problem+json). */
  | { kind: 'probe-refused' }
  /** Exactly this status, with the matching code (problem+json) or SCIM status; 405 also with `Allow`. */
  | { kind: 'status'; status: 401 | 403 | 404 | 405; allow?: string[] }
  /** A real request by an admitted credential: neither refused (401/403) nor a server error. */
  | { kind: 'not-refused' }
  /** Admitted to an operation it does not name (an encoded slash joined two segments): a 4xx, never 2xx, 401 or 403. */
  | { kind: 'client-error-not-auth' }
  /** The same status as the canonical request answered (SCIM trailing slash). */
  | { kind: 'same-as'; status: number };

const CODE: Record<number, string> = { 401: 'UNAUTHENTICATED', 403: 'FORBIDDEN', 404: 'NOT_FOUND', 405: 'METHOD_NOT_ALLOWED' };

const describeExpectation = (e: Expectation) => {
  switch (e.kind) {
    case 'probe-refused': return `admitted (400 naming ${PROBE})`;
    case 'status': return `${e.status}${e.allow ? ` Allow: ${e.allow.join(', ')}` : ''}`;
    case 'not-refused': return 'not 401/403/5xx';
    case 'client-error-not-auth': return 'a 4xx other than 401/403';
    case 'same-as': return `${e.status} (as the canonical path)`;
  }
};

/** Why `res` does not meet `e`, or undefined when it does. */
function mismatch(e: Expectation, res: Sent, method: string): string | undefined {
  const body = (res.body ?? {}) as Record<string, unknown>;
  const text = JSON.stringify(res.body ?? '');
  const isScim = Array.isArray(body['schemas']) && (body['schemas'] as unknown[]).includes(SCIM_ERROR);
  switch (e.kind) {
    case 'probe-refused': {
      if (res.status !== 400) return 'status';
      if (isScim ? body['status'] !== '400' : body['code'] !== 'BAD_REQUEST') return 'body is neither a SCIM 400 nor a BAD_REQUEST problem';
      return text.includes(PROBE) ? undefined : `the 400 does not name ${PROBE}: the probe may not be what was refused`;
    }
    case 'status': {
      if (res.status !== e.status) return 'status';
      // HEAD answers carry no body.
      if (method !== 'HEAD' && (isScim ? body['status'] !== String(e.status) : body['code'] !== CODE[e.status])) {
        return `body is neither a SCIM ${e.status} nor a ${CODE[e.status]} problem`;
      }
      if (e.allow) {
        const got = (res.allow ?? '').split(',').map((m) => m.trim().toUpperCase()).filter(Boolean).sort();
        if (got.join(',') !== e.allow.join(',')) return `Allow header is "${res.allow ?? ''}"`;
      }
      return undefined;
    }
    case 'not-refused':
      return res.status === 401 || res.status === 403 || res.status >= 500 ? 'status' : undefined;
    case 'client-error-not-auth':
      // A changed approval-link token is a link that does not verify (403 LINK_INVALID), not a refused credential.
      if (res.status === 403 && body['code'] === 'LINK_INVALID') return undefined;
      return res.status >= 400 && res.status < 500 && res.status !== 401 && res.status !== 403 ? undefined : 'status';
    case 'same-as':
      return res.status === e.status ? undefined : 'status';
  }
}

let t: TestApp;
let workflows: WorkflowRuntime;
let server: Server;
let requests = 0;
const counts: Record<string, number> = {};
const started = Date.now();

/** Sends one request with the path exactly as given (no normalisation), a JSON body when the operation takes one. */
async function send(method: string, path: string, cred: MatrixCredential, op?: SpecOperation): Promise<Sent> {
  requests++;
  const rb = op && method.toLowerCase() === op.method ? requestBodyOf(spec, op) : undefined;
  const body = rb ? '{}' : '';
  const m = method.toLowerCase() as 'get';
  let req = request(server)[m](path).set(cred.headers(body));
  // `{}` rarely satisfies the schema; with the probe the error is then not body-only, so still a 400 naming it.
  if (rb) req = req.set('Content-Type', rb.contentTypes.find((c) => c.includes('json')) ?? rb.contentTypes[0]!).send(body);
  const res = await req;
  return { status: res.status, body: res.body as unknown, allow: res.headers['allow'] as string | undefined };
}

interface Case {
  /** operation × credential × variant, as a failure names it */
  label: string;
  method: string;
  /** Resolved at run time: path values come from resources made in `beforeAll`. */
  path: () => string;
  cred: MatrixCredential;
  op?: SpecOperation;
  expect: (() => Promise<Expectation>) | Expectation;
}

const opLabel = (op: SpecOperation) => `${op.method.toUpperCase()} ${op.path} (${op.operationId})`;

/** A seeded PRNG (mulberry32), so that a failing order can be replayed with MATRIX_SEED. */
function shuffled<T>(items: T[], seed: number): T[] {
  let a = seed;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Runs `cases` with at most CONCURRENCY in flight; throws one error listing every mismatch. */
async function runCases(phase: string, cases: Case[]): Promise<void> {
  const order = shuffled(cases, SEED);
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < order.length) {
      const c = order[next++]!;
      const path = c.path();
      try {
        const expected = typeof c.expect === 'function' ? await c.expect() : c.expect;
        const res = await send(c.method, path, c.cred, c.op);
        const why = mismatch(expected, res, c.method);
        if (why) {
          const detail = JSON.stringify(res.body ?? '').slice(0, 160);
          failures.push(`${c.label} × ${c.cred.name} — ${c.method} ${path}: expected ${describeExpectation(expected)}, got ${res.status} (${why}) ${detail}`);
        }
      } catch (err) {
        failures.push(`${c.label} × ${c.cred.name} — ${c.method} ${path}: request failed: ${String(err)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  counts[phase] = cases.length;
  if (failures.length) {
    failures.sort();
    const file = process.env['MATRIX_FAILURES'];
    if (file) await appendFile(file, failures.map((f) => `${phase}: ${f}\n`).join(''));
    const listed = failures.slice(0, MAX_LISTED).join('\n');
    const more = failures.length > MAX_LISTED ? `\n… and ${failures.length - MAX_LISTED} more` : '';
    throw new Error(`${phase}: ${failures.length} of ${cases.length} requests did not answer as declared (MATRIX_SEED=${SEED}):\n${listed}${more}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Real resources for path parameters: the real GETs read them, the variants aim at them (and must leave them be).

const values: Record<string, string | number> = {
  section: 'smtp',
  stepId: 'wait',
  '/scim/v2/ResourceTypes/{name}': 'User',
  '/scim/v2/Schemas/{uri}': CORE_USER,
  '/admin/workflows/{name}': 'matrix-wf',
  '/admin/script-modules/{name}': 'matrix.mod',
  version: 1,
  '/admin/integration-models/{modelId}': 'Hello Inventory:1.0.0',
  operationId: 'listItems',
  role: 'matrix-role',
};
const pathOf = (op: SpecOperation) => fillPath(op.path, values as PathValues);
const probed = (op: SpecOperation) => `${pathOf(op)}?${PROBE}=1`;

/** The resources the variants aim at, read back at the end: each must still be there, unchanged. */
const targets: { label: string; path: string; cred: () => MatrixCredential; check?: (body: Record<string, unknown>) => string | undefined }[] = [];

async function ok(res: request.Response, status: number, what: string): Promise<Record<string, unknown>> {
  if (res.status !== status) throw new Error(`setup: ${what} answered ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as Record<string, unknown>;
}

beforeAll(async () => {
  t = await createTestApp({ webhookSecretToken: WEBHOOK_SECRET });
  // createTestApp's app runs no workflow engine, so the workflow and run operations would answer 501 to every real
  // request. The same database, queue and config with an engine (no workers: nothing runs) let them answer for real.
  const logger = createLogger({ silent: !process.env['TEST_LOGS'] });
  workflows = createWorkflowRuntime({ db: t.db, queue: t.queue, logger, integrations: t.integrations });
  const app = buildApp({ db: t.db, queue: t.queue, logger, workflowEngine: workflows.engine, integrations: t.integrations, linkSigner: t.linkSigner, adminKeyHash: async () => hashSecret(TEST_ADMIN_KEY) }, t.config);
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const admin = () => request(server).post('/admin/api-tokens').set(t.admin);

  // Every role × every single scope, minted through the admin API with the admin key.
  await Promise.all(
    TOKEN_CREDENTIALS.map(async (c) => {
      if (c.presented.kind !== 'bearer') return;
      const { role, scopes } = c.presented;
      const body = await ok(
        await admin().send({ name: tokenName(role, scopes[0]!), scopes, role, ...(role === 'approver' ? { approver_email: APPROVER_EMAIL } : {}) }),
        201,
        `minting ${c.name}`,
      );
      raw.set(c.name, body['token'] as string);
    }),
  );
  const revoked = await ok(await admin().send({ name: 'matrix-revoked', scopes: ALL_SCOPES }), 201, 'minting the revoked token');
  await ok(await request(server).delete(`/admin/api-tokens/${revoked['id'] as number}`).set(t.admin), 200, 'revoking');
  raw.set('revoked-token', revoked['token'] as string);
  const expired = await ok(await admin().send({ name: 'matrix-expired', scopes: ALL_SCOPES }), 201, 'minting the expired token');
  await t.db.query(`UPDATE api_tokens SET expires_at = now() - interval '1 minute' WHERE id = $1`, [expired['id']]);
  raw.set('expired-token', expired['token'] as string);
  raw.set('unknown-token', `xpat_${randomBytes(32).toString('base64url')}`);

  // The resources behind the path parameters.
  const post = (path: string, body: unknown) => request(server).post(path).set(t.admin).send(body as object);
  const victim = await ok(await admin().send({ name: 'matrix-victim', scopes: ['admin:read'] }), 201, 'minting the victim token');
  values['/admin/api-tokens/{id}'] = victim['id'] as number;
  values['tokenId'] = victim['id'] as number;
  const type = await ok(await post('/admin/asset-types', { name: 'Matrix seat', assignment_model: 'personal' }), 201, 'asset type');
  values['/admin/asset-types/{id}'] = type['id'] as number;
  const pool = await ok(await post('/admin/asset-types', { name: 'Matrix pool', assignment_model: 'capacity_pooled' }), 201, 'pooled type');
  const asset = await ok(await post('/admin/assets', { asset_type_id: pool['id'], name: 'MATRIX-1' }), 201, 'asset');
  values['/admin/assets/{id}'] = asset['id'] as number;
  const order = await ok(await post('/orders', { asset_type_name: 'Matrix seat', user_email: 'matrix.user@example.com', user_name: 'matrix.user' }), 201, 'order');
  values['/orders/{id}'] = order['id'] as number;
  const delegation = await ok(
    await post('/approvals/delegations', { approver_email: 'matrix.approver@example.com', deputy_email: 'matrix.deputy@example.com', ends_at: new Date(Date.now() + 86_400_000).toISOString() }),
    201,
    'delegation',
  );
  values['/approvals/delegations/{id}'] = delegation['id'] as number;
  // An order waiting for approval: its approval's mailed links (a real signed token) and its queued mail (an outbox row).
  await ok(
    await post('/admin/asset-types', { name: 'Matrix approved seat', assignment_model: 'personal', requires_approval: true, fallback_approver: 'matrix.boss@example.com' }),
    201,
    'approval type',
  );
  await ok(await post('/orders', { asset_type_name: 'Matrix approved seat', user_email: 'matrix.user@example.com', user_name: 'matrix.user' }), 201, 'order needing approval');
  const mail = (await t.db.query<{ id: string; ref: string }>(
    `SELECT id::text AS id, data->'links'->>'approve' AS ref FROM outbox WHERE template = 'approval_request' ORDER BY id DESC LIMIT 1`,
  )).rows[0]!;
  values['/admin/outbox/{id}'] = Number(mail.id);
  values['/approvals/links/{token}'] = t.linkSigner.url(mail.ref).split('/approvals/links/')[1]!;
  await ok(await post('/admin/workflows', { name: 'matrix-wf', steps: [{ id: 'wait', kind: 'wait', until: 'resumed', timeout: '10m' }] }), 201, 'workflow');
  const run = await t.db.transaction((tx) => workflows.engine.startRun(tx, { workflow: 'matrix-wf', createdBy: 'system:test' }));
  values['/admin/runs/{id}'] = run.id;
  await ok(await post('/admin/script-modules', { name: 'matrix.mod', runtime: 'bash', body: 'echo {}', category: 'matrix' }), 201, 'script module');
  const schedule = await ok(await post('/admin/schedules', { name: 'matrix-schedule', workflow: 'matrix-wf', cron: '0 0 1 1 *' }), 201, 'schedule');
  values['/admin/schedules/{id}'] = schedule['id'] as string;
  const document = await readFile(join(__dirname, '..', 'fixtures', 'integration-models', 'hello-inventory.yaml'), 'utf8');
  await ok(await post('/admin/integration-models', { document }), 201, 'integration model');
  const integration = await ok(
    await post('/admin/integrations', { name: 'matrix-int', model_id: 'Hello Inventory:1.0.0', config: { server: { host: '127.0.0.1', port: 9 } } }),
    201,
    'integration',
  );
  values['/admin/integrations/{id}'] = integration['id'] as number;
  const scimWriter = credential('token:none:scim:write').headers('');
  const scim = (path: string, body: unknown) =>
    request(server).post(path).set(scimWriter).set('Content-Type', 'application/scim+json').send(JSON.stringify(body));
  const user = await ok(await scim('/scim/v2/Users', userBody('matrix.scim@example.com')), 201, 'SCIM user');
  values['/scim/v2/Users/{id}'] = user['id'] as string;
  const group = await ok(await scim('/scim/v2/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Matrix group' }), 201, 'SCIM group');
  values['/scim/v2/Groups/{id}'] = group['id'] as string;

  const scimReader = () => credential('token:none:scim:read');
  targets.push(
    { label: 'the victim token', path: `/admin/api-tokens/${victim['id'] as number}`, cred: () => ADMIN_KEY, check: (b) => (b['status'] === 'active' ? undefined : `status ${String(b['status'])}`) },
    { label: 'the asset type', path: `/admin/asset-types/${type['id'] as number}`, cred: () => ADMIN_KEY },
    { label: 'the asset', path: `/admin/assets/${asset['id'] as number}`, cred: () => ADMIN_KEY, check: (b) => (b['state'] === asset['state'] ? undefined : `state ${String(b['state'])}`) },
    { label: 'the order', path: `/orders/${order['id'] as number}`, cred: () => ADMIN_KEY, check: (b) => (b['status'] === order['status'] ? undefined : `status ${String(b['status'])}`) },
    { label: 'the workflow', path: '/admin/workflows/matrix-wf', cred: () => ADMIN_KEY },
    { label: 'the script module', path: '/admin/script-modules/matrix.mod', cred: () => ADMIN_KEY },
    { label: 'the schedule', path: `/admin/schedules/${schedule['id'] as string}`, cred: () => ADMIN_KEY, check: (b) => (b['enabled'] === schedule['enabled'] ? undefined : `enabled ${String(b['enabled'])}`) },
    { label: 'the integration model', path: `/admin/integration-models/${encodeURIComponent('Hello Inventory:1.0.0')}`, cred: () => ADMIN_KEY },
    { label: 'the integration', path: `/admin/integrations/${integration['id'] as number}`, cred: () => ADMIN_KEY },
    { label: 'the SCIM user', path: `/scim/v2/Users/${user['id'] as string}`, cred: scimReader, check: (b) => (b['active'] === true ? undefined : `active ${String(b['active'])}`) },
    { label: 'the SCIM group', path: `/scim/v2/Groups/${group['id'] as string}`, cred: scimReader },
  );
}, 120_000);

afterAll(async () => {
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const phases = Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ');
  console.log(
    `authorization matrix: ${operations.length} operations, ${CREDENTIALS.length} credentials (${TOKEN_CREDENTIALS.length} role × scope tokens), ` +
      `${requests} requests (${phases}) in ${seconds} s, MATRIX_SEED=${SEED}`,
  );
  await new Promise((resolve) => server?.close(resolve));
  await workflows?.stop();
  await t?.close();
});

// ---------------------------------------------------------------------------------------------------------------
// The cases, generated from the spec at start-up

/** A credential the operation admits, preferring the admin key, then a signature, then a role-less token. */
function admittingCredential(op: SpecOperation): MatrixCredential {
  const found = [ADMIN_KEY, credential('hmac'), ...TOKEN_CREDENTIALS.filter((c) => c.name.startsWith('token:none:')), ...TOKEN_CREDENTIALS, MISSING].find(
    (c) => declaredOutcome(op, c.presented) === 'admitted',
  );
  if (!found) throw new Error(`no credential of the matrix is admitted to ${opLabel(op)}`);
  return found;
}

const expectationOf = (outcome: 'admitted' | 401 | 403): Expectation => (outcome === 'admitted' ? { kind: 'probe-refused' } : { kind: 'status', status: outcome });

const probeCases: Case[] = operations.map((op) => ({
  label: opLabel(op),
  method: op.method.toUpperCase(),
  path: () => probed(op),
  cred: admittingCredential(op),
  op,
  expect: { kind: 'probe-refused' },
}));

const matrixCases: Case[] = operations.flatMap((op) =>
  CREDENTIALS.map((cred) => ({
    label: opLabel(op),
    method: op.method.toUpperCase(),
    path: () => probed(op),
    cred,
    op,
    expect: expectationOf(declaredOutcome(op, cred.presented)),
  })),
);
// A trailing slash on a SCIM path is the same operation (server/scim/log.ts strips it first), so it is
// authenticated exactly as the canonical path: every credential but the role-bound tokens (SCIM is not role-gated).
const scimSlashCases: Case[] = operations
  .filter((op) => op.path.startsWith('/scim/'))
  .flatMap((op) =>
    CREDENTIALS.filter((c) => !c.name.startsWith('token:') || c.name.startsWith('token:none:')).map((cred) => ({
      label: `${opLabel(op)} × trailing-slash`,
      method: op.method.toUpperCase(),
      path: () => `${pathOf(op)}/?${PROBE}=1`,
      cred,
      op,
      expect: expectationOf(declaredOutcome(op, cred.presented)),
    })),
  );

const realGetCases: Case[] = operations
  .filter((op) => op.method === 'get')
  .flatMap((op) =>
    CREDENTIALS.filter((cred) => declaredOutcome(op, cred.presented) === 'admitted').map((cred) => ({
      label: `${opLabel(op)} × real`,
      method: 'GET',
      path: () => pathOf(op),
      cred,
      op,
      expect: { kind: 'not-refused' } as Expectation,
    })),
  );

// The variants are real requests (no probe): one that reached a handler would act, which the last test looks for.
// Their names are known at start-up from the templates; their paths need the resources' ids, so both the path and
// the expectation are worked out when the case runs.
/** What a variant must answer, by the spec alone; the SCIM trailing slash answers as its canonical path does. */
function pathVariantCase(op: SpecOperation, name: PathVariantName, cred: MatrixCredential): Case {
  const method = op.method.toUpperCase();
  const variant = () => pathVariants(op.path, pathOf(op)).find((v) => v.name === name)!;
  return {
    label: `${opLabel(op)} × ${name}`,
    method,
    path: () => variant().path,
    cred,
    op,
    expect: async () => {
      const v = variant();
      if (v.sameAsCanonical) return { kind: 'same-as', status: (await send(method, pathOf(op), cred, op)).status };
      const resolved = resolveSpecPath(operations, method, v.path);
      if (resolved.kind === 'no_route') return { kind: 'status', status: 404 };
      if (resolved.kind === 'method_not_allowed') return { kind: 'status', status: 405, allow: resolved.allow };
      const outcome = declaredOutcome(resolved.operation, cred.presented);
      return outcome === 'admitted' ? { kind: 'client-error-not-auth' } : { kind: 'status', status: outcome };
    },
  };
}
const pathVariantCases: Case[] = operations.flatMap((op) =>
  pathVariants(op.path, fillPath(op.path, {}, { spec, op })).flatMap((v) => [ADMIN_KEY, MISSING].map((cred) => pathVariantCase(op, v.name, cred))),
);

// Each path once: HEAD, OPTIONS and a method no template matching the path declares, with and without credentials.
const methodVariantCases: Case[] = [...new Map(operations.map((op) => [op.path, op])).values()].flatMap((op) => {
  const sample = fillPath(op.path, {}, { spec, op });
  const undeclared = ['PUT', 'PATCH', 'DELETE', 'POST', 'GET'].find((m) => resolveSpecPath(operations, m, sample).kind === 'method_not_allowed');
  return ['HEAD', 'OPTIONS', ...(undeclared ? [undeclared] : [])].flatMap((method) =>
    [ADMIN_KEY, MISSING].map((cred) => ({
      label: `${op.path} × ${method}`,
      method,
      path: () => pathOf(op),
      cred,
      expect: async () => {
        const resolved = resolveSpecPath(operations, method, pathOf(op));
        return resolved.kind === 'method_not_allowed' ? { kind: 'status', status: 405, allow: resolved.allow } : { kind: 'status', status: 404 };
      },
    } satisfies Case)),
  );
});

// ---------------------------------------------------------------------------------------------------------------

describe(`authorization matrix (MATRIX_SEED=${SEED})`, () => {
  let auditMark: number | undefined;

  test(`the probe ?${PROBE}=1 is refused by validation, after authentication, on all ${operations.length} operations`, async () => {
    await runCases('probe check', probeCases);
  }, 120_000);

  test(`${operations.length} operations × ${CREDENTIALS.length} credentials answer as their security, scopes and roles declare`, async () => {
    await runCases('matrix', [...matrixCases, ...scimSlashCases]);
  }, 300_000);

  test(`real GET requests by every admitted credential are not refused (${realGetCases.length} requests)`, async () => {
    await runCases('real GETs', realGetCases);
  }, 300_000);

  test(`path variants address nothing the spec does not (${pathVariantCases.length} requests)`, async () => {
    auditMark = Number((await t.db.query<{ id: string }>('SELECT coalesce(max(id), 0) AS id FROM audit_log')).rows[0]!.id);
    await runCases('path variants', pathVariantCases);
  }, 300_000);

  test(`undeclared methods answer 405 with Allow, before authentication (${methodVariantCases.length} requests)`, async () => {
    auditMark ??= Number((await t.db.query<{ id: string }>('SELECT coalesce(max(id), 0) AS id FROM audit_log')).rows[0]!.id);
    await runCases('method variants', methodVariantCases);
  }, 120_000);

  test('the variants changed nothing: every targeted resource is in place and nothing was audited', async () => {
    const problems: string[] = [];
    for (const target of targets) {
      const res = await send('GET', target.path, target.cred());
      const body = res.body as Record<string, unknown>;
      const why = res.status !== 200 ? `answers ${res.status}` : target.check?.(body);
      if (why) problems.push(`${target.label} (${target.path}) ${why}`);
    }
    if (auditMark !== undefined) {
      const { rows } = await t.db.query<{ entity: string; action: string; triggered_by: string }>(
        'SELECT entity, action, triggered_by FROM audit_log WHERE id > $1 ORDER BY id',
        [auditMark],
      );
      for (const r of rows) problems.push(`audited during the variants: ${r.entity} ${r.action} by ${r.triggered_by}`);
    }
    expect(problems).toEqual([]);
  });
});
