import PgBoss from 'pg-boss';
import type { Database, Queryable } from './db';
import type { Logger } from './log';

/** Queues the service sends to; the workflow engine is their consumer. */
export const QueueName = {
  ORDER_PROVISION: 'order.provision',
  ORDER_DEPROVISION: 'order.deprovision',
  API_TOKEN_PURGE: 'api-token-purge-daily',
  /** Daily: SCIM request log entries past their retention are deleted. */
  SCIM_LOG_PURGE: 'scim-log-purge-daily',
  /** Every minute: integrations whose health check interval has passed are checked. */
  INTEGRATION_HEALTH: 'integration-health-minutely',
  /** One job per workflow step attempt (workflows/engine). */
  WORKFLOW_STEP: 'workflow.step',
  /** A leaver event whose `effective_at` was in the future, sent with `startAfter` for that moment. */
  LEAVER_EFFECTIVE: 'leaver.effective',
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];

export interface JobQueue {
  readonly boss: PgBoss;
  start(): Promise<void>;
  stop(opts?: { graceful?: boolean; timeoutMs?: number }): Promise<void>;
  /**
   * Enqueues a job inside the caller's transaction, so the job exists exactly when the row that
   * asked for it commits. Returns the job id: `opts.id` when given (a UUID chosen by the caller, so the row
   * that asks for the job can carry its id from its own INSERT), else one pg-boss generates.
   */
  send(tx: Queryable, queue: QueueName, data: object, opts?: { id?: string; startAfter?: Date }): Promise<string>;
  /**
   * Runs `work` on `cron` (in `tz`, UTC by default) across all processes: pg-boss keeps one schedule per queue name,
   * so every process may register it (a restart, a second process); each cron job is worked by one of them.
   */
  recurring(queue: QueueName, cron: string, work: () => Promise<void>, opts?: { tz?: string }): Promise<void>;
}

/** pg-boss's executor shape over one of our connections or transactions. */
function executorFor(q: Queryable): { executeSql(text: string, values: unknown[]): Promise<{ rows: unknown[] }> } {
  return { executeSql: (text, values) => q.query(text, values) };
}

export interface JobQueueOptions {
  logger: Logger;
  /** Run pg-boss's cron scheduler and maintenance in this process. */
  schedule?: boolean;
}

/** pg-boss on our own database connection (PostgreSQL or PGlite), schema `pgboss`. */
export function createJobQueue(db: Database, opts: JobQueueOptions): JobQueue {
  const boss = new PgBoss({
    db: executorFor(db),
    schema: 'pgboss',
    schedule: opts.schedule ?? true,
    supervise: opts.schedule ?? true,
  });
  // pg-boss reports background errors as events; unobserved they would crash the process.
  boss.on('error', (err) => opts.logger.error('queue error', { err: err.message }));
  let started = false;
  return {
    boss,
    async start() {
      if (started) return;
      await boss.start();
      for (const name of Object.values(QueueName)) {
        await boss.createQueue(name);
      }
      started = true;
    },
    async stop(o = {}) {
      if (!started) return;
      started = false;
      await boss.stop({ graceful: o.graceful ?? true, timeout: o.timeoutMs ?? 10_000, wait: true, close: false });
    },
    async recurring(queue, cron, work, o = {}) {
      await boss.schedule(queue, cron, {}, { tz: o.tz ?? 'UTC' });
      await boss.work(queue, async () => {
        await work();
      });
    },
    async send(tx, queue, data, opts = {}) {
      const id = await boss.send(queue, data, {
        db: executorFor(tx),
        ...(opts.id ? { id: opts.id } : {}),
        ...(opts.startAfter ? { startAfter: opts.startAfter } : {}),
      });
      if (!id) throw new Error(`queue ${queue} refused the job`);
      return id;
    },
  };
}
