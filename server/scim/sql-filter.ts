import type { AttrPath, Filter, FilterValue } from './filter';
import { ScimError } from './errors';

// Turns a parsed SCIM filter into a WHERE clause. Every value goes in as a bind parameter; only SQL fragments
// from the column maps below (fixed strings) and `$n` placeholders are ever concatenated.

export type Column =
  | { kind: 'text'; expr: string; caseExact?: boolean }
  | { kind: 'bool'; expr: string }
  | { kind: 'ts'; expr: string }
  /** A multi-valued attribute: `from` yields one row per element, `elem(sub)` reads a sub-attribute of it. */
  | { kind: 'multi'; from: string; link?: string; elem: (sub: string, sql: SqlParams) => Column };

export type Resolver = (path: AttrPath, sql: SqlParams) => Column;

export class SqlParams {
  readonly values: unknown[] = [];
  constructor(start: unknown[] = []) {
    this.values.push(...start);
  }
  p(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

const bad = (m: string) => new ScimError('invalidFilter', `invalid filter: ${m}`);
const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

function asBool(v: FilterValue): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  throw bad(`expected true or false, got ${JSON.stringify(v)}`);
}

function compare(col: Column, op: string, value: FilterValue, sql: SqlParams, path: string): string {
  if (col.kind === 'multi') {
    const inner = col.elem('value', sql);
    return `EXISTS (SELECT 1 FROM ${col.from} WHERE ${[...(col.link ? [col.link] : []), compare(inner, op, value, sql, path)].join(' AND ')})`;
  }
  if (value === null) {
    if (op === 'eq') return `${col.expr} IS NULL`;
    if (op === 'ne') return `${col.expr} IS NOT NULL`;
    throw bad(`"${op} null" on ${path}`);
  }
  if (col.kind === 'bool') {
    const b = sql.p(asBool(value));
    if (op === 'eq') return `${col.expr} = ${b}`;
    if (op === 'ne') return `${col.expr} IS DISTINCT FROM ${b}`;
    throw bad(`"${op}" does not apply to the boolean ${path}`);
  }
  if (col.kind === 'ts') {
    const d = new Date(String(value));
    if (typeof value !== 'string' || Number.isNaN(d.getTime())) throw bad(`${path} needs a date-time, got ${JSON.stringify(value)}`);
    const p = `${sql.p(d.toISOString())}::timestamptz`;
    const ops: Record<string, string> = { eq: '=', ne: '<>', gt: '>', ge: '>=', lt: '<', le: '<=' };
    if (!ops[op]) throw bad(`"${op}" does not apply to the date-time ${path}`);
    return `${col.expr} ${ops[op]} ${p}`;
  }
  const s = typeof value === 'boolean' ? String(value) : String(value);
  const ci = !col.caseExact;
  const lhs = ci ? `lower(${col.expr})` : col.expr;
  const rhs = (v: string) => (ci ? `lower(${sql.p(v)})` : sql.p(v));
  switch (op) {
    case 'eq': return `${lhs} = ${rhs(s)}`;
    case 'ne': return `(${col.expr} IS NULL OR ${lhs} <> ${rhs(s)})`;
    case 'co': return `${lhs} LIKE '%' || ${rhs(likeEscape(s))} || '%' ESCAPE '\\'`;
    case 'sw': return `${lhs} LIKE ${rhs(likeEscape(s))} || '%' ESCAPE '\\'`;
    case 'ew': return `${lhs} LIKE '%' || ${rhs(likeEscape(s))} ESCAPE '\\'`;
    case 'gt': return `${lhs} > ${rhs(s)}`;
    case 'ge': return `${lhs} >= ${rhs(s)}`;
    case 'lt': return `${lhs} < ${rhs(s)}`;
    case 'le': return `${lhs} <= ${rhs(s)}`;
  }
  throw bad(`unsupported operator "${op}"`);
}

function present(col: Column, sql: SqlParams): string {
  if (col.kind === 'multi') return `EXISTS (SELECT 1 FROM ${col.from}${col.link ? ` WHERE ${col.link}` : ''})`;
  if (col.kind === 'text') return `(${col.expr} IS NOT NULL AND ${col.expr} <> '')`;
  return `${col.expr} IS NOT NULL`;
}

const show = (p: AttrPath) => `${p.uri ? `${p.uri}:` : ''}${p.attr}${p.sub ? `.${p.sub}` : ''}`;

/** True when the attribute of `emails.value` (without its sub-attribute) is multi-valued. */
function isMulti(resolve: Resolver, path: AttrPath): boolean {
  const { sub: _sub, ...base } = path;
  try {
    // a throwaway parameter list: resolving only inspects the attribute
    return resolve(base, new SqlParams()).kind === 'multi';
  } catch {
    return false;
  }
}

/** The WHERE clause for `f`, using `resolve` for top-level attributes. */
export function filterToSql(f: Filter, resolve: Resolver, sql: SqlParams): string {
  switch (f.kind) {
    case 'and': return `(${filterToSql(f.left, resolve, sql)} AND ${filterToSql(f.right, resolve, sql)})`;
    case 'or': return `(${filterToSql(f.left, resolve, sql)} OR ${filterToSql(f.right, resolve, sql)})`;
    case 'not': return `NOT (${filterToSql(f.expr, resolve, sql)})`;
    default: break;
  }
  const path = f.path;
  if (path.filter || (path.sub && isMulti(resolve, path))) {
    const { sub, filter, ...base } = path;
    const multi = resolve(base as AttrPath, sql);
    if (multi.kind !== 'multi') throw bad(`${show(path)} is not multi-valued`);
    const conds: string[] = multi.link ? [multi.link] : [];
    if (filter) conds.push(elementFilter(filter, multi, sql));
    if (f.kind === 'cmp') conds.push(compare(multi.elem(sub ?? 'value', sql), f.op, f.value, sql, show(path)));
    else if (f.kind === 'pr') conds.push(present(multi.elem(sub ?? 'value', sql), sql));
    return `EXISTS (SELECT 1 FROM ${multi.from}${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''})`;
  }
  if (f.kind === 'has') throw bad(`${show(path)} needs a value filter`);
  const col = resolve(path, sql);
  return f.kind === 'pr' ? present(col, sql) : compare(col, f.op, f.value, sql, show(path));
}

/** A filter inside `[...]`: its attributes name sub-attributes of the element. */
function elementFilter(f: Filter, multi: Extract<Column, { kind: 'multi' }>, sql: SqlParams): string {
  switch (f.kind) {
    case 'and': return `(${elementFilter(f.left, multi, sql)} AND ${elementFilter(f.right, multi, sql)})`;
    case 'or': return `(${elementFilter(f.left, multi, sql)} OR ${elementFilter(f.right, multi, sql)})`;
    case 'not': return `NOT (${elementFilter(f.expr, multi, sql)})`;
    case 'has': throw bad('value filters do not nest');
    case 'pr': return present(multi.elem(f.path.attr, sql), sql);
    case 'cmp':
      if (f.path.sub || f.path.filter) throw bad('value filters compare sub-attributes only');
      return compare(multi.elem(f.path.attr, sql), f.op, f.value, sql, f.path.attr);
  }
}
