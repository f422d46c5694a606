/**
 * Microsoft Teams: an approval request reaches a Teams incoming webhook (a loopback HTTPS server under a private CA
 * stands in for it) as an Adaptive Card that validates against Microsoft's Adaptive Cards 1.4.0 JSON schema, with
 * Approve / Decline buttons that open the approver's signed links (the Approve one is followed and decides the
 * order). The webhook URL is write-only in the settings and the asset type API, refused unless https (422 naming the
 * field), and never in a log line, audit row, outbox row or response. A receiver that is down, or Teams' 200 that
 * says the delivery failed, leaves the card queued and retried; nothing is lost. PGlite and PostgreSQL.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { pemToDataUrl } from '../../adapter';
import {
  createOutboxWorker,
  createTeamsSender,
  plainCardText,
  renderTeamsMessage,
  type OutboxWorker,
  type TeamsApprovalCardData,
  type TeamsMessage,
} from '../../server/domain/notifications';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { createMemoryLogger } from '../support/memory-logger';
import { mintTestToken } from '../support/orders';
import { createCa, issueServerCert } from '../support/pki';

jest.setTimeout(60_000);

const PUBLIC_URL = 'https://provisio.example.test';
const APPROVER = 'boss@example.com';
// What Chromium sends when it opens a page: the link pages answer HTML to it.
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The Adaptive Cards 1.4.0 schema, vendored (tests/fixtures/adaptive-cards/README.md says from where and why `$id`). */
function compileCardSchema(): ValidateFunction {
  const raw = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'adaptive-cards', 'adaptive-card-1.4.0.json'), 'utf8')) as Record<string, unknown>;
  const { id, ...rest } = raw;
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  ajv.addMetaSchema(JSON.parse(readFileSync(require.resolve('ajv/dist/refs/json-schema-draft-06.json'), 'utf8')) as object);
  return ajv.compile({ ...rest, $id: String(id) });
}
const validateCard = compileCardSchema();

/** A Teams-shaped webhook path: the hex segment is the signature that must never leak. */
function webhookPath(signature: string): string {
  return `/webhookb2/${randomUUID()}@${randomUUID()}/IncomingWebhook/${signature}/${randomUUID()}`;
}

type Mode = 'ok' | 'throttled' | 'rejected';

interface Receiver {
  port: number;
  /** Bodies received, with their path. */
  received: { path: string; contentType: string | undefined; body: string }[];
  mode: Mode;
  start(port?: number): Promise<void>;
  stop(): Promise<void>;
}

/** The stand-in for Teams: answers `1` as a classic webhook does, or Teams' 200-with-error, or a 400. */
function teamsReceiver(cert: { certPem: string; keyPem: string }): Receiver {
  let server: https.Server | undefined;
  const r: Receiver = {
    port: 0,
    received: [],
    mode: 'ok',
    async start(port = 0) {
      server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          r.received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') });
          if (r.mode === 'throttled') {
            // What Teams' classic webhooks answer when throttled: a 200 (connectors-using.md, rate limiting).
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end('Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId MS-CV=abc.0');
          } else if (r.mode === 'rejected') {
            res.writeHead(400, { 'content-type': 'text/plain' });
            res.end('Summary or Text is required.');
          } else {
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end('1');
          }
        });
      });
      await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
      r.port = (server.address() as AddressInfo).port;
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
  return r;
}

describe(`Teams approval cards (${testEngine})`, () => {
  let t: TestApp;
  let writer: string;
  let worker: OutboxWorker;
  let globalTypeId: number;
  let ownTypeId: number;
  const memory = createMemoryLogger();
  const ca = createCa('Corp Teams Proxy CA');
  const receiver = teamsReceiver(issueServerCert(ca));
  const GLOBAL_SIG = randomBytes(16).toString('hex');
  const TYPE_SIG = randomBytes(16).toString('hex');
  const globalPath = webhookPath(GLOBAL_SIG);
  const typePath = webhookPath(TYPE_SIG);
  const url = (path: string) => `https://127.0.0.1:${receiver.port}${path}`;

  const outboxRow = async (id: number) =>
    (await t.db.query<Record<string, unknown>>(`SELECT * FROM outbox WHERE id = $1`, [id])).rows[0]!;
  /** The Teams row of an order's approval request. */
  const teamsRowOf = async (orderId: number) => {
    const { rows } = await t.db.query<{ id: string }>(
      `SELECT id FROM outbox WHERE channel = 'teams' AND template = 'approval_request' AND (data->>'order_id')::bigint = $1`,
      [orderId],
    );
    expect(rows).toHaveLength(1);
    return Number(rows[0]!.id);
  };
  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  }
  const rowIn = (id: number, ok: (r: Record<string, unknown>) => boolean) =>
    until(`outbox row ${id}`, async () => {
      const r = await outboxRow(id);
      return ok(r) ? r : undefined;
    });
  const cardAt = (path: string, orderId: number) =>
    until(`a card for order ${orderId} at the webhook`, async () => {
      const hit = receiver.received.find((r) => r.path === path && r.body.includes(`order #${orderId}`));
      return hit ? { ...hit, message: JSON.parse(hit.body) as TeamsMessage } : undefined;
    });

  async function order(typeName: string, user: string, name: string, justification?: string): Promise<number> {
    const res = await t.http().post('/orders').set('Authorization', `Bearer ${writer}`)
      .send({ asset_type_name: typeName, user_email: user, user_name: name, ...(justification ? { config: { justification } } : {}) });
    expect({ status: res.status, order_status: res.body.status }).toEqual({ status: 201, order_status: 'pending_approval' });
    return res.body.id as number;
  }

  const putTeams = (body: Record<string, unknown>) => t.http().put('/admin/settings/teams').set(t.admin).send(body);
  const typeBody = (name: string) => ({
    name, assignment_model: 'personal', requires_approval: true, fallback_approver: APPROVER, monthly_cost: 19.9, currency: 'EUR',
    attributes: [{ key: 'justification', type: 'string', required: false, help: 'Why you need it' }],
  });

  beforeAll(async () => {
    await receiver.start();
    t = await createTestApp({ publicUrl: PUBLIC_URL });
    writer = await mintTestToken(t.db, 'writer', ['orders:write']);
    // Cards go out over the webhooks connection: trust the private CA, and log every line of the call (debug).
    const conn = await t.http().put('/admin/settings/webhooks').set(t.admin).send({ mtls: { ca: pemToDataUrl(ca.certPem) }, logging: { level: 'debug' } });
    expect(conn.status).toBe(200);
    const a = await t.http().post('/admin/asset-types').set(t.admin).send(typeBody('Teams seat'));
    expect(a.status).toBe(201);
    globalTypeId = a.body.id as number;
    worker = createOutboxWorker({
      db: t.db,
      queue: t.queue,
      logger: memory.logger,
      publicUrl: PUBLIC_URL,
      linkUrl: (ref) => t.linkSigner.url(ref),
      senders: {
        teams: createTeamsSender({ db: t.db, logger: memory.logger, timeoutMs: 5_000 }),
        // The approval mails are not under test here (tests/integration/mail-outbox.test.ts has them).
        mail: async () => ({ response: '250 not under test' }),
      },
      retry: { baseDelaySeconds: 1, maxDelaySeconds: 1, maxAttempts: 30 },
      pollingIntervalSeconds: 0.5,
    });
    await worker.register();
  });

  afterAll(async () => {
    await worker?.stop();
    await t?.close();
    await receiver.stop();
  });

  test('settings: teams.webhook_url must be an https URL (422 naming the field, never echoing it); stored write-only', async () => {
    const bad = [
      { value: `http://127.0.0.1:${receiver.port}${globalPath}`, message: /https/ },
      { value: `https://someone:${GLOBAL_SIG}@127.0.0.1${globalPath}`, message: /user name or password/ },
      { value: `https://127.0.0.1/${GLOBAL_SIG} x`, message: /whitespace/ },
      { value: 'https://', message: /.+/ },
    ];
    for (const b of bad) {
      const res = await putTeams({ webhook_url: b.value });
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 422, code: 'VALIDATION_FAILED' });
      expect(res.body.errors).toEqual([{ path: '/body/webhook_url', message: expect.stringMatching(b.message) }]);
      expect(JSON.stringify(res.body)).not.toContain(GLOBAL_SIG);
    }
    const put = await putTeams({ webhook_url: url(globalPath) });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ section: 'teams', values: {}, secrets: { webhook_url: { configured: true } } });
    const read = await t.http().get('/admin/settings/teams').set(t.admin);
    expect(read.body.secrets).toEqual({ webhook_url: { configured: true } });
    expect(JSON.stringify([put.body, read.body])).not.toContain(GLOBAL_SIG);
    const audit = await t.db.query(`SELECT diff FROM audit_log WHERE entity = 'settings' AND entity_id = 'teams'`);
    expect(JSON.stringify(audit.rows)).toContain('webhook_url');
    expect(JSON.stringify(audit.rows)).not.toContain(GLOBAL_SIG);
  });

  test('asset type API: teams_webhook_url is write-only (responses say only configured), 422 naming it unless https', async () => {
    const created = await t.http().post('/admin/asset-types').set(t.admin).send({ ...typeBody('Teams seat (own channel)'), teams_webhook_url: url(typePath) });
    expect(created.status).toBe(201);
    ownTypeId = created.body.id as number;
    expect(created.body.teams_webhook).toEqual({ configured: true });
    expect(created.body).not.toHaveProperty('teams_webhook_url');

    const spec = await t.http().patch(`/admin/asset-types/${ownTypeId}`).set(t.admin).send({ teams_webhook_url: `http://127.0.0.1${typePath}` });
    expect({ status: spec.status, errors: spec.body.errors }).toEqual({ status: 422, errors: [expect.objectContaining({ path: '/body/teams_webhook_url' })] });
    const creds = await t.http().patch(`/admin/asset-types/${ownTypeId}`).set(t.admin).send({ teams_webhook_url: `https://u:p@127.0.0.1${typePath}` });
    expect({ status: creds.status, errors: creds.body.errors }).toEqual({
      status: 422,
      errors: [{ path: '/body/teams_webhook_url', message: 'must not carry a user name or password' }],
    });
    const badCreate = await t.http().post('/admin/asset-types').set(t.admin).send({ ...typeBody('Never created'), teams_webhook_url: 'https://' });
    expect({ status: badCreate.status, path: badCreate.body.errors?.[0]?.path }).toEqual({ status: 422, path: '/body/teams_webhook_url' });
    expect((await t.db.query(`SELECT 1 FROM asset_types WHERE name = 'Never created'`)).rows).toHaveLength(0);

    // Cleared and set again: the flag follows; each change is audited without the value.
    const cleared = await t.http().patch(`/admin/asset-types/${ownTypeId}`).set(t.admin).send({ teams_webhook_url: null });
    expect({ status: cleared.status, teams_webhook: cleared.body.teams_webhook }).toEqual({ status: 200, teams_webhook: { configured: false } });
    const set = await t.http().patch(`/admin/asset-types/${ownTypeId}`).set(t.admin).send({ teams_webhook_url: url(typePath) });
    expect({ status: set.status, teams_webhook: set.body.teams_webhook }).toEqual({ status: 200, teams_webhook: { configured: true } });
    const list = await t.http().get('/admin/asset-types').set(t.admin);
    const flags = Object.fromEntries((list.body.items as { id: number; teams_webhook: { configured: boolean } }[]).map((i) => [i.id, i.teams_webhook.configured]));
    expect(flags).toEqual({ [globalTypeId]: false, [ownTypeId]: true });
    const audit = await t.db.query<{ action: string; diff: unknown; triggered_by: string }>(
      `SELECT action, diff, triggered_by FROM audit_log WHERE entity = 'asset_type' AND entity_id = $1 ORDER BY id`,
      [String(ownTypeId)],
    );
    const teamsRows = audit.rows.filter((r) => r.action === 'teams_webhook');
    expect(teamsRows.map((r) => (r.diff as { after: { write_only_changed: { change: string }[] } }).after.write_only_changed[0]!.change)).toEqual(['set', 'deleted', 'set']);
    expect(teamsRows.every((r) => r.triggered_by === 'admin:key')).toBe(true);
    expect(JSON.stringify([created.body, cleared.body, set.body, list.body, audit.rows])).not.toContain(TYPE_SIG);
  });

  test('an approval request reaches the webhook as a schema-valid card; its Approve button is the signed link and decides the order', async () => {
    const id = await order('Teams seat', 'jane@example.com', 'Jane Doe', 'Project Atlas needs a build machine');
    const rowId = await teamsRowOf(id);
    const sent = await rowIn(rowId, (r) => r['state'] === 'sent');
    expect(sent).toMatchObject({ channel: 'teams', recipients_to: ['global'], server_response: '200 1', attempts: 1 });

    const hit = await cardAt(globalPath, id);
    expect(hit.contentType).toBe('application/json');
    const msg = hit.message;
    expect(msg).toMatchObject({ type: 'message', attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null }] });
    expect(msg.attachments).toHaveLength(1);
    const card = msg.attachments[0].content;
    expect(validateCard(card)).toBe(true);
    expect(validateCard.errors).toBeNull();
    expect(card).toMatchObject({ type: 'AdaptiveCard', version: '1.4' });

    const text = JSON.stringify(card.body);
    for (const s of [`Approval needed: order #${id}`, 'Jane Doe (jane@example.com)', 'Teams seat', APPROVER, 'Project Atlas needs a build machine', '19.90 EUR per month']) {
      expect(text).toContain(s);
    }
    const facts = Object.fromEntries((card.body.find((e) => e.type === 'FactSet') as { facts: { title: string; value: string }[] }).facts.map((f) => [f.title, f.value]));
    expect(facts).toMatchObject({ Order: `#${id}`, Requester: 'Jane Doe (jane@example.com)', 'Asset type': 'Teams seat', Approver: APPROVER });

    // The buttons are the approval's signed links (the same the mail carries), rendered at send time from the row.
    const data = sent['data'] as { links: { approve: string; decline: string }; approver_email: string };
    expect(data.approver_email).toBe(APPROVER);
    expect(card.actions).toEqual([
      { type: 'Action.OpenUrl', title: 'Approve', url: t.linkSigner.url(data.links.approve), style: 'positive' },
      { type: 'Action.OpenUrl', title: 'Decline', url: t.linkSigner.url(data.links.decline), style: 'destructive' },
    ]);
    // The row keeps link ids only: the MAC of the signed URL is nowhere in it.
    const mac = card.actions![0]!.url.split('.').pop()!;
    expect(JSON.stringify(sent)).not.toContain(mac);

    // Following the card's Approve button: the confirmation page, then its POST decides.
    const path = card.actions![0]!.url.slice(PUBLIC_URL.length);
    const page = await t.http().get(path).set('Accept', BROWSER_ACCEPT);
    expect(page.status).toBe(200);
    expect(page.text).toContain(`Approve order #${id}?`);
    const decided = await t.http().post(path).set('Accept', BROWSER_ACCEPT).type('form').send({});
    expect(decided.status).toBe(200);
    const orderRow = await t.db.query<{ status: string }>('SELECT status FROM orders WHERE id = $1', [id]);
    expect(orderRow.rows[0]!.status).toBe('processing');
  });

  test("a type with its own webhook gets its cards there, not at the global one", async () => {
    const id = await order('Teams seat (own channel)', 'max@example.com', 'Max Muster');
    const rowId = await teamsRowOf(id);
    const sent = await rowIn(rowId, (r) => r['state'] === 'sent');
    expect(sent['recipients_to']).toEqual([`asset_type:${ownTypeId}`]);
    const hit = await cardAt(typePath, id);
    expect(validateCard(hit.message.attachments[0].content)).toBe(true);
    expect(receiver.received.some((r) => r.path === globalPath && r.body.includes(`order #${id}`))).toBe(false);
  });

  test('text from people is plain in the card: Markdown links, emphasis and controls are escaped or removed', async () => {
    const injected = '[Approve now](https://evil.example/steal) **urgent** <https://evil.example/x>\u202Egnp.exe\nsecond line';
    const id = await order('Teams seat', 'eve_x@example.com', '_Eve_ [CEO](https://evil.example)', injected);
    const hit = await cardAt(globalPath, id);
    const card = hit.message.attachments[0].content;
    expect(validateCard(card)).toBe(true);
    const texts = [...card.body.flatMap((e) => (e.type === 'TextBlock' ? [e.text] : e.facts.flatMap((f) => [f.title, f.value]))), card.fallbackText];
    // Nowhere a `[text](url)` link or an `<url>` autolink that Markdown would render; no bidi override.
    for (const s of texts) {
      expect(s).not.toMatch(/(^|[^\\])\]\(/);
      expect(s).not.toMatch(/(^|[^\\])<https?:/);
      expect(s).not.toContain('\u202E');
    }
    const justification = texts.find((s) => s.includes('Approve now'))!;
    expect(justification).toBe('\\[Approve now\\]\\(https://evil.example/steal\\) \\*\\*urgent\\*\\* \\<https://evil.example/x\\>gnp.exe\nsecond line');
    expect(texts).toContain('\\_Eve\\_ \\[CEO\\]\\(https://evil.example\\) (eve\\_x@example.com)');
  });

  test("Teams' 200 that says the delivery failed is a failure: the card stays queued, is retried, and arrives", async () => {
    receiver.mode = 'throttled';
    const id = await order('Teams seat', 'tom@example.com', 'Tom');
    const rowId = await teamsRowOf(id);
    const failed = await rowIn(rowId, (r) => r['last_error_code'] === 'RATE_LIMITED');
    expect(failed).toMatchObject({ state: expect.stringMatching(/^(queued|sending)$/) });
    expect(String(failed['last_error'])).toMatch(/Teams answered 200 but did not deliver the card/);
    expect(String(failed['last_error'])).toContain('https://127.0.0.1:');
    receiver.mode = 'ok';
    const sent = await rowIn(rowId, (r) => r['state'] === 'sent');
    expect(Number(sent['attempts'])).toBeGreaterThanOrEqual(2);
    await cardAt(globalPath, id);
  });

  test('a card Teams refuses (400) fails for good, with why; an admin can see it', async () => {
    receiver.mode = 'rejected';
    const id = await order('Teams seat', 'rita@example.com', 'Rita');
    const rowId = await teamsRowOf(id);
    const failed = await rowIn(rowId, (r) => r['state'] === 'failed');
    receiver.mode = 'ok';
    expect(failed).toMatchObject({ last_error_code: 'REJECTED', server_response: '400 Summary or Text is required.', attempts: 1 });
    const list = await t.http().get('/admin/outbox').query({ channel: 'teams', state: 'failed' }).set(t.admin);
    expect(list.status).toBe(200);
    expect(list.body.items).toEqual([expect.objectContaining({ id: rowId, to: ['global'], last_error_code: 'REJECTED' })]);
  });

  test('receiver down: the card is retried with the network error recorded, nothing is lost, and it arrives once it is back', async () => {
    const port = receiver.port;
    await receiver.stop();
    const id = await order('Teams seat', 'nina@example.com', 'Nina');
    const rowId = await teamsRowOf(id);
    const down = await rowIn(rowId, (r) => r['last_error_code'] === 'NETWORK' && Number(r['attempts']) >= 2);
    expect(down['state']).not.toBe('failed');
    expect(down['state']).not.toBe('dead');
    await receiver.start(port);
    await rowIn(rowId, (r) => r['state'] === 'sent');
    const hit = await cardAt(globalPath, id);
    expect(validateCard(hit.message.attachments[0].content)).toBe(true);
  });

  test('the webhook URLs never appear in a log line, an audit row, an outbox row or a response', async () => {
    // The calls were logged (debug level on the webhooks connection), with the URL redacted.
    const teamsLines = memory.lines.filter((l) => l['integration'] === 'teams');
    expect(teamsLines.length).toBeGreaterThan(0);
    expect(JSON.stringify(teamsLines)).toContain('[redacted]');
    expect(memory.lines.some((l) => l['message'] === 'outbox delivery failed; retrying')).toBe(true);
    const outbox = await t.http().get('/admin/outbox').query({ limit: 200 }).set(t.admin);
    const audit = await t.db.query('SELECT * FROM audit_log');
    const rows = await t.db.query('SELECT * FROM outbox');
    const jobs = await t.db.query(`SELECT data FROM pgboss.job`).catch(() => ({ rows: [] }));
    const everything = [memory.text(), JSON.stringify(outbox.body), JSON.stringify(audit.rows), JSON.stringify(rows.rows), JSON.stringify(jobs.rows)].join('\n');
    for (const secret of [GLOBAL_SIG, TYPE_SIG, globalPath, typePath]) expect(everything).not.toContain(secret);
  });
});

describe('Teams cards without a webhook', () => {
  const ctx = { linkUrl: (id: string) => `https://provisio.example.test/approvals/links/${id}`, publicUrl: 'https://provisio.example.test' };
  const data: TeamsApprovalCardData = {
    order_id: 7,
    asset_type_name: 'Standard VDI',
    requester_email: 'jane@example.com',
    requester_name: 'Jane',
    kind: 'extension',
    requested_from: '2026-12-01T08:00:00.000Z',
    requested_until: '2027-01-31T17:00:00.000Z',
    reason: 'x'.repeat(5000),
    quorum: { required: 2, approvers: 3 },
    on_behalf_of: 'cfo@example.com',
    approver_email: 'deputy@example.com',
    links: { approve: 'ref-a', decline: 'ref-d' },
  };

  test('an extension with a quorum and a deputy, and a health alert, are schema-valid; long text is cut', () => {
    const approval = renderTeamsMessage('approval_request', data, ctx).attachments[0].content;
    expect(validateCard(approval)).toBe(true);
    const text = JSON.stringify(approval);
    for (const s of ['extension of order #7', 'Extend until', '2027-01-31 17:00 UTC', '2 of 3 approvals needed', 'cfo@example.com', 'deputy@example.com']) expect(text).toContain(s);
    const reason = (approval.body.find((e) => e.type === 'TextBlock' && e.text.startsWith('xxx')) as { text: string }).text;
    expect([...reason].length).toBe(1500);
    expect(reason.endsWith('…')).toBe(true);

    const alert = renderTeamsMessage(
      'health_alert',
      { integration_id: 3, integration_name: 'ServiceNow *prod*', status: 'offline', previous_status: 'online', detail: 'connect ECONNREFUSED 10.0.0.5:443', http_status: null },
      ctx,
    ).attachments[0].content;
    expect(validateCard(alert)).toBe(true);
    expect(alert.body[0]).toMatchObject({ type: 'TextBlock', text: 'Integration ServiceNow \\*prod\\* is offline', color: 'attention' });
    expect(alert.actions).toBeUndefined();
  });

  test('the schema check can fail: a card with a Teams-only property or a broken action is refused', () => {
    const card = renderTeamsMessage('approval_request', data, ctx).attachments[0].content;
    expect(validateCard({ ...card, msteams: { width: 'Full' } })).toBe(false);
    expect(validateCard({ ...card, actions: [{ type: 'Action.OpenUrl', title: 'Approve' }] })).toBe(false);
  });

  test('a link that is not a web address is never put on a button', () => {
    expect(() => renderTeamsMessage('approval_request', data, { ...ctx, linkUrl: () => 'javascript:alert(1)' })).toThrow(/http\(s\) URL/);
  });

  test('plainCardText: controls and bidi overrides removed, list markers and Markdown escaped, lines limited', () => {
    expect(plainCardText('a\u0000b\u200Bc\u2066d', { max: 50 })).toBe('abcd');
    expect(plainCardText('- one\n1. two\n\n\n\nthree', { max: 50, multiline: true })).toBe('\\- one\n1\\. two\n\nthree');
    expect(plainCardText('- one\n two', { max: 50 })).toBe('\\- one two');
    expect(plainCardText(null, { max: 5 })).toBe('');
    expect(plainCardText('l1\nl2\nl3', { max: 50, multiline: true, maxLines: 2 })).toBe('l1\nl2 …');
  });
});
