import { createIntegrationClient, isEnvelope, type IntegrationClient, type IntegrationEnvelope } from '../../adapter/http';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { closedPort, sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';

function envelope(result: IntegrationEnvelope | string): IntegrationEnvelope {
  if (!isEnvelope(result)) throw new Error(`expected an envelope, got the string: ${result}`);
  return result;
}

describe('integration transport: envelope, static auth, failures (real loopback server)', () => {
  let server: LoopbackServer;
  let mem: MemoryLogger;
  const clients: IntegrationClient[] = [];
  const client = (config: unknown, name = 'test'): IntegrationClient => {
    const c = createIntegrationClient(config, { logger: mem.logger, name });
    clients.push(c);
    return c;
  };
  const server_ = (): { protocol: 'http'; host: string; port: number } => ({ protocol: 'http', host: '127.0.0.1', port: server.port });

  beforeAll(async () => {
    mem = createMemoryLogger();
    server = await startLoopbackServer((req, res, raw) => {
      const path = req.url.split('?')[0];
      switch (path) {
        case '/api/pets/7':
          return sendJson(res, 200, { id: 7, name: 'Lotus' }, { 'x-powered-by': 'test' });
        case '/api/echo':
          return sendJson(res, 200, { method: req.method, url: req.url, headers: req.headers, body: req.body });
        case '/api/html':
          res.writeHead(404, { 'content-type': 'text/html' });
          return void res.end('<html><body>Not Found</body></html>');
        case '/api/truncated':
          res.writeHead(200, { 'content-type': 'application/json' });
          return void res.end('{"items": [1, 2,');
        case '/api/empty':
          res.writeHead(204);
          return void res.end();
        case '/api/cookies':
          res.setHeader('set-cookie', ['a=1', 'b=2']);
          return sendJson(res, 200, {});
        case '/api/slow':
          return void res.on('close', clearTimeout.bind(null, setTimeout(() => sendJson(res, 200, { late: true }), 1500)));
        case '/api/reset':
          return void raw.socket.resetAndDestroy();
        case '/api/moved':
          res.writeHead(302, { location: 'http://127.0.0.2:1/elsewhere' });
          return void res.end();
        case '/api/secure':
          return req.headers.authorization === 'Bearer good-token'
            ? sendJson(res, 200, { ok: true })
            : sendJson(res, 401, { error: 'unauthorized' });
        default:
          return sendJson(res, 404, { error: 'no route' });
      }
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server.close();
  });

  test('a JSON success comes back as the standard envelope', async () => {
    const c = client({ server: { ...server_(), base_path: '/api' } });
    const env = envelope(await c.call({ method: 'get', path: '/pets/7' }));
    expect(env).toEqual({
      ok: true,
      method: 'GET',
      url: `${server.url}/api/pets/7`,
      status: 200,
      statusText: 'OK',
      headers: expect.objectContaining({ 'content-type': 'application/json', 'x-powered-by': 'test' }),
      body: { id: 7, name: 'Lotus' },
    });
    expect(Object.keys(env)).toEqual(['ok', 'method', 'url', 'status', 'statusText', 'headers', 'body']);
  });

  test('a non-JSON failure carries text and parseError, not body', async () => {
    const env = envelope(await client({ server: { ...server_(), base_path: '/api' } }).call({ method: 'GET', path: '/html' }));
    expect(env).toEqual({
      ok: false,
      method: 'GET',
      url: `${server.url}/api/html`,
      status: 404,
      statusText: 'Not Found',
      headers: expect.objectContaining({ 'content-type': 'text/html' }),
      text: '<html><body>Not Found</body></html>',
      parseError: { name: 'SyntaxError', message: expect.stringMatching(/JSON/) },
    });
  });

  test('a truncated JSON body is a parseError with the raw text', async () => {
    const env = envelope(await client({ server: { ...server_(), base_path: '/api' } }).call({ method: 'GET', path: '/truncated' }));
    expect(env.ok).toBe(true);
    expect(env.body).toBeUndefined();
    expect(env.text).toBe('{"items": [1, 2,');
    expect(env.parseError).toEqual({ name: 'SyntaxError', message: expect.any(String) });
  });

  test('an empty body is body null; repeated headers stay arrays', async () => {
    const c = client({ server: { ...server_(), base_path: '/api' } });
    expect(envelope(await c.call({ method: 'DELETE', path: '/empty' }))).toMatchObject({ ok: true, status: 204, body: null });
    expect(envelope(await c.call({ method: 'GET', path: '/cookies' })).headers['set-cookie']).toEqual(['a=1', 'b=2']);
  });

  test('query, headers and a JSON body reach the server; the URL in the envelope carries the query', async () => {
    const c = client({ server: { ...server_(), base_path: '/api/' } });
    const env = envelope(
      await c.call({ method: 'POST', path: '/echo', query: { q: 'a b', n: 2 }, headers: { 'x-trace': 't1' }, body: { name: 'x' } }),
    );
    expect(env.url).toBe(`${server.url}/api/echo?q=a+b&n=2`);
    expect(env.body).toMatchObject({
      method: 'POST',
      url: '/api/echo?q=a+b&n=2',
      headers: expect.objectContaining({ 'x-trace': 't1', 'content-type': 'application/json' }),
      body: '{"name":"x"}',
    });
  });

  test('basic, bearer and API key (header, query, cookie) are applied', async () => {
    const base = { ...server_(), base_path: '/api' };
    const echo = async (auth: unknown): Promise<{ url: string; headers: Record<string, string> }> =>
      envelope(await client({ server: base, authentication: auth }).call({ method: 'GET', path: '/echo' })).body as {
        url: string;
        headers: Record<string, string>;
      };
    expect((await echo({ type: 'basic', username: 'ann', password: 's3cret' })).headers.authorization).toBe(
      `Basic ${Buffer.from('ann:s3cret').toString('base64')}`,
    );
    expect((await echo({ type: 'bearer', token: 'tok-123' })).headers.authorization).toBe('Bearer tok-123');
    expect((await echo({ type: 'api_key', name: 'X-API-Key', value: 'key-1' })).headers['x-api-key']).toBe('key-1');
    expect((await echo({ type: 'api_key', name: 'api_key', in: 'query', value: 'key-2' })).url).toBe('/api/echo?api_key=key-2');
    const viaAxios = client({ server: base, authentication: { type: 'api_key', name: 'api_key', in: 'query', value: 'key-4' } });
    expect((await viaAxios.axios.get<{ url: string }>('/echo', { params: new URLSearchParams({ a: '1' }) })).data.url).toBe('/api/echo?a=1&api_key=key-4');
    expect((await echo({ type: 'api_key', name: 'session', in: 'cookie', value: 'key-3' })).headers.cookie).toBe('session=key-3');
  });

  test('a redirect is returned, not followed (credentials never travel to where it points)', async () => {
    const c = client({ server: { ...server_(), base_path: '/api' }, authentication: { type: 'api_key', name: 'x-key', value: 'k' } });
    expect(envelope(await c.call({ method: 'GET', path: '/moved' }))).toMatchObject({
      ok: false,
      status: 302,
      headers: expect.objectContaining({ location: 'http://127.0.0.2:1/elsewhere' }),
      body: null,
    });
  });

  test('a static credential is not retried on 401: the 401 envelope comes back', async () => {
    const c = client({ server: { ...server_(), base_path: '/api' }, authentication: { type: 'bearer', token: 'bad-token' } });
    const before = server.requests.length;
    expect(envelope(await c.call({ method: 'GET', path: '/secure' }))).toMatchObject({ ok: false, status: 401, body: { error: 'unauthorized' } });
    expect(server.requests.length - before).toBe(1);
  });

  test('a timeout is a string saying so', async () => {
    const c = client({ server: { ...server_(), base_path: '/api' }, timeout: 100 });
    const started = Date.now();
    const r = await c.call({ method: 'GET', path: '/slow' });
    expect(r).toBe(`The API call could not be made: GET ${server.url}/api/slow timed out after 100 ms without a response`);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('an unreachable host is a string saying so', async () => {
    const port = await closedPort();
    const r = await client({ server: { host: '127.0.0.1', port } }).call({ method: 'GET', path: '/x' });
    expect(r).toEqual(expect.stringMatching(new RegExp(`^The API call could not be made: GET http://127.0.0.1:${port}/x: the server refused the connection`)));
  });

  test('a connection reset by the server is a string saying so', async () => {
    const r = await client({ server: { ...server_(), base_path: '/api' } }).call({ method: 'GET', path: '/reset' });
    expect(r).toEqual(expect.stringContaining(`GET ${server.url}/api/reset: the connection was reset`));
  });

  test('missing configuration is the seed\'s string error, naming the field, and nothing is sent', async () => {
    const before = server.requests.length;
    const r = await client({ server: { port: server.port }, authentication: { type: 'basic', username: 'u' } }).call({ method: 'GET', path: '/x' });
    expect(r).toBe(
      'The integration did not have the information needed to make the API call: the configuration is not valid: /server/host is required; /authentication/password is required',
    );
    expect(server.requests.length).toBe(before);
  });

  test('the configured axios instance applies auth for typed clients and rejects non-2xx as axios does', async () => {
    const c = client({ server: { ...server_(), base_path: '/api' }, authentication: { type: 'bearer', token: 'good-token' } });
    const res = await c.axios.get<{ ok: boolean }>('/secure');
    expect(res.data).toEqual({ ok: true });
    await expect(c.axios.get('/html')).rejects.toMatchObject({ response: { status: 404 } });
  });

  test('connections are kept alive between calls', async () => {
    const c = client({ server: { ...server_(), base_path: '/api' } });
    const mark = server.requests.length;
    await c.call({ method: 'GET', path: '/echo' });
    await c.call({ method: 'GET', path: '/pets/7' });
    const [a, b] = server.requests.slice(mark);
    expect(a?.headers.connection).toBe('keep-alive');
    expect(b?.remotePort).toBe(a?.remotePort);
  });

  test('request and response lines are logged with secrets redacted; the level changes at run time', async () => {
    const c = client(
      { server: { ...server_(), base_path: '/api' }, authentication: { type: 'api_key', name: 'key', in: 'query', value: 'very-secret-key' }, logging: { level: 'debug' } },
      'logged',
    );
    const mark = mem.lines.length;
    await c.call({ method: 'GET', path: '/echo', headers: { 'x-other': 'very-secret-key' } });
    const lines = mem.lines.slice(mark).filter((l) => l['integration'] === 'logged');
    expect(lines.map((l) => l['message'])).toEqual(['integration request', 'integration response', 'integration response headers']);
    expect(lines[1]).toMatchObject({ level: 'info', method: 'GET', url: `${server.url}/api/echo?key=%5Bredacted%5D`, status: 200 });
    expect(JSON.stringify(lines)).not.toContain('very-secret-key');

    c.setLogLevel('warn');
    expect(c.getLogLevel()).toBe('warn');
    const mark2 = mem.lines.length;
    await c.call({ method: 'GET', path: '/echo' });
    await c.call({ method: 'GET', path: '/html' });
    const after = mem.lines.slice(mark2).filter((l) => l['integration'] === 'logged');
    expect(after.map((l) => [l['level'], l['status']])).toEqual([['warn', 404]]);
  });
});
