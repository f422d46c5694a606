import { CodedError, statusOf, type ErrorCode } from '../../errors';
import { validateOrderConfig, type AttributeDef } from './asset-types';

const attrs: AttributeDef[] = [
  { key: 'project_code', type: 'string', required: true, help: 'Project to charge' },
  { key: 'cores', type: 'integer', required: false },
  { key: 'ratio', type: 'number', required: false },
  { key: 'gpu', type: 'boolean', required: false },
  { key: 'start_on', type: 'date', required: false },
  { key: 'window_start', type: 'date-time', required: false },
  { key: 'manager', type: 'email', required: false },
];

/** The single field error `fn` throws, as `{path, message}`. */
function fieldError(fn: () => void): { path: string; message: string; status: number } {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof CodedError)) throw err;
    expect(err.errors).toHaveLength(1);
    return { ...err.errors![0]!, status: statusOf(err.code as ErrorCode).status };
  }
  throw new Error('expected validateOrderConfig to throw');
}

describe('validateOrderConfig', () => {
  it('accepts a config that matches every type', () => {
    expect(() =>
      validateOrderConfig(attrs, {
        project_code: 'P-1',
        cores: 4,
        ratio: 0.5,
        gpu: false,
        start_on: '2028-02-29',
        window_start: '2026-11-24T09:30:00.123+01:00',
        manager: 'ann.lee@example.com',
      }),
    ).not.toThrow();
  });

  it('accepts an empty config when nothing is required, and null as absent for optional keys', () => {
    expect(() => validateOrderConfig([], {})).not.toThrow();
    expect(() => validateOrderConfig(attrs, { project_code: 'P', cores: null })).not.toThrow();
  });

  it('names an unknown key', () => {
    expect(fieldError(() => validateOrderConfig(attrs, { project_code: 'P', colour: 'red' }))).toEqual({
      path: '/body/config/colour',
      message: 'is not an attribute of this asset type',
      status: 422,
    });
  });

  it.each([
    ['project_code', 12, 'must be a string'],
    ['cores', 2.5, 'must be an integer'],
    ['cores', '4', 'must be an integer'],
    ['ratio', 'x', 'must be a number'],
    ['gpu', 'true', 'must be a boolean'],
    ['start_on', '2026-02-30', 'must be an ISO 8601 date (YYYY-MM-DD)'],
    ['start_on', '24.11.2026', 'must be an ISO 8601 date (YYYY-MM-DD)'],
    ['window_start', '2026-11-24T09:30:00', 'must be an ISO 8601 date-time with offset (e.g. 2026-11-24T09:30:00Z)'],
    ['window_start', '2026-11-24T25:00:00Z', 'must be an ISO 8601 date-time with offset (e.g. 2026-11-24T09:30:00Z)'],
    ['manager', 'not-an-email', 'must be an email address'],
  ])('names an ill-typed %s (%p) with the expected type', (key, value, message) => {
    const config: Record<string, unknown> = { project_code: 'P', [key]: value };
    expect(fieldError(() => validateOrderConfig(attrs, config))).toEqual({ path: `/body/config/${key}`, message, status: 422 });
  });

  it('names a missing required key, also when it is null', () => {
    expect(fieldError(() => validateOrderConfig(attrs, { cores: 2 }))).toEqual({
      path: '/body/config/project_code',
      message: 'is required (string)',
      status: 422,
    });
    expect(fieldError(() => validateOrderConfig(attrs, { project_code: null })).path).toBe('/body/config/project_code');
  });

  it('reports the first offending key: config keys in order before missing required keys', () => {
    expect(fieldError(() => validateOrderConfig(attrs, { cores: 'x', colour: 1 })).path).toBe('/body/config/cores');
    expect(fieldError(() => validateOrderConfig(attrs, { colour: 1, cores: 'x' })).path).toBe('/body/config/colour');
  });

  it('puts a readable detail on the error', () => {
    try {
      validateOrderConfig(attrs, { project_code: 'P', colour: 'red' });
    } catch (err) {
      expect((err as CodedError).message).toBe('config/colour: is not an attribute of this asset type');
    }
  });
});
