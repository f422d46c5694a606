import { createTestDatabase, type TestDatabase } from '../../tests/support/db';
import { listMigrations, migrate, pendingMigrations } from './index';

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
