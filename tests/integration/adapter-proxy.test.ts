import { createIntegrationClient, isEnvelope, pemToDataUrl, type IntegrationClient, type IntegrationEnvelope } from '../../adapter/http';
import { startForwardProxy, type ForwardProxy, type ProxyLogEntry } from '../support/forward-proxy';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { startMtlsServer, type MtlsServer } from '../support/mtls-server';
import { createCa, issueClientCert, type Issued } from '../support/pki';

function envelope(result: IntegrationEnvelope | string): IntegrationEnvelope {
  if (!isEnvelope(result)) throw new Error(`expected an envelope, got the string: ${result}`);
  return result;
}

describe('proxy override through a real forward proxy (`proxy` package)', () => {
  let open: ForwardProxy;
  let guarded: ForwardProxy;
  let target: LoopbackServer;
  let tlsTarget: MtlsServer;
  let clientCert: Issued;
  let mem: MemoryLogger;
  const clients: IntegrationClient[] = [];
  const client = (config: Record<string, unknown>): IntegrationClient => {
    const c = createIntegrationClient(config, { logger: mem.logger, name: 'proxied' });
    clients.push(c);
    return c;
  };
  const httpServer = (): Record<string, unknown> => ({ host: '127.0.0.1', port: target.port });
  const through = (p: ForwardProxy, auth?: Record<string, unknown>): Record<string, unknown> => ({
    override: true,
    mode: 'proxy',
    host: p.host,
    port: p.port,
    ...(auth ? { auth } : {}),
  });
  const fresh = async (p: ForwardProxy, since: number): Promise<ProxyLogEntry[]> => (await p.log()).slice(since);

  beforeAll(async () => {
    mem = createMemoryLogger();
    [open, guarded] = await Promise.all([startForwardProxy(), startForwardProxy({ username: 'proxy-user', password: 'proxy-pass' })]);
    target = await startLoopbackServer((req, res) => {
      if (req.url === '/key') return sendJson(res, 200, { key: 'k-1' });
      return sendJson(res, 200, { path: req.url, key: req.headers['x-key'] ?? null });
    });
    const ca = createCa('Proxy Test Client CA');
    clientCert = issueClientCert(ca, 'via-tunnel');
    tlsTarget = await startMtlsServer(ca);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all([open.stop(), guarded.stop(), target.close(), tlsTarget.close()]);
  });

  test('plain HTTP goes to the proxy with an absolute URI', async () => {
    const since = (await open.log()).length;
    const before = target.requests.length;
    const env = envelope(await client({ server: httpServer(), proxy: through(open) }).call({ method: 'GET', path: '/things?x=1' }));
    expect(env).toMatchObject({ ok: true, url: `${target.url}/things?x=1`, body: { path: '/things?x=1' } });
    expect(await fresh(open, since)).toEqual([{ kind: 'request', method: 'GET', url: `${target.url}/things?x=1`, proxy_authorization: false }]);
    expect(target.requests.length - before).toBe(1);
  });

  test('HTTPS is tunnelled with CONNECT, and mTLS works end to end through the tunnel', async () => {
    const since = (await open.log()).length;
    const c = client({
      server: { protocol: 'https', host: '127.0.0.1', port: tlsTarget.port },
      mtls: { cert: pemToDataUrl(clientCert.certPem), key: pemToDataUrl(clientCert.keyPem), ca: pemToDataUrl(tlsTarget.serverCa.certPem) },
      proxy: through(open),
    });
    expect(envelope(await c.call({ method: 'GET', path: '/whoami' }))).toMatchObject({ ok: true, body: { client_cn: 'via-tunnel' } });
    expect(await fresh(open, since)).toEqual([{ kind: 'connect', method: 'CONNECT', url: `127.0.0.1:${tlsTarget.port}`, proxy_authorization: false }]);
  });

  test('Basic proxy authentication: right credentials pass (HTTP and CONNECT)', async () => {
    const since = (await guarded.log()).length;
    const auth = { mode: 'basic', username: 'proxy-user', password: 'proxy-pass' };
    expect(envelope(await client({ server: httpServer(), proxy: through(guarded, auth) }).call({ method: 'GET', path: '/a' })).ok).toBe(true);
    const tls = client({
      server: { protocol: 'https', host: '127.0.0.1', port: tlsTarget.port },
      mtls: { cert: pemToDataUrl(clientCert.certPem), key: pemToDataUrl(clientCert.keyPem), ca: pemToDataUrl(tlsTarget.serverCa.certPem) },
      proxy: through(guarded, auth),
    });
    expect(envelope(await tls.call({ method: 'GET', path: '/whoami' })).ok).toBe(true);
    expect((await fresh(guarded, since)).map((e) => [e.kind, e.proxy_authorization])).toEqual([
      ['request', true],
      ['connect', true],
    ]);
  });

  test('Basic proxy authentication: missing or wrong credentials are a string naming the proxy', async () => {
    const wrong = { mode: 'basic', username: 'proxy-user', password: 'nope' };
    const plain = await client({ server: httpServer(), proxy: through(guarded, wrong) }).call({ method: 'GET', path: '/a' });
    expect(plain).toBe(`The API call could not be made: GET ${target.url}/a: the proxy 127.0.0.1:${guarded.port} refused the request (407 Proxy Authentication Required)`);
    const tunnel = await client({ server: { protocol: 'https', host: '127.0.0.1', port: tlsTarget.port }, proxy: through(guarded) }).call({ method: 'GET', path: '/x' });
    expect(tunnel).toBe(
      `The API call could not be made: the proxy 127.0.0.1:${guarded.port} refused to tunnel to 127.0.0.1:${tlsTarget.port} (407 Proxy Authentication Required)`,
    );
  });

  test('`direct` mode, and an override that is off, bypass the proxy', async () => {
    const since = (await open.log()).length;
    const before = target.requests.length;
    const direct = client({ server: httpServer(), proxy: { override: true, mode: 'direct', host: open.host, port: open.port } });
    const off = client({ server: httpServer(), proxy: { override: false, mode: 'proxy', host: open.host, port: open.port } });
    expect(envelope(await direct.call({ method: 'GET', path: '/d' })).ok).toBe(true);
    expect(envelope(await off.call({ method: 'GET', path: '/o' })).ok).toBe(true);
    expect(await fresh(open, since)).toEqual([]);
    expect(target.requests.length - before).toBe(2);
  });

  test('auth side requests (a dynamic key) go through the proxy too', async () => {
    const since = (await open.log()).length;
    const c = client({
      server: httpServer(),
      authentication: { type: 'api_key', name: 'x-key', dynamic: { method: 'GET', url: `${target.url}/key`, response_pointer: '/key' } },
      proxy: through(open),
    });
    expect(envelope(await c.call({ method: 'GET', path: '/k' })).body).toEqual({ path: '/k', key: 'k-1' });
    expect((await fresh(open, since)).map((e) => e.url)).toEqual([`${target.url}/key`, `${target.url}/k`]);
  });

  test('the proxy password never reaches the log', () => {
    expect(mem.text()).not.toContain('proxy-pass');
  });
});
