import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgliteDatabase, createPostgresDatabase, listMigrations, type Database } from '../../adapter';
import { runCli, spawnCli, waitForOutput } from '../support/cli';
import { createTestDatabase, testEngine, type TestDatabase } from '../support/db';

// The CLI as an operator runs it: `provisio migrate`, `provisio token create`, `provisio serve` and SIGTERM.
describe(`provisio CLI (${testEngine})`, () => {
  let dataDir: string;
  let pg: TestDatabase | undefined;
  let env: Record<string, string | undefined>;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'provisio-cli-'));
    if (testEngine === 'postgres') pg = await createTestDatabase({ migrate: false });
    env = { DATA_DIR: dataDir, DATABASE_URL: pg?.url, ADMIN_KEY: 'cli-test-admin-key-0123456789', LOG_LEVEL: 'info' };
  });
  afterAll(async () => {
    await pg?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A short-lived connection to the database the CLI used (PGlite allows one process at a time). */
  async function withDb<T>(fn: (db: Database) => Promise<T>): Promise<T> {
    const db = pg ? createPostgresDatabase({ connectionString: pg.url! }) : await createPgliteDatabase({ dataDir: join(dataDir, 'pglite') });
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  }

  test('migrate applies every migration and exits 0', async () => {
    const res = await runCli(['migrate'], env);
    expect(res.stderr).not.toMatch(/provisio:/);
    expect(res.code).toBe(0);
    const versions = await withDb(async (db) => (await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY 1')).rows);
    expect(versions.map((v) => v.version)).toEqual(listMigrations().map((m) => m.version));
  });

  test('token create prints a raw xpat_ token once and stores only its hash', async () => {
    const res = await runCli(['token', 'create', '--name', 'cli-made', '--scopes', 'webhook:in,orders:write', '--role', 'helpdesk'], env);
    expect(res.code).toBe(0);
    const token = res.stdout.trim();
    expect(token).toMatch(/^xpat_[A-Za-z0-9_-]{43}$/);
    const rows = await withDb(async (db) => (await db.query<Record<string, unknown>>(`SELECT * FROM api_tokens WHERE name = 'cli-made'`)).rows);
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows[0])).not.toContain(token);
    expect(rows[0]).toMatchObject({ scopes: ['webhook:in', 'orders:write'], role: 'helpdesk', created_by: 'system:cli' });
  });

  test('token create refuses an unknown scope with a clear message', async () => {
    const res = await runCli(['token', 'create', '--name', 'x', '--scopes', 'root'], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("unknown scope 'root'");
  });

  test('an unknown command prints usage and exits 2', async () => {
    const res = await runCli(['frobnicate'], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('usage: provisio');
  });

  test('serve answers, and SIGTERM lets an in-flight request finish before exiting 0', async () => {
    const port = 18000 + Math.floor(Math.random() * 1000);
    const child = spawnCli(['serve'], { ...env, PORT: String(port) });
    let exitCode: number | null | undefined;
    const exited = new Promise<void>((resolve) => child.on('exit', (code) => ((exitCode = code), resolve())));
    try {
      await waitForOutput(child, /"message":"listening"/);
      // Open a request and send only half of its body, so it is in flight when the signal arrives.
      const body = JSON.stringify({ servicenow_ref: 'RITM0000001', padding: 'x'.repeat(2000) });
      const answer = new Promise<number>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port, method: 'POST', path: '/webhook/servicenow', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.write(body.slice(0, 1000));
        setTimeout(() => {
          child.kill('SIGTERM');
          setTimeout(() => req.end(body.slice(1000)), 300);
        }, 200);
      });
      // Unauthenticated, so 401 — what matters is that the request got its answer after SIGTERM.
      expect(await answer).toBe(401);
      await exited;
      expect(exitCode).toBe(0);
    } finally {
      if (exitCode === undefined) child.kill('SIGKILL');
    }
  });
});
