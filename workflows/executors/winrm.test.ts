// The winrm executor against the loopback WinRM listener with NTLM (tests/support/wsman-server.ts); the connection
// is a fake of the integration runtime's endpointClient that records what it was asked for. The Kerberos path, the
// sample VDI runbook and the runtime's own endpointClient run in tests/integration/runbook-winrm-kerberos.test.ts.
import { createIntegrationClient, type IntegrationClient } from '../../adapter';
import type { IntegrationRecord } from '../../integration-model';
import { compiledTask, stepContext } from '../../tests/support/executors';
import { createMemoryLogger } from '../../tests/support/memory-logger';
import { startWsmanServer, type WsmanServer } from '../../tests/support/wsman-server';
import type { WinrmTask } from '../document';
import { createWinrmExecutor } from './winrm';

const PASSWORD = 'Winrm-Unit-S3cret!';
let server: WsmanServer;
let password = PASSWORD;
let stub = false;
const asked: { name: string; server: { protocol: string; host: string; port: number }; spn: string | undefined }[] = [];
const mem = createMemoryLogger();
const opened: IntegrationClient[] = [];

const executor = createWinrmExecutor({
  connections: {
    async endpointClient(name, endpoint, opts = {}) {
      asked.push({ name, server: endpoint, spn: opts.spn });
      if (name !== 'sccm') return undefined;
      const integration = { name, stub_mode: stub } as IntegrationRecord;
      if (stub) return { integration };
      // The device's name goes into the envelope; the connection goes to the loopback listener.
      const client: IntegrationClient = createIntegrationClient(
        { server: { host: '127.0.0.1', port: server.port }, authentication: { type: 'ntlm', username: 'svc-sccm', password, domain: 'CORP' }, logging: { level: 'debug' } },
        { logger: mem.logger, name },
      );
      opened.push(client);
      return { integration, client };
    },
  },
});

const run = (action: WinrmTask['action'], input: Record<string, unknown>, connection = 'sccm') =>
  executor(compiledTask({ kind: 'winrm', connection, action, incoming: {} }), input, stepContext());

beforeAll(async () => {
  server = await startWsmanServer({ domain: 'CORP', accounts: { 'CORP\\svc-sccm': PASSWORD }, returnValues: { PS1000FF: 1 } });
});
afterAll(async () => {
  for (const c of opened) c.close();
  await server.close();
});
afterEach(() => {
  password = PASSWORD;
  stub = false;
});

describe('winrm executor', () => {
  test('executeProgram runs the task sequence on the device: HTTPS 5986 by default, program id *', async () => {
    const r = await run('executeProgram', { host: 'pc01.corp.example', packageId: 'PS100123' });
    expect(r).toEqual({
      ok: true,
      output: {
        device: 'pc01.corp.example',
        method: 'ExecuteProgram',
        resourceUri: 'http://schemas.microsoft.com/wbem/wsman/1/wmi/root/ccm/ClientSDK/CCM_ProgramsManager',
        messageId: expect.stringMatching(/^uuid:/) as string,
        returnValue: 0,
        output: { ReturnValue: '0' },
      },
    });
    expect(asked.at(-1)).toEqual({ name: 'sccm', server: { protocol: 'https', host: 'pc01.corp.example', port: 5986 }, spn: undefined });
    expect(server.calls.at(-1)).toMatchObject({ device: 'pc01.corp.example', method: 'ExecuteProgram', params: { ProgramID: '*', PackageID: 'PS100123' } });
  });

  test('triggerSchedule defaults to machine policy retrieval; port, https and spn are passed on', async () => {
    const r = await run('triggerSchedule', { host: 'pc02.corp.example', https: false, port: 15985, spn: 'HTTP/pc02.corp.example' });
    expect(r).toMatchObject({ ok: true, output: { method: 'TriggerSchedule', returnValue: 0 } });
    expect(asked.at(-1)).toEqual({ name: 'sccm', server: { protocol: 'http', host: 'pc02.corp.example', port: 15985 }, spn: 'HTTP/pc02.corp.example' });
    expect(server.schedules.get('pc02.corp.example')).toEqual(['{00000000-0000-0000-0000-000000000021}']);
  });

  test('a non-zero ReturnValue is WINRM_RETURN_VALUE naming the value, with the output kept', async () => {
    const r = await run('executeProgram', { host: 'pc01.corp.example', packageId: 'PS1000FF' });
    expect(r).toEqual({
      ok: false,
      error: {
        code: 'WINRM_RETURN_VALUE',
        message: 'ExecuteProgram on pc01.corp.example returned ReturnValue 1 (0x00000001)',
        output: expect.objectContaining({ returnValue: 1, output: { ReturnValue: '1' } }) as unknown,
      },
    });
  });

  test('a SOAP fault is WINRM_FAULT naming the WS-Man subcode and the WMI code', async () => {
    const r = await run('triggerSchedule', { host: 'pc01.corp.example', scheduleId: 'not-a-guid' });
    expect(r).toMatchObject({ ok: false, error: { code: 'WINRM_FAULT', message: expect.stringMatching(/^WSMAN_SOAP_FAULT: .*SOAP fault Receiver\/InternalError: 0x80041001/) as string } });
  });

  test('refused credentials are WINRM_AUTH, never retried; the password is in no message or log line', async () => {
    password = 'not-the-password';
    const r = await run('triggerSchedule', { host: 'pc01.corp.example' });
    expect(r).toMatchObject({ ok: false, error: { code: 'WINRM_AUTH', retryable: false, message: expect.stringContaining('the server refused the credentials (401') as string } });
    expect(JSON.stringify(r)).not.toContain('not-the-password');
    expect(mem.text()).not.toContain('not-the-password');
    expect(mem.text()).not.toContain(PASSWORD);
  });

  test('stub mode answers ReturnValue 0 without a call; an unknown connection or missing input is INVALID_INPUT', async () => {
    stub = true;
    const before = server.calls.length;
    expect(await run('executeProgram', { host: 'pc09.corp.example', packageId: 'PS100123' })).toMatchObject({ ok: true, output: { device: 'pc09.corp.example', returnValue: 0 } });
    expect(server.calls.length).toBe(before);
    stub = false;
    expect(await run('executeProgram', { host: 'pc01.corp.example', packageId: 'PS100123' }, 'nosuch')).toMatchObject({
      ok: false,
      error: { code: 'INVALID_INPUT', retryable: false, message: "executeProgram: no integration 'nosuch' (the task's connection)" },
    });
    expect(await run('executeProgram', { host: 'pc01.corp.example' })).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', message: 'executeProgram: packageId is required' } });
    expect(await run('triggerSchedule', { port: 5986 })).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', message: 'triggerSchedule: host is required' } });
  });
});
