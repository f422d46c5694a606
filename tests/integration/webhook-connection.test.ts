// A runbook's provisioning webhook reaches its receiver the way the `webhooks` settings say, stored through
// PUT /admin/settings/webhooks and read at each delivery (no restart): through an authenticating forward proxy
// (a real one: the `proxy` package) to a receiver that admits only proxied requests, as a perimeter firewall
// would, and over HTTPS to a receiver whose certificate comes from a private CA. PGlite and PostgreSQL.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { pemToDataUrl } from '../../adapter';
import { createTestApp, type TestApp } from '../support/app';
import { startForwardProxy, type ForwardProxy } from '../support/forward-proxy';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { createCa, issueServerCert } from '../support/pki';
import { TEST_ENGINE_CONFIG } from '../support/engine-config';

jest.setTimeout(60_000);

const PROXY_USER = 'corp-proxy-user';
const PROXY_PASS = 'corp-proxy-pass-0123';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let t: TestApp;
let proxy: ForwardProxy;
let receiver: LoopbackServer;
let tlsReceiver: { url: string; close(): Promise<void> };
const ca = createCa('Corp Private Root CA');

const hookWorkflow = {
  name: 'Hook through the proxy',
  description: 'one provisioning webhook',
  inputSchema: { type: 'object', properties: { url: { type: 'string' } }, required: ['url'] },
  steps: [
    {
      id: 'provision',
      kind: 'webhook',
      summary: 'Provision the seat',
      url: '{{inputs.url}}',
      incoming: { application: { app_id: 'saas_seat' }, target_user: { email: 'pparker@example.com' } },
    },
  ],
};

async function runHook(url: string): Promise<{ status: string; step: Record<string, unknown> }> {
  const run = await t.db.transaction((tx) => t.workflows!.engine.startRun(tx, { workflow: hookWorkflow.name, inputs: { url }, createdBy: 'test' }));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await t.http().get(`/admin/runs/${run.id}`).set(t.admin);
    const status = res.body.status as string;
    if (status === 'succeeded' || status === 'failed') return { status, step: (res.body.steps as Record<string, unknown>[])[0]! };
    if (Date.now() > deadline) throw new Error(`run ${run.id} is ${status}`);
    await sleep(50);
  }
}

const putWebhooks = (body: Record<string, unknown>) => t.http().put('/admin/settings/webhooks').set(t.admin).send(body);

const proxySetting = () => ({
  override: true,
  mode: 'proxy',
  host: proxy.host,
  port: proxy.port,
  auth: { mode: 'basic', username: PROXY_USER },
});

beforeAll(async () => {
  proxy = await startForwardProxy({ username: PROXY_USER, password: PROXY_PASS });
  // The receiver stands behind a firewall that admits only the corporate proxy (which adds its Via header).
  receiver = await startLoopbackServer((req, res) =>
    req.headers['via'] === undefined
      ? sendJson(res, 403, { error: 'direct connections are refused; come through the proxy' })
      : sendJson(res, 200, { response: 'PROVISIONED_USER' }),
  );
  const cert = issueServerCert(ca);
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => sendJson(res, 200, { response: 'PROVISIONED_USER' }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  tlsReceiver = {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/provision`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  t = await createTestApp({}, { workflows: { config: TEST_ENGINE_CONFIG } });
  await t.workflows!.startWorkers({ teamSize: 1 });
  expect((await t.http().post('/admin/workflows').set(t.admin).send(hookWorkflow)).status).toBe(201);
});

afterAll(async () => {
  await t?.close();
  await proxy?.stop();
  await receiver?.close();
  await tlsReceiver?.close();
});

describe('webhook deliveries follow the webhooks settings', () => {
  test('without a proxy setting the delivery goes direct and the receiver refuses it', async () => {
    const { status, step } = await runHook(`${receiver.url}/provision`);
    expect(status).toBe('failed');
    expect(step).toMatchObject({ status: 'failed', error: { code: 'WEBHOOK_REJECTED', message: expect.stringContaining('answered 403') } });
    expect(await proxy.log()).toEqual([]);
  });

  test('once the proxy is stored, the next delivery goes through it with its credentials; the password is never read back or audited', async () => {
    const put = await putWebhooks({ proxy: proxySetting(), proxy_password: PROXY_PASS, logging: { level: 'debug' } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ values: { proxy: proxySetting(), logging: { level: 'debug' } }, secrets: { proxy_password: { configured: true } } });
    const read = await t.http().get('/admin/settings/webhooks').set(t.admin);
    expect(JSON.stringify(read.body)).not.toContain(PROXY_PASS);
    const audit = await t.db.query<{ diff: unknown }>(`SELECT diff FROM audit_log WHERE entity = 'settings' AND entity_id = 'webhooks'`);
    expect(audit.rows.length).toBeGreaterThan(0);
    expect(JSON.stringify(audit.rows)).not.toContain(PROXY_PASS);
    expect(JSON.stringify(audit.rows)).toContain('proxy_password');

    const { status, step } = await runHook(`${receiver.url}/provision`);
    expect(step).toMatchObject({ status: 'succeeded', output: { status: 200, response: 'PROVISIONED_USER' } });
    expect(status).toBe('succeeded');
    expect(await proxy.log()).toContainEqual({ kind: 'request', method: 'POST', url: `${receiver.url}/provision`, proxy_authorization: true });
  });

  test('a rotated password applies at the next delivery: a wrong one is refused by the proxy', async () => {
    expect((await putWebhooks({ proxy_password: 'not-the-password' })).status).toBe(200);
    const { status, step } = await runHook(`${receiver.url}/provision`);
    expect(status).toBe('failed');
    expect(step).toMatchObject({ error: { code: 'NETWORK', message: expect.stringContaining('407') } });
    expect((await putWebhooks({ proxy_password: PROXY_PASS })).status).toBe(200);
    expect((await runHook(`${receiver.url}/provision`)).status).toBe('succeeded');
  });

  test('a receiver certificate of a private CA is refused until the CA is stored as mtls.ca', async () => {
    expect((await putWebhooks({ proxy: null, proxy_password: null })).status).toBe(200);
    const refused = await runHook(tlsReceiver.url);
    expect(refused).toMatchObject({ status: 'failed', step: { error: { code: 'NETWORK' } } });

    expect((await putWebhooks({ mtls: { ca: pemToDataUrl(ca.certPem) } })).status).toBe(200);
    const delivered = await runHook(tlsReceiver.url);
    expect(delivered).toMatchObject({ status: 'succeeded', step: { output: { status: 200, response: 'PROVISIONED_USER' } } });
  });

  test('the connection keys are checked as an integration configuration is, naming the key at fault', async () => {
    const noPassword = await putWebhooks({ proxy: proxySetting(), proxy_password: null });
    expect(noPassword.status).toBe(422);
    expect(noPassword.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path: '/body/proxy_password', message: expect.stringContaining('is required') })]));

    // The password has a key of its own (write-only); inside `proxy` it would be read back and audited.
    const nested = await putWebhooks({ proxy: { ...proxySetting(), auth: { mode: 'basic', username: PROXY_USER, password: PROXY_PASS } }, proxy_password: PROXY_PASS });
    expect(nested.status).toBe(422);
    expect(nested.body.errors).toEqual([expect.objectContaining({ path: '/body/proxy' })]);

    const noHost = await putWebhooks({ proxy: { override: true, mode: 'proxy', port: 3128 } });
    expect(noHost.status).toBe(422);
    expect(noHost.body.errors).toEqual([expect.objectContaining({ path: '/body/proxy/host', message: expect.stringContaining('is required') })]);

    const badCa = await putWebhooks({ mtls: { ca: 'data:text/plain,not a certificate' } });
    expect(badCa.status).toBe(422);
    expect(badCa.body.errors).toEqual([expect.objectContaining({ path: '/body/mtls/ca' })]);

    const certWithoutKey = await putWebhooks({ mtls: { cert: pemToDataUrl(ca.certPem) } });
    expect(certWithoutKey.status).toBe(422);
    expect(certWithoutKey.body.errors).toEqual([expect.objectContaining({ path: '/body/mtls_key', message: expect.stringContaining('together with cert') })]);

    const secretsManager = await putWebhooks({ proxy: { ...proxySetting(), auth: { mode: 'secrets_manager', username: 'u' } } });
    expect(secretsManager.status).toBe(422);
    expect(secretsManager.body.errors).toEqual([expect.objectContaining({ path: '/body/proxy' })]);

    // Nothing of the refused writes was stored: the CA set before is still the connection.
    const read = await t.http().get('/admin/settings/webhooks').set(t.admin);
    expect(read.body.values).toEqual({ mtls: { ca: pemToDataUrl(ca.certPem) }, logging: { level: 'debug' } });
    expect(read.body.secrets).toMatchObject({ proxy_password: { configured: false }, mtls_key: { configured: false } });
  });
});
