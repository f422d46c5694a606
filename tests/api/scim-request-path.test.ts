import request from 'supertest';
import { createJobQueue, createLogger, type Database, type JobQueue } from '../../adapter';
import { createIntegrationRuntime } from '../../integration-model';
import { buildApp } from '../../server/app';
import { buildConfig } from '../../server/config';
import { tokensChanged, VerifiedTokenCache } from '../../server/auth/token-cache';
import { ScimRequestLog } from '../../server/scim/log';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import { countingDatabase, type CountingDatabase } from '../support/counting-db';
import { createTestDatabase, testEngine, type TestDatabase } from '../support/db';
import { mintTestToken } from '../support/orders';

// Issue 16, the SCIM request path: the verified-token cache (checked against the database's token version), the
// request log written in batches, and the user's INSERT, audit row and read-back as one statement. What each must
// keep: a revoked token is refused at once, no request log entry is lost, nothing is written half.

const ADMIN_KEY = 'scim-path-admin-key-0123456789';
const CORE_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';

describe(`SCIM request path (${testEngine})`, () => {
  let t: TestDatabase;
  let queue: JobQueue;
  const logger = createLogger({ silent: true });
  beforeAll(async () => {
    t = await createTestDatabase();
    queue = createJobQueue(t.db, { logger, schedule: false });
    await queue.start();
  });
  afterAll(async () => {
    await queue.stop({ graceful: false, timeoutMs: 1000 });
    await t.drop();
  });

  /** The app over `db` (a counting wrapper of the test database, say) with its cache and log handed in. */
  const appOver = (db: Database, tokenCache: VerifiedTokenCache, scimRequestLog: ScimRequestLog) =>
    buildApp(
      { db, queue, logger, integrations: createIntegrationRuntime({ db, queue, logger }), adminKeyHash: async () => hashSecret(ADMIN_KEY), tokenCache, scimRequestLog },
      buildConfig({ validateResponses: true, adminKey: ADMIN_KEY }),
    );
  const tokenQueries = (c: CountingDatabase) => c.statements.filter((s) => /FROM api_tokens WHERE token_hash/.test(s)).length;
  const listUsers = (app: ReturnType<typeof appOver>, token: string) =>
    request(app).get('/scim/v2/Users?filter=' + encodeURIComponent('userName eq "nobody@example.com"')).set('Authorization', `Bearer ${token}`);

  describe('verified-token cache', () => {
    test('a verified token is not looked up again while nothing changed', async () => {
      const counted = countingDatabase(t.db);
      const cache = new VerifiedTokenCache(t.db, logger);
      const log = new ScimRequestLog(t.db, logger);
      const app = appOver(counted, cache, log);
      try {
        const token = await mintTestToken(t.db, 'cache-hit', ['scim:read']);
        expect(await cache.ready()).toBe(true);
        expect((await listUsers(app, token)).status).toBe(200);
        expect(tokenQueries(counted)).toBe(1);
        for (let i = 0; i < 3; i++) expect((await listUsers(app, token)).status).toBe(200);
        expect(tokenQueries(counted)).toBe(1);
      } finally {
        await log.close();
        await cache.close();
      }
    });

    test('a cached token revoked through the API is refused on the very next request', async () => {
      const cache = new VerifiedTokenCache(t.db, logger);
      const log = new ScimRequestLog(t.db, logger);
      const app = appOver(t.db, cache, log);
      try {
        const token = await mintTestToken(t.db, 'cache-revoke', ['scim:read']);
        expect(await cache.ready()).toBe(true);
        expect((await listUsers(app, token)).status).toBe(200);
        expect((await listUsers(app, token)).status).toBe(200);
        const { rows } = await t.db.query<{ id: number }>(`SELECT id FROM api_tokens WHERE name = 'cache-revoke'`);
        expect((await request(app).delete(`/admin/api-tokens/${rows[0]!.id}`).set('X-Admin-Key', ADMIN_KEY)).status).toBe(200);
        const res = await listUsers(app, token);
        expect(res.status).toBe(401);
      } finally {
        await log.close();
        await cache.close();
      }
    });

    test('a revoke committed by another writer bumps the version and announces it; the cache then serves nothing older', async () => {
      const cache = new VerifiedTokenCache(t.db, logger);
      try {
        expect(await cache.ready()).toBe(true);
        const before = (await t.db.query<{ version: number }>('SELECT version FROM api_token_version')).rows[0]!.version;
        const token = await mintTestToken(t.db, 'cache-other', ['scim:read']);
        const hash = hashSecret(token);
        cache.put(hash, { kind: 'token', tokenId: 1, name: 'cache-other', scopes: ['scim:read'], role: null, approverEmail: null }, Number(before), null, cache.epoch);
        expect(cache.get(hash)).toBeDefined();
        // A mint is no change to anybody's rights: no bump.
        expect((await t.db.query<{ version: number }>('SELECT version FROM api_token_version')).rows[0]!.version).toBe(before);
        // Neither is the once-a-minute last_used_at touch.
        await t.db.query(`UPDATE api_tokens SET last_used_at = now() WHERE name = 'cache-other'`);
        expect((await t.db.query<{ version: number }>('SELECT version FROM api_token_version')).rows[0]!.version).toBe(before);
        // A revoke is, in the revoking transaction (here plain SQL: what another process's revoke looks like).
        await t.db.query(`UPDATE api_tokens SET revoked_at = now() WHERE name = 'cache-other'`);
        const after = (await t.db.query<{ version: number }>('SELECT version FROM api_token_version')).rows[0]!.version;
        expect(Number(after)).toBe(Number(before) + 1);
        // Once told of the new version (at once on PGlite; when the NOTIFY arrives on PostgreSQL), nothing verified
        // before it is served: an entry under the old version is as good as none.
        cache.put(hash, { kind: 'token', tokenId: 1, name: 'cache-other', scopes: ['scim:read'], role: null, approverEmail: null }, Number(after), null, cache.epoch);
        expect(cache.get(hash)).toBeDefined();
        cache.put('other', { kind: 'token', tokenId: 2, name: 'x', scopes: ['scim:read'], role: null, approverEmail: null }, Number(before), null, cache.epoch);
        expect(cache.get('other')).toBeUndefined();
        // A lookup that began before a change this process committed keeps nothing, whatever version it read.
        const began = cache.epoch;
        tokensChanged();
        expect(cache.get(hash)).toBeUndefined();
        cache.put('late', { kind: 'token', tokenId: 3, name: 'late', scopes: ['scim:read'], role: null, approverEmail: null }, Number(after), null, began);
        expect(cache.get('late')).toBeUndefined();
        cache.put('late', { kind: 'token', tokenId: 3, name: 'late', scopes: ['scim:read'], role: null, approverEmail: null }, Number(after), null, cache.epoch);
        expect(cache.get('late')).toBeDefined();
      } finally {
        await cache.close();
      }
    });

    if (testEngine === 'pglite') {
      test('PGlite: a token expired by SQL in this process is refused on the next request though it was cached', async () => {
        const cache = new VerifiedTokenCache(t.db, logger);
        const log = new ScimRequestLog(t.db, logger);
        const app = appOver(t.db, cache, log);
        try {
          const token = await mintTestToken(t.db, 'cache-expire', ['scim:read']);
          expect(await cache.ready()).toBe(true);
          expect((await listUsers(app, token)).status).toBe(200);
          await t.db.query(`UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'cache-expire'`);
          expect((await listUsers(app, token)).status).toBe(401);
        } finally {
          await log.close();
          await cache.close();
        }
      });
    }

    test('a database that cannot LISTEN gets no caching: every request asks it', async () => {
      // countingDatabase has no `listen`: the cache has no way to hear of changes, so it serves nothing.
      const counted = countingDatabase(t.db);
      const cache = new VerifiedTokenCache(counted, logger);
      const log = new ScimRequestLog(t.db, logger);
      const app = appOver(counted, cache, log);
      try {
        const token = await mintTestToken(t.db, 'cache-none', ['scim:read']);
        expect(await cache.ready()).toBe(false);
        for (let i = 0; i < 3; i++) expect((await listUsers(app, token)).status).toBe(200);
        expect(tokenQueries(counted)).toBe(3);
      } finally {
        await log.close();
        await cache.close();
      }
    });
  });

  describe('request log in batches', () => {
    test('every one of many concurrent requests has its entry after the batch is written', async () => {
      const cache = new VerifiedTokenCache(t.db, logger);
      const log = new ScimRequestLog(t.db, logger, { maxBatch: 7 });
      const app = appOver(t.db, cache, log);
      try {
        const token = await mintTestToken(t.db, 'log-many', ['scim:read']);
        const ids = Array.from({ length: 40 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
        const res = await Promise.all(ids.map((id) => request(app).get(`/scim/v2/Users/${id}`).set('Authorization', `Bearer ${token}`)));
        expect(res.map((r) => r.status)).toEqual(ids.map(() => 404));
        await log.flush();
        const { rows } = await t.db.query<{ path: string; status: number; token_name: string }>(
          `SELECT path, status, token_name FROM scim_request_log WHERE token_name = 'log-many' ORDER BY path`,
        );
        expect(rows).toEqual(ids.map((id) => ({ path: `/scim/v2/Users/${id}`, status: 404, token_name: 'log-many' })));
      } finally {
        await log.close();
        await cache.close();
      }
    });

    test('entries still buffered at shutdown are written by close()', async () => {
      const cache = new VerifiedTokenCache(t.db, logger);
      // Nothing is written before close(): no size reached, no timer due.
      const log = new ScimRequestLog(t.db, logger, { flushAfterMs: 3_600_000, maxBatch: 1000 });
      const app = appOver(t.db, cache, log);
      try {
        const token = await mintTestToken(t.db, 'log-close', ['scim:read']);
        for (let i = 0; i < 5; i++) await listUsers(app, token).expect(200);
        expect(log.pending).toBe(5);
        const count = async () => Number((await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM scim_request_log WHERE token_name = 'log-close'`)).rows[0]!.n);
        expect(await count()).toBe(0);
        await log.close();
        expect(log.pending).toBe(0);
        expect(await count()).toBe(5);
      } finally {
        await log.close();
        await cache.close();
      }
    });
  });

  describe('POST /Users in one statement', () => {
    test('the user, its audit row and the resource answered; a taken userName writes neither', async () => {
      const cache = new VerifiedTokenCache(t.db, logger);
      const log = new ScimRequestLog(t.db, logger);
      const counted = countingDatabase(t.db);
      const app = appOver(counted, cache, log);
      try {
        const token = await mintTestToken(t.db, 'create-one', ['scim:read', 'scim:write']);
        const post = () =>
          request(app).post('/scim/v2/Users').set('Authorization', `Bearer ${token}`).set('Content-Type', 'application/scim+json')
            .send(JSON.stringify({ schemas: [CORE_USER], userName: 'Once@Example.com', active: true }));
        const created = await post();
        expect(created.status).toBe(201);
        const got = await request(app).get(`/scim/v2/Users/${created.body.id}`).set('Authorization', `Bearer ${token}`);
        expect(got.body).toEqual(created.body);
        const writes = counted.statements.filter((s) => /INSERT INTO scim_users/.test(s));
        expect(writes).toHaveLength(1);
        expect(writes[0]).toMatch(/INSERT INTO audit_log/);
        expect((await post()).status).toBe(409);
        const { rows } = await t.db.query<{ action: string; triggered_by: string }>(
          `SELECT action, triggered_by FROM audit_log WHERE entity = 'scim_user' AND diff->'after'->>'userName' = 'Once@Example.com'`,
        );
        expect(rows).toEqual([{ action: 'create', triggered_by: 'scim:token:create-one' }]);
        expect(Number((await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM scim_users WHERE lower(user_name) = 'once@example.com'`)).rows[0]!.n)).toBe(1);
      } finally {
        await log.close();
        await cache.close();
      }
    });

    test('a list page past the end still answers the total (count and page in one statement)', async () => {
      const cache = new VerifiedTokenCache(t.db, logger);
      const log = new ScimRequestLog(t.db, logger);
      const app = appOver(t.db, cache, log);
      try {
        const token = await mintTestToken(t.db, 'list-past', ['scim:read']);
        const total = Number((await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM scim_users')).rows[0]!.n);
        expect(total).toBeGreaterThan(0);
        const res = await request(app).get(`/scim/v2/Users?startIndex=${total + 5}`).set('Authorization', `Bearer ${token}`);
        expect(res.status).toBe(200);
        expect(res.body.totalResults).toBe(total);
        expect(res.body.Resources ?? []).toEqual([]);
      } finally {
        await log.close();
        await cache.close();
      }
    });
  });
});
