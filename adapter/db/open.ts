import { join } from 'node:path';
import type { Database } from './database';
import { createPgliteDatabase } from './pglite';
import { createPostgresDatabase } from './postgres';

export interface OpenDatabaseOptions {
  /** PostgreSQL connection string; when absent the embedded PGlite database is used. */
  databaseUrl?: string | undefined;
  /** Where PGlite keeps its files (`<dataDir>/pglite`); `memory` keeps it in memory. */
  dataDir: string;
  poolSize?: number;
}

/** PostgreSQL when a URL is given, else embedded PGlite under the data directory. */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  if (opts.databaseUrl) {
    return createPostgresDatabase({ connectionString: opts.databaseUrl, ...(opts.poolSize ? { max: opts.poolSize } : {}) });
  }
  return createPgliteDatabase(opts.dataDir === 'memory' ? {} : { dataDir: join(opts.dataDir, 'pglite') });
}
