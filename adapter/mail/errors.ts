import { CodedError } from '../errors';

/**
 * Every failure of the mail adapter is a `MailError` with a stable `code` and the `stage` of the exchange that failed:
 *
 * | code              | stage     | when                                                                    | retryable    |
 * |-------------------|-----------|-------------------------------------------------------------------------|--------------|
 * | NOT_CONFIGURED    | settings  | the `smtp` section lacks a key it needs (`missing` names them)          | yes          |
 * | HEADER_INJECTION  | compose   | a CR, LF or other control character in an address, name or subject      | no           |
 * | INVALID_ADDRESS   | compose   | an address that is not a plain `local@domain` (or more than 320 chars)  | no           |
 * | CONNECTION        | connect   | refused, unreachable, unknown host, timed out, connection lost          | yes          |
 * | TLS               | tls       | certificate not trusted or not for the host, STARTTLS missing or failed | yes          |
 * | AUTH              | auth      | the server refused the credentials (or wants some and none are set)     | yes          |
 * | SENDER_REFUSED    | sender    | MAIL FROM refused                                                       | 4xx only     |
 * | RECIPIENT_REFUSED | recipient | every recipient refused at RCPT TO (`rejected` names them)              | 4xx only     |
 * | MESSAGE_REFUSED   | message   | the message refused after DATA, or any other SMTP protocol failure      | 4xx only     |
 *
 * "Retryable" is what the outbox acts on: the same mail may go through later (the server comes back, an admin fixes
 * the settings, the CA, the password). Auth and TLS failures are retryable for that reason: nothing about the mail is
 * wrong. A 5xx refusal of a sender, recipient or message would be refused again and is not.
 * Messages never carry the password; they may name the host, the port and the server's reply.
 */
export const MailErrorCode = {
  NOT_CONFIGURED: 'NOT_CONFIGURED',
  HEADER_INJECTION: 'HEADER_INJECTION',
  INVALID_ADDRESS: 'INVALID_ADDRESS',
  CONNECTION: 'CONNECTION',
  TLS: 'TLS',
  AUTH: 'AUTH',
  SENDER_REFUSED: 'SENDER_REFUSED',
  RECIPIENT_REFUSED: 'RECIPIENT_REFUSED',
  MESSAGE_REFUSED: 'MESSAGE_REFUSED',
} as const;
export type MailErrorCode = (typeof MailErrorCode)[keyof typeof MailErrorCode];

/** Where in the exchange a mail failed. */
export type MailStage = 'settings' | 'compose' | 'connect' | 'tls' | 'auth' | 'sender' | 'recipient' | 'message';

const STAGE: Readonly<Record<MailErrorCode, MailStage>> = {
  NOT_CONFIGURED: 'settings',
  HEADER_INJECTION: 'compose',
  INVALID_ADDRESS: 'compose',
  CONNECTION: 'connect',
  TLS: 'tls',
  AUTH: 'auth',
  SENDER_REFUSED: 'sender',
  RECIPIENT_REFUSED: 'recipient',
  MESSAGE_REFUSED: 'message',
};

export interface MailErrorDetails {
  /** HEADER_INJECTION, INVALID_ADDRESS: the field at fault (`to[0]`, `cc[1]`, `subject`, `from_name`, …). */
  field?: string;
  /** NOT_CONFIGURED: the settings keys that are missing. */
  missing?: string[];
  /** The SMTP reply code, when the server answered with one. */
  smtpCode?: number;
  /** The server's reply line, when it answered. */
  smtpResponse?: string;
  /** RECIPIENT_REFUSED: the addresses refused. */
  rejected?: string[];
  /** True when the server's reply said the refusal is permanent (5xx). */
  permanent?: boolean;
}

export class MailError extends CodedError<MailErrorCode> {
  override readonly name = 'MailError';
  readonly stage: MailStage;
  /** True when the same mail may be accepted later as it is; see the table above. */
  readonly retryable: boolean;
  readonly details: MailErrorDetails;

  constructor(code: MailErrorCode, message: string, details: MailErrorDetails = {}, options?: { cause?: unknown }) {
    super(code, message, options?.cause !== undefined ? { cause: options.cause } : {});
    this.stage = STAGE[code];
    this.details = details;
    this.retryable =
      code === MailErrorCode.HEADER_INJECTION || code === MailErrorCode.INVALID_ADDRESS
        ? false
        : code === MailErrorCode.SENDER_REFUSED || code === MailErrorCode.RECIPIENT_REFUSED || code === MailErrorCode.MESSAGE_REFUSED
          ? details.permanent !== true
          : true;
  }
}

/** What nodemailer attaches to the errors it hands back (see its `NodemailerError`). */
interface NodemailerFailure {
  message?: string;
  code?: string;
  originalCode?: string;
  command?: string;
  response?: string;
  responseCode?: number;
  permanent?: boolean;
  rejected?: string[];
  library?: string;
}

// Node's and OpenSSL's codes for a certificate that is not trusted, expired, or not for this host, and for a
// handshake that failed; nodemailer reports them all as ESOCKET and keeps Node's code as `originalCode`.
const TLS_CODE = /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|INVALID_CA|EPROTO$)/;

/**
 * A nodemailer failure as a `MailError`: classified by nodemailer's code, the command in flight and Node's own code.
 * Already-classified errors pass through.
 */
export function toMailError(e: unknown): MailError {
  if (e instanceof MailError) return e;
  const f: NodemailerFailure = typeof e === 'object' && e !== null ? (e as NodemailerFailure) : { message: String(e) };
  const reply = {
    ...(f.responseCode !== undefined ? { smtpCode: f.responseCode } : {}),
    ...(f.response !== undefined ? { smtpResponse: f.response } : {}),
    ...(f.permanent !== undefined ? { permanent: f.permanent } : {}),
  };
  const why = f.message ?? 'unknown failure';
  const make = (code: MailErrorCode, message: string, more: MailErrorDetails = {}) => new MailError(code, message, { ...reply, ...more }, { cause: e });
  const tlsFailure = (f.originalCode !== undefined && TLS_CODE.test(f.originalCode)) || f.library !== undefined;
  switch (f.code) {
    case 'EAUTH':
    case 'ENOAUTH':
      return make(MailErrorCode.AUTH, `SMTP authentication refused: ${why}`);
    case 'ETLS':
    case 'EREQUIRETLS':
      return make(MailErrorCode.TLS, `SMTP TLS failed: ${why}`);
    case 'EENVELOPE':
      if (f.command === 'MAIL FROM') return make(MailErrorCode.SENDER_REFUSED, `SMTP server refused the sender: ${f.response ?? why}`);
      return make(MailErrorCode.RECIPIENT_REFUSED, `SMTP server refused the recipients: ${f.response ?? why}`, f.rejected ? { rejected: [...f.rejected] } : {});
    case 'EMESSAGE':
    case 'EPROTOCOL':
      return make(MailErrorCode.MESSAGE_REFUSED, `SMTP server refused the message: ${f.response ?? why}`);
    default:
      if (tlsFailure) return make(MailErrorCode.TLS, `SMTP TLS failed: ${why}`);
      // A reply we did not expect to a command is the server refusing what we sent, not the network.
      if (f.responseCode !== undefined && f.command !== 'CONN') return make(MailErrorCode.MESSAGE_REFUSED, `SMTP server refused: ${f.response ?? why}`);
      return make(MailErrorCode.CONNECTION, `SMTP connection failed: ${why}`);
  }
}
