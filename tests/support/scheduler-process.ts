// A scheduler process for the at-most-once test: a scheduler (with its own pool, queue and engine, no workers)
// against SCHEDULER_DATABASE_URL whose clock steps through SCHEDULER_CLOCKS (comma-separated ISO instants),
// ticking TICKS_PER_CLOCK times at each. It starts at START_AT (ms since epoch) so that two processes race, and
// prints its summed TickReport as one JSON line. Run: node --import tsx <this file>.
import { createJobQueue, createLogger, createPostgresDatabase } from '../../adapter';
import { createWorkflowEngine } from '../../workflows/engine';
import { createScheduler, type TickReport } from '../../workflows/schedules';

async function main(): Promise<void> {
  const url = process.env['SCHEDULER_DATABASE_URL'];
  const clocks = (process.env['SCHEDULER_CLOCKS'] ?? '').split(',').filter(Boolean).map((s) => new Date(s));
  if (!url || clocks.length === 0) throw new Error('SCHEDULER_DATABASE_URL and SCHEDULER_CLOCKS are required');
  const ticks = Number(process.env['TICKS_PER_CLOCK'] ?? '3');
  const db = createPostgresDatabase({ connectionString: url, max: 4 });
  const logger = createLogger({ silent: true });
  const queue = createJobQueue(db, { logger, schedule: false });
  await queue.start();
  const engine = createWorkflowEngine({ db, queue, logger, executors: {} });
  let now = clocks[0] as Date;
  const scheduler = createScheduler({ db, engine, logger, lateToleranceMs: 60_000, now: () => now });
  const total: TickReport = { started: 0, skipped_overlap: 0, buffered: 0, missed: 0, failed: 0 };
  const wait = Number(process.env['START_AT'] ?? '0') - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  for (const c of clocks) {
    now = c;
    for (let i = 0; i < ticks; i++) {
      const r = await scheduler.tick();
      for (const k of Object.keys(total) as (keyof TickReport)[]) total[k] += r[k];
    }
  }
  process.stdout.write(`${JSON.stringify(total)}\n`);
  await queue.stop({ graceful: false, timeoutMs: 1000 });
  await db.close();
}

main().catch((e: unknown) => {
  process.stderr.write(`scheduler process failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
