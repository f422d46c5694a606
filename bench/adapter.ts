// npm run bench:adapter — 5,000 calls through the integration runtime to a local HTTPS server with OAuth2
// client-credentials auth (token fetched once, then cached), beside the same calls made with a bare
// keep-alive axios instance in the same run. The server runs in a child process; rounds alternate and
// the medians are printed with the ratio (target: the runtime at >= 70 % of the bare throughput).
import axios from 'axios';
import { fork } from 'node:child_process';
import { createServer } from 'node:https';
import { Agent } from 'node:https';
import winston from 'winston';
import { createIntegrationClient, pemToDataUrl, type LogLevel } from '../adapter';
import { createCa, issueServerCert } from '../tests/support/pki';

const N = 5000;
const CONCURRENCY = 50;
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const TOKEN = 'bench-access-token-0123456789';

/** Child: the HTTPS API and its token endpoint. */
function serve(keyPem: string, certPem: string): void {
  let tokenRequests = 0;
  const server = createServer({ key: keyPem, cert: certPem }, (req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/oauth/token') {
        tokenRequests++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: TOKEN, token_type: 'Bearer', expires_in: 3600 }));
        return;
      }
      const ok = req.headers.authorization === `Bearer ${TOKEN}`;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ok ? { id: 7, name: 'desktop-07', tags: ['vdi', 'pool-a'] } : { error: 'unauthorized' }));
    });
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as { port: number }).port }));
  process.on('message', (m) => {
    if (m === 'stats') process.send?.({ tokenRequests });
  });
}

async function measure(one: () => Promise<void>): Promise<{ rps: number; p99: number }> {
  const lat: number[] = [];
  let started = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (started < N) {
        started++;
        const s = process.hrtime.bigint();
        await one();
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  return { rps: N / secs, p99: lat[Math.floor(lat.length * 0.99)]! };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  if (process.argv[2] === '--serve') return serve(process.env['KEY_PEM']!, process.env['CERT_PEM']!);
  const ca = createCa('bench-ca');
  const cert = issueServerCert(ca);
  const child = fork(__filename, ['--serve'], { env: { ...process.env, KEY_PEM: cert.keyPem, CERT_PEM: cert.certPem }, execArgv: process.execArgv });
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve((m as { port: number }).port)));
  const logger = winston.createLogger({ level: 'silly', transports: [new winston.transports.Console({ silent: true })] });
  const level = (process.env['BENCH_LOG_LEVEL'] ?? 'info') as LogLevel;
  const client = createIntegrationClient(
    {
      server: { protocol: 'https', host: '127.0.0.1', port },
      tls: { enabled: true },
      mtls: { ca: pemToDataUrl(ca.certPem) },
      authentication: { type: 'oauth2_client_credentials', client_id: 'bench', client_secret: 'bench-secret', token_url: `https://127.0.0.1:${port}/oauth/token` },
      logging: { level },
    },
    { logger, name: 'bench' },
  );
  const bare = axios.create({ baseURL: `https://127.0.0.1:${port}`, httpsAgent: new Agent({ keepAlive: true, ca: ca.certPem }), proxy: false });
  const viaRuntime = async () => {
    const e = await client.call({ method: 'GET', path: '/api/desktops/7' });
    if (typeof e === 'string' || !e.ok) throw new Error(`runtime call failed: ${typeof e === 'string' ? e : e.status}`);
  };
  const viaBare = async () => {
    await bare.get('/api/desktops/7', { headers: { authorization: `Bearer ${TOKEN}` } });
  };
  await measure(viaRuntime); // warm-up: JIT, TLS sessions, the token
  await measure(viaBare);
  const runtime: { rps: number; p99: number }[] = [];
  const baseline: { rps: number; p99: number }[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    baseline.push(await measure(viaBare));
    runtime.push(await measure(viaRuntime));
    console.log(`round ${r}: bare ${baseline[r - 1]!.rps.toFixed(0)} calls/s p99 ${baseline[r - 1]!.p99.toFixed(1)} ms | runtime ${runtime[r - 1]!.rps.toFixed(0)} calls/s p99 ${runtime[r - 1]!.p99.toFixed(1)} ms`);
  }
  child.send('stats');
  const stats = await new Promise<{ tokenRequests: number }>((resolve) => child.once('message', (m) => resolve(m as { tokenRequests: number })));
  const b = median(baseline.map((x) => x.rps));
  const o = median(runtime.map((x) => x.rps));
  console.log(`\n${N} calls x ${ROUNDS} rounds, ${CONCURRENCY} concurrent, HTTPS, OAuth2 client credentials, integration log level '${level}', medians:`);
  console.log(`  bare keep-alive axios: ${b.toFixed(0)} calls/s, p99 ${median(baseline.map((x) => x.p99)).toFixed(1)} ms`);
  console.log(`  integration runtime:   ${o.toFixed(0)} calls/s, p99 ${median(runtime.map((x) => x.p99)).toFixed(1)} ms`);
  console.log(`  ratio: ${((o / b) * 100).toFixed(1)} % of bare (target >= 70 %); token requests in total: ${stats.tokenRequests}`);
  client.close();
  child.kill();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
