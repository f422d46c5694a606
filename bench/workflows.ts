// npm run bench:workflows — 1,000 runs of a 5-step no-op workflow on PostgreSQL (DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/test; a throwaway database is created beside it and dropped afterwards).
// Prints, from one run of this script:
//   - the baseline: the same number of bare pg-boss jobs (5,000) that do nothing, worked by the same team;
//   - the engine in this process: runs/s and per-step time, and the per-step overhead as a ratio to the bare job;
//   - the engine in one and in two separate worker processes (`bench/workflows.ts --worker`): runs/s and the ratio;
//   - for each engine phase, on Linux, CPU per step of node and of PostgreSQL (all its processes) and how busy the
//     whole machine was (every process: something else running shows here), which bounds what a second process adds.
// Targets (issue 5): engine per step at most 2x the bare job; two worker processes at least 1.6x one.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';
import { createJobQueue, createLogger, createPostgresDatabase, type Database } from '../adapter';
import { createWorkflowEngine, type ExecutorRegistry } from '../workflows/engine';
import { cpuSample, cpuSince, type CpuUse } from './support/cpu';
import { createBenchDatabase } from './support/database';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 1000);
const STEPS = 5;
const TEAM = Number(process.env['BENCH_TEAM'] ?? 4);
const WORKFLOW = 'bench-noop';
const logger = createLogger({ silent: true });
const noop: ExecutorRegistry = { integration: async () => ({ ok: true, output: { ok: true, status: 200, body: null } }) };
const engineConfig = { pollingIntervalSeconds: 0.5 };

/** Worker mode: the engine's workers against the database in argv, started on a "go" line on stdin. */
async function worker(url: string): Promise<void> {
  const db = createPostgresDatabase({ connectionString: url, max: TEAM + 4 });
  const queue = createJobQueue(db, { logger, schedule: false });
  await queue.start();
  const engine = createWorkflowEngine({ db, queue, logger, executors: noop, config: engineConfig });
  process.stdout.write('ready\n');
  let cpuAtGo = process.cpuUsage();
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line === 'go') {
      cpuAtGo = process.cpuUsage();
      void engine.startWorkers({ teamSize: TEAM });
    }
    if (line === 'stop') {
      void (async () => {
        const used = process.cpuUsage(cpuAtGo);
        process.stdout.write(`cpu ${(used.user + used.system) / 1000}\n`);
        await engine.stop();
        await queue.stop({ graceful: false, timeoutMs: 1000 });
        await db.close();
        process.exit(0);
      })();
    }
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForRuns(db: Database, n: number): Promise<void> {
  for (;;) {
    const { rows } = await db.query<{ done: number; failed: number }>(
      `SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS done, count(*) FILTER (WHERE status IN ('failed', 'cancelled'))::int AS failed FROM workflow_runs`,
    );
    if ((rows[0]?.failed ?? 0) > 0) throw new Error(`${rows[0]?.failed} bench runs failed`);
    if ((rows[0]?.done ?? 0) >= n) return;
    await sleep(20);
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--worker') return worker(process.argv[3] as string);
  const t = await createBenchDatabase({ max: TEAM + 6 });
  const { db } = t;
  const queue = createJobQueue(db, { logger, schedule: false });
  await queue.start();
  const boss = queue.boss;
  const engine = createWorkflowEngine({ db, queue, logger, executors: noop, config: engineConfig });
  await engine.saveWorkflow({ name: WORKFLOW, steps: Array.from({ length: STEPS }, (_, i) => ({ id: `s${i + 1}`, kind: 'integration', operation: 'noop/op' })) }, 'bench');

  const startRuns = async () => {
    for (let i = 0; i < RUNS; i += 50) {
      await db.transaction(async (tx) => {
        for (let j = i; j < Math.min(RUNS, i + 50); j++) await engine.startRun(tx, { workflow: WORKFLOW, inputs: {} });
      });
    }
  };
  const clearRuns = async () => {
    await db.query(`DELETE FROM workflow_runs`);
  };

  // Baseline: bare pg-boss jobs that do nothing, worked by the same team, each worker fetching again at once after a
  // job (as the engine's workers do when they enqueue a next step), so polling does not dominate either figure.
  const jobs = RUNS * STEPS;
  await boss.createQueue('bench.noop');
  for (let i = 0; i < jobs; i += 500) await boss.insert(Array.from({ length: Math.min(500, jobs - i) }, () => ({ name: 'bench.noop', data: {} })));
  let worked = 0;
  const ids: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < TEAM; i++) {
    const id = await boss.work('bench.noop', { batchSize: 1, pollingIntervalSeconds: 0.5 }, async () => {
      worked++;
      for (const w of ids) boss.notifyWorker(w);
    });
    ids.push(id);
  }
  while (worked < jobs) await sleep(5);
  const bareMs = performance.now() - t0;
  for (const id of ids) await boss.offWork({ id });

  // The engine in this process.
  await startRuns();
  const t1 = performance.now();
  const cpu1 = process.cpuUsage();
  const sample1 = cpuSample();
  await engine.startWorkers({ teamSize: TEAM });
  await waitForRuns(db, RUNS);
  const engineMs = performance.now() - t1;
  const engineCpu = process.cpuUsage(cpu1);
  const engineUse = cpuSince(sample1);
  await engine.stop();
  await clearRuns();

  // The engine in separate worker processes.
  const inProcesses = async (n: number): Promise<{ ms: number; cpuMs: number; use: CpuUse | null }> => {
    const children: ChildProcess[] = [];
    let cpuMs = 0;
    for (let i = 0; i < n; i++) {
      const child = spawn(process.execPath, ['--import', 'tsx', __filename, '--worker', t.url], { stdio: ['pipe', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => {
          if (l === 'ready') resolve();
          if (l.startsWith('cpu ')) cpuMs += Number(l.slice(4));
        });
        child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
      });
      children.push(child);
    }
    await startRuns();
    const start = performance.now();
    const sample = cpuSample();
    for (const c of children) c.stdin?.write('go\n');
    await waitForRuns(db, RUNS);
    const ms = performance.now() - start;
    // Before the workers close their connections: a backend that has exited is no longer counted.
    const use = cpuSince(sample);
    for (const c of children) c.stdin?.write('stop\n');
    await Promise.all(children.map((c) => new Promise((r) => c.once('exit', r))));
    await clearRuns();
    return { ms, cpuMs, use };
  };
  const one = await inProcesses(1);
  const two = await inProcesses(2);
  const [oneMs, twoMs] = [one.ms, two.ms];

  const perStepBare = bareMs / jobs;
  const perStepEngine = engineMs / jobs;
  const rps = (ms: number) => (RUNS / ms) * 1000;
  const f = (n: number, d = 2) => n.toFixed(d);
  const busy = (cpuMs: number, wallMs: number) => `node CPU ${f((cpuMs / wallMs) * 100, 0)}% of one core`;
  // Per step, and as a share of the machine: with PostgreSQL on the same cores, what a second process could add.
  const split = (nodeCpuMs: number, use: CpuUse | null, wallMs: number) =>
    use
      ? `\n      CPU per step: node ${f(nodeCpuMs / jobs, 3)} ms, PostgreSQL ${f(use.postgresMs / jobs, 3)} ms; ` +
        `machine ${f((use.machineMs / wallMs) * 100, 0)}% of ${cpus().length * 100}% (PostgreSQL ${f((use.postgresMs / wallMs) * 100, 0)}%)`
      : '';
  console.log(`workflow engine bench: ${RUNS} runs x ${STEPS} no-op steps, ${TEAM} workers per process, PostgreSQL on the same ${cpus().length}-core machine`);
  console.log(`  bare pg-boss jobs   ${jobs} jobs in ${f(bareMs / 1000)} s: ${f(perStepBare, 3)} ms/job, ${f((jobs / bareMs) * 1000, 0)} jobs/s`);
  console.log(
    `  engine (in process) ${RUNS} runs in ${f(engineMs / 1000)} s: ${f(rps(engineMs), 1)} runs/s, ${f(perStepEngine, 3)} ms/step (${busy((engineCpu.user + engineCpu.system) / 1000, engineMs)})` +
      split((engineCpu.user + engineCpu.system) / 1000, engineUse, engineMs),
  );
  console.log(`  per-step overhead   engine ${f(perStepEngine, 3)} ms vs bare ${f(perStepBare, 3)} ms = ${f(perStepEngine / perStepBare)}x (target <= 2x)`);
  console.log(`  1 worker process    ${f(rps(oneMs), 1)} runs/s (${busy(one.cpuMs, oneMs)})${split(one.cpuMs, one.use, oneMs)}`);
  console.log(`  2 worker processes  ${f(rps(twoMs), 1)} runs/s = ${f(oneMs / twoMs)}x one (target >= 1.6x; ${busy(two.cpuMs, twoMs)} in all)${split(two.cpuMs, two.use, twoMs)}`);

  await queue.stop({ graceful: false, timeoutMs: 1000 });
  await t.drop();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
