import { isIP } from 'node:net';
import { DirectoryError, DirectoryErrorCode } from './errors';
import { isAttributeName, parseDn } from './ldap-text';

/** How the connection is protected: LDAPS (TLS from the first byte), StartTLS on the LDAP port, or nothing. */
export type DirectorySecurity = 'ldaps' | 'starttls' | 'none';

/**
 * How the service account binds:
 * - `simple`: LDAP simple bind (DN, UPN or `DOMAIN\\user` and password); use it over LDAPS or StartTLS.
 * - `kerberos`: SASL GSSAPI (RFC 4752) with a ticket for `ldap/<dc host>` from a keytab or a password
 *   (adapter/kerberos); on plain LDAP every later PDU is sealed (or signed) by the GSS security layer.
 * - `ntlm`: SASL GSS-SPNEGO carrying NTLMSSP (MS-NLMP), with NTLM signing/sealing of every later PDU.
 * Both SASL binds are done by our own transport under ldapts (adapter/directory/sasl), which cannot carry binary
 * SASL tokens itself.
 */
export type DirectoryAuthType = 'simple' | 'ntlm' | 'kerberos';

/** The SASL security layer asked for on a Kerberos/NTLM bind. `none` only over TLS (LDAPS/StartTLS). */
export type SaslProtection = 'seal' | 'sign' | 'none';

/** The consumer attributes other parts of the product read from a user (approval routing, order snapshots). */
export const CONSUMER_ATTRIBUTES = ['department', 'cost_center', 'company', 'employee_id', 'title'] as const;
export type ConsumerAttribute = (typeof CONSUMER_ATTRIBUTES)[number];

/**
 * Default AD attribute per consumer attribute. All are in AD's base schema; cost centre has no dedicated
 * attribute there, so `departmentNumber` (inetOrgPerson, present since Windows Server 2003) is the default;
 * sites with the Exchange schema often use `extensionAttribute1`..`15` instead — set it in the settings.
 */
export const DEFAULT_CONSUMER_ATTRIBUTES: Readonly<Record<ConsumerAttribute, string>> = Object.freeze({
  department: 'department',
  cost_center: 'departmentNumber',
  company: 'company',
  employee_id: 'employeeID',
  title: 'title',
});

/**
 * Attributes `setAttributes` refuses whatever the allow-list says: credentials, identity, account control,
 * group membership, security descriptors, delegation and logon settings. Changing them goes through
 * dedicated operations (enable/disable, add/remove member) or not through this adapter at all.
 */
export const PROTECTED_ATTRIBUTES: ReadonlySet<string> = new Set(
  [
    'unicodePwd', 'userPassword', 'dBCSPwd', 'ntPwdHistory', 'lmPwdHistory', 'supplementalCredentials', 'pwdLastSet',
    'userAccountControl', 'msDS-User-Account-Control-Computed', 'accountExpires', 'lockoutTime', 'badPwdCount',
    'sAMAccountName', 'userPrincipalName', 'distinguishedName', 'cn', 'name', 'objectClass', 'objectCategory',
    'objectSid', 'objectGUID', 'sIDHistory', 'primaryGroupID', 'member', 'memberOf', 'nTSecurityDescriptor',
    'adminCount', 'servicePrincipalName', 'msDS-AllowedToDelegateTo', 'msDS-AllowedToActOnBehalfOfOtherIdentity',
    'msDS-KeyCredentialLink', 'altSecurityIdentities', 'userCertificate', 'userWorkstations', 'logonHours',
    'scriptPath', 'profilePath', 'homeDirectory', 'homeDrive', 'isCriticalSystemObject', 'systemFlags', 'instanceType',
    'groupType', 'sAMAccountType', 'msDS-SupportedEncryptionTypes', 'uid', 'uidNumber', 'gidNumber', 'unixUserPassword',
  ].map((a) => a.toLowerCase()),
);

/** Writable by default besides the consumer attributes: contact and organisational fields. */
const DEFAULT_EXTRA_WRITABLE = ['telephoneNumber', 'mobile', 'physicalDeliveryOfficeName', 'description', 'manager', 'displayName', 'givenName', 'sn', 'mail'];

/** Directory settings as an administrator enters them (Admin → Settings → Active Directory). */
export interface DirectorySettings {
  /** Host name or IP address of a domain controller. */
  server: string;
  /** Default 636 for LDAPS, else 389. */
  port?: number;
  /** Default `ldaps` on port 636, else `starttls`; plain `none` must be chosen explicitly. */
  security?: DirectorySecurity;
  /** PEM of the CA(s) that issued the DC's certificate; when absent, Node's default trust store. */
  caCertPem?: string;
  /** Name to check the certificate against when it differs from `server` (e.g. server is an IP address). */
  tlsServerName?: string;
  /** Default `simple`. */
  authType?: DirectoryAuthType;
  /**
   * Service account. simple: a DN, a UPN (`svc@corp.example`) or `DOMAIN\user`, as AD accepts all three;
   * ntlm: `DOMAIN\user` or a UPN; kerberos: unused (the principal names the account).
   */
  bindDn?: string;
  /** simple, ntlm: required. kerberos: the principal's password when no keytab is given. A secret. */
  bindPassword?: string;
  /** kerberos: the client principal, `svc-provisio@CORP.EXAMPLE`. */
  kerberosPrincipal?: string;
  /** kerberos: the principal's keytab as base64 (a secret); takes precedence over the password. */
  kerberosKeytab?: string;
  /**
   * kerberos: the DC's host name in the service principal `ldap/<host>`; default `server` (set it when
   * `server` is an IP address or an alias the SPN is not registered for).
   */
  kerberosSpnHost?: string;
  /** kerberos: krb5.conf path; default the process's KRB5_CONFIG or /etc/krb5.conf. */
  krb5ConfPath?: string;
  /** kerberos, ntlm: the SASL security layer; default `seal` on plain LDAP, `none` over LDAPS/StartTLS. */
  saslProtection?: SaslProtection;
  /** Search root for users and groups; DNs outside it are refused as input. */
  baseDn: string;
  /** AD attribute name per consumer attribute; see DEFAULT_CONSUMER_ATTRIBUTES. */
  consumerAttributes?: Partial<Record<ConsumerAttribute, string>>;
  /** Attributes setAttributes may write; default the consumer attributes plus contact fields. */
  writableAttributes?: string[];
  /** Per LDAP operation, milliseconds. Default 10 000. */
  timeoutMs?: number;
  /** TCP/TLS connect, milliseconds. Default 5 000. */
  connectTimeoutMs?: number;
  /** Bound connections kept open and reused. Default 4. */
  poolSize?: number;
  /** An idle pooled connection is closed after this many milliseconds. Default 60 000 (AD drops idle ones at 900 s). */
  idleTimeoutMs?: number;
}

export interface ResolvedDirectorySettings {
  readonly server: string;
  readonly port: number;
  readonly security: DirectorySecurity;
  readonly caCertPem: string | undefined;
  readonly tlsServerName: string | undefined;
  readonly authType: DirectoryAuthType;
  /** simple/ntlm: as entered; kerberos: the principal (for messages). */
  readonly bindDn: string;
  /** Empty for kerberos with a keytab. */
  readonly bindPassword: string;
  /** kerberos only. */
  readonly kerberos: Readonly<{ principal: string; keytabBase64: string | undefined; spnHost: string; krb5Conf: string | undefined }> | undefined;
  /** kerberos/ntlm: the SASL layer; `none` for simple. */
  readonly saslProtection: SaslProtection;
  readonly baseDn: string;
  readonly consumerAttributes: Readonly<Record<ConsumerAttribute, string>>;
  /** Lower-cased names. */
  readonly writableAttributes: ReadonlySet<string>;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly poolSize: number;
  readonly idleTimeoutMs: number;
}

const DEFAULTS = Object.freeze({
  timeoutMs: 10_000, // ms
  connectTimeoutMs: 5_000, // ms
  poolSize: 4, // connections
  idleTimeoutMs: 60_000, // ms
});

function configError(message: string): DirectoryError {
  return new DirectoryError(DirectoryErrorCode.CONFIG, `directory settings: ${message}`);
}

function positiveInt(name: string, value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) throw configError(`${name} must be an integer from 1 to ${max}`);
  return value;
}

/**
 * Validates settings and fills in defaults; the result is frozen.
 * @throws DirectoryError CONFIG naming the first bad setting (never echoing the password).
 */
export function resolveDirectorySettings(input: DirectorySettings): ResolvedDirectorySettings {
  const server = typeof input.server === 'string' ? input.server.trim() : '';
  if (!server || (/[\s/:]/.test(server) && isIP(server) !== 6)) throw configError('server must be a host name or IP address (no scheme or port)');
  const authType = (input.authType ?? 'simple') as string;
  if (authType !== 'simple' && authType !== 'ntlm' && authType !== 'kerberos') {
    throw configError(`auth type "${authType}" is not supported; use simple, ntlm or kerberos`);
  }
  const security = input.security ?? (input.port === 636 ? 'ldaps' : 'starttls');
  if (!['ldaps', 'starttls', 'none'].includes(security)) throw configError('security must be ldaps, starttls or none');
  const port = positiveInt('port', input.port, security === 'ldaps' ? 636 : 389, 65535);
  let kerberos: ResolvedDirectorySettings['kerberos'];
  let bindDn: string;
  let saslProtection: SaslProtection = 'none';
  if (authType === 'kerberos') {
    const principal = typeof input.kerberosPrincipal === 'string' ? input.kerberosPrincipal.trim() : '';
    if (!/^[^\s@/]+(\/[^\s@]+)?@[A-Za-z0-9.-]+$/.test(principal)) throw configError('kerberos principal is required, as name@REALM');
    const keytab = input.kerberosKeytab === undefined || input.kerberosKeytab === '' ? undefined : input.kerberosKeytab;
    if (keytab !== undefined) {
      const bytes = typeof keytab === 'string' && /^[A-Za-z0-9+/\s]+=*\s*$/.test(keytab) ? Buffer.from(keytab, 'base64') : Buffer.alloc(0);
      if (bytes.length < 4 || bytes[0] !== 5 || bytes[1] !== 2) throw configError('kerberos keytab must be a base64 MIT keytab (it starts with 0x05 0x02)');
    } else if (typeof input.bindPassword !== 'string' || input.bindPassword === '') {
      throw configError('kerberos needs a keytab or the principal\'s password');
    }
    const spnHost = (input.kerberosSpnHost ?? '').trim() || server;
    if (!/^[A-Za-z0-9.-]+$/.test(spnHost) || isIP(spnHost)) {
      throw configError(`kerberos SPN host must be the DC's host name (ldap/<host> is registered for names, not addresses); got "${spnHost}"`);
    }
    if (input.krb5ConfPath !== undefined && (typeof input.krb5ConfPath !== 'string' || !input.krb5ConfPath.startsWith('/'))) {
      throw configError('krb5.conf path must be an absolute path');
    }
    kerberos = Object.freeze({ principal, keytabBase64: keytab, spnHost, krb5Conf: input.krb5ConfPath || undefined });
    bindDn = principal;
  } else {
    if (typeof input.bindDn !== 'string' || !input.bindDn.trim()) throw configError('bind DN is required');
    // An empty password would make AD treat the simple bind as anonymous and "succeed" (RFC 4513 5.1.2).
    if (typeof input.bindPassword !== 'string' || input.bindPassword === '') throw configError('bind password is required');
    bindDn = input.bindDn.trim();
    if (authType === 'ntlm' && !/^[^\\@\s]+\\[^\\@\s]+$/.test(bindDn) && !/^[^\\@\s]+@[^\\@\s]+$/.test(bindDn)) {
      throw configError('ntlm needs the bind account as DOMAIN\\user or user@domain (a UPN), not a DN');
    }
  }
  if (authType !== 'simple') {
    const p = input.saslProtection ?? (security === 'none' ? 'seal' : 'none');
    if (!['seal', 'sign', 'none'].includes(p)) throw configError('SASL protection must be seal, sign or none');
    if (p === 'none' && security === 'none') {
      throw configError(`SASL protection none on plain LDAP would send every query in clear; use seal or sign, or LDAPS/StartTLS`);
    }
    saslProtection = p;
  } else if (input.saslProtection !== undefined) {
    throw configError('SASL protection applies to ntlm and kerberos binds only');
  }
  if (typeof input.baseDn !== 'string' || !parseDn(input.baseDn)) throw configError('base DN is not a valid DN');
  if (input.caCertPem !== undefined && !/-----BEGIN CERTIFICATE-----/.test(input.caCertPem)) {
    throw configError('CA certificate must be PEM (-----BEGIN CERTIFICATE-----)');
  }
  const consumerAttributes = { ...DEFAULT_CONSUMER_ATTRIBUTES };
  for (const [k, v] of Object.entries(input.consumerAttributes ?? {})) {
    if (!(CONSUMER_ATTRIBUTES as readonly string[]).includes(k)) throw configError(`unknown consumer attribute ${k}`);
    if (typeof v !== 'string' || !isAttributeName(v)) throw configError(`consumer attribute ${k} must name an LDAP attribute`);
    consumerAttributes[k as ConsumerAttribute] = v;
  }
  const writable = input.writableAttributes ?? [...Object.values(consumerAttributes), ...DEFAULT_EXTRA_WRITABLE];
  for (const a of writable) {
    if (!isAttributeName(a)) throw configError(`writable attribute "${a}" is not an attribute name`);
    if (PROTECTED_ATTRIBUTES.has(a.toLowerCase())) throw configError(`attribute ${a} is protected and cannot be made writable`);
  }
  return Object.freeze({
    server,
    port,
    security,
    caCertPem: input.caCertPem,
    tlsServerName: input.tlsServerName,
    authType: authType as DirectoryAuthType,
    bindDn,
    bindPassword: input.bindPassword ?? '',
    kerberos,
    saslProtection,
    baseDn: input.baseDn.trim(),
    consumerAttributes: Object.freeze(consumerAttributes),
    writableAttributes: new Set(writable.map((a) => a.toLowerCase())),
    timeoutMs: positiveInt('timeoutMs', input.timeoutMs, DEFAULTS.timeoutMs, 600_000),
    connectTimeoutMs: positiveInt('connectTimeoutMs', input.connectTimeoutMs, DEFAULTS.connectTimeoutMs, 600_000),
    poolSize: positiveInt('poolSize', input.poolSize, DEFAULTS.poolSize, 100),
    idleTimeoutMs: positiveInt('idleTimeoutMs', input.idleTimeoutMs, DEFAULTS.idleTimeoutMs, 3_600_000),
  });
}

/** The secrets in resolved settings, for scrubbing messages (bind password, keytab). */
export function directorySecrets(s: ResolvedDirectorySettings): string[] {
  return [s.bindPassword, s.kerberos?.keytabBase64 ?? ''].filter((x) => x.length > 0);
}
