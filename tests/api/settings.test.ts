import { createHmac } from 'node:crypto';
import { isSealed, openSecret, secretPlace } from '../../adapter';
import { createTestApp, type TestApp } from '../support/app';

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

describe('settings', () => {
  let t: TestApp;
  let seq = 0;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  async function mint(scopes: string[], role?: string): Promise<string> {
    const res = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: `settings-${++seq}`, scopes, ...(role ? { role } : {}) });
    expect(res.status).toBe(201);
    return res.body.token as string;
  }
  const auditRows = async (section: string) =>
    (
      await t.db.query<{ diff: { before: Record<string, unknown>; after: Record<string, unknown> }; triggered_by: string; action: string }>(
        `SELECT diff, triggered_by, action FROM audit_log WHERE entity = 'settings' AND entity_id = $1 ORDER BY id`,
        [section],
      )
    ).rows;

  test('lists the known sections with their JSON Schemas and secret keys', async () => {
    const res = await t.http().get('/admin/settings').set(t.admin);
    expect(res.status).toBe(200);
    const bySection = Object.fromEntries(res.body.items.map((s: { section: string }) => [s.section, s]));
    expect(Object.keys(bySection)).toEqual(expect.arrayContaining(['servicenow', 'api_tokens', 'active_directory', 'smtp']));
    expect(bySection.servicenow.secret_keys).toEqual(['webhook_secret']);
    expect(bySection.smtp.secret_keys).toEqual(['password']);
    expect(bySection.active_directory.secret_keys).toEqual(['bind_password', 'kerberos_keytab']);
    expect(bySection.api_tokens.schema.properties.purge_after_days).toMatchObject({ type: 'integer', minimum: 0 });
    expect(Object.keys(bySection.active_directory.schema.properties)).toEqual(
      expect.arrayContaining(['server', 'port', 'bind_dn', 'bind_password', 'base_dn', 'auth_type', 'use_tls', 'start_tls',
        'department_attribute', 'cost_center_attribute', 'company_attribute', 'employee_id_attribute', 'title_attribute']),
    );
  });

  test('an unset section reads empty, with every secret marked not configured; unknown sections are 404', async () => {
    const res = await t.http().get('/admin/settings/smtp').set(t.admin);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ section: 'smtp', values: {}, secrets: { password: { configured: false } }, updated_at: null, updated_by: null });

    const unknown = await t.http().get('/admin/settings/nope').set(t.admin);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ code: 'NOT_FOUND', detail: expect.stringContaining("unknown settings section 'nope'") });
    // The admin key's hash lives in app_config too, under a section the API does not expose.
    expect((await t.http().get('/admin/settings/security').set(t.admin)).status).toBe(404);
    const put = await t.http().put('/admin/settings/nope').set(t.admin).send({ a: 1 });
    expect(put.status).toBe(404);
  });

  test('PUT merges keys, null deletes one, and secrets are write-only', async () => {
    const first = await t.http().put('/admin/settings/smtp').set(t.admin).send({
      host: 'smtp.example.com',
      port: 587,
      username: 'provisio',
      password: 'smtp-pa55word-never-shown',
      from_address: 'provisio@example.com',
      tls_mode: 'starttls',
      reply_to: 'it@example.com',
    });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      section: 'smtp',
      values: { host: 'smtp.example.com', port: 587, username: 'provisio', from_address: 'provisio@example.com', tls_mode: 'starttls', reply_to: 'it@example.com' },
      secrets: { password: { configured: true } },
      updated_by: 'admin:key',
    });
    expect(first.body.values).not.toHaveProperty('password');
    expect(JSON.stringify(first.body)).not.toContain('smtp-pa55word-never-shown');

    const second = await t.http().put('/admin/settings/smtp').set(t.admin).send({ port: 465, tls_mode: 'tls', reply_to: null });
    expect(second.status).toBe(200);
    expect(second.body.values).toEqual({ host: 'smtp.example.com', port: 465, username: 'provisio', from_address: 'provisio@example.com', tls_mode: 'tls' });
    expect(second.body.secrets).toEqual({ password: { configured: true } });

    const read = await t.http().get('/admin/settings/smtp').set(t.admin);
    expect(read.body).toEqual(second.body);
    expect(JSON.stringify(read.body)).not.toContain('smtp-pa55word-never-shown');

    const { rows } = await t.db.query<{ key: string; value: unknown; is_secret: boolean }>(
      `SELECT key, value, is_secret FROM app_config WHERE section = 'smtp' ORDER BY key`,
    );
    // Stored sealed (secrets at rest); opened at its place it is the value given.
    const password = rows.find((r) => r.key === 'smtp.password');
    expect(password).toEqual({ key: 'smtp.password', value: expect.stringMatching(/^enc:v1:/), is_secret: true });
    expect(await openSecret(t.db, password!.value, secretPlace.setting('smtp.password'))).toBe('smtp-pa55word-never-shown');
    expect(rows.find((r) => r.key === 'smtp.port')).toEqual({ key: 'smtp.port', value: 465, is_secret: false });
    expect(rows.some((r) => r.key === 'smtp.reply_to')).toBe(false);

    const cleared = await t.http().put('/admin/settings/smtp').set(t.admin).send({ password: null });
    expect(cleared.body.secrets).toEqual({ password: { configured: false } });
  });

  test('every change is audited; secrets only as set/deleted, never by value', async () => {
    await t.http().put('/admin/settings/active_directory').set(t.admin).send({ server: 'dc1.corp.example', port: 636, use_tls: true, bind_password: 'ad-s3cret-value-xyz' });
    const change = await t.http().put('/admin/settings/active_directory').set(t.admin).send({ port: 389, use_tls: false, start_tls: true, bind_password: 'ad-s3cret-value-2' });
    expect(change.status).toBe(200);
    await t.http().put('/admin/settings/active_directory').set(t.admin).send({ bind_password: null });
    // Writing the same values again changes nothing and writes no audit row.
    await t.http().put('/admin/settings/active_directory').set(t.admin).send({ server: 'dc1.corp.example' });

    const rows = await auditRows('active_directory');
    expect(rows).toHaveLength(3);
    for (const r of rows) {
      expect(r.action).toBe('update');
      expect(r.triggered_by).toBe('admin:key');
      expect(JSON.stringify(r.diff)).not.toContain('ad-s3cret');
      expect(JSON.stringify(r.diff)).not.toContain('bind_password":');
    }
    expect(rows[0]!.diff).toEqual({
      before: { server: null, port: null, use_tls: null, write_only_changed: null },
      after: { server: 'dc1.corp.example', port: 636, use_tls: true, write_only_changed: [{ key: 'bind_password', change: 'set' }] },
    });
    expect(rows[1]!.diff).toEqual({
      before: { port: 636, use_tls: true, start_tls: null, write_only_changed: null },
      after: { port: 389, use_tls: false, start_tls: true, write_only_changed: [{ key: 'bind_password', change: 'set' }] },
    });
    expect(rows[2]!.diff).toEqual({
      before: { write_only_changed: null },
      after: { write_only_changed: [{ key: 'bind_password', change: 'deleted' }] },
    });
  });

  test('an unknown key or a wrong type is 422 naming each key, and nothing is written', async () => {
    const res = await t.http().put('/admin/settings/smtp').set(t.admin).send({ host: 'mail.example.com', colour: 'blue', port: '587' });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.errors).toEqual([
      { path: '/body/colour', message: expect.stringContaining("is not a setting of section 'smtp'") },
      { path: '/body/port', message: 'must be integer' },
    ]);
    expect(res.body.detail).toContain('colour');
    const read = await t.http().get('/admin/settings/smtp').set(t.admin);
    expect(read.body.values.host).toBe('smtp.example.com');

    const cases: [string, Record<string, unknown>, string][] = [
      ['api_tokens', { purge_after_days: -1 }, '/body/purge_after_days'],
      ['api_tokens', { purge_after_days: 1.5 }, '/body/purge_after_days'],
      ['active_directory', { auth_type: 'basic' }, '/body/auth_type'],
      ['active_directory', { use_tls: 'yes' }, '/body/use_tls'],
      ['active_directory', { title_attribute: 'not an attribute' }, '/body/title_attribute'],
      ['smtp', { from_address: 'not-an-email' }, '/body/from_address'],
      ['smtp', { port: 70000 }, '/body/port'],
      ['servicenow', { webhook_secret: 'short' }, '/body/webhook_secret'],
    ];
    for (const [section, body, path] of cases) {
      const r = await t.http().put(`/admin/settings/${section}`).set(t.admin).send(body);
      expect({ section, body, status: r.status, path: r.body.errors?.[0]?.path }).toEqual({ section, body, status: 422, path });
    }
    // The secret's value never comes back, not even in a validation error.
    const r = await t.http().put('/admin/settings/servicenow').set(t.admin).send({ webhook_secret: 'short' });
    expect(JSON.stringify(r.body)).not.toContain('"short"');

    const empty = await t.http().put('/admin/settings/smtp').set(t.admin).send({});
    expect(empty.status).toBe(422);
    const notObject = await t.http().put('/admin/settings/smtp').set(t.admin).send([1]);
    expect(notObject.status).toBe(422);
  });

  test('cross-key rules see the section as it would be after the change', async () => {
    expect((await t.http().put('/admin/settings/active_directory').set(t.admin).send({ use_tls: true, start_tls: false })).status).toBe(200);
    const both = await t.http().put('/admin/settings/active_directory').set(t.admin).send({ start_tls: true });
    expect(both.status).toBe(422);
    expect(both.body.errors).toEqual([{ path: '/body/start_tls', message: 'cannot be true together with use_tls (LDAPS already uses TLS)' }]);
    const swap = await t.http().put('/admin/settings/active_directory').set(t.admin).send({ use_tls: null, start_tls: true });
    expect(swap.status).toBe(200);
    expect(swap.body.values).toMatchObject({ start_tls: true });
    expect(swap.body.values).not.toHaveProperty('use_tls');
  });

  test('api_tokens.purge_after_days is stored as a number', async () => {
    const res = await t.http().put('/admin/settings/api_tokens').set(t.admin).send({ purge_after_days: 90 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ section: 'api_tokens', values: { purge_after_days: 90 }, secrets: {} });
    const { rows } = await t.db.query<{ value: unknown }>(`SELECT value FROM app_config WHERE key = 'api_tokens.purge_after_days'`);
    expect(rows[0]!.value).toBe(90);
  });

  test('reading needs admin:read and an admin or auditor role; writing needs admin:* and superadmin or admin', async () => {
    const auditor = await mint(['admin:*'], 'auditor');
    expect((await t.http().get('/admin/settings/smtp').set(bearer(auditor))).status).toBe(200);
    const put = await t.http().put('/admin/settings/smtp').set(bearer(auditor)).send({ port: 25 });
    expect(put.status).toBe(403);
    expect(put.body.code).toBe('FORBIDDEN');

    const reader = await mint(['admin:read']);
    expect((await t.http().get('/admin/settings').set(bearer(reader))).status).toBe(200);
    const readerPut = await t.http().put('/admin/settings/smtp').set(bearer(reader)).send({ port: 25 });
    expect(readerPut.status).toBe(403);
    expect(readerPut.body.detail).toBe('requires scope admin:*');

    const helpdesk = await mint(['admin:*'], 'helpdesk');
    expect((await t.http().get('/admin/settings/smtp').set(bearer(helpdesk))).status).toBe(403);

    const admin = await mint(['admin:*'], 'admin');
    const ok = await t.http().put('/admin/settings/smtp').set(bearer(admin)).send({ port: 2525 });
    expect(ok.status).toBe(200);
    expect(ok.body.updated_by).toMatch(/^admin:token:settings-\d+$/);
    expect((await t.http().get('/admin/settings/smtp')).status).toBe(401);
  });

  test('the ServiceNow webhook secret set here is the one HMAC signatures are verified with', async () => {
    const secret = 'snow-hmac-secret-0123456789';
    const body = JSON.stringify({});
    const sign = (key: string) => `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
    const post = (signature: string) =>
      t.http().post('/webhook/servicenow').set('Content-Type', 'application/json').set('X-Hub-Signature-256', signature).send(body);

    // No secret configured yet: no signature can be valid.
    const before = await post(sign(secret));
    expect(before.status).toBe(401);

    const put = await t.http().put('/admin/settings/servicenow').set(t.admin).send({ webhook_secret: secret });
    expect(put.status).toBe(200);
    expect(put.body).toEqual(expect.objectContaining({ values: {}, secrets: { webhook_secret: { configured: true } } }));
    const { rows } = await t.db.query<{ value: unknown; is_secret: boolean }>(`SELECT value, is_secret FROM app_config WHERE key = 'servicenow.webhook_secret'`);
    expect(rows[0]).toEqual({ value: expect.stringMatching(/^enc:v1:/), is_secret: true });
    expect(isSealed(rows[0]!.value) && (await openSecret(t.db, rows[0]!.value, secretPlace.setting('servicenow.webhook_secret')))).toBe(secret);

    // Signed with the stored secret, the request gets past authentication (the empty body then fails validation).
    const signed = await post(sign(secret));
    expect(signed.status).not.toBe(401);
    expect(signed.body.code).not.toBe('UNAUTHENTICATED');
    expect(signed.status).toBe(422);
    const wrong = await post(sign('some-other-secret-0123456789'));
    expect(wrong.status).toBe(401);
    expect(wrong.body.detail).toBe('X-Hub-Signature-256 does not match the request body');

    const audit = await auditRows('servicenow');
    expect(audit).toHaveLength(1);
    expect(JSON.stringify(audit[0]!.diff)).not.toContain(secret);
    expect(audit[0]!.diff.after).toEqual({ write_only_changed: [{ key: 'webhook_secret', change: 'set' }] });
  });
});
