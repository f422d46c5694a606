import { randomBytes } from 'node:crypto';
import type { Express } from 'express';
import request from 'supertest';
import { createJobQueue, createLogger, type Database, type JobQueue, type Logger } from '../../adapter';
import { createIntegrationRuntime, type IntegrationRuntime } from '../../integration-model';
import { buildApp } from '../../server/app';
import { buildConfig, type Config } from '../../server/config';
import { createAuthThrottle, throttleSettings, type AuthThrottle } from '../../server/auth/auth-throttle';
import { APPROVAL_LINK_OPERATIONS } from '../../server/routes/approval-links';
import { createLinkSigner, type LinkSigner } from '../../server/domain/approvals/link-signer';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import type { LeaverDeps } from '../../server/domain/identity/leaver';
import { createLeaverDeps } from '../../server/domain/identity/leaver-service';
import { integrationHealthAlert } from '../../server/domain/notices';
import type { RequesterDirectory } from '../../server/domain/identity/requester-directory';
import { createWorkflowRuntime, type WorkflowRuntime } from '../../server/domain/runbooks/workflow-runtime';
import type { EngineConfig } from '../../workflows';
import { createTestDatabase, type TestDatabase } from './db';

export const TEST_ADMIN_KEY = 'test-admin-key-0123456789abcdef';

export interface TestApp {
  app: Express;
  db: Database;
  queue: JobQueue;
  /** The app's integration runtime (one per app, as in a process). */
  integrations: IntegrationRuntime;
  /** The app's leaver dependency set (the one its HR and SCIM edges use), for workers a test registers itself. */
  leaver: LeaverDeps;
  /** The app's workflow engine with its order consumers, when `options.workflows` asked for one (workers not started). */
  workflows: WorkflowRuntime | undefined;
  config: Readonly<Config>;
  /** The throwaway database's URL on PostgreSQL (for child processes); undefined on PGlite. */
  databaseUrl: string | undefined;
  /** supertest agent bound to the app. */
  http: () => request.Agent;
  /** Headers of the legacy admin key (a virtual superadmin). */
  admin: Record<string, string>;
  /** The app's approval link signer (a fresh key per app; `url(ref)` is what an outbox worker's `linkUrl` should be). */
  linkSigner: LinkSigner;
  /** The app's brute-force throttle (its decisions can be asked without waiting for them). */
  authThrottle: AuthThrottle;
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** Builds the app's workflow engine (as `serve` does, over the same database, queue and integration runtime). */
  workflows?: boolean | { config?: Partial<EngineConfig> };
  /** Requester snapshots and managers for orders, approvals and the leaver flow; none by default. */
  requesterDirectory?: RequesterDirectory;
  /** On PGlite: the database's files go here (not in memory), e.g. for a test that reads them raw. */
  dataDir?: string;
  /** The logger of every service of the app (a capturing one, for "this secret is never logged" checks); silent by default. */
  logger?: Logger;
}

/**
 * The app on a fresh migrated database (PGlite, or PostgreSQL when DATABASE_URL is set) with the queue
 * started and responses validated against the spec. One per test file. Its services are built once, as main.ts
 * builds them, and handed to the app.
 */
export async function createTestApp(overrides: Partial<Config> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const t: TestDatabase = await createTestDatabase(options.dataDir !== undefined ? { dataDir: options.dataDir } : {});
  const logger = options.logger ?? createLogger({ silent: !process.env['TEST_LOGS'], level: 'debug' });
  const queue = createJobQueue(t.db, { logger, schedule: false });
  await queue.start();
  // The throttle stays on in every suite (each failed authentication passes through it), with thresholds the suites
  // that fail on purpose from 127.0.0.1 (authorization matrix, fuzz) never reach; its own tests set low ones.
  const config = buildConfig({
    validateResponses: true,
    adminKey: TEST_ADMIN_KEY,
    authThrottleSlowAfter: 100_000,
    authThrottleBlockAfter: 200_000,
    ...overrides,
  });
  const linkSigner = createLinkSigner({ key: randomBytes(32), publicUrl: config.publicUrl ?? 'http://127.0.0.1' });
  const integrations = createIntegrationRuntime({ db: t.db, queue, logger, onHealthWorsened: integrationHealthAlert(queue) });
  const leaver = createLeaverDeps({ db: t.db, queue, logger }, options.requesterDirectory);
  const workflowOptions = typeof options.workflows === 'object' ? options.workflows : {};
  const workflows = options.workflows
    ? createWorkflowRuntime({ db: t.db, queue, logger, integrations, ...(workflowOptions.config ? { config: workflowOptions.config } : {}) })
    : undefined;
  const authThrottle = createAuthThrottle(throttleSettings(config), { db: t.db, logger, credentialInPath: APPROVAL_LINK_OPERATIONS });
  const app = buildApp(
    {
      db: t.db,
      queue,
      logger,
      integrations,
      leaver,
      requesterDirectory: options.requesterDirectory,
      workflowEngine: workflows?.engine,
      adminKeyHash: async () => hashSecret(TEST_ADMIN_KEY),
      linkSigner,
      authThrottle,
    },
    config,
  );
  return {
    app,
    db: t.db,
    queue,
    integrations,
    leaver,
    workflows,
    config,
    databaseUrl: t.url,
    http: () => request.agent(app),
    admin: { 'X-Admin-Key': TEST_ADMIN_KEY },
    linkSigner,
    authThrottle,
    async close() {
      await workflows?.stop();
      integrations.close();
      await queue.stop({ graceful: false, timeoutMs: 1000 });
      await t.drop();
    },
  };
}
