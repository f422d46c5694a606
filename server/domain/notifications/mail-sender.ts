import { createHash } from 'node:crypto';
import { createMailer, resolveSmtpSettings, type Logger, type Mailer, type MailerOptions, type Queryable, type SmtpSettings } from '../../../adapter';
import { onSettingsChanged, readSettings } from '../settings/settings';
import { DeliveryError, type OutboxSender } from './sender';
import type { OutboxItem } from './store';
import { isMailTemplate, renderMail, type MailTemplate, type MailTemplateData, type RenderContext } from './templates';

/** How long the `smtp` settings read for one mail serve the next ones (ms); a change made in this process is seen at once. */
const SETTINGS_REREAD_MS = 2_000;

export interface MailSenderDeps {
  db: Queryable;
  logger: Logger;
  /** Pool options of the transport (connections, timeouts). */
  mailer?: MailerOptions | undefined;
}

export interface MailSender {
  send: OutboxSender;
  /** Closes the pooled connections (mails being sent finish first). */
  close(): void;
}

/** The stable Message-ID of a row: a mail sent twice (see enqueueMail) carries the same one. */
export function outboxMessageId(item: Pick<OutboxItem, 'id' | 'created_at'>, fromAddress: string): string {
  const domain = fromAddress.slice(fromAddress.lastIndexOf('@') + 1) || 'provisio.invalid';
  return `<outbox.${item.id}.${item.created_at.getTime()}@${domain}>`;
}

/**
 * The outbox's mail channel: renders the row's template at send time and sends it through one pooled transport built
 * from the `smtp` settings. The transport is rebuilt when the settings change: at once when this process saved them
 * (`onSettingsChanged`), else when a read (at most every 2 s) finds different values (another process saved them).
 * The old pool is closed after the mails it is sending are done.
 */
export function createMailSender(deps: MailSenderDeps): MailSender {
  let current: { fingerprint: string; settings: SmtpSettings; mailer: Mailer } | undefined;
  let read: { at: number; raw: Promise<{ values: Record<string, unknown>; fingerprint: string }> } | undefined;
  const unsubscribe = onSettingsChanged((section) => {
    if (section === 'smtp') read = undefined;
  });

  async function transport(): Promise<{ settings: SmtpSettings; mailer: Mailer }> {
    if (!read || Date.now() - read.at > SETTINGS_REREAD_MS) {
      read = {
        at: Date.now(),
        raw: readSettings(deps.db, 'smtp').then((values) => ({
          values,
          fingerprint: createHash('sha256').update(JSON.stringify(Object.entries(values).sort(([a], [b]) => a.localeCompare(b)))).digest('hex'),
        })),
      };
      // A failed read is not kept: the next mail reads again.
      read.raw.catch(() => (read = undefined));
    }
    const { values, fingerprint } = await read.raw;
    if (current?.fingerprint !== fingerprint) {
      // Throws NOT_CONFIGURED (retryable: the mails wait for an admin) before the old transport is dropped.
      const settings = resolveSmtpSettings(values);
      const old = current;
      current = { fingerprint, settings, mailer: createMailer(settings, { ...deps.mailer, logger: deps.logger }) };
      old?.mailer.close();
      deps.logger.info('smtp transport (re)built', { host: settings.host, port: settings.port, tls_mode: settings.tlsMode });
    }
    return current;
  }

  const send: OutboxSender = async (item, ctx: RenderContext) => {
    if (!isMailTemplate(item.template)) {
      throw new DeliveryError('UNKNOWN_TEMPLATE', `unknown mail template '${item.template}'`, { retryable: false });
    }
    let rendered;
    try {
      rendered = renderMail(item.template, item.data as unknown as MailTemplateData[MailTemplate], ctx);
    } catch (e) {
      // The same data renders the same way next time: retrying would not help.
      throw new DeliveryError('RENDER_FAILED', `template ${item.template} did not render: ${e instanceof Error ? e.message : String(e)}`, { retryable: false, cause: e });
    }
    const { settings, mailer } = await transport();
    const sent = await mailer.send({
      to: item.to,
      cc: item.cc,
      subject: rendered.subject,
      text: rendered.text,
      html: rendered.html,
      messageId: outboxMessageId(item, settings.fromAddress),
    });
    // Some recipients refused while others were taken: the mail is sent, and the row says who did not get it.
    const refused = sent.rejected.length ? `; refused recipients: ${sent.rejected.join(', ')}` : '';
    return { response: `${sent.response}${refused}`, messageId: sent.messageId };
  };

  return {
    send,
    close() {
      unsubscribe();
      current?.mailer.close();
      current = undefined;
    },
  };
}
