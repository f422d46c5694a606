// WS-Management (WinRM) Invoke of WMI methods over an integration's HTTP client: the ConfigMgr client calls that
// trigger a task sequence on a device.
export {
  buildInvokeEnvelope,
  executeProgram,
  invokeWsmanMethod,
  readFault,
  triggerClientSchedule,
  CCM_PROGRAMS_MANAGER_URI,
  MACHINE_POLICY_RETRIEVAL,
  MAX_ENVELOPE_BYTES,
  SMS_CLIENT_URI,
  SOAP12_NS,
  WMI_RESOURCE_PREFIX,
  WSA_ANONYMOUS,
  WSA_NS,
  WSMAN_NS,
  WsmanError,
  WsmanErrorCode,
} from './wsman';
export type { WsmanFault, WsmanInvoke, WsmanResult } from './wsman';
export { readXml, findPath, escapeXml, XmlReadError } from './xml';
export type { XmlElement } from './xml';
