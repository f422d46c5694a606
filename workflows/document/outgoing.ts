import type { OutgoingVariable, WorkflowTask } from './types';

/** The job variable an outgoing variable is exported to, if any. */
export function outgoingJobVariable(spec: OutgoingVariable): string | undefined {
  if (typeof spec === 'string') return spec.slice('$var.job.'.length);
  if (spec !== null && typeof spec === 'object') return spec.job;
  return undefined;
}

/** The dot path in the output an outgoing variable reads. */
export function outgoingSourcePath(name: string, spec: OutgoingVariable): string[] {
  if (spec !== null && typeof spec === 'object' && spec.from) return spec.from.split('.');
  return [name];
}

function at(value: unknown, path: string[]): unknown {
  let cur = value;
  for (const s of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (!Object.prototype.hasOwnProperty.call(cur, s)) return undefined;
    cur = (cur as Record<string, unknown>)[s];
  }
  return cur;
}

/**
 * A finished task's outgoing variables (what `$var.<task>.<name>` reads) and the job variables it exports.
 * A variable whose source is absent is left out, so a reference to it fails naming it rather than reading empty.
 */
export function collectOutgoingVariables(task: Pick<WorkflowTask, 'outgoing'>, output: unknown): { variables: Record<string, unknown>; job: Record<string, unknown> } {
  const variables: Record<string, unknown> = {};
  const job: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(task.outgoing ?? {})) {
    const value = at(output, outgoingSourcePath(name, spec));
    if (value === undefined) continue;
    variables[name] = value;
    const jobName = outgoingJobVariable(spec);
    if (jobName) job[jobName] = value;
  }
  return { variables, job };
}
