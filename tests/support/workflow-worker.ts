// A workflow worker process for the crash-resume test: the engine's workers against WORKER_DATABASE_URL, with a
// fake `integration` executor that appends "<step> <attempt> <pid>" to CALL_LOG for each call and, for the step
// named by BLOCK_STEP, never returns (the test SIGKILLs the process there). Run: node --import tsx <this file>.
import { appendFileSync } from 'node:fs';
import { createJobQueue, createLogger, createPostgresDatabase } from '../../adapter';
import { createWorkflowEngine } from '../../workflows/engine';

async function main(): Promise<void> {
  const url = process.env['WORKER_DATABASE_URL'];
  const log = process.env['CALL_LOG'];
  if (!url || !log) throw new Error('WORKER_DATABASE_URL and CALL_LOG are required');
  const block = process.env['BLOCK_STEP'] ?? '';
  const db = createPostgresDatabase({ connectionString: url, max: 5 });
  const logger = createLogger({ silent: true });
  const queue = createJobQueue(db, { logger, schedule: false });
  await queue.start();
  const engine = createWorkflowEngine({
    db,
    queue,
    logger,
    executors: {
      integration: async (_task, input, ctx) => {
        appendFileSync(log, `${ctx.stepId} ${ctx.attempt} ${process.pid}\n`);
        if (ctx.stepId === block) await new Promise(() => undefined);
        return { ok: true, output: { ok: true, status: 200, body: input['body'] ?? null } };
      },
    },
    config: { pollingIntervalSeconds: 0.5, leaseMs: 1500, sweepIntervalMs: 300 },
  });
  await engine.startWorkers({ teamSize: 2 });
  const shutdown = async () => {
    await engine.stop();
    await queue.stop({ graceful: false, timeoutMs: 1000 });
    await db.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
}

main().catch((e: unknown) => {
  process.stderr.write(`workflow worker failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
