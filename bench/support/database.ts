import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { configureSecrets, createPostgresDatabase, decodeMasterKey, migrate, type Database } from '../../adapter';

// Benches seal and open secrets as the service does: one throwaway master key per bench run, set in the environment so
// the child processes a bench starts (services, workers) open what this process sealed.
process.env['SECRETS_KEY'] ??= randomBytes(32).toString('base64');
configureSecrets({ masterKey: decodeMasterKey(process.env['SECRETS_KEY'], 'SECRETS_KEY'), source: 'SECRETS_KEY (bench run)' });

export interface BenchDatabase {
  db: Database;
  /** Connection string of the throwaway database, for child processes. */
  url: string;
  /** Closes `db`'s pool (once; later calls and `drop` do not close it again), e.g. before child processes take over. */
  close(): Promise<void>;
  /** Closes the pool if still open and drops the database, even with sessions still connected. */
  drop(): Promise<void>;
}

export interface BenchDatabaseOptions {
  /** Pool size of `db` (default: the adapter's). */
  max?: number;
  /** Run the migrations (default true). */
  migrate?: boolean;
  /** The server's URL when DATABASE_URL is unset. */
  defaultUrl?: string;
}

/**
 * A fresh PostgreSQL database `provisio_bench_<random>` created beside DATABASE_URL's, for one bench run.
 * Dropped again if migrating it fails, so a failed start leaves nothing behind.
 */
export async function createBenchDatabase(opts: BenchDatabaseOptions = {}): Promise<BenchDatabase> {
  const baseUrl = process.env['DATABASE_URL'] ?? opts.defaultUrl ?? 'postgres://postgres@127.0.0.1:5432/test';
  const name = `provisio_bench_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  const db = createPostgresDatabase({ connectionString: url.toString(), ...(opts.max !== undefined ? { max: opts.max } : {}) });
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= db.close());
  const drop = async () => {
    await close();
    const c = new Client({ connectionString: baseUrl });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  };
  if (opts.migrate ?? true) {
    try {
      await migrate(db);
    } catch (e) {
      await drop();
      throw e;
    }
  }
  return { db, url: url.toString(), close, drop };
}
