import { ScimError } from './errors';
import { unstorableText } from '../http/text';

// SCIM filters and attribute paths (RFC 7644 §3.4.2.2, §3.5.2), parsed into a small AST that the store turns
// into parameterised SQL and that PATCH evaluates against a resource in memory.

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
export type FilterValue = string | number | boolean | null;

/** `[urn:…:]attr[.sub]`, or for value paths `attr[filter][.sub]`. Names keep the case they were sent in. */
export interface AttrPath {
  uri?: string;
  attr: string;
  sub?: string;
  filter?: Filter;
}

export type Filter =
  | { kind: 'cmp'; path: AttrPath; op: CompareOp; value: FilterValue }
  | { kind: 'pr'; path: AttrPath }
  | { kind: 'and' | 'or'; left: Filter; right: Filter }
  | { kind: 'not'; expr: Filter }
  /** `emails[type eq "work"]` on its own: some element matches. */
  | { kind: 'has'; path: AttrPath };

const OPS = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);

type Token = { t: '(' | ')' | '[' | ']' } | { t: 'str'; v: string } | { t: 'word'; v: string };

function tokenize(text: string, onError: (m: string) => ScimError): Token[] {
  // Refused here, before any value reaches SQL: PostgreSQL cannot compare text holding them (a NUL is an error).
  const bad = unstorableText(text);
  if (bad) throw onError(`it contains ${bad}`);
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')' || c === '[' || c === ']') {
      out.push({ t: c });
      i++;
    } else if (c === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= text.length) throw onError('unterminated string');
        const d = text[i]!;
        if (d === '\\' && i + 1 < text.length) {
          const n = text[i + 1]!;
          v += n === 'n' ? '\n' : n === 't' ? '\t' : n;
          i += 2;
        } else if (d === '"') {
          i++;
          break;
        } else {
          v += d;
          i++;
        }
      }
      out.push({ t: 'str', v });
    } else {
      let j = i;
      while (j < text.length && !/[\s()[\]"]/.test(text[j]!)) j++;
      out.push({ t: 'word', v: text.slice(i, j) });
      i = j;
    }
  }
  return out;
}

const ATTR = /^[A-Za-z$][\w$-]*$/;

/** Splits `urn:…:User:name.givenName` / `name.givenName` / `emails` into its parts; undefined when malformed. */
export function splitAttr(word: string): { uri?: string; attr: string; sub?: string } | undefined {
  let uri: string | undefined;
  let rest = word;
  if (/^urn:/i.test(word)) {
    const at = word.lastIndexOf(':');
    uri = word.slice(0, at);
    rest = word.slice(at + 1);
  }
  const parts = rest.split('.');
  if (parts.length > 2 || !parts.every((p) => ATTR.test(p))) return undefined;
  return { ...(uri ? { uri } : {}), attr: parts[0]!, ...(parts[1] ? { sub: parts[1] } : {}) };
}

class Parser {
  private i = 0;
  constructor(
    private readonly toks: Token[],
    private readonly err: (m: string) => ScimError,
  ) {}

  done(): boolean {
    return this.i >= this.toks.length;
  }
  private peek(): Token | undefined {
    return this.toks[this.i];
  }
  private word(): string | undefined {
    const t = this.peek();
    return t && t.t === 'word' ? t.v : undefined;
  }

  or(): Filter {
    let left = this.and();
    while (this.word()?.toLowerCase() === 'or') {
      this.i++;
      left = { kind: 'or', left, right: this.and() };
    }
    return left;
  }
  and(): Filter {
    let left = this.unary();
    while (this.word()?.toLowerCase() === 'and') {
      this.i++;
      left = { kind: 'and', left, right: this.unary() };
    }
    return left;
  }
  unary(): Filter {
    const w = this.word()?.toLowerCase();
    if (w === 'not') {
      this.i++;
      const t = this.peek();
      if (!t || t.t !== '(') throw this.err('"not" must be followed by a parenthesised filter');
      return { kind: 'not', expr: this.unary() };
    }
    const t = this.peek();
    if (t?.t === '(') {
      this.i++;
      const inner = this.or();
      if (this.peek()?.t !== ')') throw this.err('missing ")"');
      this.i++;
      return inner;
    }
    return this.comparison();
  }
  /** An attribute path, with an optional `[filter]` and `.sub` after it. */
  path(): AttrPath {
    const w = this.word();
    if (w === undefined) throw this.err('expected an attribute name');
    this.i++;
    const base = splitAttr(w);
    if (!base) throw this.err(`"${w}" is not an attribute path`);
    if (this.peek()?.t !== '[') return base;
    if (base.sub) throw this.err(`"${w}" cannot take a value filter`);
    this.i++;
    const filter = this.or();
    if (this.peek()?.t !== ']') throw this.err('missing "]"');
    this.i++;
    const path: AttrPath = { ...base, filter };
    // `emails[type eq "work"].value`: the sub-attribute follows the bracket as a word starting with "."
    const next = this.word();
    if (next && next.startsWith('.')) {
      if (!ATTR.test(next.slice(1))) throw this.err(`"${next}" is not a sub-attribute`);
      path.sub = next.slice(1);
      this.i++;
    }
    return path;
  }
  comparison(): Filter {
    const path = this.path();
    const opWord = this.word()?.toLowerCase();
    if (path.filter && (opWord === undefined || !(OPS.has(opWord) || opWord === 'pr'))) {
      if (path.sub) throw this.err('a value path with a sub-attribute needs an operator');
      return { kind: 'has', path };
    }
    if (opWord === undefined) throw this.err('expected an operator after the attribute');
    this.i++;
    if (opWord === 'pr') return { kind: 'pr', path };
    if (!OPS.has(opWord)) throw this.err(`unsupported operator "${opWord}"`);
    const t = this.peek();
    if (!t || (t.t !== 'str' && t.t !== 'word')) throw this.err(`"${opWord}" needs a value`);
    this.i++;
    let value: FilterValue;
    if (t.t === 'str') value = t.v;
    else {
      const lw = t.v.toLowerCase();
      if (lw === 'true') value = true;
      else if (lw === 'false') value = false;
      else if (lw === 'null') value = null;
      else if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t.v)) value = Number(t.v);
      // Unquoted words are not RFC, but Microsoft's reference collection sends them (`eq Employee`): read as strings.
      else value = t.v;
    }
    return { kind: 'cmp', path, op: opWord as CompareOp, value };
  }
}

/** Parses a `filter` query parameter; 400 invalidFilter when it is not one. */
export function parseFilter(text: string): Filter {
  const err = (m: string) => new ScimError('invalidFilter', `invalid filter: ${m}`);
  const p = new Parser(tokenize(text, err), err);
  const f = p.or();
  if (!p.done()) throw err('unexpected text after the filter');
  return f;
}

/** Parses a PATCH `path` (or an `attributes` entry); 400 invalidPath when it is not one. */
export function parsePath(text: string): AttrPath {
  const err = (m: string) => new ScimError('invalidPath', `invalid path "${text}": ${m}`);
  // `emails[type eq "work"].value`: split the trailing `.sub` off so the tokenizer sees `]` then a `.word`.
  const p = new Parser(tokenize(text.replace(/\]\.(?=[A-Za-z$])/, '] .'), err), err);
  const path = p.path();
  if (!p.done()) throw err('unexpected text after the path');
  return path;
}

/** Case-insensitive property lookup (SCIM attribute names are case-insensitive). */
export function keyOf(obj: Record<string, unknown>, name: string): string | undefined {
  if (name in obj) return name;
  const l = name.toLowerCase();
  return Object.keys(obj).find((k) => k.toLowerCase() === l);
}
export function getCI(obj: unknown, name: string): unknown {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
  const k = keyOf(obj as Record<string, unknown>, name);
  return k === undefined ? undefined : (obj as Record<string, unknown>)[k];
}

function compare(actual: unknown, op: CompareOp, expected: FilterValue): boolean {
  if (Array.isArray(actual)) return actual.some((a) => compare(a, op, expected));
  // A complex value without a sub-attribute compares by its `value` (RFC 7644 §3.4.2.2).
  if (actual !== null && typeof actual === 'object') return compare(getCI(actual, 'value'), op, expected);
  if (actual === undefined || actual === null) return op === 'ne' ? expected !== null : op === 'eq' && expected === null;
  if (typeof actual === 'boolean' || typeof expected === 'boolean') {
    const a = typeof actual === 'string' ? actual.toLowerCase() === 'true' : Boolean(actual);
    const e = typeof expected === 'string' ? expected.toLowerCase() === 'true' : Boolean(expected);
    if (op === 'eq') return a === e;
    if (op === 'ne') return a !== e;
    return false;
  }
  const a = String(actual).toLowerCase();
  const e = String(expected ?? '').toLowerCase();
  switch (op) {
    case 'eq': return a === e;
    case 'ne': return a !== e;
    case 'co': return a.includes(e);
    case 'sw': return a.startsWith(e);
    case 'ew': return a.endsWith(e);
    case 'gt': return a > e;
    case 'ge': return a >= e;
    case 'lt': return a < e;
    case 'le': return a <= e;
  }
}

function present(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

/** The values at `path` in `obj` (multi-valued attributes flatten), after any value filter. */
export function valuesAt(obj: Record<string, unknown>, path: AttrPath): unknown[] {
  let base: unknown = getCI(obj, path.attr);
  if (path.uri && !/^urn:ietf:params:scim:schemas:core:/i.test(path.uri)) base = getCI(getCI(obj, path.uri), path.attr);
  let items = Array.isArray(base) ? base : base === undefined ? [] : [base];
  if (path.filter) items = items.filter((it) => it !== null && typeof it === 'object' && matches(path.filter!, it as Record<string, unknown>));
  if (path.sub) items = items.map((it) => getCI(it, path.sub!)).filter((v) => v !== undefined);
  return items;
}

/** Evaluates a filter against one resource (or one element of a multi-valued attribute). */
export function matches(f: Filter, obj: Record<string, unknown>): boolean {
  switch (f.kind) {
    case 'and': return matches(f.left, obj) && matches(f.right, obj);
    case 'or': return matches(f.left, obj) || matches(f.right, obj);
    case 'not': return !matches(f.expr, obj);
    case 'pr': return valuesAt(obj, f.path).some(present);
    case 'has': return valuesAt(obj, f.path).length > 0;
    case 'cmp': {
      const vals = valuesAt(obj, f.path);
      if (vals.length === 0) return compare(undefined, f.op, f.value);
      return vals.some((v) => compare(v, f.op, f.value));
    }
  }
}
