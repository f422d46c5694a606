import nodemailer from 'nodemailer';
import type { Logger } from '../log';
import { MailError, MailErrorCode, toMailError } from './errors';
import { checkAddressList, checkHeaderText, type MailAddress } from './headers';
import type { SmtpSettings } from './settings';

/** One mail as the caller composes it; the sender and reply-to come from the settings. */
export interface MailMessage {
  to: readonly MailAddress[];
  cc?: readonly MailAddress[] | undefined;
  subject: string;
  text: string;
  html?: string | undefined;
  /**
   * The Message-ID, `<local@domain>`. A caller that may send the same mail twice (the outbox, after a crash between
   * sending and recording it) gives each mail a stable one, so the copies are recognisably the same message.
   */
  messageId?: string | undefined;
}

/** What the server answered to a mail it took. */
export interface MailSent {
  /** The server's final reply, e.g. `250 2.0.0 Ok: queued as 4F1C2`. */
  response: string;
  messageId: string;
  /** Recipients the server took. */
  accepted: string[];
  /** Recipients the server refused while taking the others (when it refuses all, `send` throws). */
  rejected: string[];
}

export interface Mailer {
  /**
   * Sends one mail over the transport.
   * @throws MailError: HEADER_INJECTION or INVALID_ADDRESS (nothing sent) naming the field; CONNECTION, TLS, AUTH,
   * SENDER_REFUSED, RECIPIENT_REFUSED or MESSAGE_REFUSED as the server or the network failed.
   */
  send(message: MailMessage): Promise<MailSent>;
  /** Connects, starts TLS and authenticates without sending anything. @throws MailError as `send`. */
  verify(): Promise<void>;
  /** Closes the transport's connections (a pooled transport finishes the mails it is sending first). */
  close(): void;
}

export interface MailerOptions {
  /** Keep connections open and reuse them (default true); false opens one connection per mail. */
  pool?: boolean;
  /** Pooled connections at most (default 5, nodemailer's). */
  maxConnections?: number;
  /** Mails per pooled connection before it is replaced (default 100, nodemailer's). */
  maxMessages?: number;
  /** TCP connect, ms (default 10 000). */
  connectionTimeoutMs?: number;
  /** Wait for the server's greeting, ms (default 10 000). */
  greetingTimeoutMs?: number;
  /** Inactivity on an open connection, ms (default 60 000). */
  socketTimeoutMs?: number;
  logger?: Logger | undefined;
}

const DEFAULTS = Object.freeze({
  maxConnections: 5, // connections
  maxMessages: 100, // mails per connection
  connectionTimeoutMs: 10_000, // ms
  greetingTimeoutMs: 10_000, // ms
  socketTimeoutMs: 60_000, // ms
});

/**
 * The nodemailer options of a transport over `settings`. Certificates are always verified (Node's trust store, or
 * only `caCertPem` when set); in `starttls` mode STARTTLS is required (`requireTLS`), so a server that does not
 * offer it, or a man in the middle that strips it, fails the mail instead of sending it, and the password, in clear.
 * Attachments from files or URLs are disabled: nothing we send is read from outside the message.
 */
export function transportOptions(settings: SmtpSettings, opts: MailerOptions = {}) {
  const o = { ...DEFAULTS, ...opts };
  return {
    host: settings.host,
    port: settings.port,
    secure: settings.tlsMode === 'tls',
    requireTLS: settings.tlsMode === 'starttls',
    ...(settings.username !== undefined ? { auth: { user: settings.username, pass: settings.password ?? '' } } : {}),
    tls: {
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2' as const,
      ...(settings.caCertPem !== undefined ? { ca: settings.caCertPem } : {}),
    },
    connectionTimeout: o.connectionTimeoutMs,
    greetingTimeout: o.greetingTimeoutMs,
    socketTimeout: o.socketTimeoutMs,
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
  };
}

/**
 * A transport over the `smtp` settings (nodemailer; pooled unless `pool: false`). Every message is checked against
 * header injection before anything is sent: addresses, display names and the subject.
 */
export function createMailer(settings: SmtpSettings, opts: MailerOptions = {}): Mailer {
  const base = transportOptions(settings, opts);
  const transport =
    opts.pool === false
      ? nodemailer.createTransport(base)
      : nodemailer.createTransport({
          ...base,
          pool: true as const,
          maxConnections: opts.maxConnections ?? DEFAULTS.maxConnections,
          maxMessages: opts.maxMessages ?? DEFAULTS.maxMessages,
        });
  const from = settings.fromName !== undefined ? { name: settings.fromName, address: settings.fromAddress } : settings.fromAddress;
  return {
    async send(message) {
      if (message.to.length === 0 && (message.cc ?? []).length === 0) {
        throw new MailError(MailErrorCode.INVALID_ADDRESS, 'to: at least one recipient is needed', { field: 'to' });
      }
      checkAddressList('to', message.to);
      checkAddressList('cc', message.cc ?? []);
      checkHeaderText('subject', message.subject);
      if (message.messageId !== undefined) checkHeaderText('message_id', message.messageId);
      try {
        const info = await transport.sendMail({
          from,
          ...(settings.replyTo !== undefined ? { replyTo: settings.replyTo } : {}),
          to: message.to.map(toAddress),
          ...(message.cc && message.cc.length ? { cc: message.cc.map(toAddress) } : {}),
          subject: message.subject,
          text: message.text,
          ...(message.html !== undefined ? { html: message.html } : {}),
          ...(message.messageId !== undefined ? { messageId: message.messageId } : {}),
        });
        return {
          response: String(info.response ?? ''),
          messageId: String(info.messageId ?? message.messageId ?? ''),
          accepted: (info.accepted ?? []).map(addressOf),
          rejected: (info.rejected ?? []).map(addressOf),
        };
      } catch (e) {
        const err = toMailError(e);
        opts.logger?.debug('smtp send failed', { code: err.code, stage: err.stage, host: settings.host, port: settings.port });
        throw err;
      }
    },
    async verify() {
      try {
        await transport.verify();
      } catch (e) {
        throw toMailError(e);
      }
    },
    close() {
      transport.close();
    },
  };
}

function toAddress(a: MailAddress): string | { name: string; address: string } {
  return typeof a === 'string' ? a : { name: a.name ?? '', address: a.address };
}

function addressOf(a: string | { address?: string } | unknown): string {
  if (typeof a === 'string') return a;
  if (typeof a === 'object' && a !== null && typeof (a as { address?: unknown }).address === 'string') return (a as { address: string }).address;
  return String(a);
}
