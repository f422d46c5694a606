// bench:startup's memory breakdown: what each part of the service holds once started, measured in one process
// (`node --expose-gc dist/bench/startup-memory.js <dataDir>`, run by bench/startup.ts after its timed rounds).
// The parts are built in the order `provisio serve` builds them, each measured after a full garbage collection:
// resident memory (RSS), the V8 heap in use, and memory outside the heap (`external`: PGlite's WebAssembly memory
// is counted there). The deltas say what each part added. The last step answers one request per operation kind
// that the demo serves first, since express-openapi-validator compiles an operation's validators on first use.
import type { AddressInfo } from 'node:net';
import { createJobQueue, createLogger, migrate, openDatabase } from '../adapter';
import { createIntegrationRuntime } from '../integration-model';
import { buildApp } from '../server/app';
import { buildConfig } from '../server/config';

interface Reading {
  step: string;
  rss: number;
  heap: number;
  external: number;
}

const MB = 1024 * 1024;
const gc = (globalThis as { gc?: () => void }).gc;

function read(step: string): Reading {
  gc?.();
  const m = process.memoryUsage();
  return { step, rss: m.rss / MB, heap: m.heapUsed / MB, external: m.external / MB };
}

async function main(): Promise<void> {
  if (!gc) throw new Error('run with node --expose-gc');
  const dataDir = process.argv[2];
  if (!dataDir) throw new Error('usage: startup-memory.js <dataDir of a started service>');
  const sharedBuffers = process.env['PGLITE_SHARED_BUFFERS'] ?? '32MB';
  const readings: Reading[] = [read('node, the service modules loaded')];

  const logger = createLogger({ silent: true });
  const db = await openDatabase({ dataDir, pgliteSharedBuffers: sharedBuffers, logger, command: 'bench:startup memory' });
  await db.query('SELECT 1');
  readings.push(read(`PGlite open (shared_buffers ${sharedBuffers})`));
  await migrate(db);
  readings.push(read('migrations checked'));
  const queue = createJobQueue(db, { logger, schedule: true });
  await queue.start();
  readings.push(read('pg-boss started'));

  const config = buildConfig({ validateResponses: false });
  const app = buildApp({ db, queue, logger, integrations: createIntegrationRuntime({ db, queue, logger }), adminKeyHash: async () => undefined }, config);
  readings.push(read('app built (spec, express-openapi-validator, routes)'));

  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Each answered by its validator (401 without credentials still runs the request validator first for these).
  for (const path of ['/healthz', '/readyz', '/orders', '/admin/asset-types', '/scim/v2/Users?filter=userName%20eq%20%22a%22', '/openapi.json']) {
    await (await fetch(`${base}${path}`)).arrayBuffer();
  }
  readings.push(read('first requests answered (validators compiled on first use)'));
  await new Promise<void>((r) => server.close(() => r()));
  await queue.stop();
  await db.close();

  console.log('memory breakdown (after a full GC at each step; MB):');
  console.log(`${'step'.padEnd(62)} ${'RSS'.padStart(7)} ${'+RSS'.padStart(7)} ${'heap'.padStart(7)} ${'+heap'.padStart(7)} ${'extern'.padStart(7)} ${'+ext'.padStart(7)}`);
  let prev: Reading | undefined;
  for (const r of readings) {
    const d = (a: number, b: number | undefined) => (b === undefined ? '' : (a - b).toFixed(0));
    console.log(
      `${r.step.padEnd(62)} ${r.rss.toFixed(0).padStart(7)} ${d(r.rss, prev?.rss).padStart(7)} ${r.heap.toFixed(0).padStart(7)} ${d(r.heap, prev?.heap).padStart(7)} ${r.external.toFixed(0).padStart(7)} ${d(r.external, prev?.external).padStart(7)}`,
    );
    prev = r;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
