// Errors of the schedule commands; the HTTP layer maps each to its status (422, 404, 409).

/** Bad input to a schedule command; `field` is the schedule field at fault (its API name). Maps to 422. */
export class ScheduleInputError extends Error {
  constructor(
    readonly field: 'name' | 'workflow' | 'workflow_version' | 'cron' | 'time_zone',
    message: string,
  ) {
    super(message);
    this.name = 'ScheduleInputError';
  }
}

/** No schedule with that id. Maps to 404. */
export class ScheduleNotFoundError extends Error {
  constructor(readonly scheduleId: string) {
    super(`schedule ${scheduleId} does not exist`);
    this.name = 'ScheduleNotFoundError';
  }
}

/** The name is taken by another schedule. Maps to 409. */
export class ScheduleConflictError extends Error {
  constructor(readonly scheduleName: string) {
    super(`a schedule named '${scheduleName}' already exists`);
    this.name = 'ScheduleConflictError';
  }
}
