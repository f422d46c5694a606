import { camelKeys, snakeKeys } from './spec-types';

describe('snakeKeys and camelKeys', () => {
  test('rename top-level keys both ways and leave nested data alone', () => {
    const domain = { timeZone: 'UTC', catchUpWindowSeconds: 0, inputs: { someKey: 1, other_key: 2 }, id: 'x' };
    const api = snakeKeys(domain);
    expect(api).toEqual({ time_zone: 'UTC', catch_up_window_seconds: 0, inputs: { someKey: 1, other_key: 2 }, id: 'x' });
    expect(Object.keys(api)).toEqual(['time_zone', 'catch_up_window_seconds', 'inputs', 'id']);
    expect(camelKeys(api)).toEqual(domain);
  });

  test('an absent optional field stays absent (a patch changes only what it names)', () => {
    expect(camelKeys({ workflow_version: null })).toEqual({ workflowVersion: null });
    expect('enabled' in camelKeys({ cron: '* * * * *' })).toBe(false);
  });
});
