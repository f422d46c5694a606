import { escapePointerToken as escapePointer } from '../../adapter';
import { TemplateSyntaxError } from './errors';

/**
 * The roots a `{{...}}` template may name. `item` and `index` exist only inside a child task that runs over an array,
 * `output` only inside a poll task's conditions (the probe's latest output); the document compiler enforces where.
 */
export const TEMPLATE_ROOTS = ['order', 'asset', 'params', 'inputs', 'steps', 'job', 'item', 'index', 'output'] as const;
export type TemplateRoot = (typeof TEMPLATE_ROOTS)[number];

/** `{{ root.a.b }}` (or `{{ root.a[0] }}`): a path into the run's variables. */
export interface TemplatePathReference {
  kind: 'template';
  /** The expression as written between the braces, trimmed. */
  expression: string;
  root: string;
  path: string[];
  /** RFC 6901 pointer to the string holding it, relative to the scanned value ('' for the value itself). */
  pointer: string;
  /** True when the string is exactly this one reference, so it renders to the raw value. */
  whole: boolean;
}

/** `$var.<task>.<name>[.path]` as Itential writes it; `<task>` is `job` for job variables. */
export interface TaskVariableReference {
  kind: 'var';
  expression: string;
  task: string;
  name: string;
  path: string[];
  pointer: string;
  whole: true;
}

export type TemplateReference = TemplatePathReference | TaskVariableReference;

const SEGMENT = /^[A-Za-z0-9_$-]+$/;
// Non-greedy, no braces inside: `{{a}}{{b}}` is two references, `{{ {x} }}` is not one.
const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;
const VAR_PREFIX = '$var.';

/** Splits `a.b[0].c` into segments; throws on an empty or malformed segment. */
export function parsePath(expression: string, template: string, pointer = ''): string[] {
  const normalised = expression.replace(/\[(\d+)\]/g, '.$1');
  const segments = normalised.split('.');
  for (const s of segments) {
    if (!SEGMENT.test(s)) {
      throw new TemplateSyntaxError(template, s === '' ? `empty path segment in '${expression}'` : `bad path segment '${s}' in '${expression}'`, pointer);
    }
  }
  return segments;
}

/** True when `value` is a string that the renderer would treat as a template or a `$var` reference. */
export function isTemplated(value: string): boolean {
  return value.startsWith(VAR_PREFIX) || value.includes('{{');
}

/**
 * The references in one string: a whole-string `$var.` reference, or every `{{...}}` placeholder.
 * @throws TemplateSyntaxError on an unclosed `{{`, an empty placeholder or a malformed `$var.` reference.
 */
export function parseTemplateString(template: string, pointer = ''): TemplateReference[] {
  if (template.startsWith(VAR_PREFIX)) return [parseVarReference(template, pointer)];
  const refs: TemplateReference[] = [];
  let rest = '';
  let last = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    rest += template.slice(last, m.index);
    last = (m.index ?? 0) + m[0].length;
    const expression = (m[1] ?? '').trim();
    if (expression === '') throw new TemplateSyntaxError(template, 'empty placeholder {{}}', pointer);
    const [root, ...path] = parsePath(expression, template, pointer) as [string, ...string[]];
    refs.push({ kind: 'template', expression, root, path, pointer, whole: m[0] === template });
  }
  rest += template.slice(last);
  if (rest.includes('{{')) throw new TemplateSyntaxError(template, "'{{' without a matching '}}'", pointer);
  return refs;
}

function parseVarReference(template: string, pointer: string): TaskVariableReference {
  const segments = parsePath(template.slice(VAR_PREFIX.length), template, pointer);
  if (segments.length < 2) throw new TemplateSyntaxError(template, 'a $var reference is $var.<task>.<name>', pointer);
  const [task, name, ...path] = segments as [string, string, ...string[]];
  return { kind: 'var', expression: template, task, name, path, pointer, whole: true };
}

/** Every reference in a JSON value (strings inside objects and arrays; keys are never templates). */
export interface TemplateScan {
  references: TemplateReference[];
  problems: TemplateSyntaxError[];
}

/** Like {@link listTemplateReferences}, but collects syntax problems instead of throwing at the first. */
export function scanTemplates(value: unknown): TemplateScan {
  const scan: TemplateScan = { references: [], problems: [] };
  walk(value, '', scan);
  return scan;
}

function walk(value: unknown, pointer: string, scan: TemplateScan): void {
  if (typeof value === 'string') {
    try {
      scan.references.push(...parseTemplateString(value, pointer));
    } catch (e) {
      if (e instanceof TemplateSyntaxError) scan.problems.push(e);
      else throw e;
    }
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => walk(v, `${pointer}/${i}`, scan));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) walk(v, `${pointer}/${escapePointer(k)}`, scan);
  }
}

/**
 * Every `{{...}}` and `$var.` reference in a JSON value, for static validation.
 * @throws TemplateSyntaxError at the first malformed template (its `pointer` says where).
 */
export function listTemplateReferences(value: unknown): TemplateReference[] {
  const scan = scanTemplates(value);
  if (scan.problems[0]) throw scan.problems[0];
  return scan.references;
}
