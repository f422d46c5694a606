import { randomBytes } from 'node:crypto';
import { createPgliteDatabase, migrate, type Database } from '../db';
import { countingDatabase } from '../../tests/support/counting-db';
import * as sealing from './sealing';

// Sealed values on a real (in-memory) PGlite: the format, the place binding, plain values passing through, and the
// data-key cache (one query the first time a key is met, none after).
describe('sealed values', () => {
  const master = randomBytes(32);
  let db: Database;
  beforeAll(async () => {
    db = await createPgliteDatabase();
    await migrate(db);
    sealing.configureSecrets({ masterKey: master, source: 'the unit test key' });
  });
  afterAll(() => db.close());

  test('seal and open any JSON value; the stored form names its data key and holds no plaintext', async () => {
    for (const value of ['p4ss', 'x'.repeat(5000), 42, { a: [1, 'two'] }, null, true]) {
      const sealed = await sealing.sealSecret(db, value, 'app_config:smtp.password');
      expect(sealed).toMatch(/^enc:v1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$/);
      expect(sealing.isSealed(sealed)).toBe(true);
      if (typeof value === 'string') expect(sealed).not.toContain(value.slice(0, 4));
      expect(await sealing.openSecret(db, sealed, 'app_config:smtp.password')).toEqual(value);
    }
    const { rows } = await db.query<{ id: string; active: boolean; master_key_id: string }>('SELECT id, active, master_key_id FROM secret_keys');
    expect(rows).toEqual([{ id: expect.any(String), active: true, master_key_id: sealing.masterKeyId() }]);
    expect(sealing.sealedKeyId(await sealing.sealSecret(db, 'v', 'p'))).toBe(rows[0]!.id);
  });

  test('a value that is not sealed is answered as it is (rows from before the sealing pass)', async () => {
    for (const v of ['plain', 'enc:v1:short', 7, undefined, { a: 1 }]) expect(await sealing.openSecret(db, v, 'p')).toEqual(v);
    expect(sealing.isSealed('enc:v1:abc')).toBe(false);
  });

  test('a sealed value does not open at another place, nor when altered; the error names the place, not the value', async () => {
    const sealed = await sealing.sealSecret(db, 'the-token', 'integrations:1:/authentication/token');
    await expect(sealing.openSecret(db, sealed, 'integrations:2:/authentication/token')).rejects.toThrow(
      new sealing.SealedSecretError('the sealed secret at integrations:2:/authentication/token does not open: it was altered, or copied from another place'),
    );
    const body = sealed.split(':')[3]!;
    const altered = `${sealed.slice(0, -body.length)}${body[0] === 'A' ? 'B' : 'A'}${body.slice(1)}`;
    await expect(sealing.openSecret(db, altered, 'integrations:1:/authentication/token')).rejects.toThrow(sealing.SealedSecretError);
    await expect(sealing.openSecret(db, sealed.replace(/^enc:v1:[^:]+:/, 'enc:v1:nosuchkey:'), 'x')).rejects.toThrow('data key nosuchkey, which is not in secret_keys');
  });

  test('a process meets a data key with one query, then opens without any', async () => {
    const sealed = await sealing.sealSecret(db, 'cached', 'p');
    // A fresh module instance is a fresh process: it knows no data key yet.
    await jest.isolateModulesAsync(async () => {
      const fresh = (await import('./sealing.js')) as typeof sealing;
      const counted = countingDatabase(db);
      await expect(fresh.openSecret(counted, sealed, 'p')).rejects.toThrow('secrets at rest are not configured'); // not yet
      fresh.configureSecrets({ masterKey: master });
      expect(await fresh.openSecret(counted, sealed, 'p')).toBe('cached');
      expect(counted.statements).toHaveLength(1);
      for (let i = 0; i < 100; i++) await fresh.openSecret(counted, sealed, 'p');
      expect(counted.statements).toHaveLength(1);
    });
  });

  test('a new active data key: new values are sealed under it, older ones still open', async () => {
    const old = await sealing.sealSecret(db, 'old', 'p');
    const id = await db.transaction((tx) => sealing.createActiveDataKey(tx));
    const next = await sealing.sealSecret(db, 'new', 'p');
    expect(sealing.sealedKeyId(next)).toBe(id);
    expect(sealing.sealedKeyId(old)).not.toBe(id);
    expect([await sealing.openSecret(db, old, 'p'), await sealing.openSecret(db, next, 'p')]).toEqual(['old', 'new']);
    expect((await db.query('SELECT 1 FROM secret_keys WHERE active')).rowCount).toBe(1);
  });
});
