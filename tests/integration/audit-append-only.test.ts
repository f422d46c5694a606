import { PgErrorCode, sqlState } from '../../adapter';
import { writeAudit } from '../../adapter';
import { createTestDatabase, testEngine, type TestDatabase } from '../support/db';

/**
 * The audit log is evidence: the database itself refuses UPDATE, DELETE and TRUNCATE on it (triggers
 * in 001_core.sql), on PGlite and on PostgreSQL alike. These statements go straight to the engine.
 */
describe(`audit_log is append-only (${testEngine})`, () => {
  let t: TestDatabase;
  type Row = { id: number; entity: string; action: string; diff: unknown; triggered_by: string };
  const snapshot = async () =>
    (await t.db.query<Row>('SELECT id, entity, action, diff, triggered_by FROM audit_log ORDER BY id')).rows;
  let original: Row[];

  beforeAll(async () => {
    t = await createTestDatabase();
    await t.db.transaction(async (tx) => {
      await writeAudit(tx, { entity: 'order', entityId: 1, action: 'create', after: { status: 'processing' }, triggeredBy: 'webhook:hmac' });
      await writeAudit(tx, { entity: 'order', entityId: 1, action: 'update', before: { status: 'processing' }, after: { status: 'provisioned' }, triggeredBy: 'system:workflow' });
    });
    original = await snapshot();
    expect(original).toHaveLength(2);
  });
  afterAll(async () => {
    await t.drop();
  });

  /** Runs `sql` and returns the error it must raise. */
  async function refused(run: () => Promise<unknown>): Promise<unknown> {
    let error: unknown;
    try {
      await run();
    } catch (err) {
      error = err;
    }
    expect(error).toBeDefined();
    return error;
  }

  const statements: [string, string][] = [
    ['UPDATE', `UPDATE audit_log SET action = 'tampered'`],
    ['UPDATE', `UPDATE audit_log SET diff = '{}'::jsonb WHERE entity = 'order'`],
    ['UPDATE', `UPDATE audit_log SET triggered_by = 'nobody' WHERE false`],
    ['DELETE', `DELETE FROM audit_log`],
    ['DELETE', `DELETE FROM audit_log WHERE action = 'update'`],
    ['DELETE', `DELETE FROM audit_log WHERE false`],
    ['TRUNCATE', `TRUNCATE audit_log`],
    ['TRUNCATE', `TRUNCATE TABLE audit_log RESTART IDENTITY CASCADE`],
  ];

  test.each(statements)('%s is refused: %s', async (op, sql) => {
    const err = await refused(() => t.db.query(sql));
    expect(sqlState(err)).toBe(PgErrorCode.RAISE_EXCEPTION);
    expect((err as Error).message).toBe(`audit_log is append-only: ${op} is not allowed`);
    expect(await snapshot()).toEqual(original);
  });

  test('a parameterised DELETE and UPDATE are refused too', async () => {
    const id = original[0]!.id;
    expect(sqlState(await refused(() => t.db.query('DELETE FROM audit_log WHERE id = $1', [id])))).toBe(PgErrorCode.RAISE_EXCEPTION);
    expect(sqlState(await refused(() => t.db.query('UPDATE audit_log SET action = $1 WHERE id = $2', ['x', id])))).toBe(PgErrorCode.RAISE_EXCEPTION);
    expect(await snapshot()).toEqual(original);
  });

  test('inside a transaction the refusal rolls the whole transaction back', async () => {
    const err = await refused(() =>
      t.db.transaction(async (tx) => {
        await writeAudit(tx, { entity: 'order', entityId: 2, action: 'create', triggeredBy: 'system:test' });
        await tx.query('DELETE FROM audit_log');
      }),
    );
    expect(sqlState(err)).toBe(PgErrorCode.RAISE_EXCEPTION);
    expect(await snapshot()).toEqual(original);
  });

  test('appending still works, and the database stays usable after the refusals', async () => {
    await t.db.transaction((tx) => writeAudit(tx, { entity: 'order', entityId: 3, action: 'create', triggeredBy: 'system:test' }));
    const rows = await snapshot();
    expect(rows).toHaveLength(3);
    expect(rows.slice(0, 2)).toEqual(original);
  });
});
