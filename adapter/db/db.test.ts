import { createTestDatabase, type TestDatabase } from '../../tests/support/db';
import { listMigrations, migrate, pendingMigrations } from './index';
import { StatementNames } from './postgres';

describe('database (both engines)', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t.drop();
  });

  test('migrations are recorded and re-running applies nothing', async () => {
    expect(await pendingMigrations(t.db)).toEqual([]);
    expect(await migrate(t.db)).toEqual([]);
    const { rows } = await t.db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(listMigrations().map((m) => m.version));
  });

  test('a failed transaction rolls back and later queries still work', async () => {
    await expect(
      t.db.transaction(async (tx) => {
        await tx.query(`INSERT INTO app_config (key, section, value, updated_by) VALUES ('x.a', 'x', '1', 't')`);
        await tx.query('SELECT no_such_column FROM app_config');
      }),
    ).rejects.toThrow(/no_such_column/);
    const { rowCount } = await t.db.query(`SELECT 1 FROM app_config WHERE key = 'x.a'`);
    expect(rowCount).toBe(0);
    const { rows } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM app_config');
    expect(rows[0]?.n).toBe(0);
  });

  test('a parameter-less query may hold several statements and returns the last rows', async () => {
    const { rows } = await t.db.query<{ v: number }>('SELECT 1 AS v; SELECT 2 AS v');
    expect(rows).toEqual([{ v: 2 }]);
  });

  test('bigint ids come back as numbers on both engines', async () => {
    const { rows } = await t.db.query<{ n: number }>('SELECT $1::bigint AS n', [42]);
    expect(rows[0]?.n).toBe(42);
  });
});

describe('prepared statement names (PostgreSQL)', () => {
  test('a text is named once it is hot, always with the same name, and one-off texts are never named', () => {
    const names = new StatementNames();
    const hot = 'SELECT * FROM orders WHERE id = $1';
    const seen = Array.from({ length: StatementNames.HOT_AFTER + 2 }, () => names.nameFor(hot));
    expect(seen.slice(0, StatementNames.HOT_AFTER - 1)).toEqual(Array(StatementNames.HOT_AFTER - 1).fill(undefined));
    const named = seen[StatementNames.HOT_AFTER - 1];
    expect(named).toMatch(/^provisio_\d+$/);
    expect(new Set(seen.slice(StatementNames.HOT_AFTER - 1))).toEqual(new Set([named]));
    expect(names.nameFor('SELECT 1 WHERE $1::int = 1')).toBeUndefined();
  });

  test('no more than MAX_NAMES texts are ever named', () => {
    const names = new StatementNames();
    let named = 0;
    for (let i = 0; i < StatementNames.MAX_NAMES + 50; i++) {
      for (let k = 0; k < StatementNames.HOT_AFTER; k++) if (names.nameFor(`SELECT ${i} WHERE $1::int = 1`) && k === StatementNames.HOT_AFTER - 1) named++;
    }
    expect(named).toBe(StatementNames.MAX_NAMES);
  });
});
