import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { closedPort, sendJson, startLoopbackServer, type LoopbackServer } from '../../tests/support/loopback-server';
import { compiledTask, stepContext } from '../../tests/support/executors';
import { startForwardProxy, type ForwardProxy } from '../../tests/support/forward-proxy';
import { createMemoryLogger } from '../../tests/support/memory-logger';
import { WEBHOOK_PAYLOAD_SCHEMA, type GraphWorkflowDocument, type WebhookTask } from '../document';
import { renderValue, type TemplateVariables } from '../templating';
import { createWebhookExecutor, WEBHOOK_HEADERS } from './webhook';

const SECRET = 'whsec-test-0123456789';
const NOW = Date.UTC(2026, 10, 24, 10, 0, 0);

// The sample runbook's own webhook task, so the test exercises the payload the product ships.
const sample = JSON.parse(readFileSync(join(__dirname, '..', 'definitions', 'saas-seat-provision.json'), 'utf8')) as GraphWorkflowDocument;
const sampleTask = sample.tasks['provision_seat'] as WebhookTask;

const variables: TemplateVariables = {
  order: { id: 'ord-42', username: 'pparker', user_email: 'peterparker@example.com', source: 'portal' },
  inputs: { appId: 'saas_seat', appLabel: 'SaaS seat', permission: 'Standard seat' },
};

let server: LoopbackServer;
let reply: (res: import('node:http').ServerResponse) => void;

beforeAll(async () => {
  server = await startLoopbackServer((_req, res) => reply(res));
});
afterAll(() => server.close());
beforeEach(() => {
  server.requests.length = 0;
});

const secrets: Record<string, string> = { 'webhooks.saas_seat_secret': SECRET };
const executor = createWebhookExecutor({ logger: stepContext().logger, resolveSecret: (ref) => secrets[ref] });

function task(over: Partial<WebhookTask> = {}): WebhookTask {
  return { ...sampleTask, url: `${server.url}/hooks/provision?token=abc`, ...over };
}

function input(): Record<string, unknown> {
  return renderValue(sampleTask.incoming, variables) as Record<string, unknown>;
}

async function call(t: WebhookTask = task(), opts: { timeoutMs?: number; in?: Record<string, unknown>; vars?: TemplateVariables } = {}) {
  const ctx = stepContext({ variables: opts.vars ?? variables, now: () => NOW, stepId: 'provision_seat', attempt: 2 });
  const result = await executor(compiledTask(t, { id: 'provision_seat', timeoutMs: opts.timeoutMs ?? 5000 }), opts.in ?? input(), ctx);
  return { result, ctx };
}

describe('webhook executor: the Lumos provisioning webhook', () => {
  test('PROVISIONED_USER: the payload is the seed shape, field by field, and the signature verifies', async () => {
    reply = (res) => sendJson(res, 200, { response: 'PROVISIONED_USER' });
    const { result } = await call();
    expect(result).toEqual({ ok: true, output: { status: 200, response: 'PROVISIONED_USER', body: { response: 'PROVISIONED_USER' } } });

    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/hooks/provision?token=abc');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['idempotency-key']).toBe('run-1:provision_seat:2');
    expect(req.headers['x-provisio-delivery']).toBe('run-1:provision_seat');

    const payload = JSON.parse(req.body) as Record<string, unknown>;
    const validate = new Ajv({ strict: false }).compile(WEBHOOK_PAYLOAD_SCHEMA);
    expect(validate(payload)).toBe(true);
    expect(Object.keys(payload)).toEqual(['application', 'permissions', 'target_user', 'access_length', 'request_comment', 'custom_fields']);
    expect(payload['application']).toEqual({ app_id: 'saas_seat', user_friendly_label: 'SaaS seat' });
    expect(payload['permissions']).toEqual([{ label: 'Standard seat', value: 'Standard seat', type: 'PERMISSION', source: 'MANUAL' }]);
    expect(payload['target_user']).toEqual({ email: 'peterparker@example.com' });
    expect(payload['access_length']).toBeNull();
    expect(payload['request_comment']).toBe('provisio order ord-42');
    expect(payload['custom_fields']).toEqual({ username: 'pparker' });

    // Verified the way a receiver would, with nothing from the executor's module.
    const ts = req.headers['x-provisio-timestamp'];
    expect(ts).toBe(String(NOW / 1000));
    const sig = String(req.headers['x-provisio-signature']);
    expect(sig).toMatch(/^sha256=[0-9a-f]{64}$/);
    const expected = createHmac('sha256', SECRET).update(`${String(ts)}.${req.body}`).digest();
    expect(timingSafeEqual(Buffer.from(sig.slice('sha256='.length), 'hex'), expected)).toBe(true);
    // The body alone (no timestamp) must not verify: the timestamp is inside the MAC against replay.
    expect(sig).not.toBe(`sha256=${createHmac('sha256', SECRET).update(req.body).digest('hex')}`);
  });

  test('all seed fields pass through; the order fills target_user.email and custom_fields.username when left out', async () => {
    reply = (res) => sendJson(res, 200, { response: 'PROVISIONED_USER' });
    const full = {
      application: { app_id: 'demo_app', instance_id: '0ob3ggjlhx892dc4abcde', user_friendly_label: 'Demo App' },
      permissions: [{ label: 'Permission One Label', value: 'Permission One', type: 'PERMISSION', source: 'MANUAL' }],
      target_user: { given_name: 'Peter', family_name: 'Parker' },
      access_length: 43189,
      request_comment: 'Give me access!',
      request_task_url: 'http://lumosidentity.com/tasks?requestId=12898293343',
    };
    const { result } = await call(task(), { in: full });
    expect(result.ok).toBe(true);
    expect(JSON.parse(server.requests[0]!.body)).toEqual({
      ...full,
      target_user: { given_name: 'Peter', family_name: 'Parker', email: 'peterparker@example.com' },
      custom_fields: { username: 'pparker' },
    });
  });

  test('HTTP 204 is success', async () => {
    reply = (res) => {
      res.statusCode = 204;
      res.end();
    };
    const { result } = await call();
    expect(result).toEqual({ ok: true, output: { status: 204, response: null, body: null } });
  });

  test('NO_PROVISIONING_ACTION is WEBHOOK_REJECTED and never retried', async () => {
    reply = (res) => sendJson(res, 200, { response: 'NO_PROVISIONING_ACTION' });
    const { result } = await call();
    expect(result).toEqual({
      ok: false,
      error: {
        code: 'WEBHOOK_REJECTED',
        retryable: false,
        message: expect.stringContaining('"response": "NO_PROVISIONING_ACTION"'),
        output: { status: 200, response: 'NO_PROVISIONING_ACTION', body: { response: 'NO_PROVISIONING_ACTION' } },
      },
    });
    // The message names the receiver without its query (which may carry a token).
    expect(JSON.stringify(result)).not.toContain('token=abc');
  });

  test.each([
    ['a 200 without a response field', 200, { ok: true }],
    ['a 200 that is not JSON', 200, 'done'],
    ['a 400', 400, { error: 'bad' }],
    ['a 302', 302, ''],
  ])('anything else (%s) is WEBHOOK_REJECTED', async (_name, status, body) => {
    reply = (res) => (typeof body === 'string' ? (res.writeHead(status, { location: '/elsewhere' }), res.end(body)) : sendJson(res, status, body));
    const { result } = await call();
    expect(result).toMatchObject({ ok: false, error: { code: 'WEBHOOK_REJECTED', retryable: false, output: { status } } });
    expect(server.requests).toHaveLength(1);
  });

  test('5xx is HTTP_5XX and 429 is HTTP_429: retryable by the default policy (no override)', async () => {
    reply = (res) => sendJson(res, 503, { error: 'down' });
    const { result } = await call();
    expect(result).toMatchObject({ ok: false, error: { code: 'HTTP_5XX', output: { status: 503 } } });
    expect((result as { error: { retryable?: boolean } }).error.retryable).toBeUndefined();

    reply = (res) => sendJson(res, 429, {});
    expect((await call()).result).toMatchObject({ ok: false, error: { code: 'HTTP_429' } });
  });

  test('no reply within the task timeout is TIMEOUT; an aborted step too', async () => {
    reply = () => undefined; // never answers
    const started = Date.now();
    const { result } = await call(task(), { timeoutMs: 300 });
    expect(result).toMatchObject({ ok: false, error: { code: 'TIMEOUT', message: expect.stringContaining('no reply within 300 ms') } });
    expect(Date.now() - started).toBeLessThan(3000);

    const ctx = stepContext({ variables, now: () => NOW });
    const pending = executor(compiledTask(task(), { timeoutMs: 10_000 }), input(), ctx);
    setTimeout(() => ctx.controller.abort(), 100);
    expect(await pending).toMatchObject({ ok: false, error: { code: 'TIMEOUT', message: expect.stringContaining('aborted') } });
  });

  test('a refused connection is NETWORK', async () => {
    const port = await closedPort();
    const { result } = await call(task({ url: `http://127.0.0.1:${port}/x` }));
    expect(result).toMatchObject({ ok: false, error: { code: 'NETWORK', message: expect.stringContaining('ECONNREFUSED') } });
  });

  test('without secretRef the request is unsigned; an unset secret fails before any request', async () => {
    reply = (res) => sendJson(res, 200, { response: 'PROVISIONED_USER' });
    const { secretRef: _s, ...unsigned } = task();
    expect((await call(unsigned as WebhookTask)).result.ok).toBe(true);
    expect(server.requests[0]!.headers['x-provisio-signature']).toBeUndefined();

    server.requests.length = 0;
    const { result } = await call(task({ secretRef: 'webhooks.missing' }));
    expect(result).toEqual({ ok: false, error: { code: 'INVALID_INPUT', retryable: false, message: "webhook secret 'webhooks.missing' is not set" } });
    expect(server.requests).toHaveLength(0);
  });

  test('a payload that is not the seed shape fails with INVALID_INPUT naming the field, without a request', async () => {
    const { result } = await call(task(), { in: { target_user: { email: 'a@b.c' }, extra: 1 } });
    expect(result).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', retryable: false } });
    const message = (result as { error: { message: string } }).error.message;
    expect(message).toContain("must have required property 'application'");
    expect(message).toContain('(extra)');
    expect(server.requests).toHaveLength(0);
  });

  test('the url renders against inputs only: an order variable in it is a missing variable', async () => {
    const { result } = await call(task({ url: '{{order.callback}}' }), { vars: { ...variables, order: { ...variables.order, callback: server.url } } });
    expect(result).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', message: expect.stringContaining('order') } });
    expect(server.requests).toHaveLength(0);
    reply = (res) => sendJson(res, 200, { response: 'PROVISIONED_USER' });
    const ok = await call(task({ url: '{{inputs.hook}}' }), { vars: { ...variables, inputs: { ...variables.inputs, hook: `${server.url}/in` } } });
    expect(ok.result.ok).toBe(true);
    expect(server.requests[0]!.url).toBe('/in');
  });

  test('the secret never appears in logs or results', async () => {
    reply = (res) => sendJson(res, 200, { response: 'NO_PROVISIONING_ACTION' });
    const { result, ctx } = await call();
    expect(JSON.stringify(result)).not.toContain(SECRET);
    expect(JSON.stringify(ctx.lines)).not.toContain(SECRET);
  });

  describe('through the integration transport (adapter/http)', () => {
    let proxy: ForwardProxy;
    beforeAll(async () => {
      proxy = await startForwardProxy({ username: 'proxy-user', password: 'proxy-pass' });
    });
    afterAll(() => proxy.stop());

    const proxied = (port: number) => ({
      proxy: { override: true, mode: 'proxy' as const, host: '127.0.0.1', port, auth: { mode: 'basic' as const, username: 'proxy-user', password: 'proxy-pass' } },
      logging: { level: 'debug' as const },
    });

    // fetch went straight to the receiver whatever the deployment's proxy; the transport applies the configured one.
    test('the delivery goes through the configured proxy, with its credentials, Idempotency-Key kept', async () => {
      reply = (res) => sendJson(res, 200, { response: 'PROVISIONED_USER' });
      const mem = createMemoryLogger();
      const viaProxy = createWebhookExecutor({ logger: mem.logger, resolveSecret: (ref) => secrets[ref], resolveConnection: () => proxied(proxy.port) });
      const ctx = stepContext({ variables, now: () => NOW, stepId: 'provision_seat', attempt: 2 });
      const result = await viaProxy(compiledTask(task(), { id: 'provision_seat', timeoutMs: 5000 }), input(), ctx);
      expect(result).toMatchObject({ ok: true, output: { status: 200, response: 'PROVISIONED_USER' } });

      expect(await proxy.log()).toContainEqual({ kind: 'request', method: 'POST', url: `${server.url}/hooks/provision?token=abc`, proxy_authorization: true });
      expect(server.requests).toHaveLength(1);
      expect(server.requests[0]!.headers['idempotency-key']).toBe('run-1:provision_seat:2');
      expect(server.requests[0]!.headers['proxy-authorization']).toBeUndefined();

      // The transport logged the delivery at the configured level, the signature, secret and query redacted.
      const sent = mem.lines.find((l) => l['message'] === 'integration request');
      expect(sent).toMatchObject({ integration: 'webhook', method: 'POST', headers: { 'X-Provisio-Signature': expect.stringMatching(/^\[redacted\]$/i), 'Idempotency-Key': 'run-1:provision_seat:2' } });
      expect(mem.lines).toContainEqual(expect.objectContaining({ message: 'integration response', status: 200 }));
      const logged = mem.text();
      expect(logged).not.toContain(SECRET);
      expect(logged).not.toContain('token=abc');
      expect(logged).not.toContain(String(server.requests[0]!.headers['x-provisio-signature']));
    });

    test('a proxy that cannot be reached fails the delivery (NETWORK) and the receiver sees nothing', async () => {
      const port = await closedPort();
      const viaNowhere = createWebhookExecutor({ logger: createMemoryLogger().logger, resolveSecret: (ref) => secrets[ref], resolveConnection: () => proxied(port) });
      const result = await viaNowhere(compiledTask(task(), { id: 'provision_seat', timeoutMs: 5000 }), input(), stepContext({ variables, now: () => NOW }));
      expect(result).toMatchObject({ ok: false, error: { code: 'NETWORK', message: expect.stringContaining('ECONNREFUSED') } });
      expect(server.requests).toHaveLength(0);
    });

    test('a reply over 64 KiB is not read: WEBHOOK_REJECTED, never retried', async () => {
      reply = (res) => sendJson(res, 200, { response: 'PROVISIONED_USER', padding: 'x'.repeat(70 * 1024) });
      const { result } = await call();
      expect(result).toMatchObject({ ok: false, error: { code: 'WEBHOOK_REJECTED', retryable: false, message: expect.stringContaining('more than 65536 bytes') } });
    });

    test('a URL with credentials in it is INVALID_INPUT, without a request', async () => {
      const { result } = await call(task({ url: `http://user:pw@127.0.0.1:${server.port}/hooks` }));
      expect(result).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', retryable: false, message: expect.stringContaining('credentials') } });
      expect(server.requests).toHaveLength(0);
    });
  });
});
