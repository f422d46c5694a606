/**
 * A loopback WinRM listener (`POST /wsman`) behind the NTLM-verifying server of ntlm-server.ts, for the ConfigMgr
 * client's WMI methods. It checks what a Windows WinRM service checks before dispatching: SOAP 1.2 envelope and content
 * type, `To`, `ResourceURI`, `Action` = ResourceURI + "/" + method, a `uuid:` MessageID, anonymous ReplyTo, and the
 * `<Method>_INPUT` body in the resource's namespace. Known methods are recorded per device (the `To` host); anything
 * else answers a SOAP fault shaped as WinRM's (subcode, WSManFault code, and for WMI a provider error code).
 * Envelopes are read with the project's own XML reader (adapter/wsman), written here independently of the client's
 * builder. The handling itself (`createWsmanHandler`) is apart from the authentication in front of it: NTLM here
 * (`startWsmanServer`), or Kerberos (`startKerberosWsmanServer`: the SPNEGO acceptor of spnego-server.ts verifies the
 * token with the KDC's keytab and relays the request with the principal it proved).
 */
import type http from 'node:http';
import { findPath, readXml, type XmlElement } from '../../adapter/wsman';
import { startLoopbackServer, type RecordedRequest } from './loopback-server';
import type { SambaKerberos } from './samba-kerberos';
import { startSpnegoServer, type SpnegoServer, type SpnegoServerOptions } from './spnego-server';
import { startNtlmServer, type NtlmServer } from './ntlm-server';

const SOAP = 'http://www.w3.org/2003/05/soap-envelope';
const WMI = 'http://schemas.microsoft.com/wbem/wsman/1/wmi/';

export interface WsmanCall {
  device: string;
  resourceUri: string;
  method: string;
  messageId: string;
  params: Record<string, string>;
  /** Kerberos: the client principal the SPNEGO front verified (absent behind NTLM, whose events name the user). */
  principal?: string;
}

/** What the WS-Man handler keeps: calls, triggered schedules, rejected envelopes. */
export interface WsmanState {
  calls: WsmanCall[];
  /** Schedule ids triggered per device (`SMS_Client.TriggerSchedule`). */
  schedules: Map<string, string[]>;
  /** Envelope problems the server rejected, for assertions. */
  rejections: string[];
}

export interface WsmanServer extends NtlmServer, WsmanState {}

export interface WsmanHandlerOptions {
  /**
   * The method's ReturnValue by PackageID (ExecuteProgram) or schedule id (TriggerSchedule); default 0. What the
   * ConfigMgr client answers when, say, the deployment is not in its policy yet.
   */
  returnValues?: Record<string, number>;
}

/** The methods the server implements, by resource URI (after the WMI prefix). */
const METHODS: Record<string, Record<string, string[]>> = {
  'root/ccm/SMS_Client': { TriggerSchedule: ['sScheduleID'] },
  'root/ccm/ClientSDK/CCM_ProgramsManager': { ExecuteProgram: ['ProgramID', 'PackageID'] },
};

function fault(res: http.ServerResponse, code: 'Sender' | 'Receiver', subcode: string, reason: string, wsmanCode: number, wmiCode?: number): void {
  const wmi =
    wmiCode === undefined
      ? ''
      : `<f:Message><f:ProviderFault provider="WMI Provider" path="%systemroot%\\system32\\WsmWmiPl.dll"><f:WSManFault Code="${wmiCode}" Machine="pc01"><f:Message>${reason}</f:Message></f:WSManFault></f:ProviderFault></f:Message>`;
  const body =
    `<s:Envelope xmlns:s="${SOAP}" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing">` +
    `<s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action></s:Header>` +
    `<s:Body><s:Fault><s:Code><s:Value>s:${code}</s:Value><s:Subcode><s:Value>w:${subcode}</s:Value></s:Subcode></s:Code>` +
    `<s:Reason><s:Text xml:lang="en-US">${reason}</s:Text></s:Reason>` +
    `<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="${wmiCode ?? wsmanCode}" Machine="pc01">${wmi || `<f:Message>${reason}</f:Message>`}</f:WSManFault></s:Detail>` +
    `</s:Fault></s:Body></s:Envelope>`;
  res.writeHead(code === 'Sender' ? 400 : 500, { 'content-type': 'application/soap+xml;charset=UTF-8' });
  res.end(body);
}

/**
 * The WinRM listener's request handling (after authentication), recording into `state`; `principal` is who the
 * authentication front says sent the request.
 */
export function createWsmanHandler(state: WsmanState, opts: WsmanHandlerOptions = {}): (req: RecordedRequest, res: http.ServerResponse, principal?: string) => void {
  const { calls, schedules, rejections } = state;
  const reject = (res: http.ServerResponse, why: string): void => {
    rejections.push(why);
    fault(res, 'Sender', 'InvalidHeader', why, 2150858817);
  };
  return (req, res, principal) => {
    if (req.method !== 'POST' || req.url.split('?')[0] !== '/wsman') {
      res.writeHead(404);
      res.end();
      return;
    }
    if (!/^application\/soap\+xml/i.test(req.headers['content-type'] ?? '')) {
      rejections.push('content type');
      res.writeHead(415);
      res.end();
      return;
    }
    let env: XmlElement;
    try {
      env = readXml(req.body);
    } catch (e) {
      return reject(res, `not XML: ${(e as Error).message}`);
    }
    if (env.name !== 'Envelope' || !/xmlns:?\w*="http:\/\/www\.w3\.org\/2003\/05\/soap-envelope"/.test(req.body)) return reject(res, 'not a SOAP 1.2 envelope');
    const h = (n: string): string | undefined => findPath(env, 'Header', n)?.text.trim();
    const to = h('To');
    const resourceUri = h('ResourceURI') ?? '';
    const action = h('Action') ?? '';
    const messageId = h('MessageID') ?? '';
    if (!to || !/^https?:\/\/[^/]+\/wsman$/.test(to)) return reject(res, `To '${to ?? ''}'`);
    if (!/^uuid:[0-9A-F-]{36}$/i.test(messageId)) return reject(res, `MessageID '${messageId}'`);
    if (findPath(env, 'Header', 'ReplyTo', 'Address')?.text.trim() !== 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous') return reject(res, 'ReplyTo');
    if (!resourceUri.startsWith(WMI)) return reject(res, `ResourceURI '${resourceUri}'`);
    const cls = resourceUri.slice(WMI.length);
    const method = action.startsWith(`${resourceUri}/`) ? action.slice(resourceUri.length + 1) : undefined;
    if (!method) return reject(res, `Action '${action}' is not ResourceURI/method`);
    const known = METHODS[cls];
    // WinRM answers a class the provider does not know with the WMI provider's "invalid class" 0x80041010, and a
    // namespace that does not exist (no ConfigMgr client) with "invalid namespace" 0x8004100E.
    if (!known) {
      const ns = cls.slice(0, cls.lastIndexOf('/'));
      const wmi = Object.keys(METHODS).some((k) => k.startsWith(`${ns}/`)) ? 0x80041010 : 0x8004100e;
      return fault(res, 'Sender', 'DestinationUnreachable', 'The WS-Management service cannot process the request. The WMI service or the WMI provider returned an unknown error', 2150858778, wmi);
    }
    const want = known[method];
    if (!want) return fault(res, 'Sender', 'ActionNotSupported', `The method ${method} does not exist on ${cls}.`, 2150858771);
    const input = findPath(env, 'Body', `${method}_INPUT`);
    if (!input || !new RegExp(`xmlns:?\\w*="${resourceUri.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"`).test(req.body)) return reject(res, `no ${method}_INPUT in the resource's namespace`);
    const params: Record<string, string> = {};
    for (const c of input.children) params[c.name] = c.text;
    const missing = want.filter((p) => !(p in params));
    if (missing.length > 0) return fault(res, 'Sender', 'InvalidParameter', `missing ${missing.join(', ')}`, 2150858882);
    const device = new URL(to).hostname;
    calls.push({ device, resourceUri, method, messageId, params, ...(principal !== undefined ? { principal } : {}) });
    if (method === 'TriggerSchedule') {
      if (!/^\{[0-9A-F-]{36}\}$/i.test(params['sScheduleID'] ?? '')) return fault(res, 'Receiver', 'InternalError', 'Generic failure', 2150858752, 0x80041001);
      schedules.set(device, [...(schedules.get(device) ?? []), params['sScheduleID']!]);
    }
    const returnValue = opts.returnValues?.[params['PackageID'] ?? params['sScheduleID'] ?? ''] ?? 0;
    res.writeHead(200, { 'content-type': 'application/soap+xml;charset=UTF-8' });
    res.end(
      `<s:Envelope xmlns:s="${SOAP}" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing">` +
        `<s:Header><a:Action>${resourceUri}/${method}Response</a:Action><a:RelatesTo>${messageId}</a:RelatesTo></s:Header>` +
        `<s:Body><p:${method}_OUTPUT xmlns:p="${resourceUri}"><p:ReturnValue>${returnValue}</p:ReturnValue></p:${method}_OUTPUT></s:Body></s:Envelope>`,
    );
  };
}

const newState = (): WsmanState => ({ calls: [], schedules: new Map(), rejections: [] });

export async function startWsmanServer(opts: { domain: string; accounts: Record<string, string> } & WsmanHandlerOptions): Promise<WsmanServer> {
  const state = newState();
  const handle = createWsmanHandler(state, opts);
  const server = await startNtlmServer({ ...opts, handler: (req, res) => handle(req, res) });
  return Object.assign(server, state);
}

/** The WinRM listener behind Kerberos: the SPNEGO acceptor (spnego-server.ts) in front, the WS-Man handler here. */
export interface KerberosWsmanServer extends WsmanState {
  /** The HTTPS port (the SPNEGO child's): WinRM's 5986 listener. */
  port: number;
  spnego: SpnegoServer;
  stop(): Promise<void>;
}

/**
 * Starts the WS-Man handler on a loopback HTTP port that only the SPNEGO child relays to: every request it handles
 * carried a Kerberos token the child verified with the KDC's keytab for HTTP/sccm.test.local (or `spnego.keytab`),
 * and its call records the client principal the child saw. The child's AdminService routes answer too, so one
 * server is both the SCCM site server and the device.
 */
export async function startKerberosWsmanServer(k: SambaKerberos, opts: WsmanHandlerOptions & { spnego?: Omit<SpnegoServerOptions, 'upstream'> } = {}): Promise<KerberosWsmanServer> {
  const state = newState();
  const handle = createWsmanHandler(state, opts);
  const inner = await startLoopbackServer((req, res) => {
    const principal = req.headers['x-authenticated-user'];
    // Only the SPNEGO child reaches this port with a verified principal; anything else is refused as WinRM would.
    if (typeof principal !== 'string' || principal === '') {
      res.writeHead(401, { 'www-authenticate': 'Negotiate' });
      res.end();
      return;
    }
    handle(req, res, principal);
  });
  let spnego: SpnegoServer;
  try {
    spnego = await startSpnegoServer(k, { ...opts.spnego, upstream: inner.url, upstreamPaths: ['/wsman'] });
  } catch (e) {
    await inner.close();
    throw e;
  }
  return Object.assign(state, {
    port: spnego.port,
    spnego,
    stop: async () => {
      await spnego.stop();
      await inner.close();
    },
  });
}
