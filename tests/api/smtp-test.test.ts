/**
 * `POST /admin/settings/smtp/test` against real SMTP servers on loopback: the server's reply on success, and each
 * failure by its stage (settings, connect, tls, auth, recipient); invalid smtp settings are 422 naming the key; the
 * admin outbox list (filters, paging) and retry.
 */
import { enqueueMail } from '../../server/domain/notifications';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { closedPort } from '../support/loopback-server';
import { mintTestToken } from '../support/orders';
import { createCa } from '../support/pki';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp-server';

jest.setTimeout(60_000);

const CREDENTIALS = { user: 'provisio', pass: 'smtp-test-pa55word-xyz' };

describe(`SMTP test and the admin outbox (${testEngine})`, () => {
  let t: TestApp;
  let starttls: TestSmtpServer;
  let implicit: TestSmtpServer;
  let noStartTls: TestSmtpServer;

  /** Replaces the whole smtp section with `values`. */
  async function setSmtp(values: Record<string, unknown>): Promise<void> {
    const keys = ['host', 'port', 'username', 'password', 'from_address', 'from_name', 'tls_mode', 'reply_to', 'ca_cert_pem'];
    const res = await t.http().put('/admin/settings/smtp').set(t.admin).send({ ...Object.fromEntries(keys.map((k) => [k, null])), ...values });
    expect({ status: res.status, body: res.status === 200 ? null : res.body }).toEqual({ status: 200, body: null });
  }

  const test_ = (to = 'it-ops@example.com') => t.http().post('/admin/settings/smtp/test').set(t.admin).send({ to });

  beforeAll(async () => {
    t = await createTestApp();
    const ca = createCa('provisio smtp-test CA');
    starttls = await startSmtpServer({ tls: 'starttls', auth: CREDENTIALS, ca });
    implicit = await startSmtpServer({ tls: 'implicit', auth: CREDENTIALS, ca });
    noStartTls = await startSmtpServer({ tls: 'starttls', ca, offerStartTls: false });
  });

  afterAll(async () => {
    await starttls?.stop();
    await implicit?.stop();
    await noStartTls?.stop();
    await t?.close();
  });

  test('an unconfigured section is 409 SMTP_NOT_CONFIGURED naming what is missing', async () => {
    const res = await test_();
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'SMTP_NOT_CONFIGURED', missing: ['host', 'from_address'], mail_code: 'NOT_CONFIGURED' });
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    await setSmtp({ ...starttls.settings(), password: null });
    const half = await test_();
    expect(half.status).toBe(409);
    expect(half.body).toMatchObject({ code: 'SMTP_NOT_CONFIGURED', missing: ['password'] });
  });

  test('STARTTLS + AUTH: 200 with the server reply; the mail arrives; the password is in neither', async () => {
    await setSmtp(starttls.settings());
    const res = await test_('it-ops@example.com');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ response: expect.stringMatching(/^250 2\.0\.0 Ok: queued as T\d+$/), message_id: expect.stringMatching(/^<.+@example\.com>$/), accepted: ['it-ops@example.com'], rejected: [] });
    const mail = await starttls.waitForMail((m) => m.messageId === res.body.message_id);
    expect(mail).toMatchObject({ subject: 'provisio SMTP test', secure: true, user: 'provisio', envelope: { from: 'provisio@example.com', to: ['it-ops@example.com'] } });
    expect(mail.text).toContain(`127.0.0.1:${starttls.port}, STARTTLS, authenticated as provisio`);
    expect(mail.text).toContain('admin:key');
    expect(mail.raw).not.toContain(CREDENTIALS.pass);
    expect(JSON.stringify(res.body)).not.toContain(CREDENTIALS.pass);
  });

  test('implicit TLS: 200, delivered to the TLS port', async () => {
    await setSmtp(implicit.settings());
    const res = await test_('tls@example.com');
    expect(res.status).toBe(200);
    await implicit.waitForMail((m) => m.messageId === res.body.message_id);
  });

  test('each failure is 502 SMTP_FAILED naming its stage', async () => {
    // connect: nothing listens.
    await setSmtp({ ...starttls.settings(), port: await closedPort() });
    let res = await test_();
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'SMTP_FAILED', stage: 'connect', mail_code: 'CONNECTION' });
    expect(res.body.detail).toMatch(/ECONNREFUSED/);

    // tls: a certificate no trusted CA issued (the system store, then another private CA).
    await setSmtp({ ...starttls.settings(), ca_cert_pem: null });
    res = await test_();
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'SMTP_FAILED', stage: 'tls', mail_code: 'TLS' });
    expect(res.body.detail).toContain('unable to verify the first certificate');
    await setSmtp({ ...implicit.settings(), ca_cert_pem: createCa('another CA').certPem });
    res = await test_();
    expect(res.body).toMatchObject({ code: 'SMTP_FAILED', stage: 'tls' });

    // tls: STARTTLS is required; a server that does not offer it gets nothing, the password least of all.
    await setSmtp({ ...noStartTls.settings(), username: 'provisio', password: CREDENTIALS.pass });
    res = await test_();
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'SMTP_FAILED', stage: 'tls', mail_code: 'TLS' });
    expect(noStartTls.mails).toHaveLength(0);

    // auth: the server refuses the password.
    await setSmtp({ ...starttls.settings(), password: 'not-the-password' });
    res = await test_();
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'SMTP_FAILED', stage: 'auth', mail_code: 'AUTH', smtp_code: 535, smtp_response: '535 5.7.8 Authentication credentials invalid' });
    expect(JSON.stringify(res.body)).not.toContain('not-the-password');

    // recipient: the server refuses the address.
    await setSmtp(starttls.settings());
    starttls.refuseRecipients((a) => a === 'nobody@example.com');
    try {
      res = await test_('nobody@example.com');
    } finally {
      starttls.refuseRecipients(undefined);
    }
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'SMTP_FAILED', stage: 'recipient', mail_code: 'RECIPIENT_REFUSED', smtp_code: 550, rejected: ['nobody@example.com'] });
  });

  test('bad input: a `to` that is no address (or smuggles a header) is 422 naming it; invalid smtp settings are 422 naming the key', async () => {
    for (const to of ['jane@example.com\r\nBcc: evil@example.com', 'not an address']) {
      const res = await test_(to);
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [expect.objectContaining({ path: '/body/to' })] });
    }
    const cases: [Record<string, unknown>, string][] = [
      [{ port: 70000 }, '/body/port'],
      [{ tls_mode: 'none' }, '/body/tls_mode'],
      [{ from_address: 'provisio\r\n@example.com' }, '/body/from_address'],
      [{ from_name: 'provisio\nBcc: x@example.com' }, '/body/from_name'],
      [{ ca_cert_pem: 'not a certificate' }, '/body/ca_cert_pem'],
      [{ ca_cert_pem: '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n' }, '/body/ca_cert_pem'],
    ];
    for (const [body, path] of cases) {
      const res = await t.http().put('/admin/settings/smtp').set(t.admin).send(body);
      expect({ body, status: res.status, paths: (res.body.errors as { path: string }[]).map((e) => e.path) }).toEqual({ body, status: 422, paths: [path] });
    }
  });

  test('GET /admin/outbox lists with filters and paging; POST retry queues a dead or failed item again, audited', async () => {
    // No worker runs in this file: rows stay where they are put.
    const ids: number[] = [];
    for (const [template, to] of [['decision', 'a@example.com'], ['expiry_warning', 'b@example.com'], ['decision', 'c@example.com']] as const) {
      const data =
        template === 'decision'
          ? { order_id: 1, asset_type_name: 'VDI', decision: 'approved' as const }
          : { order_id: 2, asset_type_name: 'VDI', requested_until: '2027-01-01T00:00:00.000Z', days_left: 2 };
      ids.push((await t.db.transaction((tx) => enqueueMail(tx, t.queue, { template, to: [to], data } as never, { triggeredBy: 'system:test' }))).id);
    }
    const [dead, failed, sent] = ids as [number, number, number];
    await t.db.query(`UPDATE outbox SET state = 'dead', attempts = 10, next_attempt_at = NULL, last_error = '[connect] SMTP connection failed', last_error_code = 'CONNECTION' WHERE id = $1`, [dead]);
    await t.db.query(`UPDATE outbox SET state = 'failed', attempts = 1, next_attempt_at = NULL, last_error = '[recipient] refused', last_error_code = 'RECIPIENT_REFUSED', server_response = '550 5.1.1 no' WHERE id = $1`, [failed]);
    await t.db.query(`UPDATE outbox SET state = 'sent', attempts = 1, next_attempt_at = NULL, sent_at = now(), server_response = '250 ok', message_id = '<m@example.com>' WHERE id = $1`, [sent]);

    const all = await t.http().get('/admin/outbox?limit=2').set(t.admin);
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ total: 3, limit: 2, offset: 0 });
    expect(all.body.items.map((i: { id: number }) => i.id)).toEqual([sent, failed]);
    const second = await t.http().get('/admin/outbox?limit=2&offset=2').set(t.admin);
    expect(second.body.items.map((i: { id: number }) => i.id)).toEqual([dead]);
    expect(second.body.items[0]).toEqual({
      id: dead,
      channel: 'mail',
      template: 'decision',
      to: ['a@example.com'],
      cc: [],
      state: 'dead',
      attempts: 10,
      next_attempt_at: null,
      last_error: '[connect] SMTP connection failed',
      last_error_code: 'CONNECTION',
      server_response: null,
      message_id: null,
      triggered_by: 'system:test',
      created_at: expect.any(String),
      updated_at: expect.any(String),
      sent_at: null,
    });
    const filtered = async (q: string) => ((await t.http().get(`/admin/outbox?${q}`).set(t.admin)).body.items as { id: number }[]).map((i) => i.id);
    expect(await filtered('state=failed')).toEqual([failed]);
    expect(await filtered('template=decision')).toEqual([sent, dead]);
    expect(await filtered('channel=teams')).toEqual([]);
    expect(await filtered('template=decision&state=sent')).toEqual([sent]);
    expect((await t.http().get('/admin/outbox?state=lost').set(t.admin)).status).toBe(400);

    // An auditor reads, and may not retry.
    const auditor = await mintTestToken(t.db, 'outbox-reader', ['admin:read']);
    expect((await t.http().get('/admin/outbox').set({ Authorization: `Bearer ${auditor}` })).status).toBe(200);
    expect((await t.http().post(`/admin/outbox/${dead}/retry`).set({ Authorization: `Bearer ${auditor}` })).status).toBe(403);

    for (const id of [dead, failed]) {
      const res = await t.http().post(`/admin/outbox/${id}/retry`).set(t.admin);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id, state: 'queued', attempts: 0, next_attempt_at: expect.any(String) });
    }
    const retried = await t.db.query<{ entity_id: string; diff: unknown; triggered_by: string }>(
      `SELECT entity_id, diff, triggered_by FROM audit_log WHERE entity = 'notification' AND action = 'retry' ORDER BY id`,
    );
    expect(retried.rows).toEqual([
      { entity_id: String(dead), diff: { before: { state: 'dead', attempts: 10 }, after: { state: 'queued', attempts: 0 } }, triggered_by: 'admin:key' },
      { entity_id: String(failed), diff: { before: { state: 'failed', attempts: 1 }, after: { state: 'queued', attempts: 0 } }, triggered_by: 'admin:key' },
    ]);
    // Each retry sent its job in the same transaction.
    const jobs = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'outbox.send' AND (data->>'id')::bigint = ANY($1::bigint[])`, [[dead, failed]]);
    expect(jobs.rows[0]!.n).toBe(4);

    const conflict = await t.http().post(`/admin/outbox/${sent}/retry`).set(t.admin);
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({ code: 'CONFLICT', outbox_state: 'sent' });
    expect((await t.http().post('/admin/outbox/999999/retry').set(t.admin)).status).toBe(404);
  });
});
