import type { RunStatus } from '../engine';

export const OVERLAP_POLICIES = ['skip', 'buffer_one', 'allow'] as const;
/**
 * What a fire does while an earlier run of the same schedule is still pending, running or waiting:
 * `skip` records it `skipped_overlap`; `buffer_one` keeps one fire `buffered` until that run finishes (a further
 * fire meanwhile is skipped); `allow` starts it anyway.
 */
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

export const FIRE_OUTCOMES = ['started', 'skipped_overlap', 'buffered', 'missed', 'failed'] as const;
export type FireOutcome = (typeof FIRE_OUTCOMES)[number];
export type FireTrigger = 'cron' | 'manual';

export interface Schedule {
  id: string;
  name: string;
  workflow: string;
  /** null: each fire runs the latest version at that moment. */
  workflowVersion: number | null;
  inputs: Record<string, unknown>;
  cron: string;
  timeZone: string;
  overlapPolicy: OverlapPolicy;
  catchUpWindowSeconds: number;
  enabled: boolean;
  /** The first slot not yet handled; null while disabled. */
  nextFireAt: string | null;
  lastFiredAt: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

export interface ScheduleFire {
  id: number;
  scheduleId: string;
  /** The cron slot, or the moment a manual trigger asked. */
  scheduledFor: string;
  trigger: FireTrigger;
  outcome: FireOutcome;
  /** When its run was started; null unless `started`. */
  firedAt: string | null;
  runId: string | null;
  /** The run's status now (null without a run). */
  runStatus: RunStatus | null;
  /** Why the engine refused the run (`failed`). */
  error: string | null;
}

/**
 * What creating a schedule takes: the configuration fields of `Schedule`, all but `name`, `workflow` and `cron`
 * optional. Defaults: `workflowVersion` null, `inputs` {}, `timeZone` UTC, `overlapPolicy` `skip`,
 * `catchUpWindowSeconds` 0 (no catch-up), `enabled` true.
 *
 * These types are the one source for a schedule's fields in TypeScript; the API's snake_case types are generated
 * from openapi/provisio.yaml and `server/routes/schedules.ts` checks at compile time that the two name the same
 * fields with the same types.
 */
export type ScheduleInput = Pick<Schedule, 'name' | 'workflow' | 'cron'> &
  Partial<Pick<Schedule, 'workflowVersion' | 'inputs' | 'timeZone' | 'overlapPolicy' | 'catchUpWindowSeconds' | 'enabled'>>;

export type SchedulePatch = Partial<ScheduleInput>;
