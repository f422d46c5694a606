// npm run bench:outbox — the durable outbox's throughput beside bare nodemailer (issue 12).
// On PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test; a throwaway database beside it).
// The SMTP server is smtp-server in a child process (bench/support/smtp-sink.ts): STARTTLS with a certificate of a
// test CA, AUTH PLAIN, every mail counted by recipient domain and Message-ID. Two phases of BENCH_MAILS (default
// 1,000) approval mails each, alternating for BENCH_ROUNDS rounds (default 3), in one run:
//   - bare: nodemailer `sendMail` of each mail (rendered from the same template), all handed to one pooled
//     transport at once, until every promise resolved and the server counted them;
//   - outbox: each mail enqueued with `enqueueMail` in a transaction of its own (BENCH_CONCURRENCY at a time,
//     default 20: outbox row, pg-boss job, audit row), while the outbox worker of this process (the production
//     defaults: 2 polling loops of 25 jobs) drains them, until every row is `sent` and the server counted them.
// Fair by construction: both sides use the same transport options (adapter/mail `transportOptions`: STARTTLS
// required, certificate verified against the CA, AUTH, timeouts) and the same pool (5 connections, 100 mails per
// connection, nodemailer's defaults), the same template rendered per mail, and the same server. The outbox side
// additionally pays for durability: its transactions, the claims and the recorded outcomes, and its worker's polling.
// On a 2-core machine PostgreSQL, this process and the SMTP server share the cores, so the outbox's round trips per
// mail (BEGIN, row, job, audit row, COMMIT; the drain adds about half a statement more) cost throughput nearly one
// for one while the enqueue overlaps the drain; the drain-only phase shows the worker's own overhead apart.
// BENCH_DRAIN_ONLY=1 adds a last phase: the mails enqueued first with the worker stopped, then only the drain timed.
// BENCH_BARE_LANES=<n> feeds the bare pool n mails at a time instead of all at once.
// Prints mails/s of each round, the medians and their ratio outbox / bare (target >= 0.7), and checks that each mail
// arrived exactly once (distinct Message-IDs).
import nodemailer from 'nodemailer';
import { createLogger, QueueName, createJobQueue, resolveSmtpSettings, transportOptions, type Database } from '../adapter';
import { announceSettingsChanged, updateSettings } from '../server/domain/settings/settings';
import { createOutboxWorker, enqueueMail, renderMail, type MailTemplateData, type OutboxWorker } from '../server/domain/notifications';
import { countingDatabase } from '../tests/support/counting-db';
import { createBenchDatabase } from './support/database';
import { SINK_CREDENTIALS, startSmtpSink } from './support/smtp-sink';

const MAILS = Number(process.env['BENCH_MAILS'] ?? 1000);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 20);
const DRAIN_ONLY = process.env['BENCH_DRAIN_ONLY'] === '1';
const BARE_LANES = Number(process.env['BENCH_BARE_LANES'] ?? 0);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const PUBLIC_URL = 'https://provisio.bench.example';
const linkUrl = (id: string) => `${PUBLIC_URL}/approvals/links/${id}`;
const POOL = { maxConnections: 5, maxMessages: 100 } as const;

const approval = (i: number): MailTemplateData['approval_request'] => ({
  order_id: i,
  approval_id: i,
  asset_type_name: 'Standard VDI',
  requester_email: `user${i}@example.com`,
  requester_name: `User ${i}`,
  requested_from: '2026-12-01T08:00:00.000Z',
  requested_until: '2027-01-31T17:00:00.000Z',
  reason: 'Bench justification for a build machine',
  cost: { amount: 42.5, currency: 'EUR' },
  links: { approve: `approve-${i}`, decline: `decline-${i}` },
});

/** Runs `one(i)` for i < total, `lanes` at a time. */
async function inLanes(total: number, lanes: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      for (let i = next++; i < total; i = next++) await one(i);
    }),
  );
}

async function sentRows(db: Database, from: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE id > $1 AND state = 'sent'`, [from]);
  return rows[0]!.n;
}

async function maxId(db: Database): Promise<number> {
  const { rows } = await db.query<{ id: string | null }>(`SELECT max(id) AS id FROM outbox`);
  return Number(rows[0]!.id ?? 0);
}

async function waitRowsSent(db: Database, from: number, count: number): Promise<void> {
  for (;;) {
    if ((await sentRows(db, from)) >= count) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function main(): Promise<void> {
  const logger = createLogger(process.env['BENCH_LOG'] ? { level: process.env['BENCH_LOG'] } : { silent: true });
  const bench = await createBenchDatabase({ max: 20 });
  const sink = await startSmtpSink();
  let worker: OutboxWorker | undefined;
  // Everything the outbox sends is counted (pg-boss's statements too); the bench's own polling uses bench.db.
  const db = countingDatabase(bench.db);
  const queue = createJobQueue(db, { logger, schedule: false });
  try {
    await queue.start();
    const raw = {
      host: '127.0.0.1',
      port: sink.port,
      tls_mode: 'starttls',
      username: SINK_CREDENTIALS.user,
      password: SINK_CREDENTIALS.pass,
      from_address: 'provisio@bench.example',
      ca_cert_pem: sink.caPem,
    };
    await db.transaction((tx) => updateSettings(tx, 'smtp', raw, { triggeredBy: 'system:bench' }));
    announceSettingsChanged('smtp');
    const settings = resolveSmtpSettings(raw);
    const ctx = { linkUrl, publicUrl: PUBLIC_URL };
    const bare = nodemailer.createTransport({ ...transportOptions(settings), pool: true as const, ...POOL });
    const newWorker = () => createOutboxWorker({ db, queue, logger, linkUrl, publicUrl: PUBLIC_URL, mailer: POOL });

    const bareSend = (i: number, domain: string) => {
      const r = renderMail('approval_request', approval(i), ctx);
      return bare.sendMail({ from: settings.fromAddress, to: `approver${i}@${domain}`, subject: r.subject, text: r.text, html: r.html });
    };
    const enqueue = (i: number, domain: string) =>
      db.transaction((tx) => enqueueMail(tx, queue, { template: 'approval_request', to: [`approver${i}@${domain}`], data: approval(i) }, { triggeredBy: 'system:bench' }));

    // Warm-up: JIT, both pools' connections, the database pool, a few of each, not counted.
    process.stdout.write('warming up (50 of each)…\n');
    worker = newWorker();
    await worker.register();
    await Promise.all(Array.from({ length: 50 }, (_, i) => bareSend(i, 'warm-bare.bench')));
    const warmFrom = await maxId(bench.db);
    await inLanes(50, CONCURRENCY, (i) => enqueue(i, 'warm-outbox.bench').then(() => undefined));
    await waitRowsSent(bench.db, warmFrom, 50);

    const rate = (ms: number) => (MAILS / ms) * 1000;
    const fmt = (n: number, d = 1) => n.toFixed(d);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const rows: string[] = [];
    const bareRates: number[] = [];
    const outboxRates: number[] = [];
    const statementsPerMail: number[] = [];
    let lost = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      // Bare nodemailer: every mail handed to the pool at once, as a caller with 1,000 mails to send would.
      const bareDomain = `bare${round}.bench`;
      let t0 = performance.now();
      if (BARE_LANES > 0) await inLanes(MAILS, BARE_LANES, (i) => bareSend(i, bareDomain).then(() => undefined));
      else await Promise.all(Array.from({ length: MAILS }, (_, i) => bareSend(i, bareDomain)));
      const bareCount = await sink.waitFor(bareDomain, MAILS);
      const bareMs = performance.now() - t0;
      bareRates.push(rate(bareMs));
      rows.push(`| ${round} | bare nodemailer sendMail | ${fmt(bareMs / 1000, 2)} | ${fmt(rate(bareMs))} | ${bareCount.mails} (${bareCount.distinct}) |`);

      // The outbox: enqueued in transactions while the worker drains; done when every row is `sent`.
      const outboxDomain = `outbox${round}.bench`;
      const from = await maxId(bench.db);
      const statementsBefore = db.statements.length;
      t0 = performance.now();
      await inLanes(MAILS, CONCURRENCY, (i) => enqueue(i, outboxDomain).then(() => undefined));
      const enqueuedMs = performance.now() - t0;
      const outboxCount = await sink.waitFor(outboxDomain, MAILS);
      await waitRowsSent(bench.db, from, MAILS);
      const outboxMs = performance.now() - t0;
      outboxRates.push(rate(outboxMs));
      statementsPerMail.push((db.statements.length - statementsBefore) / MAILS);
      if (outboxCount.mails !== MAILS || outboxCount.distinct !== MAILS) lost++;
      rows.push(
        `| ${round} | outbox: enqueue + drain | ${fmt(outboxMs / 1000, 2)} | ${fmt(rate(outboxMs))} | ${outboxCount.mails} (${outboxCount.distinct}); ` +
          `enqueue done at ${fmt(enqueuedMs / 1000, 2)} s |`,
      );
    }

    let drainRow: string | undefined;
    if (DRAIN_ONLY) {
      await worker.stop();
      const from = await maxId(bench.db);
      const e0 = performance.now();
      await inLanes(MAILS, CONCURRENCY, (i) => enqueue(i, 'drain.bench').then(() => undefined));
      const enqueueMs = performance.now() - e0;
      worker = newWorker();
      const t0 = performance.now();
      await worker.register();
      queue.wake(QueueName.OUTBOX_SEND);
      const c = await sink.waitFor('drain.bench', MAILS);
      await waitRowsSent(bench.db, from, MAILS);
      const ms = performance.now() - t0;
      drainRow =
        `| – | outbox: enqueue only (worker stopped) | ${fmt(enqueueMs / 1000, 2)} | ${fmt(rate(enqueueMs))} | – |\n` +
        `| – | outbox: drain only | ${fmt(ms / 1000, 2)} | ${fmt(rate(ms))} | ${c.mails} (${c.distinct}) |`;
    }

    process.stdout.write(`\n${MAILS} approval mails per phase, ${ROUNDS} rounds, STARTTLS + AUTH PLAIN to smtp-server on loopback (child process), PostgreSQL\n`);
    process.stdout.write(`pool on both sides: ${POOL.maxConnections} connections, ${POOL.maxMessages} mails per connection; outbox enqueue ${CONCURRENCY} transactions at a time\n`);
    process.stdout.write(`| round | phase | wall s | mails/s | delivered (distinct Message-IDs) |\n|---|---|---|---|---|\n${rows.join('\n')}\n`);
    if (drainRow) process.stdout.write(`${drainRow}\n`);
    const ratio = median(outboxRates) / median(bareRates);
    process.stdout.write(`\nmedian mails/s: bare ${fmt(median(bareRates))}, outbox ${fmt(median(outboxRates))}\n`);
    process.stdout.write(`outbox / bare: ${ratio.toFixed(2)} (target >= 0.7: ${ratio >= 0.7 ? 'met' : 'NOT met'})\n`);
    process.stdout.write(`outbox SQL statements per mail, enqueue and drain (BEGIN/COMMIT not counted): ${statementsPerMail.map((n) => fmt(n, 2)).join(', ')}\n`);
    if (lost) process.stdout.write(`WARNING: in ${lost} round(s) the outbox did not deliver each mail exactly once\n`);
    bare.close();
  } finally {
    await worker?.stop();
    await queue.stop({ graceful: false, timeoutMs: 2000 });
    sink.stop();
    await bench.drop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench:outbox failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
