/**
 * The integration runtime's `negotiate` authentication (Kerberos through HTTP Negotiate/SPNEGO) with tickets from
 * the suite's Samba KDC (tests/support/samba-kerberos.ts), against loopback HTTPS AdminService servers that accept
 * only SPNEGO tokens and verify them with the KDC's keytab for HTTP/sccm.test.local (tests/support/spnego-server.ts).
 * Bad credentials, a missing SPN, a server refusing the ticket and a forged mutual-authentication token each fail
 * the call with AUTHENTICATION_FAILED naming the Kerberos error; no keytab or password reaches a log line, an
 * envelope or an API answer.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, projectPath } from '../../adapter';
import { createKerberosCredentials } from '../../adapter/kerberos';
import { bindTypedClient, sccm, statusOf } from '../../adapter/clients';
import { CallNotMadeError, createIntegrationClient, isEnvelope, validateIntegrationConfig, type IntegrationClient, type IntegrationEnvelope } from '../../adapter/http';
import { loadIntegrationModelFiles, openIntegrationSecrets } from '../../integration-model';
import { createTestApp, type TestApp } from '../support/app';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { ensureKerberos, type SambaKerberos } from '../support/samba-kerberos';
import { startSpnegoServer, writeStaleKeytab, type SpnegoServer } from '../support/spnego-server';

const SCCM_MODEL = 'Configuration Manager AdminService:1.0';
const WRONG_PASSWORD = 'Not-The-Krb5-Passw0rd!';

let k: SambaKerberos;
let keytabBase64: string;
let server: SpnegoServer;
let krb5Only: SpnegoServer;
let stale: SpnegoServer;
let forged: SpnegoServer;
let mem: MemoryLogger;
const clients: IntegrationClient[] = [];

const negotiate = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  type: 'negotiate',
  principal: k.client.principal,
  keytab: keytabBase64,
  spn: `HTTP/${k.httpServiceHost}`,
  ...over,
});
/** The server is reached at 127.0.0.1; its SPN names sccm.test.local (nothing resolves that name here). */
const configFor = (s: SpnegoServer, auth: Record<string, unknown>): Record<string, unknown> => ({
  server: { protocol: 'https', host: '127.0.0.1', port: s.port },
  authentication: auth,
  mtls: { ca: s.caDataUrl },
  timeout: 10_000,
  logging: { level: 'debug' },
});
function integration(s: SpnegoServer, auth: Record<string, unknown> = negotiate(), now?: () => number): IntegrationClient {
  const c = createIntegrationClient(configFor(s, auth), { logger: mem.logger, name: 'sccm-krb', ...(now ? { now } : {}) });
  clients.push(c);
  return c;
}
async function notMade(c: IntegrationClient, path = '/AdminService/wmi/SMS_R_System'): Promise<CallNotMadeError> {
  const r = await c.send({ method: 'GET', path });
  if (!(r instanceof CallNotMadeError)) throw new Error(`expected a failed call, got ${r.status} ${JSON.stringify(r.body)}`);
  return r;
}
const secrets = (): string[] => [keytabBase64, keytabBase64.slice(20, 80), k.client.password, k.httpService.password, WRONG_PASSWORD];

beforeAll(async () => {
  k = await ensureKerberos();
  keytabBase64 = readFileSync(k.clientKeytab).toString('base64');
  mem = createMemoryLogger();
  const staleKeytab = join(k.krb5Conf, '..', `http-service-stale-${process.pid}.keytab`);
  writeStaleKeytab(k.httpServiceKeytab, staleKeytab);
  [server, krb5Only, stale, forged] = await Promise.all([
    startSpnegoServer(k),
    startSpnegoServer(k, { mechs: ['krb5'] }),
    startSpnegoServer(k, { keytab: staleKeytab }),
    startSpnegoServer(k, { mutual: 'tampered' }),
  ]);
}, 240_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([server, krb5Only, stale, forged].map((s) => s?.stop()));
  if (k) rmSync(join(k.krb5Conf, '..', `http-service-stale-${process.pid}.keytab`), { force: true });
});

describe('negotiate configuration', () => {
  const check = (auth: Record<string, unknown>) => validateIntegrationConfig({ server: { host: 'sccm.corp.example' }, authentication: auth });

  it('takes a principal with a keytab or a password, SPN and mechanism optional (SPNEGO by default)', () => {
    const v = check({ type: 'negotiate', principal: 'svc@CORP.EXAMPLE', password: 'p' });
    expect(v).toMatchObject({ ok: true, config: { authentication: { mech: 'spnego' } } });
    expect(check({ type: 'negotiate', principal: 'svc@CORP.EXAMPLE', keytab: 'vault://kv/sccm#keytab', spn: 'HTTP/sccm01.corp.example', mech: 'krb5' }).ok).toBe(true);
  });

  it.each([
    [{ principal: 'svc@CORP.EXAMPLE' }, '/authentication/keytab', /or password is required/],
    [{ principal: 'svc@CORP.EXAMPLE', password: 'p', keytab: 'BQI=' }, '/authentication/password', /cannot be combined with a keytab/],
    [{ principal: 'svc@CORP.EXAMPLE', keytab: Buffer.from('not a keytab').toString('base64') }, '/authentication/keytab', /MIT keytab/],
    [{ principal: 'svc', password: 'p' }, '/authentication/principal', /name@REALM/],
    [{ principal: 'svc@CORP.EXAMPLE', password: 'p', spn: 'HTTP/sccm@CORP.EXAMPLE' }, '/authentication/spn', /service\/host/],
    [{ principal: 'svc@CORP.EXAMPLE', password: 'p', mech: 'ntlm' }, '/authentication/mech', /spnego, krb5/],
  ])('refuses %j naming the field', (auth, path, message) => {
    const v = check({ type: 'negotiate', ...auth });
    if (v.ok) throw new Error('accepted');
    expect(v.errors).toContainEqual({ path, message: expect.stringMatching(message) as string });
  });
});

describe('negotiate authentication (Samba KDC, loopback SPNEGO server)', () => {
  it('authenticates a typed AdminService call with a ticket from a keytab, and verifies the server', async () => {
    const before = (await server.events()).length;
    const r = await sccm.getDeviceByName({ client: bindTypedClient(integration(server)), query: { $filter: "Name eq 'VDI-JDOE-01'" } });
    expect(statusOf(r)).toBe(200);
    expect(r.data?.value[0]?.ResourceId).toBe(16777220);
    const seen = (await server.events()).slice(before);
    expect(seen).toEqual([expect.objectContaining({ kind: 'accepted', user: k.client.principal, mech: 'spnego', method: 'GET' })]);
  });

  it('authenticates with a password-derived ticket; the server token is verified and kept out of the envelope', async () => {
    const env = await integration(server, negotiate({ keytab: undefined, password: k.client.password })).call({
      method: 'POST',
      path: '/AdminService/wmi/SMS_Site.ImportMachineEntry',
      body: { NetbiosName: 'VDI-JDOE-02' },
    });
    if (!isEnvelope(env)) throw new Error(env);
    expect(env).toMatchObject({ ok: true, status: 200, body: { ResourceID: 16777230, echo: { NetbiosName: 'VDI-JDOE-02' } } });
    expect(env.headers['x-authenticated-user']).toBe(k.client.principal);
    expect(env.headers['www-authenticate']).toBe('Negotiate [redacted]');
  });

  it('gives every request its own token on shared connections, concurrently', async () => {
    const c = integration(server);
    const before = (await server.events()).length;
    const results = await Promise.all(Array.from({ length: 6 }, () => c.call({ method: 'GET', path: '/AdminService/v1.0/Device' })));
    expect(results.map((r) => (isEnvelope(r) ? r.status : r))).toEqual([200, 200, 200, 200, 200, 200]);
    const seen = (await server.events()).slice(before);
    expect(seen.filter((e) => e.kind === 'accepted')).toHaveLength(6);
    // A token is accepted once per request: none was refused as a replay.
    expect(seen.filter((e) => e.kind === 'refused')).toEqual([]);
    // Kept alive: later calls reuse the sockets of earlier ones.
    const more = (await Promise.all([1, 2].map(() => c.call({ method: 'GET', path: '/AdminService/v1.0/Device' })))).map((r) => (isEnvelope(r) ? r.status : r));
    expect(more).toEqual([200, 200]);
    const ports = (await server.events()).slice(before).map((e) => e.remotePort);
    expect(new Set(ports).size).toBeLessThan(ports.length);
  });

  it('sends a raw Kerberos token with mech krb5, which an SPNEGO-only server refuses', async () => {
    const raw = integration(krb5Only, negotiate({ mech: 'krb5' }));
    expect(await raw.call({ method: 'GET', path: '/AdminService/v1.0/Device' })).toMatchObject({ status: 200 });
    expect((await krb5Only.events()).at(-1)).toMatchObject({ kind: 'accepted', mech: 'krb5' });

    const started = Date.now();
    const refused = await notMade(integration(server, negotiate({ mech: 'krb5' })));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(refused.code).toBe('AUTHENTICATION_FAILED');
    expect(refused.message).toMatch(/the server refused the Kerberos authentication of krb-client@TEST\.LOCAL to HTTP\/sccm\.test\.local \(401 to an Authorization: Negotiate token\)/);
    expect((await server.events()).at(-1)).toMatchObject({ kind: 'refused', reason: 'mechanism krb5 not accepted' });
  });

  it('fails a wrong password at the KDC, before any request, naming KDC_ERR_PREAUTH_FAILED', async () => {
    const before = (await server.events()).length;
    const started = Date.now();
    const e = await notMade(integration(server, negotiate({ keytab: undefined, password: WRONG_PASSWORD })));
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(e.code).toBe('AUTHENTICATION_FAILED');
    expect(e.message).toMatch(/Kerberos authentication of krb-client@TEST\.LOCAL to HTTP\/sccm\.test\.local for GET https:\/\/127\.0\.0\.1:\d+\/AdminService\/wmi\/SMS_R_System failed: KERBEROS_BAD_CREDENTIALS: .*KDC_ERR_PREAUTH_FAILED/);
    expect((await server.events()).length).toBe(before);
  });

  it('answers a refused password from memory for a while, so retries cannot lock the account out', async () => {
    let now = Date.now();
    const c = integration(server, negotiate({ keytab: undefined, password: WRONG_PASSWORD }), () => now);
    const first = await notMade(c);
    expect(first.message).toMatch(/KDC_ERR_PREAUTH_FAILED\)$/);
    const started = Date.now();
    const again = await notMade(c);
    expect(Date.now() - started).toBeLessThan(20); // no kinit: the KDC is not asked
    expect(again.code).toBe('AUTHENTICATION_FAILED');
    expect(again.message).toMatch(/KERBEROS_BAD_CREDENTIALS: .*KDC_ERR_PREAUTH_FAILED.*; not asked again before .*so retries cannot lock the account out/);
    now += 5 * 60_000 + 1;
    expect((await notMade(c)).message).toMatch(/KDC_ERR_PREAUTH_FAILED\)$/);
  });

  it('gets a new ticket when its cached one has gone from the shared collection', async () => {
    const account = k.httpService; // a second identity, so no other test's ticket for krb-client is touched
    const c = integration(server, negotiate({ principal: account.principal, keytab: undefined, password: account.password }));
    expect(await c.call({ method: 'GET', path: '/AdminService/v1.0/Device' })).toMatchObject({ status: 200 });
    // Another store in the process (the directory's, say) forgets the principal: its cache file is removed.
    const other = createKerberosCredentials();
    await other.acquire(account.principal, { password: account.password });
    await other.forget(account.principal);
    expect(await c.call({ method: 'GET', path: '/AdminService/v1.0/Device' })).toMatchObject({ status: 200 });
    expect((await server.events()).at(-1)).toMatchObject({ kind: 'accepted', user: account.principal });
  });

  it('fails an SPN no account holds, naming KDC_ERR_S_PRINCIPAL_UNKNOWN; by default the SPN is HTTP/<request host>', async () => {
    const e = await notMade(integration(server, negotiate({ spn: 'HTTP/nosuch.test.local' })));
    expect(e.code).toBe('AUTHENTICATION_FAILED');
    expect(e.message).toMatch(/to HTTP\/nosuch\.test\.local .*KERBEROS_UNKNOWN_SERVICE: .*KDC_ERR_S_PRINCIPAL_UNKNOWN/);
    const byHost = await notMade(integration(server, negotiate({ spn: undefined })));
    expect(byHost.message).toMatch(/to HTTP\/127\.0\.0\.1 .*KERBEROS_UNKNOWN_SERVICE/);
  });

  it('fails when the server cannot decrypt the ticket (stale keytab), naming the Kerberos errors that cause it', async () => {
    const started = Date.now();
    const e = await notMade(integration(stale));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(e.code).toBe('AUTHENTICATION_FAILED');
    expect(e.message).toMatch(/refused the Kerberos authentication of krb-client@TEST\.LOCAL to HTTP\/sccm\.test\.local .*KRB_AP_ERR_MODIFIED/);
    // The server did refuse the token (its acceptor could not use it), not something else.
    expect((await stale.events()).at(-1)).toMatchObject({ kind: 'refused', reason: 'token not accepted' });
  });

  it('does not believe an answer whose mutual-authentication token does not verify', async () => {
    const e = await notMade(integration(forged), '/AdminService/v1.0/Device');
    expect(e.code).toBe('AUTHENTICATION_FAILED');
    expect(e.message).toMatch(/the server's mutual-authentication token did not verify \(KERBEROS_/);
    // The server did accept us: the failure is ours, about its proof.
    expect((await forged.events()).at(-1)).toMatchObject({ kind: 'accepted', user: k.client.principal });
  });

  it('keeps keytab, password and tokens out of every log line', () => {
    const text = mem.text();
    expect(text).toContain('integration request');
    for (const s of secrets()) expect(text).not.toContain(s);
    expect(text).not.toMatch(/Negotiate [A-Za-z0-9+/]{20,}/);
  });
});

describe('negotiate integrations through the API and the runtime', () => {
  let t: TestApp;
  const api = createMemoryLogger();
  const bodies: string[] = [];

  beforeAll(async () => {
    t = await createTestApp({}, { logger: api.logger });
    await loadIntegrationModelFiles(t.db, createLogger({ silent: true }), projectPath('openapi', 'integrations'));
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  async function create(name: string, auth: Record<string, unknown>): Promise<number> {
    const res = await t.http().post('/admin/integrations').set(t.admin).send({ name, model_id: SCCM_MODEL, config: configFor(server, auth) });
    bodies.push(res.text);
    expect(res.status).toBe(201);
    return res.body.id as number;
  }
  async function invoke(id: number, operation: string, input: Record<string, unknown>) {
    const res = await t.http().post(`/admin/integrations/${id}/tasks/${operation}/invoke`).set(t.admin).send(input);
    bodies.push(res.text);
    return res;
  }

  it('the SCCM model declares Negotiate and NTLM, as IIS offers them', async () => {
    const res = await t.http().get(`/admin/integration-models/${encodeURIComponent(SCCM_MODEL)}`).set(t.admin);
    bodies.push(res.text);
    expect(res.status).toBe(200);
    const schemes = (res.body.security_schemes as { name: string; kind: string }[]).map((s) => `${s.name}:${s.kind}`).sort();
    expect(schemes).toEqual(['negotiate:httpNegotiate', 'ntlm:httpNtlm']);
  });

  it('stores the keytab sealed, never answers it, and invokes an AdminService task with it', async () => {
    const id = await create('sccm-keytab', negotiate());
    const read = await t.http().get(`/admin/integrations/${id}`).set(t.admin);
    bodies.push(read.text);
    expect(read.body.config.authentication).toEqual({ type: 'negotiate', principal: k.client.principal, keytab: '[redacted]', spn: 'HTTP/sccm.test.local', mech: 'spnego' });
    const stored = await t.db.query<{ config: unknown; secrets: Record<string, unknown> }>('SELECT config, secrets FROM integrations WHERE id = $1', [id]);
    const row = stored.rows[0]!;
    expect(String(row.secrets['/authentication/keytab'])).toMatch(/^enc:v1:/);
    expect(JSON.stringify(row)).not.toContain(keytabBase64.slice(20, 80));
    expect((await openIntegrationSecrets(t.db, { id, secrets: row.secrets }))['/authentication/keytab']).toBe(keytabBase64);

    const res = await invoke(id, 'get_device_by_name', { query: { $filter: "Name eq 'VDI-JDOE-01'" } });
    expect(res.status).toBe(200);
    const env = res.body as IntegrationEnvelope;
    expect(env).toMatchObject({ ok: true, status: 200, method: 'GET', body: { value: [{ ResourceId: 16777220 }] } });
    expect(env.headers['x-authenticated-user']).toBe(k.client.principal);
  });

  it('a password works the same way; a wrong one is a 502 naming the Kerberos error', async () => {
    const id = await create('sccm-password', negotiate({ keytab: undefined, password: k.client.password }));
    const read = await t.http().get(`/admin/integrations/${id}/config`).set(t.admin);
    bodies.push(read.text);
    expect(read.body.authentication.password).toBe('[redacted]');
    expect((await invoke(id, 'list_deployment_asset_details', {})).body).toMatchObject({ ok: true, status: 200 });

    const wrong = await create('sccm-wrong', negotiate({ keytab: undefined, password: WRONG_PASSWORD }));
    const res = await invoke(wrong, 'list_devices', {});
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'INTEGRATION_CALL_FAILED', detail: expect.stringMatching(/KERBEROS_BAD_CREDENTIALS: .*KDC_ERR_PREAUTH_FAILED/) as string });
  });

  it('refuses a keytab that is not one, naming the field', async () => {
    const res = await t.http().post('/admin/integrations').set(t.admin).send({ name: 'sccm-bad', model_id: SCCM_MODEL, config: configFor(server, negotiate({ keytab: 'bm90IGEga2V5dGFi' })) });
    bodies.push(res.text);
    expect(res.status).toBe(422);
    expect(res.body.errors).toContainEqual({ path: '/body/config/authentication/keytab', message: expect.stringMatching(/MIT keytab/) as string });
  });

  it('no keytab or password in any answer, audit row or log line', async () => {
    const all = bodies.join('\n');
    const audit = JSON.stringify((await t.db.query('SELECT diff FROM audit_log')).rows);
    const logs = api.text();
    for (const s of secrets()) {
      expect(all).not.toContain(s);
      expect(audit).not.toContain(s);
      expect(logs).not.toContain(s);
    }
  });
});
