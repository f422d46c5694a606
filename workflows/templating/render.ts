import { MissingVariableError, TemplateSyntaxError } from './errors';
import { parseTemplateString, type TemplateReference } from './references';
import type { TemplateVariables } from './variables';

export interface RenderOptions {
  /**
   * Resolve a missing whole-string reference to `undefined` instead of throwing. Only for operators such as
   * `exists` that ask whether a variable is there; embedded references still throw.
   */
  allowMissing?: boolean;
}

/** Own properties only: a template must never reach `__proto__`, `constructor` or other inherited members. */
function child(value: unknown, key: string): unknown {
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) return /^\d+$/.test(key) ? value[Number(key)] : undefined;
  return Object.prototype.hasOwnProperty.call(value, key) ? (value as Record<string, unknown>)[key] : undefined;
}

function walkPath(start: unknown, segments: string[], prefix: string, variable: string): unknown {
  let current = start;
  let at = prefix;
  for (const s of segments) {
    current = child(current, s);
    at = `${at}.${s}`;
    if (current === undefined) throw new MissingVariableError(variable, at);
  }
  return current;
}

/**
 * The value a reference points at.
 * @throws MissingVariableError when the root or any segment of the path is absent.
 */
export function resolveReference(ref: TemplateReference, variables: TemplateVariables): unknown {
  const vars = variables as Record<string, unknown>;
  if (ref.kind === 'var') {
    if (ref.task === 'job') {
      // Job variables start as the run's inputs in Itential; outgoing variables exported to the job win.
      const job = child(vars.job, ref.name);
      const value = job !== undefined ? job : child(vars.inputs, ref.name);
      if (value === undefined) throw new MissingVariableError(ref.expression, `$var.job.${ref.name}`);
      return walkPath(value, ref.path, `$var.job.${ref.name}`, ref.expression);
    }
    const step = child(vars.steps, ref.task);
    if (step === undefined) throw new MissingVariableError(ref.expression, `$var.${ref.task}`);
    const value = child(child(step, 'variables'), ref.name);
    if (value === undefined) throw new MissingVariableError(ref.expression, `$var.${ref.task}.${ref.name}`);
    return walkPath(value, ref.path, `$var.${ref.task}.${ref.name}`, ref.expression);
  }
  const root = child(vars, ref.root);
  if (root === undefined) throw new MissingVariableError(ref.expression, ref.root);
  return walkPath(root, ref.path, ref.root, ref.expression);
}

function embed(value: unknown, ref: TemplateReference): string {
  if (value === null) throw new MissingVariableError(ref.expression, ref.expression, 'null');
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}

/**
 * Renders one string. A string that is exactly one reference (`"{{steps.a.output.body}}"`, `"$var.a.id"`) renders
 * to the raw value, object or number included; references embedded in text are stringified (objects as JSON).
 * A string without references is returned unchanged.
 * @throws MissingVariableError naming the variable when a reference does not resolve (never renders empty).
 * @throws TemplateSyntaxError on a malformed template.
 */
export function renderTemplate(template: string, variables: TemplateVariables, options: RenderOptions = {}): unknown {
  const refs = parseTemplateString(template);
  if (refs.length === 0) return template;
  const first = refs[0] as TemplateReference;
  if (first.whole) {
    if (options.allowMissing) {
      try {
        return resolveReference(first, variables);
      } catch (e) {
        if (e instanceof MissingVariableError) return undefined;
        throw e;
      }
    }
    return resolveReference(first, variables);
  }
  let i = 0;
  return template.replace(/\{\{([^{}]*)\}\}/g, () => {
    const ref = refs[i++];
    if (!ref) throw new TemplateSyntaxError(template, 'placeholder count changed while rendering');
    return embed(resolveReference(ref, variables), ref);
  });
}

/**
 * Renders every string inside a JSON value (object keys are left alone) and returns a new value; the input is
 * not modified.
 * @throws MissingVariableError / TemplateSyntaxError as {@link renderTemplate}.
 */
export function renderValue(value: unknown, variables: TemplateVariables, options: RenderOptions = {}): unknown {
  if (typeof value === 'string') return renderTemplate(value, variables, options);
  if (Array.isArray(value)) return value.map((v) => renderValue(v, variables, options));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = renderValue(v, variables, options);
    return out;
  }
  return value;
}
