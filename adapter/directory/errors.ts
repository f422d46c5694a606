import { CodedError } from '../errors';

/**
 * Every failure of the directory adapter is a `DirectoryError` with a stable `code`:
 *
 * | code                 | when                                                                      | retryable |
 * |----------------------|---------------------------------------------------------------------------|-----------|
 * | CONFIG               | settings are invalid (bad port, unsupported auth type, missing CA ...)    | no        |
 * | INVALID_INPUT        | a lookup key is empty, a DN lies outside the base DN, an attribute name   | no        |
 * |                      | is malformed                                                              |           |
 * | ATTRIBUTE_NOT_ALLOWED| setAttributes names a protected attribute or one not on the allow-list    | no        |
 * | NOT_FOUND            | no user/group/entry matches (LDAP noSuchObject, or an empty search)       | no        |
 * | AMBIGUOUS            | a lookup key that should be unique matched more than one user             | no        |
 * | INVALID_CREDENTIALS  | the service account's bind was refused (LDAP 49); `adReason` carries AD's | no        |
 * |                      | `data 52e`-style sub-code in words                                        |           |
 * | INSUFFICIENT_ACCESS  | the service account may not do this (LDAP 50)                             | no        |
 * | STRONG_AUTH_REQUIRED | the server demands an encrypted or signed connection (LDAP 8, 13)         | no        |
 * | REJECTED             | the server refused a write: constraint, syntax, unwilling to perform ...  | no        |
 * | TLS                  | TLS handshake or certificate verification failed, StartTLS refused        | no        |
 * | UNAVAILABLE          | cannot connect, connection lost, timed out, server busy/unavailable       | yes       |
 * | LDAP_ERROR           | any other LDAP result; `ldapCode` says which                              | no        |
 *
 * Messages name DNs and lookup keys but never a password: `toDirectoryError` also scrubs any secret it is
 * given out of messages that came from elsewhere.
 */
export const DirectoryErrorCode = {
  CONFIG: 'CONFIG',
  INVALID_INPUT: 'INVALID_INPUT',
  ATTRIBUTE_NOT_ALLOWED: 'ATTRIBUTE_NOT_ALLOWED',
  NOT_FOUND: 'NOT_FOUND',
  AMBIGUOUS: 'AMBIGUOUS',
  INVALID_CREDENTIALS: 'INVALID_CREDENTIALS',
  INSUFFICIENT_ACCESS: 'INSUFFICIENT_ACCESS',
  STRONG_AUTH_REQUIRED: 'STRONG_AUTH_REQUIRED',
  REJECTED: 'REJECTED',
  TLS: 'TLS',
  UNAVAILABLE: 'UNAVAILABLE',
  LDAP_ERROR: 'LDAP_ERROR',
} as const;
export type DirectoryErrorCode = (typeof DirectoryErrorCode)[keyof typeof DirectoryErrorCode];

export interface DirectoryErrorDetails {
  /** The LDAP result code, when the server answered with one. */
  ldapCode?: number;
  /** AD's bind sub-code (`52e`, `533` ...) when the server sent one. */
  adDataCode?: string;
  /** AD's sub-code in words ("wrong password", "account disabled" ...). */
  adReason?: string;
  /** What was looked for, for NOT_FOUND / AMBIGUOUS / INVALID_INPUT. */
  key?: { kind: string; value: string };
  /** The offending attribute, for ATTRIBUTE_NOT_ALLOWED. */
  attribute?: string;
  /** Microsoft Graph / identity platform: the error code it answered (Authorization_RequestDenied, invalid_client ...). */
  graphCode?: string;
  /** Microsoft Graph / identity platform: the HTTP status it answered. */
  httpStatus?: number;
  /** The identity platform's AADSTS error number(s), comma-separated. */
  aadsts?: string;
  /** Kerberos binds: the Kerberos error name (`KDC_ERR_PREAUTH_FAILED` ...) when the KDC or GSS gave one. */
  krbError?: string;
}

/**
 * A directory failure. Its codes are the directory's own and overlap other rooms' (NOT_FOUND, CONFIG ...), so the
 * HTTP layer answers each with a code of its own table and keeps this one as `directory_code`.
 */
export class DirectoryError extends CodedError<DirectoryErrorCode> {
  override readonly name = 'DirectoryError';
  /** True when the same call may succeed later (connection trouble), false when it never will as is. */
  readonly retryable: boolean;
  readonly details: DirectoryErrorDetails;

  constructor(code: DirectoryErrorCode, message: string, details: DirectoryErrorDetails = {}, options?: { cause?: unknown }) {
    super(code, message, options?.cause !== undefined ? { cause: options.cause } : {});
    this.retryable = code === DirectoryErrorCode.UNAVAILABLE;
    this.details = details;
  }
}

/** AD's `data xxx` sub-codes of a refused bind (MS-ADTS / Win32 error codes), in words. */
const AD_BIND_REASONS: Record<string, string> = {
  '525': 'user not found',
  '52e': 'wrong password',
  '530': 'logon not permitted at this time',
  '531': 'logon not permitted from this workstation',
  '532': 'password expired',
  '533': 'account disabled',
  '568': 'too many security ids',
  '701': 'account expired',
  '773': 'password must be reset',
  '775': 'account locked out',
};

// Node's TLS failures: handshake alerts and certificate checks.
const TLS_ERROR = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|HOSTNAME_MISMATCH|ERR_OSSL_)/;
const NETWORK_ERROR = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED']);

/** LDAP result codes that mean "try again later". */
const LDAP_UNAVAILABLE = new Set([3 /* timeLimitExceeded */, 51 /* busy */, 52 /* unavailable */]);
const LDAP_REJECTED = new Set([
  19 /* constraintViolation */, 20 /* attributeOrValueExists */, 21 /* invalidAttributeSyntax */, 16 /* noSuchAttribute */,
  17 /* undefinedAttributeType */, 34 /* invalidDNSyntax */, 53 /* unwillingToPerform */, 64 /* namingViolation */,
  65 /* objectClassViolation */, 66 /* notAllowedOnNonLeaf */, 67 /* notAllowedOnRDN */, 68 /* entryAlreadyExists */,
  69 /* objectClassModsProhibited */,
]);

function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 3) out = out.split(s).join('[redacted]');
  return out;
}

/**
 * Turns whatever ldapts, node:net or node:tls threw into a `DirectoryError`. `context` prefixes the
 * message ("search users", "bind as ..."); `secrets` are removed from every message.
 */
export function toDirectoryError(err: unknown, context: string, secrets: readonly string[] = []): DirectoryError {
  if (err instanceof DirectoryError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const raw = scrub(typeof e?.message === 'string' ? e.message : String(err), secrets);
  const msg = (m: string) => `${context}: ${m}`;
  const cause = { cause: err };

  if (typeof e?.code === 'number') {
    const ldapCode = e.code;
    if (ldapCode === 49) {
      const data = /data ([0-9a-f]{3,4})/i.exec(raw)?.[1]?.toLowerCase();
      const adReason = data ? AD_BIND_REASONS[data] : undefined;
      const details: DirectoryErrorDetails = { ldapCode };
      if (data) details.adDataCode = data;
      if (adReason) details.adReason = adReason;
      const why = adReason ? `${adReason} (AD data ${data})` : data ? `AD data ${data}` : 'invalid credentials';
      return new DirectoryError(DirectoryErrorCode.INVALID_CREDENTIALS, msg(`invalid credentials: ${why}; server said: ${raw}`), details, cause);
    }
    if (ldapCode === 32) return new DirectoryError(DirectoryErrorCode.NOT_FOUND, msg(`no such object: ${raw}`), { ldapCode }, cause);
    if (ldapCode === 50) return new DirectoryError(DirectoryErrorCode.INSUFFICIENT_ACCESS, msg(`insufficient access rights: ${raw}`), { ldapCode }, cause);
    if (ldapCode === 8 || ldapCode === 13) {
      return new DirectoryError(DirectoryErrorCode.STRONG_AUTH_REQUIRED,
        msg(`the server requires an encrypted or signed connection (use LDAPS or StartTLS): ${raw}`), { ldapCode }, cause);
    }
    if (ldapCode === 112) return new DirectoryError(DirectoryErrorCode.TLS, msg(`TLS not supported by the server: ${raw}`), { ldapCode }, cause);
    if (LDAP_UNAVAILABLE.has(ldapCode)) return new DirectoryError(DirectoryErrorCode.UNAVAILABLE, msg(raw), { ldapCode }, cause);
    if (LDAP_REJECTED.has(ldapCode)) return new DirectoryError(DirectoryErrorCode.REJECTED, msg(raw), { ldapCode }, cause);
    return new DirectoryError(DirectoryErrorCode.LDAP_ERROR, msg(`LDAP result ${ldapCode}: ${raw}`), { ldapCode }, cause);
  }
  const code = typeof e?.code === 'string' ? e.code : '';
  if (TLS_ERROR.test(code) || /certificate|ssl|tls/i.test(raw)) {
    return new DirectoryError(DirectoryErrorCode.TLS, msg(`TLS failure${code ? ` (${code})` : ''}: ${raw}`), {}, cause);
  }
  if (NETWORK_ERROR.has(code) || /timed? ?out|connection closed|socket|not established/i.test(raw)) {
    return new DirectoryError(DirectoryErrorCode.UNAVAILABLE, msg(`directory unavailable${code ? ` (${code})` : ''}: ${raw}`), {}, cause);
  }
  return new DirectoryError(DirectoryErrorCode.LDAP_ERROR, msg(raw), {}, cause);
}
