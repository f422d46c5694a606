/**
 * The outbox worker: works `outbox.send` jobs (and, every minute, the sweep) in this process.
 *
 * An attempt is two short statements around the delivery, never a transaction held open across the network (on
 * PGlite that would stall every other query): the row is claimed (`sending`, with a lease), the sender delivers, and
 * the outcome is recorded (`sent`; or `queued` again with the next attempt's time and its job, in one transaction;
 * or `failed` / `dead`). A worker that dies in between leaves the claim to expire; the row is then claimed again by
 * the job's retry or by the sweep and sent again. Delivery is therefore at-least-once: a crash after the server took
 * the mail and before the row says so sends it twice, both copies with the same Message-ID.
 */
import { QueueName, withLogContext, type Database, type JobQueue, type Logger, type MailerOptions } from '../../../adapter';
import { createMailSender, type MailSender } from './mail-sender';
import { OUTBOX_RETRY_DEFAULTS, retryDelaySeconds, sendOutboxJob, type OutboxJob, type OutboxRetryPolicy } from './outbox';
import { describeFailure, DeliveryError, type OutboxSender } from './sender';
import { claimOutboxItems, claimStaleOutboxItems, markOutboxFinal, markOutboxRetry, markOutboxSent, type OutboxChannel, type OutboxDelivery, type OutboxItem, type OutboxState } from './store';
import type { RenderContext } from './templates';

/** Every minute (UTC). */
export const OUTBOX_SWEEP_CRON = '* * * * *';

export interface OutboxWorkerDeps {
  db: Database;
  queue: JobQueue;
  logger: Logger;
  /** A link id as the URL a mail's button opens (the signed-link room gives it; rendered at send time). */
  linkUrl: (linkId: string) => string;
  /** The service's address as people reach it (mail footers). */
  publicUrl: string;
  /** Senders per channel; `mail` defaults to the SMTP sender over the `smtp` settings. A channel without one is retried. */
  senders?: Partial<Record<OutboxChannel, OutboxSender>>;
  /** Retry policy (defaults: OUTBOX_RETRY_DEFAULTS). */
  retry?: Partial<OutboxRetryPolicy> | undefined;
  /** How long a claim holds before another worker may take the row (s, default 300: above the transport's timeouts). */
  leaseSeconds?: number | undefined;
  /** Jobs per fetch (default 25); the rows of one fetch are delivered concurrently over the pooled transport. */
  batchSize?: number | undefined;
  /** Polling loops on `outbox.send` in this process (default 2): one fetches and records while the other delivers. */
  concurrency?: number | undefined;
  /** Seconds between polls of an idle loop (default 1: a mail leaves within about a second of its commit). */
  pollingIntervalSeconds?: number | undefined;
  /** A queued row overdue by this long has lost its job: the sweep takes it (s, default 60). */
  sweepGraceSeconds?: number | undefined;
  /** Options of the default mail sender's pooled transport. */
  mailer?: MailerOptions | undefined;
}

/** What one attempt did with a row. */
export interface OutboxAttempt {
  id: number;
  state: OutboxState;
  attempts: number;
  error?: string | undefined;
  nextAttemptAt?: Date | undefined;
}

export interface OutboxWorker {
  /** Works `outbox.send` in this process and schedules the sweep (one per minute across all processes). */
  register(): Promise<void>;
  /** Claims the rows of `ids` that are due and delivers them (what a job does); rows not due are left alone. */
  process(ids: readonly number[]): Promise<OutboxAttempt[]>;
  /** Claims and delivers rows no job will: overdue queued rows, and rows whose claim expired. Returns the attempts. */
  sweep(opts?: { limit?: number; graceSeconds?: number }): Promise<OutboxAttempt[]>;
  /** Stops this process's loops (after their current batch) and closes the default mail sender's connections. */
  stop(): Promise<void>;
}

/**
 * Records deliveries as they complete, group-commit style: the first is written at once; those that complete while a
 * write is in flight are written together by the next one. Under load the worker sends one statement per handful of
 * mails instead of one per mail, leaving the connections to the transactions that enqueue; idle, a mail is recorded
 * as soon as the server took it. The at-least-once window grows by at most one write.
 */
function createDeliveryRecorder(db: Database): (d: OutboxDelivery) => Promise<void> {
  let pending: { d: OutboxDelivery; resolve: () => void; reject: (e: unknown) => void }[] = [];
  let writing = false;
  const drain = async () => {
    writing = true;
    while (pending.length) {
      const batch = pending;
      pending = [];
      try {
        await markOutboxSent(db, batch.map((p) => p.d));
        for (const p of batch) p.resolve();
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
    writing = false;
  };
  return (d) =>
    new Promise<void>((resolve, reject) => {
      pending.push({ d, resolve, reject });
      if (!writing) void drain();
    });
}

/** The outbox worker of a process; `register` starts it. */
export function createOutboxWorker(deps: OutboxWorkerDeps): OutboxWorker {
  const policy: OutboxRetryPolicy = { ...OUTBOX_RETRY_DEFAULTS, ...deps.retry };
  const leaseSeconds = deps.leaseSeconds ?? 300;
  const batchSize = deps.batchSize ?? 25;
  const ctx: RenderContext = { linkUrl: deps.linkUrl, publicUrl: deps.publicUrl };
  let mail: MailSender | undefined;
  const senders: Partial<Record<OutboxChannel, OutboxSender>> = { ...deps.senders };
  if (!senders.mail) {
    mail = createMailSender({ db: deps.db, logger: deps.logger, mailer: deps.mailer });
    senders.mail = mail.send;
  }
  const workerIds: string[] = [];
  const recordDelivery = createDeliveryRecorder(deps.db);

  async function attempt(item: OutboxItem): Promise<OutboxAttempt> {
    const sender = senders[item.channel];
    let delivered: { response: string; messageId?: string };
    try {
      if (!sender) throw new DeliveryError('NO_SENDER', `no sender for channel '${item.channel}' in this process`, { retryable: true });
      delivered = await sender(item, ctx);
    } catch (e) {
      const f = describeFailure(e);
      const failure = { error: f.error, code: f.code, response: f.response };
      const log = { outboxId: item.id, channel: item.channel, template: item.template, attempts: item.attempts, code: f.code, error: f.error };
      if (!f.retryable || item.attempts >= policy.maxAttempts) {
        const state = f.retryable ? 'dead' : 'failed';
        await markOutboxFinal(deps.db, item.id, state, failure);
        deps.logger.error(`outbox item ${state}`, log);
        return { id: item.id, state, attempts: item.attempts, error: f.error };
      }
      // The row's next time and the job that comes back for it commit together: neither can exist without the other.
      const next = await deps.db.transaction(async (tx) => {
        const at = await markOutboxRetry(tx, item.id, failure, retryDelaySeconds(item.attempts, policy));
        if (at) await sendOutboxJob(tx, deps.queue, item.id, at);
        return at;
      });
      deps.logger.warn('outbox delivery failed; retrying', { ...log, next_attempt_at: next?.toISOString() });
      return { id: item.id, state: 'queued', attempts: item.attempts, error: f.error, nextAttemptAt: next };
    }
    // Outside the try: a database failure here is not a failed delivery (the server has the mail). The job fails,
    // the claim expires, and the row is sent again: the at-least-once case.
    await recordDelivery({ id: item.id, response: delivered.response, messageId: delivered.messageId ?? null });
    return { id: item.id, state: 'sent', attempts: item.attempts };
  }

  const deliver = (items: OutboxItem[]) => Promise.all(items.map((item) => attempt(item)));

  const worker: OutboxWorker = {
    async register() {
      for (let i = 0; i < (deps.concurrency ?? 2); i++) {
        let self = '';
        self = await deps.queue.work<OutboxJob>(
          QueueName.OUTBOX_SEND,
          async (jobs) =>
            withLogContext({ jobId: jobs[0]?.id ?? '' }, async () => {
              await worker.process(jobs.map((j) => Number(j.data.id)));
              // pg-boss waits out its polling interval even after a fetch that found jobs; there may be more, so
              // poll again at once and only rest when a fetch comes back empty.
              if (jobs.length > 0 && self) deps.queue.notifyWorker(self);
            }),
          { batchSize, pollingIntervalSeconds: deps.pollingIntervalSeconds ?? 1 },
        );
        workerIds.push(self);
      }
      await deps.queue.recurring(QueueName.OUTBOX_SWEEP, OUTBOX_SWEEP_CRON, () => worker.sweep());
    },
    async process(ids) {
      const valid = ids.filter((id) => Number.isSafeInteger(id) && id > 0);
      return deliver(await claimOutboxItems(deps.db, valid, leaseSeconds));
    },
    async sweep(opts = {}) {
      const claimed = await claimStaleOutboxItems(deps.db, {
        limit: opts.limit ?? 500,
        graceSeconds: opts.graceSeconds ?? deps.sweepGraceSeconds ?? 60,
        leaseSeconds,
      });
      if (claimed.length) deps.logger.warn('outbox sweep: rows without a live job claimed again', { ids: claimed.map((i) => i.id) });
      return deliver(claimed);
    },
    async stop() {
      for (const id of workerIds.splice(0)) await deps.queue.offWork(id);
      mail?.close();
    },
  };
  return worker;
}
