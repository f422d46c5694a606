/**
 * Engine timings for tests that run real steps but do not exercise lease expiry: quick polling and sweeping, and a
 * lease long enough that a loaded 2-core CI machine stalling the event loop for a second or two cannot make the
 * sweeper declare a live step's worker lost (renewal runs every third of the lease). Tests of crash recovery use
 * the short lease of `workflow-engine.ts`'s harness instead.
 */
export const TEST_ENGINE_CONFIG = { pollingIntervalSeconds: 0.5, leaseMs: 20_000, sweepIntervalMs: 500 } as const;
