import { CodedError } from '../errors';

/**
 * Every failure of adapter/kerberos is a `KerberosError`; `krbError` names the Kerberos error where the KDC or
 * the GSS library gave one, so an operator reads the cause, not a generic "authentication failed":
 *
 * | code                     | krbError                     | when                                                  |
 * |--------------------------|------------------------------|-------------------------------------------------------|
 * | KERBEROS_CONFIG          |                              | bad principal or options, unreadable keytab, addon missing |
 * | KERBEROS_BAD_CREDENTIALS | KDC_ERR_PREAUTH_FAILED       | wrong password, or a keytab whose keys are stale       |
 * | KERBEROS_UNKNOWN_PRINCIPAL | KDC_ERR_C_PRINCIPAL_UNKNOWN | the client principal does not exist                   |
 * | KERBEROS_UNKNOWN_SERVICE | KDC_ERR_S_PRINCIPAL_UNKNOWN  | no account holds the SPN asked for                     |
 * | KERBEROS_CLOCK_SKEW      | KRB_AP_ERR_SKEW              | this host's clock and the KDC's differ beyond tolerance |
 * | KERBEROS_TICKET_EXPIRED  | KRB_AP_ERR_TKT_EXPIRED       | a ticket expired and could not be renewed              |
 * | KERBEROS_ACCOUNT_DISABLED| KDC_ERR_CLIENT_REVOKED / KDC_ERR_KEY_EXPIRED | account disabled, locked, or its password expired |
 * | KERBEROS_KDC_UNREACHABLE |                              | no KDC answered, or kinit timed out (retryable)        |
 * | KERBEROS_FAILED          |                              | any other failure; the message carries the library's text |
 *
 * Messages never carry a password, a keytab's content or a ticket.
 */
export const KerberosErrorCode = {
  KERBEROS_CONFIG: 'KERBEROS_CONFIG',
  KERBEROS_BAD_CREDENTIALS: 'KERBEROS_BAD_CREDENTIALS',
  KERBEROS_UNKNOWN_PRINCIPAL: 'KERBEROS_UNKNOWN_PRINCIPAL',
  KERBEROS_UNKNOWN_SERVICE: 'KERBEROS_UNKNOWN_SERVICE',
  KERBEROS_CLOCK_SKEW: 'KERBEROS_CLOCK_SKEW',
  KERBEROS_TICKET_EXPIRED: 'KERBEROS_TICKET_EXPIRED',
  KERBEROS_ACCOUNT_DISABLED: 'KERBEROS_ACCOUNT_DISABLED',
  KERBEROS_KDC_UNREACHABLE: 'KERBEROS_KDC_UNREACHABLE',
  KERBEROS_FAILED: 'KERBEROS_FAILED',
} as const;
export type KerberosErrorCode = (typeof KerberosErrorCode)[keyof typeof KerberosErrorCode];

export class KerberosError extends CodedError<KerberosErrorCode> {
  /** The Kerberos error name (e.g. `KDC_ERR_PREAUTH_FAILED`) when one is known. */
  readonly krbError: string | undefined;
  /** True only for KDC_UNREACHABLE: the same call may succeed later. */
  readonly retryable: boolean;

  constructor(code: KerberosErrorCode, message: string, krbError?: string, cause?: unknown) {
    super(code, krbError ? `${message} (${krbError})` : message, {
      ...(cause !== undefined ? { cause } : {}),
      ...(krbError ? { extra: { krbError } } : {}),
    });
    this.name = 'KerberosError';
    this.krbError = krbError;
    this.retryable = code === KerberosErrorCode.KERBEROS_KDC_UNREACHABLE;
  }
}

/** MIT krb5's texts for the errors we name (kinit stderr and GSS minor status messages). */
const PATTERNS: readonly [RegExp, KerberosErrorCode, string | undefined, string][] = [
  [/Password incorrect|Preauthentication failed/i, 'KERBEROS_BAD_CREDENTIALS', 'KDC_ERR_PREAUTH_FAILED', 'wrong password or stale keytab'],
  [/Client .* not found in Kerberos database|Client not found/i, 'KERBEROS_UNKNOWN_PRINCIPAL', 'KDC_ERR_C_PRINCIPAL_UNKNOWN', 'unknown client principal'],
  [/Server .* not found in Kerberos database|Server not found/i, 'KERBEROS_UNKNOWN_SERVICE', 'KDC_ERR_S_PRINCIPAL_UNKNOWN', 'no account holds this service principal name (missing SPN)'],
  [/Clock skew too great/i, 'KERBEROS_CLOCK_SKEW', 'KRB_AP_ERR_SKEW', 'clock skew beyond the KDC\'s tolerance'],
  [/Ticket expired|credentials have expired|Credentials cache .*expired/i, 'KERBEROS_TICKET_EXPIRED', 'KRB_AP_ERR_TKT_EXPIRED', 'ticket expired'],
  [/Password has expired/i, 'KERBEROS_ACCOUNT_DISABLED', 'KDC_ERR_KEY_EXPIRED', 'the account\'s password has expired'],
  [/credentials have been revoked/i, 'KERBEROS_ACCOUNT_DISABLED', 'KDC_ERR_CLIENT_REVOKED', 'account disabled or locked'],
  [/Cannot contact any KDC|Cannot find KDC|Cannot resolve network address/i, 'KERBEROS_KDC_UNREACHABLE', undefined, 'no KDC answered'],
  [/Key table file .* not found|Keytab contains no suitable keys|No key table entry found/i, 'KERBEROS_CONFIG', undefined, 'the keytab has no keys for this principal'],
  [/No Kerberos credentials available|No credentials cache found|Can't find client principal .* in cache collection|Matching credential not found/i,
    'KERBEROS_TICKET_EXPIRED', undefined, 'no ticket for this principal (acquire one first)'],
];

/**
 * Turns a library or kinit message into a KerberosError. `secrets` are scrubbed from the text kept as the
 * detail (kinit never echoes a password, but a caller's wrapper might).
 */
export function toKerberosError(context: string, text: string, secrets: readonly string[] = [], cause?: unknown): KerberosError {
  let detail = text.trim().split('\n').filter(Boolean).pop() ?? '';
  for (const s of secrets) if (s) detail = detail.split(s).join('***');
  for (const [re, code, krb, words] of PATTERNS) {
    if (re.test(text)) return new KerberosError(code, `${context}: ${words}`, krb, cause);
  }
  return new KerberosError('KERBEROS_FAILED', `${context}: ${detail || 'failed'}`, undefined, cause);
}
