import { checkMtlsMaterial, createIntegrationClient, isEnvelope, pemToDataUrl, type IntegrationClient, type IntegrationEnvelope } from '../../adapter/http';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { startMtlsServer, type MtlsServer } from '../support/mtls-server';
import { createCa, issueClientCert, type Issued } from '../support/pki';

function envelope(result: IntegrationEnvelope | string): IntegrationEnvelope {
  if (!isEnvelope(result)) throw new Error(`expected an envelope, got the string: ${result}`);
  return result;
}

describe('TLS and mutual TLS against an HTTPS server demanding client certificates (CA made with node-forge)', () => {
  let clientCa: Issued;
  let otherCa: Issued;
  let good: Issued;
  let foreign: Issued;
  let expired: Issued;
  let server: MtlsServer;
  let mem: MemoryLogger;
  const clients: IntegrationClient[] = [];

  const mtls = (cert: Issued, ca?: string, key: Issued = cert): Record<string, string> => ({
    cert: pemToDataUrl(cert.certPem),
    key: pemToDataUrl(key.keyPem),
    ...(ca !== undefined ? { ca: pemToDataUrl(ca) } : {}),
  });
  const call = async (extra: Record<string, unknown>): Promise<IntegrationEnvelope | string> => {
    const c = createIntegrationClient({ server: { protocol: 'https', host: '127.0.0.1', port: server.port }, ...extra }, { logger: mem.logger, name: 'mtls' });
    clients.push(c);
    return c.call({ method: 'GET', path: '/whoami' });
  };

  beforeAll(async () => {
    mem = createMemoryLogger();
    clientCa = createCa('Test Client CA');
    otherCa = createCa('Some Other CA');
    good = issueClientCert(clientCa, 'provisio-client');
    foreign = issueClientCert(otherCa, 'stranger');
    expired = issueClientCert(clientCa, 'old-client', { notBefore: new Date(Date.now() - 48 * 3600_000), notAfter: new Date(Date.now() - 24 * 3600_000) });
    server = await startMtlsServer(clientCa);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server.close();
  });

  test('a client certificate from the trusted CA gets through, and the server CA from mtls.ca is trusted', async () => {
    expect(envelope(await call({ mtls: mtls(good, server.serverCa.certPem) }))).toMatchObject({
      ok: true,
      url: `${server.url}/whoami`,
      body: { client_cn: 'provisio-client' },
    });
  });

  test('a client certificate from another CA is refused: a TLS failure string', async () => {
    const r = await call({ mtls: mtls(foreign, server.serverCa.certPem) });
    expect(r).toEqual(expect.stringMatching(new RegExp(`^The API call could not be made: GET ${server.url}/whoami: TLS failure`)));
  });

  test('no client certificate at all is refused: a TLS failure string', async () => {
    const r = await call({ mtls: { ca: pemToDataUrl(server.serverCa.certPem) } });
    expect(r).toEqual(expect.stringContaining('TLS failure'));
  });

  test('an expired client certificate is refused by the server and reported by checkMtlsMaterial', async () => {
    expect(await call({ mtls: mtls(expired, server.serverCa.certPem) })).toEqual(expect.stringContaining('TLS failure'));
    expect(checkMtlsMaterial(pemToDataUrl(expired.certPem), pemToDataUrl(expired.keyPem))).toEqual([
      { path: '/mtls/cert', message: expect.stringMatching(/^has expired \(valid to /) },
    ]);
  });

  test('a key that does not belong to the certificate is reported by checkMtlsMaterial and fails the call', async () => {
    expect(checkMtlsMaterial(pemToDataUrl(good.certPem), pemToDataUrl(foreign.keyPem), pemToDataUrl(clientCa.certPem))).toEqual([
      { path: '/mtls/key', message: 'does not match the certificate (a different key pair)' },
    ]);
    expect(checkMtlsMaterial(pemToDataUrl(good.certPem), pemToDataUrl(good.keyPem), pemToDataUrl(clientCa.certPem))).toEqual([]);
    expect(await call({ mtls: mtls(good, server.serverCa.certPem, foreign) })).toEqual(expect.stringContaining('TLS failure'));
  });

  test('the server certificate is verified against the wrong CA: refused', async () => {
    const r = await call({ mtls: mtls(good, otherCa.certPem) });
    expect(r).toEqual(expect.stringContaining('TLS failure'));
  });

  test('rejectUnauthorized on (default, and with tls enabled): an untrusted server certificate is refused', async () => {
    expect(await call({ mtls: mtls(good) })).toEqual(expect.stringContaining('TLS failure'));
    expect(await call({ mtls: mtls(good), tls: { enabled: true, reject_unauthorized: true } })).toEqual(expect.stringContaining('TLS failure'));
  });

  test('rejectUnauthorized off (tls enabled): the untrusted server certificate is accepted', async () => {
    expect(envelope(await call({ mtls: mtls(good), tls: { enabled: true, reject_unauthorized: false } }))).toMatchObject({
      ok: true,
      body: { client_cn: 'provisio-client' },
    });
  });

  test('reject_unauthorized off has no effect while tls is not enabled (seed: applies only when Enabled is on)', async () => {
    expect(await call({ mtls: mtls(good), tls: { enabled: false, reject_unauthorized: false } })).toEqual(expect.stringContaining('TLS failure'));
  });

  test('the private key never reaches the log', () => {
    expect(mem.text()).not.toContain('PRIVATE KEY');
  });
});
