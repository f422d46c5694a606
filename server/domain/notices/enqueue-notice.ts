import { CodedError, writeAudit, type JobQueue, type Queryable } from '../../../adapter';
import { ErrorCode } from '../../errors';
import { enqueueMail, type MailTemplate, type MailTemplateData, type NotificationActor } from '../notifications';

/**
 * Queues a notice (a mail that tells someone something) in the caller's transaction, like `enqueueMail`, except that
 * a mail the outbox refuses (an address from the directory or an order that is not a plain address, a value that
 * would break a header) does not fail the change it reports: a decision, an expiry, a leaver's take-backs, a health
 * check must not be undone because their notice cannot be sent. The refusal is audited on `subject` instead
 * (`notice_refused`, with the template and why). The outbox validates before it writes anything, so the transaction
 * is intact after a refusal.
 * Returns the outbox row's id, or undefined when refused.
 */
export async function enqueueNotice<T extends MailTemplate>(
  tx: Queryable,
  queue: JobQueue,
  mail: { template: T; to: readonly string[]; cc?: readonly string[]; data: MailTemplateData[T] },
  actor: NotificationActor,
  subject: { entity: string; entityId: number | string },
): Promise<number | undefined> {
  try {
    return (await enqueueMail(tx, queue, mail, actor)).id;
  } catch (e) {
    if (!(e instanceof CodedError) || e.code !== ErrorCode.VALIDATION_FAILED) throw e;
    await writeAudit(tx, {
      entity: subject.entity,
      entityId: subject.entityId,
      action: 'notice_refused',
      after: { template: mail.template, to: mail.to, error: e.message },
      triggeredBy: actor.triggeredBy,
      requestId: actor.requestId,
    });
    return undefined;
  }
}
