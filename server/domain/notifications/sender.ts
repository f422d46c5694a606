import { CodedError } from '../../../adapter';
import type { OutboxItem } from './store';
import type { RenderContext } from './templates';

/**
 * Delivers one outbox row over its channel (the mail sender; the Teams sender) and answers with what the far side
 * said. It throws when the delivery failed: an error whose `retryable` is `false` (a `DeliveryError` made so, or a
 * `MailError` for a permanent refusal) leaves the row `failed` for good; any other error is retried with backoff
 * until the row is `dead`. The error's `code` and message become the row's `last_error_code` and `last_error`, and a
 * server reply it carries (`response`, or a MailError's `details.smtpResponse`) its `server_response`: they must
 * not hold secrets.
 */
export type OutboxSender = (item: OutboxItem, ctx: RenderContext) => Promise<{ response: string; messageId?: string }>;

/** A delivery failure of a sender, retryable or not, with the far side's reply when there was one. */
export class DeliveryError extends CodedError<string> {
  override readonly name = 'DeliveryError';
  readonly retryable: boolean;
  readonly response: string | undefined;

  constructor(code: string, message: string, opts: { retryable: boolean; response?: string | undefined; cause?: unknown }) {
    super(code, message, opts.cause !== undefined ? { cause: opts.cause } : {});
    this.retryable = opts.retryable;
    this.response = opts.response;
  }
}

/** How the worker reads a sender's failure. */
export function describeFailure(e: unknown): { retryable: boolean; code: string | null; error: string; response: string | null } {
  const o = (typeof e === 'object' && e !== null ? e : {}) as {
    retryable?: unknown;
    code?: unknown;
    message?: unknown;
    stage?: unknown;
    response?: unknown;
    details?: { smtpResponse?: unknown };
  };
  const message = typeof o.message === 'string' ? o.message : String(e);
  const response = typeof o.response === 'string' ? o.response : typeof o.details?.smtpResponse === 'string' ? o.details.smtpResponse : null;
  return {
    retryable: o.retryable !== false,
    code: typeof o.code === 'string' ? o.code : null,
    // The stage first, so the admin list says at a glance whether the network, TLS, the password or a recipient failed.
    error: (typeof o.stage === 'string' ? `[${o.stage}] ${message}` : message).slice(0, 2000),
    response: response === null ? null : response.slice(0, 2000),
  };
}
