import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgliteDatabase, createPostgresDatabase, migrate, writeAudit, type Database, type Transaction } from '../../adapter';
import { describeChainReport, GENESIS_HASH, verifyAuditChain } from '../../server/domain/audit/verify';
import { runCli } from '../support/cli';
import { createTestDatabase, testEngine, type TestDatabase } from '../support/db';

jest.setTimeout(120_000);

/*
 * The audit hash chain (migration 026): concurrent writers leave one intact chain, and tampering done as a
 * superuser does it (triggers disabled, or `session_replication_role = replica`) is reported at the row tampered
 * with; then undone the same way, after which the chain verifies again.
 */

type AuditRow = { id: string; at: Date; entity: string; entity_id: string | null; action: string; diff: unknown; triggered_by: string; request_id: string | null };

/** Runs `fn` as a superuser who has switched the audit triggers off (for this transaction only). */
async function asSuperuser(db: Database, how: 'disable_triggers' | 'replica', fn: (tx: Transaction) => Promise<void>): Promise<void> {
  await db.transaction(async (tx) => {
    if (how === 'replica') await tx.query('SET LOCAL session_replication_role = replica');
    else await tx.exec('ALTER TABLE audit_log DISABLE TRIGGER USER');
    await fn(tx);
    if (how === 'disable_triggers') await tx.exec('ALTER TABLE audit_log ENABLE TRIGGER USER');
  });
}

const row = async (db: Database, id: string) => (await db.query<AuditRow>('SELECT * FROM audit_log WHERE id = $1', [id])).rows[0]!;

describe(`audit hash chain (${testEngine})`, () => {
  let t: TestDatabase;

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t.drop();
  });

  test('an empty log verifies as intact with the genesis head', async () => {
    expect(await verifyAuditChain(t.db)).toEqual({ intact: true, rows: 0, head: GENESIS_HASH });
  });

  test('many transactions writing audit rows at once leave one intact chain, each transaction\'s rows linked in id order', async () => {
    const writers = 24;
    const perWriter = 5;
    await Promise.all(
      Array.from({ length: writers }, (_, w) =>
        t.db.transaction(async (tx) => {
          for (let i = 0; i < perWriter; i++) {
            await writeAudit(tx, { entity: 'order', entityId: w, action: 'update', before: { step: i }, after: { step: i + 1, note: `wr${w} ü "q"` }, triggeredBy: `system:writer-${w}` });
            // Interleave with the other writers (on PostgreSQL they hold their own connections): ids commit out of order.
            await tx.query('SELECT pg_sleep(0.002)');
          }
        }),
      ),
    );
    const report = await verifyAuditChain(t.db);
    expect(report).toMatchObject({ intact: true, rows: writers * perWriter });
    const { rows } = await t.db.query<{ seq: string; audit_id: string; triggered_by: string }>(
      'SELECT c.seq, c.audit_id, a.triggered_by FROM audit_chain c JOIN audit_log a ON a.id = c.audit_id ORDER BY c.seq',
    );
    expect(rows).toHaveLength(writers * perWriter);
    // On PostgreSQL the writers truly overlap: the chain (commit order) is not the id order.
    if (testEngine === 'postgres') expect(rows.map((r) => Number(r.audit_id))).not.toEqual(rows.map((r) => Number(r.audit_id)).sort((a, b) => a - b));
    // Each transaction's rows are consecutive links, in id order.
    for (let i = 0; i < rows.length; i += perWriter) {
      const run = rows.slice(i, i + perWriter);
      expect(new Set(run.map((r) => r.triggered_by)).size).toBe(1);
      expect(run.map((r) => Number(r.audit_id))).toEqual([...run.map((r) => Number(r.audit_id))].sort((a, b) => a - b));
    }
    expect(report.intact && report.head).toBe((await t.db.query<{ hash: string }>('SELECT hash FROM audit_chain ORDER BY seq DESC LIMIT 1')).rows[0]!.hash);
  });

  test('a rolled-back transaction leaves no link and no row', async () => {
    const before = await verifyAuditChain(t.db);
    await expect(
      t.db.transaction(async (tx) => {
        await writeAudit(tx, { entity: 'order', entityId: 1, action: 'create', triggeredBy: 'system:rollback' });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await verifyAuditChain(t.db)).toEqual(before);
  });

  test('the chain table refuses UPDATE, DELETE and TRUNCATE like the log', async () => {
    for (const sql of ['UPDATE audit_chain SET hash = hash', 'DELETE FROM audit_chain WHERE false', 'TRUNCATE audit_chain']) {
      await expect(t.db.query(sql)).rejects.toThrow(/audit_chain is append-only/);
    }
    await expect(t.db.query(`UPDATE audit_log SET action = 'x' WHERE false`)).rejects.toThrow('audit_log is append-only: UPDATE is not allowed');
  });

  test('a changed diff is reported as a hash mismatch at that row, and verifies again once restored', async () => {
    const { rows } = await t.db.query<{ id: string }>('SELECT id FROM audit_log ORDER BY id OFFSET 40 LIMIT 1');
    const id = rows[0]!.id;
    const original = await row(t.db, id);
    await asSuperuser(t.db, 'disable_triggers', (tx) => tx.query(`UPDATE audit_log SET diff = jsonb_set(diff, '{after,step}', '99') WHERE id = $1`, [id]).then(() => undefined));
    const report = await verifyAuditChain(t.db);
    expect(report).toMatchObject({ intact: false, broken: { kind: 'hash_mismatch', auditId: Number(id) } });
    expect(describeChainReport(report)).toMatch(new RegExp(`^audit chain broken at audit row ${id} \\(hash_mismatch\\)`));
    await asSuperuser(t.db, 'disable_triggers', (tx) => tx.query('UPDATE audit_log SET diff = $2 WHERE id = $1', [id, JSON.stringify(original.diff)]).then(() => undefined));
    expect(await verifyAuditChain(t.db)).toMatchObject({ intact: true });
  });

  test('a changed actor or time is a hash mismatch too', async () => {
    const id = (await t.db.query<{ id: string }>('SELECT id FROM audit_log ORDER BY id OFFSET 7 LIMIT 1')).rows[0]!.id;
    const original = await row(t.db, id);
    await asSuperuser(t.db, 'replica', (tx) => tx.query(`UPDATE audit_log SET triggered_by = 'system:nobody', at = at + interval '1 microsecond' WHERE id = $1`, [id]).then(() => undefined));
    expect(await verifyAuditChain(t.db)).toMatchObject({ intact: false, broken: { kind: 'hash_mismatch', auditId: Number(id) } });
    // (`at` is put back in SQL: a JS Date would drop its microseconds.)
    await asSuperuser(t.db, 'replica', (tx) => tx.query(`UPDATE audit_log SET triggered_by = $2, at = at - interval '1 microsecond' WHERE id = $1`, [id, original.triggered_by]).then(() => undefined));
    expect(await verifyAuditChain(t.db)).toMatchObject({ intact: true });
  });

  test('a deleted row is reported as missing at its id; deleting its link too is a missing predecessor at the next row', async () => {
    const ids = (await t.db.query<{ audit_id: string }>('SELECT audit_id FROM audit_chain ORDER BY seq OFFSET 60 LIMIT 2')).rows.map((r) => r.audit_id);
    const [victim, next] = ids as [string, string];
    // Kept aside exactly (microseconds of `at` included) to put it back afterwards.
    await t.db.query('CREATE TABLE audit_saved AS SELECT * FROM audit_log WHERE id = $1', [victim]);
    await asSuperuser(t.db, 'replica', (tx) => tx.query('DELETE FROM audit_log WHERE id = $1', [victim]).then(() => undefined));
    expect(await verifyAuditChain(t.db)).toMatchObject({ intact: false, broken: { kind: 'row_missing', auditId: Number(victim) } });

    // A careful forger removes the link as well: the next link then names a predecessor the chain no longer has.
    const link = (await t.db.query<{ seq: string; audit_id: string; prev_hash: string; hash: string }>('SELECT * FROM audit_chain WHERE audit_id = $1', [victim])).rows[0]!;
    await t.db.transaction(async (tx) => {
      await tx.query('SET LOCAL session_replication_role = replica');
      await tx.query('DELETE FROM audit_chain WHERE audit_id = $1', [victim]);
    });
    expect(await verifyAuditChain(t.db)).toMatchObject({ intact: false, broken: { kind: 'predecessor_missing', auditId: Number(next) } });

    // Restored as it was: intact again.
    await asSuperuser(t.db, 'replica', async (tx) => {
      await tx.query('INSERT INTO audit_chain (seq, audit_id, prev_hash, hash) VALUES ($1, $2, $3, $4)', [link.seq, link.audit_id, link.prev_hash, link.hash]);
      await tx.query('INSERT INTO audit_log SELECT * FROM audit_saved');
    });
    await t.db.query('DROP TABLE audit_saved');
    expect(await verifyAuditChain(t.db)).toMatchObject({ intact: true });
  });

  test('a forged row inserted behind the trigger is reported as not in the chain', async () => {
    let forged = '';
    await asSuperuser(t.db, 'disable_triggers', async (tx) => {
      const { rows } = await tx.query<{ id: string }>(
        `INSERT INTO audit_log (entity, entity_id, action, diff, triggered_by) VALUES ('order', '1', 'approve', '{}', 'admin:key') RETURNING id`,
      );
      forged = rows[0]!.id;
    });
    const report = await verifyAuditChain(t.db);
    expect(report).toMatchObject({ intact: false, broken: { kind: 'not_in_chain', auditId: Number(forged), seq: null } });
    await asSuperuser(t.db, 'disable_triggers', (tx) => tx.query('DELETE FROM audit_log WHERE id = $1', [forged]).then(() => undefined));
    // Appending through the front door still links: the log grows and stays intact.
    await t.db.transaction((tx) => writeAudit(tx, { entity: 'order', entityId: 2, action: 'create', triggeredBy: 'system:test' }));
    expect(await verifyAuditChain(t.db)).toMatchObject({ intact: true, rows: 24 * 5 + 1 });
  });
});

describe(`provisio audit verify (${testEngine})`, () => {
  let dataDir: string;
  let pg: TestDatabase | undefined;
  let env: Record<string, string | undefined>;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'provisio-audit-verify-'));
    if (testEngine === 'postgres') pg = await createTestDatabase();
    env = { DATA_DIR: dataDir, DATABASE_URL: pg?.url, ADMIN_KEY: 'cli-test-admin-key-0123456789', LOG_LEVEL: 'error' };
  });
  afterAll(async () => {
    await pg?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A short-lived connection to the database the CLI uses (PGlite allows one process at a time). */
  async function withDb<T>(fn: (db: Database) => Promise<T>): Promise<T> {
    const db = pg ? createPostgresDatabase({ connectionString: pg.url! }) : await createPgliteDatabase({ dataDir: join(dataDir, 'pglite') });
    try {
      if (!pg) await migrate(db);
      return await fn(db);
    } finally {
      await db.close();
    }
  }

  test('exit 0 and "intact" with the row count and head; exit 1 naming the first broken row', async () => {
    const { head, id } = await withDb(async (db) => {
      for (let i = 0; i < 3; i++) await db.transaction((tx) => writeAudit(tx, { entity: 'asset_type', entityId: i, action: 'create', after: { name: `t${i}` }, triggeredBy: 'admin:key' }));
      const r = await verifyAuditChain(db);
      const second = (await db.query<{ id: string }>('SELECT id FROM audit_log ORDER BY id OFFSET 1 LIMIT 1')).rows[0]!.id;
      return { head: r.intact ? r.head : '', id: second };
    });
    const ok = await runCli(['audit', 'verify'], env);
    expect({ code: ok.code, stdout: ok.stdout.trim() }).toEqual({ code: 0, stdout: `audit chain intact: 3 rows, head ${head}` });

    await withDb((db) => asSuperuser(db, 'disable_triggers', (tx) => tx.query(`UPDATE audit_log SET diff = '{"after":{"name":"forged"}}' WHERE id = $1`, [id]).then(() => undefined)));
    const broken = await runCli(['audit', 'verify'], env);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(new RegExp(`^audit chain broken at audit row ${id} \\(hash_mismatch\\): .*; 1 rows verified before it`, 'm'));
  });
});
