import { createIntegrationClient, isEnvelope, type IntegrationClient, type IntegrationEnvelope } from '../../adapter/http';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';

function envelope(result: IntegrationEnvelope | string): IntegrationEnvelope {
  if (!isEnvelope(result)) throw new Error(`expected an envelope, got the string: ${result}`);
  return result;
}

/**
 * A key endpoint (POST /auth/login with credentials in the body, GET /auth/plain answering the key as text) and a
 * protected endpoint that accepts only the latest key issued; `revoke()` makes the current key invalid, as expiry would.
 */
describe('dynamic API key (real key server + protected endpoint)', () => {
  let server: LoopbackServer;
  let mem: MemoryLogger;
  let issued = 0;
  let valid: string | undefined;
  const clients: IntegrationClient[] = [];
  const logins = (): number => server.requests.filter((r) => r.url.startsWith('/auth/')).length;
  const client = (auth: Record<string, unknown>): IntegrationClient => {
    const c = createIntegrationClient(
      { server: { host: '127.0.0.1', port: server.port, base_path: '/api' }, authentication: { type: 'api_key', name: 'X-Auth-Token', ...auth }, logging: { level: 'debug' } },
      { logger: mem.logger, name: 'dyn' },
    );
    clients.push(c);
    return c;
  };
  const login = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    dynamic: {
      method: 'POST',
      url: `${server.url}/auth/login`,
      response_pointer: '/data/tokens/0/value',
      body: { user: 'svc', pass: 'login-secret' },
      headers: { 'x-tenant': 'acme' },
      ...extra,
    },
  });

  beforeAll(async () => {
    mem = createMemoryLogger();
    server = await startLoopbackServer((req, res) => {
      const path = req.url.split('?')[0];
      if (path === '/auth/login') {
        const creds = JSON.parse(req.body || '{}') as { user?: string; pass?: string };
        if (creds.user !== 'svc' || creds.pass !== 'login-secret' || req.headers['x-tenant'] !== 'acme') {
          return sendJson(res, 403, { error: 'bad credentials' });
        }
        valid = `key-${++issued}`;
        return sendJson(res, 200, { data: { tokens: [{ value: valid }] } });
      }
      if (path === '/auth/plain') {
        valid = `key-${++issued}`;
        res.writeHead(200, { 'content-type': 'text/plain' });
        return void res.end(`${valid}\n`);
      }
      if (path === '/api/things') {
        return req.headers['x-auth-token'] !== undefined && req.headers['x-auth-token'] === valid
          ? sendJson(res, 200, { things: [1, 2], key: req.headers['x-auth-token'] })
          : sendJson(res, 401, { error: 'invalid key' });
      }
      return sendJson(res, 404, {});
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server.close();
  });

  test('the key is fetched with the configured method, body and headers, extracted by JSON pointer and cached', async () => {
    const c = client(login());
    const before = logins();
    const first = envelope(await c.call({ method: 'GET', path: '/things' }));
    const second = envelope(await c.call({ method: 'GET', path: '/things' }));
    expect(first).toMatchObject({ ok: true, status: 200, body: { things: [1, 2] } });
    expect(second.body).toEqual(first.body);
    expect(logins() - before).toBe(1);
    const keyCall = server.requests.filter((r) => r.url === '/auth/login').at(-1);
    expect(keyCall).toMatchObject({ method: 'POST', body: '{"user":"svc","pass":"login-secret"}' });
  });

  test('concurrent first calls share one key request', async () => {
    const c = client(login());
    const before = logins();
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => c.call({ method: 'GET', path: '/things' })));
    expect(results.every((r) => isEnvelope(r) && r.ok)).toBe(true);
    expect(logins() - before).toBe(1);
  });

  test('a 401 buys a new key once and retries the call', async () => {
    const c = client(login());
    envelope(await c.call({ method: 'GET', path: '/things' }));
    valid = 'revoked-elsewhere';
    const before = logins();
    const env = envelope(await c.call({ method: 'GET', path: '/things' }));
    expect(env).toMatchObject({ ok: true, status: 200 });
    expect(logins() - before).toBe(1);
    expect((env.body as { key: string }).key).toBe(valid);
  });

  test('concurrent calls that all get 401 share one new key', async () => {
    const c = client(login());
    envelope(await c.call({ method: 'GET', path: '/things' }));
    valid = 'revoked-elsewhere';
    const before = logins();
    const results = await Promise.all([1, 2, 3, 4].map(() => c.call({ method: 'GET', path: '/things' })));
    expect(results.map((r) => envelope(r).status)).toEqual([200, 200, 200, 200]);
    expect(logins() - before).toBe(1);
  });

  test('a blank pointer uses the whole (non-JSON) body as the key', async () => {
    const c = client({ dynamic: { method: 'GET', url: `${server.url}/auth/plain` } });
    expect(envelope(await c.call({ method: 'GET', path: '/things' }))).toMatchObject({ ok: true, status: 200 });
  });

  test('a pointer that finds nothing is a clear string error and the target is never called', async () => {
    const c = client(login({ response_pointer: '/data/nothing' }));
    const before = server.requests.filter((r) => r.url.startsWith('/api/')).length;
    expect(await c.call({ method: 'GET', path: '/things' })).toBe(
      `The integration did not have the information needed to make the API call: the API key response from POST ${server.url}/auth/login has nothing at JSON pointer "/data/nothing"`,
    );
    expect(server.requests.filter((r) => r.url.startsWith('/api/')).length).toBe(before);
  });

  test('a failing key endpoint shows as the key call in the envelope', async () => {
    const c = client(login({ body: { user: 'svc', pass: 'wrong' } }));
    expect(await c.call({ method: 'GET', path: '/things' })).toEqual({
      ok: false,
      method: 'POST',
      url: `${server.url}/auth/login`,
      status: 403,
      statusText: 'Forbidden',
      headers: expect.any(Object),
      body: { error: 'bad credentials' },
    });
  });

  test('neither the login secret nor any key reaches the log', () => {
    const text = mem.text();
    expect(text).toContain('integration auth request');
    expect(text).not.toContain('login-secret');
    expect(text).not.toMatch(/key-\d+/);
  });
});
