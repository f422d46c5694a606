import { createIntegrationClient, isEnvelope, type IntegrationClient, type IntegrationEnvelope } from '../../adapter/http';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { startSigV4Server, type SigV4Server } from '../support/sigv4-server';

function envelope(result: IntegrationEnvelope | string): IntegrationEnvelope {
  if (!isEnvelope(result)) throw new Error(`expected an envelope, got the string: ${result}`);
  return result;
}

describe('AWS Signature V4, verified by an independent implementation (aws4)', () => {
  let server: SigV4Server;
  let mem: MemoryLogger;
  const clients: IntegrationClient[] = [];
  const client = (auth: Record<string, unknown>, basePath = ''): IntegrationClient => {
    const c = createIntegrationClient(
      {
        server: { host: '127.0.0.1', port: server.port, base_path: basePath },
        authentication: { type: 'aws_sigv4', region: 'eu-central-1', service: 'execute-api', ...auth },
        logging: { level: 'debug' },
      },
      { logger: mem.logger, name: 'aws' },
    );
    clients.push(c);
    return c;
  };
  const creds = { access_key_id: 'AKIDEXAMPLE', secret_access_key: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

  beforeAll(async () => {
    mem = createMemoryLogger();
    server = await startSigV4Server({
      region: 'eu-central-1',
      service: 'execute-api',
      keys: {
        AKIDEXAMPLE: { secret: creds.secret_access_key },
        ASIATEMP: { secret: 'temp-secret-key-value', sessionToken: 'session-token-value' },
      },
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server.close();
  });

  test('a GET with a query is signed so that aws4 verifies it', async () => {
    const env = envelope(await client(creds, '/prod').call({ method: 'GET', path: '/items', query: { b: 'two words', a: 1 } }));
    expect(env).toMatchObject({ ok: true, status: 200, body: { verified: true, url: '/prod/items?b=two+words&a=1' } });
    expect(env.url).toBe(`${server.url}/prod/items?b=two+words&a=1`);
    expect((env.body as { signed_headers: string[] }).signed_headers).toEqual(expect.arrayContaining(['host', 'x-amz-date', 'x-amz-content-sha256']));
  });

  test('a POST body is covered by the signature and arrives unchanged', async () => {
    const env = envelope(await client(creds).call({ method: 'POST', path: '/items', body: { name: 'vm-1', tags: ['a'] } }));
    expect(env).toMatchObject({ ok: true, body: { verified: true, method: 'POST', body: '{"name":"vm-1","tags":["a"]}' } });
    expect((env.body as { signed_headers: string[] }).signed_headers).toContain('content-type');
  });

  test('temporary credentials send and sign the session token', async () => {
    const env = envelope(
      await client({ access_key_id: 'ASIATEMP', secret_access_key: 'temp-secret-key-value', session_token: 'session-token-value' }).call({ method: 'DELETE', path: '/items/7' }),
    );
    expect(env).toMatchObject({ ok: true, body: { verified: true } });
    expect((env.body as { signed_headers: string[] }).signed_headers).toContain('x-amz-security-token');
  });

  test('a wrong secret is refused by the verifier: the 403 envelope comes back', async () => {
    const env = envelope(await client({ ...creds, secret_access_key: 'not-the-secret' }).call({ method: 'GET', path: '/items' }));
    expect(env).toMatchObject({ ok: false, status: 403, body: { message: expect.stringContaining('signature we calculated does not match') } });
  });

  test('the typed-client axios instance signs too', async () => {
    const res = await client(creds).axios.put<{ verified: boolean }>('/items/1', { name: 'x' }, { params: { dry: true } });
    expect(res.data.verified).toBe(true);
  });

  test('secrets never reach the log', () => {
    expect(mem.text()).not.toContain(creds.secret_access_key);
    expect(mem.text()).not.toContain('session-token-value');
  });
});
