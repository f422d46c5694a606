import { Gauge, Registry } from 'prom-client';
import type { Queryable } from '../db';
import { eventMetricsRegistry } from './metrics';

/*
 * Gauges of what the database holds, read when scraped: one grouped query each, nothing kept in memory, so every
 * process serving the same database reports the same figures and none of them drifts.
 */

interface CountRow {
  a: string;
  b: string;
  n: string | number;
}

interface GaugeSpec {
  name: string;
  help: string;
  labels: readonly [string, string];
  /** One grouped count: columns `a`, `b` (the two labels) and `n`. */
  sql: string;
}

const GAUGES: readonly GaugeSpec[] = [
  {
    name: 'provisio_orders',
    help: 'Orders by action and status.',
    labels: ['action', 'status'],
    sql: 'SELECT action AS a, status AS b, count(*) AS n FROM orders GROUP BY 1, 2',
  },
  {
    name: 'provisio_pool_instances',
    help: 'Pool instances by asset type and state (free, in_use, reinstall, failed).',
    labels: ['asset_type', 'state'],
    sql: `SELECT t.name AS a, s.state AS b, count(*) AS n FROM assets s JOIN asset_types t ON t.id = s.asset_type_id GROUP BY 1, 2`,
  },
  {
    name: 'provisio_outbox_messages',
    help: 'Outbox rows not yet sent, by channel and state (queued, sending, failed, dead).',
    labels: ['channel', 'state'],
    sql: `SELECT channel AS a, state AS b, count(*) AS n FROM outbox WHERE state <> 'sent' GROUP BY 1, 2`,
  },
  {
    name: 'provisio_queue_jobs',
    help: 'pg-boss jobs waiting or running, by queue and state (created, retry, active).',
    labels: ['queue', 'state'],
    sql: `SELECT name AS a, state::text AS b, count(*) AS n FROM pgboss.job WHERE state IN ('created', 'retry', 'active') GROUP BY 1, 2`,
  },
];

export interface MetricsExposition {
  /** `text/plain; version=0.0.4; charset=utf-8`. */
  readonly contentType: string;
  /** The Prometheus text exposition: the process's instruments and this database's gauges. */
  render(): Promise<string>;
}

/**
 * The exposition of one database's gauges beside the process-wide instruments. A gauge whose query fails (a
 * table not there yet) reports nothing for that scrape rather than failing the others.
 */
export function createMetricsExposition(db: Queryable): MetricsExposition {
  const own = new Registry();
  for (const spec of GAUGES) {
    new Gauge({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labels,
      registers: [own],
      async collect() {
        this.reset();
        let rows: CountRow[];
        try {
          rows = (await db.query<CountRow>(spec.sql)).rows;
        } catch {
          return;
        }
        for (const r of rows) this.set({ [spec.labels[0]]: r.a, [spec.labels[1]]: r.b }, Number(r.n));
      },
    });
  }
  const merged = Registry.merge([eventMetricsRegistry(), own]);
  return { contentType: merged.contentType, render: () => merged.metrics() };
}
