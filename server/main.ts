import type { Server } from 'node:http';
import {
  configureSecretResolver,
  createJobQueue,
  createLogger,
  migrate,
  openDatabase,
  projectPath,
  setMetricsRecording,
  startTracing,
  stopTracing,
  tracingOptionsFromEnv,
  type Database,
  type JobQueue,
  type Logger,
  type MasterKeySource,
  type OpenDatabaseOptions,
} from '../adapter';
import { listenForMetrics } from './http/metrics-listener';
import { buildApp } from './app';
import type { Config } from './config';
import { ensureAdminKey } from './domain/tokens/admin-key';
import { startSecretsAtRest } from './domain/secrets';
import { closeServer, exitOnSignal } from './shutdown';
import { registerTokenPurge } from './domain/tokens/api-tokens';
import { registerScimLogPurge, ScimRequestLog } from './scim/log';
import { VerifiedTokenCache } from './auth/token-cache';
import { loadDemoData } from './domain/catalogue/demo';
import {
  createIntegrationRuntime,
  loadIntegrationModelFiles,
  registerClusterWorker,
  registerIntegrationHealthChecks,
  type IntegrationRuntime,
} from '../integration-model';
import { registerLeaverWorker, type LeaverDeps } from './domain/identity/leaver';
import { createLeaverDeps } from './domain/identity/leaver-service';
import { adRequesterDirectory, createDirectoryProvider, type DirectoryProvider, type RequesterDirectory } from './domain/identity/requester-directory';
import { createWorkflowRuntime, loadSampleWorkflows, SAMPLE_WORKFLOWS_DIR, type WorkflowRuntime } from './domain/runbooks/workflow-runtime';
import { createDemoDirectory } from './domain/identity/demo-directory';
import { startScheduler } from '../workflows';
import { createOutboxWorker, createTeamsSender } from './domain/notifications';
import { integrationHealthAlert } from './domain/notices';
import { registerExpiryWarnings } from './domain/orders/expiry-warnings';
import { registerGraphSubscriptionKeeper } from './domain/identity/graph-subscription';
import { registerApprovalClockWorkers } from './domain/approvals/reminders';
import { createLinkSigner, loadLinkKey } from './domain/approvals/link-signer';

/** Where a process's master key for secrets at rest comes from (SECRETS_KEY, SECRETS_KEY_FILE, DATA_DIR/secrets.key). */
export function secretsKeySource(config: Readonly<Config>): MasterKeySource {
  return { envKey: config.secretsKey, keyFile: config.secretsKeyFile, dataDir: config.dataDir };
}

export interface Runtime {
  db: Database;
  queue: JobQueue;
  logger: Logger;
  /** The process's one integration runtime: routes, the workflow engine, health checks and cluster calls share it. */
  integrations: IntegrationRuntime;
}

/** How a command shares the embedded database with the other processes of the machine (see openDatabase). */
export type EmbeddedAccess = Pick<OpenDatabaseOptions, 'command' | 'serveToOthers' | 'connectToHolder'>;

/**
 * Opens the database named by the config and applies pending migrations. On the embedded database the process holds
 * DATA_DIR or works through its holder's socket, as `embedded` says; throws EmbeddedDatabaseLockedError otherwise.
 */
export async function openRuntime(config: Readonly<Config>, opts: { schedule?: boolean; embedded?: EmbeddedAccess } = {}): Promise<Runtime> {
  const logger = createLogger({ level: config.logLevel });
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, pgliteSharedBuffers: config.pgliteSharedBuffers, ...opts.embedded, logger });
  const applied = await migrate(db);
  if (applied.length) logger.info('migrations applied', { versions: applied });
  // The master key is checked against the stored data keys before anything reads or writes a secret: a wrong key
  // stops the start here, with nothing changed.
  await startSecretsAtRest(db, secretsKeySource(config), logger).catch(async (e: unknown) => {
    await db.close();
    throw e;
  });
  // Secret backend requests (vault://…, azurekv://… references) log through the process's logger, secrets redacted.
  configureSecretResolver({ logger });
  const queue = createJobQueue(db, { logger, schedule: opts.schedule ?? true });
  await queue.start();
  // A health check that finds an integration worse than before mails `alerts.recipients` (notices/health-alert.ts).
  return { db, queue, logger, integrations: createIntegrationRuntime({ db, queue, logger, onHealthWorsened: integrationHealthAlert(queue) }) };
}

/** The long-lived services of a process beside the runtime: built once, handed to the app and the workers. */
export interface Services {
  /** The `active_directory` directory, opened on first use; directory tasks and the requester directory share it. */
  directories: DirectoryProvider;
  /** Requester snapshots and managers from the directory (unknown while it is not configured or not reachable). */
  requesterDirectory: RequesterDirectory;
  /** The one leaver dependency set: the HR and SCIM edges and the `leaver.effective` worker take people back with it. */
  leaver: LeaverDeps;
  /** The one workflow engine, bound to the order domain. */
  workflows: WorkflowRuntime;
}

/**
 * Builds the services of `serve` and `provisio worker` the same way, over one runtime. With `demo` (DEMO=1) the
 * in-memory demo directory answers while `active_directory` is not configured (per process: a separate worker
 * process has its own copy).
 */
export function buildServices(rt: Runtime, opts: { demo?: boolean } = {}): Services {
  const directories = createDirectoryProvider(rt.db, rt.logger, opts.demo ? { fallback: createDemoDirectory() } : {});
  const requesterDirectory = adRequesterDirectory(directories, rt.logger);
  return {
    directories,
    requesterDirectory,
    leaver: createLeaverDeps(rt, requesterDirectory),
    workflows: createWorkflowRuntime({ ...rt, directories }),
  };
}

/**
 * Metrics recording as configured, and traces when the standard OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT variable
 * names a collector (off otherwise). For `serve` and `provisio worker`, before anything is handled.
 */
function startTelemetry(config: Readonly<Config>, logger: Logger): void {
  setMetricsRecording(config.metricsEnabled);
  const tracing = tracingOptionsFromEnv();
  if (tracing) {
    startTracing(tracing);
    logger.info('tracing on', { endpoint: tracing.endpoint, service: tracing.serviceName });
  }
}

/** The metrics listener when METRICS_PORT is set: closed on shutdown like the API's. */
async function maybeListenForMetrics(config: Readonly<Config>, rt: Runtime): Promise<Server | undefined> {
  if (config.metricsPort === undefined) return undefined;
  return listenForMetrics({ db: rt.db, logger: rt.logger, host: config.metricsHost, port: config.metricsPort });
}

/** `provisio serve`: the HTTP API with the queue, until SIGTERM or SIGINT. */
export async function serve(config: Readonly<Config>): Promise<Server> {
  // `serve` holds the embedded database itself and serves it to `token create`, `migrate` and `worker` beside it.
  const rt = await openRuntime(config, { embedded: { command: 'provisio serve', serveToOthers: true, connectToHolder: false } });
  startTelemetry(config, rt.logger);
  const adminKey = await ensureAdminKey(rt.db, config.adminKey);
  if (adminKey.generated) {
    // Printed once, on the first start only; only its hash is kept.
    process.stdout.write(`\nGenerated admin key (shown once, store it now): ${adminKey.generated}\n\n`);
  }
  await registerTokenPurge(rt.queue, rt.db, rt.logger);
  await registerScimLogPurge(rt.queue, rt.db, rt.logger);
  // Hourly: requesters whose order ends within its type's `expiry_warning_days` are warned, once per end.
  await registerExpiryWarnings(rt);
  // Hourly: the Microsoft Graph subscription feeding POST /hr/leaver/graph is created or renewed before it expires.
  await registerGraphSubscriptionKeeper(rt);
  // Before the demo data: the demo integrations are built on these models.
  await loadIntegrationModelFiles(rt.db, rt.logger, projectPath('openapi', 'integrations'));
  if (config.demo) {
    await loadDemoData(rt.db, rt.logger);
  }
  await registerIntegrationHealthChecks(rt);
  const services = buildServices(rt, { demo: config.demo });
  // Settles which directory answers before any request: later asks may come inside a transaction (see the provider).
  if (config.demo) await services.directories.get();
  const { workflows } = services;
  // Leaver events recorded with a future effective_at run when their delayed job comes due, as the edges run them.
  await registerLeaverWorker(services.leaver);
  // Pending approvals' reminders, escalations and expiries come due as pg-boss jobs (approvals/reminders.ts).
  await registerApprovalClockWorkers({ ...rt, directory: services.requesterDirectory });
  // The outbox: mails (and Teams cards) committed with the changes that cause them, sent after the commit.
  // Approval links are signed with APPROVAL_LINK_KEY, else DATA_DIR/approval-link.key (generated on first start); the
  // worker signs the links it renders with the same signer the link pages verify with.
  const publicUrl = config.publicUrl ?? `http://${config.host}:${config.port}`;
  const linkKey = loadLinkKey({ envKey: config.approvalLinkKey, dataDir: config.dataDir });
  if (linkKey.source === 'generated') rt.logger.info('approval link key generated', { file: `${config.dataDir}/approval-link.key` });
  const linkSigner = createLinkSigner({ key: linkKey.key, publicUrl });
  // Teams cards go out over the `webhooks` settings' connection (proxy, TLS/CA, logging), read at each post.
  const outbox = createOutboxWorker({ ...rt, publicUrl, linkUrl: (ref) => linkSigner.url(ref), senders: { teams: createTeamsSender({ db: rt.db, logger: rt.logger }) } });
  await outbox.register();
  // One engine per process; its step workers and the order consumers run here (the embedded default).
  // The samples that still wait for an integration load when it is created (routes/integrations.ts).
  if (config.demo) {
    await loadSampleWorkflows(workflows.engine, SAMPLE_WORKFLOWS_DIR, rt.logger, { integrationExists: async (n) => (await rt.integrations.resolve(n)) !== undefined });
  }
  await workflows.startWorkers();
  // Cron schedules: every serving process ticks; each slot is claimed in the database, so it fires at most once.
  const scheduler = startScheduler({ db: rt.db, engine: workflows.engine, logger: rt.logger });
  // Built here, not by the app, so that shutdown closes them: the request log writes what is still buffered.
  const tokenCache = new VerifiedTokenCache(rt.db, rt.logger);
  const scimRequestLog = new ScimRequestLog(rt.db, rt.logger);
  const app = buildApp(
    {
      ...rt,
      tokenCache,
      scimRequestLog,
      workflowEngine: workflows.engine,
      requesterDirectory: services.requesterDirectory,
      leaver: services.leaver,
      adminKeyHash: async () => adminKey.hash,
      linkSigner,
    },
    config,
  );
  const server = app.listen(config.port, config.host, () => {
    rt.logger.info('listening', { url: `http://${config.host}:${config.port}`, docs: `http://${config.host}:${config.port}/docs`, database: rt.db.kind });
  });

  const metricsServer = await maybeListenForMetrics(config, rt);

  exitOnSignal(rt.logger, config.shutdownTimeoutMs, async () => {
    // In-flight requests finish first; then no new schedule fires, steps in flight finish, the queue stops.
    await closeServer(server);
    await scimRequestLog.close();
    await tokenCache.close();
    if (metricsServer) await closeServer(metricsServer);
    await scheduler.stop();
    await workflows.stop();
    await outbox.stop();
    await services.directories.close();
    await rt.queue.stop({ graceful: true, timeoutMs: config.shutdownTimeoutMs });
    await rt.db.close();
    await stopTracing();
  });
  return server;
}

/**
 * `provisio worker`: the workflow engine's step workers and the order consumers, without HTTP, until SIGTERM or
 * SIGINT. Run several against one PostgreSQL to scale out. With `cluster`, it also executes the integration calls
 * routed to that gateway cluster (queue `integration.call.<cluster>`).
 */
export async function runWorker(config: Readonly<Config>, opts: { cluster?: string } = {}): Promise<WorkflowRuntime> {
  const rt = await openRuntime(config, { embedded: { command: 'provisio worker', serveToOthers: true } });
  startTelemetry(config, rt.logger);
  const services = buildServices(rt, { demo: config.demo });
  if (config.demo) await services.directories.get();
  const { workflows } = services;
  await workflows.startWorkers();
  await registerApprovalClockWorkers({ ...rt, directory: services.requesterDirectory });
  if (opts.cluster !== undefined) await registerClusterWorker({ ...rt, cluster: opts.cluster });
  rt.logger.info('worker started', { database: rt.db.kind, ...(opts.cluster !== undefined ? { cluster: opts.cluster } : {}) });
  // A worker's step, run and call metrics are its own: it serves them on its own metrics listener.
  const metricsServer = await maybeListenForMetrics(config, rt);
  exitOnSignal(rt.logger, config.shutdownTimeoutMs, async () => {
    if (metricsServer) await closeServer(metricsServer);
    await workflows.stop();
    await services.directories.close();
    await rt.queue.stop({ graceful: true, timeoutMs: config.shutdownTimeoutMs });
    await rt.db.close();
    await stopTracing();
  });
  return workflows;
}
