// Construction-time checks of the engine (no database: the factory touches none until used).
import { createLogger, type Database, type JobQueue } from '../../adapter';
import { createWorkflowEngine, DEFAULT_ENGINE_CONFIG } from './engine';

const deps = { db: {} as Database, queue: {} as JobQueue, logger: createLogger({ silent: true }), executors: {} };

describe('createWorkflowEngine config', () => {
  it('has frozen defaults with units in their names', () => {
    expect(Object.isFrozen(DEFAULT_ENGINE_CONFIG)).toBe(true);
    expect(DEFAULT_ENGINE_CONFIG).toMatchObject({ leaseMs: 30_000, defaultTimeoutMs: 300_000 });
  });

  it('refuses a non-positive or non-numeric setting, naming it', () => {
    expect(() => createWorkflowEngine({ ...deps, config: { leaseMs: 0 } })).toThrow(/leaseMs must be a positive number/);
    expect(() => createWorkflowEngine({ ...deps, config: { sweepIntervalMs: Number.NaN } })).toThrow(/sweepIntervalMs/);
    expect(() => createWorkflowEngine({ ...deps, config: { jobRetryLimit: -1 } })).toThrow(/jobRetryLimit must be a non-negative number/);
    expect(() => createWorkflowEngine({ ...deps, config: { jobRetryLimit: 0 } })).not.toThrow();
  });
});
