import { MailError, MailErrorCode } from './errors';
import { checkAddress, checkHeaderText } from './headers';

/** How the connection is protected: STARTTLS on a plain port (required, never skipped), or TLS from the first byte. */
export type SmtpTlsMode = 'starttls' | 'tls';

/** The `smtp` settings section, resolved: what a transport is built from. */
export interface SmtpSettings {
  readonly host: string;
  readonly port: number;
  readonly tlsMode: SmtpTlsMode;
  /** With `password`: AUTH (PLAIN or LOGIN, as the server offers) after TLS; neither: no AUTH. */
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly fromAddress: string;
  /** Display name of the sender, e.g. `provisio`. */
  readonly fromName: string | undefined;
  readonly replyTo: string | undefined;
  /** PEM of the CA(s) trusted for the server's certificate instead of Node's trust store. */
  readonly caCertPem: string | undefined;
}

/** The port of each TLS mode when `port` is not set (RFC 8314: 465 implicit TLS, 587 submission with STARTTLS). */
export const SMTP_DEFAULT_PORTS: Readonly<Record<SmtpTlsMode, number>> = Object.freeze({ starttls: 587, tls: 465 });

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * The `smtp` settings section (stored keys: host, port, username, password, from_address, from_name, tls_mode,
 * reply_to, ca_cert_pem) as transport settings. `tls_mode` defaults to `starttls`, `port` to the mode's port.
 * @throws MailError NOT_CONFIGURED with `missing` naming every key lacking (host, from_address, and the other half
 * of username/password); HEADER_INJECTION or INVALID_ADDRESS naming the key whose value cannot reach a header.
 */
export function resolveSmtpSettings(raw: Readonly<Record<string, unknown>>): SmtpSettings {
  const host = str(raw['host']);
  const fromAddress = str(raw['from_address']);
  const username = str(raw['username']);
  const password = str(raw['password']);
  const missing: string[] = [];
  if (!host) missing.push('host');
  if (!fromAddress) missing.push('from_address');
  if (username && !password) missing.push('password');
  if (password && !username) missing.push('username');
  if (missing.length) {
    throw new MailError(MailErrorCode.NOT_CONFIGURED, `the smtp settings are incomplete: ${missing.join(', ')} not set`, { missing });
  }
  const tlsMode: SmtpTlsMode = raw['tls_mode'] === 'tls' ? 'tls' : 'starttls';
  const port = typeof raw['port'] === 'number' ? raw['port'] : SMTP_DEFAULT_PORTS[tlsMode];
  const fromName = str(raw['from_name']);
  const replyTo = str(raw['reply_to']);
  checkAddress('from_address', fromAddress!);
  if (replyTo) checkAddress('reply_to', replyTo);
  if (fromName) checkHeaderText('from_name', fromName);
  return Object.freeze({ host: host!, port, tlsMode, username, password, fromAddress: fromAddress!, fromName, replyTo, caCertPem: str(raw['ca_cert_pem']) });
}
