import type { Server } from 'node:http';
import { createJobQueue, createLogger, migrate, openDatabase, projectPath, type Database, type JobQueue, type Logger } from '../adapter';
import { buildApp } from './app';
import type { Config } from './config';
import { ensureAdminKey } from './domain/tokens/admin-key';
import { closeServer, exitOnSignal } from './shutdown';
import { registerTokenPurge } from './domain/tokens/api-tokens';
import { registerScimLogPurge } from './scim/log';
import { loadDemoData } from './domain/catalogue/demo';
import { loadIntegrationModelFiles } from '../integration-model/runtime/integration-models';
import { registerClusterWorker, registerIntegrationHealthChecks } from '../integration-model/runtime/integration-runtime';
import { registerLeaverWorker } from './domain/identity/leaver';
import { supersedeApprovalsHook } from './domain/approvals/approvals';
import { createWorkflowRuntime, loadSampleWorkflows, type WorkflowRuntime } from './domain/runbooks/workflow-runtime';
import { startScheduler } from '../workflows/schedules';

export interface Runtime {
  db: Database;
  queue: JobQueue;
  logger: Logger;
}

/** Opens the database named by the config and applies pending migrations. */
export async function openRuntime(config: Readonly<Config>, opts: { schedule?: boolean } = {}): Promise<Runtime> {
  const logger = createLogger({ level: config.logLevel });
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const applied = await migrate(db);
  if (applied.length) logger.info('migrations applied', { versions: applied });
  const queue = createJobQueue(db, { logger, schedule: opts.schedule ?? true });
  await queue.start();
  return { db, queue, logger };
}

/** `provisio serve`: the HTTP API with the queue, until SIGTERM or SIGINT. */
export async function serve(config: Readonly<Config>): Promise<Server> {
  const rt = await openRuntime(config);
  const adminKey = await ensureAdminKey(rt.db, config.adminKey);
  if (adminKey.generated) {
    // Printed once, on the first start only; only its hash is kept.
    process.stdout.write(`\nGenerated admin key (shown once, store it now): ${adminKey.generated}\n\n`);
  }
  if (config.demo) {
    await loadDemoData(rt.db, rt.logger);
  }
  await registerTokenPurge(rt.queue, rt.db, rt.logger);
  await registerScimLogPurge(rt.queue, rt.db, rt.logger);
  await loadIntegrationModelFiles(rt.db, rt.logger, projectPath('openapi', 'integrations'));
  await registerIntegrationHealthChecks(rt.queue, rt.db, rt.logger);
  // Leaver events recorded with a future effective_at run when their delayed job comes due.
  // No requester directory is wired into serve() yet, so superseded approvals go to the fallback approver.
  await registerLeaverWorker({ ...rt, approverHooks: [supersedeApprovalsHook(undefined)] });
  // One engine per process; its step workers and the order consumers run here (the embedded default).
  const workflows = createWorkflowRuntime(rt);
  if (config.demo) await loadSampleWorkflows(workflows.engine, projectPath('workflows', 'definitions'), rt.logger);
  await workflows.startWorkers();
  // Cron schedules: every serving process ticks; each slot is claimed in the database, so it fires at most once.
  const scheduler = startScheduler({ db: rt.db, engine: workflows.engine, logger: rt.logger });
  const app = buildApp({ ...rt, workflowEngine: workflows.engine, adminKeyHash: async () => adminKey.hash }, config);
  const server = app.listen(config.port, config.host, () => {
    rt.logger.info('listening', { url: `http://${config.host}:${config.port}`, docs: `http://${config.host}:${config.port}/docs`, database: rt.db.kind });
  });

  exitOnSignal(rt.logger, config.shutdownTimeoutMs, async () => {
    // In-flight requests finish first; then no new schedule fires, steps in flight finish, the queue stops.
    await closeServer(server);
    await scheduler.stop();
    await workflows.stop();
    await rt.queue.stop({ graceful: true, timeoutMs: config.shutdownTimeoutMs });
    await rt.db.close();
  });
  return server;
}

/**
 * `provisio worker`: the workflow engine's step workers and the order consumers, without HTTP, until SIGTERM or
 * SIGINT. Run several against one PostgreSQL to scale out. With `cluster`, it also executes the integration calls
 * routed to that gateway cluster (queue `integration.call.<cluster>`).
 */
export async function runWorker(config: Readonly<Config>, opts: { cluster?: string } = {}): Promise<WorkflowRuntime> {
  const rt = await openRuntime(config);
  const workflows = createWorkflowRuntime(rt);
  await workflows.startWorkers();
  if (opts.cluster !== undefined) await registerClusterWorker({ ...rt, cluster: opts.cluster });
  rt.logger.info('worker started', { database: rt.db.kind, ...(opts.cluster !== undefined ? { cluster: opts.cluster } : {}) });
  exitOnSignal(rt.logger, config.shutdownTimeoutMs, async () => {
    await workflows.stop();
    await rt.queue.stop({ graceful: true, timeoutMs: config.shutdownTimeoutMs });
    await rt.db.close();
  });
  return workflows;
}
