/**
 * The outbox: a notification is a row written in the caller's transaction, with the change that causes it, and a
 * pg-boss job on `outbox.send` sent in the same transaction; so it exists exactly when the change commits, and is
 * sent after the commit by a worker (worker.ts), never before and never for a change that rolled back. While the
 * server is down or refuses us, the row stays queued and says why (`last_error`) and when it is tried again
 * (`next_attempt_at`); the change that caused it is never affected.
 */
import { QueueName, writeAudit, checkAddress, checkHeaderText, MailError, type JobQueue, type Queryable, type SendOptions } from '../../../adapter';
import { conflict, notFound, validationFailed, type FieldError } from '../../errors';
import type { Page, PageRequest } from '../paging';
import {
  insertOutboxItem,
  listOutboxItems,
  lockOutboxItem,
  requeueOutboxItem,
  type OutboxChannel,
  type OutboxFilter,
  type OutboxItem,
} from './store';
import { isMailTemplate, renderSubject, type MailTemplate, type MailTemplateData } from './templates';

/** Who caused the notification, for its row and its audit row. */
export interface NotificationActor {
  triggeredBy: string;
  requestId?: string | undefined;
}

/**
 * How failed attempts are retried: `baseDelaySeconds` after the first, doubling up to `maxDelaySeconds`; after
 * `maxAttempts` attempts the row is `dead`. With the defaults a row is tried 10 times over about 3 hours.
 */
export interface OutboxRetryPolicy {
  maxAttempts: number;
  baseDelaySeconds: number;
  maxDelaySeconds: number;
}

export const OUTBOX_RETRY_DEFAULTS: Readonly<OutboxRetryPolicy> = Object.freeze({
  maxAttempts: 10,
  baseDelaySeconds: 30, // s, after the first failure
  maxDelaySeconds: 3600, // s, the longest wait between two attempts
});

/** Seconds before the next attempt, after `attempts` attempts have failed. */
export function retryDelaySeconds(attempts: number, policy: OutboxRetryPolicy = OUTBOX_RETRY_DEFAULTS): number {
  return Math.min(policy.maxDelaySeconds, policy.baseDelaySeconds * 2 ** Math.max(0, attempts - 1));
}

/**
 * The pg-boss job of one attempt. The job only says "look at row N": the row decides what to do. pg-boss retries a
 * job whose handler failed (the database was unreachable), and one whose worker died, once `expireInSeconds` has
 * passed; by then the row's claim (5 minutes by default) has expired too and the row can be claimed again.
 */
export const OUTBOX_JOB_OPTIONS: Readonly<SendOptions> = Object.freeze({ retryLimit: 5, retryDelaySeconds: 30, expireInSeconds: 900 });

export interface OutboxJob {
  id: number;
}

/** Sends the job that makes a worker look at row `id` (not before `startAfter`), on `tx`. */
export async function sendOutboxJob(tx: Queryable, queue: JobQueue, id: number, startAfter?: Date): Promise<void> {
  await queue.send(tx, QueueName.OUTBOX_SEND, { id } satisfies OutboxJob, { ...OUTBOX_JOB_OPTIONS, ...(startAfter ? { startAfter } : {}) });
}

const TEMPLATE_NAME = /^[a-z][a-z0-9_]{0,63}$/;
const MAX_RECIPIENTS = 100;

/** A compose failure of the adapter as the outbox reports it: 422 naming the notification's field. */
function composeFailure(e: MailError): never {
  const field = e.details.field ?? 'notification';
  const path = `/notification/${field.replace(/\[(\d+)\]/g, '/$1').replace(/\./g, '/')}`;
  throw validationFailed(e.message, [{ path, message: e.message }], { mail_code: e.code });
}

function checkRecipients(channel: OutboxChannel, field: 'to' | 'cc', list: unknown): string[] {
  if (!Array.isArray(list)) throw validationFailed(`${field} must be a list`, [{ path: `/notification/${field}`, message: 'must be a list' }]);
  if (list.length > MAX_RECIPIENTS) {
    throw validationFailed(`${field}: at most ${MAX_RECIPIENTS} recipients`, [{ path: `/notification/${field}`, message: `at most ${MAX_RECIPIENTS} recipients` }]);
  }
  return list.map((v, i) => {
    const name = `${field}[${i}]`;
    try {
      if (typeof v !== 'string') throw validationFailed(`${name} must be a string`, [{ path: `/notification/${field}/${i}`, message: 'must be a string' }]);
      if (channel === 'mail') checkAddress(name, v);
      else checkHeaderText(name, v);
    } catch (e) {
      if (e instanceof MailError) composeFailure(e);
      throw e;
    }
    return v as string;
  });
}

/**
 * Queues a notification in the caller's transaction: the outbox row, its job, and the audit row (`notification` /
 * `queued`), all committed or rolled back with the caller's change. The generic form: `enqueueMail` calls it with
 * channel `mail`; the Teams cards with channel `teams`.
 * `data` must be JSON and must never hold a secret or a rendered signed link: links are stored as ids and rendered
 * when the notification is sent.
 * @throws VALIDATION_FAILED naming the field (`/notification/to/0`, `/notification/subject`, …) for a recipient that
 * is not a plain address or holds a control character (header injection), an unknown mail template, a subject with a
 * control character, or data that is not an object. Nothing is written then.
 */
export async function enqueueNotification(
  tx: Queryable,
  queue: JobQueue,
  n: { channel: 'mail' | 'teams'; template: string; to: readonly string[]; cc?: readonly string[]; data: object },
  actor: NotificationActor,
): Promise<{ id: number }> {
  const errors: FieldError[] = [];
  if (n.channel !== 'mail' && n.channel !== 'teams') errors.push({ path: '/notification/channel', message: "must be 'mail' or 'teams'" });
  if (typeof n.template !== 'string' || !TEMPLATE_NAME.test(n.template)) errors.push({ path: '/notification/template', message: `must match ${TEMPLATE_NAME.source}` });
  else if (n.channel === 'mail' && !isMailTemplate(n.template)) errors.push({ path: '/notification/template', message: `is not a mail template` });
  if (typeof n.data !== 'object' || n.data === null || Array.isArray(n.data)) errors.push({ path: '/notification/data', message: 'must be an object' });
  if (errors.length) throw validationFailed(errors.map((e) => `${e.path.slice('/notification/'.length)} ${e.message}`).join('; '), errors);
  const to = checkRecipients(n.channel, 'to', n.to);
  const cc = checkRecipients(n.channel, 'cc', n.cc ?? []);
  if (n.channel === 'mail') {
    if (to.length + cc.length === 0) throw validationFailed('to: at least one recipient is needed', [{ path: '/notification/to', message: 'at least one recipient is needed' }]);
    // The subject holds no link, so it is rendered now: a value that would break the header is refused with the
    // change that brought it, not discovered by a worker hours later.
    try {
      checkHeaderText('subject', renderSubject(n.template as MailTemplate, n.data as MailTemplateData[MailTemplate]));
    } catch (e) {
      if (e instanceof MailError) composeFailure(e);
      throw e;
    }
  }
  const id = await insertOutboxItem(tx, { channel: n.channel, template: n.template, to, cc, data: n.data, triggeredBy: actor.triggeredBy, requestId: actor.requestId });
  await sendOutboxJob(tx, queue, id);
  await writeAudit(tx, {
    entity: 'notification',
    entityId: id,
    action: 'queued',
    after: { channel: n.channel, template: n.template, to, cc },
    triggeredBy: actor.triggeredBy,
    requestId: actor.requestId,
  });
  return { id };
}

/**
 * Queues a mail from one of the templates, in the caller's transaction (see `enqueueNotification`). The mail is sent
 * after the commit, retried with backoff while the SMTP server is down or refuses us, and never lost: delivery is
 * at-least-once (a worker that dies between the server's acceptance and recording it sends the mail again, with the
 * same Message-ID).
 */
export async function enqueueMail<T extends MailTemplate>(
  tx: Queryable,
  queue: JobQueue,
  mail: { template: T; to: readonly string[]; cc?: readonly string[]; data: MailTemplateData[T] },
  actor: NotificationActor,
): Promise<{ id: number }> {
  return enqueueNotification(tx, queue, { channel: 'mail', template: mail.template, to: mail.to, ...(mail.cc ? { cc: mail.cc } : {}), data: mail.data }, actor);
}

/**
 * An admin's retry: a `failed`, `dead` or still `queued` row is queued again, due now, with a fresh count of attempts
 * (its last error is kept until the next attempt), its job sent and the change audited (`notification` / `retry`).
 * @throws NOT_FOUND for an unknown id; CONFLICT (with `outbox_state`) for a row being sent or already sent.
 */
export async function retryOutboxItem(tx: Queryable, queue: JobQueue, id: number, actor: NotificationActor): Promise<OutboxItem> {
  const before = await lockOutboxItem(tx, id);
  if (!before) throw notFound(`no outbox item ${id}`);
  if (before.state === 'sending' || before.state === 'sent') {
    throw conflict(`outbox item ${id} is ${before.state}; only a failed, dead or queued item can be retried`, { outbox_state: before.state });
  }
  const after = await requeueOutboxItem(tx, id);
  await sendOutboxJob(tx, queue, id);
  await writeAudit(tx, {
    entity: 'notification',
    entityId: id,
    action: 'retry',
    before: { state: before.state, attempts: before.attempts },
    after: { state: after.state, attempts: after.attempts },
    triggeredBy: actor.triggeredBy,
    requestId: actor.requestId,
  });
  return after;
}

/** One page of the outbox, newest first. */
export async function listOutbox(q: Queryable, filter: OutboxFilter, page: PageRequest): Promise<Page<OutboxItem>> {
  return listOutboxItems(q, filter, page);
}
