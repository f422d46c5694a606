/**
 * Outbound mail over SMTP (nodemailer): a transport built from the `smtp` settings, certificates always verified,
 * STARTTLS required in `starttls` mode, a private CA trusted through `ca_cert_pem`; every address, display name and
 * subject checked against header injection; every failure a `MailError` naming its stage.
 */
export { createMailer, transportOptions } from './transport';
export type { Mailer, MailerOptions, MailMessage, MailSent } from './transport';
export { MailError, MailErrorCode, toMailError } from './errors';
export type { MailErrorDetails, MailStage } from './errors';
export { checkAddress, checkAddressList, checkHeaderText, hasControlCharacter } from './headers';
export type { MailAddress } from './headers';
export { resolveSmtpSettings, SMTP_DEFAULT_PORTS } from './settings';
export type { SmtpSettings, SmtpTlsMode } from './settings';
