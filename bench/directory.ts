// npm run bench:directory — 1,000 user lookups, each with the user's manager and (nested) groups, through the
// AD gateway against the Samba AD domain controller of tests/support/samba-ad.ts, beside the same LDAP searches
// made directly with ldapts in the same run. Target: the gateway at >= 60 % of the direct rate.
//
// One lookup is the three calls an orchestration makes for a requester, issued together:
//   gateway: GET /users/{sam}, GET /users/{sam}/manager, GET /users/{sam}/groups?nested=true (bearer token, spec
//            validation, problem mapping, the token checked against the database), the gateway in a child process;
//   direct:  the searches the directory module makes for those calls (user; user + manager entry; user + direct
//            groups + in-chain groups), on the same number of bound LDAPS connections.
// Rounds alternate so that both sides see the same machine; the medians and the median per-round ratio are
// printed. The gateway's clients use a plain keep-alive node:http client (an HTTP client's own cost is not the
// gateway's), and the gateway runs with its default token cache (GATEWAY_TOKEN_CACHE_MS).
// BENCH_LOOKUPS, BENCH_CONCURRENCY, BENCH_ROUNDS change the shape, BENCH_TOKEN_CACHE_MS=0 turns the token cache off; DATABASE_URL puts the gateway's tokens on PostgreSQL.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Agent, get as httpGet } from 'node:http';
import { Client, type Entry } from 'ldapts';
import { createLogger } from '../adapter';
import { createDirectory, escapeFilterValue, type DirectorySettings } from '../adapter';
import { buildConfig } from '../server/config';
import { mintToken } from '../server/domain/tokens/api-tokens';
import { buildGatewayApp } from '../server/gateway';
import { createTestDatabase } from '../tests/support/db';
import { ensureSambaAd, markTestRun, releaseSambaAd, type SambaAd } from '../tests/support/samba-ad';
import { benchGraph } from './directory-graph';
import { benchKerberos } from './directory-kerberos';

const N = Number(process.env['BENCH_LOOKUPS'] ?? 1000);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 8);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
// The directory module's default pool size; the direct side gets as many connections.
const POOL_SIZE = 4;
const USERS = ['jdoe', 'amanager', 'bleaver', 'ttoggle', 'mmember', 'o(brien)', 'svc-readonly'];
const IN_CHAIN = '1.2.840.113556.1.4.1941';
const USER_CLASS = '(objectCategory=person)(objectClass=user)';

function settingsOf(ad: SambaAd): DirectorySettings {
  return {
    server: ad.host, security: 'ldaps', caCertPem: readFileSync(ad.caCertPath, 'utf8'),
    bindDn: ad.bindDn, bindPassword: ad.bindPassword, baseDn: ad.seed.ou, poolSize: POOL_SIZE,
  };
}

/**
 * Child: the gateway with one read token, as `provisio ad-gateway` runs it, on a throwaway database: PGlite in
 * memory, or a fresh PostgreSQL database beside DATABASE_URL's (dropped on exit) when that is set.
 */
async function serveGateway(ad: SambaAd): Promise<void> {
  const logger = createLogger({ silent: true });
  const t = await createTestDatabase();
  const db = t.db;
  const { token } = await db.transaction((tx) =>
    mintToken(tx, { name: 'bench', scopes: ['admin:read'], role: null, expiresAt: null }, { role: 'superadmin', triggeredBy: 'system:bench' }),
  );
  const cache = process.env['BENCH_TOKEN_CACHE_MS'];
  const config = { ...buildConfig({}), ...(cache ? { tokenCacheMs: Number(cache) } : {}) };
  const app = buildGatewayApp({ db, logger, directory: createDirectory(settingsOf(ad), { logger }) }, config);
  const server = app.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port, token }));
  // Exit normally (not killed by the signal), so the database is dropped and --cpu-prof can write its profile.
  process.once('SIGTERM', () => {
    server.close();
    t.drop().finally(() => process.exit(0));
  });
}

/** The direct side: POOL_SIZE bound LDAPS connections, each used by one operation at a time. */
async function directSide(ad: SambaAd): Promise<{ lookup: (sam: string) => Promise<void>; close: () => Promise<void> }> {
  const s = settingsOf(ad);
  const attrs = ['sAMAccountName', 'userPrincipalName', 'mail', 'displayName', 'userAccountControl', 'manager',
    'department', 'departmentNumber', 'company', 'employeeID', 'title'];
  const clients: Client[] = [];
  for (let i = 0; i < POOL_SIZE; i++) {
    const c = new Client({ url: ad.ldapsUrl, tlsOptions: { ca: s.caCertPem, minVersion: 'TLSv1.2' }, timeout: 10_000 });
    await c.bind(s.bindDn ?? "", s.bindPassword ?? "");
    clients.push(c);
  }
  const idle = [...clients];
  const waiting: ((c: Client) => void)[] = [];
  const use = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
    const c = idle.pop() ?? (await new Promise<Client>((r) => waiting.push(r)));
    try {
      return await fn(c);
    } finally {
      const w = waiting.shift();
      if (w) w(c);
      else idle.push(c);
    }
  };
  const findUser = (c: Client, sam: string, attributes: string[]): Promise<Entry> =>
    c.search(s.baseDn, { scope: 'sub', filter: `(&${USER_CLASS}(sAMAccountName=${escapeFilterValue(sam)}))`, attributes, sizeLimit: 2 })
      .then((r) => {
        if (!r.searchEntries[0]) throw new Error(`no user ${sam}`);
        return r.searchEntries[0];
      });
  const groups = (c: Client, filter: string) =>
    c.search(s.baseDn, { scope: 'sub', filter, attributes: ['sAMAccountName', 'cn'], paged: { pageSize: 500 } });
  return {
    lookup: async (sam) => {
      await Promise.all([
        use((c) => findUser(c, sam, attrs)),
        use(async (c) => {
          const u = await findUser(c, sam, attrs);
          const manager = u['manager'];
          if (typeof manager === 'string') await c.search(manager, { scope: 'base', filter: `(&${USER_CLASS})`, attributes: attrs });
        }),
        use(async (c) => {
          const u = await findUser(c, sam, ['1.1']);
          const dn = escapeFilterValue(u.dn);
          await Promise.all([groups(c, `(&(objectClass=group)(member=${dn}))`), groups(c, `(&(objectClass=group)(member:${IN_CHAIN}:=${dn}))`)]);
        }),
      ]);
    },
    close: async () => {
      await Promise.all(clients.map((c) => c.unbind().catch(() => undefined)));
    },
  };
}

async function measure(n: number, one: (sam: string) => Promise<void>): Promise<{ rate: number; p99: number }> {
  const lat: number[] = [];
  let started = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (started < n) {
        const sam = USERS[started++ % USERS.length]!;
        const s = process.hrtime.bigint();
        await one(sam);
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  return { rate: n / secs, p99: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))]! };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (r: { rate: number; p99: number }) => `${r.rate.toFixed(0).padStart(6)} lookups/s   p99 ${r.p99.toFixed(1).padStart(6)} ms`;

async function main(): Promise<void> {
  if (process.argv[2] === '--serve') return serveGateway(JSON.parse(process.env['BENCH_SAMBA_AD']!) as SambaAd);
  // A lease, like a jest run's: no test run's teardown stops Samba under the bench.
  markTestRun();
  const ad = await ensureSambaAd();
  const child = fork(__filename, ['--serve'], { execArgv: [...process.execArgv, ...(process.env['BENCH_PROFILE'] ? ['--cpu-prof', '--cpu-prof-dir=/tmp/bench-prof'] : [])], env: { ...process.env, BENCH_SAMBA_AD: JSON.stringify(ad) } });
  const { port, token } = await new Promise<{ port: number; token: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { port: number; token: string }));
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
  });
  // A plain keep-alive client, so that the client's own cost (which the direct side does not have) stays small.
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY * 3 });
  const headers = { Authorization: `Bearer ${token}` };
  const get = (path: string): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const req = httpGet({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
          if (res.statusCode === 200) resolve(body);
          else reject(new Error(`GET ${path}: ${res.statusCode} ${JSON.stringify(body)}`));
        });
      });
      req.on('error', reject);
    });
  const viaGateway = async (sam: string) => {
    const key = encodeURIComponent(sam);
    await Promise.all([get(`/users/${key}`), get(`/users/${key}/manager`), get(`/users/${key}/groups?nested=true`)]);
  };
  const direct = await directSide(ad);

  try {
    // A sanity check that both sides find the same thing, then a warm-up (JIT, pools, TLS sessions).
    const g = (await get('/users/jdoe/groups?nested=true')) as { groups: unknown[] };
    if (g.groups.length !== 3) throw new Error(`unexpected groups for jdoe: ${JSON.stringify(g)}`);
    await measure(100, viaGateway);
    await measure(100, direct.lookup);

    const results = { gateway: [] as { rate: number; p99: number }[], direct: [] as { rate: number; p99: number }[] };
    console.log(`bench:directory — ${N} lookups (user + manager + nested groups) x ${ROUNDS} rounds, ${CONCURRENCY} concurrent, Samba AD over LDAPS, pool ${POOL_SIZE}`);
    const ratios: number[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      // Alternate which side goes first: load from elsewhere on the machine then falls on both alike.
      let gw: { rate: number; p99: number };
      let d: { rate: number; p99: number };
      if (r % 2 === 1) {
        gw = await measure(N, viaGateway);
        d = await measure(N, direct.lookup);
      } else {
        d = await measure(N, direct.lookup);
        gw = await measure(N, viaGateway);
      }
      results.gateway.push(gw);
      results.direct.push(d);
      ratios.push(gw.rate / d.rate);
      console.log(`round ${r}: gateway ${fmt(gw)}   |   direct ldapts ${fmt(d)}   |   ${((gw.rate / d.rate) * 100).toFixed(0)} %`);
    }
    const gw = { rate: median(results.gateway.map((x) => x.rate)), p99: median(results.gateway.map((x) => x.p99)) };
    const d = { rate: median(results.direct.map((x) => x.rate)), p99: median(results.direct.map((x) => x.p99)) };
    const ratio = median(ratios);
    console.log(`median  gateway ${fmt(gw)}`);
    console.log(`median  direct  ${fmt(d)}`);
    console.log(`gateway / direct (median of rounds) = ${(ratio * 100).toFixed(0)} % (target >= 60 %): ${ratio >= 0.6 ? 'PASS' : 'FAIL'}`);
    process.exitCode = ratio >= 0.6 ? 0 : 1;
    // Entra ID: the Graph directory beside bare Graph client calls (bench/directory-graph.ts), same run.
    if (!(await benchGraph())) process.exitCode = 1;
    // Kerberos (sealed/signed SASL layer) and NTLM binds beside simple bind (bench/directory-kerberos.ts), same run.
    if (!(await benchKerberos(ad))) process.exitCode = 1;
  } finally {
    await direct.close();
    agent.destroy();
    child.kill('SIGTERM');
    // Stops Samba only when these helpers started it and no jest run still uses it.
    await releaseSambaAd();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
