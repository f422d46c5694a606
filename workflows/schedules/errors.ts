import { CodedError } from '../../adapter';

// Errors of the schedule commands: each has a stable `code` and the data that locates it; `server/errors.ts`
// decides how each code is answered over HTTP.

export type ScheduleErrorCode = 'SCHEDULE_INPUT_INVALID' | 'SCHEDULE_NOT_FOUND' | 'SCHEDULE_NAME_TAKEN';

/**
 * Bad input to a schedule command: a bad cron or time zone, or a workflow (or version) that does not exist.
 * `field` is the schedule field at fault (its API name).
 */
export class ScheduleInputError extends CodedError<'SCHEDULE_INPUT_INVALID'> {
  constructor(
    readonly field: 'name' | 'workflow' | 'workflow_version' | 'cron' | 'time_zone',
    message: string,
  ) {
    super('SCHEDULE_INPUT_INVALID', message);
    this.name = 'ScheduleInputError';
  }
}

/** Thrown when no schedule has that id. */
export class ScheduleNotFoundError extends CodedError<'SCHEDULE_NOT_FOUND'> {
  constructor(readonly scheduleId: string) {
    super('SCHEDULE_NOT_FOUND', `schedule ${scheduleId} does not exist`);
    this.name = 'ScheduleNotFoundError';
  }
}

/** Thrown on create or rename when another schedule has the name. */
export class ScheduleConflictError extends CodedError<'SCHEDULE_NAME_TAKEN'> {
  constructor(readonly scheduleName: string) {
    super('SCHEDULE_NAME_TAKEN', `a schedule named '${scheduleName}' already exists`);
    this.name = 'ScheduleConflictError';
  }
}
