/**
 * What templates render against. The engine builds one of these per step: the order and asset the run is for,
 * the order's config as `params.attr_<key>`, the run's inputs, the job variables, and each finished step.
 */
export interface StepVariables {
  /** The task's structured output (per its kind's output schema). */
  output?: unknown;
  /** The task's outgoing variables, what `$var.<task>.<name>` reads. */
  variables?: Record<string, unknown>;
  status?: string;
}

export interface TemplateVariables {
  order?: Record<string, unknown>;
  asset?: Record<string, unknown>;
  params?: Record<string, unknown>;
  inputs?: Record<string, unknown>;
  /** Job variables (Itential's `$var.job.*`): outgoing variables exported to the job. Inputs are read as a fallback. */
  job?: Record<string, unknown>;
  steps?: Record<string, StepVariables>;
  /** The current element and its position, inside a child task that runs over an array. */
  item?: unknown;
  index?: number;
  /** The latest probe output, inside a poll task's conditions. */
  output?: unknown;
}

/**
 * The order's `config` as template parameters: `{region: 'eu'}` becomes `{attr_region: 'eu'}`, the names the seed's
 * runbooks use (`$PARAMS.attr_<key>`), read as `{{params.attr_<key>}}`.
 */
export function paramsFromConfig(config: Record<string, unknown> | null | undefined): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config ?? {})) params[`attr_${k}`] = v;
  return params;
}
