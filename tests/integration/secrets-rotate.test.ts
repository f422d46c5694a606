import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SecretsKeyError,
  configureSecrets,
  createPgliteDatabase,
  createPostgresDatabase,
  decodeMasterKey,
  ensureSecretsKey,
  isSealed,
  sealedKeyId,
  type Database,
} from '../../adapter';
import { readSettings, updateSettings } from '../../server/domain/settings/settings';
import { runCli, spawnCli, waitForOutput } from '../support/cli';
import { createTestDatabase, testEngine, type TestDatabase } from '../support/db';
import { TEST_SECRETS_KEY } from '../support/secrets';

// The master key as an operator meets it through the CLI: generated into DATA_DIR/secrets.key with a warning, refused
// when others may read it or when it is the wrong key (nothing changed), and rotated with `provisio secrets rotate-key`.
// Each CLI run starts a process that opens (and the first time creates) the database: slow on a busy machine.
jest.setTimeout(180_000);

describe(`secrets master key and rotate-key through the CLI (${testEngine})`, () => {
  const ADMIN_KEY = 'secrets-cli-admin-key-0123456789';
  const SMTP_PASSWORD = `smtp-pw-${randomBytes(8).toString('hex')}`;
  let dataDir: string;
  let keyFile: string;
  let pg: TestDatabase | undefined;
  let env: Record<string, string | undefined>;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'provisio-secrets-cli-'));
    keyFile = join(dataDir, 'secrets.key');
    if (testEngine === 'postgres') pg = await createTestDatabase({ migrate: false });
    // No SECRETS_KEY (the run sets one for spawned processes): the key file is the source here.
    env = { DATA_DIR: dataDir, DATABASE_URL: pg?.url, ADMIN_KEY, LOG_LEVEL: 'info', SECRETS_KEY: undefined, SECRETS_NEW_KEY: undefined };
  });
  afterAll(async () => {
    configureSecrets({ masterKey: decodeMasterKey(TEST_SECRETS_KEY, 'test'), source: 'the test key' });
    await pg?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A short-lived connection to the CLI's database, this process using master key `key` (base64). */
  async function withDb<T>(key: string, fn: (db: Database) => Promise<T>): Promise<T> {
    configureSecrets({ masterKey: decodeMasterKey(key, 'test'), source: 'the test' });
    const db = pg ? createPostgresDatabase({ connectionString: pg.url! }) : await createPgliteDatabase({ dataDir: join(dataDir, 'pglite') });
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  }
  const fileKey = () => readFileSync(keyFile, 'utf8').trim();
  /** The secret tables as text: what a refused start must leave exactly as it was. */
  const secretTables = (db: Database) =>
    Promise.all(
      ['secret_keys', 'app_config', 'integrations', 'asset_type_teams_webhooks'].map(async (table) => (await db.query<{ row: string }>(`SELECT t::text AS row FROM ${table} t ORDER BY 1`)).rows),
    );

  test('the first start generates DATA_DIR/secrets.key with mode 0600 and warns, naming it', async () => {
    const res = await runCli(['migrate'], env);
    expect(res.stderr).not.toMatch(/provisio:/);
    expect(res.code).toBe(0);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const warning = `${res.stdout}${res.stderr}`.split('\n').find((l) => l.includes('secrets master key generated'));
    expect(warning).toBeDefined();
    expect(JSON.parse(warning!)).toMatchObject({ level: 'warn', file: keyFile, message: `secrets master key generated in ${keyFile}` });
    expect(warning).toContain('SECRETS_KEY');
    expect(warning).not.toContain(fileKey());
    // A secret written under that key.
    await withDb(fileKey(), (db) => db.transaction((tx) => updateSettings(tx, 'smtp', { password: SMTP_PASSWORD }, { triggeredBy: 'test' })));
    // A second start reads the file and warns no more.
    const again = await runCli(['migrate'], env);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain('secrets master key generated');
  });

  test('a key file readable by group or others is refused, saying how to fix it', async () => {
    chmodSync(keyFile, 0o640);
    try {
      const res = await runCli(['migrate'], env);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`the secrets key file ${keyFile} is readable by group or others (mode 640); run \`chmod 600 ${keyFile}\``);
    } finally {
      chmodSync(keyFile, 0o600);
    }
  });

  test('the wrong key: the start exits 1 naming the stored and the given key ids, and the secret tables are unchanged', async () => {
    const before = await withDb(fileKey(), secretTables);
    const wrong = randomBytes(32).toString('base64');
    const res = await runCli(['migrate'], { ...env, SECRETS_KEY: wrong });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/provisio: the master key from SECRETS_KEY is not the one this database's secrets are sealed under: the stored data keys were wrapped under master key [0-9a-f]{16}, the given key is [0-9a-f]{16}/);
    expect(res.stderr).not.toContain(wrong);
    const after = await withDb(fileKey(), secretTables);
    expect(after).toEqual(before);
    expect(before[0]!.length).toBe(1);
  });

  test('rotate-key (key from the file): every data key re-wrapped under a generated key, which replaces the file; audited by key id', async () => {
    const old = fileKey();
    const keysBefore = await withDb(old, async (db) => (await db.query<{ id: string; wrapped_key: string }>('SELECT id, wrapped_key FROM secret_keys')).rows);
    const res = await runCli(['secrets', 'rotate-key'], env);
    expect(res.stderr).not.toMatch(/provisio:/);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/master key rotated: [0-9a-f]{16} -> [0-9a-f]{16} \(1 data key\(s\) re-wrapped/);
    expect(res.stdout).toContain(`the key file ${keyFile} now holds the new master key`);
    const next = fileKey();
    expect(next).not.toBe(old);
    expect(res.stdout).not.toContain(next);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(existsSync(`${keyFile}.new`)).toBe(false);
    await withDb(next, async (db) => {
      const keys = (await db.query<{ id: string; wrapped_key: string }>('SELECT id, wrapped_key FROM secret_keys')).rows;
      expect(keys.map((k) => k.id)).toEqual(keysBefore.map((k) => k.id));
      expect(keys[0]!.wrapped_key).not.toBe(keysBefore[0]!.wrapped_key);
      await ensureSecretsKey(db);
      expect(await readSettings(db, 'smtp')).toMatchObject({ password: SMTP_PASSWORD });
      const audit = (await db.query<{ diff: string }>(`SELECT diff::text AS diff FROM audit_log WHERE entity = 'secrets' AND action = 'rotate_key'`)).rows;
      expect(audit).toHaveLength(1);
      expect(audit[0]!.diff).toMatch(/"master_key_id": "[0-9a-f]{16}"/);
      for (const k of [old, next]) expect(audit[0]!.diff).not.toContain(k);
    });
    await expect(withDb(old, (db) => ensureSecretsKey(db))).rejects.toThrow(SecretsKeyError);
  });

  test('rotate-key with SECRETS_KEY: a generated key is printed once; --new-key-file takes the key from a 0600 file', async () => {
    const current = fileKey();
    const res = await runCli(['secrets', 'rotate-key'], { ...env, SECRETS_KEY: current });
    expect(res.code).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines.at(-2)).toContain('set SECRETS_KEY to this new master key for every process of this database');
    const printed = lines.at(-1)!;
    expect(decodeMasterKey(printed, 'printed').length).toBe(32);
    expect(fileKey()).toBe(current); // the file was not the source: untouched
    expect((await runCli(['migrate'], { ...env, SECRETS_KEY: printed })).code).toBe(0);

    const given = join(dataDir, 'given.key');
    writeFileSync(given, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
    const viaFile = await runCli(['secrets', 'rotate-key', '--new-key-file', given], { ...env, SECRETS_KEY: printed });
    expect(viaFile.code).toBe(0);
    expect(viaFile.stdout).toContain(`set SECRETS_KEY to the content of ${given}`);
    const givenKey = readFileSync(given, 'utf8').trim();
    expect(viaFile.stdout).not.toContain(givenKey);
    expect(await withDb(givenKey, async (db) => (await ensureSecretsKey(db), readSettings(db, 'smtp')))).toMatchObject({ password: SMTP_PASSWORD });
    // Back to the key file for what follows.
    writeFileSync(keyFile, `${givenKey}\n`, { mode: 0o600 });
  });

  test('--new-data-key: a fresh active data key, every secret re-sealed under it, the old key deleted', async () => {
    const key = fileKey();
    const before = await withDb(key, async (db) => (await db.query<{ id: string }>('SELECT id FROM secret_keys')).rows.map((r) => r.id));
    const res = await runCli(['secrets', 'rotate-key', '--new-data-key'], env);
    expect(res.stderr).not.toMatch(/provisio:/);
    expect(res.code).toBe(0);
    const m = /new data key ([A-Za-z0-9_-]+) is active; (\d+) secret\(s\) re-sealed under it; data key\(s\) (\S+) deleted/.exec(res.stdout);
    expect(m).not.toBeNull();
    expect(m![3]).toBe(before.join(', '));
    expect(fileKey()).toBe(key); // the master key stays
    await withDb(key, async (db) => {
      expect((await db.query<{ id: string; active: boolean }>('SELECT id, active FROM secret_keys')).rows).toEqual([{ id: m![1], active: true }]);
      const stored = (await db.query<{ value: unknown }>(`SELECT value FROM app_config WHERE key = 'smtp.password'`)).rows[0]!.value;
      expect(isSealed(stored) && sealedKeyId(stored)).toBe(m![1]);
      expect(await readSettings(db, 'smtp')).toMatchObject({ password: SMTP_PASSWORD });
    });
  });

  test('rotate-key beside a running serve works through it (embedded: its socket), and the serve keeps reading and writing secrets', async () => {
    const port = 19000 + Math.floor(Math.random() * 1000);
    const child = spawnCli(['serve'], { ...env, PORT: String(port) });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const call = (method: string, path: string, body?: unknown) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const data = body === undefined ? undefined : JSON.stringify(body);
        const req = request({ host: '127.0.0.1', port, method, path, headers: { 'X-Admin-Key': ADMIN_KEY, ...(data ? { 'content-type': 'application/json' } : {}) } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.end(data);
      });
    try {
      await waitForOutput(child, /"message":"listening"/);
      const res = await runCli(['secrets', 'rotate-key'], env);
      expect(res.stderr).not.toMatch(/provisio:/);
      expect(res.code).toBe(0);
      // The serve still holds the data keys: it writes and reads secrets without a restart.
      const put = await call('PUT', '/admin/settings/hr', { graph_client_state: 'client-state-after-rotation-0123' });
      expect(put.status).toBe(200);
      expect(JSON.parse(put.body).secrets).toEqual({ graph_client_state: { configured: true } });
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    expect(await withDb(fileKey(), async (db) => (await ensureSecretsKey(db), readSettings(db, 'hr')))).toEqual({ graph_client_state: 'client-state-after-rotation-0123' });
  });
});
