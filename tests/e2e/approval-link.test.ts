/**
 * The mailed one-click approval link in a real browser (Debian's Chromium, driven by playwright-core): an order that
 * needs approval is mailed to its approver through the outbox and a real loopback SMTP server; the Approve link is
 * taken from the received mail's HTML, opened in Chromium (the confirmation page decides nothing), confirmed with a
 * reason by clicking the button, and the outcome page shows the order approved. Opened again, the link says it was
 * used. The page's strict Content-Security-Policy lets its one stylesheet apply and reports no violation.
 */
import type { Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { createOutboxWorker, type OutboxWorker } from '../../server/domain/notifications';
import { installDebianPackages } from '../support/apt';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { createMemoryLogger } from '../support/memory-logger';
import { mintTestToken } from '../support/orders';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server';

jest.setTimeout(120_000);

const APPROVER = 'boss@example.com';
// The flags this machine's Chromium needs as root, without network access of its own (see the machine notes).
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A free loopback port: the app must know its public address (PUBLIC_URL) before it listens. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe(`approval link in Chromium (${testEngine})`, () => {
  let t: TestApp;
  let server: Server;
  let base: string;
  let smtp: TestSmtpServer;
  let worker: OutboxWorker;
  let browser: Browser;
  let writer: string;

  beforeAll(async () => {
    await installDebianPackages(['chromium'], 'approval-link e2e');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    t = await createTestApp({ publicUrl: base });
    server = await new Promise<Server>((resolve) => {
      const s = t.app.listen(port, '127.0.0.1', () => resolve(s));
    });
    writer = await mintTestToken(t.db, 'writer', ['orders:write']);
    const type = await t.http().post('/admin/asset-types').set(t.admin)
      .send({ name: 'Browser seat', assignment_model: 'personal', requires_approval: true, fallback_approver: APPROVER });
    expect(type.status).toBe(201);
    smtp = await startSmtpServer({ tls: 'starttls', auth: { user: 'provisio', pass: 'e2e-pa55word' } });
    expect((await t.http().put('/admin/settings/smtp').set(t.admin).send(smtp.settings())).status).toBe(200);
    worker = createOutboxWorker({ db: t.db, queue: t.queue, logger: createMemoryLogger().logger, publicUrl: base, linkUrl: (ref) => t.linkSigner.url(ref), pollingIntervalSeconds: 0.5 });
    await worker.register();
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await smtp?.stop();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await t?.close();
  });

  const orderStatus = async (id: number) => (await t.db.query<{ status: string }>('SELECT status FROM orders WHERE id = $1', [id])).rows[0]!.status;

  test('open the Approve link from the mail, click Confirm, see the order approved', async () => {
    const placed = await t.http().post('/orders').set('Authorization', `Bearer ${writer}`).send({ asset_type_name: 'Browser seat', user_email: 'ann@example.com', user_name: 'Ann Example' });
    expect(placed.status).toBe(201);
    const id = placed.body.id as number;
    const mail = await smtp.waitForMail((m) => m.envelope.to.includes(APPROVER) && (m.subject ?? '').includes(`order #${id}`), 30_000);
    // The button of the HTML part, as a mail client would show it.
    const href = /<a href="([^"]+)"[^>]*>Approve<\/a>/.exec(String(mail.html))?.[1]?.replace(/&amp;/g, '&');
    expect(href?.startsWith(`${base}/approvals/links/`)).toBe(true);

    const context = await browser.newContext();
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    const requested: string[] = [];
    page.on('request', (r) => requested.push(`${r.method()} ${r.url()}`));

    const opened = await page.goto(href!);
    expect(opened?.status()).toBe(200);
    await expect(page.locator('h1').textContent()).resolves.toBe(`Approve order #${id}?`);
    await expect(page.locator('main').textContent()).resolves.toContain('Ann Example <ann@example.com>');
    // The hashed stylesheet applies under the policy: the Confirm button is green.
    await expect(page.locator('button').evaluate((b) => getComputedStyle(b).backgroundColor)).resolves.toBe('rgb(30, 125, 50)');
    // Opening decided nothing.
    expect(await orderStatus(id)).toBe('pending_approval');

    await page.screenshot({ path: `/tmp/provisio-approval-link-confirm-${testEngine}.png` });
    await page.fill('textarea[name="reason"]', 'Approved from the browser');
    const [decided] = await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    expect(decided?.status()).toBe(200);
    await expect(page.locator('h1').textContent()).resolves.toBe(`Order #${id} is approved`);
    await page.screenshot({ path: `/tmp/provisio-approval-link-${testEngine}.png` });
    expect(await orderStatus(id)).toBe('processing');
    const approval = await t.db.query<{ status: string; reason: string; decided_by: string }>('SELECT status, reason, decided_by FROM approvals WHERE order_id = $1', [id]);
    expect(approval.rows).toEqual([{ status: 'approved', reason: 'Approved from the browser', decided_by: `${APPROVER} (approval-link:${APPROVER})` }]);
    // The requester is told by mail.
    const told = await smtp.waitForMail((m) => m.envelope.to.includes('ann@example.com'), 30_000);
    expect(told.subject).toBe(`Your request for Browser seat was approved (order #${id})`);

    // The same link again: used.
    const again = await page.goto(href!);
    expect(again?.status()).toBe(409);
    await expect(page.locator('h1').textContent()).resolves.toBe('This approval link was already used');

    // Nothing but the link itself and its own form post was requested; no policy violation was reported.
    const path = new URL(href!).pathname;
    expect(requested).toEqual([`GET ${base}${path}`, `POST ${base}${path}`, `GET ${base}${path}`]);
    expect(violations).toEqual([]);
    await context.close();
  });
});
