// SQL of the schedule aggregate: schedules and their fire history.
import type { Queryable } from '../../adapter';
import type { RunStatus } from '../engine';
import type { FireOutcome, FireTrigger, OverlapPolicy, Schedule, ScheduleFire } from './types';

export interface ScheduleRow {
  id: string;
  name: string;
  workflow_name: string;
  workflow_version: number | null;
  inputs: Record<string, unknown>;
  cron: string;
  time_zone: string;
  overlap_policy: OverlapPolicy;
  catch_up_window_seconds: number;
  enabled: boolean;
  next_fire_at: Date | string | null;
  last_fired_at: Date | string | null;
  created_by: string;
  created_at: Date | string;
  updated_at: Date | string;
}

interface FireRow {
  id: number | string;
  schedule_id: string;
  scheduled_for: Date | string;
  trigger: FireTrigger;
  outcome: FireOutcome;
  fired_at: Date | string | null;
  run_id: string | null;
  run_status: RunStatus | null;
  error: string | null;
}

const COLUMNS = `id, name, workflow_name, workflow_version, inputs, cron, time_zone, overlap_policy, catch_up_window_seconds,
  enabled, next_fire_at, last_fired_at, created_by, created_at, updated_at`;
const S_COLUMNS = COLUMNS.split(',').map((c) => `s.${c.trim()}`).join(', ');

// Runs that still occupy a schedule for its overlap policy: pending (waiting for a lock or limit) counts too.
const ACTIVE = `('pending', 'running', 'waiting')`;

const iso = (v: Date | string): string => (v instanceof Date ? v.toISOString() : new Date(v).toISOString());
const isoOrNull = (v: Date | string | null): string | null => (v === null ? null : iso(v));

export function toSchedule(r: ScheduleRow): Schedule {
  return {
    id: r.id,
    name: r.name,
    workflow: r.workflow_name,
    workflowVersion: r.workflow_version,
    inputs: r.inputs,
    cron: r.cron,
    timeZone: r.time_zone,
    overlapPolicy: r.overlap_policy,
    catchUpWindowSeconds: r.catch_up_window_seconds,
    enabled: r.enabled,
    nextFireAt: isoOrNull(r.next_fire_at),
    lastFiredAt: isoOrNull(r.last_fired_at),
    createdBy: r.created_by,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

function toFire(r: FireRow): ScheduleFire {
  return {
    id: Number(r.id),
    scheduleId: r.schedule_id,
    scheduledFor: iso(r.scheduled_for),
    trigger: r.trigger,
    outcome: r.outcome,
    firedAt: isoOrNull(r.fired_at),
    runId: r.run_id,
    runStatus: r.run_status,
    error: r.error,
  };
}

export interface ScheduleValues {
  name: string;
  workflowName: string;
  workflowVersion: number | null;
  inputs: Record<string, unknown>;
  cron: string;
  timeZone: string;
  overlapPolicy: OverlapPolicy;
  catchUpWindowSeconds: number;
  enabled: boolean;
  nextFireAt: Date | null;
}

export async function insertSchedule(tx: Queryable, id: string, v: ScheduleValues, by: string): Promise<Schedule> {
  const { rows } = await tx.query<ScheduleRow>(
    `INSERT INTO schedules (id, name, workflow_name, workflow_version, inputs, cron, time_zone, overlap_policy,
                            catch_up_window_seconds, enabled, next_fire_at, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ${COLUMNS}`,
    [id, v.name, v.workflowName, v.workflowVersion, JSON.stringify(v.inputs), v.cron, v.timeZone, v.overlapPolicy, v.catchUpWindowSeconds, v.enabled, v.nextFireAt, by],
  );
  return toSchedule(rows[0] as ScheduleRow);
}

export async function updateScheduleRow(tx: Queryable, id: string, v: ScheduleValues): Promise<Schedule> {
  const { rows } = await tx.query<ScheduleRow>(
    `UPDATE schedules SET name = $2, workflow_name = $3, workflow_version = $4, inputs = $5, cron = $6, time_zone = $7,
            overlap_policy = $8, catch_up_window_seconds = $9, enabled = $10, next_fire_at = $11, updated_at = now()
      WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, v.name, v.workflowName, v.workflowVersion, JSON.stringify(v.inputs), v.cron, v.timeZone, v.overlapPolicy, v.catchUpWindowSeconds, v.enabled, v.nextFireAt],
  );
  return toSchedule(rows[0] as ScheduleRow);
}

export async function deleteScheduleRow(tx: Queryable, id: string): Promise<boolean> {
  const { rows } = await tx.query<{ id: string }>(`DELETE FROM schedules WHERE id = $1 RETURNING id`, [id]);
  return rows.length > 0;
}

/** With `forUpdate`, waits for and holds the row lock (manual trigger, update, delete). */
export async function selectSchedule(q: Queryable, id: string, forUpdate = false): Promise<Schedule | null> {
  const { rows } = await q.query<ScheduleRow>(`SELECT ${COLUMNS} FROM schedules WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] ? toSchedule(rows[0]) : null;
}

export async function selectScheduleByName(q: Queryable, name: string): Promise<Schedule | null> {
  const { rows } = await q.query<ScheduleRow>(`SELECT ${COLUMNS} FROM schedules WHERE name = $1`, [name]);
  return rows[0] ? toSchedule(rows[0]) : null;
}

export async function selectSchedules(q: Queryable): Promise<Schedule[]> {
  const { rows } = await q.query<ScheduleRow>(`SELECT ${COLUMNS} FROM schedules ORDER BY name`);
  return rows.map(toSchedule);
}

export async function workflowExists(q: Queryable, name: string, version: number | null): Promise<boolean> {
  const { rows } = await q.query(`SELECT 1 FROM workflows WHERE name = $1 AND ($2::integer IS NULL OR version = $2::integer) LIMIT 1`, [name, version]);
  return rows.length > 0;
}

/**
 * Claims one enabled schedule whose next slot is due. SKIP LOCKED: a schedule another scheduler process is
 * firing right now is passed over, not waited for; the row lock is held until the caller's transaction ends.
 */
export async function claimDueSchedule(tx: Queryable, now: Date): Promise<Schedule | null> {
  const { rows } = await tx.query<ScheduleRow>(
    `SELECT ${COLUMNS} FROM schedules WHERE enabled AND next_fire_at <= $1
      ORDER BY next_fire_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
    [now],
  );
  return rows[0] ? toSchedule(rows[0]) : null;
}

/** Claims one buffered fire whose schedule (enabled, not locked by another scheduler) has no active run left. */
export async function claimReleasedBuffer(tx: Queryable): Promise<{ schedule: Schedule; fireId: number } | null> {
  const { rows } = await tx.query<ScheduleRow & { fire_id: number | string }>(
    `SELECT ${S_COLUMNS}, f.id AS fire_id
       FROM schedule_fires f JOIN schedules s ON s.id = f.schedule_id
      WHERE f.outcome = 'buffered' AND s.enabled
        AND NOT EXISTS (SELECT 1 FROM schedule_fires a JOIN workflow_runs r ON r.id = a.run_id
                         WHERE a.schedule_id = s.id AND r.status IN ${ACTIVE})
      ORDER BY f.scheduled_for LIMIT 1 FOR UPDATE OF s SKIP LOCKED`,
  );
  const r = rows[0];
  return r ? { schedule: toSchedule(r), fireId: Number(r.fire_id) } : null;
}

export async function hasActiveRun(q: Queryable, scheduleId: string): Promise<boolean> {
  const { rows } = await q.query(
    `SELECT 1 FROM schedule_fires f JOIN workflow_runs r ON r.id = f.run_id WHERE f.schedule_id = $1 AND r.status IN ${ACTIVE} LIMIT 1`,
    [scheduleId],
  );
  return rows.length > 0;
}

export async function hasBufferedFire(q: Queryable, scheduleId: string): Promise<boolean> {
  const { rows } = await q.query(`SELECT 1 FROM schedule_fires WHERE schedule_id = $1 AND outcome = 'buffered' LIMIT 1`, [scheduleId]);
  return rows.length > 0;
}

export interface NewFire {
  scheduleId: string;
  scheduledFor: Date;
  trigger: FireTrigger;
  outcome: FireOutcome;
  firedAt: Date | null;
  error?: string | null;
}

/**
 * Records a fire. A cron slot already recorded (by this or another scheduler process) is left alone and null is
 * returned: this insert is what makes each slot fire at most once.
 */
export async function insertFire(tx: Queryable, f: NewFire): Promise<number | null> {
  const { rows } = await tx.query<{ id: number | string }>(
    `INSERT INTO schedule_fires (schedule_id, scheduled_for, trigger, outcome, fired_at, error)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (schedule_id, scheduled_for) WHERE trigger = 'cron' DO NOTHING RETURNING id`,
    [f.scheduleId, f.scheduledFor, f.trigger, f.outcome, f.firedAt, f.error ?? null],
  );
  return rows[0] ? Number(rows[0].id) : null;
}

export async function setFireRun(tx: Queryable, fireId: number, runId: string): Promise<void> {
  await tx.query(`UPDATE schedule_fires SET run_id = $2 WHERE id = $1`, [fireId, runId]);
}

/** Moves a buffered fire on; false when it is no longer buffered (another scheduler got there first). */
export async function settleBufferedFire(tx: Queryable, fireId: number, outcome: 'started' | 'failed', firedAt: Date, error: string | null): Promise<boolean> {
  const { rows } = await tx.query(
    `UPDATE schedule_fires SET outcome = $2, fired_at = $3, error = $4 WHERE id = $1 AND outcome = 'buffered' RETURNING id`,
    [fireId, outcome, firedAt, error],
  );
  return rows.length > 0;
}

export async function advanceSchedule(tx: Queryable, id: string, nextFireAt: Date | null, firedAt: Date | null): Promise<void> {
  await tx.query(`UPDATE schedules SET next_fire_at = $2, last_fired_at = COALESCE($3, last_fired_at) WHERE id = $1`, [id, nextFireAt, firedAt]);
}

export async function selectFire(q: Queryable, fireId: number): Promise<ScheduleFire> {
  const { rows } = await q.query<FireRow>(
    `SELECT f.id, f.schedule_id, f.scheduled_for, f.trigger, f.outcome, f.fired_at, f.run_id, r.status AS run_status, f.error
       FROM schedule_fires f LEFT JOIN workflow_runs r ON r.id = f.run_id WHERE f.id = $1`,
    [fireId],
  );
  return toFire(rows[0] as FireRow);
}

/** Newest first, each with its run's current status. */
export async function selectFires(q: Queryable, scheduleId: string, limit: number): Promise<ScheduleFire[]> {
  const { rows } = await q.query<FireRow>(
    `SELECT f.id, f.schedule_id, f.scheduled_for, f.trigger, f.outcome, f.fired_at, f.run_id, r.status AS run_status, f.error
       FROM schedule_fires f LEFT JOIN workflow_runs r ON r.id = f.run_id
      WHERE f.schedule_id = $1 ORDER BY f.scheduled_for DESC, f.id DESC LIMIT $2`,
    [scheduleId, limit],
  );
  return rows.map(toFire);
}

/**
 * Deletes fire history older than `before` (a buffered fire is kept until it starts). Safe for at-most-once: a
 * schedule's clock never goes back to slots that old, so their keys are not needed any more.
 */
export async function pruneFires(q: Queryable, before: Date): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    `WITH gone AS (DELETE FROM schedule_fires WHERE scheduled_for < $1 AND outcome <> 'buffered' RETURNING 1) SELECT count(*)::int AS n FROM gone`,
    [before],
  );
  return rows[0]?.n ?? 0;
}
