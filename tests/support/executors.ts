// Shared by the executor tests (unit and integration): a compiled task around a task definition, and a step
// context with a memory logger and an abort controller the test holds.
import { createMemoryLogger } from './memory-logger';
import { DEFAULT_RETRYABLE_ERRORS, TASK_KIND_SPECS, type CompiledTask, type WorkflowTask } from '../../workflows/document';
import type { StepContext } from '../../workflows/engine/executor';
import type { TemplateVariables } from '../../workflows/templating';

export function compiledTask(task: WorkflowTask, opts: { id?: string; timeoutMs?: number | null } = {}): CompiledTask {
  return {
    id: opts.id ?? 't1',
    kind: task.kind,
    task,
    retry: { maxAttempts: 1, initialIntervalMs: 1000, backoffCoefficient: 2, maximumIntervalMs: 100_000, maxDurationMs: null, retryableErrors: [...DEFAULT_RETRYABLE_ERRORS] },
    timeoutMs: opts.timeoutMs ?? null,
    critical: true,
    next: { success: ['workflow_end'], error: [] },
    failsRunOnError: true,
    predecessors: [],
    nodeLocation: { x: 0, y: 0 },
    outputSchema: TASK_KIND_SPECS[task.kind].outputSchema,
  };
}

export interface TestStepContext extends StepContext {
  controller: AbortController;
  lines: Record<string, unknown>[];
}

export function stepContext(over: { variables?: TemplateVariables; attempt?: number; now?: () => number; stepId?: string } = {}): TestStepContext {
  const { logger, lines } = createMemoryLogger();
  const controller = new AbortController();
  const runId = 'run-1';
  const stepId = over.stepId ?? 't1';
  const attempt = over.attempt ?? 1;
  return {
    runId,
    stepId,
    attempt,
    idempotencyKey: `${runId}:${stepId}:${attempt}`,
    signal: controller.signal,
    logger,
    variables: over.variables ?? {},
    now: over.now ?? Date.now,
    controller,
    lines,
  };
}
