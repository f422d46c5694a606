import { compileCron, planDue, ScheduleInputError, validateCron, validateTimeZone } from './index';

const at = (s: string) => new Date(s);
const iso = (d: Date | null) => (d ? d.toISOString() : null);

function inputError(fn: () => unknown): ScheduleInputError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ScheduleInputError) return e;
    throw e;
  }
  throw new Error('expected a ScheduleInputError');
}

describe('validateCron', () => {
  test('accepts standard 5-field expressions', () => {
    for (const expr of ['* * * * *', '*/15 9-17 * * 1-5', '0 2 1 * *', '30 6 * jan,jul mon', '  5   4 * * *  ']) {
      expect(() => validateCron(expr, 'UTC')).not.toThrow();
    }
  });

  test('a seconds field is refused by name', () => {
    const e = inputError(() => validateCron('0 */5 * * * *', 'UTC'));
    expect(e.field).toBe('cron');
    expect(e.message).toMatch(/6 fields: a leading seconds field is not supported/);
  });

  test('seconds and year fields are refused by name', () => {
    const e = inputError(() => validateCron('0 0 12 * * * 2027', 'UTC'));
    expect(e.field).toBe('cron');
    expect(e.message).toMatch(/7 fields: seconds and year fields are not supported/);
  });

  test('too few fields, nicknames, bad values and never-firing expressions are refused', () => {
    expect(inputError(() => validateCron('0 0 * *', 'UTC')).message).toMatch(/has 4 field\(s\); a cron expression has exactly 5/);
    expect(inputError(() => validateCron('@daily', 'UTC')).message).toMatch(/nickname/);
    expect(inputError(() => validateCron('61 * * * *', 'UTC')).message).toMatch(/minute/);
    expect(inputError(() => validateCron('0 0 30 2 *', 'UTC')).message).toMatch(/never fires/);
  });

  test('time zones must be IANA names', () => {
    expect(() => validateTimeZone('Europe/Berlin')).not.toThrow();
    expect(() => validateTimeZone('UTC')).not.toThrow();
    expect(() => validateTimeZone('America/Argentina/Buenos_Aires')).not.toThrow();
    expect(inputError(() => validateTimeZone('Mars/Olympus_Mons')).field).toBe('time_zone');
    expect(inputError(() => validateTimeZone('+01:00')).message).toMatch(/not an IANA time zone name/);
    expect(inputError(() => validateCron('* * * * *', 'Europe/Nowhere')).field).toBe('time_zone');
  });
});

describe('next fire times', () => {
  test('a daily time is read in the schedule zone', () => {
    const berlin = compileCron('0 9 * * *', 'Europe/Berlin');
    expect(iso(berlin.nextAfter(at('2026-01-15T06:00:00Z')))).toBe('2026-01-15T08:00:00.000Z'); // CET, UTC+1
    expect(iso(berlin.nextAfter(at('2026-07-15T06:00:00Z')))).toBe('2026-07-15T07:00:00.000Z'); // CEST, UTC+2
    const ny = compileCron('0 9 * * 1-5', 'America/New_York');
    // Friday 2026-01-16 14:30Z is 09:30 in New York: the next weekday 09:00 is Monday.
    expect(iso(ny.nextAfter(at('2026-01-16T14:30:00Z')))).toBe('2026-01-19T14:00:00.000Z');
  });

  test('next is strictly after the reference', () => {
    const c = compileCron('*/5 * * * *', 'UTC');
    expect(iso(c.nextAfter(at('2026-01-01T00:05:00Z')))).toBe('2026-01-01T00:10:00.000Z');
  });

  // Europe/Berlin springs forward on 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00Z).
  test('DST spring forward: a fixed time in the gap fires once at the first valid time after it', () => {
    const c = compileCron('30 2 * * *', 'Europe/Berlin');
    expect(iso(c.nextAfter(at('2026-03-28T12:00:00Z')))).toBe('2026-03-29T01:00:00.000Z'); // 03:00 CEST
    expect(iso(c.nextAfter(at('2026-03-29T01:00:00Z')))).toBe('2026-03-30T00:30:00.000Z'); // back to 02:30 CEST
  });

  test('DST spring forward: an interval expression skips the slots that do not exist', () => {
    const c = compileCron('*/30 * * * *', 'Europe/Berlin');
    const slots: string[] = [];
    let d: Date | null = at('2026-03-29T00:10:00Z');
    for (let i = 0; i < 4 && d; i++) slots.push(iso((d = c.nextAfter(d))) as string);
    // 01:30 CET, then 03:00 CEST: 02:00 and 02:30 never happen.
    expect(slots).toEqual(['2026-03-29T00:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-29T01:30:00.000Z', '2026-03-29T02:00:00.000Z']);
  });

  // Europe/Berlin falls back on 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00Z); 02:00-02:59 happens twice.
  test('DST fall back: a fixed time that happens twice fires once, on its first occurrence', () => {
    const c = compileCron('30 2 * * *', 'Europe/Berlin');
    expect(iso(c.nextAfter(at('2026-10-24T12:00:00Z')))).toBe('2026-10-25T00:30:00.000Z'); // 02:30 CEST
    expect(iso(c.nextAfter(at('2026-10-25T00:30:00Z')))).toBe('2026-10-26T01:30:00.000Z'); // not 02:30 CET again
  });

  test('DST fall back: an interval expression fires on both occurrences', () => {
    const c = compileCron('*/30 * * * *', 'Europe/Berlin');
    const slots: string[] = [];
    let d: Date | null = at('2026-10-24T23:50:00Z');
    for (let i = 0; i < 6 && d; i++) slots.push(iso((d = c.nextAfter(d))) as string);
    expect(slots).toEqual([
      '2026-10-25T00:00:00.000Z', // 02:00 CEST
      '2026-10-25T00:30:00.000Z', // 02:30 CEST
      '2026-10-25T01:00:00.000Z', // 02:00 CET
      '2026-10-25T01:30:00.000Z', // 02:30 CET
      '2026-10-25T02:00:00.000Z', // 03:00 CET
      '2026-10-25T02:30:00.000Z',
    ]);
  });
});

describe('planDue (injected clock)', () => {
  const hourly = compileCron('0 * * * *', 'UTC');
  const MIN = 60_000;

  test('an on-time slot fires; the next slot follows now', () => {
    const p = planDue(hourly, at('2026-05-01T10:00:00Z'), at('2026-05-01T10:00:20Z'), 0, MIN);
    expect(iso(p.fire)).toBe('2026-05-01T10:00:00.000Z');
    expect(p.missed).toEqual([]);
    expect(iso(p.next)).toBe('2026-05-01T11:00:00.000Z');
  });

  test('without a catch-up window, slots missed during downtime are all recorded missed', () => {
    const p = planDue(hourly, at('2026-05-01T10:00:00Z'), at('2026-05-01T13:30:00Z'), 0, MIN);
    expect(p.fire).toBeNull();
    expect(p.missed.map(iso)).toEqual(['2026-05-01T10:00:00.000Z', '2026-05-01T11:00:00.000Z', '2026-05-01T12:00:00.000Z', '2026-05-01T13:00:00.000Z']);
    expect(iso(p.next)).toBe('2026-05-01T14:00:00.000Z');
  });

  test('within the catch-up window the latest missed slot fires once; older ones are missed', () => {
    const p = planDue(hourly, at('2026-05-01T10:00:00Z'), at('2026-05-01T13:30:00Z'), 45 * MIN, MIN);
    expect(iso(p.fire)).toBe('2026-05-01T13:00:00.000Z');
    expect(p.missed.map(iso)).toEqual(['2026-05-01T10:00:00.000Z', '2026-05-01T11:00:00.000Z', '2026-05-01T12:00:00.000Z']);
  });

  test('a latest slot older than the window is missed too', () => {
    const p = planDue(hourly, at('2026-05-01T10:00:00Z'), at('2026-05-01T13:50:00Z'), 45 * MIN, MIN);
    expect(p.fire).toBeNull();
    expect(p.missed).toHaveLength(4);
  });

  test('a long outage of a frequent schedule records a bounded number of missed slots', () => {
    const everyMinute = compileCron('* * * * *', 'UTC');
    const p = planDue(everyMinute, at('2026-04-01T00:00:00Z'), at('2026-05-01T00:00:30Z'), 0, MIN, 100);
    expect(p.truncated).toBe(true);
    expect(iso(p.fire)).toBe('2026-05-01T00:00:00.000Z');
    expect(p.missed).toHaveLength(100);
    expect(iso(p.missed[99] ?? null)).toBe('2026-04-30T23:59:00.000Z');
  });
});
