import express from 'express';
import request from 'supertest';
import { createLogger } from '../../adapter';
import { scimEdge } from '../../server/scim/log';
import { createTestDatabase, type TestDatabase } from '../support/db';

// The SCIM request log is written after the response, from the request's path and the error detail answered.
// Both may quote what the IdP sent; PostgreSQL refuses a NUL in text, and the request that most needs its log
// entry then had none.
describe('SCIM request log: written whatever the request carried', () => {
  let t: TestDatabase;
  const warnings: string[] = [];
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t.drop();
  });

  /** scimEdge on a real database, in front of a handler that answers a SCIM error with `detail`. */
  const appAnswering = (detail: string) => {
    const logger = createLogger({ silent: true });
    const warn = logger.warn.bind(logger);
    logger.warn = ((msg: string, meta?: unknown) => {
      warnings.push(`${msg} ${JSON.stringify(meta)}`);
      return warn(msg, meta);
    }) as typeof logger.warn;
    const app = express();
    app.use(scimEdge(t.db, logger));
    app.get('/scim/v2/Users/:id', (_req, res) => {
      res.locals['requestId'] = 'req-\u0000-\ud800';
      res.locals['scimError'] = { scimType: 'invalidValue', detail };
      res.status(400).json({});
    });
    return app;
  };

  const entryFor = async (path: string) => {
    // the row is written on 'finish', after the response: wait for it
    for (let i = 0; i < 50; i++) {
      const { rows } = await t.db.query<{ path: string; detail: string; request_id: string }>(
        `SELECT path, detail, request_id FROM scim_request_log WHERE path = $1`,
        [path],
      );
      if (rows[0]) return rows[0];
      await new Promise((r) => setTimeout(r, 20));
    }
    return undefined;
  };

  test('a detail quoting a NUL and a lone surrogate is stored with U+FFFD in their place', async () => {
    await request(appAnswering('User a\u0000b not found; \ud800 is not text')).get('/scim/v2/Users/nul-case').expect(400);
    const row = await entryFor('/scim/v2/Users/nul-case');
    expect(row).toEqual({ path: '/scim/v2/Users/nul-case', detail: 'User a\ufffdb not found; \ufffd is not text', request_id: 'req-\ufffd-\ufffd' });
    expect(warnings).toEqual([]);
  });

  test('a detail cut at 500 characters inside a surrogate pair keeps no half of it', async () => {
    await request(appAnswering(`${'x'.repeat(499)}\ud83d\ude00 and more`)).get('/scim/v2/Users/cut-case').expect(400);
    const row = await entryFor('/scim/v2/Users/cut-case');
    expect(row!.detail).toBe(`${'x'.repeat(499)}\ufffd`);
  });
});
