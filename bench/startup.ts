// npm run bench:startup — time from `npm start` to the first 200 from /healthz, and resident memory at rest,
// for the demo service on the embedded database (PGlite), beside a bare Express + PGlite process measured in
// the same run (bench/startup-baseline.ts).
//
// Each side first starts once on a fresh data directory (creating the database and, for the service, running
// its migrations and seeding the demo); the ROUNDS starts after it are the ones timed, alternating the two
// sides. The service is started the way the README says, `npm start`, so the stale-build check is in the time.
// RSS is the sum over the started process and its descendants, read from /proc after REST_MS at rest.
// Targets (issue 16): ready <= 3 s, RSS at rest <= 200 MB.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const REST_MS = Number(process.env['BENCH_REST_MS'] ?? 5000);
const PORT = 18611;
// Both sides run PGlite with the same shared_buffers, the service's default unless the shell sets another.
const SHARED_BUFFERS = process.env['PGLITE_SHARED_BUFFERS'] ?? '32MB';

interface Side {
  name: string;
  command: string[];
  dataDir: string;
  env: Record<string, string>;
}

interface Figures {
  readyMs: number;
  rssMb: number;
}

function descendants(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/<pid>/stat is the parent pid; the name field (2) may hold spaces but sits in parentheses.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return children.flatMap((c) => [c, ...descendants(c)]);
}

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function untilHealthy(child: ChildProcess, started: bigint): Promise<number> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before /healthz answered`);
    try {
      const res = await fetch(`http://127.0.0.1:${PORT}/healthz`);
      if (res.status === 200) return Number(process.hrtime.bigint() - started) / 1e6;
    } catch {
      // not listening yet
    }
    if (Number(process.hrtime.bigint() - started) > 120_000_000_000) throw new Error('no /healthz within 120 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  // The process group: `npm start` runs node under a shell.
  process.kill(-child.pid!, 'SIGTERM');
  await exited;
}

async function startOnce(side: Side): Promise<Figures> {
  const started = process.hrtime.bigint();
  const child = spawn(side.command[0]!, side.command.slice(1), {
    cwd: ROOT,
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, ...side.env, PGLITE_SHARED_BUFFERS: SHARED_BUFFERS, PORT: String(PORT), HOST: '127.0.0.1', DATA_DIR: side.dataDir },
  });
  try {
    const readyMs = await untilHealthy(child, started);
    await new Promise((r) => setTimeout(r, REST_MS));
    const pids = [child.pid!, ...descendants(child.pid!)];
    const rssMb = pids.reduce((sum, p) => sum + rssKb(p), 0) / 1024;
    return { readyMs, rssMb };
  } finally {
    await stop(child);
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'provisio-bench-startup-'));
  const sides: Side[] = [
    { name: 'service (npm start, DEMO=1)', command: ['npm', 'start', '--silent'], dataDir: join(base, 'service'), env: { DEMO: '1', LOG_LEVEL: 'warn' } },
    { name: 'bare Express + PGlite', command: [process.execPath, join(__dirname, 'startup-baseline.js')], dataDir: join(base, 'bare'), env: {} },
  ];
  const results = new Map<string, Figures[]>(sides.map((s) => [s.name, []]));
  try {
    for (const side of sides) {
      const first = await startOnce(side);
      console.log(`${side.name}: first start on a fresh data directory ${first.readyMs.toFixed(0)} ms, RSS ${first.rssMb.toFixed(0)} MB`);
    }
    for (let round = 1; round <= ROUNDS; round += 1) {
      for (const side of sides) {
        const f = await startOnce(side);
        results.get(side.name)!.push(f);
        console.log(`round ${round} ${side.name}: ready ${f.readyMs.toFixed(0)} ms, RSS at rest ${f.rssMb.toFixed(0)} MB`);
      }
    }
    // What each part holds, in one process over the service's data directory (the service is stopped by now).
    const breakdown = spawnSync(process.execPath, ['--expose-gc', join(__dirname, 'startup-memory.js'), sides[0]!.dataDir], {
      cwd: ROOT,
      env: { ...process.env, PGLITE_SHARED_BUFFERS: SHARED_BUFFERS },
      encoding: 'utf8',
    });
    console.log(`\n${breakdown.stdout}${breakdown.status === 0 ? '' : `memory breakdown failed: ${breakdown.stderr}`}`);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  const [svc, bare] = sides.map((s) => results.get(s.name)!);
  const ready = [median(svc!.map((f) => f.readyMs)), median(bare!.map((f) => f.readyMs))];
  const rss = [median(svc!.map((f) => f.rssMb)), median(bare!.map((f) => f.rssMb))];
  console.log(`\nPGlite shared_buffers ${SHARED_BUFFERS} on both sides`);
  console.log(`medians of ${ROUNDS}: service ready ${ready[0]!.toFixed(0)} ms (target <= 3000), bare ${ready[1]!.toFixed(0)} ms, ratio ${(ready[0]! / ready[1]!).toFixed(2)}x`);
  console.log(`            service RSS ${rss[0]!.toFixed(0)} MB (target <= 200), bare ${rss[1]!.toFixed(0)} MB, ratio ${(rss[0]! / rss[1]!).toFixed(2)}x`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
