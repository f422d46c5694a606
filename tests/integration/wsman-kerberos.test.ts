/**
 * WS-Management over Kerberos: the WS-Man client (adapter/wsman) with the integration runtime's `negotiate`
 * authentication, tickets from the suite's Samba KDC, against the loopback WinRM listener behind the SPNEGO acceptor
 * (tests/support/wsman-server.ts `startKerberosWsmanServer`: the spnego child verifies each token with the keytab of
 * HTTP/sccm.test.local and relays the request, with the principal it proved, to the WS-Man handler). HTTPS, as
 * WinRM's 5986 listener: no WinRM message encryption is needed (adapter/wsman/wsman.ts says why).
 */
import { readFileSync } from 'node:fs';
import { createIntegrationClient, type IntegrationClient } from '../../adapter/http';
import { executeProgram, MACHINE_POLICY_RETRIEVAL, triggerClientSchedule, WMI_RESOURCE_PREFIX, WsmanError, WsmanErrorCode } from '../../adapter/wsman';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { ensureKerberos, type SambaKerberos } from '../support/samba-kerberos';
import { startKerberosWsmanServer, type KerberosWsmanServer } from '../support/wsman-server';
import { rejectionOf } from '../support/rejection';

const TO = 'https://pc01.corp.example:5986/wsman';
const WRONG_PASSWORD = 'Not-The-WinRM-Passw0rd!';
let k: SambaKerberos;
let keytab: string;
let server: KerberosWsmanServer;
let mem: MemoryLogger;
const clients: IntegrationClient[] = [];

function client(auth: Record<string, unknown> = {}): IntegrationClient {
  const c = createIntegrationClient(
    {
      server: { protocol: 'https', host: '127.0.0.1', port: server.port },
      authentication: { type: 'negotiate', principal: k.client.principal, keytab, spn: `HTTP/${k.httpServiceHost}`, ...auth },
      mtls: { ca: server.spnego.caDataUrl },
      timeout: 10_000,
      logging: { level: 'debug' },
    },
    { logger: mem.logger, name: 'sccm-winrm-krb' },
  );
  clients.push(c);
  return c;
}

const failure = (p: Promise<unknown>): Promise<WsmanError> => rejectionOf(p, WsmanError);

beforeAll(async () => {
  k = await ensureKerberos();
  keytab = readFileSync(k.clientKeytab).toString('base64');
  mem = createMemoryLogger();
  server = await startKerberosWsmanServer(k, { returnValues: { PS1000FF: 1 } });
}, 240_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.stop();
});

describe('WS-Management Invoke over Kerberos (Negotiate, Samba KDC)', () => {
  test('TriggerSchedule and ExecuteProgram authenticate with a ticket; the listener sees the principal and the envelope', async () => {
    const c = client();
    const r = await triggerClientSchedule(c, TO, MACHINE_POLICY_RETRIEVAL);
    expect(r).toMatchObject({ status: 200, output: { ReturnValue: '0' } });
    expect(server.calls.at(-1)).toEqual({
      device: 'pc01.corp.example',
      resourceUri: `${WMI_RESOURCE_PREFIX}root/ccm/SMS_Client`,
      method: 'TriggerSchedule',
      messageId: r.messageId,
      params: { sScheduleID: MACHINE_POLICY_RETRIEVAL },
      principal: k.client.principal,
    });
    const run = await executeProgram(c, TO, 'PS100123');
    expect(run.output).toEqual({ ReturnValue: '0' });
    expect(server.calls.at(-1)).toMatchObject({ method: 'ExecuteProgram', params: { ProgramID: '*', PackageID: 'PS100123' }, principal: k.client.principal });
    expect(server.rejections).toEqual([]);
    const accepted = (await server.spnego.events()).filter((e) => e.kind === 'accepted' && e.url === '/wsman');
    expect(accepted.slice(-2)).toEqual([
      expect.objectContaining({ user: k.client.principal, mech: 'spnego', method: 'POST', status: 200, hadBody: true }),
      expect.objectContaining({ user: k.client.principal, mech: 'spnego', method: 'POST', status: 200, hadBody: true }),
    ]);
  });

  test('a password-derived ticket works the same; a non-zero ReturnValue is the output, not an exception', async () => {
    const r = await executeProgram(client({ keytab: undefined, password: k.client.password }), TO, 'PS1000FF');
    expect(r.output).toEqual({ ReturnValue: '1' });
  });

  test('a wrong password is WSMAN_AUTH_FAILED naming KDC_ERR_PREAUTH_FAILED, and nothing reaches the listener', async () => {
    const before = server.calls.length;
    const e = await failure(triggerClientSchedule(client({ keytab: undefined, password: WRONG_PASSWORD }), TO, MACHINE_POLICY_RETRIEVAL));
    expect(e.code).toBe(WsmanErrorCode.AUTH_FAILED);
    expect(e.message).toMatch(/^WS-Man TriggerSchedule on root\/ccm\/SMS_Client: .*KERBEROS_BAD_CREDENTIALS: .*KDC_ERR_PREAUTH_FAILED/);
    expect(server.calls.length).toBe(before);
  });

  test('a raw Kerberos token (mech krb5) is refused by the SPNEGO-only listener: WSMAN_AUTH_FAILED, never a hang', async () => {
    const started = Date.now();
    const e = await failure(triggerClientSchedule(client({ mech: 'krb5' }), TO, MACHINE_POLICY_RETRIEVAL));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(e.code).toBe(WsmanErrorCode.AUTH_FAILED);
    expect(e.message).toMatch(/refused the Kerberos authentication of krb-client@TEST\.LOCAL to HTTP\/sccm\.test\.local/);
    expect((await server.spnego.events()).at(-1)).toMatchObject({ kind: 'refused', reason: 'mechanism krb5 not accepted' });
  });

  test('no keytab, password or token in any log line', () => {
    const text = mem.text();
    expect(text).toContain('integration request');
    for (const s of [keytab, keytab.slice(20, 80), k.client.password, WRONG_PASSWORD]) expect(text).not.toContain(s);
    expect(text).not.toMatch(/Negotiate [A-Za-z0-9+/]{20,}/);
  });
});
