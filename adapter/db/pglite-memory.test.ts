// PGlite's shared_buffers can be set (the service passes PGLITE_SHARED_BUFFERS, default 32MB, see
// tests/unit/config.test.ts) instead of PGlite's own 160 MB, which was most of a bare process's resident memory. Embedded only, so the same under both runs of the suite.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from './open';

describe('the embedded database size of shared_buffers', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'provisio-shared-buffers-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  const sharedBuffers = async (size: string | undefined): Promise<string> => {
    const db = await openDatabase({ dataDir, command: 'test', connectToHolder: false, ...(size ? { pgliteSharedBuffers: size } : {}) });
    try {
      return (await db.query<{ s: string }>("SELECT current_setting('shared_buffers') AS s")).rows[0]!.s;
    } finally {
      await db.close();
    }
  };

  test('the configured size is what the database runs with, on every open of the same files', async () => {
    expect(await sharedBuffers('24MB')).toBe('24MB');
    expect(await sharedBuffers('40MB')).toBe('40MB');
  });

  test('without a size PGlite keeps its own default, which is larger: the size is a start parameter, not stored', async () => {
    const own = await sharedBuffers(undefined);
    expect(own).toMatch(/^\d+MB$/);
    expect(Number.parseInt(own, 10)).toBeGreaterThan(40);
  });

  // PGlite's `postgresqlconf` option would have replaced the postgresql.conf initdb wrote; these come from that file.
  test('the settings initdb wrote into postgresql.conf still hold with a size set', async () => {
    const db = await openDatabase({ dataDir, command: 'test', connectToHolder: false, pgliteSharedBuffers: '24MB' });
    try {
      const { rows } = await db.query<{ tz: string; ts: string; ds: string }>(
        "SELECT current_setting('TimeZone') AS tz, current_setting('default_text_search_config') AS ts, current_setting('DateStyle') AS ds",
      );
      expect(rows[0]).toEqual({ tz: 'UTC', ts: 'pg_catalog.english', ds: 'ISO, MDY' });
    } finally {
      await db.close();
    }
  });

  test('a size that is not <n>kB|MB|GB is refused before it can become a conf line', async () => {
    await expect(openDatabase({ dataDir, command: 'test', connectToHolder: false, pgliteSharedBuffers: '32MB\nfsync=off' })).rejects.toThrow(
      /expected a size such as 32MB/,
    );
  });
});
