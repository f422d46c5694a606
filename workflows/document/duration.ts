import type { Duration } from './types';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The pattern the document schema accepts for a duration string. */
export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d)$';

/**
 * Milliseconds of a duration (`30s`, `5m`, `1500`).
 * @throws RangeError for anything else (the schema keeps bad values out of compiled documents).
 */
export function parseDuration(value: Duration): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`invalid duration ${value}: milliseconds must be a non-negative integer`);
    return value;
  }
  const m = /^([0-9]+)(ms|s|m|h|d)$/.exec(value);
  if (!m) throw new RangeError(`invalid duration ${JSON.stringify(value)}: use e.g. 500ms, 30s, 5m, 2h, 1d`);
  return Number(m[1]) * (UNITS[m[2] as string] as number);
}
