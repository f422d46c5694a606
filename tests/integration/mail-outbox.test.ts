/**
 * Mail, durably: the outbox against a real SMTP server on loopback (smtp-server, STARTTLS and implicit TLS under a
 * test CA, AUTH), mails parsed with mailparser. Rows are committed with the caller's change and sent after the commit
 * by the registered worker (pg-boss jobs); failures leave them queued with why and when; nothing is lost while the
 * server is down; a worker that dies mid-send leaves a claim that expires and the mail is sent again (same
 * Message-ID); header injection is refused before anything is stored; every template renders both parts, escaped.
 */
import { createMailer, MailError, resolveSmtpSettings, writeAudit, type JobQueue } from '../../adapter';
import {
  createMailSender,
  createOutboxWorker,
  enqueueMail,
  enqueueNotification,
  MAIL_TEMPLATES,
  renderMail,
  type MailTemplate,
  type MailTemplateData,
  type OutboxWorker,
} from '../../server/domain/notifications';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { createMemoryLogger } from '../support/memory-logger';
import { createCa } from '../support/pki';
import { startSmtpServer, type ReceivedMail, type TestSmtpServer } from '../support/smtp-server';

jest.setTimeout(60_000);

const PUBLIC_URL = 'https://provisio.example.com';
const linkUrl = (id: string) => `${PUBLIC_URL}/approvals/links/${encodeURIComponent(id)}`;
const CREDENTIALS = { user: 'provisio', pass: 'smtp-pa55word-never-logged' };
const actor = { triggeredBy: 'system:test' };

const approval = (orderId: number, extra: Partial<MailTemplateData['approval_request']> = {}): MailTemplateData['approval_request'] => ({
  order_id: orderId,
  approval_id: orderId * 10,
  asset_type_name: 'Standard VDI',
  requester_email: 'jane@example.com',
  requester_name: 'Jane Doe',
  requested_from: '2026-12-01T08:00:00.000Z',
  requested_until: '2027-01-31T17:00:00.000Z',
  reason: 'Project Atlas needs a build machine',
  cost: { amount: 42.5, currency: 'EUR' },
  links: { approve: `lnk-approve-${orderId}`, decline: `lnk-decline-${orderId}` },
  ...extra,
});

describe(`mail outbox (${testEngine})`, () => {
  let t: TestApp;
  let smtp: TestSmtpServer;
  let implicit: TestSmtpServer;
  let worker: OutboxWorker;
  const memory = createMemoryLogger();

  async function putSmtp(values: Record<string, unknown>): Promise<void> {
    const res = await t.http().put('/admin/settings/smtp').set(t.admin).send(values);
    expect({ status: res.status, body: res.status === 200 ? null : res.body }).toEqual({ status: 200, body: null });
  }

  async function queueMail<T extends MailTemplate>(template: T, to: string[], data: MailTemplateData[T], cc?: string[]): Promise<number> {
    const { id } = await t.db.transaction((tx) => enqueueMail(tx, t.queue, { template, to, ...(cc ? { cc } : {}), data }, actor));
    return id;
  }

  async function row(id: number): Promise<Record<string, unknown>> {
    const { rows } = await t.db.query<Record<string, unknown>>(`SELECT * FROM outbox WHERE id = $1`, [id]);
    return rows[0]!;
  }

  /** Polls the row until `ok` holds (the worker runs in the background). */
  async function until(id: number, ok: (r: Record<string, unknown>) => boolean, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const r = await row(id);
      if (ok(r)) return r;
      if (Date.now() > end) throw new Error(`outbox row ${id} never reached the expected state: ${JSON.stringify(r)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  const byMessageId = (id: number) => (m: ReceivedMail) => (m.messageId ?? '').startsWith(`<outbox.${id}.`);

  beforeAll(async () => {
    t = await createTestApp();
    const ca = createCa('provisio test mail CA');
    smtp = await startSmtpServer({ tls: 'starttls', auth: CREDENTIALS, ca });
    implicit = await startSmtpServer({ tls: 'implicit', auth: CREDENTIALS, ca });
    await putSmtp({ ...smtp.settings(), reply_to: 'it-help@example.com', from_name: 'provisio' });
    worker = createOutboxWorker({
      db: t.db,
      queue: t.queue,
      logger: memory.logger,
      publicUrl: PUBLIC_URL,
      linkUrl,
      // Quick retries for the test: 1 s apart, 8 attempts, so a row dies within seconds when it must.
      retry: { baseDelaySeconds: 1, maxDelaySeconds: 1, maxAttempts: 8 },
      pollingIntervalSeconds: 0.5,
    });
    await worker.register();
  });

  afterAll(async () => {
    await worker?.stop();
    await smtp?.stop();
    await implicit?.stop();
    await t?.close();
  });

  test('STARTTLS + AUTH: committed with the change, sent after it; headers, both parts, links, the row and the audit', async () => {
    const id = await t.db.transaction(async (tx) => {
      const queued = await enqueueMail(
        tx,
        t.queue,
        { template: 'approval_request', to: ['deputy@example.com'], cc: ['boss@example.com'], data: approval(101, { on_behalf_of: 'boss@example.com' }) },
        { triggeredBy: 'portal:jane@example.com', requestId: 'req-101' },
      );
      // Nothing leaves before the commit: the row is invisible to the worker until then.
      await new Promise((r) => setTimeout(r, 700));
      expect(smtp.mails.some(byMessageId(queued.id))).toBe(false);
      return queued.id;
    });
    const mail = await smtp.waitForMail(byMessageId(id));
    expect(mail.secure).toBe(true);
    expect(mail.user).toBe('provisio');
    expect(mail.envelope).toEqual({ from: 'provisio@example.com', to: ['deputy@example.com', 'boss@example.com'] });
    expect(mail.from?.value).toEqual([{ name: 'provisio', address: 'provisio@example.com' }]);
    expect(mail.replyTo?.value).toEqual([{ name: '', address: 'it-help@example.com' }]);
    expect(mail.subject).toBe('Approval needed: Standard VDI for Jane Doe (order #101)');
    expect(mail.messageId).toMatch(new RegExp(`^<outbox\\.${id}\\.\\d+@example\\.com>$`));
    // Both parts, each with the order's facts and the rendered links.
    expect(mail.text).toContain('Jane Doe <jane@example.com> asks for Standard VDI (order #101)');
    expect(mail.text).toContain('You are deciding for boss@example.com, who is copied on this mail.');
    expect(mail.text).toContain('Reason: Project Atlas needs a build machine');
    expect(mail.text).toContain('Cost: 42.50 EUR per month');
    expect(mail.text).toContain('Until: 2027-01-31 17:00 UTC');
    expect(mail.text).toContain(`Approve: ${PUBLIC_URL}/approvals/links/lnk-approve-101`);
    expect(mail.text).toContain(`Decline: ${PUBLIC_URL}/approvals/links/lnk-decline-101`);
    expect(mail.html).toContain(`<a href="${PUBLIC_URL}/approvals/links/lnk-approve-101"`);
    expect(mail.html).toContain(`<a href="${PUBLIC_URL}/approvals/links/lnk-decline-101"`);
    expect(mail.html).toContain('Jane Doe &lt;jane@example.com&gt;');
    expect(mail.raw).toMatch(/^Content-Type: multipart\/alternative/m);

    const r = await until(id, (x) => x['state'] === 'sent');
    expect(r).toMatchObject({ channel: 'mail', template: 'approval_request', recipients_to: ['deputy@example.com'], recipients_cc: ['boss@example.com'], attempts: 1 });
    expect(r['server_response']).toMatch(/^250 .*queued as/);
    expect(r['message_id']).toBe(mail.messageId);
    expect(r['next_attempt_at']).toBeNull();
    expect(r['sent_at']).not.toBeNull();
    // The row keeps link ids, never URLs.
    expect(JSON.stringify(r['data'])).not.toContain('https://');
    const audit = await t.db.query<{ action: string; triggered_by: string; request_id: string; diff: Record<string, unknown> }>(
      `SELECT action, triggered_by, request_id, diff FROM audit_log WHERE entity = 'notification' AND entity_id = $1`,
      [String(id)],
    );
    expect(audit.rows).toEqual([
      {
        action: 'queued',
        triggered_by: 'portal:jane@example.com',
        request_id: 'req-101',
        diff: { before: null, after: { channel: 'mail', template: 'approval_request', to: ['deputy@example.com'], cc: ['boss@example.com'] } },
      },
    ]);
    // A rolled-back change leaves neither a row nor a mail.
    const before = (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox`)).rows[0]!.n;
    await expect(
      t.db.transaction(async (tx) => {
        await enqueueMail(tx, t.queue, { template: 'approval_request', to: ['ghost@example.com'], data: approval(102) }, actor);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect((await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox`)).rows[0]!.n).toBe(before);
  });

  test('implicit TLS: the transport is rebuilt when the settings change, and the mail goes to the TLS port', async () => {
    await putSmtp(implicit.settings());
    try {
      const id = await queueMail('expiry_warning', ['jane@example.com'], { order_id: 7, asset_type_name: 'SaaS seat', requester_name: 'Jane', requested_until: '2027-02-01T00:00:00.000Z', days_left: 3 });
      const mail = await implicit.waitForMail(byMessageId(id));
      expect(mail.secure).toBe(true);
      expect(mail.subject).toBe('SaaS seat ends in 3 days (order #7)');
      expect(smtp.mails.some(byMessageId(id))).toBe(false);
      await until(id, (x) => x['state'] === 'sent');
    } finally {
      await putSmtp(smtp.settings());
    }
  });

  test('an untrusted certificate is refused (stage tls) until ca_cert_pem trusts its CA; the row says so meanwhile', async () => {
    // Node's trust store does not know the test CA, and another private CA is no better.
    for (const ca_cert_pem of [null, createCa('some other CA').certPem]) {
      await putSmtp({ ca_cert_pem });
      const id = await queueMail('health_alert', ['ops@example.com'], { integration_id: 3, integration_name: 'ServiceNow', previous_status: 'online', status: 'offline', detail: 'connect ECONNREFUSED', http_status: null });
      const r = await until(id, (x) => Number(x['attempts']) >= 1 && x['last_error_code'] !== null);
      expect(r).toMatchObject({ state: 'queued', last_error_code: 'TLS' });
      expect(String(r['last_error'])).toMatch(/^\[tls\] SMTP TLS failed: unable to verify the first certificate/);
      expect(new Date(String(r['next_attempt_at'])).getTime()).toBeGreaterThan(Date.now() - 1000);
      expect(smtp.mails.some(byMessageId(id))).toBe(false);
      await putSmtp({ ca_cert_pem: smtp.ca });
      await smtp.waitForMail(byMessageId(id));
      expect(await until(id, (x) => x['state'] === 'sent')).toMatchObject({ last_error: null, last_error_code: null });
    }
  });

  test('auth refused: the mail stays queued with the reason and is retried; sent once the server takes the password', async () => {
    smtp.setCredentials({ user: 'provisio', pass: 'rotated-on-the-server' });
    try {
      const id = await queueMail('decision', ['jane@example.com'], { order_id: 9, asset_type_name: 'Standard VDI', requester_name: 'Jane', decision: 'declined', decided_by: 'boss@example.com', reason: 'no budget' });
      const first = await until(id, (x) => Number(x['attempts']) >= 1 && x['last_error_code'] === 'AUTH');
      expect(first['state']).toBe('queued');
      expect(String(first['last_error'])).toContain('[auth] SMTP authentication refused');
      expect(first['server_response']).toMatch(/^535 /);
      // Retried with backoff, still refused (the second failure recorded, not just its attempt begun).
      const second = await until(id, (x) => Number(x['attempts']) >= 2 && x['state'] === 'queued');
      expect(second['last_error_code']).toBe('AUTH');
      expect(smtp.mails.some(byMessageId(id))).toBe(false);
      smtp.setCredentials(CREDENTIALS);
      const mail = await smtp.waitForMail(byMessageId(id));
      expect(mail.subject).toBe('Your request for Standard VDI was declined (order #9)');
      expect(mail.text).toContain('Reason: no budget');
      const r = await until(id, (x) => x['state'] === 'sent');
      expect(Number(r['attempts'])).toBeGreaterThanOrEqual(3);
    } finally {
      smtp.setCredentials(CREDENTIALS);
    }
    // The password reached no log line.
    expect(memory.text()).not.toContain(CREDENTIALS.pass);
  });

  test('SMTP down, then up: the changes commit at once, every mail enqueued meanwhile is delivered exactly once', async () => {
    await smtp.setDown(true);
    const ids: number[] = [];
    try {
      for (let i = 0; i < 8; i++) {
        const started = Date.now();
        // The mail rides along with a change of the caller's; SMTP being down does not touch it.
        ids.push(
          await t.db.transaction(async (tx) => {
            await writeAudit(tx, { entity: 'order', entityId: 500 + i, action: 'approved', after: { status: 'processing' }, triggeredBy: 'system:test' });
            return (await enqueueMail(tx, t.queue, { template: 'approval_request', to: [`approver${i}@example.com`], data: approval(500 + i) }, actor)).id;
          }),
        );
        expect(Date.now() - started).toBeLessThan(2000);
      }
      for (const id of ids) {
        const r = await until(id, (x) => Number(x['attempts']) >= 1 && x['last_error_code'] === 'CONNECTION');
        expect(r['state']).toBe('queued');
        expect(String(r['last_error'])).toMatch(/^\[connect\] SMTP connection failed: .*ECONNREFUSED/);
      }
    } finally {
      await smtp.setDown(false);
    }
    const mails = await smtp.waitForMails(ids.length, (m) => ids.some((id) => byMessageId(id)(m)), 20_000);
    for (const id of ids) await until(id, (x) => x['state'] === 'sent');
    // Each exactly once.
    await new Promise((r) => setTimeout(r, 1500));
    for (const id of ids) expect(smtp.mails.filter(byMessageId(id))).toHaveLength(1);
    expect(mails.map((m) => m.envelope.to[0]).sort()).toEqual(ids.map((_, i) => `approver${i}@example.com`).sort());
  });

  test('every attempt failing ends dead; an admin retry queues it again and it is delivered', async () => {
    await smtp.setDown(true);
    let id = 0;
    try {
      id = await queueMail('leaver_notice', ['manager@example.com'], { leaver_emails: ['lee@example.com'], revoked: [{ order_id: 1, asset_type_name: 'VDI', asset_name: 'vdi-07' }], cancelled: [] });
      const dead = await until(id, (x) => x['state'] === 'dead', 30_000);
      expect(dead).toMatchObject({ attempts: 8, next_attempt_at: null, last_error_code: 'CONNECTION' });
    } finally {
      await smtp.setDown(false);
    }
    const res = await t.http().post(`/admin/outbox/${id}/retry`).set(t.admin);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, state: 'queued', attempts: 0, last_error_code: 'CONNECTION' });
    const mail = await smtp.waitForMail(byMessageId(id));
    expect(mail.subject).toBe('Leaver lee@example.com: 1 access revoked, 0 requests cancelled');
    expect(await until(id, (x) => x['state'] === 'sent')).toMatchObject({ attempts: 1 });
  });

  test('a permanent refusal (550 recipient) fails the row at once, without retries', async () => {
    smtp.refuseRecipients((a) => a === 'nobody@example.com');
    try {
      const id = await queueMail('expiry_warning', ['nobody@example.com'], { order_id: 8, asset_type_name: 'VDI', requested_until: '2027-02-01T00:00:00.000Z', days_left: 1 });
      const r = await until(id, (x) => x['state'] === 'failed');
      expect(r).toMatchObject({ attempts: 1, last_error_code: 'RECIPIENT_REFUSED', next_attempt_at: null });
      expect(r['server_response']).toMatch(/^550 /);
    } finally {
      smtp.refuseRecipients(undefined);
    }
  });

  test('a worker that dies mid-send: its claim expires and the row is sent again by the sweep (at-least-once, same Message-ID)', async () => {
    // A queue that drops the job: the row has no job, as after a lost job; only the sweep can find it.
    const noJobs = { ...t.queue, send: async () => 'dropped' } as JobQueue;
    const id = (await t.db.transaction((tx) => enqueueMail(tx, noJobs, { template: 'approval_reminder', to: ['slow@example.com'], data: { ...approval(700), reminders_sent: 2 } }, actor))).id;
    // This worker's process "dies" right after the server took the mail, before the row says so.
    const real = createMailSender({ db: t.db, logger: memory.logger });
    const dying = createOutboxWorker({
      db: t.db,
      queue: t.queue,
      logger: memory.logger,
      publicUrl: PUBLIC_URL,
      linkUrl,
      leaseSeconds: 1,
      senders: {
        mail: async (item, ctx) => {
          await real.send(item, ctx);
          return new Promise(() => undefined);
        },
      },
    });
    void dying.process([id]);
    const firstCopy = await smtp.waitForMail(byMessageId(id));
    expect(firstCopy.subject).toBe('Reminder: approval needed: Standard VDI for Jane Doe (order #700)');
    expect(firstCopy.text).toContain('Reminders sent: 2');
    expect(await row(id)).toMatchObject({ state: 'sending', attempts: 1 });
    // Within its lease nobody takes it; after it, the sweep does.
    expect(await worker.sweep({ graceSeconds: 0 })).toEqual([]);
    await new Promise((r) => setTimeout(r, 1200));
    const swept = await worker.sweep({ graceSeconds: 0 });
    expect(swept).toEqual([expect.objectContaining({ id, state: 'sent', attempts: 2 })]);
    const copies = await smtp.waitForMails(2, byMessageId(id));
    expect(copies[1]!.messageId).toBe(copies[0]!.messageId);
    expect(await row(id)).toMatchObject({ state: 'sent', attempts: 2 });
    real.close();
    await dying.stop();
    // A row queued in the past without its job is found by the sweep too.
    const lost = (await t.db.transaction((tx) => enqueueMail(tx, noJobs, { template: 'decision', to: ['jane@example.com'], data: { order_id: 701, asset_type_name: 'VDI', decision: 'approved' } }, actor))).id;
    await t.db.query(`UPDATE outbox SET next_attempt_at = now() - interval '5 minutes' WHERE id = $1`, [lost]);
    expect(await worker.sweep()).toEqual([expect.objectContaining({ id: lost, state: 'sent' })]);
    await smtp.waitForMail(byMessageId(lost));
  });

  test('header injection is refused before anything is stored or sent, naming the field', async () => {
    const count = async () => (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox`)).rows[0]!.n;
    const before = await count();
    const refused = async (n: Parameters<typeof enqueueNotification>[2]) => {
      try {
        await t.db.transaction((tx) => enqueueNotification(tx, t.queue, n, actor));
      } catch (e) {
        return e as { code: string; errors: { path: string }[]; extra: Record<string, unknown> };
      }
      throw new Error('not refused');
    };
    const data = { order_id: 1, asset_type_name: 'VDI', decision: 'approved' };
    expect(await refused({ channel: 'mail', template: 'decision', to: ['jane@example.com\r\nBcc: evil@example.com'], data })).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ path: '/notification/to/0' }],
      extra: { mail_code: 'HEADER_INJECTION' },
    });
    expect(await refused({ channel: 'mail', template: 'decision', to: ['jane@example.com'], cc: ['ok@example.com', 'x@example.com\nBcc: y@example.com'], data })).toMatchObject({
      errors: [{ path: '/notification/cc/1' }],
      extra: { mail_code: 'HEADER_INJECTION' },
    });
    // A display name or a list smuggled into an address field is not an address.
    expect(await refused({ channel: 'mail', template: 'decision', to: ['Jane <jane@example.com>'], data })).toMatchObject({ errors: [{ path: '/notification/to/0' }], extra: { mail_code: 'INVALID_ADDRESS' } });
    expect(await refused({ channel: 'mail', template: 'decision', to: ['a@example.com, b@example.com'], data })).toMatchObject({ extra: { mail_code: 'INVALID_ADDRESS' } });
    // The subject is rendered from the data: a line break there is refused too.
    expect(await refused({ channel: 'mail', template: 'decision', to: ['jane@example.com'], data: { ...data, asset_type_name: 'VDI\r\nBcc: evil@example.com' } })).toMatchObject({
      errors: [{ path: '/notification/subject' }],
      extra: { mail_code: 'HEADER_INJECTION' },
    });
    expect(await refused({ channel: 'mail', template: 'no_such_template', to: ['jane@example.com'], data })).toMatchObject({ errors: [{ path: '/notification/template' }] });
    expect(await count()).toBe(before);

    // The transport checks again, whatever its caller: names, addresses and subjects.
    const mailer = createMailer(resolveSmtpSettings(smtp.settings()), { pool: false });
    const sendRefused = async (m: Parameters<typeof mailer.send>[0]) => {
      const e = await mailer.send(m).then(() => undefined, (x: unknown) => x);
      expect(e).toBeInstanceOf(MailError);
      return e as MailError;
    };
    expect((await sendRefused({ to: [{ name: 'Jane\r\nBcc: evil@example.com', address: 'jane@example.com' }], subject: 's', text: 't' })).details.field).toBe('to[0].name');
    expect((await sendRefused({ to: ['jane@example.com'], subject: 'hello\nBcc: evil@example.com', text: 't' })).details).toEqual({ field: 'subject' });
    expect((await sendRefused({ to: ['jane@example.com'], subject: 'line\u2028separator', text: 't' })).code).toBe('HEADER_INJECTION');
    mailer.close();
    expect(() => resolveSmtpSettings({ ...smtp.settings(), from_name: 'provisio\r\nBcc: x@example.com' })).toThrow(expect.objectContaining({ code: 'HEADER_INJECTION', details: { field: 'from_name' } }));
    // The settings API refuses such a name with 422 naming the key.
    const res = await t.http().put('/admin/settings/smtp').set(t.admin).send({ from_name: 'provisio\r\nBcc: x@example.com' });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([{ path: '/body/from_name', message: expect.any(String) }]);
    expect(smtp.mails.some((m) => m.raw.toLowerCase().includes('evil@example.com'))).toBe(false);
  });
});

describe('mail templates', () => {
  const ctx = { linkUrl, publicUrl: PUBLIC_URL };
  const hostile = '<script>alert("x")</script> & Co';
  const samples: { [T in MailTemplate]: MailTemplateData[T] } = {
    approval_request: approval(1, { asset_type_name: hostile, requester_name: hostile, reason: hostile, on_behalf_of: hostile, quorum: { required: 2, approvers: 3 } }),
    approval_reminder: { ...approval(2, { asset_type_name: hostile, reason: hostile }), reminders_sent: 2 },
    decision: { order_id: 3, asset_type_name: hostile, requester_name: hostile, decision: 'approved', kind: 'extension', requested_until: '2027-03-01T00:00:00.000Z', decided_by: hostile, reason: hostile },
    expiry_warning: { order_id: 4, asset_type_name: hostile, requester_name: hostile, requested_until: '2027-03-01T00:00:00.000Z', days_left: 1 },
    leaver_notice: { leaver_emails: ['lee@example.com'], revoked: [{ order_id: 5, asset_type_name: hostile, asset_name: hostile }], cancelled: [{ order_id: 6, asset_type_name: hostile, asset_name: null }] },
    health_alert: { integration_id: 7, integration_name: hostile, previous_status: 'online', status: 'degraded', detail: hostile, http_status: 503 },
  };

  test.each(MAIL_TEMPLATES.map((name) => [name]))('%s renders a subject, a text part and an HTML part with everything escaped', (name) => {
    const r = renderMail(name, samples[name] as never, ctx);
    expect(r.subject.length).toBeGreaterThan(10);
    expect(r.text).toContain(hostile);
    expect(r.text).toContain(PUBLIC_URL);
    expect(r.html).toMatch(/^<!DOCTYPE html>/);
    expect(r.html).not.toContain('<script>');
    expect(r.html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co');
  });

  test('approval mails: buttons from link ids, the deputy line, the quorum; no links, no buttons', () => {
    const r = renderMail('approval_request', samples.approval_request, ctx);
    expect(r.html).toContain(`href="${PUBLIC_URL}/approvals/links/lnk-approve-1"`);
    expect(r.html).toContain(`href="${PUBLIC_URL}/approvals/links/lnk-decline-1"`);
    expect(r.text).toContain(`You are deciding for ${hostile}, who is copied on this mail.`);
    expect(r.text).toContain('This request needs 2 of 3 approvals');
    const plain = renderMail('approval_request', approval(1, { links: undefined }), ctx);
    expect(plain.html).not.toContain('<a ');
    expect(plain.text).toContain('Decide in provisio');
    const extension = renderMail('approval_request', approval(1, { kind: 'extension' }), ctx);
    expect(extension.subject).toBe('Approval needed: extension of Standard VDI for Jane Doe (order #1)');
    // A link renderer that yields anything but a web address is a bug; no button to it is drawn.
    expect(() => renderMail('approval_request', approval(1), { ...ctx, linkUrl: () => 'javascript:alert(1)' })).toThrow(/http\(s\) URL/);
  });

  test('the decision, expiry, leaver and health texts say what happened', () => {
    expect(renderMail('decision', { order_id: 3, asset_type_name: 'VDI', decision: 'expired', reason: 'undecided since …' }, ctx).text).toContain('was expired without a decision');
    expect(renderMail('expiry_warning', { order_id: 4, asset_type_name: 'VDI', requested_until: '2027-03-01T00:00:00.000Z', days_left: 0 }, ctx).subject).toBe('VDI ends today (order #4)');
    const leaver = renderMail('leaver_notice', samples.leaver_notice, ctx).text;
    expect(leaver).toContain('Revoked:');
    expect(leaver).toContain('Cancelled (not yet provisioned):');
    const health = renderMail('health_alert', samples.health_alert, ctx);
    expect(health.text).toContain('HTTP status: 503');
    expect(health.text).toContain('State: degraded');
  });
});
