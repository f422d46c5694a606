/**
 * The `winrm` task: one WMI method of the ConfigMgr client on a device, invoked through WS-Management (adapter/wsman)
 * with the connection of the integration the task names (`connection`: its NTLM or Negotiate/Kerberos credentials,
 * TLS trust, proxy, timeout and logging, secrets opened by the integration runtime and never part of the runbook).
 * The device comes from the rendered input (`host`, `port`, `https`, and `spn` for Kerberos when the device is
 * reached by another name than its SPN's); the runbook cannot choose the credentials, only where they are sent.
 *
 * | what happened                                      | result                                                 |
 * |----------------------------------------------------|--------------------------------------------------------|
 * | `<Method>_OUTPUT` with ReturnValue 0 (or none)      | success: device, method, messageId, out-parameters     |
 * | ReturnValue non-zero                                | WINRM_RETURN_VALUE naming the value (retried only when |
 * |                                                    | the task's `retryableErrors` lists it)                 |
 * | SOAP fault                                          | WINRM_FAULT naming the WS-Man subcode and WMI code     |
 * | credentials refused (NTLM 401, KDC or server refusing Kerberos) | WINRM_AUTH, never retried (lockouts)       |
 * | another HTTP status without a fault                 | HTTP_4XX / HTTP_5XX / HTTP_429                         |
 * | no response: timed out or aborted / otherwise       | TIMEOUT / NETWORK                                      |
 * | unknown connection, bad input                       | INVALID_INPUT, never retried                           |
 *
 * An integration in stub mode answers every action with ReturnValue 0 and calls nothing (the demo, dry runs).
 */
import { randomUUID } from 'node:crypto';
import {
  executeProgram,
  isRecord,
  MACHINE_POLICY_RETRIEVAL,
  triggerClientSchedule,
  WsmanError,
  WsmanErrorCode,
  type IntegrationClient,
  type WsmanResult,
} from '../../adapter';
import type { IntegrationRuntime } from '../../integration-model';
import { WINRM_ACTIONS, type WinrmAction, type WinrmTask } from '../document';
import type { StepContext, StepResult, TaskExecutor } from '../engine/executor';
import { failed, httpErrorCode, succeeded } from './results';

export interface WinrmExecutorDeps {
  /** The process's integration runtime: it keeps a client of the named integration's connection per device. */
  connections: Pick<IntegrationRuntime, 'endpointClient'>;
}

/** WinRM's listeners: HTTPS 5986, HTTP 5985. */
export const WINRM_HTTPS_PORT = 5986;
export const WINRM_HTTP_PORT = 5985;
/** ExecuteProgram's program id for a task sequence (public ConfigMgr scripts use it; Microsoft's page does not say). */
export const TASK_SEQUENCE_PROGRAM_ID = '*';

const METHOD: Record<WinrmAction, { method: string; resourceUri: string }> = {
  triggerSchedule: { method: 'TriggerSchedule', resourceUri: 'http://schemas.microsoft.com/wbem/wsman/1/wmi/root/ccm/SMS_Client' },
  executeProgram: { method: 'ExecuteProgram', resourceUri: 'http://schemas.microsoft.com/wbem/wsman/1/wmi/root/ccm/ClientSDK/CCM_ProgramsManager' },
};

class InputError extends Error {}

function optionalString(input: Record<string, unknown>, key: string): string | undefined {
  const v = input[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new InputError(`${key} must be a non-empty string`);
  return v;
}

interface Device {
  host: string;
  port: number;
  https: boolean;
  spn: string | undefined;
  /** The `To` header: the endpoint as the device knows itself. */
  to: string;
}

function deviceOf(input: Record<string, unknown>): Device {
  const host = optionalString(input, 'host');
  if (host === undefined) throw new InputError('host is required');
  const https = input['https'] ?? true;
  if (typeof https !== 'boolean') throw new InputError('https must be a boolean');
  const port = input['port'] ?? (https ? WINRM_HTTPS_PORT : WINRM_HTTP_PORT);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new InputError('port must be an integer from 1 to 65535');
  const spn = optionalString(input, 'spn');
  const shownHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return { host, port, https, spn, to: `${https ? 'https' : 'http'}://${shownHost}:${port}/wsman` };
}

function invoke(action: WinrmAction, client: IntegrationClient, device: Device, input: Record<string, unknown>, signal: AbortSignal): Promise<WsmanResult> {
  if (action === 'triggerSchedule') return triggerClientSchedule(client, device.to, optionalString(input, 'scheduleId') ?? MACHINE_POLICY_RETRIEVAL, { signal });
  const packageId = optionalString(input, 'packageId');
  if (packageId === undefined) throw new InputError('packageId is required');
  return executeProgram(client, device.to, packageId, optionalString(input, 'programId') ?? TASK_SEQUENCE_PROGRAM_ID, { signal });
}

const hex32 = (n: number): string => `0x${(n >>> 0).toString(16).toUpperCase().padStart(8, '0')}`;

function wsmanFailure(e: WsmanError, ctx: StepContext): StepResult {
  switch (e.code) {
    case WsmanErrorCode.AUTH_FAILED:
      // A retry sends the same refused credentials again, and each refusal counts toward AD's lockout threshold.
      return failed('WINRM_AUTH', `${e.code}: ${e.message}`, { retryable: false });
    case WsmanErrorCode.SOAP_FAULT:
    case WsmanErrorCode.BAD_RESPONSE:
      return failed('WINRM_FAULT', `${e.code}: ${e.message}`);
    case WsmanErrorCode.HTTP_ERROR:
      return failed(httpErrorCode(e.status ?? 500), `${e.code}: ${e.message}`);
    case WsmanErrorCode.NOT_REACHED:
      return failed(ctx.signal.aborted || /timed out|timeout/i.test(e.message) ? 'TIMEOUT' : 'NETWORK', `${e.code}: ${e.message}`);
  }
}

export function createWinrmExecutor(deps: WinrmExecutorDeps): TaskExecutor {
  return async (compiled, input, ctx): Promise<StepResult> => {
    const task = compiled.task as Pick<WinrmTask, 'kind' | 'connection' | 'action'>;
    if (task.kind !== 'winrm' || !(WINRM_ACTIONS as readonly string[]).includes(task.action)) {
      return failed('INVALID_INPUT', `task '${compiled.id}' is not a winrm action`, { retryable: false });
    }
    if (!isRecord(input)) return failed('INVALID_INPUT', 'winrm input must be an object', { retryable: false });
    const { method, resourceUri } = METHOD[task.action];
    let device: Device;
    try {
      device = deviceOf(input);
      if (task.action === 'executeProgram' && optionalString(input, 'packageId') === undefined) throw new InputError('packageId is required');
    } catch (e) {
      if (e instanceof InputError) return failed('INVALID_INPUT', `${task.action}: ${e.message}`, { retryable: false });
      throw e;
    }
    const opened = await deps.connections.endpointClient(task.connection, { protocol: device.https ? 'https' : 'http', host: device.host, port: device.port }, { spn: device.spn });
    if (opened === undefined) return failed('INVALID_INPUT', `${task.action}: no integration '${task.connection}' (the task's connection)`, { retryable: false });
    if (typeof opened === 'string') return failed('NETWORK', `${method} on ${device.host}: ${opened}`);
    const { client } = opened;
    if (!client) {
      return succeeded({ device: device.host, method, resourceUri, messageId: `uuid:${randomUUID().toUpperCase()}`, returnValue: 0, output: { ReturnValue: '0' } });
    }
    let result: WsmanResult;
    try {
      result = await invoke(task.action, client, device, input, ctx.signal);
    } catch (e) {
      // The client is the runtime's (kept for the next step on this device): not closed here.
      if (e instanceof WsmanError) return wsmanFailure(e, ctx);
      if (e instanceof InputError) return failed('INVALID_INPUT', `${task.action}: ${e.message}`, { retryable: false });
      throw e;
    }
    // SMS_Client.TriggerSchedule is declared void on older clients: WinRM's answer then has no ReturnValue.
    const raw = result.output['ReturnValue'];
    const returnValue = raw === undefined || raw === '' ? 0 : Number(raw);
    const output = { device: device.host, method, resourceUri, messageId: result.messageId, returnValue, output: result.output };
    if (!Number.isInteger(returnValue)) return failed('WINRM_FAULT', `${method} on ${device.host}: ReturnValue '${raw ?? ''}' is not an integer`, { output });
    if (returnValue !== 0) {
      // The client ran the method and said no. Not in the default retryable errors; a runbook whose deployment may
      // not have reached the client's policy yet can list WINRM_RETURN_VALUE in its retry policy.
      return failed('WINRM_RETURN_VALUE', `${method} on ${device.host} returned ReturnValue ${returnValue} (${hex32(returnValue)})`, { output });
    }
    return succeeded(output);
  };
}
