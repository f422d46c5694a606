// Stub mode of webhook deliveries (`webhooks.stub_mode`): the payload is built, checked and signed as always, then
// answered as provisioned without any request.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLoopbackServer, type LoopbackServer } from '../../tests/support/loopback-server';
import { compiledTask, stepContext } from '../../tests/support/executors';
import type { GraphWorkflowDocument, WebhookTask } from '../document';
import { renderValue, type TemplateVariables } from '../templating';
import { createWebhookExecutor } from './webhook';

const sample = JSON.parse(readFileSync(join(__dirname, '..', 'definitions', 'saas-seat-provision.json'), 'utf8')) as GraphWorkflowDocument;
const sampleTask = sample.tasks['provision_seat'] as WebhookTask;
const variables: TemplateVariables = {
  order: { id: 'ord-7', username: 'jane.doe', user_email: 'jane.doe@example.com', source: 'api' },
  inputs: { appId: 'saas_seat', appLabel: 'SaaS seat', permission: 'Standard seat' },
};

let server: LoopbackServer;
let stub = true;
let secret: string | undefined = 'whsec-stub-0123456789';
beforeAll(async () => {
  server = await startLoopbackServer((_req, res) => {
    res.statusCode = 204;
    res.end();
  });
});
afterAll(() => server.close());
beforeEach(() => {
  server.requests.length = 0;
  stub = true;
  secret = 'whsec-stub-0123456789';
});

const executor = createWebhookExecutor({ logger: stepContext().logger, resolveSecret: () => secret, resolveStubMode: async () => stub });
const run = (inp: Record<string, unknown> = renderValue(sampleTask.incoming, variables) as Record<string, unknown>) =>
  executor(compiledTask({ ...sampleTask, url: `${server.url}/webhooks/provision` }, { id: 'provision_seat', timeoutMs: 5000 }), inp, stepContext({ variables, stepId: 'provision_seat' }));

test('stub mode answers PROVISIONED_USER, marked as a stub, and sends nothing', async () => {
  expect(await run()).toEqual({ ok: true, output: { status: 200, response: 'PROVISIONED_USER', body: { response: 'PROVISIONED_USER', stub: true } } });
  expect(server.requests).toHaveLength(0);
});

test('the delivery is still checked: a missing secret or a payload of the wrong shape fails as without stub mode', async () => {
  secret = undefined;
  expect(await run()).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', message: expect.stringContaining("webhook secret 'webhooks.saas_seat_secret' is not set") } });
  secret = 'whsec-stub-0123456789';
  expect(await run({ application: { app_id: 'x' }, target_user: { email: 'jane.doe@example.com' }, bogus: 1 })).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
  expect(server.requests).toHaveLength(0);
});

test('with stub mode off the receiver is called', async () => {
  stub = false;
  expect(await run()).toMatchObject({ ok: true, output: { status: 204, response: null } });
  expect(server.requests).toHaveLength(1);
});
