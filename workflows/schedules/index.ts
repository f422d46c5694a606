// Cron schedules of standalone runbooks: validation (5-field cron, IANA zones), CRUD commands, the fire history,
// and the scheduler tick that fires each slot at most once across any number of processes.
export { compileCron, validateCron, validateTimeZone } from './cron';
export type { CronClock } from './cron';
export { ScheduleConflictError, ScheduleInputError, ScheduleNotFoundError } from './errors';
export type { ScheduleErrorCode } from './errors';
export { createSchedule, deleteSchedule, getSchedule, listScheduleFires, listSchedules, planDue, triggerSchedule, updateSchedule } from './schedules';
export type { DuePlan, RunStarter } from './schedules';
export { createScheduler, startScheduler } from './scheduler';
export type { Scheduler, SchedulerOptions, TickReport } from './scheduler';
export { FIRE_OUTCOMES, OVERLAP_POLICIES } from './types';
export type { FireOutcome, FireTrigger, OverlapPolicy, Schedule, ScheduleFire, ScheduleInput, SchedulePatch } from './types';
