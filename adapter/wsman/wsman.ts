/**
 * WS-Management `Invoke` of a WMI method (DSP0226 / MS-WSMV), sent through an integration's configured HTTP client
 * (adapter/http), so its authentication (NTLM, or Negotiate/Kerberos), TLS, proxy, timeout and logging apply exactly
 * as to every other outbound call. One POST to `/wsman` per call: SOAP 1.2, `application/soap+xml`, the method's
 * `<Method>_INPUT` body; the answer is its `<Method>_OUTPUT` body or a SOAP fault, read into a coded error.
 *
 * Authentication is the client's: NTLM (connection-bound handshake) or Negotiate (Kerberos SPNEGO through
 * adapter/kerberos, one AP-REQ per request, the server's AP-REP verified). Over HTTPS (WinRM's 5986 listener) TLS
 * protects the message and nothing more is needed. WinRM over plain HTTP (5985) with Negotiate or NTLM, as Windows
 * configures it by default (`AllowUnencrypted=false`), also demands WinRM's own message encryption: the body sent
 * as `multipart/encrypted` (`application/HTTP-SPNEGO-session-encrypted`), each part wrapped with GSS_Wrap under the
 * context's session key. That is NOT implemented here: use the HTTPS listener, or a listener configured with
 * `AllowUnencrypted=true` (test set-ups only). A plain-HTTP listener that insists on encryption answers 400/401 and
 * the call fails with WSMAN_HTTP_ERROR or WSMAN_AUTH_FAILED.
 *
 * ConfigMgr client calls (root\ccm and root\ccm\ClientSDK WMI namespaces on the device):
 * - `SMS_Client.TriggerSchedule(sScheduleID)`: runs a client schedule; `{00000000-0000-0000-0000-000000000021}` is
 *   machine policy retrieval, which makes the client fetch a newly targeted task sequence deployment at once.
 * - `CCM_ProgramsManager.ExecuteProgram(ProgramID, PackageID)` (root\ccm\ClientSDK, Microsoft's client SDK reference):
 *   starts an available deployment now; it returns a uint32, 0 for success. Program id `*` for a task sequence is
 *   what public scripts use; Microsoft's page does not say it.
 */
import { randomUUID } from 'node:crypto';
import { CallNotMadeCode, type IntegrationClient, type IntegrationEnvelope } from '../http';
import { escapeXml, findPath, readXml, XmlReadError, type XmlElement } from './xml';

export const SOAP12_NS = 'http://www.w3.org/2003/05/soap-envelope';
export const WSA_NS = 'http://schemas.xmlsoap.org/ws/2004/08/addressing';
export const WSMAN_NS = 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd';
export const WSA_ANONYMOUS = 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous';
/** WMI classes are addressed under this prefix followed by the namespace path and class name. */
export const WMI_RESOURCE_PREFIX = 'http://schemas.microsoft.com/wbem/wsman/1/wmi/';
export const SMS_CLIENT_URI = `${WMI_RESOURCE_PREFIX}root/ccm/SMS_Client`;
export const CCM_PROGRAMS_MANAGER_URI = `${WMI_RESOURCE_PREFIX}root/ccm/ClientSDK/CCM_ProgramsManager`;
/** The ConfigMgr client's machine policy retrieval and evaluation cycle. */
export const MACHINE_POLICY_RETRIEVAL = '{00000000-0000-0000-0000-000000000021}';
/** A WS-Man answer larger than this is refused (MaxEnvelopeSize is sent to the server as well). Bytes. */
export const MAX_ENVELOPE_BYTES = 512_000;

export enum WsmanErrorCode {
  /** The credentials were refused: HTTP 401 after the exchange, or (Kerberos) the KDC or the server refused the ticket. */
  AUTH_FAILED = 'WSMAN_AUTH_FAILED',
  /** The server answered with a SOAP fault: subcode, reason and the WS-Man/WMI error code are carried. */
  SOAP_FAULT = 'WSMAN_SOAP_FAULT',
  /** An HTTP status without a SOAP fault (a proxy's 502, a 404 where no WinRM listener is). */
  HTTP_ERROR = 'WSMAN_HTTP_ERROR',
  /** No answer: refused, DNS, TLS, timeout (the transport's message says which). */
  NOT_REACHED = 'WSMAN_NOT_REACHED',
  /** 2xx whose body is not the expected `<Method>_OUTPUT`. */
  BAD_RESPONSE = 'WSMAN_BAD_RESPONSE',
}

export interface WsmanFault {
  /** `Sender` or `Receiver` (SOAP 1.2 fault code, prefix removed). */
  code: string;
  /** The WS-Man / WS-Addressing subcode: `DestinationUnreachable`, `InvalidParameter`, `AccessDenied`, … */
  subcode?: string;
  reason: string;
  /** `WSManFault/@Code` as 0x-hex: a Win32 or WMI error (`0x80041013` provider load failure, `0x80041002` not found). */
  errorCode?: string;
  /** `WSManFault/Message`, or the WMI error's `Message`/`Description`. */
  message?: string;
}

/** Thrown by {@link invokeWsmanMethod}; `fault` is set for {@link WsmanErrorCode.SOAP_FAULT}. */
export class WsmanError extends Error {
  constructor(
    readonly code: WsmanErrorCode,
    message: string,
    readonly status?: number,
    readonly fault?: WsmanFault,
  ) {
    super(message);
    this.name = 'WsmanError';
  }
}

export interface WsmanInvoke {
  /** The endpoint as the server knows itself (`http://pc01.corp.example:5985/wsman`): the `To` header. */
  to: string;
  resourceUri: string;
  method: string;
  /** The method's in-parameters, in order; values are sent as text. */
  params: Record<string, string | number | boolean>;
  /** Server-side operation timeout (`OperationTimeout`), seconds. */
  operationTimeoutS?: number;
  signal?: AbortSignal;
  /** Injectable for tests; a fresh `uuid:` otherwise. */
  messageId?: string;
}

export interface WsmanResult {
  messageId: string;
  /** The `<Method>_OUTPUT` out-parameters by local name (`ReturnValue`, …). */
  output: Record<string, string>;
  status: number;
}

/** The SOAP 1.2 envelope of a WS-Man Invoke of `method` on `resourceUri`. */
export function buildInvokeEnvelope(req: Omit<WsmanInvoke, 'signal'> & { messageId: string }): string {
  const action = `${req.resourceUri}/${req.method}`;
  const params = Object.entries(req.params)
    .map(([k, v]) => `<p:${k}>${escapeXml(String(v))}</p:${k}>`)
    .join('');
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<s:Envelope xmlns:s="${SOAP12_NS}" xmlns:a="${WSA_NS}" xmlns:w="${WSMAN_NS}">` +
    `<s:Header>` +
    `<a:To>${escapeXml(req.to)}</a:To>` +
    `<w:ResourceURI s:mustUnderstand="true">${escapeXml(req.resourceUri)}</w:ResourceURI>` +
    `<a:ReplyTo><a:Address s:mustUnderstand="true">${WSA_ANONYMOUS}</a:Address></a:ReplyTo>` +
    `<a:Action s:mustUnderstand="true">${escapeXml(action)}</a:Action>` +
    `<w:MaxEnvelopeSize s:mustUnderstand="true">${MAX_ENVELOPE_BYTES}</w:MaxEnvelopeSize>` +
    `<a:MessageID>${escapeXml(req.messageId)}</a:MessageID>` +
    `<w:OperationTimeout>PT${req.operationTimeoutS ?? 60}S</w:OperationTimeout>` +
    `</s:Header>` +
    `<s:Body><p:${req.method}_INPUT xmlns:p="${escapeXml(req.resourceUri)}">${params}</p:${req.method}_INPUT></s:Body>` +
    `</s:Envelope>`
  );
}

const hex = (decimal: string): string | undefined => {
  const n = Number(decimal);
  return Number.isInteger(n) && decimal.trim() !== '' ? `0x${(n >>> 0).toString(16).padStart(8, '0')}` : undefined;
};

/** The fault of a SOAP 1.2 envelope, or undefined when it carries none. */
export function readFault(envelope: XmlElement): WsmanFault | undefined {
  const fault = findPath(envelope, 'Body', 'Fault');
  if (!fault) return undefined;
  const strip = (s: string | undefined): string | undefined => (s === undefined ? undefined : s.trim().replace(/^[^:]*:/, ''));
  const out: WsmanFault = {
    code: strip(findPath(fault, 'Code', 'Value')?.text) ?? 'unknown',
    reason: (findPath(fault, 'Reason', 'Text')?.text ?? '').trim(),
  };
  const subcode = strip(findPath(fault, 'Code', 'Subcode', 'Value')?.text);
  if (subcode) out.subcode = subcode;
  const detail = findPath(fault, 'Detail');
  const wsmanFault = findPath(detail, 'WSManFault');
  const wmiError = detail?.children.find((c) => c.name.endsWith('WmiError')) ?? findPath(wsmanFault, 'Message', 'ProviderFault', 'WSManFault');
  const code = wsmanFault?.attrs['Code'] ?? findPath(wmiError, 'error_Code')?.text;
  const errorCode = code !== undefined ? hex(code) : undefined;
  if (errorCode) out.errorCode = errorCode;
  const message = (findPath(wsmanFault, 'Message')?.text || findPath(wmiError, 'Message')?.text || '').trim();
  if (message) out.message = message;
  return out;
}

function describeFault(f: WsmanFault): string {
  return [`SOAP fault ${f.code}${f.subcode ? `/${f.subcode}` : ''}`, f.errorCode, f.reason || undefined, f.message && f.message !== f.reason ? f.message : undefined]
    .filter((x) => x)
    .join(': ');
}

function envelopeOf(env: IntegrationEnvelope): XmlElement | undefined {
  const text = env.text ?? (typeof env.body === 'string' ? env.body : undefined);
  if (!text || !/<\s*(\w+:)?Envelope/.test(text)) return undefined;
  try {
    return readXml(text);
  } catch (e) {
    if (e instanceof XmlReadError) return undefined;
    throw e;
  }
}

/**
 * Invokes `method` on `resourceUri` through `client` (POST `/wsman` on the integration's server).
 * @throws WsmanError AUTH_FAILED on 401 (the authentication exchange failed: wrong password, unknown account, or the
 *   server offers no scheme the integration is configured with); SOAP_FAULT for a fault, naming its subcode, WMI/Win32
 *   code and reason; HTTP_ERROR for another non-2xx; NOT_REACHED when no response came; BAD_RESPONSE for a 2xx without
 *   the `<Method>_OUTPUT` body.
 */
export async function invokeWsmanMethod(client: IntegrationClient, req: WsmanInvoke): Promise<WsmanResult> {
  const messageId = req.messageId ?? `uuid:${randomUUID().toUpperCase()}`;
  const body = buildInvokeEnvelope({ ...req, messageId });
  const target = `WS-Man ${req.method} on ${req.resourceUri.replace(WMI_RESOURCE_PREFIX, '')}`;
  const res = await client.send({
    method: 'POST',
    path: '/wsman',
    headers: { 'Content-Type': 'application/soap+xml;charset=UTF-8' },
    body,
    maxResponseBytes: MAX_ENVELOPE_BYTES,
    ...(req.signal ? { signal: req.signal } : {}),
  });
  if (!('status' in res)) {
    // Negotiate (Kerberos) fails before the request (the KDC refused the credentials, no such SPN) or refuses the
    // server's 401 itself: the transport's AUTHENTICATION_FAILED, the same refusal as NTLM's 401 below.
    const code = res.code === CallNotMadeCode.AUTHENTICATION_FAILED ? WsmanErrorCode.AUTH_FAILED : WsmanErrorCode.NOT_REACHED;
    throw new WsmanError(code, `${target}: ${res.message}`);
  }
  const envelope = envelopeOf(res);
  const fault = envelope && readFault(envelope);
  if (fault) throw new WsmanError(WsmanErrorCode.SOAP_FAULT, `${target}: ${describeFault(fault)}`, res.status, fault);
  if (res.status === 401) {
    const offered = res.headers['www-authenticate'];
    // Schemes only: a challenge's token after the scheme name is not for messages.
    const schemes = (Array.isArray(offered) ? offered : offered ? [offered] : [])
      .flatMap((h) => h.split(','))
      .map((h) => h.trim().split(' ')[0])
      .filter((h) => h && !h.includes('='))
      .join(', ');
    throw new WsmanError(WsmanErrorCode.AUTH_FAILED, `${target}: the server refused the credentials (401${schemes ? `; it offers ${schemes}` : ''})`, 401);
  }
  if (!res.ok) throw new WsmanError(WsmanErrorCode.HTTP_ERROR, `${target}: ${res.method} ${res.url} answered ${res.status} ${res.statusText}`.trim(), res.status);
  const output = findPath(envelope, 'Body', `${req.method}_OUTPUT`);
  if (!output) throw new WsmanError(WsmanErrorCode.BAD_RESPONSE, `${target}: the answer has no ${req.method}_OUTPUT body`, res.status);
  const values: Record<string, string> = {};
  for (const c of output.children) values[c.name] = c.text.trim();
  return { messageId, output: values, status: res.status };
}

/** `SMS_Client.TriggerSchedule` on the device's ConfigMgr client. */
export function triggerClientSchedule(client: IntegrationClient, to: string, scheduleId: string, opts: { signal?: AbortSignal } = {}): Promise<WsmanResult> {
  return invokeWsmanMethod(client, { to, resourceUri: SMS_CLIENT_URI, method: 'TriggerSchedule', params: { sScheduleID: scheduleId }, ...opts });
}

/** `CCM_ProgramsManager.ExecuteProgram`: runs an available deployment now (`programId` `*` for a task sequence). */
export function executeProgram(client: IntegrationClient, to: string, packageId: string, programId = '*', opts: { signal?: AbortSignal } = {}): Promise<WsmanResult> {
  return invokeWsmanMethod(client, { to, resourceUri: CCM_PROGRAMS_MANAGER_URI, method: 'ExecuteProgram', params: { ProgramID: programId, PackageID: packageId }, ...opts });
}
