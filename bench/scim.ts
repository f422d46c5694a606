// npm run bench:scim — the SCIM request path against a bare Express route doing the same database work, on PostgreSQL
// (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test; a throwaway database is created beside it and
// dropped afterwards) and on PGlite (in a temporary directory, removed afterwards).
//
// For each database, the real app (buildApp, as `provisio serve` builds it: authentication with a `scim:write`
// bearer token, request validation, the SCIM request log, the audit row) and a bare Express app listen on loopback in
// this one process, over the same Database. A worker thread sends 8 requests at a time (keep-alive) for
// BENCH_SCIM_SECONDS (default 4) per measurement:
//   - POST /scim/v2/Users                              beside  POST /bare/users: one INSERT into a copy of scim_users
//   - GET /scim/v2/Users?filter=userName eq "…"        beside  GET /bare/users?userName=…: the indexed SELECT
// 3 rounds, the order alternating; printed: req/s, p50, p99 of each, per round and the median, and provisio / bare.
// Also printed: database statements per provisio request (every query and transaction statement, BEGIN/COMMIT and the
// request log's batched writes included, averaged over the measurement).
// Targets (issue 16): provisio >= 0.6 of the bare route on both databases; filter p99 < 15 ms on PostgreSQL.
//
// BENCH_SCIM_MILLION=1 (PostgreSQL only; adds a few minutes): 1,000,000 users written by one INSERT … SELECT
// generate_series in the shape store.ts writes, then `userName eq` at 8 concurrent. Target: p99 < 20 ms.
// BENCH_SCIM_DB=postgres|pglite runs one database only.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import express from 'express';
import { createJobQueue, createLogger, createPgliteDatabase, migrate, type Database, type Transaction } from '../adapter';
import { buildApp } from '../server/app';
import { buildConfig } from '../server/config';
import { mintToken } from '../server/domain/tokens/api-tokens';
import { createIntegrationRuntime } from '../integration-model';
import { createBenchDatabase } from './support/database';

const SECONDS = Number(process.env['BENCH_SCIM_SECONDS'] ?? 4);
const CONCURRENCY = 8;
const ROUNDS = 3;
const SEED_USERS = Number(process.env['BENCH_SCIM_USERS'] ?? 10_000);
const MILLION = process.env['BENCH_SCIM_MILLION'] === '1';
const ONLY = process.env['BENCH_SCIM_DB'];
const logger = createLogger({ silent: true });

/** `db` with every statement counted (BEGIN and COMMIT of a transaction too): round trips per request. */
function counting(db: Database): { db: Database; count: () => number } {
  let n = 0;
  const tx = (t: Transaction): Transaction => ({
    query: (sql, params) => {
      n++;
      return t.query(sql, params);
    },
    exec: (sql) => {
      n++;
      return t.exec(sql);
    },
  });
  const wrapped: Database = {
    kind: db.kind,
    query: (sql, params) => {
      n++;
      return db.query(sql, params);
    },
    transaction: (fn) => {
      n += 2;
      return db.transaction((t) => fn(tx(t)));
    },
    exec: (sql) => {
      n++;
      return db.exec(sql);
    },
    ...(db.listen ? { listen: db.listen.bind(db) } : {}),
    close: () => db.close(),
  };
  return { db: wrapped, count: () => n };
}

// The load generator runs in a worker thread: its own event loop, so the servers' loop measures only the servers.
const LOAD = `
const { parentPort, workerData } = require('node:worker_threads');
const { url, method, headers, bodies, concurrency, seconds, prefix } = workerData;
(async () => {
  const lat = [];
  let i = 0, failed = 0, firstError;
  const end = performance.now() + seconds * 1000;
  const one = async () => {
    while (performance.now() < end) {
      const n = i++;
      const target = method === 'GET' ? url(n) : url;
      const started = performance.now();
      try {
        const res = await fetch(target, { method, headers, body: method === 'GET' ? undefined : JSON.stringify({ ...bodies, userName: prefix + n + '@bench.example.com' }) });
        await res.arrayBuffer();
        if (res.status >= 300) { failed++; firstError ??= res.status; }
      } catch (e) { failed++; firstError ??= String(e); }
      lat.push(performance.now() - started);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, one));
  parentPort.postMessage({ lat, elapsed: performance.now() - t0, failed, firstError });
})();
`;

interface Run {
  rps: number;
  p50: number;
  p99: number;
  perRequest?: number;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs the load in a worker; `url` for GET is a function source of n (the user to look up). */
async function load(opts: { url: string; getUrl?: string; method: 'GET' | 'POST'; headers: Record<string, string>; prefix: string }): Promise<Omit<Run, 'perRequest'> & { n: number }> {
  const code = opts.getUrl
    ? LOAD.replace('const { url, method', `const url = ${opts.getUrl};\nconst { url: _u, method`)
    : LOAD;
  const worker = new Worker(code, {
    eval: true,
    workerData: { url: opts.url, method: opts.method, headers: opts.headers, bodies: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], active: true, displayName: 'Bench User', emails: [{ value: 'bench@example.com', type: 'work', primary: true }] }, concurrency: CONCURRENCY, seconds: SECONDS, prefix: opts.prefix },
  });
  const result = await new Promise<{ lat: number[]; elapsed: number; failed: number; firstError?: unknown }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  if (result.failed > 0) throw new Error(`${opts.method} ${opts.url}: ${result.failed} requests failed (first: ${String(result.firstError)})`);
  const lat = result.lat.sort((a, b) => a - b);
  return { rps: (lat.length / result.elapsed) * 1000, p50: pct(lat, 50), p99: pct(lat, 99), n: lat.length };
}

const fmt = (r: Run) => `${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2).padStart(6)} ms  p99 ${r.p99.toFixed(2).padStart(6)} ms${r.perRequest !== undefined ? `  ${r.perRequest.toFixed(2)} statements/request` : ''}`;

/** The columns store.ts writes for a user, as SQL over generate_series' `g`. */
const SEED_SELECT = (prefix: string) => `SELECT gen_random_uuid(), '${prefix}' || g || '@bench.example.com', 'ext-' || g,
    jsonb_build_object('givenName', 'Given' || g, 'familyName', 'Family'), 'User ' || g,
    jsonb_build_array(jsonb_build_object('value', 'user' || g || '@bench.example.com', 'type', 'work', 'primary', true)),
    true, 'Dept ' || (g % 50), 'CC' || (g % 20), 'E' || g, NULL::jsonb, '{}'::jsonb`;
const SEED_COLUMNS = 'id, user_name, external_id, name, display_name, emails, active, department, cost_center, employee_number, manager, raw';

async function benchDatabase(label: string, raw: Database): Promise<void> {
  const { db, count } = counting(raw);
  const queue = createJobQueue(db, { logger, schedule: false });
  await queue.start();
  const config = buildConfig({ validateResponses: false });
  const app = buildApp({ db, queue, logger, integrations: createIntegrationRuntime({ db, queue, logger }), adminKeyHash: async () => undefined }, config);

  // The bare routes: the same body parsing, the same single statement on a table of the same shape and indexes.
  await raw.exec(`CREATE TABLE bench_bare_users (LIKE scim_users INCLUDING ALL)`);
  const bare = express();
  bare.disable('x-powered-by');
  bare.use(express.json({ type: ['application/json', 'application/*+json'] }));
  bare.post('/bare/users', (req, res, next) => {
    const b = req.body as { userName: string; displayName?: string; emails?: unknown[]; active?: boolean };
    raw
      .query<{ id: string }>(
        `INSERT INTO bench_bare_users (id, user_name, display_name, emails, active) VALUES (gen_random_uuid(), $1, $2, $3, $4) RETURNING *`,
        [b.userName, b.displayName ?? null, JSON.stringify(b.emails ?? []), b.active ?? true],
      )
      .then((r) => res.status(201).json(r.rows[0]), next);
  });
  bare.get('/bare/users', (req, res, next) => {
    raw
      .query(`SELECT * FROM bench_bare_users WHERE lower(user_name) = lower($1)`, [String(req.query['userName'])])
      .then((r) => res.json({ totalResults: r.rows.length, Resources: r.rows }), next);
  });

  const listen = async (a: express.Express) => {
    const server = a.listen(0, '127.0.0.1');
    await new Promise<void>((r) => server.once('listening', () => r()));
    return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  };
  const p = await listen(app);
  const b = await listen(bare);
  try {
    const { token } = await raw.transaction((tx) =>
      mintToken(tx, { name: 'bench-scim', scopes: ['scim:read', 'scim:write'], role: null, expiresAt: null }, { role: 'superadmin', triggeredBy: 'system:bench' }),
    );
    const auth = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/scim+json' };
    for (const table of ['scim_users', 'bench_bare_users']) {
      await raw.query(`INSERT INTO ${table} (${SEED_COLUMNS}) ${SEED_SELECT('seed')} FROM generate_series(1, $1) g`, [SEED_USERS]);
      await raw.exec(`ANALYZE ${table}`);
    }
    const getUrl = (base: string, path: string) =>
      `(n) => ${JSON.stringify(base + path)} + encodeURIComponent(${path.includes('filter') ? `'userName eq "seed' + (1 + (n * 7919) % ${SEED_USERS}) + '@bench.example.com"'` : `'seed' + (1 + (n * 7919) % ${SEED_USERS}) + '@bench.example.com'`})`;

    console.log(`${label}: 8 concurrent, ${SECONDS} s per measurement, ${ROUNDS} rounds, ${SEED_USERS} users stored in each table`);
    const results: Record<string, Run[]> = { pPost: [], bPost: [], pGet: [], bGet: [] };
    // Warm-up: connections, plans, the token cache's listener, JIT.
    await load({ url: `${p.base}/scim/v2/Users`, method: 'POST', headers: auth, prefix: 'warm' });
    await load({ url: '', getUrl: getUrl(p.base, '/scim/v2/Users?filter='), method: 'GET', headers: auth, prefix: '' });
    for (let round = 1; round <= ROUNDS; round++) {
      const measure = async (key: string, run: () => Promise<Omit<Run, 'perRequest'> & { n: number }>, counted: boolean) => {
        const before = count();
        const r = await run();
        results[key]!.push({ ...r, ...(counted ? { perRequest: (count() - before) / r.n } : {}) });
      };
      const steps: [string, () => Promise<Omit<Run, 'perRequest'> & { n: number }>, boolean][] = [
        ['pPost', () => load({ url: `${p.base}/scim/v2/Users`, method: 'POST', headers: auth, prefix: `p${round}-` }), true],
        ['bPost', () => load({ url: `${b.base}/bare/users`, method: 'POST', headers: { 'Content-Type': 'application/json' }, prefix: `b${round}-` }), false],
        ['pGet', () => load({ url: '', getUrl: getUrl(p.base, '/scim/v2/Users?filter='), method: 'GET', headers: auth, prefix: '' }), true],
        ['bGet', () => load({ url: '', getUrl: getUrl(b.base, '/bare/users?userName='), method: 'GET', headers: {}, prefix: '' }), false],
      ];
      // Alternating: provisio first in odd rounds, the bare route first in even ones.
      const order = round % 2 === 1 ? [0, 1, 2, 3] : [1, 0, 3, 2];
      for (const i of order) await measure(...steps[i]!);
      console.log(`  round ${round}`);
      console.log(`    POST /scim/v2/Users          ${fmt(results['pPost']!.at(-1)!)}`);
      console.log(`    POST bare INSERT             ${fmt(results['bPost']!.at(-1)!)}`);
      console.log(`    GET ?filter=userName eq      ${fmt(results['pGet']!.at(-1)!)}`);
      console.log(`    GET bare indexed SELECT      ${fmt(results['bGet']!.at(-1)!)}`);
    }
    const med = (k: string): Run => {
      const rs = results[k]!;
      const perRequest = rs[0]!.perRequest !== undefined ? median(rs.map((r) => r.perRequest!)) : undefined;
      return { rps: median(rs.map((r) => r.rps)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), ...(perRequest !== undefined ? { perRequest } : {}) };
    };
    const [pp, bp, pg, bg] = [med('pPost'), med('bPost'), med('pGet'), med('bGet')];
    console.log(`  median of ${ROUNDS}`);
    console.log(`    POST /scim/v2/Users          ${fmt(pp)}`);
    console.log(`    POST bare INSERT             ${fmt(bp)}`);
    console.log(`    GET ?filter=userName eq      ${fmt(pg)}`);
    console.log(`    GET bare indexed SELECT      ${fmt(bg)}`);
    console.log(`    provisio / bare: POST ${(pp.rps / bp.rps).toFixed(2)}, GET ${(pg.rps / bg.rps).toFixed(2)} (target >= 0.6)` +
      (raw.kind === 'postgres' ? `; filter p99 ${pg.p99.toFixed(2)} ms (target < 15 ms)` : ''));

    if (MILLION && raw.kind === 'postgres') {
      console.log(`  ${label}: 1,000,000 users stored (one INSERT … SELECT generate_series)`);
      const started = performance.now();
      await raw.query(`INSERT INTO scim_users (${SEED_COLUMNS}) ${SEED_SELECT('m')} FROM generate_series(1, 1000000) g`);
      await raw.exec('ANALYZE scim_users');
      console.log(`    seeded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      const mUrl = `(n) => ${JSON.stringify(`${p.base}/scim/v2/Users?filter=`)} + encodeURIComponent('userName eq "m' + (1 + (n * 7919) % 1000000) + '@bench.example.com"')`;
      await load({ url: '', getUrl: mUrl, method: 'GET', headers: auth, prefix: '' });
      const r = await load({ url: '', getUrl: mUrl, method: 'GET', headers: auth, prefix: '' });
      console.log(`    GET ?filter=userName eq      ${fmt(r)} (target p99 < 20 ms)`);
    }
  } finally {
    await new Promise<void>((r) => p.server.close(() => r()));
    await new Promise<void>((r) => b.server.close(() => r()));
    await queue.stop({ graceful: false, timeoutMs: 1000 });
  }
}

async function main(): Promise<void> {
  console.log('(figures from one machine; the load generator shares it with the servers and the database)');
  if (ONLY !== 'pglite') {
    const { db, drop } = await createBenchDatabase({});
    try {
      await benchDatabase('PostgreSQL', db);
    } finally {
      await drop();
    }
  }
  if (ONLY !== 'postgres') {
    const dir = mkdtempSync(join(tmpdir(), 'provisio-bench-scim-'));
    const db = await createPgliteDatabase({ dataDir: dir, command: 'bench:scim' });
    try {
      await migrate(db);
      await benchDatabase('PGlite', db);
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
