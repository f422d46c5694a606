import { ConcurrencyLimitError, RunInputError, WorkflowNotFoundError } from '../../workflows/engine';
import {
  createSchedule,
  deleteSchedule,
  getSchedule,
  listScheduleFires,
  listSchedules,
  ScheduleConflictError,
  ScheduleInputError,
  ScheduleNotFoundError,
  triggerSchedule,
  updateSchedule,
  type Schedule,
  type ScheduleFire,
  type SchedulePatch,
} from '../../workflows/schedules';
import type { RouteModule } from '../app';
import { writeAudit } from '../../adapter';
import { conflict, invalidField, notFound } from '../errors';
import { adminActorOf } from './asset-types';

/** The API's snake_case shape. */
function view(s: Schedule) {
  return {
    id: s.id,
    name: s.name,
    workflow: s.workflow,
    workflow_version: s.workflowVersion,
    inputs: s.inputs,
    cron: s.cron,
    time_zone: s.timeZone,
    overlap_policy: s.overlapPolicy,
    catch_up_window_seconds: s.catchUpWindowSeconds,
    enabled: s.enabled,
    next_fire_at: s.nextFireAt,
    last_fired_at: s.lastFiredAt,
    created_by: s.createdBy,
    created_at: s.createdAt,
    updated_at: s.updatedAt,
  };
}

function fireView(f: ScheduleFire) {
  return {
    id: f.id,
    schedule_id: f.scheduleId,
    scheduled_for: f.scheduledFor,
    trigger: f.trigger,
    outcome: f.outcome,
    fired_at: f.firedAt,
    run_id: f.runId,
    run_status: f.runStatus,
    error: f.error,
  };
}

/** What the audit row keeps: the configuration, not the clock state. */
function audited(s: Schedule): Record<string, unknown> {
  const { next_fire_at: _n, last_fired_at: _l, updated_at: _u, created_at: _c, ...rest } = view(s);
  return rest;
}

/** Schedule domain errors to HTTP; anything else passes through. */
function mapError(e: unknown): never {
  if (e instanceof ScheduleInputError) throw invalidField(`/body/${e.field}`, e.message);
  if (e instanceof ScheduleNotFoundError) throw notFound(e.message);
  if (e instanceof ScheduleConflictError) throw conflict(e.message);
  if (e instanceof WorkflowNotFoundError || e instanceof ConcurrencyLimitError) throw conflict(e.message);
  // The schedule's stored inputs no longer satisfy the workflow's inputSchema: a refusal of the run, like the above.
  if (e instanceof RunInputError) throw conflict(e.message, { field: `/inputs${e.field}` });
  throw e;
}

export const scheduleHandlers: RouteModule = ({ db, workflowEngine }) => ({
  listSchedules: async () => ({ status: 200, body: { items: (await listSchedules(db)).map(view) } }),

  createSchedule: async (input) => {
    const actor = adminActorOf(input);
    const b = input.body;
    try {
      const created = await db.transaction(async (tx) => {
        const s = await createSchedule(
          tx,
          {
            name: b.name,
            workflow: b.workflow,
            cron: b.cron,
            ...(b.workflow_version !== undefined ? { workflowVersion: b.workflow_version } : {}),
            ...(b.inputs !== undefined ? { inputs: b.inputs } : {}),
            ...(b.time_zone !== undefined ? { timeZone: b.time_zone } : {}),
            ...(b.overlap_policy !== undefined ? { overlapPolicy: b.overlap_policy } : {}),
            ...(b.catch_up_window_seconds !== undefined ? { catchUpWindowSeconds: b.catch_up_window_seconds } : {}),
            ...(b.enabled !== undefined ? { enabled: b.enabled } : {}),
          },
          actor.triggeredBy,
        );
        await writeAudit(tx, { entity: 'schedule', entityId: s.id, action: 'create', after: audited(s), ...actor });
        return s;
      });
      return { status: 201, body: view(created) };
    } catch (e) {
      return mapError(e);
    }
  },

  getSchedule: async ({ path }) => {
    try {
      return { status: 200, body: view(await getSchedule(db, path.id)) };
    } catch (e) {
      return mapError(e);
    }
  },

  updateSchedule: async (input) => {
    const actor = adminActorOf(input);
    const b = input.body;
    const patch: SchedulePatch = {
      ...(b.name !== undefined ? { name: b.name } : {}),
      ...(b.workflow !== undefined ? { workflow: b.workflow } : {}),
      ...(b.workflow_version !== undefined ? { workflowVersion: b.workflow_version } : {}),
      ...(b.inputs !== undefined ? { inputs: b.inputs } : {}),
      ...(b.cron !== undefined ? { cron: b.cron } : {}),
      ...(b.time_zone !== undefined ? { timeZone: b.time_zone } : {}),
      ...(b.overlap_policy !== undefined ? { overlapPolicy: b.overlap_policy } : {}),
      ...(b.catch_up_window_seconds !== undefined ? { catchUpWindowSeconds: b.catch_up_window_seconds } : {}),
      ...(b.enabled !== undefined ? { enabled: b.enabled } : {}),
    };
    try {
      const after = await db.transaction(async (tx) => {
        const r = await updateSchedule(tx, input.path.id, patch);
        await writeAudit(tx, { entity: 'schedule', entityId: r.after.id, action: 'update', before: audited(r.before), after: audited(r.after), ...actor });
        return r.after;
      });
      return { status: 200, body: view(after) };
    } catch (e) {
      return mapError(e);
    }
  },

  deleteSchedule: async (input) => {
    const actor = adminActorOf(input);
    try {
      await db.transaction(async (tx) => {
        const before = await deleteSchedule(tx, input.path.id);
        await writeAudit(tx, { entity: 'schedule', entityId: before.id, action: 'delete', before: audited(before), ...actor });
      });
      return { status: 204, body: undefined };
    } catch (e) {
      return mapError(e);
    }
  },

  listScheduleRuns: async ({ path, query }) => {
    try {
      const fires = await listScheduleFires(db, path.id, query.limit ?? 50);
      return { status: 200, body: { items: fires.map(fireView) } };
    } catch (e) {
      return mapError(e);
    }
  },

  triggerSchedule: async (input) => {
    const actor = adminActorOf(input);
    if (!workflowEngine) {
      await getSchedule(db, input.path.id).catch(mapError);
      throw conflict('no workflow engine runs in this process, so a schedule cannot be triggered here');
    }
    try {
      const fire = await db.transaction(async (tx) => {
        const f = await triggerSchedule(tx, workflowEngine, input.path.id, actor.triggeredBy);
        await writeAudit(tx, { entity: 'schedule', entityId: f.scheduleId, action: 'trigger', after: { fire_id: f.id, outcome: f.outcome, run_id: f.runId }, ...actor });
        return f;
      });
      return { status: 201, body: fireView(fire) };
    } catch (e) {
      return mapError(e);
    }
  },
});
