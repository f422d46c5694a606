import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { createPgliteDatabase, createPostgresDatabase, migrate, type Database } from '../../adapter';

/**
 * The engine this test run uses: PostgreSQL when DATABASE_URL is set, else embedded PGlite.
 * `.ci/run` runs the whole suite once each way.
 */
export const testEngine: 'postgres' | 'pglite' = process.env['DATABASE_URL'] ? 'postgres' : 'pglite';

export interface TestDatabase {
  db: Database;
  /** Connection string of the throwaway PostgreSQL database (undefined on PGlite). */
  url: string | undefined;
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database for one test file: an in-memory PGlite, or a new PostgreSQL database
 * created beside DATABASE_URL's and dropped afterwards.
 */
export async function createTestDatabase(opts: { migrate?: boolean; dataDir?: string } = {}): Promise<TestDatabase> {
  let result: TestDatabase;
  const baseUrl = process.env['DATABASE_URL'];
  if (!baseUrl) {
    // `dataDir`: PGlite on disk there (a test that reads the raw files), else in memory.
    const db = await createPgliteDatabase(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {});
    result = { db, url: undefined, drop: () => db.close() };
  } else {
    const name = `provisio_test_${randomBytes(6).toString('hex')}`;
    const admin = new Client({ connectionString: baseUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(baseUrl);
    url.pathname = `/${name}`;
    const db = createPostgresDatabase({ connectionString: url.toString(), max: 20 });
    result = {
      db,
      url: url.toString(),
      drop: async () => {
        await db.close();
        const c = new Client({ connectionString: baseUrl });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.end();
      },
    };
  }
  if (opts.migrate ?? true) await migrate(result.db);
  return result;
}
