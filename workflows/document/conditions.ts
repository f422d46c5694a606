/**
 * The closed set of comparison operators of `evaluate` tasks and poll conditions, and their evaluation against a
 * run's variables. Pure; the engine calls it, and so do tests.
 */
import { renderValue, type TemplateVariables } from '../templating';
import type { Condition, ConditionOperator, ConditionSet } from './types';

export const UNARY_OPERATORS: readonly ConditionOperator[] = ['exists', 'notExists', 'empty', 'notEmpty'];

/** Longest text a `matches` pattern is run against, and longest pattern: a guard against pathological backtracking. */
export const MATCH_LIMITS = { pattern: 500, text: 10_000 } as const;

/** Thrown when operands do not fit the operator (comparing a number with an object, a bad regex, ...). */
export class ConditionError extends Error {
  readonly code = 'INVALID_INPUT' as const;
  constructor(
    readonly operator: ConditionOperator,
    message: string,
  ) {
    super(`${operator}: ${message}`);
    this.name = 'ConditionError';
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => deepEqual(v, bb[i]));
  }
  const ak = Object.keys(a as object);
  const bo = b as Record<string, unknown>;
  return ak.length === Object.keys(bo).length && ak.every((k) => Object.prototype.hasOwnProperty.call(bo, k) && deepEqual((a as Record<string, unknown>)[k], bo[k]));
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function ordered(op: ConditionOperator, l: unknown, r: unknown): [number, number] | [string, string] {
  if (typeof l === 'number' && typeof r === 'number') return [l, r];
  if (typeof l === 'string' && typeof r === 'string') return [l, r];
  throw new ConditionError(op, `cannot order ${describe(l)} and ${describe(r)} (both numbers or both strings)`);
}

function containsValue(op: ConditionOperator, container: unknown, v: unknown): boolean {
  if (typeof container === 'string') {
    if (typeof v !== 'string') throw new ConditionError(op, `a string can only contain a string, not ${describe(v)}`);
    return container.includes(v);
  }
  if (Array.isArray(container)) return container.some((x) => deepEqual(x, v));
  if (container !== null && typeof container === 'object') {
    if (typeof v !== 'string') throw new ConditionError(op, `an object contains keys (strings), not ${describe(v)}`);
    return Object.prototype.hasOwnProperty.call(container, v);
  }
  throw new ConditionError(op, `${describe(container)} cannot contain anything`);
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v as object).length === 0;
  return false;
}

function text(op: ConditionOperator, v: unknown, side: string): string {
  if (typeof v !== 'string') throw new ConditionError(op, `${side} must be a string, not ${describe(v)}`);
  return v;
}

/** Applies one operator to already rendered operands. @throws ConditionError when they do not fit it. */
export function applyOperator(op: ConditionOperator, left: unknown, right: unknown): boolean {
  switch (op) {
    case '==':
      return deepEqual(left, right);
    case '!=':
      return !deepEqual(left, right);
    case '<': {
      const [l, r] = ordered(op, left, right);
      return l < r;
    }
    case '<=': {
      const [l, r] = ordered(op, left, right);
      return l <= r;
    }
    case '>': {
      const [l, r] = ordered(op, left, right);
      return l > r;
    }
    case '>=': {
      const [l, r] = ordered(op, left, right);
      return l >= r;
    }
    case 'contains':
      return containsValue(op, left, right);
    case 'notContains':
      return !containsValue(op, left, right);
    case 'in':
      return containsValue(op, right, left);
    case 'notIn':
      return !containsValue(op, right, left);
    case 'exists':
      return left !== undefined && left !== null;
    case 'notExists':
      return left === undefined || left === null;
    case 'empty':
      return isEmpty(left);
    case 'notEmpty':
      return !isEmpty(left);
    case 'matches': {
      const pattern = text(op, right, 'the pattern');
      const subject = text(op, left, 'the value');
      if (pattern.length > MATCH_LIMITS.pattern) throw new ConditionError(op, `pattern longer than ${MATCH_LIMITS.pattern} characters`);
      if (subject.length > MATCH_LIMITS.text) throw new ConditionError(op, `value longer than ${MATCH_LIMITS.text} characters`);
      let re: RegExp;
      try {
        re = new RegExp(pattern);
      } catch (e) {
        throw new ConditionError(op, `invalid pattern: ${(e as Error).message}`);
      }
      return re.test(subject);
    }
    case 'startsWith':
      return text(op, left, 'the value').startsWith(text(op, right, 'the prefix'));
    case 'endsWith':
      return text(op, left, 'the value').endsWith(text(op, right, 'the suffix'));
  }
}

export interface ConditionOutcome {
  left: unknown;
  operator: ConditionOperator;
  right?: unknown;
  result: boolean;
}

export interface ConditionSetOutcome {
  result: boolean;
  /** The conditions evaluated, in order, up to the one that decided. */
  conditions: ConditionOutcome[];
}

function evaluateOne(c: Condition, variables: TemplateVariables): ConditionOutcome {
  // exists/notExists/empty/notEmpty ask whether a variable is there, so only they may look at a missing one.
  const unary = UNARY_OPERATORS.includes(c.operator);
  const left = renderValue(c.left, variables, { allowMissing: unary });
  const right = unary ? undefined : renderValue(c.right, variables);
  const result = applyOperator(c.operator, left, right);
  return unary ? { left: left ?? null, operator: c.operator, result } : { left, operator: c.operator, right, result };
}

/**
 * Evaluates a condition set against the run's variables; `all` stops at the first false, `any` at the first true,
 * so a later condition may rely on an earlier `exists`.
 * @throws MissingVariableError when a (non-`exists`) operand names a variable that is not set.
 * @throws ConditionError when operands do not fit their operator.
 */
export function evaluateConditionSet(set: ConditionSet, variables: TemplateVariables): ConditionSetOutcome {
  const any = set.match === 'any';
  const outcomes: ConditionOutcome[] = [];
  for (const c of set.conditions) {
    const o = evaluateOne(c, variables);
    outcomes.push(o);
    if (any && o.result) return { result: true, conditions: outcomes };
    if (!any && !o.result) return { result: false, conditions: outcomes };
  }
  return { result: !any, conditions: outcomes };
}
