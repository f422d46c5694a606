// The scheduler: a tick every `tickMs` fires the due slots of every enabled schedule and starts buffered fires
// whose blocking run has finished. Any number of processes may run it against one database: each schedule is
// handled under its row lock (FOR UPDATE SKIP LOCKED, so processes never queue behind each other), and the
// unique (schedule_id, scheduled_for) of schedule_fires makes each cron slot fire at most once even if two
// processes get to the same slot one after the other.
import type { Database, Logger } from '../../adapter';
import { compileCron } from './cron';
import { fireSlot, planDue, runOptions, type RunStarter } from './schedules';
import * as store from './store';
import type { FireOutcome, Schedule } from './types';

export interface SchedulerOptions {
  db: Database;
  engine: RunStarter;
  logger: Logger;
  /** Between the end of one tick and the start of the next (ms). Default 30 000. */
  tickMs?: number;
  /** How late an on-time slot may be seen and still fire, besides a schedule's catch-up window (ms). Default max(60 000, 2 × tickMs). */
  lateToleranceMs?: number;
  /** Schedules handled per tick at most, per pass (ms-bounded ticks under a backlog). Default 100. */
  maxPerTick?: number;
  /** Fire history older than this is deleted, at most once an hour per process (days). Default 90. */
  historyRetentionDays?: number;
  /** The clock (tests inject one). */
  now?: () => Date;
}

export interface TickReport {
  started: number;
  skipped_overlap: number;
  buffered: number;
  missed: number;
  failed: number;
}

export interface Scheduler {
  /** One pass: promote released buffered fires, then fire every due schedule. Safe to call concurrently with other processes. */
  tick(): Promise<TickReport>;
  /** Starts ticking (the first tick right away). */
  start(): void;
  /** Stops ticking and waits for a tick in progress. */
  stop(): Promise<void>;
}

const emptyReport = (): TickReport => ({ started: 0, skipped_overlap: 0, buffered: 0, missed: 0, failed: 0 });

export function createScheduler(options: SchedulerOptions): Scheduler {
  const { db, engine, logger } = options;
  const tickMs = options.tickMs ?? 30_000;
  const lateToleranceMs = options.lateToleranceMs ?? Math.max(60_000, 2 * tickMs);
  const maxPerTick = options.maxPerTick ?? 100;
  const now = options.now ?? (() => new Date());
  const retentionMs = (options.historyRetentionDays ?? 90) * 86_400_000;
  let lastPrune = -Infinity;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> | null = null;
  let stopped = true;

  const count = (r: TickReport, o: FireOutcome, n = 1) => {
    r[o] += n;
  };

  /** Fires one due schedule; false when none is due (or all due ones are being handled by other processes). */
  async function fireOneDue(at: Date, report: TickReport): Promise<boolean> {
    let claimed: Schedule | null = null;
    try {
      return await db.transaction(async (tx) => {
        const s = await store.claimDueSchedule(tx, at);
        if (!s) return false;
        claimed = s;
        const plan = planDue(compileCron(s.cron, s.timeZone), new Date(s.nextFireAt as string), at, s.catchUpWindowSeconds * 1000, lateToleranceMs);
        for (const slot of plan.missed) {
          if ((await store.insertFire(tx, { scheduleId: s.id, scheduledFor: slot, trigger: 'cron', outcome: 'missed', firedAt: null })) !== null) count(report, 'missed');
        }
        if (plan.truncated) logger.warn('schedule missed more slots than are recorded', { schedule: s.name, since: s.nextFireAt });
        let firedAt: Date | null = null;
        if (plan.fire) {
          const fired = await fireSlot(tx, engine, s, plan.fire, 'cron', `system:schedule:${s.name}`, at);
          if (fired) {
            count(report, fired.outcome);
            if (fired.outcome === 'started') firedAt = at;
          }
        }
        await store.advanceSchedule(tx, s.id, plan.next, firedAt);
        return true;
      });
    } catch (e) {
      if (!claimed) throw e;
      // The engine refused the run (workflow deleted, concurrency limit `reject`) or the schedule cannot be
      // computed: record the slot as failed and move on, so it is not retried on every tick.
      await recordFailure(claimed, at, (e as Error).message, report);
      return true;
    }
  }

  async function recordFailure(s: Schedule, at: Date, message: string, report: TickReport): Promise<void> {
    logger.error('schedule fire failed', { schedule: s.name, error: message });
    await db.transaction(async (tx) => {
      const fresh = await store.selectSchedule(tx, s.id, true);
      // Someone else handled (or changed) it meanwhile: theirs stands.
      if (!fresh || fresh.nextFireAt !== s.nextFireAt || !fresh.enabled) return;
      let next: Date | null = null;
      try {
        const clock = compileCron(fresh.cron, fresh.timeZone);
        const plan = planDue(clock, new Date(fresh.nextFireAt as string), at, fresh.catchUpWindowSeconds * 1000, lateToleranceMs);
        for (const slot of plan.missed) await store.insertFire(tx, { scheduleId: s.id, scheduledFor: slot, trigger: 'cron', outcome: 'missed', firedAt: null });
        if (plan.fire && (await store.insertFire(tx, { scheduleId: s.id, scheduledFor: plan.fire, trigger: 'cron', outcome: 'failed', firedAt: null, error: message.slice(0, 1000) })) !== null) {
          count(report, 'failed');
        }
        next = plan.next;
      } catch (e) {
        // No next slot can be computed (e.g. the zone vanished from the runtime): stop the clock rather than spin.
        logger.error('schedule clock stopped', { schedule: s.name, error: (e as Error).message });
      }
      await store.advanceSchedule(tx, s.id, next, null);
    });
  }

  /** Starts one buffered fire whose schedule has no active run any more; false when there is none. */
  async function promoteOneBuffered(at: Date, report: TickReport): Promise<boolean> {
    let claimed: { schedule: Schedule; fireId: number } | null = null;
    try {
      return await db.transaction(async (tx) => {
        const c = await store.claimReleasedBuffer(tx);
        if (!c) return false;
        claimed = c;
        // Conditional: only the process that moves it out of `buffered` starts the run.
        if (!(await store.settleBufferedFire(tx, c.fireId, 'started', at, null))) return true;
        const run = await engine.startRun(tx, runOptions(c.schedule, `system:schedule:${c.schedule.name}`));
        await store.setFireRun(tx, c.fireId, run.id);
        await store.advanceSchedule(tx, c.schedule.id, c.schedule.nextFireAt === null ? null : new Date(c.schedule.nextFireAt), at);
        count(report, 'started');
        return true;
      });
    } catch (e) {
      const c = claimed as { schedule: Schedule; fireId: number } | null;
      if (!c) throw e;
      logger.error('buffered schedule fire failed', { schedule: c.schedule.name, error: (e as Error).message });
      const settled = await db.transaction((tx) => store.settleBufferedFire(tx, c.fireId, 'failed', at, (e as Error).message.slice(0, 1000)));
      if (settled) count(report, 'failed');
      return true;
    }
  }

  async function tick(): Promise<TickReport> {
    const report = emptyReport();
    const at = now();
    for (let i = 0; i < maxPerTick && (await promoteOneBuffered(at, report)); i++);
    for (let i = 0; i < maxPerTick && (await fireOneDue(at, report)); i++);
    if (at.getTime() - lastPrune >= 3_600_000) {
      lastPrune = at.getTime();
      const pruned = await store.pruneFires(db, new Date(at.getTime() - retentionMs));
      if (pruned > 0) logger.info('schedule history pruned', { fires: pruned });
    }
    if (report.started + report.skipped_overlap + report.buffered + report.missed + report.failed > 0) logger.info('schedules fired', { ...report });
    return report;
  }

  function loop(): void {
    if (stopped) return;
    running = tick()
      .catch((e: unknown) => logger.error('scheduler tick failed', { error: (e as Error).message }))
      .finally(() => {
        running = null;
        if (!stopped) timer = setTimeout(loop, tickMs);
      });
  }

  return {
    tick,
    start() {
      if (!stopped) return;
      stopped = false;
      timer = setTimeout(loop, 0);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      if (running) await running;
    },
  };
}

/** Creates a scheduler and starts ticking: what `serve()` calls once a workflow engine exists. */
export function startScheduler(options: SchedulerOptions): Scheduler {
  const s = createScheduler(options);
  s.start();
  return s;
}
