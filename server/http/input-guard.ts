import type { RequestHandler } from 'express';
import { escapePointerToken as escapeToken } from '../../adapter';
import { badRequest, validationFailed, type FieldError } from '../errors';
import type { SpecOperation } from '../spec';
import { unstorableText } from './text';

// What no handler, query or recursive walker of ours should ever see, refused once at the edge for every
// operation: integers the database cannot hold or that are not written as integers, text PostgreSQL cannot store
// (NUL) or that is not Unicode (lone surrogates: stored as U+FFFD or refused by a JSON column), and JSON nested
// deeper than any document of ours, which overflows the stack of recursive code (workflow import, integration
// config) long before the body limit is reached.

/**
 * How deeply a JSON body may nest: objects and arrays inside each other. Our deepest legitimate documents (an
 * integration model's schemas inside a workflow import) stay well under it; 5,000 levels overflowed the stack.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * An integer parameter's text: decimal digits with an optional minus sign and nothing else. The spec validator
 * coerces with `Number()`, which also takes `1e99`, `0x10`, `Infinity` and ` 1`; those never mean an id.
 */
const DECIMAL_INTEGER = /^-?[0-9]{1,16}$/;

/** The range a parameter's `format` allows; without a format, what a JavaScript number holds exactly. */
const FORMAT_RANGE: Record<string, [number, number]> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};
const DEFAULT_RANGE = FORMAT_RANGE['int64']!;

/** `errors` as one detail line: each field (without its `/body/`, `/query/` or `/path/` prefix) and its message. */
const describe = (errors: FieldError[]) => errors.map((e) => `${e.path.replace(/^\/(body|query|path)\//, '')} ${e.message}`).join('; ');

/** Why a text cannot be stored, as a field error's message, or undefined when it can. */
function textProblem(s: string): string | undefined {
  const bad = unstorableText(s);
  return bad ? `must not contain ${bad}` : undefined;
}

/**
 * Finds the first field of a parsed JSON body that is nested too deeply or holds text that cannot be stored, as
 * a JSON pointer under `/body`. Iterative, so that it cannot itself overflow the stack it protects.
 */
export function findBodyProblem(body: unknown, maxDepth = MAX_JSON_DEPTH): FieldError | undefined {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value: body, path: '/body', depth: 0 }];
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === 'string') {
      const problem = textProblem(value);
      if (problem) return { path, message: problem };
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= maxDepth) return { path, message: `nests deeper than ${maxDepth} levels of objects and arrays` };
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: `${path}/${i}`, depth: depth + 1 });
      continue;
    }
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const keyProblem = textProblem(key);
      // The key itself is unprintable: name the object that holds it, with the reason.
      if (keyProblem) return { path, message: `has a member name that ${keyProblem}` };
      stack.push({ value: (value as Record<string, unknown>)[key], path: `${path}/${escapeToken(key)}`, depth: depth + 1 });
    }
  }
  return undefined;
}

interface IntegerParameter {
  in: 'path' | 'query';
  name: string;
  range: [number, number];
}

/** An operation's integer path and query parameters, as its spec declares them. */
function integerParameters(op: SpecOperation): IntegerParameter[] {
  return op.parameters
    .filter((p) => (p.in === 'path' || p.in === 'query') && p.schema?.type === 'integer')
    .map((p) => {
      const [lo, hi] = FORMAT_RANGE[p.schema?.format ?? ''] ?? DEFAULT_RANGE;
      const range: [number, number] = [Math.max(lo, p.schema?.minimum ?? lo), Math.min(hi, p.schema?.maximum ?? hi)];
      return { in: p.in as 'path' | 'query', name: p.name, range };
    });
}

/** The request's path parameters as text, in the order of the spec path's `{name}` templates. */
function pathParameters(op: SpecOperation, path: string): Record<string, string> | undefined {
  const m = op.pattern.exec(path);
  if (!m) return {};
  const out: Record<string, string> = {};
  for (let i = 0; i < op.pathParameterNames.length; i++) {
    try {
      out[op.pathParameterNames[i]!] = decodeURIComponent(m[i + 1]!);
    } catch {
      return undefined;
    }
  }
  return out;
}

/** Every text value of a parsed query string (strings, arrays of them, nested objects of the extended parser). */
function* queryTexts(query: unknown, name: string): Generator<[string, string]> {
  if (typeof query === 'string') yield [name, query];
  else if (Array.isArray(query)) for (const v of query) yield* queryTexts(v, name);
  else if (query && typeof query === 'object') for (const [k, v] of Object.entries(query)) yield* queryTexts(v, name ? `${name}/${k}` : k);
}

/**
 * Refuses parameters no handler should see: 400 for an integer parameter that is not a plain decimal integer
 * within its format's range (or a path that is not valid percent-encoded UTF-8); 422 naming the parameter for text
 * with NUL or lone surrogates. Runs after `resolveOperation`, before the spec validator. Each operation's integer
 * parameters are read from the spec once, here.
 */
export function guardParameters(operations: readonly SpecOperation[]): RequestHandler {
  const integers = new Map(operations.map((op) => [op, integerParameters(op)]));
  return (req, _res, next) => {
    const op = req.operation;
    if (!op) return next();
    const params = pathParameters(op, req.path);
    if (!params) return next(badRequest('the path is not valid percent-encoded UTF-8'));
    const texts: [string, string][] = [
      ...Object.entries(params).map(([k, v]): [string, string] => [`/path/${k}`, v]),
      ...[...queryTexts(req.query, '')].map(([k, v]): [string, string] => [`/query/${k}`, v]),
    ];
    const bad = texts.flatMap(([path, v]) => {
      const problem = textProblem(v);
      return problem ? [{ path, message: problem }] : [];
    });
    if (bad.length) return next(validationFailed(describe(bad), bad));

    const malformed: FieldError[] = [];
    for (const p of integers.get(op) ?? []) {
      const raw = p.in === 'path' ? params[p.name] : req.query[p.name];
      for (const v of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
        const [min, max] = p.range;
        const n = typeof v === 'string' && DECIMAL_INTEGER.test(v) ? Number(v) : NaN;
        if (!(n >= min && n <= max)) malformed.push({ path: `/${p.in}/${p.name}`, message: `must be a decimal integer from ${min} to ${max}` });
      }
    }
    if (malformed.length) return next(badRequest(describe(malformed), malformed));
    next();
  };
}

/** Refuses a parsed JSON body that nests too deeply or holds text that cannot be stored (422 naming the field). */
export const guardBody: RequestHandler = (req, _res, next) => {
  if (req.body === undefined) return next();
  const problem = findBodyProblem(req.body);
  next(problem ? validationFailed(describe([problem]), [problem]) : undefined);
};
