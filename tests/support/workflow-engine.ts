// Shared by the workflow engine tests: an engine on a fresh database with a fake `integration` executor whose
// behaviour is chosen by the operation name (`fake/<behaviour>`), and a log of every call it received.
import { createJobQueue, createLogger, type JobQueue } from '../../adapter';
import type { IntegrationTask } from '../../workflows/document';
import { createWorkflowEngine, type EngineConfig, type EngineHooks, type RunStatus, type RunWithSteps, type StepContext, type StepResult, type WorkflowEngine } from '../../workflows/engine';
import { createTestDatabase, type TestDatabase } from './db';

export interface FakeCall {
  runId: string;
  stepId: string;
  attempt: number;
  idempotencyKey: string;
  input: Record<string, unknown>;
  startedAt: number;
  finishedAt: number;
}

export type FakeBehaviour = (input: Record<string, unknown>, ctx: StepContext, call: FakeCall) => Promise<StepResult>;

export interface EngineHarness {
  t: TestDatabase;
  queue: JobQueue;
  engine: WorkflowEngine;
  calls: FakeCall[];
  behaviours: Record<string, FakeBehaviour>;
  hookLog: string[];
  /** Saves `doc` and starts one run of it in its own transaction. */
  start(workflow: string, opts?: { inputs?: Record<string, unknown>; lockKey?: string; variables?: Record<string, Record<string, unknown>> }): Promise<string>;
  waitFor(runId: string, statuses: RunStatus[], timeoutMs?: number): Promise<RunWithSteps>;
  close(): Promise<void>;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const defaultBehaviours: Record<string, FakeBehaviour> = {
  /** An envelope-shaped answer that echoes `incoming.body`. */
  ok: async (input) => ({ ok: true, output: { ok: true, status: 200, body: input['body'] ?? null } }),
  fail4xx: async () => ({ ok: false, error: { code: 'HTTP_4XX', message: 'bad request from fake' } }),
  fail5xx: async () => ({ ok: false, error: { code: 'HTTP_5XX', message: 'server error from fake' } }),
  slow: async (input, ctx) => {
    await sleep(Number(input['ms'] ?? 200));
    return { ok: true, output: { at: ctx.now() } };
  },
  /** Waits until its signal aborts (timeout, cancel). */
  block: async (_input, ctx) =>
    new Promise<StepResult>((resolve) => {
      ctx.signal.addEventListener('abort', () => resolve({ ok: false, error: { code: 'NETWORK', message: 'aborted' } }));
    }),
};

export async function createEngineHarness(config: Partial<EngineConfig> = {}, hooks?: EngineHooks): Promise<EngineHarness> {
  const t = await createTestDatabase();
  const logger = createLogger({ silent: true });
  const queue = createJobQueue(t.db, { logger, schedule: false });
  await queue.start();
  const calls: FakeCall[] = [];
  const behaviours: Record<string, FakeBehaviour> = { ...defaultBehaviours };
  const hookLog: string[] = [];
  const engine = createWorkflowEngine({
    db: t.db,
    queue,
    logger,
    executors: {
      integration: async (task, input, ctx) => {
        const op = (task.task as IntegrationTask).operation.split('/')[1] ?? 'ok';
        const behaviour = behaviours[op];
        if (!behaviour) throw new Error(`no fake behaviour ${op}`);
        const call: FakeCall = { runId: ctx.runId, stepId: ctx.stepId, attempt: ctx.attempt, idempotencyKey: ctx.idempotencyKey, input, startedAt: Date.now(), finishedAt: 0 };
        calls.push(call);
        try {
          return await behaviour(input, ctx, call);
        } finally {
          call.finishedAt = Date.now();
        }
      },
    },
    hooks: hooks ?? {
      runStarted: async (_tx, run) => void hookLog.push(`started:${run.id}`),
      stepFinished: async (_tx, run, step) => void hookLog.push(`step:${run.id}:${step.stepId}:${step.status}`),
      runSucceeded: async (_tx, run) => void hookLog.push(`succeeded:${run.id}`),
      runFailed: async (_tx, run, error) => void hookLog.push(`failed:${run.id}:${error.code}`),
      runCancelled: async (_tx, run) => void hookLog.push(`cancelled:${run.id}`),
    },
    config: { pollingIntervalSeconds: 0.5, leaseMs: 1500, sweepIntervalMs: 300, childRecheckMs: 5000, stopTimeoutMs: 3000, ...config },
  });
  await engine.startWorkers({ teamSize: 3 });
  return {
    t,
    queue,
    engine,
    calls,
    behaviours,
    hookLog,
    async start(workflow, opts = {}) {
      const run = await t.db.transaction((tx) =>
        engine.startRun(tx, { workflow, inputs: opts.inputs ?? {}, lockKey: opts.lockKey ?? null, variables: opts.variables ?? {}, createdBy: 'test' }),
      );
      return run.id;
    },
    async waitFor(runId, statuses, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const run = await engine.getRun(runId);
        if (statuses.includes(run.status)) return run;
        if (Date.now() > deadline) throw new Error(`run ${runId} is ${run.status}, expected ${statuses.join('|')}: ${JSON.stringify(run.steps.map((s) => [s.stepId, s.attempt, s.status, s.error]))}`);
        await sleep(50);
      }
    },
    async close() {
      await engine.stop();
      await queue.stop({ graceful: false, timeoutMs: 2000 });
      await t.drop();
    },
  };
}

/** A linear runbook of fake integration steps: `steps` are [id, behaviour, extra task fields]. */
export function linear(name: string, steps: [string, string, Record<string, unknown>?][], inputSchema?: Record<string, unknown>): Record<string, unknown> {
  return {
    name,
    ...(inputSchema ? { inputSchema } : {}),
    steps: steps.map(([id, behaviour, extra]) => ({ id, kind: 'integration', operation: `fake/${behaviour}`, ...(extra ?? {}) })),
  };
}
