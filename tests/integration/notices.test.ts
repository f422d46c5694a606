/**
 * The mails that tell people things, each queued at its one natural place and committed with the change it
 * reports: the decision to the requester, the expiry warning (once per `requested_until`, re-armed by an extension),
 * the leaver notice to the manager, and the integration health alert.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runDueHealthChecks } from '../../integration-model';
import { createOutboxWorker, type OutboxWorker } from '../../server/domain/notifications';
import { processLeaverEvent } from '../../server/domain/identity/leaver';
import type { RequesterDirectory } from '../../server/domain/identity/requester-directory';
import { sendDueExpiryWarnings } from '../../server/domain/orders/expiry-warnings';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { seedOrders, statusesOf } from '../support/leavers';
import { closedPort } from '../support/loopback-server';
import { createMemoryLogger } from '../support/memory-logger';
import { mintTestToken } from '../support/orders';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server';

jest.setTimeout(60_000);

const JANE = 'jane@example.com';
const BOSS = 'boss@example.com';
const LEAVER = 'lee.leaver@example.com';
const LEAVER_BOSS = 'lee.boss@example.com';
const DAY = 86_400_000;
const MANAGERS: Record<string, string> = { [JANE]: BOSS, [LEAVER]: LEAVER_BOSS };

/** An outbox row of a mail. */
interface Mail {
  id: number;
  to: string[];
  data: Record<string, unknown>;
  triggered_by: string;
}

describe(`notices (${testEngine})`, () => {
  let t: TestApp;
  let writer: string;
  let smtp: TestSmtpServer;
  let outbox: OutboxWorker;
  const directory: RequesterDirectory = { lookup: async () => undefined, managerOf: async (email) => MANAGERS[email] };
  const logger = createMemoryLogger().logger;

  /** The mails queued with `template` (to `to`, when given), oldest first. */
  async function mails(template: string, to?: string): Promise<Mail[]> {
    const { rows } = await t.db.query<Mail>(
      `SELECT id, recipients_to AS to, data, triggered_by FROM outbox WHERE channel = 'mail' AND template = $1 ORDER BY id`,
      [template],
    );
    return rows.map((r) => ({ ...r, id: Number(r.id) })).filter((m) => to === undefined || m.to.includes(to));
  }

  async function createType(body: Record<string, unknown>): Promise<number> {
    const res = await t.http().post('/admin/asset-types').set(t.admin).send({ assignment_model: 'personal', ...body });
    expect({ status: res.status, body: res.status === 201 ? null : res.body }).toEqual({ status: 201, body: null });
    return res.body.id as number;
  }

  async function order(type: string, user: string, extra: Record<string, unknown> = {}): Promise<{ id: number; status: string }> {
    const res = await t.http().post('/orders').set({ Authorization: `Bearer ${writer}` }).send({ asset_type_name: type, user_email: user, user_name: user.split('@')[0], ...extra });
    expect({ status: res.status, body: res.status === 201 ? null : res.body }).toEqual({ status: 201, body: null });
    return { id: res.body.id as number, status: res.body.status as string };
  }

  beforeAll(async () => {
    t = await createTestApp({}, { requesterDirectory: directory });
    writer = await mintTestToken(t.db, 'writer', ['orders:write']);
    // A real SMTP server and the real outbox worker: the leaver notice is checked as it arrives.
    smtp = await startSmtpServer({ tls: 'starttls', auth: { user: 'provisio', pass: 'notices-pass' } });
    expect((await t.http().put('/admin/settings/smtp').set(t.admin).send(smtp.settings())).status).toBe(200);
    const publicUrl = 'https://provisio.example.com';
    outbox = createOutboxWorker({ db: t.db, queue: t.queue, logger, publicUrl, linkUrl: (id) => `${publicUrl}/approvals/links/${id}`, pollingIntervalSeconds: 0.5 });
    await outbox.register();
  });
  afterAll(async () => {
    await outbox?.stop();
    // A mail still being sent would finish on a dropped database.
    for (let i = 0; i < 300 && (await t.db.query(`SELECT 1 FROM pgboss.job WHERE state = 'active' AND name = 'outbox.send'`)).rowCount !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await smtp?.stop();
    await t?.close();
  });

  describe('the decision, to the requester', () => {
    beforeAll(async () => {
      await createType({ name: 'Approved seat', requires_approval: true });
    });

    test('approved and declined orders tell their requester once, with the outcome', async () => {
      const yes = await order('Approved seat', JANE);
      const no = await order('Approved seat', JANE);
      expect((await t.http().post(`/orders/${yes.id}/approve`).set(t.admin).send({ approver_email: BOSS })).status).toBe(200);
      expect((await t.http().post(`/orders/${no.id}/decline`).set(t.admin).send({ approver_email: BOSS, reason: 'No budget' })).status).toBe(200);
      const told = await mails('decision', JANE);
      const of = (id: number) => told.filter((m) => m.data['order_id'] === id);
      expect(of(yes.id)).toEqual([expect.objectContaining({ data: expect.objectContaining({ decision: 'approved' }) })]);
      expect(of(no.id)).toEqual([expect.objectContaining({ data: expect.objectContaining({ decision: 'declined', reason: 'No budget' }) })]);
    });
  });

  describe('the expiry warning', () => {
    test('the type\'s expiry_warning_days is part of the asset type API: set, read back, cleared, and checked', async () => {
      const id = await createType({ name: 'Warning field' });
      const read = await t.http().get(`/admin/asset-types/${id}`).set(t.admin);
      expect(read.body.expiry_warning_days).toBeNull();
      const set = await t.http().patch(`/admin/asset-types/${id}`).set(t.admin).send({ expiry_warning_days: 7 });
      expect(set.status).toBe(200);
      expect(set.body.expiry_warning_days).toBe(7);
      const bad = await t.http().patch(`/admin/asset-types/${id}`).set(t.admin).send({ expiry_warning_days: 0 });
      expect(bad.status).toBe(422);
      expect(JSON.stringify(bad.body)).toContain('expiry_warning_days');
      const cleared = await t.http().patch(`/admin/asset-types/${id}`).set(t.admin).send({ expiry_warning_days: null });
      expect(cleared.body.expiry_warning_days).toBeNull();
    });

    test('sent once per requested_until inside the type\'s window; an extension re-arms it', async () => {
      const warned = await createType({ name: 'Warned seat' });
      expect((await t.http().patch(`/admin/asset-types/${warned}`).set(t.admin).send({ expiry_warning_days: 3 })).status).toBe(200);
      await createType({ name: 'Unwarned seat' });
      const soon = await order('Warned seat', JANE, { requested_until: new Date(Date.now() + 2 * DAY).toISOString() });
      const later = await order('Warned seat', JANE, { requested_until: new Date(Date.now() + 10 * DAY).toISOString() });
      const never = await order('Unwarned seat', JANE, { requested_until: new Date(Date.now() + 1 * DAY).toISOString() });

      const first = await sendDueExpiryWarnings({ db: t.db, queue: t.queue, logger });
      expect(first).toContain(soon.id);
      expect(first).not.toContain(later.id);
      expect(first).not.toContain(never.id);
      const ofSoon = async () => (await mails('expiry_warning', JANE)).filter((m) => m.data['order_id'] === soon.id);
      expect(await ofSoon()).toHaveLength(1);

      // Again: warned already for this end.
      expect(await sendDueExpiryWarnings({ db: t.db, queue: t.queue, logger })).not.toContain(soon.id);
      expect(await ofSoon()).toHaveLength(1);

      const newEnd = new Date(Date.now() + 2.5 * DAY);
      const extended = await t.http().post(`/orders/${soon.id}/extend`).set(t.admin).send({ requested_until: newEnd.toISOString() });
      expect(extended.status).toBe(200);
      expect(await sendDueExpiryWarnings({ db: t.db, queue: t.queue, logger })).toContain(soon.id);
      const both = await ofSoon();
      expect(both).toHaveLength(2);
      expect(await t.db.query('SELECT requested_until FROM order_expiry_warnings WHERE order_id = $1', [soon.id]).then((r) => r.rowCount)).toBe(2);
      expect((await t.db.query(`SELECT 1 FROM audit_log WHERE entity = 'order' AND entity_id = $1 AND action = 'expiry_warning_sent'`, [String(soon.id)])).rowCount).toBe(2);
    });
  });

  describe('the leaver notice', () => {
    test('the leaver\'s manager is told what was revoked and what was cancelled; a repeated event tells nobody', async () => {
      const typeId = await createType({ name: 'Leaver seat' });
      const [revoked, cancelled] = await seedOrders(t.db, { assetTypeId: typeId, email: LEAVER, statuses: ['provisioned', 'pending_approval'] });
      const outcome = await processLeaverEvent(t.leaver, { source: 'native', identity: { email: LEAVER }, triggeredBy: 'hr:native', dedupeKey: 'lee-left' });
      expect(outcome).toMatchObject({ status: 'processed', revokedOrders: [revoked], cancelledOrders: [cancelled] });
      expect(await statusesOf(t.db, [revoked!, cancelled!])).toEqual({ [revoked!]: 'revoked', [cancelled!]: 'cancelled' });
      const notices = await mails('leaver_notice', LEAVER_BOSS);
      expect(notices).toHaveLength(1);
      expect(notices[0]!.data).toMatchObject({
        leaver_emails: [LEAVER],
        revoked: [{ order_id: revoked, asset_type_name: 'Leaver seat' }],
        cancelled: [{ order_id: cancelled, asset_type_name: 'Leaver seat' }],
      });
      expect(notices[0]!.triggered_by).toBe('hr:native');
      // Delivered for real: the manager's mail lists both.
      const delivered = await smtp.waitForMail((m) => m.envelope.to.includes(LEAVER_BOSS));
      expect(delivered.subject).toMatch(/^Leaver lee\.leaver@example\.com: 1 access revoked, 1 request cancelled$/);
      expect(delivered.text).toContain(`Leaver seat, order #${revoked}`);
      expect(delivered.text).toContain(`Leaver seat, order #${cancelled}`);

      const again = await processLeaverEvent(t.leaver, { source: 'native', identity: { email: LEAVER }, triggeredBy: 'hr:native', dedupeKey: 'lee-left-again' });
      expect(again).toMatchObject({ revokedOrders: [], cancelledOrders: [] });
      expect(await mails('leaver_notice', LEAVER_BOSS)).toHaveLength(1);
    });
  });

  describe('the integration health alert', () => {
    test('mailed to alerts.recipients when a check finds an integration worse, once per change', async () => {
      const model = await t.http().post('/admin/integration-models').set(t.admin).send({ document: await readFile(join(__dirname, '..', 'fixtures', 'integration-models', 'hello-inventory.yaml'), 'utf8') });
      expect(model.status).toBe(201);
      const created = await t.http().post('/admin/integrations').set(t.admin).send({
        model_id: 'Hello Inventory:1.0.0',
        name: 'inventory-down',
        config: { server: { host: '127.0.0.1', port: await closedPort(), base_path: '/api' } },
        health: { operation_id: 'ping', interval_s: 60 },
      });
      expect(created.status).toBe(201);
      const id = created.body.id as number;

      // No recipients: the state is stored, nobody is mailed.
      expect((await t.http().post(`/admin/integrations/${id}/health-check`).set(t.admin).send({})).body.status).toBe('offline');
      expect(await mails('health_alert')).toEqual([]);

      const set = await t.http().put('/admin/settings/alerts').set(t.admin).send({ recipients: ['ops@example.com', 'oncall@example.com'] });
      expect(set.status).toBe(200);
      const bad = await t.http().put('/admin/settings/alerts').set(t.admin).send({ recipients: ['not an address'] });
      expect(bad.status).toBe(422);

      // Back online, then down again: the sweep finds it worse and alerts once.
      await t.db.query(`UPDATE integrations SET health_status = 'online', health_checked_at = now() - interval '2 minutes' WHERE id = $1`, [id]);
      expect(await runDueHealthChecks(t.db, t.integrations, logger)).toContain(id);
      const alerts = await mails('health_alert');
      expect(alerts).toHaveLength(1);
      expect(JSON.stringify(alerts[0])).toContain('inventory-down');

      expect(alerts[0]).toMatchObject({
        to: ['ops@example.com', 'oncall@example.com'],
        triggered_by: 'system:integration-health',
        data: { integration_id: id, integration_name: 'inventory-down', previous_status: 'online', status: 'offline' },
      });

      // Still offline at the next check: no news, no mail.
      await t.db.query(`UPDATE integrations SET health_checked_at = now() - interval '2 minutes' WHERE id = $1`, [id]);
      expect(await runDueHealthChecks(t.db, t.integrations, logger)).toContain(id);
      expect(await mails('health_alert')).toHaveLength(1);

      // An admin's check finds the same change the same way.
      await t.db.query(`UPDATE integrations SET health_status = 'online' WHERE id = $1`, [id]);
      expect((await t.http().post(`/admin/integrations/${id}/health-check`).set(t.admin).send({})).body.status).toBe('offline');
      expect(await mails('health_alert')).toHaveLength(2);
    });
  });
});
