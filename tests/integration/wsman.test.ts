import { createIntegrationClient, type IntegrationClient } from '../../adapter/http';
import {
  buildInvokeEnvelope,
  executeProgram,
  invokeWsmanMethod,
  MACHINE_POLICY_RETRIEVAL,
  triggerClientSchedule,
  WsmanError,
  WsmanErrorCode,
  WMI_RESOURCE_PREFIX,
} from '../../adapter/wsman';
import { closedPort } from '../support/loopback-server';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { startWsmanServer, type WsmanServer } from '../support/wsman-server';
import { rejectionOf } from '../support/rejection';

const PASSWORD = 'Winrm-S3cret!pw';
let server: WsmanServer;
const TO = 'http://pc01.corp.example:5985/wsman';

function client(password: string, log: MemoryLogger): IntegrationClient {
  return createIntegrationClient(
    { server: { host: '127.0.0.1', port: server.port }, authentication: { type: 'ntlm', username: 'svc-sccm', password, domain: 'CORP' }, logging: { level: 'debug' } },
    { logger: log.logger, name: 'sccm-winrm' },
  );
}

const failure = (p: Promise<unknown>): Promise<WsmanError> => rejectionOf(p, WsmanError);

beforeAll(async () => {
  server = await startWsmanServer({ domain: 'CORP', accounts: { 'CORP\\svc-sccm': PASSWORD } });
});
afterAll(() => server.close());

describe('WS-Management Invoke over NTLM (ConfigMgr client)', () => {
  test('TriggerSchedule authenticates with NTLMv2 and the server sees the right envelope; the trigger is recorded for the device', async () => {
    const log = createMemoryLogger();
    const c = client(PASSWORD, log);
    try {
      const r = await triggerClientSchedule(c, TO, MACHINE_POLICY_RETRIEVAL);
      expect(r).toMatchObject({ status: 200, output: { ReturnValue: '0' } });
      expect(r.messageId).toMatch(/^uuid:[0-9A-F-]{36}$/);
      expect(server.schedules.get('pc01.corp.example')).toEqual([MACHINE_POLICY_RETRIEVAL]);
      expect(server.calls.at(-1)).toEqual({
        device: 'pc01.corp.example',
        resourceUri: `${WMI_RESOURCE_PREFIX}root/ccm/SMS_Client`,
        method: 'TriggerSchedule',
        messageId: r.messageId,
        params: { sScheduleID: MACHINE_POLICY_RETRIEVAL },
      });
      expect(server.events.filter((e) => e.kind === 'authenticate').at(-1)).toMatchObject({ ok: true, user: 'svc-sccm', domain: 'CORP' });
      expect(server.rejections).toEqual([]);
      // A task sequence deployment run at once: ExecuteProgram with program id '*'.
      const run = await executeProgram(c, TO, 'PS100123');
      expect(run.output).toEqual({ ReturnValue: '0' });
      expect(server.calls.at(-1)).toMatchObject({ method: 'ExecuteProgram', params: { ProgramID: '*', PackageID: 'PS100123' } });
      expect(log.text()).not.toContain(PASSWORD);
    } finally {
      c.close();
    }
  });

  test('a wrong password is WSMAN_AUTH_FAILED naming the 401, and the server saw the NTLMv2 proof fail', async () => {
    const log = createMemoryLogger();
    const c = client('not-the-password', log);
    try {
      const e = await failure(triggerClientSchedule(c, TO, MACHINE_POLICY_RETRIEVAL));
      expect(e.code).toBe(WsmanErrorCode.AUTH_FAILED);
      expect(e.message).toBe('WS-Man TriggerSchedule on root/ccm/SMS_Client: the server refused the credentials (401; it offers Negotiate, NTLM)');
      expect(server.events.filter((x) => x.kind === 'authenticate').at(-1)).toMatchObject({ ok: false, reason: 'wrong password' });
      expect(log.text()).not.toContain('not-the-password');
      expect(e.message).not.toContain('not-the-password');
    } finally {
      c.close();
    }
  });

  test('an unknown WMI class is the SOAP fault as a precise error: subcode, WMI code, reason', async () => {
    const log = createMemoryLogger();
    const c = client(PASSWORD, log);
    try {
      const e = await failure(invokeWsmanMethod(c, { to: TO, resourceUri: `${WMI_RESOURCE_PREFIX}root/ccm/SMS_NoSuchClass`, method: 'TriggerSchedule', params: { sScheduleID: MACHINE_POLICY_RETRIEVAL } }));
      expect(e.code).toBe(WsmanErrorCode.SOAP_FAULT);
      expect(e.status).toBe(400);
      expect(e.fault).toMatchObject({ code: 'Sender', subcode: 'DestinationUnreachable', errorCode: '0x80041010' });
      expect(e.message).toMatch(/^WS-Man TriggerSchedule on root\/ccm\/SMS_NoSuchClass: SOAP fault Sender\/DestinationUnreachable: 0x80041010: The WS-Management service/);
      // No ConfigMgr client at all: the namespace is missing, WMI's 0x8004100E.
      const ns = await failure(invokeWsmanMethod(c, { to: TO, resourceUri: `${WMI_RESOURCE_PREFIX}root/nosuch/SMS_Client`, method: 'TriggerSchedule', params: { sScheduleID: MACHINE_POLICY_RETRIEVAL } }));
      expect(ns.fault?.errorCode).toBe('0x8004100e');
      // A method the class lacks.
      const m = await failure(invokeWsmanMethod(c, { to: TO, resourceUri: `${WMI_RESOURCE_PREFIX}root/ccm/SMS_Client`, method: 'Reboot', params: {} }));
      expect(m.fault).toMatchObject({ subcode: 'ActionNotSupported', reason: 'The method Reboot does not exist on root/ccm/SMS_Client.', errorCode: '0x80338013' });
      // A schedule id that is no GUID: WMI's generic failure from the provider.
      const g = await failure(triggerClientSchedule(c, TO, 'not-a-guid'));
      expect(g.fault).toMatchObject({ code: 'Receiver', subcode: 'InternalError', errorCode: '0x80041001' });
      expect(server.rejections).toEqual([]);
    } finally {
      c.close();
    }
  });

  test('the server rejects an envelope that breaks the rules (the checks can fail)', async () => {
    const c = client(PASSWORD, createMemoryLogger());
    try {
      const bad = buildInvokeEnvelope({ to: TO, resourceUri: `${WMI_RESOURCE_PREFIX}root/ccm/SMS_Client`, method: 'TriggerSchedule', params: { sScheduleID: MACHINE_POLICY_RETRIEVAL }, messageId: 'not-a-uuid' });
      const r = await c.call({ method: 'POST', path: '/wsman', headers: { 'Content-Type': 'application/soap+xml;charset=UTF-8' }, body: bad });
      expect(r).toMatchObject({ status: 400 });
      expect(server.rejections.at(-1)).toBe("MessageID 'not-a-uuid'");
      // The body in another namespace than the ResourceURI's is refused too.
      const otherNs = bad.replace('not-a-uuid', 'uuid:00000000-0000-0000-0000-000000000001').replace('<p:TriggerSchedule_INPUT xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/ccm/SMS_Client"', '<p:TriggerSchedule_INPUT xmlns:p="urn:other"');
      expect(await c.call({ method: 'POST', path: '/wsman', headers: { 'Content-Type': 'application/soap+xml;charset=UTF-8' }, body: otherNs })).toMatchObject({ status: 400 });
      expect(server.rejections.at(-1)).toBe("no TriggerSchedule_INPUT in the resource's namespace");
    } finally {
      c.close();
    }
  });

  test('no listener: WSMAN_NOT_REACHED with the transport reason, never a hang', async () => {
    const port = await closedPort();
    const c = createIntegrationClient({ server: { host: '127.0.0.1', port }, authentication: { type: 'ntlm', username: 'svc-sccm', password: PASSWORD, domain: 'CORP' }, timeout: 5000 }, { logger: createMemoryLogger().logger, name: 'sccm-winrm' });
    try {
      const e = await failure(triggerClientSchedule(c, TO, MACHINE_POLICY_RETRIEVAL));
      expect(e.code).toBe(WsmanErrorCode.NOT_REACHED);
      expect(e.message).toMatch(/refused/i);
    } finally {
      c.close();
    }
  });
});
