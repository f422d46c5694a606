// npm run bench:audit-chain — what the audit hash chain (migration 026) costs the writers of audit rows: WRITERS
// concurrent clients, each committing transactions that write ROWS_PER_TX audit rows (as a state change with its
// audit row does), with the chain's commit-time trigger on, beside the same load with it switched off
// (`ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain`), rounds interleaved, on PostgreSQL and on PGlite.
// Prints transactions/s per round, the medians and the ratio (chain on / chain off).
import { createPgliteDatabase, migrate, writeAudit, type Database } from '../adapter';
import { verifyAuditChain } from '../server/domain/audit/verify';
import { createBenchDatabase } from './support/database';

const WRITERS = Number(process.env['BENCH_WRITERS'] ?? 20);
const DURATION_MS = Number(process.env['BENCH_DURATION_S'] ?? 5) * 1000;
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const ROWS_PER_TX = Number(process.env['BENCH_ROWS_PER_TX'] ?? 2);

async function round(db: Database, writers: number): Promise<number> {
  let done = 0;
  const until = Date.now() + DURATION_MS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      while (Date.now() < until) {
        await db.transaction(async (tx) => {
          for (let i = 0; i < ROWS_PER_TX; i++) {
            await writeAudit(tx, { entity: 'order', entityId: w, action: 'update', before: { status: 'processing' }, after: { status: 'provisioned', step: i }, triggeredBy: `system:bench-${w}` });
          }
        });
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(label: string, db: Database, writers: number): Promise<void> {
  const on: number[] = [];
  const off: number[] = [];
  await round(db, writers); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    await db.exec('ALTER TABLE audit_log ENABLE TRIGGER audit_log_chain');
    on.push(await round(db, writers));
    await db.exec('ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain');
    off.push(await round(db, writers));
    process.stdout.write(`${label} round ${r + 1}: chain on ${on[r]!.toFixed(0)} tx/s, chain off ${off[r]!.toFixed(0)} tx/s\n`);
  }
  await db.exec('ALTER TABLE audit_log ENABLE TRIGGER audit_log_chain');
  const ratio = median(on) / median(off);
  process.stdout.write(
    `${label}: ${writers} writers, ${ROWS_PER_TX} audit rows per transaction: chain on ${median(on).toFixed(0)} tx/s, off ${median(off).toFixed(0)} tx/s, ratio ${ratio.toFixed(2)}\n`,
  );
}

async function main(): Promise<void> {
  const pg = await createBenchDatabase({ max: WRITERS });
  try {
    await measure('postgres', pg.db, WRITERS);
    // The rows written with the chain on are linked; those written with it off are (rightly) reported unlinked.
    const report = await verifyAuditChain(pg.db);
    process.stdout.write(`postgres: verify after the bench: ${report.intact ? 'intact' : `broken (${report.broken.kind}), as expected for rows written with the trigger off`}\n`);
  } finally {
    await pg.drop();
  }
  const lite = await createPgliteDatabase();
  try {
    await migrate(lite);
    // PGlite is one connection: transactions run one at a time whatever the number of writers.
    await measure('pglite', lite, 4);
  } finally {
    await lite.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
