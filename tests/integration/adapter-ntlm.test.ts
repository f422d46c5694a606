import { create_NT_hashed_password } from 'httpntlm/ntlm';
import { bindTypedClient, sccm, statusOf } from '../../adapter/clients';
import { createIntegrationClient, isEnvelope, validateIntegrationConfig, type IntegrationClient } from '../../adapter/http';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { sendJson } from '../support/loopback-server';
import { startNtlmServer, type NtlmServer } from '../support/ntlm-server';

const PASSWORD = 'Sccm-Passw0rd!';

/** The runtime's ntlm scheme against a loopback server that performs and verifies the NTLM handshake. */
describe('ntlm authentication (loopback NTLM server)', () => {
  let server: NtlmServer;
  let kerberosOnly: NtlmServer;
  let mem: MemoryLogger;
  const clients: IntegrationClient[] = [];
  const integration = (port: number, auth: Record<string, unknown> = {}): IntegrationClient => {
    const c = createIntegrationClient(
      { server: { host: '127.0.0.1', port }, authentication: { type: 'ntlm', username: 'TEST\\svc-sccm', password: PASSWORD, ...auth }, logging: { level: 'debug' } },
      { logger: mem.logger, name: 'sccm' },
    );
    clients.push(c);
    return c;
  };
  const handler = (req: { method: string; url: string; body: string }, res: import('node:http').ServerResponse): void => {
    if (req.method === 'POST') return sendJson(res, 200, { ReturnValue: 0, ResourceID: 16777230, MachineExists: false, echo: JSON.parse(req.body || 'null') as unknown });
    sendJson(res, 200, { '@odata.context': 'x', value: [{ ResourceId: 16777220, Name: 'VDI-JDOE-01' }] });
  };

  beforeAll(async () => {
    mem = createMemoryLogger();
    server = await startNtlmServer({ domain: 'TEST', accounts: { 'TEST\\svc-sccm': PASSWORD }, handler });
    kerberosOnly = await startNtlmServer({ domain: 'TEST', accounts: {}, handler, offer: 'negotiate-only' });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.close();
    await kerberosOnly?.close();
  });

  it('computes the NT hash of the published MS-NLMP test vector', () => {
    // MS-NLMP 4.2.2.1.2: NTOWFv1("Password") = a4f49c406510bdcab6824ee7c30fd852; the server's verification builds on it.
    expect(create_NT_hashed_password('Password').toString('hex')).toBe('a4f49c406510bdcab6824ee7c30fd852');
  });

  it('accepts the ntlm configuration and requires its credentials', () => {
    expect(validateIntegrationConfig({ server: { host: 'h' }, authentication: { type: 'ntlm', username: 'TEST\\u', password: 'p' } }).ok).toBe(true);
    const bad = validateIntegrationConfig({ server: { host: 'h' }, authentication: { type: 'ntlm', username: 'u' } });
    expect(bad.ok).toBe(false);
  });

  it('authenticates a typed SCCM call with NTLMv2 on one connection', async () => {
    const before = server.events.length;
    const r = await sccm.getDeviceByName({ client: bindTypedClient(integration(server.port)), query: { $filter: "Name eq 'VDI-JDOE-01'" } });
    expect(statusOf(r)).toBe(200);
    expect(r.data?.value[0]?.ResourceId).toBe(16777220);
    const events = server.events.slice(before);
    expect(events.map((e) => e.kind)).toEqual(['negotiate', 'authenticate']);
    expect(events[1]).toMatchObject({ ok: true, user: 'svc-sccm', domain: 'TEST' });
    // The challenge is bound to the connection: both messages came over the same socket.
    expect(events[0]?.remotePort).toBe(events[1]?.remotePort);
  });

  it('sends the body only with the authenticated request', async () => {
    const before = server.events.length;
    const r = await sccm.importMachineEntry({ client: bindTypedClient(integration(server.port)), body: { NetbiosName: 'VDI-JDOE-02', MACAddress: '00:50:56:AA:BB:CD' } });
    expect(statusOf(r)).toBe(200);
    expect(r.data).toMatchObject({ ResourceID: 16777230 });
    expect((r.data as { echo?: unknown } | undefined)?.echo).toEqual({ NetbiosName: 'VDI-JDOE-02', MACAddress: '00:50:56:AA:BB:CD' });
    expect(server.events.slice(before).map((e) => [e.kind, e.hadBody])).toEqual([
      ['negotiate', false],
      ['authenticate', true],
    ]);
  });

  it('keeps concurrent calls on their own authenticated connections', async () => {
    const before = server.events.length;
    const client = bindTypedClient(integration(server.port, { username: 'svc-sccm', domain: 'test' }));
    const results = await Promise.all(Array.from({ length: 6 }, () => sccm.getDeviceByName({ client, query: { $top: 1 } })));
    expect(results.map((r) => statusOf(r))).toEqual([200, 200, 200, 200, 200, 200]);
    const auths = server.events.slice(before).filter((e) => e.kind === 'authenticate');
    expect(auths).toHaveLength(6);
    expect(auths.every((e) => e.ok === true)).toBe(true);
    expect(new Set(auths.map((e) => e.remotePort)).size).toBe(6);
  });

  it('returns a refused password as the 401 answer, never the password in the logs', async () => {
    const before = server.events.length;
    const ic = integration(server.port, { password: 'Wrong-Passw0rd!' });
    const env = await ic.call({ method: 'GET', path: '/AdminService/wmi/SMS_R_System' });
    if (!isEnvelope(env)) throw new Error(env);
    expect(env.status).toBe(401);
    expect(server.events.slice(before).map((e) => e.reason ?? e.kind)).toEqual(['negotiate', 'wrong password']);
    expect(mem.text()).not.toContain(PASSWORD);
    expect(mem.text()).not.toContain('Wrong-Passw0rd!');
  });

  it('says clearly when the server offers no NTLM (Kerberos only)', async () => {
    const env = await integration(kerberosOnly.port).call({ method: 'GET', path: '/AdminService/wmi/SMS_R_System' });
    expect(typeof env).toBe('string');
    expect(env).toMatch(/offers no NTLM challenge \(WWW-Authenticate: Negotiate\); it may accept Kerberos only/);
  });
});
