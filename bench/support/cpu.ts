// Where a benchmark's CPU went, on Linux (/proc), for a PostgreSQL server on the same machine: the server's processes
// (every process named `postgres`, whoever's database they serve) and the whole machine. Elsewhere `cpuSample`
// returns null and the bench prints node's own CPU only.
import { readdirSync, readFileSync } from 'node:fs';

export interface CpuSample {
  /** CPU ms used so far by every process named `postgres` alive now. */
  postgresMs: Map<number, number>;
  /** CPU ms the machine spent busy (all cores, not idle or waiting for I/O) since boot. */
  machineMs: number;
}

export interface CpuUse {
  postgresMs: number;
  machineMs: number;
}

// /proc reports clock ticks; 100 per second on every Linux build we run on (USER_HZ).
const TICK_MS = 10;

function processTicks(stat: string): number | null {
  // The command name is in parentheses and may hold spaces; the fields after it are space-separated.
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  const fields = stat.slice(close + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime
}

export function cpuSample(): CpuSample | null {
  let machineMs: number;
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    const busy = cpu.reduce((a, b) => a + b, 0) - (cpu[3] ?? 0) - (cpu[4] ?? 0);
    machineMs = busy * TICK_MS;
  } catch {
    return null;
  }
  const postgresMs = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
      const ticks = processTicks(readFileSync(`/proc/${entry}/stat`, 'utf8'));
      if (ticks !== null) postgresMs.set(Number(entry), ticks * TICK_MS);
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return { postgresMs, machineMs };
}

/**
 * CPU used between two samples. A PostgreSQL backend that ended in between (a closed connection) is missed with what
 * it used since `from`, so the phases measured keep their pools open until the second sample.
 */
export function cpuSince(from: CpuSample | null, to: CpuSample | null = cpuSample()): CpuUse | null {
  if (!from || !to) return null;
  let postgresMs = 0;
  for (const [pid, ms] of to.postgresMs) postgresMs += ms - (from.postgresMs.get(pid) ?? 0);
  return { postgresMs, machineMs: to.machineMs - from.machineMs };
}
