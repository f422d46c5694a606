import type { Express } from 'express';
import request from 'supertest';
import { createJobQueue, createLogger, type Database, type JobQueue } from '../../adapter';
import { buildApp } from '../../server/app';
import { buildConfig, type Config } from '../../server/config';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import { createTestDatabase, type TestDatabase } from './db';

export const TEST_ADMIN_KEY = 'test-admin-key-0123456789abcdef';

export interface TestApp {
  app: Express;
  db: Database;
  queue: JobQueue;
  config: Readonly<Config>;
  /** The throwaway database's URL on PostgreSQL (for child processes); undefined on PGlite. */
  databaseUrl: string | undefined;
  /** supertest agent bound to the app. */
  http: () => request.Agent;
  /** Headers of the legacy admin key (a virtual superadmin). */
  admin: Record<string, string>;
  close(): Promise<void>;
}

/**
 * The app on a fresh migrated database (PGlite, or PostgreSQL when DATABASE_URL is set) with the queue
 * started and responses validated against the spec. One per test file.
 */
export async function createTestApp(overrides: Partial<Config> = {}): Promise<TestApp> {
  const t: TestDatabase = await createTestDatabase();
  const logger = createLogger({ silent: !process.env['TEST_LOGS'], level: 'debug' });
  const queue = createJobQueue(t.db, { logger, schedule: false });
  await queue.start();
  const config = buildConfig({ validateResponses: true, adminKey: TEST_ADMIN_KEY, ...overrides });
  const app = buildApp({ db: t.db, queue, logger, adminKeyHash: async () => hashSecret(TEST_ADMIN_KEY) }, config);
  return {
    app,
    db: t.db,
    queue,
    config,
    databaseUrl: t.url,
    http: () => request.agent(app),
    admin: { 'X-Admin-Key': TEST_ADMIN_KEY },
    async close() {
      await queue.stop({ graceful: false, timeoutMs: 1000 });
      await t.drop();
    },
  };
}
