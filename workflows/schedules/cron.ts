// Cron expressions and time zones of schedules: validation and the slot arithmetic, on croner.
//
// DST, as croner computes it and as the tests pin down (Europe/Berlin):
// - Spring forward (02:00 -> 03:00): a fixed-time expression whose wall time falls in the gap (`30 2 * * *`) fires
//   once at the first valid time after it (03:00 local); expressions with a wildcard or step in the minute or hour
//   (`*/30 * * * *`) just skip the slots that do not exist.
// - Fall back (03:00 -> 02:00): a fixed-time expression fires once, on the first occurrence of the repeated wall
//   time; wildcard/step expressions fire on both occurrences (they are interval jobs, every real half hour).
import { Cron } from 'croner';
import { ScheduleInputError } from './errors';

const FIELD_NAMES = ['minute', 'hour', 'day-of-month', 'month', 'day-of-week'];

/**
 * Checks that `tz` is an IANA zone name this runtime knows (`Europe/Berlin`, `UTC`, `Etc/GMT+1`).
 * Offsets such as `+01:00` are refused: they have no DST rules, so a schedule would drift from local time.
 * @throws ScheduleInputError (field `time_zone`)
 */
export function validateTimeZone(tz: string): void {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(tz)) {
    throw new ScheduleInputError('time_zone', `'${tz}' is not an IANA time zone name (like Europe/Berlin or UTC)`);
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new ScheduleInputError('time_zone', `'${tz}' is not a known IANA time zone`);
  }
}

/**
 * Parses a standard 5-field expression (minute hour day-of-month month day-of-week) read in `tz`.
 * Refuses seconds and year fields (6 or 7 fields), `@nicknames`, bad values and expressions that never fire.
 * @throws ScheduleInputError (field `cron`, or `time_zone` when the zone is bad)
 */
export function validateCron(expr: string, tz: string): Cron {
  validateTimeZone(tz);
  const text = expr.trim();
  if (text.startsWith('@')) {
    throw new ScheduleInputError('cron', `'${text}' is a nickname; write the 5 fields (${FIELD_NAMES.join(' ')}) instead`);
  }
  const fields = text.split(/\s+/).filter((f) => f.length > 0);
  if (fields.length === 6) {
    throw new ScheduleInputError('cron', `'${text}' has 6 fields: a leading seconds field is not supported; use the 5 fields ${FIELD_NAMES.join(' ')}`);
  }
  if (fields.length === 7) {
    throw new ScheduleInputError('cron', `'${text}' has 7 fields: seconds and year fields are not supported; use the 5 fields ${FIELD_NAMES.join(' ')}`);
  }
  if (fields.length !== 5) {
    throw new ScheduleInputError('cron', `'${text}' has ${fields.length} field(s); a cron expression has exactly 5: ${FIELD_NAMES.join(' ')}`);
  }
  let cron: Cron;
  try {
    cron = new Cron(fields.join(' '), { timezone: tz, paused: true, mode: '5-part' });
  } catch (e) {
    const msg = (e as Error).message.replace(/^CronPattern:\s*/, '');
    throw new ScheduleInputError('cron', `'${text}' is not a valid cron expression: ${msg}`);
  }
  if (cron.nextRun(new Date()) === null) {
    throw new ScheduleInputError('cron', `'${text}' never fires`);
  }
  return cron;
}

/** A compiled schedule clock: what the scheduler asks of a cron expression. */
export interface CronClock {
  /** The first slot strictly after `after`; null if there is none. */
  nextAfter(after: Date): Date | null;
}

/** @throws ScheduleInputError */
export function compileCron(expr: string, tz: string): CronClock {
  const cron = validateCron(expr, tz);
  return { nextAfter: (after) => cron.nextRun(after) };
}

/**
 * The slots from `first` (inclusive, itself a slot) up to `now` (inclusive), oldest first, at most `max` of them
 * (the most recent ones are kept) — plus how many older ones were dropped by the cap.
 */
export function slotsUpTo(clock: CronClock, first: Date, now: Date, max: number): { slots: Date[]; dropped: number } {
  const slots: Date[] = [];
  let dropped = 0;
  let s: Date | null = first;
  while (s !== null && s.getTime() <= now.getTime()) {
    slots.push(s);
    if (slots.length > max) {
      slots.shift();
      dropped++;
    }
    s = clock.nextAfter(s);
  }
  return { slots, dropped };
}
