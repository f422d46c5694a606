import type { Server } from 'node:http';
import { createJobQueue, createLogger, migrate, openDatabase, projectPath, type Database, type JobQueue, type Logger } from '../adapter';
import { buildApp } from './app';
import type { Config } from './config';
import { ensureAdminKey } from './domain/admin-key';
import { registerTokenPurge } from './domain/api-tokens';
import { loadDemoData } from './domain/demo';
import { loadIntegrationModelFiles } from './domain/integration-models';
import { registerIntegrationHealthChecks } from './domain/integration-runtime';
import { registerLeaverWorker } from './domain/leaver';

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
  await loadIntegrationModelFiles(rt.db, rt.logger, projectPath('openapi', 'integrations'));
  await registerIntegrationHealthChecks(rt.queue, rt.db, rt.logger);
  // Leaver events recorded with a future effective_at run when their delayed job comes due.
  await registerLeaverWorker(rt);
  const app = buildApp({ ...rt, adminKeyHash: async () => adminKey.hash }, config);
  const server = app.listen(config.port, config.host, () => {
    rt.logger.info('listening', { url: `http://${config.host}:${config.port}`, docs: `http://${config.host}:${config.port}/docs`, database: rt.db.kind });
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    rt.logger.info('shutting down', { signal });
    const force = setTimeout(() => process.exit(1), config.shutdownTimeoutMs).unref();
    // Stop accepting connections; in-flight requests finish, idle keep-alive sockets close.
    server.close(async () => {
      await rt.queue.stop({ graceful: true, timeoutMs: config.shutdownTimeoutMs });
      await rt.db.close();
      clearTimeout(force);
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  return server;
}
