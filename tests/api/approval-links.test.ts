/**
 * One-click signed approval links: issued with each approval mail, signed over their whole binding, opened without
 * logging in (GET decides nothing), decided by the page's POST once, attributed `approval-link:<approver>`; tampered
 * links 403, replayed 409, expired 410, decided orders 409, as pages (and problem documents for JSON clients). And
 * the done-means path: an order approved from the link in the mail a real SMTP server received.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, ConfigError } from '../../server/config';
import {
  createLinkSigner,
  formatLinkRef,
  loadLinkKey,
  LinkKeyError,
  newLinkId,
  parseLinkRef,
  type LinkBinding,
} from '../../server/domain/approvals/link-signer';
import { issueApprovalLinks } from '../../server/domain/approvals/links';
import { createOutboxWorker, type OutboxWorker } from '../../server/domain/notifications';
import { pathForLog } from '../../server/http/log-path';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { createMemoryLogger } from '../support/memory-logger';
import { mintTestToken } from '../support/orders';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server';

jest.setTimeout(60_000);

const APPROVER = 'boss@example.com';
const PUBLIC_URL = 'https://provisio.example.test';
// What Chromium sends when it opens a page: HTML first, anything else after.
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

describe('link signer', () => {
  const key = randomBytes(32);
  const signer = createLinkSigner({ key, publicUrl: `${PUBLIC_URL}/` });
  const binding: LinkBinding = {
    linkId: newLinkId(),
    approvalId: 41,
    orderId: 312,
    approverEmail: APPROVER,
    decision: 'approved',
    expiresAt: new Date('2031-01-02T03:04:05.000Z'),
  };
  const load = (b: LinkBinding) => async (id: string) => (id === b.linkId ? b : undefined);

  test('a reference round-trips; its URL carries id, expiry and a 256-bit MAC, and verifies against its row', async () => {
    const ref = formatLinkRef(binding);
    expect(parseLinkRef(ref)).toEqual(binding);
    // The reference names no MAC: it grants nothing on its own.
    expect(ref).not.toContain(signer.token(binding).split('.')[2]!);
    const url = signer.url(ref);
    const token = url.slice(`${PUBLIC_URL}/approvals/links/`.length);
    expect(url.startsWith(`${PUBLIC_URL}/approvals/links/`)).toBe(true);
    expect(token).toMatch(/^[A-Za-z0-9_-]{22}\.1925089445\.[A-Za-z0-9_-]{43}$/);
    expect(await signer.verify(token, load(binding))).toEqual({ ok: true, link: binding });
    expect(() => signer.url('not-a-reference')).toThrow(/not an approval link reference/);
  });

  test('every field of the token and of the row is bound: altering any one fails', async () => {
    const token = signer.token(binding);
    const [id, exp, mac] = token.split('.') as [string, string, string];
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    // The token's own fields.
    expect(await signer.verify(`${flip(id, 3)}.${exp}.${mac}`, async (x) => ({ ...binding, linkId: x }))).toEqual({ ok: false, reason: 'signature' });
    expect(await signer.verify(`${id}.${Number(exp) + 86_400}.${mac}`, load(binding))).toEqual({ ok: false, reason: 'signature' });
    expect(await signer.verify(`${id}.${exp}.${flip(mac, 10)}`, load(binding))).toEqual({ ok: false, reason: 'signature' });
    expect(await signer.verify(`${id}.${exp}.${mac}x`, load(binding))).toEqual({ ok: false, reason: 'malformed' });
    expect(await signer.verify(`${newLinkId()}.${exp}.${mac}`, load(binding))).toEqual({ ok: false, reason: 'unknown' });
    // The row's fields: a row changed after issue matches no token it had.
    const altered: Partial<LinkBinding>[] = [
      { approvalId: 42 },
      { orderId: 313 },
      { approverEmail: 'other@example.com' },
      { decision: 'declined' },
      { expiresAt: new Date('2031-01-09T03:04:05.000Z') },
    ];
    for (const change of altered) {
      expect({ change, result: await signer.verify(token, load({ ...binding, ...change })) }).toEqual({ change, result: { ok: false, reason: 'signature' } });
    }
    // Another key: nothing verifies.
    const other = createLinkSigner({ key: randomBytes(32), publicUrl: PUBLIC_URL });
    expect(await other.verify(token, load(binding))).toEqual({ ok: false, reason: 'signature' });
  });

  test('the key: APPROVAL_LINK_KEY, else generated once into DATA_DIR/approval-link.key (0600); never echoed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'provisio-linkkey-'));
    try {
      const first = loadLinkKey({ dataDir: dir });
      expect(first.source).toBe('generated');
      expect(first.key.length).toBe(32);
      const file = join(dir, 'approval-link.key');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const again = loadLinkKey({ dataDir: dir });
      expect(again).toEqual({ key: first.key, source: 'file' });
      // A key file others may read is refused, as ssh refuses such a private key.
      chmodSync(file, 0o644);
      expect(() => loadLinkKey({ dataDir: dir })).toThrow(LinkKeyError);
      chmodSync(file, 0o600);
      writeFileSync(file, 'c2hvcnQ=\n');
      expect(() => loadLinkKey({ dataDir: dir })).toThrow(/at least 32 bytes/);
      const env = randomBytes(48);
      expect(loadLinkKey({ envKey: env.toString('base64'), dataDir: dir })).toEqual({ key: env, source: 'env' });
      expect(loadLinkKey({ envKey: env.toString('base64url'), dataDir: dir }).key).toEqual(env);
      expect(readFileSync(file, 'utf8')).toBe('c2hvcnQ=\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const short = randomBytes(16).toString('base64');
    let err: unknown;
    try {
      buildConfig({ approvalLinkKey: short });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe('invalid configuration: approvalLinkKey must be base64 of at least 32 bytes');
    expect((err as Error).message).not.toContain(short);
    expect(buildConfig({ host: '127.0.0.2', port: 9000 }).publicUrl).toBe('http://127.0.0.2:9000');
    expect(buildConfig({ publicUrl: 'https://provisio.example.com/base/' }).publicUrl).toBe('https://provisio.example.com/base');
    expect(() => buildConfig({ publicUrl: 'ftp://x' })).toThrow(ConfigError);
  });

  test('the token never reaches a log line: request paths are logged without it', () => {
    expect(pathForLog('/approvals/links/abc.123.def')).toBe('/approvals/links/[redacted]');
    expect(pathForLog('/orders/12')).toBe('/orders/12');
  });
});

describe(`approval links over HTTP (${testEngine})`, () => {
  let t: TestApp;
  let writer: string;
  let smtp: TestSmtpServer;
  let worker: OutboxWorker;
  const memory = createMemoryLogger();

  beforeAll(async () => {
    t = await createTestApp({ publicUrl: PUBLIC_URL });
    writer = await mintTestToken(t.db, 'writer', ['orders:write']);
    const type = await t.http().post('/admin/asset-types').set(t.admin)
      .send({ name: 'Linked seat', assignment_model: 'personal', requires_approval: true, fallback_approver: APPROVER, monthly_cost: 12.5, currency: 'EUR',
        attributes: [{ key: 'justification', type: 'string', required: false, help: 'Why you need it' }] });
    expect(type.status).toBe(201);
    smtp = await startSmtpServer({ tls: 'starttls', auth: { user: 'provisio', pass: 'link-test-pa55' } });
  });
  afterAll(async () => {
    await worker?.stop();
    await smtp?.stop();
    await t?.close();
  });

  /** Places an order that waits for the approver; returns its id. */
  const order = async (user = 'jane@example.com', name = 'Jane Doe', config?: Record<string, unknown>) => {
    const res = await t.http().post('/orders').set('Authorization', `Bearer ${writer}`)
      .send({ asset_type_name: 'Linked seat', user_email: user, user_name: name, ...(config ? { config } : {}) });
    expect({ status: res.status, order_status: res.body.status }).toEqual({ status: 201, order_status: 'pending_approval' });
    return res.body.id as number;
  };
  /** The links of the order's approval mail (references, as the outbox keeps them). */
  const mailedRefs = async (orderId: number) => {
    const { rows } = await t.db.query<{ data: { links: { approve: string; decline: string } }; recipients_to: string[] }>(
      `SELECT data, recipients_to FROM outbox WHERE template = 'approval_request' AND (data->>'order_id')::bigint = $1 ORDER BY id`,
      [orderId],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.recipients_to).toEqual([APPROVER]);
    return rows[0]!.data.links;
  };
  /** A client that asks for pages, as a browser does. */
  const browser = () => t.http().set('Accept', BROWSER_ACCEPT);
  const path = (ref: string) => t.linkSigner.url(ref).slice(PUBLIC_URL.length);
  const tokenOf = (ref: string) => path(ref).slice('/approvals/links/'.length);
  const orderStatus = async (id: number) => (await t.db.query<{ status: string }>('SELECT status FROM orders WHERE id = $1', [id])).rows[0]!.status;
  const approvalOf = async (orderId: number) =>
    (await t.db.query<{ id: string; status: string; decided_by: string | null; reason: string | null }>('SELECT id, status, decided_by, reason FROM approvals WHERE order_id = $1', [orderId])).rows[0]!;
  const linkRow = async (ref: string) =>
    (await t.db.query<{ used_at: Date | null; used_by: string | null; outcome: string | null }>('SELECT used_at, used_by, outcome FROM approval_links WHERE id = $1', [parseLinkRef(ref)!.linkId])).rows[0]!;
  const expectPageHeaders = (res: { headers: Record<string, string> }) => {
    expect(res.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'$/);
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cache-control']).toBe('no-store');
  };

  test('an approval request issues an Approve and a Decline link with the mail, stores no secret, audits them', async () => {
    const id = await order('mia@example.com', 'Mia', { justification: 'Needs it for <the> audit' });
    const refs = await mailedRefs(id);
    const approve = parseLinkRef(refs.approve)!;
    const decline = parseLinkRef(refs.decline)!;
    const approval = await approvalOf(id);
    expect(approve).toMatchObject({ approvalId: Number(approval.id), orderId: id, approverEmail: APPROVER, decision: 'approved' });
    expect(decline).toMatchObject({ approvalId: Number(approval.id), orderId: id, approverEmail: APPROVER, decision: 'declined' });
    // Valid for the default 7 days.
    const days = (approve.expiresAt.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.99);
    expect(days).toBeLessThanOrEqual(7);
    const { rows } = await t.db.query<Record<string, unknown>>('SELECT * FROM approval_links WHERE approval_id = $1 ORDER BY decision', [approval.id]);
    expect(rows.map((r) => r['decision'])).toEqual(['approved', 'declined']);
    // The rows and the mail's data hold no MAC: nothing stored grants a decision.
    const mac = tokenOf(refs.approve).split('.')[2]!;
    const stored = JSON.stringify(rows) + JSON.stringify((await t.db.query('SELECT data FROM outbox')).rows);
    expect(stored).not.toContain(mac);
    const audit = await t.db.query<{ triggered_by: string; after: { link_ids: string[] } }>(
      `SELECT triggered_by, diff->'after' AS after FROM audit_log WHERE entity = 'approval' AND entity_id = $1 AND action = 'links_issued'`,
      [approval.id],
    );
    expect(audit.rows).toEqual([{ triggered_by: 'api:token:writer', after: expect.objectContaining({ link_ids: [approve.linkId, decline.linkId] }) }]);
    // The mail's data: what the approver is asked, the requester's reason included.
    const mail = (await t.db.query<{ data: Record<string, unknown> }>(`SELECT data FROM outbox WHERE template = 'approval_request' AND (data->>'order_id')::bigint = $1`, [id])).rows[0]!.data;
    expect(mail).toMatchObject({ order_id: id, asset_type_name: 'Linked seat', requester_email: 'mia@example.com', requester_name: 'Mia', reason: 'Needs it for <the> audit', cost: { amount: 12.5, currency: 'EUR' } });
  });

  test('GET shows a confirmation page, HTML-escaped, with the security headers, and decides nothing', async () => {
    const id = await order('eve@example.com', '<script>alert(1)</script> Eve', { justification: '"><img src=x onerror=alert(2)>' });
    const refs = await mailedRefs(id);
    for (let i = 0; i < 2; i++) {
      const res = await browser().get(path(refs.approve));
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expectPageHeaders(res);
      expect(res.text).toContain(`Approve order #${id}?`);
      expect(res.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt; Eve');
      expect(res.text).not.toContain('<script>');
      expect(res.text).not.toContain('<img');
      expect(res.text).toContain('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;');
      expect(res.text).toContain('Linked seat');
      expect(res.text).toMatch(/<form method="post">/);
      // Nothing to load or run: no element that fetches, no attribute that points anywhere.
      expect(res.text).not.toMatch(/<(script|link|img|iframe|object)\b/);
      expect(res.text).not.toMatch(/\s(src|href|action)="/);
    }
    // Two opens later: the order still waits, the approval is pending, the link unused.
    expect(await orderStatus(id)).toBe('pending_approval');
    expect((await approvalOf(id)).status).toBe('pending');
    expect(await linkRow(refs.approve)).toEqual({ used_at: null, used_by: null, outcome: null });
    // JSON clients get what the link decides.
    const json = await t.http().get(path(refs.decline)).set('Accept', 'application/json');
    expect(json.status).toBe(200);
    expect(json.body).toMatchObject({ order_id: id, decision: 'declined', approver_email: APPROVER, requester_email: 'eve@example.com', asset_type_name: 'Linked seat', kind: 'order' });
  });

  test('POST approves the order once, attributed approval-link:<approver>, the link marked used; a replay is 409', async () => {
    const id = await order();
    const refs = await mailedRefs(id);
    const res = await browser().post(path(refs.approve)).type('form').send({ reason: 'Fine by me' });
    expect(res.status).toBe(200);
    expectPageHeaders(res);
    expect(res.text).toContain(`Order #${id} is approved`);
    expect(await orderStatus(id)).toBe('processing');
    const approval = await approvalOf(id);
    expect(approval).toMatchObject({ status: 'approved', decided_by: `${APPROVER} (approval-link:${APPROVER})`, reason: 'Fine by me' });
    expect(await linkRow(refs.approve)).toEqual({ used_at: expect.any(Date), used_by: `approval-link:${APPROVER}`, outcome: 'approved' });
    const audit = await t.db.query<{ entity: string; action: string; triggered_by: string }>(
      `SELECT entity, action, triggered_by FROM audit_log WHERE (entity = 'approval' AND entity_id = $1 AND action = 'approved') OR (entity = 'approval_link' AND entity_id = $2) ORDER BY id`,
      [approval.id, parseLinkRef(refs.approve)!.linkId],
    );
    expect(audit.rows).toEqual([
      { entity: 'approval', action: 'approved', triggered_by: `approval-link:${APPROVER}` },
      { entity: 'approval_link', action: 'used', triggered_by: `approval-link:${APPROVER}` },
    ]);

    // Replayed: 409, as a page and as a problem document; nothing changes.
    const again = await browser().post(path(refs.approve)).type('form').send({});
    expect(again.status).toBe(409);
    expectPageHeaders(again);
    expect(again.text).toContain('This approval link was already used');
    const problem = await t.http().post(path(refs.approve)).set('Accept', 'application/json').send({});
    expect(problem.status).toBe(409);
    expect(problem.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(problem.body).toMatchObject({ code: 'LINK_USED', status: 409, used_at: expect.any(String), instance: '/approvals/links/{token}' });
    expect(JSON.stringify(problem.body)).not.toContain(tokenOf(refs.approve));
    expect((await browser().get(path(refs.approve))).status).toBe(409);
    // Its sibling can no longer decide either: the approval is closed.
    const sibling = await browser().post(path(refs.decline)).type('form').send({});
    expect(sibling.status).toBe(409);
    expect(sibling.text).toContain('no longer waits for your decision');
    expect(await orderStatus(id)).toBe('processing');
  });

  test('the decline link cancels the order, keeping the reason', async () => {
    const id = await order();
    const refs = await mailedRefs(id);
    const res = await t.http().post(path(refs.decline)).set('Accept', 'application/json').send({ reason: 'Not this quarter' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ order_id: id, approval_id: Number((await approvalOf(id)).id), kind: 'order', decision: 'declined', outcome: 'declined', order_status: 'cancelled', quorum: null });
    expect(await orderStatus(id)).toBe('cancelled');
    expect(await approvalOf(id)).toMatchObject({ status: 'declined', reason: 'Not this quarter' });
  });

  test('tampered, unknown or malformed links are 403 pages; nothing is decided', async () => {
    const id = await order();
    const refs = await mailedRefs(id);
    const token = tokenOf(refs.approve);
    const [lid, exp, mac] = token.split('.') as [string, string, string];
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'x' ? 'y' : 'x') + s.slice(i + 1);
    const tampered = [
      `${flip(lid, 0)}.${exp}.${mac}`,
      `${lid}.${Number(exp) + 3600}.${mac}`,
      `${lid}.${exp}.${flip(mac, 5)}`,
      `${lid}.${exp}`,
      'hello',
      `${lid}.${exp}.${mac}.x`,
      '%3Cscript%3E',
    ];
    for (const bad of tampered) {
      for (const method of ['get', 'post'] as const) {
        const res = await browser()[method](`/approvals/links/${bad}`).type('form').send({});
        expect({ bad, method, status: res.status }).toEqual({ bad, method, status: 403 });
        expect(res.text).toContain('This approval link is not valid');
        expect(res.text).not.toContain('<script>');
      }
    }
    const json = await t.http().get(`/approvals/links/${lid}.${exp}.${flip(mac, 5)}`).set('Accept', 'application/json');
    expect(json.status).toBe(403);
    expect(json.body).toMatchObject({ code: 'LINK_INVALID', status: 403 });
    // A client that names no preference (curl, a scanner) gets problem documents, as from every other operation.
    const plain = await t.http().get('/approvals/links/hello');
    expect({ status: plain.status, type: plain.headers['content-type'], code: plain.body.code }).toEqual({ status: 403, type: 'application/problem+json; charset=utf-8', code: 'LINK_INVALID' });
    expectPageHeaders(plain);
    const probe = await t.http().get(`/approvals/links/hello?probe=1`);
    expect({ status: probe.status, code: probe.body.code }).toEqual({ status: 400, code: 'BAD_REQUEST' });
    // A row changed after issue matches the token no longer: the approve link made a decline link is refused.
    await t.db.query(`UPDATE approval_links SET decision = 'declined' WHERE id = $1`, [lid]);
    expect((await browser().post(path(refs.approve)).type('form').send({})).status).toBe(403);
    await t.db.query(`UPDATE approval_links SET decision = 'approved', approver_email = 'mallory@example.com' WHERE id = $1`, [lid]);
    expect((await browser().post(path(refs.approve)).type('form').send({})).status).toBe(403);
    await t.db.query(`UPDATE approval_links SET approver_email = $2 WHERE id = $1`, [lid, APPROVER]);
    // A token longer than any we issue is malformed before it reaches us: 400, as a page.
    const long = await browser().get(`/approvals/links/${'a'.repeat(300)}`);
    expect(long.status).toBe(400);
    expect(long.headers['content-type']).toMatch(/^text\/html/);
    expect(await orderStatus(id)).toBe('pending_approval');
    // Restored, the link works.
    expect((await browser().get(path(refs.approve))).status).toBe(200);
  });

  test('an expired link is a 410 page; a link to an order decided otherwise a 409 page', async () => {
    const id = await order();
    const approval = await approvalOf(id);
    const old = await t.db.transaction((tx) =>
      issueApprovalLinks(tx, { id: Number(approval.id), order_id: id, approver_email: APPROVER }, { now: new Date(Date.now() - 8 * 86_400_000) }),
    );
    const expired = await browser().post(path(old.approve)).type('form').send({});
    expect(expired.status).toBe(410);
    expectPageHeaders(expired);
    expect(expired.text).toContain('This approval link has expired');
    const json = await t.http().get(path(old.approve)).set('Accept', 'application/json');
    expect(json.status).toBe(410);
    expect(json.body).toMatchObject({ code: 'LINK_EXPIRED', expired_at: parseLinkRef(old.approve)!.expiresAt.toISOString() });
    expect(await orderStatus(id)).toBe('pending_approval');

    // The order decided through the API: the mailed link finds nothing to decide.
    const refs = await mailedRefs(id);
    const decided = await t.http().post(`/orders/${id}/decline`).set(t.admin).send({ reason: 'decided by admin' });
    expect(decided.status).toBe(200);
    for (const ref of [refs.approve, refs.decline]) {
      const res = await browser().post(path(ref)).type('form').send({});
      expect(res.status).toBe(409);
      expect(res.text).toContain(`Order #${id} no longer waits for this decision`);
      const j = await t.http().get(path(ref)).set('Accept', 'application/json');
      expect(j.body).toMatchObject({ code: 'APPROVAL_CLOSED', approval_status: 'declined', order_status: 'cancelled' });
    }
  });

  test('the TTL comes from the approvals settings', async () => {
    const put = await t.http().put('/admin/settings/approvals').set(t.admin).send({ link_ttl_days: 2 });
    expect(put.status).toBe(200);
    try {
      const refs = await mailedRefs(await order());
      const days = (parseLinkRef(refs.approve)!.expiresAt.getTime() - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(1.99);
      expect(days).toBeLessThanOrEqual(2);
    } finally {
      await t.http().put('/admin/settings/approvals').set(t.admin).send({ link_ttl_days: null });
    }
  });

  test('two POSTs of one link at once decide once: one 200, one 409 LINK_USED', async () => {
    const id = await order();
    const refs = await mailedRefs(id);
    const results = await Promise.all([0, 1].map(() => t.http().post(path(refs.approve)).set('Accept', 'application/json').send({})));
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(results.find((r) => r.status === 409)!.body.code).toBe('LINK_USED');
    const approval = await approvalOf(id);
    const decided = await t.db.query(`SELECT 1 FROM audit_log WHERE entity = 'approval' AND entity_id = $1 AND action = 'approved'`, [approval.id]);
    expect(decided.rowCount).toBe(1);
    const jobs = await t.db.query<{ job_id: string | null }>('SELECT job_id FROM orders WHERE id = $1', [id]);
    expect(jobs.rows[0]!.job_id).not.toBeNull();
    expect(await orderStatus(id)).toBe('processing');
  });

  test('under a quorum each approver has links of their own: the first approval is counted, the second releases the order', async () => {
    const type = await t.http().post('/admin/asset-types').set(t.admin)
      .send({ name: 'Quorum seat', assignment_model: 'personal', requires_approval: true, approval: { quorum: 2, approvers: ['qa@example.com', 'qb@example.com', 'qc@example.com'] } });
    expect(type.status).toBe(201);
    const res = await t.http().post('/orders').set('Authorization', `Bearer ${writer}`).send({ asset_type_name: 'Quorum seat', user_email: 'kim@example.com', user_name: 'Kim' });
    expect(res.status).toBe(201);
    const id = res.body.id as number;
    const { rows } = await t.db.query<{ to: string[]; links: { approve: string; decline: string } }>(
      `SELECT recipients_to AS to, data->'links' AS links FROM outbox WHERE template = 'approval_request' AND (data->>'order_id')::bigint = $1 ORDER BY id`,
      [id],
    );
    expect(rows.map((r) => r.to)).toEqual([['qa@example.com'], ['qb@example.com'], ['qc@example.com']]);
    const first = await t.http().post(path(rows[0]!.links.approve)).set('Accept', 'application/json').send({});
    expect(first.body).toMatchObject({ outcome: 'counted', order_status: 'pending_approval', quorum: { required: 2, approved: 1 } });
    const page = await browser().post(path(rows[1]!.links.approve)).type('form').send({});
    expect(page.status).toBe(200);
    expect(page.text).toContain(`Order #${id} is approved`);
    expect(await orderStatus(id)).toBe('processing');
    // The third approver's approval was withdrawn with the quorum: their link finds nothing to decide.
    const late = await t.http().get(path(rows[2]!.links.approve)).set('Accept', 'application/json');
    expect(late.body).toMatchObject({ code: 'APPROVAL_CLOSED', approval_status: 'withdrawn' });
    const outcomes = await t.db.query<{ approver_email: string; outcome: string | null }>(
      `SELECT approver_email, outcome FROM approval_links WHERE order_id = $1 AND decision = 'approved' ORDER BY approver_email`,
      [id],
    );
    expect(outcomes.rows).toEqual([
      { approver_email: 'qa@example.com', outcome: 'counted' },
      { approver_email: 'qb@example.com', outcome: 'approved' },
      { approver_email: 'qc@example.com', outcome: null },
    ]);
  });

  test('an extension is decided by its own links: the page names the new end and the reason given', async () => {
    const until = new Date(Date.now() + 10 * 86_400_000);
    const placed = await t.http().post('/orders').set('Authorization', `Bearer ${writer}`)
      .send({ asset_type_name: 'Linked seat', user_email: 'ext@example.com', user_name: 'Ext', requested_until: until.toISOString() });
    expect(placed.status).toBe(201);
    const id = placed.body.id as number;
    expect((await t.http().post(`/orders/${id}/approve`).set(t.admin).send({})).status).toBe(200);
    const later = new Date(until.getTime() + 20 * 86_400_000);
    const ext = await t.http().post(`/orders/${id}/extend`).set('Authorization', `Bearer ${writer}`).send({ requested_until: later.toISOString(), reason: 'Project runs longer' });
    expect(ext.status).toBe(202); // accepted: it waits for approval
    const { rows } = await t.db.query<{ data: { kind: string; reason: string; links: { approve: string } } }>(
      `SELECT data FROM outbox WHERE template = 'approval_request' AND (data->>'order_id')::bigint = $1 AND data->>'kind' = 'extension'`,
      [id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.data).toMatchObject({ kind: 'extension', reason: 'Project runs longer' });
    const page = await browser().get(path(rows[0]!.data.links.approve));
    expect(page.status).toBe(200);
    expect(page.text).toContain(`Approve the extension of order #${id}?`);
    expect(page.text).toContain('Project runs longer');
    expect(page.text).toContain(`${later.toISOString().slice(0, 16).replace('T', ' ')} UTC`);
    const done = await t.http().post(path(rows[0]!.data.links.approve)).set('Accept', 'application/json').send({});
    expect(done.body).toMatchObject({ kind: 'extension', outcome: 'approved' });
    const row = await t.db.query<{ requested_until: Date; extension_requested_until: Date | null }>('SELECT requested_until, extension_requested_until FROM orders WHERE id = $1', [id]);
    expect(row.rows[0]).toEqual({ requested_until: later, extension_requested_until: null });
  });

  test("a deputy's links decide on behalf of the approver, who is copied on the mail", async () => {
    const start = new Date(Date.now() - 60_000).toISOString();
    const end = new Date(Date.now() + 86_400_000).toISOString();
    const made = await t.http().post('/approvals/delegations').set(t.admin)
      .send({ approver_email: APPROVER, deputy_email: 'deputy@example.com', starts_at: start, ends_at: end });
    expect(made.status).toBe(201);
    try {
      const id = await order('lea@example.com', 'Lea');
      const { rows } = await t.db.query<{ to: string[]; cc: string[]; links: { approve: string }; on_behalf_of: string }>(
        `SELECT recipients_to AS to, recipients_cc AS cc, data->'links' AS links, data->>'on_behalf_of' AS on_behalf_of
           FROM outbox WHERE template = 'approval_request' AND (data->>'order_id')::bigint = $1`,
        [id],
      );
      expect(rows).toEqual([expect.objectContaining({ to: ['deputy@example.com'], cc: [APPROVER], on_behalf_of: APPROVER })]);
      expect(parseLinkRef(rows[0]!.links.approve)!.approverEmail).toBe('deputy@example.com');
      const page = await browser().get(path(rows[0]!.links.approve));
      expect(page.text).toContain(`deputy@example.com, for ${APPROVER}`);
      expect((await browser().post(path(rows[0]!.links.approve)).type('form').send({})).status).toBe(200);
      expect(await approvalOf(id)).toMatchObject({ status: 'approved', decided_by: `deputy@example.com (approval-link:deputy@example.com) on behalf of ${APPROVER}` });
      expect(await orderStatus(id)).toBe('processing');
    } finally {
      expect((await t.http().delete(`/approvals/delegations/${made.body.id}`).set(t.admin)).status).toBe(204);
    }
  });

  test('a reason longer than the form allows is a 422 page naming it; nothing is decided', async () => {
    const id = await order();
    const refs = await mailedRefs(id);
    const res = await browser().post(path(refs.approve)).type('form').send({ reason: 'x'.repeat(1001) });
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('reason');
    const extra = await t.http().post(path(refs.approve)).set('Accept', 'application/json').type('form').send({ reason: 'ok', approver_email: 'x@example.com' });
    expect(extra.status).toBe(422);
    expect(extra.body.code).toBe('VALIDATION_FAILED');
    expect(await orderStatus(id)).toBe('pending_approval');
  });

  test('done means: the Approve link of the mail a real SMTP server received, GET then POST, and the order proceeds', async () => {
    const put = await t.http().put('/admin/settings/smtp').set(t.admin).send(smtp.settings());
    expect(put.status).toBe(200);
    worker = createOutboxWorker({ db: t.db, queue: t.queue, logger: memory.logger, publicUrl: PUBLIC_URL, linkUrl: (ref) => t.linkSigner.url(ref), pollingIntervalSeconds: 0.5 });
    await worker.register();
    const id = await order('sam@example.com', 'Sam Doe');
    const mail = await smtp.waitForMail((m) => m.envelope.to.includes(APPROVER) && (m.subject ?? '').includes(`order #${id}`), 20_000);
    expect(mail.subject).toBe(`Approval needed: Linked seat for Sam Doe (order #${id})`);
    const approveUrl = /Approve: (\S+)/.exec(mail.text ?? '')?.[1];
    expect(approveUrl).toBeDefined();
    expect(mail.html).toContain(`href="${approveUrl}"`);
    expect(approveUrl!.startsWith(`${PUBLIC_URL}/approvals/links/`)).toBe(true);
    const linkPath = approveUrl!.slice(PUBLIC_URL.length);

    const page = await browser().get(linkPath);
    expect(page.status).toBe(200);
    expect(page.text).toContain(`Approve order #${id}?`);
    expect(await orderStatus(id)).toBe('pending_approval');
    const confirmed = await browser().post(linkPath).type('form').send({ reason: '' });
    expect(confirmed.status).toBe(200);
    expect(confirmed.text).toContain(`Order #${id} is approved`);
    expect(await orderStatus(id)).toBe('processing');
    // The requester is told, by mail too.
    const told = await smtp.waitForMail((m) => m.envelope.to.includes('sam@example.com'), 20_000);
    expect(told.subject).toBe(`Your request for Linked seat was approved (order #${id})`);
    // The token is in no log line.
    expect(memory.text()).not.toContain(linkPath.split('/').pop()!);
  });
});
