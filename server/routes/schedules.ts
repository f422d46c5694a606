import {
  createSchedule,
  deleteSchedule,
  getSchedule,
  listScheduleFires,
  listSchedules,
  triggerSchedule,
  updateSchedule,
  type Schedule,
  type ScheduleFire,
  type ScheduleInput,
  type SchedulePatch,
} from '../../workflows';
import type { RouteModule } from './route-module';
import type * as Api from '../api/gen/types.gen';
import { camelKeys, snakeKeys, type Assert, type SnakeCased, type Same } from '../api/spec-types';
import { writeAudit } from '../../adapter';
import { conflict } from '../errors';
import { adminActorOf } from './asset-types';

// The schedule types of workflows/schedules are the TypeScript source; the API's are generated from the spec. A
// field or type that differs between the two (in snake_case) fails the typecheck here, so the key-for-key
// conversions below cannot drift.
type SchedulesMatchSpec = [
  Assert<Same<SnakeCased<Schedule>, Api.Schedule>>,
  Assert<Same<SnakeCased<ScheduleFire>, Api.ScheduleFire>>,
  Assert<Same<SnakeCased<ScheduleInput>, Api.ScheduleCreate>>,
  Assert<Same<SnakeCased<SchedulePatch>, Api.ScheduleUpdate>>,
];

/** The API's snake_case shape. */
const view = (s: Schedule): Api.Schedule => snakeKeys(s);
const fireView = (f: ScheduleFire): Api.ScheduleFire => snakeKeys(f);

/** What the audit row keeps: the configuration, not the clock state. */
function audited(s: Schedule): Record<string, unknown> {
  const { next_fire_at: _n, last_fired_at: _l, updated_at: _u, created_at: _c, ...rest } = view(s);
  return rest;
}

export const scheduleHandlers: RouteModule = ({ db, workflowEngine }) => ({
  listSchedules: async () => ({ status: 200, body: { items: (await listSchedules(db)).map(view) } }),

  createSchedule: async (input) => {
    const actor = adminActorOf(input);
    const b = input.body;
    const created = await db.transaction(async (tx) => {
      const s = await createSchedule(tx, camelKeys(b), actor.triggeredBy);
      await writeAudit(tx, { entity: 'schedule', entityId: s.id, action: 'create', after: audited(s), ...actor });
      return s;
    });
    return { status: 201, body: view(created) };
  },

  getSchedule: async ({ path }) => ({ status: 200, body: view(await getSchedule(db, path.id)) }),

  updateSchedule: async (input) => {
    const actor = adminActorOf(input);
    const b = input.body;
    const patch: SchedulePatch = camelKeys(b);
    const after = await db.transaction(async (tx) => {
      const r = await updateSchedule(tx, input.path.id, patch);
      await writeAudit(tx, { entity: 'schedule', entityId: r.after.id, action: 'update', before: audited(r.before), after: audited(r.after), ...actor });
      return r.after;
    });
    return { status: 200, body: view(after) };
  },

  deleteSchedule: async (input) => {
    const actor = adminActorOf(input);
    await db.transaction(async (tx) => {
      const before = await deleteSchedule(tx, input.path.id);
      await writeAudit(tx, { entity: 'schedule', entityId: before.id, action: 'delete', before: audited(before), ...actor });
    });
    return { status: 204, body: undefined };
  },

  listScheduleRuns: async ({ path, query }) => {
    const fires = await listScheduleFires(db, path.id, query.limit ?? 50);
    return { status: 200, body: { items: fires.map(fireView) } };
  },

  triggerSchedule: async (input) => {
    const actor = adminActorOf(input);
    if (!workflowEngine) {
      await getSchedule(db, input.path.id);
      throw conflict('no workflow engine runs in this process, so a schedule cannot be triggered here');
    }
    const fire = await db.transaction(async (tx) => {
      const f = await triggerSchedule(tx, workflowEngine, input.path.id, actor.triggeredBy);
      await writeAudit(tx, { entity: 'schedule', entityId: f.scheduleId, action: 'trigger', after: { fire_id: f.id, outcome: f.outcome, run_id: f.runId }, ...actor });
      return f;
    });
    return { status: 201, body: fireView(fire) };
  },
});
