// Schedules on a real engine (PGlite, or PostgreSQL with DATABASE_URL): the scheduler tick with an injected clock
// (on-time fires, overlap policies, catch-up after downtime, refused runs), at-most-once with two schedulers racing
// on one database (on PostgreSQL each with its own pool and engine), and the HTTP API.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import { createJobQueue, createLogger, createPostgresDatabase, type Database, type JobQueue } from '../../adapter';
import { buildApp } from '../../server/app';
import { buildConfig } from '../../server/config';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import { createWorkflowEngine, type WorkflowEngine } from '../../workflows/engine';
import { createSchedule, createScheduler, listScheduleFires, startScheduler, type Schedule, type ScheduleInput, type Scheduler, type TickReport } from '../../workflows/schedules';
import { testEngine } from '../support/db';
import { createEngineHarness, linear, sleep, type EngineHarness } from '../support/workflow-engine';
import { createIntegrationRuntime } from '../../integration-model';

const ADMIN_KEY = 'schedules-admin-key-0123456789abcdef';
const logger = createLogger({ silent: true });

let h: EngineHarness;
let clock = new Date('2026-05-01T00:00:00Z');
const setClock = (s: string) => (clock = new Date(s));

/** A gate the `gate` fake step waits on, so a run stays active until the test opens it. */
let openGate: () => void = () => undefined;
let gate: Promise<void> = Promise.resolve();
function closeGate(): void {
  openGate();
  gate = new Promise<void>((r) => (openGate = r));
}

beforeAll(async () => {
  h = await createEngineHarness();
  h.behaviours['gate'] = async () => {
    await gate;
    return { ok: true, output: { ok: true } };
  };
  await h.engine.saveWorkflow(linear('noop', [['a', 'ok']]), 'test');
  await h.engine.saveWorkflow(linear('gated', [['a', 'gate']]), 'test');
  await h.engine.saveWorkflow(linear('limited', [['a', 'gate']]), 'test');
});

afterAll(async () => {
  openGate();
  await h.close();
});

// Each test looks at its own schedules: earlier ones stop, so a later clock does not fire them too.
afterEach(async () => {
  openGate();
  await h.t.db.query(`UPDATE schedules SET enabled = false, next_fire_at = NULL`);
});

let seq = 0;
async function schedule(input: Partial<ScheduleInput> & { cron: string }, now: string): Promise<Schedule> {
  setClock(now);
  return h.t.db.transaction((tx) => createSchedule(tx, { name: `s${++seq}`, workflow: 'noop', ...input }, 'test', clock));
}

function scheduler(db: Database = h.t.db, engine: Pick<WorkflowEngine, 'startRun'> = h.engine): Scheduler {
  return createScheduler({ db, engine, logger, lateToleranceMs: 60_000, now: () => clock });
}

async function fires(s: Schedule) {
  return (await listScheduleFires(h.t.db, s.id, 500)).reverse();
}

describe('scheduler tick', () => {
  test('fires a slot once, on time, and the run really runs', async () => {
    const s = await schedule({ cron: '*/5 * * * *' }, '2026-05-01T10:02:00Z');
    expect(s.nextFireAt).toBe('2026-05-01T10:05:00.000Z');
    const sch = scheduler();
    setClock('2026-05-01T10:04:59Z');
    expect((await sch.tick()).started).toBe(0);
    setClock('2026-05-01T10:05:07Z');
    const r = await sch.tick();
    expect(r.started).toBe(1);
    setClock('2026-05-01T10:05:30Z');
    expect((await sch.tick()).started).toBe(0);
    const [f, ...rest] = await fires(s);
    expect(rest).toHaveLength(0);
    expect(f).toMatchObject({ scheduledFor: '2026-05-01T10:05:00.000Z', trigger: 'cron', outcome: 'started', firedAt: '2026-05-01T10:05:07.000Z' });
    const run = await h.waitFor(f!.runId as string, ['succeeded']);
    expect(run).toMatchObject({ workflow: 'noop', createdBy: `system:schedule:${s.name}` });
    const after = await fires(s);
    expect(after[0]?.runStatus).toBe('succeeded');
  });

  test('a time zone schedule fires at its local wall time', async () => {
    const s = await schedule({ cron: '0 9 * * *', timeZone: 'Europe/Berlin' }, '2026-07-01T05:00:00Z');
    expect(s.nextFireAt).toBe('2026-07-01T07:00:00.000Z');
  });

  test('Europe/Berlin across DST: 02:30 fires at 03:00 on spring-forward day and once on fall-back day', async () => {
    const spring = await schedule({ cron: '30 2 * * *', timeZone: 'Europe/Berlin', overlapPolicy: 'allow' }, '2026-03-28T12:00:00Z');
    expect(spring.nextFireAt).toBe('2026-03-29T01:00:00.000Z'); // 03:00 CEST: 02:30 does not exist that night
    const sch = scheduler();
    setClock('2026-03-29T01:00:05Z');
    expect((await sch.tick()).started).toBe(1);
    await h.t.db.query(`UPDATE schedules SET enabled = false WHERE id = $1`, [spring.id]);
    const fall = await schedule({ cron: '30 2 * * *', timeZone: 'Europe/Berlin', overlapPolicy: 'allow' }, '2026-10-24T12:00:00Z');
    setClock('2026-10-25T00:30:05Z'); // 02:30 CEST, the first 02:30
    expect((await sch.tick()).started).toBe(1);
    setClock('2026-10-25T01:30:05Z'); // 02:30 CET, the repeated 02:30: no second fire
    expect((await sch.tick()).started).toBe(0);
    expect((await fires(fall)).map((f) => f.scheduledFor)).toEqual(['2026-10-25T00:30:00.000Z']);
    const { rows } = await h.t.db.query<{ next_fire_at: Date | string }>(`SELECT next_fire_at FROM schedules WHERE id = $1`, [fall.id]);
    expect(new Date(rows[0]!.next_fire_at).toISOString()).toBe('2026-10-26T01:30:00.000Z');
  });

  test('overlap skip: a fire while the previous run is active is recorded skipped_overlap', async () => {
    closeGate();
    const s = await schedule({ cron: '* * * * *', workflow: 'gated', overlapPolicy: 'skip' }, '2026-05-02T00:00:30Z');
    const sch = scheduler();
    setClock('2026-05-02T00:01:01Z');
    expect((await sch.tick()).started).toBe(1);
    setClock('2026-05-02T00:02:01Z');
    expect((await sch.tick()).skipped_overlap).toBe(1);
    openGate();
    const [first] = await fires(s);
    await h.waitFor(first!.runId as string, ['succeeded']);
    setClock('2026-05-02T00:03:01Z');
    expect((await sch.tick()).started).toBe(1);
    expect((await fires(s)).map((f) => f.outcome)).toEqual(['started', 'skipped_overlap', 'started']);
  });

  test('overlap buffer_one: one fire waits for the active run and then starts; later ones are skipped', async () => {
    closeGate();
    const s = await schedule({ cron: '* * * * *', workflow: 'gated', overlapPolicy: 'buffer_one' }, '2026-05-03T00:00:30Z');
    const sch = scheduler();
    setClock('2026-05-03T00:01:01Z');
    await sch.tick();
    setClock('2026-05-03T00:02:01Z');
    expect((await sch.tick()).buffered).toBe(1);
    setClock('2026-05-03T00:03:01Z');
    expect((await sch.tick()).skipped_overlap).toBe(1);
    expect((await fires(s)).map((f) => f.outcome)).toEqual(['started', 'buffered', 'skipped_overlap']);
    // Still blocked: the buffered fire stays buffered.
    setClock('2026-05-03T00:03:20Z');
    expect((await sch.tick()).started).toBe(0);
    openGate();
    const [first] = await fires(s);
    await h.waitFor(first!.runId as string, ['succeeded']);
    setClock('2026-05-03T00:03:40Z');
    expect((await sch.tick()).started).toBe(1);
    const list = await fires(s);
    expect(list.map((f) => f.outcome)).toEqual(['started', 'started', 'skipped_overlap']);
    expect(list[1]).toMatchObject({ scheduledFor: '2026-05-03T00:02:00.000Z', firedAt: '2026-05-03T00:03:40.000Z' });
    await h.waitFor(list[1]!.runId as string, ['succeeded']);
  });

  test('overlap allow: fires start while the previous run is active', async () => {
    closeGate();
    const s = await schedule({ cron: '* * * * *', workflow: 'gated', overlapPolicy: 'allow' }, '2026-05-04T00:00:30Z');
    const sch = scheduler();
    setClock('2026-05-04T00:01:01Z');
    await sch.tick();
    setClock('2026-05-04T00:02:01Z');
    expect((await sch.tick()).started).toBe(1);
    const list = await fires(s);
    expect(list.map((f) => [f.outcome, f.runStatus])).toEqual([
      ['started', 'running'],
      ['started', 'running'],
    ]);
    openGate();
    for (const f of list) await h.waitFor(f.runId as string, ['succeeded']);
  });

  test('catch-up after downtime: the latest slot within the window fires once, older ones are missed', async () => {
    const withWindow = await schedule({ cron: '0 * * * *', catchUpWindowSeconds: 90 * 60 }, '2026-05-05T00:30:00Z');
    const noWindow = await schedule({ cron: '0 * * * *' }, '2026-05-05T00:30:00Z');
    const shortWindow = await schedule({ cron: '0 * * * *', catchUpWindowSeconds: 10 * 60 }, '2026-05-05T00:30:00Z');
    // Nothing ran from 00:30 to 04:20 (the service was down).
    setClock('2026-05-05T04:20:00Z');
    const r = await scheduler().tick();
    expect(r.started).toBe(1);
    const a = await fires(withWindow);
    expect(a.map((f) => [f.scheduledFor.slice(11, 16), f.outcome])).toEqual([
      ['01:00', 'missed'],
      ['02:00', 'missed'],
      ['03:00', 'missed'],
      ['04:00', 'started'],
    ]);
    expect((await fires(noWindow)).map((f) => f.outcome)).toEqual(['missed', 'missed', 'missed', 'missed']);
    expect((await fires(shortWindow)).map((f) => f.outcome)).toEqual(['missed', 'missed', 'missed', 'missed']);
    const { rows } = await h.t.db.query<{ next_fire_at: Date | string }>(`SELECT next_fire_at FROM schedules WHERE id = $1`, [noWindow.id]);
    expect(new Date(rows[0]!.next_fire_at).toISOString()).toBe('2026-05-05T05:00:00.000Z');
    await h.waitFor(a[3]!.runId as string, ['succeeded']);
  });

  test('a run the engine refuses is recorded failed and the clock moves on', async () => {
    closeGate();
    await h.engine.setConcurrencyLimit('limited', { maxActive: 1, onLimit: 'reject' });
    const s = await schedule({ cron: '* * * * *', workflow: 'limited', overlapPolicy: 'allow' }, '2026-05-06T00:00:30Z');
    const sch = scheduler();
    setClock('2026-05-06T00:01:01Z');
    expect((await sch.tick()).started).toBe(1);
    setClock('2026-05-06T00:02:01Z');
    expect((await sch.tick()).failed).toBe(1);
    setClock('2026-05-06T00:02:30Z');
    expect((await sch.tick()).failed).toBe(0);
    const list = await fires(s);
    expect(list.map((f) => f.outcome)).toEqual(['started', 'failed']);
    expect(list[1]?.error).toMatch(/limit/);
    openGate();
    await h.waitFor(list[0]!.runId as string, ['succeeded']);
  });
});

describe('history retention', () => {
  test('fires older than the retention are pruned; buffered ones are kept', async () => {
    const s = await schedule({ cron: '0 * * * *' }, '2026-09-01T00:30:00Z');
    setClock('2026-09-01T03:10:00Z'); // down since 00:30: 01:00, 02:00 and 03:00 are missed
    await scheduler().tick();
    expect(await fires(s)).toHaveLength(3);
    await h.t.db.query(`INSERT INTO schedule_fires (schedule_id, scheduled_for, outcome) VALUES ($1, '2026-08-01T00:00:00Z', 'buffered')`, [s.id]);
    setClock('2026-09-03T02:30:00Z');
    const pruner = createScheduler({ db: h.t.db, engine: h.engine, logger, historyRetentionDays: 2, now: () => clock });
    await h.t.db.query(`UPDATE schedules SET enabled = false WHERE id = $1`, [s.id]);
    await pruner.tick();
    // 01:00 and 02:00 on 09-01 are older than two days; 03:00 is not; the buffered fire stays.
    expect((await fires(s)).map((f) => [f.scheduledFor, f.outcome])).toEqual([
      ['2026-08-01T00:00:00.000Z', 'buffered'],
      ['2026-09-01T03:00:00.000Z', 'missed'],
    ]);
    await h.t.db.query(`DELETE FROM schedule_fires WHERE schedule_id = $1 AND outcome = 'buffered'`, [s.id]);
  });
});

describe('startScheduler', () => {
  test('ticks on its own every tickMs until stopped', async () => {
    const s = await schedule({ cron: '*/10 * * * *', overlapPolicy: 'allow' }, '2026-08-01T00:05:00Z');
    const sch = startScheduler({ db: h.t.db, engine: h.engine, logger, tickMs: 20, lateToleranceMs: 60_000, now: () => clock });
    try {
      setClock('2026-08-01T00:10:01Z');
      for (let i = 0; i < 100 && (await fires(s)).length < 1; i++) await sleep(20);
      setClock('2026-08-01T00:20:01Z');
      for (let i = 0; i < 100 && (await fires(s)).length < 2; i++) await sleep(20);
    } finally {
      await sch.stop();
    }
    expect((await fires(s)).map((f) => [f.scheduledFor.slice(11, 16), f.outcome])).toEqual([
      ['00:10', 'started'],
      ['00:20', 'started'],
    ]);
    // Stopped: a further due slot stays unfired.
    setClock('2026-08-01T00:30:01Z');
    await sleep(100);
    expect(await fires(s)).toHaveLength(2);
  });
});

describe('two schedulers on one database', () => {
  let second: { db: Database; queue: JobQueue; engine: WorkflowEngine } | undefined;

  afterAll(async () => {
    if (second) {
      await second.queue.stop({ graceful: false, timeoutMs: 2000 });
      await second.db.close();
    }
  });

  test(`each slot fires at most once (${testEngine === 'postgres' ? 'two pools and engines' : 'one PGlite, two schedulers'})`, async () => {
    let otherDb = h.t.db;
    let otherEngine: Pick<WorkflowEngine, 'startRun'> = h.engine;
    if (testEngine === 'postgres') {
      // A second "process": its own pool, queue and engine (no workers) on the same database.
      const db = createPostgresDatabase({ connectionString: h.t.url as string, max: 5 });
      const queue = createJobQueue(db, { logger, schedule: false });
      await queue.start();
      const engine = createWorkflowEngine({ db, queue, logger, executors: {} });
      second = { db, queue, engine };
      otherDb = db;
      otherEngine = engine;
    }
    const many: Schedule[] = [];
    for (let i = 0; i < 8; i++) many.push(await schedule({ cron: '* * * * *', overlapPolicy: 'allow' }, '2026-06-01T00:00:30Z'));
    const a = scheduler();
    const b = scheduler(otherDb, otherEngine);
    let started = 0;
    for (let minute = 1; minute <= 4; minute++) {
      setClock(`2026-06-01T00:0${minute}:02Z`);
      // Both race on the same due slots, several ticks each.
      const reports = await Promise.all([a.tick(), b.tick(), a.tick(), b.tick()]);
      started += reports.reduce((n, r) => n + r.started, 0);
    }
    expect(started).toBe(8 * 4);
    for (const s of many) {
      const list = await fires(s);
      expect(list.map((f) => [f.scheduledFor.slice(11, 16), f.outcome])).toEqual([
        ['00:01', 'started'],
        ['00:02', 'started'],
        ['00:03', 'started'],
        ['00:04', 'started'],
      ]);
    }
    const { rows } = await h.t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM workflow_runs WHERE created_by LIKE 'system:schedule:%' AND id IN (SELECT run_id FROM schedule_fires WHERE schedule_id = ANY($1::uuid[]))`,
      [many.map((s) => s.id)],
    );
    expect(rows[0]?.n).toBe(32);
  });
});

describe('two scheduler processes', () => {
  // Skipped on PGlite: it is an in-memory database inside this process, which no other process can reach (the
  // two-schedulers-in-one-process test above covers PGlite).
  const onPostgres = testEngine === 'postgres' ? test : test.skip;
  onPostgres(`each slot fires at most once with two scheduler processes racing${testEngine === 'postgres' ? '' : ' (PostgreSQL only)'}`, async () => {
    const many: Schedule[] = [];
    for (let i = 0; i < 20; i++) many.push(await schedule({ cron: '* * * * *', overlapPolicy: 'allow' }, '2026-07-01T00:00:30Z'));
    const clocks = [1, 2, 3].map((m) => `2026-07-01T00:0${m}:05Z`).join(',');
    const startAt = String(Date.now() + 1500);
    const run = () =>
      new Promise<TickReport>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '..', 'support', 'scheduler-process.ts')], {
          env: { ...process.env, SCHEDULER_DATABASE_URL: h.t.url, SCHEDULER_CLOCKS: clocks, TICKS_PER_CLOCK: '3', START_AT: startAt },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
        child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim()) as TickReport) : reject(new Error(`scheduler process exited ${code}`))));
      });
    const reports = await Promise.all([run(), run()]);
    expect(reports[0]!.started + reports[1]!.started).toBe(20 * 3);
    for (const s of many) {
      const list = await fires(s);
      expect(list.map((f) => [f.scheduledFor.slice(11, 16), f.outcome])).toEqual([
        ['00:01', 'started'],
        ['00:02', 'started'],
        ['00:03', 'started'],
      ]);
    }
    const { rows } = await h.t.db.query<{ n: number }>(
      `SELECT count(DISTINCT r.id)::int AS n FROM workflow_runs r JOIN schedule_fires f ON f.run_id = r.id WHERE f.schedule_id = ANY($1::uuid[])`,
      [many.map((s) => s.id)],
    );
    expect(rows[0]?.n).toBe(60);
  }, 60_000);
});

describe('HTTP API', () => {
  let http: () => request.Agent;
  const admin = { 'X-Admin-Key': ADMIN_KEY };

  beforeAll(() => {
    const app = buildApp(
      { db: h.t.db, queue: h.queue, logger, integrations: createIntegrationRuntime({ db: h.t.db, queue: h.queue, logger }), adminKeyHash: async () => hashSecret(ADMIN_KEY), workflowEngine: h.engine },
      buildConfig({ validateResponses: true, adminKey: ADMIN_KEY }),
    );
    http = () => request.agent(app);
  });

  test('create, read, list, update, delete — audited', async () => {
    const created = await http()
      .post('/admin/schedules')
      .set(admin)
      .send({ name: 'api-nightly', workflow: 'noop', cron: '30 2 * * *', time_zone: 'Europe/Berlin', overlap_policy: 'buffer_one', catch_up_window_seconds: 600, inputs: { pool: 'vdi' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'api-nightly',
      workflow: 'noop',
      workflow_version: null,
      cron: '30 2 * * *',
      time_zone: 'Europe/Berlin',
      overlap_policy: 'buffer_one',
      catch_up_window_seconds: 600,
      enabled: true,
      inputs: { pool: 'vdi' },
      last_fired_at: null,
      created_by: 'admin:key',
    });
    expect(typeof created.body.next_fire_at).toBe('string');
    const id = created.body.id as string;

    const got = await http().get(`/admin/schedules/${id}`).set(admin);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);

    const list = await http().get('/admin/schedules').set(admin);
    expect(list.status).toBe(200);
    expect(list.body.items.map((s: { name: string }) => s.name)).toContain('api-nightly');

    const disabled = await http().patch(`/admin/schedules/${id}`).set(admin).send({ enabled: false });
    expect(disabled.status).toBe(200);
    expect(disabled.body).toMatchObject({ enabled: false, next_fire_at: null });
    const enabled = await http().patch(`/admin/schedules/${id}`).set(admin).send({ enabled: true, cron: '0 3 * * *', workflow_version: 1 });
    expect(enabled.status).toBe(200);
    expect(enabled.body).toMatchObject({ enabled: true, cron: '0 3 * * *', workflow_version: 1 });
    expect(typeof enabled.body.next_fire_at).toBe('string');

    const { rows } = await h.t.db.query<{ action: string; diff: { before: Record<string, unknown>; after: Record<string, unknown> }; triggered_by: string }>(
      `SELECT action, diff, triggered_by FROM audit_log WHERE entity = 'schedule' AND entity_id = $1 ORDER BY id`,
      [id],
    );
    expect(rows.map((r) => r.action)).toEqual(['create', 'update', 'update']);
    expect(rows[2]?.diff).toEqual({ before: { enabled: false, cron: '30 2 * * *', workflow_version: null }, after: { enabled: true, cron: '0 3 * * *', workflow_version: 1 } });
    expect(rows[0]?.triggered_by).toBe('admin:key');

    const del = await http().delete(`/admin/schedules/${id}`).set(admin);
    expect(del.status).toBe(204);
    expect((await http().get(`/admin/schedules/${id}`).set(admin)).status).toBe(404);
    const audit = await h.t.db.query<{ action: string }>(`SELECT action FROM audit_log WHERE entity = 'schedule' AND entity_id = $1 ORDER BY id DESC LIMIT 1`, [id]);
    expect(audit.rows[0]?.action).toBe('delete');
  });

  test.each([
    [{ cron: '0 */5 * * * *' }, '/body/cron', /seconds field is not supported/],
    [{ cron: '0 0 12 * * * 2027' }, '/body/cron', /seconds and year fields/],
    [{ cron: '99 * * * *' }, '/body/cron', /minute/],
    [{ time_zone: 'Mars/Olympus' }, '/body/time_zone', /not a known IANA time zone/],
    [{ workflow: 'no-such-workflow' }, '/body/workflow', /does not exist/],
    [{ workflow_version: 99 }, '/body/workflow_version', /has no version 99/],
    [{ overlap_policy: 'queue' }, '/body/overlap_policy', /./],
  ])('422 naming the field: %j', async (patch, field, message) => {
    const res = await http()
      .post('/admin/schedules')
      .set(admin)
      .send({ name: `bad-${seq++}`, workflow: 'noop', cron: '* * * * *', ...patch });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    const err = (res.body.errors as { path: string; message: string }[]).find((e) => e.path === field);
    expect(err?.message).toMatch(message);
  });

  test('a taken name is 409; an unknown id is 404; a bad cron on update is 422', async () => {
    const first = await http().post('/admin/schedules').set(admin).send({ name: 'dup', workflow: 'noop', cron: '0 0 * * *' });
    expect(first.status).toBe(201);
    const dup = await http().post('/admin/schedules').set(admin).send({ name: 'dup', workflow: 'noop', cron: '0 1 * * *' });
    expect(dup.status).toBe(409);
    expect(dup.body.detail).toMatch(/already exists/);
    const missing = await http().get('/admin/schedules/00000000-0000-4000-8000-000000000000').set(admin);
    expect(missing.status).toBe(404);
    const bad = await http().patch(`/admin/schedules/${first.body.id}`).set(admin).send({ cron: '@hourly' });
    expect(bad.status).toBe(422);
    expect(bad.body.errors[0]).toMatchObject({ path: '/body/cron' });
  });

  test('trigger fires now; the history shows each fire with its run status', async () => {
    closeGate();
    const created = await http().post('/admin/schedules').set(admin).send({ name: 'api-trigger', workflow: 'gated', cron: '0 0 1 1 *', overlap_policy: 'skip' });
    const id = created.body.id as string;
    const t1 = await http().post(`/admin/schedules/${id}/trigger`).set(admin);
    expect(t1.status).toBe(201);
    expect(t1.body).toMatchObject({ schedule_id: id, trigger: 'manual', outcome: 'started', run_status: 'running', error: null });
    const t2 = await http().post(`/admin/schedules/${id}/trigger`).set(admin);
    expect(t2.status).toBe(201);
    expect(t2.body).toMatchObject({ outcome: 'skipped_overlap', run_id: null, run_status: null });
    openGate();
    await h.waitFor(t1.body.run_id, ['succeeded']);
    const hist = await http().get(`/admin/schedules/${id}/runs`).set(admin);
    expect(hist.status).toBe(200);
    expect(hist.body.items.map((f: { outcome: string; run_status: string | null }) => [f.outcome, f.run_status])).toEqual([
      ['skipped_overlap', null],
      ['started', 'succeeded'],
    ]);
    const one = await http().get(`/admin/schedules/${id}/runs?limit=1`).set(admin);
    expect(one.body.items).toHaveLength(1);
    const got = await http().get(`/admin/schedules/${id}`).set(admin);
    expect(got.body.last_fired_at).toBe(t1.body.fired_at);
    expect((await http().post('/admin/schedules/00000000-0000-4000-8000-000000000000/trigger').set(admin)).status).toBe(404);
    expect((await http().get('/admin/schedules/00000000-0000-4000-8000-000000000000/runs').set(admin)).status).toBe(404);
  });

  test('roles: helpdesk and auditor read; only superadmin/admin write', async () => {
    const mint = async (name: string, scopes: string[], role: string) => {
      const res = await http().post('/admin/api-tokens').set(admin).send({ name, scopes, role, ...(role === 'approver' ? { approver_email: 'boss@example.com' } : {}) });
      expect(res.status).toBe(201);
      return { Authorization: `Bearer ${res.body.token as string}` };
    };
    const helpdesk = await mint('sched-helpdesk', ['admin:read'], 'helpdesk');
    const auditor = await mint('sched-auditor', ['admin:read'], 'auditor');
    const approver = await mint('sched-approver', ['admin:read'], 'approver');
    const writer = await mint('sched-admin', ['admin:*'], 'admin');
    expect((await http().get('/admin/schedules').set(helpdesk)).status).toBe(200);
    expect((await http().get('/admin/schedules').set(auditor)).status).toBe(200);
    expect((await http().get('/admin/schedules').set(approver)).status).toBe(403);
    expect((await http().post('/admin/schedules').set(helpdesk).send({ name: 'x-helpdesk', workflow: 'noop', cron: '0 0 * * *' })).status).toBe(403);
    const made = await http().post('/admin/schedules').set(writer).send({ name: 'by-admin-token', workflow: 'noop', cron: '0 0 * * *' });
    expect(made.status).toBe(201);
    expect(made.body.created_by).toBe('admin:token:sched-admin');
  });

  test('trigger in a process without a workflow engine is 409 and records nothing', async () => {
    const bare = buildApp({ db: h.t.db, queue: h.queue, logger, integrations: createIntegrationRuntime({ db: h.t.db, queue: h.queue, logger }), adminKeyHash: async () => hashSecret(ADMIN_KEY) }, buildConfig({ validateResponses: true, adminKey: ADMIN_KEY }));
    const created = await request(bare).post('/admin/schedules').set(admin).send({ name: 'no-engine', workflow: 'noop', cron: '0 0 * * *' });
    expect(created.status).toBe(201);
    const res = await request(bare).post(`/admin/schedules/${created.body.id}/trigger`).set(admin);
    expect(res.status).toBe(409);
    expect(res.body.detail).toMatch(/no workflow engine/);
    expect((await request(bare).get(`/admin/schedules/${created.body.id}/runs`).set(admin)).body.items).toEqual([]);
  });

  test('without credentials: 401', async () => {
    expect((await http().get('/admin/schedules')).status).toBe(401);
  });
});
