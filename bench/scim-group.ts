// npm run bench:scim-group — SCIM group membership writes through the HTTP API on a listening server, on PGlite
// (what `provisio serve` uses without DATABASE_URL) and on PostgreSQL (DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/test; a throwaway database is created beside it and dropped afterwards).
// BENCH_ENGINE=pglite|postgres picks one; BENCH_SCIM_SIZES (default 1000,5000,10000,20000) sets the member counts.
// Prints, per engine and size:
//   - one `PATCH /scim/v2/Groups/{id}` adding N members (`{"value": id}`, as Entra sends them; 20,000 of them are
//     980 KB, under the 1 MiB body limit) to an empty group;
//   - then one PATCH adding a single member to that group, one removing N/2 by Entra's value list, and one
//     PUT of the whole list (the group's size should not make a one-member change expensive);
//   - for each: the status, the wall time, and the event loop's longest stall during the request
//     (perf_hooks.monitorEventLoopDelay; the client runs in this process too, but only sends a prepared body).
//   - one PATCH of 10 operations selecting members by a filter other than value eq (each scans the group);
//   - one PATCH of 1,000 operations, each removing one member by `members[value eq "…"]`.
// Sizes above the server's per-request limit are expected to be refused with 413 tooMany, quickly.
// Target (issue 14): linear time in N, and no stall above ~100 ms on a 2-core machine.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createJobQueue, createLogger, createPgliteDatabase, migrate, type Database } from '../adapter';
import { buildApp } from '../server/app';
import { buildConfig } from '../server/config';
import { mintToken } from '../server/domain/tokens/api-tokens';
import { createBenchDatabase } from './support/database';
import { createIntegrationRuntime } from '../integration-model';

const SIZES = (process.env['BENCH_SCIM_SIZES'] ?? '1000,5000,10000,20000').split(',').map(Number);
const ENGINES = (process.env['BENCH_ENGINE'] ?? 'pglite,postgres').split(',');
const OPS = Number(process.env['BENCH_SCIM_OPS'] ?? 1000);
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const logger = createLogger({ silent: true });

interface Timed {
  status: number;
  ms: number;
  stallMs: number;
  detail: string;
}

async function run(engine: string): Promise<void> {
  let db: Database;
  let drop: () => Promise<void>;
  if (engine === 'postgres') {
    const b = await createBenchDatabase({ max: 10 });
    db = b.db;
    drop = b.drop;
  } else {
    // on disk, as `provisio serve` runs it (in memory, PGlite's growing files are copied on every extension)
    const dir = mkdtempSync(join(tmpdir(), 'provisio-bench-scim-'));
    db = await createPgliteDatabase({ dataDir: dir });
    await migrate(db);
    drop = async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    };
  }
  const queue = createJobQueue(db, { logger, schedule: false });
  await queue.start();
  const app = buildApp({ db, queue, logger, integrations: createIntegrationRuntime({ db, queue, logger }), adminKeyHash: async () => undefined }, buildConfig({ validateResponses: false }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/scim/v2`;
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  try {
    const { token } = await db.transaction((tx) =>
      mintToken(tx, { name: 'bench-scim', scopes: ['scim:read', 'scim:write'], role: null, expiresAt: null }, { role: 'superadmin', triggeredBy: 'system:bench' }),
    );
    const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/scim+json' };
    const most = Math.max(...SIZES) + 1;
    await db.query(
      `INSERT INTO scim_users (id, user_name) SELECT gen_random_uuid(), 'bench' || g || '@bench.example.com' FROM generate_series(1, $1) g`,
      [most],
    );
    const { rows } = await db.query<{ id: string }>(`SELECT id::text AS id FROM scim_users ORDER BY user_name`);
    const ids = rows.map((r) => r.id);
    if (engine === 'postgres') await db.query('ANALYZE scim_users');

    const send = async (method: string, path: string, body: unknown): Promise<Timed> => {
      const text = JSON.stringify(body);
      histogram.reset();
      const started = performance.now();
      const res = await fetch(`${base}${path}`, { method, headers, body: text });
      const answer = await res.text();
      const ms = performance.now() - started;
      let detail = '';
      if (res.status >= 400) {
        try {
          const e = JSON.parse(answer) as { scimType?: string; detail?: string };
          detail = ` ${e.scimType ?? ''} ${String(e.detail ?? '').slice(0, 90)}`;
        } catch {
          detail = ` ${answer.slice(0, 90)}`;
        }
      }
      return { status: res.status, ms, stallMs: histogram.max / 1e6, detail };
    };
    const line = (what: string, t: Timed, extra = '') =>
      console.log(`  ${what.padEnd(46)} ${String(t.status).padStart(3)} ${t.ms.toFixed(0).padStart(7)} ms   max stall ${t.stallMs.toFixed(0).padStart(6)} ms${extra}${t.detail}`);
    const count = async (gid: string) =>
      Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM scim_group_members WHERE group_id = $1`, [gid])).rows[0]!.n);
    const newGroup = async (name: string): Promise<string> => {
      const res = await fetch(`${base}/Groups`, { method: 'POST', headers, body: JSON.stringify({ displayName: name, members: [] }) });
      if (res.status !== 201) throw new Error(`creating group ${name}: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { id: string }).id;
    };
    const member = (id: string) => ({ value: id });

    console.log(`${engine}: SCIM group membership writes (${ids.length} users stored)`);
    // Warm-up: the spec validator compiles each operation's schemas on its first request, and the engines plan
    // new statements; neither is what a request costs once the server runs.
    const warm = await newGroup('bench-warm-up');
    const few = ids.slice(0, 10).map(member);
    for (const body of [
      { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: few }] },
      { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: 'members', value: few.slice(0, 5) }] },
      { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: `members[value eq "${ids[6]!}"]` }] },
    ]) await send('PATCH', `/Groups/${warm}`, body);
    await send('PUT', `/Groups/${warm}`, { displayName: 'bench-warm-up', members: few });
    for (const n of SIZES) {
      const gid = await newGroup(`bench-${n}`);
      const add = await send('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: ids.slice(0, n).map(member) }] });
      line(`PATCH add ${n} members to an empty group`, add, ` (stored ${await count(gid)})`);
      if (add.status >= 300) continue;
      line(`PATCH add 1 member to the ${n}-member group`, await send('PATCH', `/Groups/${gid}`, {
        schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [member(ids[n]!)] }],
      }));
      line(`PATCH remove ${n / 2} by value list (Entra)`, await send('PATCH', `/Groups/${gid}`, {
        schemas: [PATCH_OP], Operations: [{ op: 'remove', path: 'members', value: ids.slice(0, n / 2).map((value) => ({ value })) }],
      }), ` (stored ${await count(gid)})`);
      line(`PUT the group with ${n} members`, await send('PUT', `/Groups/${gid}`, { displayName: `bench-${n}`, members: ids.slice(0, n).map(member) }), ` (stored ${await count(gid)})`);
      // the most a request may ask of the in-memory path: 10 operations that each scan the whole group
      const scans = Array.from({ length: 10 }, (_, i) => ({ op: 'remove', path: `members[display eq "nobody ${i}"]` }));
      line(`PATCH of 10 filter scans of ${n} members`, await send('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: scans }));
    }
    const gid = await newGroup('bench-ops');
    await send('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: ids.slice(0, OPS).map(member) }] });
    const ops = ids.slice(0, OPS).map((v) => ({ op: 'remove', path: `members[value eq "${v}"]` }));
    line(`PATCH of ${OPS} operations (remove by filter)`, await send('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: ops }), ` (stored ${await count(gid)})`);
  } finally {
    histogram.disable();
    await new Promise<void>((r) => server.close(() => r()));
    await queue.stop({ graceful: false, timeoutMs: 1000 });
    await drop();
  }
}

async function main(): Promise<void> {
  for (const engine of ENGINES) await run(engine);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
