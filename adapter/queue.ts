import PgBoss from 'pg-boss';
import type { Database, Queryable } from './db';
import type { Logger } from './log';

/** Queues the service sends to; the workflow engine is their consumer. */
export const QueueName = {
  ORDER_PROVISION: 'order.provision',
  ORDER_DEPROVISION: 'order.deprovision',
  /** An order's end: sent with `startAfter` = its `requested_until`; the order is returned then (server/domain/orders/lifecycle.ts). */
  ORDER_EXPIRE: 'order.expire',
  /**
   * A pending approval's clock: one job per step (remind, escalate, expire), each sent with `startAfter` by the step
   * before it (server/domain/approvals/reminders.ts).
   */
  APPROVAL_TIMER: 'approval.timer',
  /** Hourly: orders whose type's `expiry_warning_days` window has begun are warned once per `requested_until`. */
  ORDER_EXPIRY_WARNING: 'order-expiry-warning-hourly',
  API_TOKEN_PURGE: 'api-token-purge-daily',
  /** Daily: SCIM request log entries past their retention are deleted. */
  SCIM_LOG_PURGE: 'scim-log-purge-daily',
  /** Every minute: integrations whose health check interval has passed are checked. */
  INTEGRATION_HEALTH: 'integration-health-minutely',
  /** One job per workflow step attempt (workflows/engine). */
  WORKFLOW_STEP: 'workflow.step',
  /** A leaver event whose `effective_at` was in the future, sent with `startAfter` for that moment. */
  LEAVER_EFFECTIVE: 'leaver.effective',
  /** One job per outbox row attempt (a mail, a Teams card), sent with the row and with each retry (server/domain/notifications). */
  OUTBOX_SEND: 'outbox.send',
  /** Every minute: outbox rows whose job went missing or whose worker died mid-send are claimed again. */
  OUTBOX_SWEEP: 'outbox-sweep-minutely',
  /** Hourly: the Microsoft Graph subscription on users (leaver webhook) is created, renewed before expiry, or re-created. */
  GRAPH_SUBSCRIPTION: 'graph-subscription-hourly',
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];

/** A job as a worker or `fetch` receives it. */
export interface Job<T = object> {
  readonly id: string;
  readonly name: string;
  readonly data: T;
}

export type JobState = 'created' | 'retry' | 'active' | 'completed' | 'cancelled' | 'failed';

/** A job looked up by id: its state and, once completed, the output its worker returned. */
export interface JobRecord<T = object> extends Job<T> {
  readonly state: JobState;
  readonly output: unknown;
}

export interface SendOptions {
  /** A UUID chosen by the caller, so the row that asks for the job can carry its id from its own INSERT. */
  id?: string;
  /** Not before this moment (compared with the database clock). */
  startAfter?: Date;
  /** Retries after a failure or expiry; the queue's policy when unset. */
  retryLimit?: number;
  /** Seconds between retries. */
  retryDelaySeconds?: number;
  /** Seconds an active job may run before it expires (and is retried while retries remain). */
  expireInSeconds?: number;
}

/** A queue's policy; unset fields take pg-boss's defaults. */
export interface QueueOptions {
  policy?: 'standard' | 'short' | 'singleton' | 'stately';
  retryLimit?: number;
  retryDelaySeconds?: number;
  retryBackoff?: boolean;
  expireInSeconds?: number;
  retentionMinutes?: number;
  /** The queue failed jobs move to. */
  deadLetter?: string;
}

export interface WorkOptions {
  /** Jobs handed to one call of the handler (default 1). */
  batchSize?: number;
  /** Seconds between polls of an idle worker (pg-boss's minimum is 0.5; default 2). */
  pollingIntervalSeconds?: number;
}

/**
 * Works a batch of jobs. What it returns is the output the jobs are completed with (an object; see `getJobById`);
 * when it throws, the batch fails and is retried as the queue's policy says.
 */
export type WorkHandler<T> = (jobs: Job<T>[]) => Promise<object | void>;

export interface QueueSchedule {
  readonly name: string;
  readonly cron: string;
  /** IANA time zone the cron is read in. */
  readonly tz: string;
}

/**
 * The job queue every room uses (pg-boss on our own database). Queue names are those of `QueueName` or ones a caller
 * created with `createQueue` (a gateway cluster's `integration.call.<id>`); sending to a queue that does not exist
 * is refused. Methods that take `tx` run on that connection, so the job's fate commits or rolls back with it.
 */
export interface JobQueue {
  start(): Promise<void>;
  stop(opts?: { graceful?: boolean; timeoutMs?: number }): Promise<void>;
  /** Creates the queue when it does not exist (idempotent); an existing queue keeps its policy. */
  createQueue(queue: string, opts?: QueueOptions): Promise<void>;
  /**
   * Enqueues a job inside the caller's transaction (or on the database itself), so the job exists exactly when the
   * row that asked for it commits. Returns the job id: `opts.id` when given, else one pg-boss generates.
   * @throws Error when the queue refuses the job (no such queue).
   */
  send(tx: Queryable, queue: string, data: object, opts?: SendOptions): Promise<string>;
  /** Enqueues many jobs in one statement (no ids returned). */
  sendMany(queue: string, data: readonly object[]): Promise<void>;
  /**
   * Polls `queue` in this process and hands each batch to `handler`, completing the batch with what it returns.
   * Returns the worker's id (for `notifyWorker` and `offWork`).
   */
  work<T = object>(queue: string, handler: WorkHandler<T>, opts?: WorkOptions): Promise<string>;
  /** Makes an idle worker poll now instead of at its next interval. */
  notifyWorker(workerId: string): void;
  /**
   * Makes every worker of `queue` in this process poll now: for a job this process has just committed (a worker
   * otherwise waits out its polling interval after every fetch, found jobs or not). Other processes still poll.
   */
  wake(queue: string): void;
  /** Stops one worker (after its current batch). */
  offWork(workerId: string): Promise<void>;
  /** Takes up to `batchSize` (default 1) jobs on `tx`: they are active when it commits, still queued when it rolls back. */
  fetch<T = object>(tx: Queryable, queue: string, opts?: { batchSize?: number }): Promise<Job<T>[]>;
  /** Completes a fetched job on `tx`, with `output` when given. */
  complete(tx: Queryable, queue: string, jobId: string, output?: object): Promise<void>;
  /** The job with its state and output; null when it does not exist (deleted, or archived by maintenance). */
  getJobById<T = object>(queue: string, jobId: string): Promise<JobRecord<T> | null>;
  deleteJob(queue: string, jobId: string): Promise<void>;
  /**
   * Sends a job with `data` to `queue` on `cron` (in `tz`, UTC by default). pg-boss keeps one schedule per queue name
   * across all processes, so scheduling again replaces it.
   */
  schedule(queue: string, cron: string, data?: object, opts?: { tz?: string }): Promise<void>;
  unschedule(queue: string): Promise<void>;
  getSchedules(): Promise<QueueSchedule[]>;
  /**
   * Runs `work` on `cron` (in `tz`, UTC by default) across all processes: pg-boss keeps one schedule per queue name,
   * so every process may register it (a restart, a second process); each cron job is worked by one of them.
   */
  recurring(queue: QueueName, cron: string, work: () => Promise<unknown>, opts?: { tz?: string }): Promise<void>;
}

/**
 * pg-boss 10's fetch (`fetchNextJob` in pg-boss/src/plans.js, without metadata) with one change: it takes the jobs
 * due first (`ORDER BY start_after`) instead of `ORDER BY priority DESC, created_on, id`. pg-boss's own fetch index
 * (`job_i5`: name, start_after, partial on state < active) yields that order, so the scan stops at the first
 * unlocked due job; pg-boss's order is not an index order, so its fetch read and sorted every queued job of the
 * queue (1,000 queued: 31 buffers, 1.5 ms; this shape: 3 buffers, 0.03 ms), with or without statistics. No index
 * is added: our migrations run before pg-boss installs its tables on a fresh database. What is lost: priorities
 * (this adapter never sets one, so every job has 0) and creation order among delayed jobs (a job now runs in the
 * order it became due, which is creation order for undelayed ones). The rest (singleton and stately batches, the
 * retry count, the columns returned) is pg-boss's text, verbatim; `queue-fetch.test.ts` checks it still matches pg-boss's.
 */
export const FETCH_SQL = `
    WITH next as (
      SELECT id, singleton_key, policy
      FROM pgboss.job
      WHERE name = $1
        AND state < 'active'
        AND start_after < now()
      ORDER BY start_after
      LIMIT $2
      FOR UPDATE SKIP LOCKED
    ), grouped as (
      SELECT
        n.id,
        n.policy as grouped_policy,
        row_number() OVER (
          PARTITION BY CASE
            WHEN $2 > 1 AND n.policy in ('singleton', 'stately') THEN n.singleton_key -- gate singleton/stately by key per batch
            ELSE n.id::text
          END
        ) as row_number
      FROM next n
    )
    UPDATE pgboss.job j SET
      state = 'active',
      started_on = now(),
      retry_count = CASE WHEN started_on IS NOT NULL THEN retry_count + 1 ELSE retry_count END
    FROM grouped
    WHERE name = $1 AND j.id = grouped.id
      AND (
        (grouped.grouped_policy IN ('singleton', 'stately') AND grouped.row_number = 1) -- only one per singleton key
        OR COALESCE(grouped.grouped_policy, '') NOT IN ('singleton', 'stately') -- other policies unaffected
      )
    RETURNING j.id, name, data, EXTRACT(epoch FROM expire_in) as "expireInSeconds"
  `;

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
  const toJob = <T>(j: PgBoss.Job<T>): Job<T> => ({ id: j.id, name: j.name, data: j.data });
  // This process's workers by queue, for `wake`.
  const localWorkers = new Map<string, Set<string>>();
  const workersOf = (queue: string): Set<string> => {
    let ids = localWorkers.get(queue);
    if (!ids) localWorkers.set(queue, (ids = new Set()));
    return ids;
  };
  return {
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
    async createQueue(queue, o = {}) {
      await boss.createQueue(queue, {
        name: queue,
        ...(o.policy !== undefined ? { policy: o.policy } : {}),
        ...(o.retryLimit !== undefined ? { retryLimit: o.retryLimit } : {}),
        ...(o.retryDelaySeconds !== undefined ? { retryDelay: o.retryDelaySeconds } : {}),
        ...(o.retryBackoff !== undefined ? { retryBackoff: o.retryBackoff } : {}),
        ...(o.expireInSeconds !== undefined ? { expireInSeconds: o.expireInSeconds } : {}),
        ...(o.retentionMinutes !== undefined ? { retentionMinutes: o.retentionMinutes } : {}),
        ...(o.deadLetter !== undefined ? { deadLetter: o.deadLetter } : {}),
      });
    },
    async send(tx, queue, data, o = {}) {
      const id = await boss.send(queue, data, {
        db: executorFor(tx),
        ...(o.id !== undefined ? { id: o.id } : {}),
        ...(o.startAfter !== undefined ? { startAfter: o.startAfter } : {}),
        ...(o.retryLimit !== undefined ? { retryLimit: o.retryLimit } : {}),
        ...(o.retryDelaySeconds !== undefined ? { retryDelay: o.retryDelaySeconds } : {}),
        ...(o.expireInSeconds !== undefined ? { expireInSeconds: o.expireInSeconds } : {}),
      });
      if (!id) throw new Error(`queue ${queue} refused the job`);
      return id;
    },
    async sendMany(queue, data) {
      await boss.insert(data.map((d) => ({ name: queue, data: d })));
    },
    async work<T>(queue: string, handler: WorkHandler<T>, o: WorkOptions = {}) {
      const id = await boss.work<T>(queue, { batchSize: o.batchSize ?? 1, ...(o.pollingIntervalSeconds !== undefined ? { pollingIntervalSeconds: o.pollingIntervalSeconds } : {}) }, async (jobs) =>
        handler(jobs.map((j) => toJob(j))),
      );
      workersOf(queue).add(id);
      return id;
    },
    notifyWorker(workerId) {
      boss.notifyWorker(workerId);
    },
    wake(queue) {
      for (const id of localWorkers.get(queue) ?? []) boss.notifyWorker(id);
    },
    async offWork(workerId) {
      for (const ids of localWorkers.values()) ids.delete(workerId);
      await boss.offWork({ id: workerId });
    },
    async fetch<T>(tx: Queryable, queue: string, o: { batchSize?: number } = {}) {
      const batchSize = o.batchSize ?? 1;
      if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`fetch batchSize must be a positive integer, got ${String(batchSize)}`);
      const { rows } = await tx.query<{ id: string; name: string; data: T }>(FETCH_SQL, [queue, batchSize]);
      return rows.map((j) => ({ id: j.id, name: j.name, data: j.data }));
    },
    async complete(tx, queue, jobId, output) {
      // pg-boss takes the output third and the connection fourth (whatever its overloads suggest for three).
      await boss.complete(queue, jobId, output ?? {}, { db: executorFor(tx) });
    },
    async getJobById<T>(queue: string, jobId: string) {
      const j = await boss.getJobById<T>(queue, jobId);
      return j ? { id: j.id, name: j.name, data: j.data, state: j.state, output: j.output } : null;
    },
    async deleteJob(queue, jobId) {
      await boss.deleteJob(queue, jobId);
    },
    async schedule(queue, cron, data = {}, o = {}) {
      await boss.schedule(queue, cron, data, { tz: o.tz ?? 'UTC' });
    },
    async unschedule(queue) {
      await boss.unschedule(queue);
    },
    async getSchedules() {
      // pg-boss types a schedule as what was passed in, but returns its table's rows, which hold the zone as `timezone`.
      const rows = (await boss.getSchedules()) as unknown as { name: string; cron: string; timezone?: string | null }[];
      return rows.map((r) => ({ name: r.name, cron: r.cron, tz: r.timezone ?? 'UTC' }));
    },
    async recurring(queue, cron, work, o = {}) {
      await boss.schedule(queue, cron, {}, { tz: o.tz ?? 'UTC' });
      await boss.work(queue, async () => {
        await work();
      });
    },
  };
}
