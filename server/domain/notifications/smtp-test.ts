import { hostname } from 'node:os';
import { CodedError, createMailer, MailError, resolveSmtpSettings, SecretBackendError, toMailError, type Logger, type Queryable } from '../../../adapter';
import { MAIL_CODES } from '../../errors';
import { readSettings } from '../settings/settings';

/** What the server answered to the test mail. */
export interface SmtpTestResult {
  response: string;
  message_id: string;
  accepted: string[];
  rejected: string[];
}

/**
 * A mail failure as the API answers it (server/errors.ts, MAIL_CODES): SMTP_NOT_CONFIGURED with `missing`,
 * VALIDATION_FAILED naming the field, or SMTP_FAILED with `stage`, and the server's reply when it gave one. The
 * adapter's code goes along as `mail_code`.
 */
export function mailProblem(e: MailError, fieldPath: (field: string) => string = (f) => `/body/${f}`): CodedError {
  const code = MAIL_CODES[e.code];
  const extra: Record<string, unknown> = { mail_code: e.code };
  if (code === 'SMTP_NOT_CONFIGURED') return new CodedError(code, e.message, { extra: { ...extra, missing: e.details.missing ?? [] } });
  if (code === 'VALIDATION_FAILED') {
    const field = e.details.field ?? 'to';
    return new CodedError(code, e.message, { errors: [{ path: fieldPath(field), message: e.message }], extra });
  }
  extra['stage'] = e.stage;
  if (e.details.smtpCode !== undefined) extra['smtp_code'] = e.details.smtpCode;
  if (e.details.smtpResponse !== undefined) extra['smtp_response'] = e.details.smtpResponse;
  if (e.details.rejected !== undefined) extra['rejected'] = e.details.rejected;
  return new CodedError(code, e.message, { extra, cause: e });
}

/**
 * Sends a test mail to `to` now, not through the outbox, over a fresh (unpooled) connection built from the `smtp`
 * settings as stored: what the admin is testing is exactly those settings, not a pooled connection opened earlier.
 * @throws SMTP_NOT_CONFIGURED, VALIDATION_FAILED or SMTP_FAILED (see `mailProblem`).
 */
export async function sendSmtpTestMail(q: Queryable, to: string, opts: { requestedBy: string; logger?: Logger | undefined }): Promise<SmtpTestResult> {
  try {
    const settings = resolveSmtpSettings(await readSettings(q, 'smtp'));
    const mailer = createMailer(settings, { pool: false, logger: opts.logger });
    try {
      const sent = await mailer.send({
        to: [to],
        subject: 'provisio SMTP test',
        text:
          `This is a test mail from provisio (${hostname()}), sent at ${new Date().toISOString()} by ${opts.requestedBy} ` +
          `to check the SMTP settings: ${settings.host}:${settings.port}, ${settings.tlsMode === 'tls' ? 'TLS' : 'STARTTLS'}` +
          `${settings.username ? `, authenticated as ${settings.username}` : ', no authentication'}.\n`,
      });
      opts.logger?.info('smtp test mail sent', { to, response: sent.response });
      return { response: sent.response, message_id: sent.messageId, accepted: sent.accepted, rejected: sent.rejected };
    } finally {
      mailer.close();
    }
  } catch (e) {
    if (e instanceof MailError) throw mailProblem(e, (field) => (field.startsWith('to') ? '/body/to' : `/smtp/${field}`));
    // A password held in a secret backend that could not be read is that failure, not the SMTP server's.
    if (e instanceof CodedError || e instanceof SecretBackendError) throw e;
    throw mailProblem(toMailError(e));
  }
}
