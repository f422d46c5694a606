// Schedule commands (each runs in the caller's transaction) and the one place a fire is decided and recorded,
// shared by the scheduler tick and the manual trigger.
import { randomUUID } from 'node:crypto';
import { PgErrorCode, sqlState, type Queryable } from '../../adapter';
import type { WorkflowEngine } from '../engine';
import { compileCron, slotsUpTo, type CronClock } from './cron';
import { ScheduleConflictError, ScheduleInputError, ScheduleNotFoundError } from './errors';
import * as store from './store';
import type { FireOutcome, FireTrigger, Schedule, ScheduleFire, ScheduleInput, SchedulePatch } from './types';

/** What firing needs of the engine: runs are created inside the fire's own transaction. */
export type RunStarter = Pick<WorkflowEngine, 'startRun'>;

async function checkWorkflow(q: Queryable, name: string, version: number | null): Promise<void> {
  if (await store.workflowExists(q, name, version)) return;
  if (version !== null && (await store.workflowExists(q, name, null))) {
    throw new ScheduleInputError('workflow_version', `workflow '${name}' has no version ${version}`);
  }
  throw new ScheduleInputError('workflow', `workflow '${name}' does not exist`);
}

function values(input: ScheduleInput, clock: CronClock, now: Date): store.ScheduleValues {
  const enabled = input.enabled ?? true;
  return {
    name: input.name,
    workflowName: input.workflow,
    workflowVersion: input.workflowVersion ?? null,
    inputs: input.inputs ?? {},
    cron: input.cron.trim().split(/\s+/).join(' '),
    timeZone: input.timeZone ?? 'UTC',
    overlapPolicy: input.overlapPolicy ?? 'skip',
    catchUpWindowSeconds: input.catchUpWindowSeconds ?? 0,
    enabled,
    nextFireAt: enabled ? clock.nextAfter(now) : null,
  };
}

/**
 * Creates a schedule; its first slot is the first one after `now`.
 * @throws ScheduleInputError (bad cron or zone, unknown workflow or version); ScheduleConflictError (name taken)
 */
export async function createSchedule(tx: Queryable, input: ScheduleInput, by: string, now = new Date()): Promise<Schedule> {
  const clock = compileCron(input.cron, input.timeZone ?? 'UTC');
  await checkWorkflow(tx, input.workflow, input.workflowVersion ?? null);
  if (await store.selectScheduleByName(tx, input.name)) throw new ScheduleConflictError(input.name);
  try {
    return await store.insertSchedule(tx, randomUUID(), values(input, clock, now), by);
  } catch (e) {
    if (sqlState(e) === PgErrorCode.UNIQUE_VIOLATION) throw new ScheduleConflictError(input.name);
    throw e;
  }
}

/**
 * Changes some fields. A new cron or zone, or enabling, restarts the clock from `now` (slots passed while the
 * schedule was disabled are not caught up); disabling clears `nextFireAt`.
 * @throws ScheduleNotFoundError; ScheduleInputError; ScheduleConflictError
 */
export async function updateSchedule(tx: Queryable, id: string, patch: SchedulePatch, now = new Date()): Promise<{ before: Schedule; after: Schedule }> {
  const before = await store.selectSchedule(tx, id, true);
  if (!before) throw new ScheduleNotFoundError(id);
  const merged: ScheduleInput = {
    name: patch.name ?? before.name,
    workflow: patch.workflow ?? before.workflow,
    workflowVersion: patch.workflowVersion !== undefined ? patch.workflowVersion : patch.workflow !== undefined ? null : before.workflowVersion,
    inputs: patch.inputs ?? before.inputs,
    cron: patch.cron ?? before.cron,
    timeZone: patch.timeZone ?? before.timeZone,
    overlapPolicy: patch.overlapPolicy ?? before.overlapPolicy,
    catchUpWindowSeconds: patch.catchUpWindowSeconds ?? before.catchUpWindowSeconds,
    enabled: patch.enabled ?? before.enabled,
  };
  const clock = compileCron(merged.cron, merged.timeZone ?? 'UTC');
  if (patch.workflow !== undefined || patch.workflowVersion !== undefined) await checkWorkflow(tx, merged.workflow, merged.workflowVersion ?? null);
  if (merged.name !== before.name) {
    const other = await store.selectScheduleByName(tx, merged.name);
    if (other && other.id !== id) throw new ScheduleConflictError(merged.name);
  }
  const v = values(merged, clock, now);
  const restart = merged.cron !== before.cron || merged.timeZone !== before.timeZone || (merged.enabled && !before.enabled) || before.nextFireAt === null;
  if (v.enabled && !restart) v.nextFireAt = new Date(before.nextFireAt as string);
  try {
    return { before, after: await store.updateScheduleRow(tx, id, v) };
  } catch (e) {
    if (sqlState(e) === PgErrorCode.UNIQUE_VIOLATION) throw new ScheduleConflictError(merged.name);
    throw e;
  }
}

/** Deletes a schedule and its fire history (runs it started are kept). @throws ScheduleNotFoundError */
export async function deleteSchedule(tx: Queryable, id: string): Promise<Schedule> {
  const before = await store.selectSchedule(tx, id, true);
  if (!before) throw new ScheduleNotFoundError(id);
  await store.deleteScheduleRow(tx, id);
  return before;
}

/** @throws ScheduleNotFoundError */
export async function getSchedule(q: Queryable, id: string): Promise<Schedule> {
  const s = await store.selectSchedule(q, id);
  if (!s) throw new ScheduleNotFoundError(id);
  return s;
}

export async function listSchedules(q: Queryable): Promise<Schedule[]> {
  return store.selectSchedules(q);
}

/** The fire history, newest first, with each run's current status. @throws ScheduleNotFoundError */
export async function listScheduleFires(q: Queryable, id: string, limit = 50): Promise<ScheduleFire[]> {
  await getSchedule(q, id);
  return store.selectFires(q, id, limit);
}

/**
 * Fires the schedule now, outside its cron slots, under its overlap policy (so the answer may be a
 * `skipped_overlap` or `buffered` fire). Works on a disabled schedule too: it is an operator's explicit ask.
 * @throws ScheduleNotFoundError; the engine's WorkflowNotFoundError / ConcurrencyLimitError (nothing is recorded)
 */
export async function triggerSchedule(tx: Queryable, engine: RunStarter, id: string, by: string, now = new Date()): Promise<ScheduleFire> {
  const s = await store.selectSchedule(tx, id, true);
  if (!s) throw new ScheduleNotFoundError(id);
  const fired = await fireSlot(tx, engine, s, now, 'manual', by, now);
  if (!fired) throw new Error('a manual fire is never a duplicate');
  if (fired.outcome === 'started') await store.advanceSchedule(tx, s.id, s.nextFireAt === null ? null : new Date(s.nextFireAt), now);
  return store.selectFire(tx, fired.id);
}

/**
 * Decides and records one fire of `s` (whose row the caller holds locked) for `slot`, and starts its run in the
 * same transaction when the overlap policy lets it. Null when that cron slot was already recorded.
 */
export async function fireSlot(
  tx: Queryable,
  engine: RunStarter,
  s: Schedule,
  slot: Date,
  trigger: FireTrigger,
  createdBy: string,
  now: Date,
): Promise<{ id: number; outcome: FireOutcome } | null> {
  let outcome: FireOutcome = 'started';
  if (s.overlapPolicy !== 'allow' && (await store.hasActiveRun(tx, s.id))) {
    outcome = s.overlapPolicy === 'buffer_one' && !(await store.hasBufferedFire(tx, s.id)) ? 'buffered' : 'skipped_overlap';
  }
  const id = await store.insertFire(tx, { scheduleId: s.id, scheduledFor: slot, trigger, outcome, firedAt: outcome === 'started' ? now : null });
  if (id === null) return null;
  if (outcome === 'started') {
    const run = await engine.startRun(tx, runOptions(s, createdBy));
    await store.setFireRun(tx, id, run.id);
  }
  return { id, outcome };
}

export function runOptions(s: Schedule, createdBy: string) {
  return {
    workflow: s.workflow,
    ...(s.workflowVersion !== null ? { version: s.workflowVersion } : {}),
    inputs: s.inputs,
    createdBy,
  };
}

/** What a due schedule does at `now`: at most one slot fires, older ones are recorded missed. */
export interface DuePlan {
  /** The slot to fire: the latest due one, if it is within the tolerance. */
  fire: Date | null;
  /** Due slots that do not fire, oldest first. */
  missed: Date[];
  /** True when more slots were missed than are recorded (a long outage of a frequent schedule). */
  truncated: boolean;
  /** The first slot after `now`. */
  next: Date | null;
}

const HISTORY_HORIZON_MS = 24 * 3600_000;

/**
 * Catch-up policy: slots that came due while no scheduler ran COLLAPSE into one fire — the latest due slot fires
 * when it is at most `max(catchUpWindow, lateTolerance)` old; every other due slot is recorded `missed`. A runbook
 * schedule converges state (a nightly sweep), so ten back-to-back runs after an outage would repeat the same work;
 * one run does it. `lateTolerance` covers ordinary lateness (the tick interval), so with a window of 0 a slot still
 * fires when the tick that sees it comes a little after it. Missed slots are recorded individually for the last
 * day (and at most `maxRecorded`); older ones are skipped over without rows.
 */
export function planDue(clock: CronClock, firstDue: Date, now: Date, catchUpWindowMs: number, lateToleranceMs: number, maxRecorded = 100): DuePlan {
  const tolerance = Math.max(catchUpWindowMs, lateToleranceMs);
  const horizon = new Date(now.getTime() - tolerance - HISTORY_HORIZON_MS);
  let first: Date | null = firstDue;
  let truncated = false;
  if (firstDue < horizon) {
    first = clock.nextAfter(new Date(horizon.getTime() - 1));
    truncated = true;
  }
  const { slots, dropped } = first ? slotsUpTo(clock, first, now, maxRecorded + 1) : { slots: [], dropped: 0 };
  const latest = slots[slots.length - 1];
  const fire = latest !== undefined && now.getTime() - latest.getTime() <= tolerance ? latest : null;
  return { fire, missed: fire ? slots.slice(0, -1) : slots, truncated: truncated || dropped > 0, next: clock.nextAfter(now) };
}
