// npm run bench:webhook — autocannon against POST /webhook/servicenow (HMAC-signed, a unique RITM per
// request) on PostgreSQL, beside a baseline measured in the same run: a bare Express route doing one INSERT
// of an equivalent row. Both servers run as child processes so the load generator does not share their
// event loop. Prints requests/s and p50/p99 per round and the medians, and the ratio to the baseline.
//
// BENCH_TELEMETRY=both measures the webhook with metrics and tracing on (spans exported over OTLP/HTTP to a
// loopback receiver in its own process, /metrics scraped every 5 s on the metrics listener) beside itself with
// both off (METRICS_ENABLED=false, no OTLP endpoint), two services on the same database, rounds interleaved, and
// prints the ratio (target >= 0.9).
import autocannon from 'autocannon';
import { fork, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBenchDatabase } from './support/database';

const CONNECTIONS = 50;
const DURATION_S = Number(process.env['BENCH_DURATION_S'] ?? 10);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const SECRET = randomBytes(16).toString('hex');
const TELEMETRY = process.env['BENCH_TELEMETRY'] ?? '';
const OTLP_PORT = 18605;
const METRICS_PORT = 18604;
const SCRAPE_EVERY_MS = 5000;

/** The service's environment with telemetry off, or on (exporting to the loopback receiver, metrics listener). */
function telemetryEnv(on: boolean): Record<string, string> {
  // Nothing inherited from the shell decides it: both variables are set either way.
  return on
    ? { METRICS_ENABLED: 'true', METRICS_PORT: String(METRICS_PORT), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${OTLP_PORT}/v1/traces`, OTEL_SERVICE_NAME: 'provisio-bench' }
    : { METRICS_ENABLED: 'false', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '', OTEL_EXPORTER_OTLP_ENDPOINT: '' };
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

function start(script: string, args: string[], env: Record<string, string>, readyLine?: RegExp): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    // BENCH_CPU_PROF_DIR=<dir> writes a V8 CPU profile of each server for a look at where the time goes.
    const profDir = process.env['BENCH_CPU_PROF_DIR'];
    const execArgv = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
    const child = fork(script, args, { execArgv, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    const timer = setTimeout(() => reject(new Error(`${script} did not start`)), 30_000);
    const ready = () => {
      clearTimeout(timer);
      resolve(child);
    };
    child.once('message', ready);
    child.stdout?.on('data', (d: Buffer) => {
      if (readyLine?.test(d.toString())) ready();
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

let seq = 0;
function payload(run: string): string {
  const n = ++seq;
  return JSON.stringify({
    servicenow_ref: `RITM${run}${String(n).padStart(9, '0')}`,
    snow_req: `REQ${String(n).padStart(7, '0')}`,
    action: 'provision',
    user_email: `user${run}${n}@example.com`,
    user_name: `Bench User ${n}`,
    asset_type_name: 'Bench seat',
    requested_from: '2026-06-13T00:00:00Z',
    requested_until: '2026-07-13T00:00:00Z',
    config: { project_code: 'BENCH' },
  });
}

async function load(url: string, signed: boolean): Promise<Figures> {
  // RITM numbers are digits: a per-round prefix keeps refs unique across rounds.
  const run = String(Date.now() % 1_000_000);
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION_S,
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => {
          const body = payload(run);
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (signed) headers['x-hub-signature-256'] = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
          return { ...req, body, headers };
        },
      },
    ],
  });
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, non2xx: result.non2xx, errors: result.errors };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (f: Figures) => `${f.rps.toFixed(0).padStart(6)} req/s  p50 ${String(f.p50).padStart(3)} ms  p99 ${String(f.p99).padStart(3)} ms  non-2xx ${f.non2xx}  errors ${f.errors}`;

/** Scrapes the metrics listener every few seconds, as Prometheus would, while the telemetry-on service is loaded. */
function startScraper(): () => Promise<number> {
  let scrapes = 0;
  let bytes = 0;
  const timer = setInterval(() => {
    fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`)
      .then(async (r) => {
        bytes = (await r.text()).length;
        scrapes += 1;
      })
      .catch(() => undefined);
  }, SCRAPE_EVERY_MS);
  return async () => {
    clearInterval(timer);
    console.log(`  scrapes of /metrics: ${scrapes} (last ${bytes} bytes)`);
    return scrapes;
  };
}

function spanCount(sink: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    sink.once('message', (m: { spans: number }) => resolve(m.spans));
    sink.send('count');
  });
}

/** BENCH_TELEMETRY=both: the webhook with metrics and tracing on beside itself with both off, in one run. */
async function compareTelemetry(dbUrl: string): Promise<void> {
  const distDir = join(__dirname, '..');
  // One DATA_DIR for both: the master key and approval link key generated there by the first serve the second reads.
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-webhook-'));
  const serveEnv = (port: number) => ({
    DATABASE_URL: dbUrl, PORT: String(port), WEBHOOK_SECRET_TOKEN: SECRET, ADMIN_KEY: randomBytes(16).toString('hex'), LOG_LEVEL: 'info', DATA_DIR: dataDir,
  });
  const children: ChildProcess[] = [];
  try {
    const sink = await start(join(distDir, 'bench', 'support', 'otlp-sink.js'), [], { PORT: String(OTLP_PORT) });
    children.push(sink);
    children.push(await start(join(distDir, 'server', 'cli.js'), ['serve'], { ...serveEnv(18602), ...telemetryEnv(false) }, /listening/));
    children.push(await start(join(distDir, 'server', 'cli.js'), ['serve'], { ...serveEnv(18603), ...telemetryEnv(true) }, /listening/));
    await measureTelemetry(sink);
  } finally {
    // Services first (the tracing one flushes its spans to the sink as it stops), the sink last.
    for (const child of children.reverse()) await stop(child);
  }
}

async function measureTelemetry(sink: ChildProcess): Promise<void> {
  const offUrl = 'http://127.0.0.1:18602/webhook/servicenow';
  const onUrl = 'http://127.0.0.1:18603/webhook/servicenow';
  await load(offUrl, true);
  await load(onUrl, true);
  const offs: Figures[] = [];
  const ons: Figures[] = [];
  const stopScraping = startScraper();
  for (let r = 1; r <= ROUNDS; r++) {
    // Alternating which goes first, so neither always follows the other's background work (jobs, vacuum).
    const order: Array<[Figures[], string, string]> = r % 2 === 1 ? [[offs, offUrl, 'off'], [ons, onUrl, 'on ']] : [[ons, onUrl, 'on '], [offs, offUrl, 'off']];
    for (const [into, url, name] of order) {
      into.push(await load(url, true));
      console.log(`round ${r}  telemetry ${name}  ${fmt(into.at(-1)!)}`);
    }
  }
  const scrapes = await stopScraping();
  const spans = await spanCount(sink);
  const f = (xs: Figures[]) => ({ rps: median(xs.map((x) => x.rps)), p50: median(xs.map((x) => x.p50)), p99: median(xs.map((x) => x.p99)) });
  const a = f(offs);
  const b = f(ons);
  console.log(`\nPOST /webhook/servicenow on PostgreSQL, ${CONNECTIONS} connections, ${ROUNDS} x ${DURATION_S} s each, medians:`);
  console.log(`  metrics and tracing off: ${a.rps.toFixed(0)} req/s, p50 ${a.p50} ms, p99 ${a.p99} ms`);
  console.log(`  metrics and tracing on:  ${b.rps.toFixed(0)} req/s, p50 ${b.p50} ms, p99 ${b.p99} ms (${spans} spans exported, ${scrapes} scrapes)`);
  console.log(`  throughput ratio on/off: ${(b.rps / a.rps).toFixed(3)} (target >= 0.9)`);
  if ([...offs, ...ons].some((x) => x.non2xx > 0 || x.errors > 0)) console.log('  WARNING: some requests answered non-2xx or failed; see the rounds above');
  if (spans === 0) console.log('  WARNING: no span reached the receiver: tracing was not on');
}

async function main(): Promise<void> {
  const { db, url: dbUrl, close, drop } = await createBenchDatabase({ defaultUrl: 'postgres://postgres@127.0.0.1:5432/postgres' });
  try {
    // A personal type with a per-user quota: every request takes the quota lock, as real orders do.
    const { rows } = await db.query<{ id: number }>(
      `INSERT INTO asset_types (name, assignment_model, max_per_user, attributes)
       VALUES ('Bench seat', 'personal', 1, '[{"key": "project_code", "type": "string", "required": false}]') RETURNING id`,
    );
    await close();
    if (TELEMETRY === 'both') return await compareTelemetry(dbUrl);
    const distDir = join(__dirname, '..');
    const baseline = await start(join(distDir, 'bench', 'baseline-server.js'), [], {
      DATABASE_URL: dbUrl, PORT: '18601', ASSET_TYPE_ID: String(rows[0]!.id),
    });
    const service = await start(join(distDir, 'server', 'cli.js'), ['serve'], {
      DATABASE_URL: dbUrl, PORT: '18602', WEBHOOK_SECRET_TOKEN: SECRET, ADMIN_KEY: randomBytes(16).toString('hex'), LOG_LEVEL: 'info',
    }, /listening/);
    try {
      // Warm both up (JIT, connection pools) before measuring.
      await load('http://127.0.0.1:18601/baseline', false);
      await load('http://127.0.0.1:18602/webhook/servicenow', true);
      const base: Figures[] = [];
      const ours: Figures[] = [];
      for (let r = 1; r <= ROUNDS; r++) {
        base.push(await load('http://127.0.0.1:18601/baseline', false));
        ours.push(await load('http://127.0.0.1:18602/webhook/servicenow', true));
        console.log(`round ${r}  baseline ${fmt(base[r - 1]!)}`);
        console.log(`round ${r}  webhook  ${fmt(ours[r - 1]!)}`);
      }
      const b = { rps: median(base.map((f) => f.rps)), p50: median(base.map((f) => f.p50)), p99: median(base.map((f) => f.p99)) };
      const o = { rps: median(ours.map((f) => f.rps)), p50: median(ours.map((f) => f.p50)), p99: median(ours.map((f) => f.p99)) };
      console.log(`\nPOST /webhook/servicenow on PostgreSQL, ${CONNECTIONS} connections, ${ROUNDS} x ${DURATION_S} s, medians:`);
      console.log(`  baseline (bare Express + one INSERT): ${b.rps.toFixed(0)} req/s, p50 ${b.p50} ms, p99 ${b.p99} ms`);
      console.log(`  webhook (HMAC, validation, checks, audit, job): ${o.rps.toFixed(0)} req/s, p50 ${o.p50} ms, p99 ${o.p99} ms`);
      console.log(`  throughput ratio: ${((o.rps / b.rps) * 100).toFixed(1)} % of baseline (target >= 60 %, issue 16: the median of three runs); p99 ${o.p99} ms (target < 50 ms)`);
      if (ours.some((f) => f.non2xx > 0 || f.errors > 0)) console.log('  WARNING: the webhook answered non-2xx or failed some requests; see the rounds above');
    } finally {
      await stop(service);
      await stop(baseline);
    }
  } finally {
    await drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
