/**
 * The AWS Secrets Manager and CyberArk CCP secret backends against loopback HTTPS servers implementing their
 * documented APIs: AWS's SigV4 verified for real with `aws4` (both Secrets Manager and STS AssumeRole), CCP's
 * client-certificate handshake with a test CA. First each backend on its own, then both in the service: a settings
 * secret and integration secrets held as references and used for real calls, and the proxy's `secrets_manager` auth.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger } from '../../adapter';
import { SecretBackendError, type SecretReference } from '../../adapter/secrets/backend';
import { createAwsSecretsManagerBackend, ASSUME_ROLE_REFRESH_MARGIN_MS } from '../../adapter/secrets/backends/aws-sm';
import { createCyberArkCcpBackend } from '../../adapter/secrets/backends/cyberark-ccp';
import { parseSecretReference } from '../../adapter/secrets/references';
import { registerClusterWorker } from '../../integration-model';
import { createTestApp, type TestApp } from '../support/app';
import { startAwsServer, type AwsServer } from '../support/aws-server';
import { startCcpServer, type CcpServer } from '../support/ccp-server';
import { testEngine } from '../support/db';
import { startForwardProxy, type ForwardProxy } from '../support/forward-proxy';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { hubSignature, seedAssetType, snowPayload } from '../support/orders';
import { createCa, issueClientCert } from '../support/pki';

// Loopback servers, a proxy child process and a migrated app per file: slow to start on a loaded 2-core machine.
jest.setTimeout(90_000);

const ref = (raw: string): SecretReference => {
  const parsed = parseSecretReference(raw);
  if (!parsed.ok) throw new Error(`${raw}: ${parsed.message}`);
  return parsed.ref;
};

/** The SecretBackendError a promise rejects with (fails the test when it resolves or rejects with anything else). */
async function backendError(p: Promise<unknown>): Promise<SecretBackendError> {
  const outcome = await p.then(
    (v) => ({ resolved: v }),
    (e: unknown) => ({ rejected: e }),
  );
  if (!('rejected' in outcome)) throw new Error(`expected a rejection, got a value`);
  expect(outcome.rejected).toBeInstanceOf(SecretBackendError);
  return outcome.rejected as SecretBackendError;
}

const KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const KEY_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const ROLE = 'arn:aws:iam::123456789012:role/provisio-secrets';

describe('AWS Secrets Manager backend (SigV4 verified with aws4)', () => {
  let aws: AwsServer;
  let clock = Date.now();
  const backend = createAwsSecretsManagerBackend({ now: () => clock });
  let settings: Record<string, unknown>;

  beforeAll(async () => {
    aws = await startAwsServer({ now: () => clock });
    aws.addUser(KEY_ID, KEY_SECRET);
    aws.addUser('AKIADENIED0000000000', 'denied-secret-0000000000000000000000000', { denied: true });
    aws.addUser('AKIAROLECALLER000000', 'role-caller-secret-000000000000000000000');
    aws.addRole(ROLE, { trusted: ['AKIAROLECALLER000000'], externalId: 'provisio-ext-1' });
    aws.putSecret('prod/smtp', { string: 'smtp-password-from-aws-7Q' });
    aws.putSecret('prod/db', { string: JSON.stringify({ username: 'app', password: 'db-pass-from-aws-9Z', port: 5432 }) });
    aws.putSecret('prod/pem', { binary: Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n') });
    aws.putSecret('prod/raw', { binary: Buffer.from([0xff, 0xfe, 0x00, 0x01]) });
    settings = {
      aws_region: aws.region,
      aws_access_key_id: KEY_ID,
      aws_secret_access_key: KEY_SECRET,
      aws_secretsmanager_endpoint: aws.secretsManagerUrl,
      aws_sts_endpoint: aws.stsUrl,
      aws_ca_cert_pem: aws.caPem,
    };
  });
  afterAll(async () => {
    backend.close();
    await aws.close();
  });

  test('reads a SecretString, a field of a JSON secret (a number as its JSON text), and a text SecretBinary', async () => {
    expect(await backend.read(ref('awssm://prod/smtp'), settings)).toBe('smtp-password-from-aws-7Q');
    expect(await backend.read(ref('awssm://prod/db#password'), settings)).toBe('db-pass-from-aws-9Z');
    expect(await backend.read(ref('awssm://prod/db#port'), settings)).toBe('5432');
    expect(await backend.read(ref('awssm://prod/pem'), settings)).toContain('-----BEGIN CERTIFICATE-----');
    const last = aws.calls.at(-1)!;
    expect(last).toEqual({ operation: 'GetSecretValue', accessKeyId: KEY_ID, status: 200 });
    // The operation header is part of what was signed.
    const signed = /SignedHeaders=([^,]+)/.exec(String(aws.requests.at(-1)!.headers.authorization))![1]!.split(';');
    expect(signed).toEqual(expect.arrayContaining(['host', 'x-amz-date', 'x-amz-target', 'content-type']));
  });

  test('reads by ARN', async () => {
    const arn = aws.arnOf('prod/smtp')!;
    expect(await backend.read(ref(`awssm://${arn}`), settings)).toBe('smtp-password-from-aws-7Q');
    expect(JSON.parse(aws.requests.at(-1)!.body)).toEqual({ SecretId: arn });
  });

  test('a missing secret or field names the reference and AWS error type, never a value', async () => {
    const missing = await backendError(backend.read(ref('awssm://prod/nope'), settings));
    expect(missing.code).toBe('SECRET_NOT_FOUND');
    expect(missing.reference).toBe('awssm://prod/nope');
    expect(missing.message).toContain('awssm://prod/nope');
    expect(missing.message).toContain('ResourceNotFoundException');
    const field = await backendError(backend.read(ref('awssm://prod/db#nofield'), settings));
    expect(field.code).toBe('SECRET_NOT_FOUND');
    expect(field.message).toBe("awssm://prod/db#nofield: the secret has no field 'nofield'");
    expect(field.message).not.toContain('db-pass-from-aws');
    const notJson = await backendError(backend.read(ref('awssm://prod/smtp#password'), settings));
    expect(notJson.message).toContain('not a JSON object');
    expect(notJson.message).not.toContain('smtp-password-from-aws');
    const binaryField = await backendError(backend.read(ref('awssm://prod/pem#x'), settings));
    expect(binaryField.message).toContain('SecretBinary');
    const notText = await backendError(backend.read(ref('awssm://prod/raw'), settings));
    expect(notText.message).toContain('SecretBinary that is not UTF-8 text');
  });

  test('wrong keys are refused by the signature check and the AWS error is named', async () => {
    const wrongSecret = await backendError(backend.read(ref('awssm://prod/smtp'), { ...settings, aws_secret_access_key: 'not-the-right-secret-key-000000000000000' }));
    expect(wrongSecret.code).toBe('SECRET_BACKEND_AUTH_FAILED');
    expect(wrongSecret.message).toMatch(/^awssm:\/\/prod\/smtp: Secrets Manager GetSecretValue answered 400 InvalidSignatureException: /);
    expect(wrongSecret.message).not.toContain('not-the-right-secret-key');
    const unknownKey = await backendError(backend.read(ref('awssm://prod/smtp'), { ...settings, aws_access_key_id: 'AKIAUNKNOWN000000000' }));
    expect(unknownKey.message).toContain('UnrecognizedClientException');
    const denied = await backendError(
      backend.read(ref('awssm://prod/smtp'), { ...settings, aws_access_key_id: 'AKIADENIED0000000000', aws_secret_access_key: 'denied-secret-0000000000000000000000000' }),
    );
    expect(denied.code).toBe('SECRET_BACKEND_AUTH_FAILED');
    expect(denied.message).toContain('AccessDeniedException');
    expect(aws.calls.filter((c) => c.status === 200 && c.accessKeyId !== KEY_ID)).toEqual([]);
  });

  test('missing settings are named; an unreachable endpoint is SECRET_BACKEND_UNREACHABLE naming the reference', async () => {
    const unconfigured = await backendError(backend.read(ref('awssm://prod/smtp'), { aws_region: 'eu-central-1' }));
    expect(unconfigured.code).toBe('SECRET_BACKEND_NOT_CONFIGURED');
    expect(unconfigured.message).toContain('secret_backend.aws_access_key_id, secret_backend.aws_secret_access_key');
    const untrusted = await backendError(backend.read(ref('awssm://prod/smtp'), { ...settings, aws_ca_cert_pem: undefined }));
    expect(untrusted.code).toBe('SECRET_BACKEND_UNREACHABLE');
    expect(untrusted.message).toMatch(/^awssm:\/\/prod\/smtp: Secrets Manager GetSecretValue at https:\/\/127\.0\.0\.1:\d+ could not be made: .*TLS failure/);
  });

  test('write: CreateSecret for a new name, PutSecretValue for an existing one; the reference reads it back', async () => {
    const first = await backend.write!('provisio/settings/smtp/password', 'migrated-value-1', settings);
    expect(first).toEqual({ scheme: 'awssm', raw: 'awssm://provisio/settings/smtp/password', path: 'provisio/settings/smtp/password' });
    expect(aws.calls.at(-1)).toEqual({ operation: 'CreateSecret', accessKeyId: KEY_ID, status: 200 });
    const again = await backend.write!('provisio/settings/smtp/password', 'migrated-value-2', settings);
    expect(again.raw).toBe(first.raw);
    expect(aws.calls.slice(-2).map((c) => [c.operation, c.error ?? c.status])).toEqual([
      ['CreateSecret', 'ResourceExistsException'],
      ['PutSecretValue', 200],
    ]);
    expect(await backend.read(first, settings)).toBe('migrated-value-2');
    expect(aws.secretValue('provisio/settings/smtp/password')).toBe('migrated-value-2');
  });

  describe('sts:AssumeRole', () => {
    let roleSettings: Record<string, unknown>;
    beforeAll(() => {
      roleSettings = {
        ...settings,
        aws_access_key_id: 'AKIAROLECALLER000000',
        aws_secret_access_key: 'role-caller-secret-000000000000000000000',
        aws_role_arn: ROLE,
        aws_external_id: 'provisio-ext-1',
        aws_role_session_name: 'provisio-test',
      };
    });

    test('reads with temporary credentials, shares one AssumeRole among concurrent reads, renews them before Expiration', async () => {
      const before = aws.issued.length;
      const values = await Promise.all([1, 2, 3].map(() => backend.read(ref('awssm://prod/smtp'), roleSettings)));
      expect(values).toEqual(['smtp-password-from-aws-7Q', 'smtp-password-from-aws-7Q', 'smtp-password-from-aws-7Q']);
      expect(aws.issued.length).toBe(before + 1);
      const session = aws.issued.at(-1)!;
      // Signed with the temporary key and its session token (the server checks the token against the key).
      expect(aws.calls.slice(-3).map((c) => c.accessKeyId)).toEqual([session.accessKeyId, session.accessKeyId, session.accessKeyId]);

      // Just before the refresh point: the same credentials.
      clock = session.expiration.getTime() - ASSUME_ROLE_REFRESH_MARGIN_MS - 1000;
      await backend.read(ref('awssm://prod/smtp'), roleSettings);
      expect(aws.issued.length).toBe(before + 1);

      // Inside the margin (still valid for 4 minutes): renewed before use, and the read signed with the new key.
      clock = session.expiration.getTime() - 4 * 60_000;
      expect(await backend.read(ref('awssm://prod/db#password'), roleSettings)).toBe('db-pass-from-aws-9Z');
      expect(aws.issued.length).toBe(before + 2);
      const renewed = aws.issued.at(-1)!;
      expect(renewed.accessKeyId).not.toBe(session.accessKeyId);
      expect(renewed.expiration.getTime()).toBeGreaterThan(session.expiration.getTime());
      expect(aws.calls.at(-1)).toEqual({ operation: 'GetSecretValue', accessKeyId: renewed.accessKeyId, status: 200 });

      // The server really refuses the old session once it expired: the renewal was needed.
      clock = session.expiration.getTime() + 1000;
      expect(await backend.read(ref('awssm://prod/smtp'), roleSettings)).toBe('smtp-password-from-aws-7Q');
      expect(aws.issued.length).toBe(before + 2);
    });

    test('a refused AssumeRole names the STS error (wrong external id), and nothing is read', async () => {
      const calls = aws.calls.length;
      const e = await backendError(backend.read(ref('awssm://prod/smtp'), { ...roleSettings, aws_external_id: 'wrong-ext' }));
      expect(e.code).toBe('SECRET_BACKEND_AUTH_FAILED');
      expect(e.message).toMatch(/^awssm:\/\/prod\/smtp: STS AssumeRole of arn:aws:iam::123456789012:role\/provisio-secrets answered 403 AccessDenied: /);
      const badKey = await backendError(backend.read(ref('awssm://prod/smtp'), { ...roleSettings, aws_secret_access_key: 'wrong-caller-secret-0000000000000000000' }));
      expect(badKey.message).toContain('SignatureDoesNotMatch');
      expect(aws.calls.length).toBe(calls);
    });
  });
});

describe('CyberArk CCP backend (client certificate)', () => {
  let ccp: CcpServer;
  const backend = createCyberArkCcpBackend();
  let settings: Record<string, unknown>;

  beforeAll(async () => {
    ccp = await startCcpServer();
    const client = ccp.issueClient('provisio-app');
    ccp.addApplication('Provisio', 'provisio-app');
    ccp.addAccount('AppSafe', 'smtp-relay', 'ccp-smtp-password-4K');
    ccp.addAccount('Default', 'ldap-bind', 'ccp-ldap-password-8M');
    settings = {
      ccp_url: ccp.url,
      ccp_app_id: 'Provisio',
      ccp_default_safe: 'Default',
      ccp_client_cert_pem: client.certPem,
      ccp_client_key_pem: client.keyPem,
      ccp_ca_cert_pem: ccp.caPem,
    };
  });
  afterAll(async () => {
    backend.close();
    await ccp.close();
  });

  test('reads Content with the client certificate; a reference without a safe uses ccp_default_safe', async () => {
    expect(await backend.read(ref('ccp://AppSafe/smtp-relay'), settings)).toBe('ccp-smtp-password-4K');
    expect(await backend.read(ref('ccp://ldap-bind'), settings)).toBe('ccp-ldap-password-8M');
    const asked = new URL(ccp.requests.at(-1)!.url, 'https://x');
    expect(asked.pathname).toBe('/AIMWebService/api/Accounts');
    expect(Object.fromEntries(asked.searchParams)).toEqual({ AppID: 'Provisio', Safe: 'Default', Object: 'ldap-bind' });
  });

  test('a missing object names the reference and CCP error code, never a value', async () => {
    const e = await backendError(backend.read(ref('ccp://AppSafe/nope'), settings));
    expect(e.code).toBe('SECRET_NOT_FOUND');
    expect(e.message).toMatch(/^ccp:\/\/AppSafe\/nope: CyberArk CCP answered 404 APPAP004E: Password object matching query \[Safe=AppSafe;Object=nope\] was not found/);
  });

  test('without a client certificate the handshake is refused, and the error says a certificate is needed', async () => {
    const requests = ccp.requests.length;
    const e = await backendError(backend.read(ref('ccp://AppSafe/smtp-relay'), { ...settings, ccp_client_cert_pem: undefined, ccp_client_key_pem: undefined }));
    expect(e.code).toBe('SECRET_BACKEND_UNREACHABLE');
    expect(e.message).toContain('ccp://AppSafe/smtp-relay: CyberArk CCP at https://127.0.0.1:');
    expect(e.message).toContain('no client certificate is configured');
    expect(ccp.requests.length).toBe(requests);
  });

  test('a certificate from another CA is refused at the handshake; an unauthorised one by CCP with APPAP306E', async () => {
    const stranger = issueClientCert(createCa('Some Other CA'), 'provisio-app');
    const requests = ccp.requests.length;
    const refused = await backendError(backend.read(ref('ccp://AppSafe/smtp-relay'), { ...settings, ccp_client_cert_pem: stranger.certPem, ccp_client_key_pem: stranger.keyPem }));
    expect(refused.code).toBe('SECRET_BACKEND_UNREACHABLE');
    expect(refused.message).toMatch(/TLS failure/);
    expect(ccp.requests.length).toBe(requests);
    const other = ccp.issueClient('another-app');
    const unauthorised = await backendError(backend.read(ref('ccp://AppSafe/smtp-relay'), { ...settings, ccp_client_cert_pem: other.certPem, ccp_client_key_pem: other.keyPem }));
    expect(unauthorised.code).toBe('SECRET_BACKEND_AUTH_FAILED');
    expect(unauthorised.message).toContain('CyberArk CCP answered 403 APPAP306E');
  });

  test('CCP is read-only: the backend has no write', () => {
    expect(backend.write).toBeUndefined();
  });

  test('missing settings are named', async () => {
    const e = await backendError(backend.read(ref('ccp://smtp-relay'), { ccp_url: ccp.url }));
    expect(e.code).toBe('SECRET_BACKEND_NOT_CONFIGURED');
    expect(e.message).toBe('ccp://smtp-relay: CyberArk CCP needs secret_backend.ccp_app_id, secret_backend.ccp_default_safe (the reference names no safe)');
  });
});

describe(`AWS and CCP references in the service (${testEngine})`, () => {
  const value = (label: string) => `${label}-${randomBytes(10).toString('hex')}`;
  const INVENTORY_PASSWORD = value('inventory-pw');
  const SNOW_AWS = value('snow-hmac-aws');
  const SNOW_CCP = value('snow-hmac-ccp');
  const PROXY_USER = 'proxy-user-7';
  const PROXY_PASSWORD = value('proxy-pw');
  let aws: AwsServer;
  let ccp: CcpServer;
  let proxy: ForwardProxy;
  let inventory: LoopbackServer;
  let t: TestApp;
  const post = (path: string, body?: unknown) => t.http().post(path).set(t.admin).send(body as object);
  const put = (path: string, body: unknown) => t.http().put(path).set(t.admin).send(body as object);
  const server = () => ({ protocol: 'http', host: '127.0.0.1', port: inventory.port, base_path: '/api' });
  const createInventory = async (name: string, extra: Record<string, unknown>) =>
    post('/admin/integrations', { name, model_id: 'Hello Inventory:1.0.0', config: { server: server(), ...extra } });
  const basic = (password: string) => ({ authentication: { type: 'basic', username: 'svc-inventory', password } });
  const webhook = (secret: string) => {
    const raw = JSON.stringify(snowPayload('SaaS seat'));
    return t.http().post('/webhook/servicenow').set('Content-Type', 'application/json').set('X-Hub-Signature-256', hubSignature(raw, secret)).send(raw);
  };

  beforeAll(async () => {
    [aws, ccp, proxy] = await Promise.all([startAwsServer(), startCcpServer(), startForwardProxy({ username: PROXY_USER, password: PROXY_PASSWORD })]);
    aws.addUser('AKIAROLECALLER000000', 'role-caller-secret-000000000000000000000');
    aws.addRole(ROLE, { trusted: ['AKIAROLECALLER000000'] });
    aws.putSecret('prod/inventory', { string: JSON.stringify({ username: 'svc-inventory', password: INVENTORY_PASSWORD }) });
    aws.putSecret('prod/snow-hmac', { string: SNOW_AWS });
    aws.putSecret('prod/proxy', { string: JSON.stringify({ password: PROXY_PASSWORD }) });
    const app = ccp.issueClient('provisio-app');
    ccp.addApplication('Provisio', 'provisio-app');
    ccp.addAccount('AppSafe', 'inventory', INVENTORY_PASSWORD);
    ccp.addAccount('AppSafe', 'snow-hmac', SNOW_CCP);
    ccp.addAccount('AppSafe', 'proxy-user', PROXY_USER);
    inventory = await startLoopbackServer((req, res) => {
      const ok = req.headers.authorization === `Basic ${Buffer.from(`svc-inventory:${INVENTORY_PASSWORD}`).toString('base64')}`;
      return ok ? sendJson(res, 200, { id: 7, name: 'lotus' }) : sendJson(res, 401, { error: 'unauthorised' });
    });
    t = await createTestApp();
    // A proxy override routes an integration's calls to a gateway cluster ('default'): its worker makes them, here
    // with the app's own runtime, which resolves the references as any process does.
    await registerClusterWorker({ db: t.db, queue: t.queue, logger: createLogger({ silent: true }), integrations: t.integrations, cluster: 'default', teamSize: 1 });
    await seedAssetType(t.db, { name: 'SaaS seat' });
    const model = await post('/admin/integration-models', { document: await readFile(join(__dirname, '..', 'fixtures', 'integration-models', 'hello-inventory.yaml'), 'utf8') });
    expect(model.status).toBe(201);
    const settings = await put('/admin/settings/secret_backend', {
      aws_region: aws.region,
      aws_access_key_id: 'AKIAROLECALLER000000',
      aws_secret_access_key: 'role-caller-secret-000000000000000000000',
      aws_role_arn: ROLE,
      aws_secretsmanager_endpoint: aws.secretsManagerUrl,
      aws_sts_endpoint: aws.stsUrl,
      aws_ca_cert_pem: aws.caPem,
      ccp_url: ccp.url,
      ccp_app_id: 'Provisio',
      ccp_default_safe: 'AppSafe',
      ccp_client_cert_pem: app.certPem,
      ccp_client_key_pem: app.keyPem,
      ccp_ca_cert_pem: ccp.caPem,
    });
    expect({ status: settings.status, errors: settings.body.errors }).toEqual({ status: 200, errors: undefined });
    // Write-only: the key and the AWS secret are never read back.
    expect(settings.body.secrets).toMatchObject({ aws_secret_access_key: { configured: true }, ccp_client_key_pem: { configured: true } });
    expect(JSON.stringify(settings.body)).not.toContain('role-caller-secret');
  });
  afterAll(async () => {
    await t.close();
    await Promise.all([aws.close(), ccp.close(), proxy.stop(), inventory.close()]);
  });

  test('a settings secret held in AWS Secrets Manager, then in CCP, verifies a signed webhook', async () => {
    expect((await put('/admin/settings/servicenow', { webhook_secret: 'awssm://prod/snow-hmac' })).status).toBe(200);
    expect((await webhook(SNOW_AWS)).status).toBe(201);
    expect((await webhook(SNOW_CCP)).status).toBe(401);
    // Read with the role's temporary credentials.
    expect(aws.issued.length).toBeGreaterThan(0);
    expect(aws.calls.at(-1)).toEqual({ operation: 'GetSecretValue', accessKeyId: aws.issued.at(-1)!.accessKeyId, status: 200 });

    expect((await put('/admin/settings/servicenow', { webhook_secret: 'ccp://snow-hmac' })).status).toBe(200);
    expect((await webhook(SNOW_CCP)).status).toBe(201);
    expect((await webhook(SNOW_AWS)).status).toBe(401);
  });

  test('an integration secret in each backend authenticates a real call', async () => {
    for (const [name, reference] of [['inv-aws', 'awssm://prod/inventory#password'], ['inv-ccp', 'ccp://AppSafe/inventory']] as const) {
      const created = await createInventory(name, basic(reference));
      expect(created.status).toBe(201);
      const call = await post(`/admin/integrations/${created.body.id}/tasks/getItem/invoke`, { path: { id: 7 } });
      expect({ name, body: call.body }).toMatchObject({ name, body: { ok: true, status: 200, body: { id: 7 } } });
    }
  });

  test('a missing secret fails the call with a message naming the reference, never a value', async () => {
    for (const [name, reference, says] of [
      ['inv-aws-missing', 'awssm://prod/gone#password', 'ResourceNotFoundException'],
      ['inv-ccp-missing', 'ccp://AppSafe/gone', 'APPAP004E'],
    ] as const) {
      const created = await createInventory(name, basic(reference));
      expect(created.status).toBe(201);
      const call = await post(`/admin/integrations/${created.body.id}/tasks/getItem/invoke`, { path: { id: 7 } });
      expect(call.status).toBe(502);
      expect(call.body.code).toBe('INTEGRATION_CALL_FAILED');
      expect(call.body.detail).toContain(reference);
      expect(call.body.detail).toContain(says);
      expect(call.body.detail).not.toContain(INVENTORY_PASSWORD);
    }
  });

  test("proxy auth mode secrets_manager: the proxy's user and password come from the backends, through the real proxy", async () => {
    const proxied = (auth: Record<string, unknown>) => ({ ...basic(INVENTORY_PASSWORD), proxy: { override: true, mode: 'proxy', host: proxy.host, port: proxy.port, auth } });
    const created = await createInventory('inv-proxied', proxied({ mode: 'secrets_manager', username: 'ccp://proxy-user', password: 'awssm://prod/proxy#password' }));
    expect({ status: created.status, errors: created.body.errors }).toEqual({ status: 201, errors: undefined });
    const seen = (await proxy.log()).length;
    const call = await post(`/admin/integrations/${created.body.id}/tasks/getItem/invoke`, { path: { id: 7 } });
    expect(call.body).toMatchObject({ ok: true, status: 200, body: { id: 7 } });
    const through = (await proxy.log()).slice(seen);
    expect(through).toEqual([expect.objectContaining({ kind: 'request', url: expect.stringContaining(`127.0.0.1:${inventory.port}/api/items/7`), proxy_authorization: true })]);

    // References that do not resolve: the call is not made, and the message names the reference (and the field).
    for (const [auth, says] of [
      [{ username: 'ccp://no-such-user', password: 'awssm://prod/proxy#password' }, '/proxy/auth/username: the proxy credential could not be resolved: ccp://no-such-user: CyberArk CCP answered 404 APPAP004E'],
      [{ username: 'ccp://proxy-user', password: 'awssm://prod/proxy#nofield' }, "awssm://prod/proxy#nofield: the secret has no field 'nofield'"],
    ] as const) {
      const broken = await createInventory(`inv-proxied-${auth.username.length}-${auth.password.length}`, proxied({ mode: 'secrets_manager', ...auth }));
      expect(broken.status).toBe(201);
      const failed = await post(`/admin/integrations/${broken.body.id}/tasks/getItem/invoke`, { path: { id: 7 } });
      expect(failed.status).toBe(502);
      expect(failed.body.detail).toContain(says);
      expect(failed.body.detail).not.toContain(PROXY_PASSWORD);
    }
    expect((await proxy.log()).length).toBe(seen + 1);
  });

  test('secrets_manager proxy credentials must be well-formed references when saved (422)', async () => {
    const res = await createInventory('inv-proxied-plain', {
      ...basic(INVENTORY_PASSWORD),
      proxy: { override: true, mode: 'proxy', host: proxy.host, port: proxy.port, auth: { mode: 'secrets_manager', username: 'plain-user', password: 'awssm://prod/proxy#' } },
    });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([
      { path: '/body/config/proxy/auth/password', message: expect.stringContaining('is not a valid secret reference') },
      { path: '/body/config/proxy/auth/username', message: expect.stringMatching(/^must be a secret reference .* in auth mode secrets_manager: it is not one$/) },
    ]);
  });
});
