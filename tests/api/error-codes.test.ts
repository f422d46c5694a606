// The error table (server/errors.ts) as the API shows it: each code family answers the same status and code from
// every route that can raise it, the spec lists exactly the table's codes with the table's statuses, and a
// workflow named by a body is a field of that body, never a 404.
import { CodedError } from '../../adapter';
import { ENGINE_CODES, ERROR_STATUS, SCHEDULE_CODES } from '../../server/errors';
import { toProblem } from '../../server/http/problem';
import { loadSpec } from '../../server/spec';
import { ConcurrencyLimitError, RunInputError, RunNotFoundError, RunStateError, ScheduleConflictError, ScheduleNotFoundError, WorkflowNotFoundError } from '../../workflows';
import { createTestApp, type TestApp } from '../support/app';

jest.setTimeout(60_000);

let t: TestApp;
const NO_SUCH_RUN = '3f0c9a4e-8a51-4d0e-9a53-2a7f5c1d9b10';
const NO_SUCH_SCHEDULE = '0b0c9a4e-8a51-4d0e-9a53-2a7f5c1d9b11';

/** A one-step workflow whose input `user` must be a string; with no workers started, its runs stay active. */
const limited = (name: string) => ({
  name,
  description: 'one webhook',
  inputSchema: { type: 'object', required: ['user'], properties: { user: { type: 'string' } } },
  steps: [
    {
      id: 'call',
      kind: 'webhook',
      url: 'http://127.0.0.1:9/never',
      incoming: { application: { app_id: 'x' }, target_user: { email: 'a@example.com' } },
    },
  ],
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** Every answer is the table's status for `code`, with that `code`, as problem+json. */
function expectCode(answers: Record<string, Answer>, code: keyof typeof ERROR_STATUS): void {
  const seen = Object.fromEntries(Object.entries(answers).map(([route, r]) => [route, { status: r.status, code: r.body['code'] }]));
  const wanted = Object.fromEntries(Object.keys(answers).map((route) => [route, { status: ERROR_STATUS[code], code }]));
  expect(seen).toEqual(wanted);
}

async function createSchedule(name: string, workflow: string, inputs: Record<string, unknown>): Promise<string> {
  const res = await t.http().post('/admin/schedules').set(t.admin)
    .send({ name, workflow, inputs, cron: '0 0 1 1 *', overlap_policy: 'allow', enabled: false });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function trigger(scheduleId: string): Promise<Answer> {
  return t.http().post(`/admin/schedules/${scheduleId}/trigger`).set(t.admin);
}

beforeAll(async () => {
  t = await createTestApp({}, { workflows: true });
  for (const name of ['limited', 'open', 'doomed']) {
    expect((await t.http().post('/admin/workflows').set(t.admin).send(limited(name))).status).toBe(201);
  }
  expect((await t.http().put('/admin/workflows/limited/concurrency').set(t.admin).send({ max_active: 1, on_limit: 'reject' })).status).toBe(200);
});

afterAll(async () => {
  await t?.close();
});

describe('the spec documents the table', () => {
  test("Problem.code lists exactly the table's codes, each with the table's status", () => {
    const spec = loadSpec() as unknown as { components: { schemas: { Problem: { properties: { code: { enum: string[]; description: string } } } } } };
    const code = spec.components.schemas.Problem.properties.code;
    expect([...code.enum].sort()).toEqual(Object.keys(ERROR_STATUS).sort());
    const documented = Object.fromEntries([...code.description.matchAll(/^- `([A-Z_]+)` \((\d{3})\):/gm)].map((m) => [m[1], Number(m[2])]));
    expect(documented).toEqual(ERROR_STATUS);
  });

  test('the rooms answer with their own codes where the table says so, and nothing unknown leaks as a code', () => {
    expect(toProblem(new ConcurrencyLimitError('w', 3))).toMatchObject({ status: 429, code: ENGINE_CODES.WORKFLOW_CONCURRENCY_LIMIT, extra: { workflow: 'w', limit: 3 } });
    expect(toProblem(new ScheduleConflictError('s'))).toMatchObject({ status: 409, code: SCHEDULE_CODES.SCHEDULE_NAME_TAKEN });
    // A coded error whose code is not in the table is a bug of ours: 500, never a made-up status.
    expect(toProblem(new CodedError('NOT_A_TABLE_CODE', 'x'))).toMatchObject({ status: 500, code: 'INTERNAL', detail: 'internal error' });
  });
});

describe('WORKFLOW_NOT_FOUND (404) for the workflow the request addresses', () => {
  test('named by the path, or started by the schedule named by the path', async () => {
    const doomed = await createSchedule('doomed-nightly', 'doomed', { user: 'a' });
    // Nothing deletes a workflow through the API; a schedule left pointing at nothing is a restored or edited database.
    await t.db.query(`DELETE FROM workflows WHERE name = 'doomed'`);
    const answers = {
      getWorkflow: await t.http().get('/admin/workflows/nope').set(t.admin),
      getWorkflowVersion: await t.http().get('/admin/workflows/limited?version=99').set(t.admin),
      listWorkflowVersions: await t.http().get('/admin/workflows/nope/versions').set(t.admin),
      exportWorkflow: await t.http().get('/admin/workflows/nope/export').set(t.admin),
      setWorkflowConcurrency: await t.http().put('/admin/workflows/nope/concurrency').set(t.admin).send({ max_active: 1 }),
      triggerSchedule: await trigger(doomed),
    };
    expectCode(answers, 'WORKFLOW_NOT_FOUND');
    expect(answers.getWorkflow.body).toMatchObject({ workflow: 'nope', detail: "workflow 'nope' does not exist" });
    expect(answers.getWorkflowVersion.body).toMatchObject({ workflow: 'limited', version: 99 });
    expect(answers.triggerSchedule.body).toMatchObject({ workflow: 'doomed' });
  });

  test('a workflow referenced from a body is a field of that body: 422 VALIDATION_FAILED naming it', async () => {
    const schedule = await t.http().post('/admin/schedules').set(t.admin).send({ name: 'ghostly', workflow: 'nope', cron: '0 0 * * *' });
    const version = await t.http().post('/admin/schedules').set(t.admin).send({ name: 'ghostly', workflow: 'limited', workflow_version: 99, cron: '0 0 * * *' });
    const parent = { name: 'parent', steps: [{ id: 'kid', kind: 'child', workflow: 'nope' }] };
    const saved = await t.http().post('/admin/workflows').set(t.admin).send(parent);
    expectCode({ createSchedule: schedule, createScheduleVersion: version, saveWorkflow: saved }, 'VALIDATION_FAILED');
    expect(schedule.body['errors']).toEqual([{ path: '/body/workflow', message: "workflow 'nope' does not exist" }]);
    expect(version.body['errors']).toEqual([{ path: '/body/workflow_version', message: "workflow 'limited' has no version 99" }]);
    expect(saved.body['errors']).toEqual([{ path: '/body/steps/0/workflow', message: "task kid: unknown workflow 'nope'" }]);
    // An import reports what it could not save instead of failing: the same issue, in the 200's `issues`.
    const imported = await t.http().post('/admin/workflows/import').set(t.admin).send(parent);
    expect(imported.status).toBe(200);
    expect(imported.body).toMatchObject({ saved: null, issues: [{ path: '/body/steps/0/workflow', message: "task kid: unknown workflow 'nope'" }] });
  });
});

describe('RUN_INPUT_INVALID (422) wherever a run is refused for its inputs', () => {
  test("a schedule's stored inputs that fail the workflow's inputSchema, pointed at under /inputs", async () => {
    const bad = await createSchedule('bad-inputs', 'open', { user: 5 });
    const missing = await createSchedule('no-inputs', 'open', {});
    const answers = { triggerWrongType: await trigger(bad), triggerMissing: await trigger(missing) };
    expectCode(answers, 'RUN_INPUT_INVALID');
    expect(answers.triggerWrongType.body).toMatchObject({ workflow: 'open', version: 1, errors: [{ path: '/inputs/user', message: 'must be string' }] });
    expect(answers.triggerMissing.body['errors']).toEqual([{ path: '/inputs/user', message: "must have required property 'user'" }]);
    // Nothing was recorded for the refused fires.
    expect((await t.http().get(`/admin/schedules/${bad}/runs`).set(t.admin)).body.items).toEqual([]);
  });
});

describe('WORKFLOW_CONCURRENCY_LIMIT (429) from every route that starts a run', () => {
  test('a schedule fire and a rerun are refused alike, with the limit', async () => {
    const nightly = await createSchedule('limited-nightly', 'limited', { user: 'a' });
    const first = await trigger(nightly);
    expect(first.status).toBe(201);
    const firstRun = first.body['run_id'] as string;
    const secondFire = await trigger(nightly);
    // Free the slot, take it again with a new run, and rerun the freed one: the rerun meets the limit.
    expect((await t.http().post(`/admin/runs/${firstRun}/cancel`).set(t.admin)).status).toBe(200);
    expect((await trigger(nightly)).status).toBe(201);
    const rerun = await t.http().post(`/admin/runs/${firstRun}/rerun`).set(t.admin).send({ from: 'start' });
    const answers = { triggerSchedule: secondFire, rerunRun: rerun };
    expectCode(answers, 'WORKFLOW_CONCURRENCY_LIMIT');
    for (const r of Object.values(answers)) expect(r.body).toMatchObject({ workflow: 'limited', limit: 1, title: 'Too Many Requests' });
  });
});

describe('runs: RUN_NOT_FOUND (404) and RUN_STATE_CONFLICT (409)', () => {
  test('an unknown run id, from every run route', async () => {
    expectCode({
      getRun: await t.http().get(`/admin/runs/${NO_SUCH_RUN}`).set(t.admin),
      cancelRun: await t.http().post(`/admin/runs/${NO_SUCH_RUN}/cancel`).set(t.admin),
      rerunRun: await t.http().post(`/admin/runs/${NO_SUCH_RUN}/rerun`).set(t.admin).send({ from: 'start' }),
      resumeRunStep: await t.http().post(`/admin/runs/${NO_SUCH_RUN}/steps/call/resume`).set(t.admin).send({}),
    }, 'RUN_NOT_FOUND');
  });

  test("a command the run's status does not allow, with run_status", async () => {
    const s = await createSchedule('state-checks', 'open', { user: 'a' });
    const active = (await trigger(s)).body['run_id'] as string;
    const done = (await trigger(s)).body['run_id'] as string;
    expect((await t.http().post(`/admin/runs/${done}/cancel`).set(t.admin)).status).toBe(200);
    const answers = {
      cancelRun: await t.http().post(`/admin/runs/${done}/cancel`).set(t.admin),
      rerunRun: await t.http().post(`/admin/runs/${active}/rerun`).set(t.admin).send({ from: 'start' }),
      resumeRunStep: await t.http().post(`/admin/runs/${active}/steps/call/resume`).set(t.admin).send({}),
    };
    expectCode(answers, 'RUN_STATE_CONFLICT');
    expect(answers.cancelRun.body).toMatchObject({ run_status: 'cancelled' });
  });
});

describe('schedules: SCHEDULE_NOT_FOUND (404), SCHEDULE_NAME_TAKEN (409), a bad field VALIDATION_FAILED (422)', () => {
  test('an unknown schedule id, from every schedule route', async () => {
    expectCode({
      getSchedule: await t.http().get(`/admin/schedules/${NO_SUCH_SCHEDULE}`).set(t.admin),
      updateSchedule: await t.http().patch(`/admin/schedules/${NO_SUCH_SCHEDULE}`).set(t.admin).send({ enabled: false }),
      deleteSchedule: await t.http().delete(`/admin/schedules/${NO_SUCH_SCHEDULE}`).set(t.admin),
      listScheduleRuns: await t.http().get(`/admin/schedules/${NO_SUCH_SCHEDULE}/runs`).set(t.admin),
      triggerSchedule: await trigger(NO_SUCH_SCHEDULE),
    }, 'SCHEDULE_NOT_FOUND');
  });

  test('a taken name on create and on rename; a bad cron on create and on update', async () => {
    await createSchedule('taken', 'open', { user: 'a' });
    const other = await createSchedule('other', 'open', { user: 'a' });
    expectCode({
      createSchedule: await t.http().post('/admin/schedules').set(t.admin).send({ name: 'taken', workflow: 'open', cron: '0 0 * * *' }),
      updateSchedule: await t.http().patch(`/admin/schedules/${other}`).set(t.admin).send({ name: 'taken' }),
    }, 'SCHEDULE_NAME_TAKEN');
    const answers = {
      createSchedule: await t.http().post('/admin/schedules').set(t.admin).send({ name: 'bad-cron', workflow: 'open', cron: '61 * * * *' }),
      updateSchedule: await t.http().patch(`/admin/schedules/${other}`).set(t.admin).send({ cron: '61 * * * *' }),
    };
    expectCode(answers, 'VALIDATION_FAILED');
    for (const r of Object.values(answers)) expect(r.body['errors']).toEqual([expect.objectContaining({ path: '/body/cron' })]);
  });
});

describe('the engine classes carry codes, not statuses', () => {
  test.each([
    [new WorkflowNotFoundError('w', undefined), 'WORKFLOW_NOT_FOUND'],
    [new RunNotFoundError(NO_SUCH_RUN), 'RUN_NOT_FOUND'],
    [new RunStateError(NO_SUCH_RUN, 'running', 'no'), 'RUN_STATE_CONFLICT'],
    [new RunInputError('w', 1, '/a', 'bad'), 'RUN_INPUT_INVALID'],
    [new ScheduleNotFoundError(NO_SUCH_SCHEDULE), 'SCHEDULE_NOT_FOUND'],
  ] as const)('%p', (err, code) => {
    expect(err).toBeInstanceOf(CodedError);
    expect(err.code).toBe(code);
    expect('status' in err).toBe(false);
  });
});

describe('script modules: a field the module store refuses is VALIDATION_FAILED naming it', () => {
  test('a body of blanks', async () => {
    const res = await t.http().post('/admin/script-modules').set(t.admin).send({ name: 'blank', runtime: 'bash', body: '   ' });
    expectCode({ createScriptModuleVersion: res }, 'VALIDATION_FAILED');
    expect(res.body['errors']).toEqual([{ path: '/body/body', message: 'must not be empty' }]);
  });
});
