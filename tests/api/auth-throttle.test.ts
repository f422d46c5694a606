import { createHmac } from 'node:crypto';
import http, { type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAuthThrottle } from '../../server/auth/auth-throttle';
import { createTestApp, TEST_ADMIN_KEY, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { mintTestToken } from '../support/orders';

/*
 * Brute-force throttling (server/auth/auth-throttle.ts) over a real socket: each credential kind is guessed from its
 * own loopback address (the client socket is bound to 127.0.0.x with `localAddress`, which Linux routes on
 * loopback), so `req.ip` is that address exactly as a remote client's would be. Delays are asserted as the
 * throttle's decision, never by the clock.
 */

const SLOW_AFTER = 2;
const BLOCK_AFTER = 4;
const WINDOW_S = 2;
const WEBHOOK_SECRET = 'whsec-throttle-test-0123456789';
const PUBLIC_URL = 'https://provisio.example.test';
const APPROVER = 'boss@example.com';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown> & { code?: string; status?: number | string };
  text: string;
}

describe(`brute-force throttling of authentication (${testEngine})`, () => {
  let t: TestApp;
  let server: Server;
  let port: number;
  let adminToken: string;
  let scimToken: string;
  /** The path of a real, issued approval link (GET shows it and decides nothing). */
  let linkPath: string;

  /** One request to the app from `from` (a 127.0.0.x address). */
  function call(from: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method, path, localAddress: from, headers: { accept: 'application/json', ...headers, ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: Reply['body'] = {};
            try {
              parsed = JSON.parse(text) as Reply['body'];
            } catch {
              /* not JSON: the assertions name the status */
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  const sign = (raw: string, secret: string) => `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;

  /** Each kind: a request with a wrong credential, one with a good one, and the status that shows the good one got in. */
  interface Kind {
    kind: string;
    from: string;
    elsewhere: string;
    bad: () => Promise<Reply>;
    badFrom: (from: string) => Promise<Reply>;
    good: (from: string) => Promise<Reply>;
    badStatus: number;
    goodStatus: number;
    /** Every wrong credential sent, which the audit row must not hold. */
    guesses: string[];
  }
  const kinds: Kind[] = [];

  beforeAll(async () => {
    t = await createTestApp({
      authThrottleSlowAfter: SLOW_AFTER,
      authThrottleBlockAfter: BLOCK_AFTER,
      authThrottleWindowS: WINDOW_S,
      authThrottleDelayMs: 1,
      webhookSecretToken: WEBHOOK_SECRET,
      publicUrl: PUBLIC_URL,
    });
    const mint = async (name: string, scopes: string[]) => {
      const res = await t.http().post('/admin/api-tokens').set(t.admin).send({ name, scopes });
      expect(res.status).toBe(201);
      return (res.body as { token: string }).token;
    };
    adminToken = await mint('throttle-reader', ['admin:read']);
    scimToken = await mint('throttle-scim', ['scim:read']);
    // An order waiting for approval, whose mail carries a real signed link.
    const writer = await mintTestToken(t.db, 'throttle-writer', ['orders:write']);
    const type = await t.http().post('/admin/asset-types').set(t.admin)
      .send({ name: 'Throttled seat', assignment_model: 'personal', requires_approval: true, fallback_approver: APPROVER });
    expect(type.status).toBe(201);
    const placed = await t.http().post('/orders').set('Authorization', `Bearer ${writer}`)
      .send({ asset_type_name: 'Throttled seat', user_email: 'jane@example.com', user_name: 'Jane Doe' });
    expect(placed.status).toBe(201);
    const { rows } = await t.db.query<{ data: { links: { approve: string } } }>(`SELECT data FROM outbox WHERE template = 'approval_request'`);
    linkPath = t.linkSigner.url(rows[0]!.data.links.approve).slice(PUBLIC_URL.length);
    server = http.createServer(t.app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;

    let n = 0;
    const guess = (prefix: string) => `${prefix}${String(++n).padStart(4, '0')}-guess-9f8e7d6c5b4a`;
    const guesses: Record<string, string[]> = { bearer: [], admin_key: [], hmac: [], approval_link: [], scim: [] };
    const remember = (k: string, g: string) => (guesses[k]!.push(g), g);
    kinds.push(
      {
        kind: 'bearer',
        from: '127.0.0.11',
        elsewhere: '127.0.0.21',
        bad: () => kinds[0]!.badFrom('127.0.0.11'),
        badFrom: (from) => call(from, 'GET', '/admin/audit', { authorization: `Bearer ${remember('bearer', guess('xpat_'))}` }),
        good: (from) => call(from, 'GET', '/admin/audit', { authorization: `Bearer ${adminToken}` }),
        badStatus: 401,
        goodStatus: 200,
        guesses: guesses['bearer']!,
      },
      {
        kind: 'admin_key',
        from: '127.0.0.12',
        elsewhere: '127.0.0.22',
        bad: () => kinds[1]!.badFrom('127.0.0.12'),
        badFrom: (from) => call(from, 'GET', '/admin/audit', { 'x-admin-key': remember('admin_key', guess('admin-key-')) }),
        good: (from) => call(from, 'GET', '/admin/audit', { 'x-admin-key': TEST_ADMIN_KEY }),
        badStatus: 401,
        goodStatus: 200,
        guesses: guesses['admin_key']!,
      },
      {
        kind: 'hmac',
        from: '127.0.0.13',
        elsewhere: '127.0.0.23',
        bad: () => kinds[2]!.badFrom('127.0.0.13'),
        badFrom: (from) => {
          const wrongSecret = remember('hmac', guess('secret-'));
          return call(from, 'POST', '/webhook/servicenow', { 'x-hub-signature-256': remember('hmac', sign('{}', wrongSecret)) }, '{}');
        },
        // Signed right over an empty object: authenticated, then refused by the schema (422), so no order is made.
        good: (from) => call(from, 'POST', '/webhook/servicenow', { 'x-hub-signature-256': sign('{}', WEBHOOK_SECRET) }, '{}'),
        badStatus: 401,
        goodStatus: 422,
        guesses: guesses['hmac']!,
      },
      {
        kind: 'approval_link',
        from: '127.0.0.14',
        elsewhere: '127.0.0.24',
        bad: () => kinds[3]!.badFrom('127.0.0.14'),
        badFrom: (from) => call(from, 'GET', `/approvals/links/${remember('approval_link', `${guess('L')}.1798761600.${'A'.repeat(43)}`)}`),
        good: (from) => call(from, 'GET', linkPath),
        badStatus: 403,
        goodStatus: 200,
        guesses: guesses['approval_link']!,
      },
      {
        kind: 'scim',
        from: '127.0.0.15',
        elsewhere: '127.0.0.25',
        bad: () => kinds[4]!.badFrom('127.0.0.15'),
        badFrom: (from) => call(from, 'GET', '/scim/v2/Users', { authorization: `Bearer ${remember('scim', guess('xpat_'))}` }),
        good: (from) => call(from, 'GET', '/scim/v2/Users', { authorization: `Bearer ${scimToken}` }),
        badStatus: 401,
        goodStatus: 200,
        guesses: guesses['scim']!,
      },
    );
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await t.close();
  });

  const credentialKindOf = (k: Kind) => (k.kind === 'scim' ? 'bearer' : k.kind);

  describe.each(['bearer', 'admin_key', 'hmac', 'approval_link', 'scim'])('%s', (name) => {
    const k = () => kinds.find((x) => x.kind === name)!;

    test('failures are slowed, then refused 429 with Retry-After; elsewhere a good credential still works; audited once', async () => {
      const { from, elsewhere } = k();
      expect(await t.authThrottle.decide(from)).toEqual({ action: 'allow' });
      // A good credential never counts: the address stays untouched.
      expect((await k().good(from)).status).toBe(k().goodStatus);
      expect(await t.authThrottle.decide(from)).toEqual({ action: 'allow' });

      for (let i = 1; i < SLOW_AFTER; i++) expect((await k().bad()).status).toBe(k().badStatus);
      expect(await t.authThrottle.decide(from)).toEqual({ action: 'allow' });
      expect((await k().bad()).status).toBe(k().badStatus);
      // Slowed from SLOW_AFTER failures on, the delay doubling with each further one.
      expect(await t.authThrottle.decide(from)).toEqual({ action: 'slow', delayMs: 1, failures: SLOW_AFTER });
      expect((await k().bad()).status).toBe(k().badStatus);
      expect(await t.authThrottle.decide(from)).toEqual({ action: 'slow', delayMs: 2, failures: SLOW_AFTER + 1 });
      // A good credential from the address is still let in while it is only slowed.
      expect((await k().good(from)).status).toBe(k().goodStatus);
      expect((await k().bad()).status).toBe(k().badStatus); // the BLOCK_AFTER-th failure: answered, then blocked

      const decision = await t.authThrottle.decide(from);
      expect(decision).toMatchObject({ action: 'block', failures: BLOCK_AFTER });
      const refused = await k().bad();
      expect(refused.status).toBe(429);
      const retryAfter = Number(refused.headers['retry-after']);
      expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= WINDOW_S).toBe(true);
      if (name === 'scim') {
        expect(refused.headers['content-type']).toMatch(/^application\/scim\+json/);
        expect(refused.body).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '429' });
      } else {
        expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(refused.body).toMatchObject({ status: 429, code: 'TOO_MANY_ATTEMPTS', retry_after: retryAfter });
      }
      // Refused before the credential is checked: a good one from the blocked address is refused too.
      expect((await k().good(from)).status).toBe(429);
      // Another address is untouched: its good credential works, its wrong one is judged (not refused).
      expect((await k().good(elsewhere)).status).toBe(k().goodStatus);
      expect((await k().badFrom(elsewhere)).status).toBe(k().badStatus);
      expect(await t.authThrottle.decide(elsewhere)).toEqual({ action: 'allow' });

      // One audit row for the block, not one per attempt; it names the address, count and kinds, never a credential.
      const { rows } = await t.db.query<{ action: string; triggered_by: string; diff: { after: Record<string, unknown> }; text: string }>(
        `SELECT action, triggered_by, diff, diff::text AS text FROM audit_log WHERE entity = 'auth' AND entity_id = $1`,
        [from],
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ action: 'throttled', triggered_by: 'system:auth-throttle' });
      expect(rows[0]!.diff.after).toMatchObject({ address: from, failures: BLOCK_AFTER, credential_kinds: [credentialKindOf(k())], window_s: WINDOW_S });
      expect(k().guesses.length).toBeGreaterThanOrEqual(BLOCK_AFTER);
      for (const g of [...k().guesses, adminToken, scimToken, TEST_ADMIN_KEY, WEBHOOK_SECRET]) expect(rows[0]!.text).not.toContain(g);
    });
  });

  test('the block lifts after the window', async () => {
    const adminKey = kinds[1]!;
    const from = '127.0.0.41';
    for (let i = 0; i < BLOCK_AFTER; i++) expect((await adminKey.badFrom(from)).status).toBe(401);
    const refused = await adminKey.good(from);
    expect(refused.status).toBe(429);
    // Waits out the window (what Retry-After said), then the address is judged again like any other.
    await new Promise((r) => setTimeout(r, Number(refused.headers['retry-after']) * 1000 + 300));
    expect(await t.authThrottle.decide(from)).toEqual({ action: 'allow' });
    expect((await adminKey.good(from)).status).toBe(200);
  });

  test('requests without any credential are no guesses and do not count', async () => {
    const from = '127.0.0.31';
    for (let i = 0; i < BLOCK_AFTER + 2; i++) {
      const res = await call(from, 'GET', '/admin/audit');
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('UNAUTHENTICATED');
    }
    expect(await t.authThrottle.decide(from)).toEqual({ action: 'allow' });
  });

  test('a loopback reverse proxy\'s X-Forwarded-For names the client (trust proxy: loopback)', async () => {
    for (let i = 0; i < BLOCK_AFTER; i++) {
      expect((await call('127.0.0.1', 'GET', '/admin/audit', { 'x-forwarded-for': '203.0.113.7', 'x-admin-key': `wrong-${i}-0123456789abcdef` })).status).toBe(401);
    }
    expect(await t.authThrottle.decide('203.0.113.7')).toMatchObject({ action: 'block' });
    // The proxy's own address, and its other clients, are not blocked.
    expect((await call('127.0.0.1', 'GET', '/admin/audit', { 'x-forwarded-for': '203.0.113.8', 'x-admin-key': TEST_ADMIN_KEY })).status).toBe(200);
    expect((await call('127.0.0.1', 'GET', '/admin/audit', { 'x-forwarded-for': '203.0.113.7', 'x-admin-key': TEST_ADMIN_KEY })).status).toBe(429);
  });

  test('AUTH_THROTTLE_WINDOW_S=0 turns the throttle off', async () => {
    const off = createAuthThrottle({ slowAfter: 1, blockAfter: 2, windowS: 0, delayMs: 1 }, { db: t.db, logger: t.leaver.logger, credentialInPath: new Set() });
    for (let i = 0; i < 5; i++) await off.recordFailure('198.51.100.1', 'bearer');
    expect(await off.decide('198.51.100.1')).toEqual({ action: 'allow' });
  });
});
