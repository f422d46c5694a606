// Requests for the spec-driven fuzz test (tests/api/spec-fuzz.test.ts): a valid request per operation built from
// the spec's examples and schemas (openapi-sampler), its seeded mutations (a fixed catalogue plus fast-check rounds),
// a raw HTTP client that sends exactly those bytes, and the judge of each answer.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { sample } from 'openapi-sampler';
import { deref, fillPath, operationParameters, pathVariants, requestBodyOf, type OpenApiDocument, type SpecOperation, type SpecParameter } from './spec-walk';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = Record<string, unknown>;

/** One request exactly as it goes on the wire: `path` and `query` already percent-encoded. */
export interface FuzzRequest {
  method: string;
  path: string;
  /** Without the `?`; empty for none. */
  query: string;
  headers: Record<string, string>;
  body?: Buffer | undefined;
}

export interface Mutation {
  /** What was changed, e.g. `path id = 1e99` or `body /name wrong type`. */
  name: string;
  request: FuzzRequest;
  /** The mutation may succeed as the valid request does (a compressed body, an ignored body): a deletion runs it after the valid one. */
  mayChangeState?: boolean;
}

export type FuzzAnswer =
  | { kind: 'answer'; status: number; contentType: string; text: string; ms: number; /** Every header line, `name: value`. */ headerText: string }
  | { kind: 'no_answer'; error: string; ms: number };

/** What the fuzzer reads from one operation of the spec. */
export interface FuzzOperation {
  op: SpecOperation;
  pathParams: SpecParameter[];
  queryParams: SpecParameter[];
  /** The request body, when the operation takes one: its media types (the first is used) and the sample. */
  body?: { contentTypes: string[]; schema: Schema; sample: Json } | undefined;
}

/** The real resources and credentials one operation's valid request uses. */
export interface Fixture {
  /** Raw (unencoded) path parameter values. */
  path?: Record<string, string | number>;
  /** Raw query values; `undefined` leaves a parameter out of the valid request. */
  query?: Record<string, string | number | undefined>;
  /** The body, or a change to the spec's sample. */
  body?: Json | ((sample: Json) => Json);
  headers?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the spec (walked by ./spec-walk.ts, shared with the authorization matrix)

/** Every operation with its parameters and a sample body (the media type's example, else one built from the schema). */
export function describeOperations(spec: OpenApiDocument, ops: readonly SpecOperation[]): FuzzOperation[] {
  return ops.map((op) => {
    const params = operationParameters(spec, op);
    let body: FuzzOperation['body'];
    const declared = requestBodyOf(spec, op);
    if (declared) {
      const raw = (spec.paths[op.path] as Record<string, Record<string, unknown>>)[op.method]!;
      const content = deref<Record<string, unknown>>(spec, raw['requestBody'])['content'] as Record<
        string,
        { schema?: Schema; example?: unknown; examples?: Record<string, { value?: unknown }> }
      >;
      const media = content[declared.contentTypes[0]!]!;
      const schema = media.schema ?? {};
      const firstExample = media.examples ? Object.values(media.examples)[0]?.value : undefined;
      const value = media.example ?? firstExample ?? sample(schema as never, { skipReadOnly: true, quiet: true }, spec);
      body = { contentTypes: declared.contentTypes, schema: deref<Schema>(spec, schema), sample: value as Json };
    }
    return {
      op,
      pathParams: params.filter((p) => p.in === 'path'),
      queryParams: params.filter((p) => p.in === 'query'),
      body,
    };
  });
}

/** The parameter's example, else a value openapi-sampler builds from its schema (its `example`, `default`, bounds, format). */
const sampleParam = (p: SpecParameter, spec: OpenApiDocument): string => {
  if (p.example !== undefined) return String(p.example);
  const v = sample(p.schema as never, { quiet: true }, spec);
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
};

/**
 * Percent-encodes text for a path segment or query value. Unlike `encodeURIComponent` it does not throw on a lone
 * surrogate: that is encoded as the three bytes WTF-8 gives it (`%ED%A0%80` for U+D800), which is what a client
 * that does not check sends.
 */
export function encodeText(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp <= 0xdfff) {
      out += [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    } else {
      out += encodeURIComponent(ch).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    }
  }
  return out;
}

const toQuery = (pairs: [string, string][]) => pairs.map(([k, v]) => `${k}=${v}`).join('&');

/** The valid request of one operation: the fixture's resources and credentials, the spec's samples elsewhere. */
export function validRequest(spec: OpenApiDocument, f: FuzzOperation, fixture: Fixture, auth: Record<string, string>): FuzzRequest {
  const pathValues: Record<string, string | number> = {};
  for (const p of f.pathParams) pathValues[p.name] = fixture.path?.[p.name] ?? sampleParam(p, spec);
  const query: [string, string][] = [];
  for (const p of f.queryParams) {
    const given = fixture.query && p.name in fixture.query ? fixture.query[p.name] : sampleParam(p, spec);
    if (given !== undefined) query.push([p.name, encodeText(String(given))]);
  }
  const headers: Record<string, string> = { Accept: '*/*', ...auth, ...fixture.headers };
  let body: Buffer | undefined;
  if (f.body) {
    const value = typeof fixture.body === 'function' ? fixture.body(structuredClone(f.body.sample)) : (fixture.body ?? f.body.sample);
    headers['Content-Type'] = f.body.contentTypes[0]!;
    body = Buffer.from(JSON.stringify(value));
  }
  return { method: f.op.method.toUpperCase(), path: fillPath(f.op.path, pathValues), query: toQuery(query), headers, body };
}

// ---------------------------------------------------------------------------------------------------------------
// Mutations

/** Path and query values, as sent (percent-encoded): numbers out of range or not integers, NUL, a lone surrogate, …. */
export const URL_VALUES: readonly (readonly [string, string])[] = [
  ['20 digits', '99999999999999999999'],
  ['Infinity', 'Infinity'],
  ['1e99', '1e99'],
  ['-1', '-1'],
  ['0', '0'],
  ['1.5', '1.5'],
  ['400 digits', '9'.repeat(400)],
  ['NUL', 'a%00b'],
  ['lone surrogate', '%ED%A0%80'],
  ['invalid UTF-8', '%FF%FE'],
  ['huge', 'x'.repeat(6000)],
  ['wrong type', 'true'],
  ['NaN', 'NaN'],
  ['2^63', '9223372036854775808'],
  ['2^31', '2147483648'],
  ['2^53 - 1', '9007199254740991'],
];

const RAW = '\u0001fuzz-raw\u0001';
const deep = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
const deepObject = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

/** Body values as JSON text (numbers JSON.stringify cannot write, NUL, a lone surrogate as `"\ud800"`, deep nesting, …). */
export const BODY_VALUES: readonly (readonly [string, string])[] = [
  ['20 digits', '99999999999999999999'],
  ['1e99', '1e99'],
  ['-1', '-1'],
  ['0', '0'],
  ['1.5', '1.5'],
  ['400 digits', '9'.repeat(400)],
  ['2^63', '9223372036854775808'],
  ['2^31', '2147483648'],
  ['2^53 - 1', '9007199254740991'],
  ['"Infinity"', '"Infinity"'],
  ['NUL', '"a\\u0000b"'],
  ['lone surrogate', '"\\ud800"'],
  ['lone low surrogate', '"x\\udc00y"'],
  ['huge string', JSON.stringify('x'.repeat(200_000))],
  ['5,000 nested arrays', deep(5000)],
  ['5,000 nested objects', deepObject(5000)],
  ['null', 'null'],
];

const NUMBER_VALUES = BODY_VALUES.filter(([, raw]) => /^-?[0-9]/.test(raw));
const TEXT_VALUES = BODY_VALUES.filter(([label]) => label === 'NUL' || label.includes('surrogate'));

type Pointer = (string | number)[];

/** Every node below the root of a JSON value, parents before children. */
function pointers(value: Json, at: Pointer = []): { at: Pointer; value: Json }[] {
  const out: { at: Pointer; value: Json }[] = [];
  if (Array.isArray(value)) value.forEach((v, i) => out.push({ at: [...at, i], value: v }, ...pointers(v, [...at, i])));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push({ at: [...at, k], value: v }, ...pointers(v, [...at, k]));
  return out;
}

/** `value` with the node at `at` replaced by raw JSON text. */
function withRawAt(value: Json, at: Pointer, raw: string): string {
  const copy = structuredClone(value);
  if (at.length === 0) return raw;
  let parent: Json = copy;
  for (const key of at.slice(0, -1)) parent = (parent as Record<string | number, Json>)[key]!;
  (parent as Record<string | number, Json>)[at[at.length - 1]!] = RAW;
  return JSON.stringify(copy).replace(JSON.stringify(RAW), () => raw);
}

function without(value: Json, at: Pointer): Json {
  const copy = structuredClone(value);
  let parent: Json = copy;
  for (const key of at.slice(0, -1)) parent = (parent as Record<string | number, Json>)[key]!;
  const last = at[at.length - 1]!;
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else delete (parent as Record<string, Json>)[String(last)];
  return copy;
}

function wrongTypeOf(v: Json): string {
  if (typeof v === 'string') return '12345';
  if (typeof v === 'number') return '"12345"';
  if (typeof v === 'boolean') return '"true"';
  if (Array.isArray(v)) return '{"0":"x"}';
  if (v === null) return '{}';
  return '["x"]';
}

function suffixStrings(v: Json, suffix: string): Json {
  if (typeof v === 'string') return `${v}${suffix}`;
  if (Array.isArray(v)) return v.map((x) => suffixStrings(x, suffix));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, suffixStrings(x, suffix)]));
  return v;
}

const pointerText = (at: Pointer) => `/${at.join('/')}`;
const rotate = <T>(items: readonly T[], by: number): T[] => (items.length ? [...items.slice(by % items.length), ...items.slice(0, by % items.length)] : []);
const pick = <T>(items: readonly T[], i: number): T => items[i % items.length]!;

function withBody(req: FuzzRequest, body: string | Buffer | undefined, headers: Record<string, string | undefined> = {}): FuzzRequest {
  const h: Record<string, string> = { ...req.headers };
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) delete h[k];
    else h[k] = v;
  }
  return { ...req, headers: h, body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body) };
}

function withPathValue(f: FuzzOperation, valid: FuzzRequest, name: string, raw: string): FuzzRequest {
  // Re-fill the template from the valid path's segments, replacing one parameter's.
  const templ = f.op.path.split('/');
  const segs = valid.path.split('/');
  return { ...valid, path: templ.map((t, i) => (t === `{${name}}` ? raw : segs[i])).join('/') };
}

function withQueryValue(valid: FuzzRequest, name: string, raw: string | undefined): FuzzRequest {
  const pairs = valid.query ? valid.query.split('&').map((kv) => kv.split('=') as [string, string]) : [];
  const kept = pairs.filter(([k]) => k !== name);
  if (raw !== undefined) kept.push([name, raw]);
  return { ...valid, query: toQuery(kept) };
}

const INSERTIONS = [['NUL', '%00'], ['a lone surrogate', '%ED%A0%80']] as const;

/** Percent-encoded `ins` put in the middle of a percent-encoded value, between its escapes. */
function insertEncoded(encoded: string, ins: string): string {
  const tokens = encoded.match(/%[0-9A-Fa-f]{2}|[^%]|%/g) ?? [];
  const mid = Math.floor(tokens.length / 2);
  return [...tokens.slice(0, mid), ins, ...tokens.slice(mid)].join('');
}

const bombs = new Map<number, Buffer>();
/** A few KiB of gzip that inflate to eight times the body limit (built once per limit). */
function gzipBomb(bodyLimitBytes: number): Buffer {
  let bomb = bombs.get(bodyLimitBytes);
  if (!bomb) bombs.set(bodyLimitBytes, (bomb = gzipSync(Buffer.alloc(bodyLimitBytes * 8, 0x20))));
  return bomb;
}

const OTHER_METHOD: Record<string, string> = { GET: 'PUT', POST: 'PATCH', PUT: 'POST', PATCH: 'POST', DELETE: 'POST' };

/**
 * The fixed catalogue: every hostile value in every path and query parameter and every body leaf of its type; the
 * body values round-robin over all body nodes, starting at `offset` (from the seed) so other seeds pair them anew.
 */
export function catalogueMutations(f: FuzzOperation, valid: FuzzRequest, bodyLimitBytes: number, offset: number): Mutation[] {
  const out: Mutation[] = [];
  const add = (name: string, request: FuzzRequest, mayChangeState = false) => out.push({ name, request, ...(mayChangeState ? { mayChangeState } : {}) });

  for (const v of pathVariants(f.op.path, valid.path)) add(`path variant: ${v.name}`, { ...valid, path: v.path }, v.sameAsCanonical);
  add('path variant: matrix parameter', { ...valid, path: `${valid.path};x=1` });
  add(`method ${OTHER_METHOD[valid.method]}`, { ...valid, method: OTHER_METHOD[valid.method]! });

  // Every hostile value in every path and query parameter, and NUL or a lone surrogate inside its valid value (where
  // a filter or a name still parses and takes the character further in).
  const pathNames = rotate(f.pathParams.map((p) => p.name), offset);
  const templ = f.op.path.split('/');
  for (const name of pathNames) {
    for (const [label, raw] of URL_VALUES) add(`path ${name} = ${label}`, withPathValue(f, valid, name, raw));
    const current = valid.path.split('/')[templ.indexOf(`{${name}}`)] ?? '';
    for (const [label, ins] of INSERTIONS) add(`path ${name} with ${label} inside`, withPathValue(f, valid, name, insertEncoded(current, ins)));
  }
  if (pathNames.length) add(`path ${pathNames[0]} empty`, withPathValue(f, valid, pathNames[0]!, ''));

  const queryNames = rotate(f.queryParams.map((p) => p.name), offset);
  const validQuery = new Map(valid.query ? valid.query.split('&').map((kv) => kv.split('=') as [string, string]) : []);
  for (const name of queryNames) {
    for (const [label, raw] of URL_VALUES) add(`query ${name} = ${label}`, withQueryValue(valid, name, raw));
    const current = validQuery.get(name);
    if (current) for (const [label, ins] of INSERTIONS) add(`query ${name} with ${label} inside`, withQueryValue(valid, name, insertEncoded(current, ins)));
  }
  if (queryNames.length) {
    const name = queryNames[0]!;
    add(`query ${name} twice`, { ...valid, query: [valid.query, `${name}=1`, `${name}=2`].filter(Boolean).join('&') });
    add(`query ${name} without a value`, { ...valid, query: [valid.query, name].filter(Boolean).join('&') });
    const required = f.queryParams.filter((p) => p.required);
    for (const p of required) add(`query ${p.name} missing`, withQueryValue(valid, p.name, undefined));
  }
  add('unknown query parameter', { ...valid, query: [valid.query, 'zz_unknown=1'].filter(Boolean).join('&') });
  add('NUL in a query name', { ...valid, query: [valid.query, 'a%00=1'].filter(Boolean).join('&') });

  if (f.body && valid.body) {
    const value = JSON.parse(valid.body.toString('utf8')) as Json;
    const nodes = rotate(pointers(value), offset);
    BODY_VALUES.forEach(([label, raw], i) => {
      const target = nodes.length ? pick(nodes, i).at : [];
      add(`body ${pointerText(target)} = ${label}`, withBody(valid, withRawAt(value, target, raw)));
    });
    // Every number in the body gets every hostile number, every string NUL and lone surrogates: these are the
    // values that pass a loose schema and reach SQL.
    const sweeps: [string, string][] = [];
    for (const { at, value: v } of nodes) {
      const values = typeof v === 'number' ? NUMBER_VALUES : typeof v === 'string' ? TEXT_VALUES : [];
      for (const [label, raw] of values) sweeps.push([`body ${pointerText(at)} = ${label} (sweep)`, withRawAt(value, at, raw)]);
      if (typeof v === 'string') {
        const mid = Math.floor(v.length / 2);
        for (const [label, ch] of [['NUL', '\u0000'], ['a lone surrogate', '\ud800']] as const) {
          sweeps.push([`body ${pointerText(at)} with ${label} inside`, withRawAt(value, at, JSON.stringify(`${v.slice(0, mid)}${ch}${v.slice(mid)}`))]);
        }
      }
    }
    for (const [name, text] of sweeps) add(name, withBody(valid, text));
    // Every array grown to as many distinct copies of its first element as fit in the body limit (20,000 at most;
    // copy i has `-i` after each of its strings): work that grows faster than the input shows as an answer out of time.
    for (const { at, value: v } of nodes) {
      if (!Array.isArray(v) || v.length === 0) continue;
      const size = JSON.stringify(v[0]).length + 8;
      const copies = Math.min(20_000, Math.floor((bodyLimitBytes * 0.9) / size));
      const items = Array.from({ length: copies }, (_, i) => JSON.stringify(i === 0 ? v[0] : suffixStrings(v[0]!, `-${i}`)));
      add(`body ${pointerText(at)} with ${copies} elements`, withBody(valid, withRawAt(value, at, `[${items.join(',')}]`)));
    }
    // A wrong type at every node, parents and leaves alike.
    nodes.forEach(({ at, value: v }) => add(`body ${pointerText(at)} wrong type`, withBody(valid, withRawAt(value, at, wrongTypeOf(v)))));
    // Missing fields: the schema's required ones first, then whatever the sample has.
    const required = (f.body.schema['required'] as string[] | undefined) ?? [];
    const topKeys = value && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value) : [];
    const missing = [...new Set([...required, ...rotate(topKeys, offset)])].filter((k) => topKeys.includes(k)).slice(0, 4);
    for (const k of missing) add(`body /${k} missing`, withBody(valid, JSON.stringify(without(value, [k]))));
    const nested = nodes.find((n) => n.at.length > 1 && typeof n.at[n.at.length - 1] === 'string');
    if (nested) add(`body ${pointerText(nested.at)} missing`, withBody(valid, JSON.stringify(without(value, nested.at))));
    if (topKeys.length) {
      add('body extra field', withBody(valid, JSON.stringify({ ...(value as Record<string, Json>), zz_unexpected: 'x' })));
      add('body NUL in a key', withBody(valid, JSON.stringify({ ...(value as Record<string, Json>), 'a\u0000b': 1 })));
      add('body lone surrogate in a key', withBody(valid, JSON.stringify({ ...(value as Record<string, Json>), '\ud800': 1 })));
    }
    const nestedObject = nodes.find((n) => n.value && typeof n.value === 'object' && !Array.isArray(n.value));
    if (nestedObject) {
      add(`body ${pointerText(nestedObject.at)} extra field`, withBody(valid, withRawAt(value, nestedObject.at, JSON.stringify({ ...(nestedObject.value as Record<string, Json>), zz_unexpected: 'x' }))));
    }
    add('body {}', withBody(valid, '{}'));
    for (const [label, text] of [['[]', '[]'], ['a string', '"x"'], ['a number', '1'], ['null', 'null']] as const) add(`body is ${label}`, withBody(valid, text));
    add('body 5,000 nested arrays', withBody(valid, deep(5000)));
    add('body 5,000 nested objects', withBody(valid, deepObject(5000)));
    const text = valid.body.toString('utf8');
    add('invalid JSON: truncated', withBody(valid, text.slice(0, Math.max(1, Math.floor(text.length / 2)))));
    add('invalid JSON: single quotes', withBody(valid, "{'a': 1}"));
    add('invalid JSON: raw Infinity', withBody(valid, '{"a": Infinity}'));
    add('empty body', withBody(valid, ''));
    add('body over the size limit', withBody(valid, JSON.stringify({ pad: 'x'.repeat(bodyLimitBytes + 1024) })));

    add('Content-Type text/plain', withBody(valid, valid.body, { 'Content-Type': 'text/plain' }));
    add('Content-Type application/xml', withBody(valid, '<a>1</a>', { 'Content-Type': 'application/xml' }));
    add('no Content-Type', withBody(valid, valid.body, { 'Content-Type': undefined }));
    add('Content-Type form', withBody(valid, 'a=1&b=2', { 'Content-Type': 'application/x-www-form-urlencoded' }));
    add('Content-Type multipart', withBody(valid, '--x\r\n\r\n1\r\n--x--', { 'Content-Type': 'multipart/form-data; boundary=x' }));
    add('Content-Type charset utf-16', withBody(valid, valid.body, { 'Content-Type': `${f.body.contentTypes[0]}; charset=utf-16` }));
    add('Content-Type charset nonsense', withBody(valid, valid.body, { 'Content-Type': `${f.body.contentTypes[0]}; charset=x-nonsense` }));
    for (const enc of ['gzip', 'deflate', 'br']) add(`Content-Encoding ${enc} on an uncompressed body`, withBody(valid, valid.body, { 'Content-Encoding': enc }));
    add('Content-Encoding x-unknown', withBody(valid, valid.body, { 'Content-Encoding': 'x-unknown' }));
    add('a real gzip body', withBody(valid, gzipSync(valid.body), { 'Content-Encoding': 'gzip' }), true);
    add('a real deflate body', withBody(valid, deflateSync(valid.body), { 'Content-Encoding': 'deflate' }), true);
    add('a real br body', withBody(valid, brotliCompressSync(valid.body), { 'Content-Encoding': 'br' }), true);
    add('a gzip bomb', withBody(valid, gzipBomb(bodyLimitBytes), { 'Content-Encoding': 'gzip' }));
  } else {
    // Not on reads: a GET's body is ignored, and its 200 costs a response-validator compile per content type.
    if (valid.method !== 'GET') add('a JSON body where none is declared', withBody(valid, '{"a":1}', { 'Content-Type': 'application/json' }), true);
    add('Content-Encoding gzip on an uncompressed body where none is declared', withBody(valid, '{"a":1}', { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }));
    add('invalid JSON where no body is declared', withBody(valid, '{', { 'Content-Type': 'application/json' }));
  }
  return out;
}

// fast-check arbitraries for the seeded rounds: any text (lone surrogates included), any number, any JSON.
const anyText = fc.string({ unit: 'binary', maxLength: 40 });
const urlValue: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.constantFrom(...URL_VALUES).map(([l, r]) => [l, r] as [string, string]),
  anyText.map((s) => [`text ${JSON.stringify(s)}`, encodeText(s)] as [string, string]),
  fc.bigInt().map((n) => [`integer ${n}`, String(n)] as [string, string]),
  fc.double().map((d) => [`number ${d}`, String(d)] as [string, string]),
);
const numberText = (d: number) => (Number.isFinite(d) ? String(d) : JSON.stringify(String(d)));
const bodyValue: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.constantFrom(...BODY_VALUES).map(([l, r]) => [l, r] as [string, string]),
  anyText.map((s) => [`text ${JSON.stringify(s).slice(0, 60)}`, JSON.stringify(s)] as [string, string]),
  fc.bigInt().map((n) => [`integer ${n}`, String(n)] as [string, string]),
  fc.double().map((d) => [`number ${numberText(d)}`, numberText(d)] as [string, string]),
  fc.jsonValue({ maxDepth: 4 }).map((v) => [`JSON ${JSON.stringify(v).slice(0, 60)}`, JSON.stringify(v)] as [string, string]),
);

type Round =
  | { where: 'path' | 'query'; param: number; value: [string, string] }
  | { where: 'body'; node: number; value: [string, string] }
  | { where: 'body-drop'; node: number }
  | { where: 'whole-body'; value: [string, string] };

/** `rounds` random mutations of the operation, reproducible from `seed`. */
export function randomMutations(f: FuzzOperation, valid: FuzzRequest, seed: number, rounds: number): Mutation[] {
  if (rounds <= 0) return [];
  const kinds: fc.Arbitrary<Round>[] = [];
  if (f.pathParams.length) kinds.push(fc.record({ where: fc.constant('path' as const), param: fc.nat(), value: urlValue }));
  if (f.queryParams.length) kinds.push(fc.record({ where: fc.constant('query' as const), param: fc.nat(), value: urlValue }));
  if (f.body && valid.body) {
    kinds.push(fc.record({ where: fc.constant('body' as const), node: fc.nat(), value: bodyValue }));
    kinds.push(fc.record({ where: fc.constant('body-drop' as const), node: fc.nat() }));
    kinds.push(fc.record({ where: fc.constant('whole-body' as const), value: bodyValue }));
  }
  if (!kinds.length) kinds.push(fc.record({ where: fc.constant('query' as const), param: fc.nat(), value: urlValue }));
  const value = f.body && valid.body ? (JSON.parse(valid.body.toString('utf8')) as Json) : null;
  const nodes = value === null ? [] : pointers(value);
  return fc.sample(fc.oneof(...kinds), { seed, numRuns: rounds }).map((r): Mutation => {
    switch (r.where) {
      case 'path': {
        const name = pick(f.pathParams, r.param).name;
        return { name: `random: path ${name} = ${r.value[0]}`, request: withPathValue(f, valid, name, r.value[1]) };
      }
      case 'query': {
        const name = f.queryParams.length ? pick(f.queryParams, r.param).name : 'zz_random';
        return { name: `random: query ${name} = ${r.value[0]}`, request: withQueryValue(valid, name, r.value[1]) };
      }
      case 'body': {
        const at = nodes.length ? pick(nodes, r.node).at : [];
        return { name: `random: body ${pointerText(at)} = ${r.value[0]}`, request: withBody(valid, withRawAt(value, at, r.value[1])) };
      }
      case 'body-drop': {
        if (!nodes.length) return { name: 'random: body {}', request: withBody(valid, '{}') };
        const at = pick(nodes, r.node).at;
        return { name: `random: body ${pointerText(at)} missing`, request: withBody(valid, JSON.stringify(without(value, at))) };
      }
      case 'whole-body':
        return { name: `random: body = ${r.value[0]}`, request: withBody(valid, r.value[1]) };
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Sending and judging

/**
 * Sends the request byte for byte to `server` (supertest would normalise the path: `/./`, `//`, case), and waits
 * at most `timeoutMs` for the whole answer.
 */
export function sendRaw(server: http.Server, agent: http.Agent, req: FuzzRequest, timeoutMs: number): Promise<FuzzAnswer> {
  const { port } = server.address() as AddressInfo;
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    let done = false;
    const finish = (a: FuzzAnswer) => {
      if (!done) {
        done = true;
        resolve(a);
      }
    };
    const headers: Record<string, string | number> = { ...req.headers };
    if (req.body !== undefined) headers['Content-Length'] = req.body.length;
    const r = http.request(
      { host: '127.0.0.1', port, method: req.method, path: req.query ? `${req.path}?${req.query}` : req.path, headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          finish({
            kind: 'answer',
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            text: Buffer.concat(chunks).toString('utf8'),
            ms: elapsed(),
            headerText: res.rawHeaders.map((h, i) => (i % 2 ? `${h}\n` : `${h}: `)).join(''),
          }),
        );
        res.on('error', (e) => finish({ kind: 'no_answer', error: `response error: ${e.message}`, ms: elapsed() }));
      },
    );
    r.setTimeout(timeoutMs, () => {
      finish({ kind: 'no_answer', error: `no answer within ${timeoutMs} ms`, ms: elapsed() });
      r.destroy();
    });
    r.on('error', (e) => {
      // A server may answer (413, 415) and close before it has read all of a large body: the answer counts.
      setTimeout(() => finish({ kind: 'no_answer', error: `connection error: ${e.message}`, ms: elapsed() }), 200);
    });
    r.end(req.body);
  });
}

const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** A plain JSON body with NUL or a lone surrogate in a string or key: text PostgreSQL cannot store as it is. */
function carriesUnstorableText(req: FuzzRequest): boolean {
  if (!req.body || req.headers['Content-Encoding'] || !/json/.test(req.headers['Content-Type'] ?? '')) return false;
  let found = false;
  try {
    JSON.parse(req.body.toString('utf8'), (key, v: unknown) => {
      if (UNSTORABLE.test(key) || (typeof v === 'string' && UNSTORABLE.test(v))) found = true;
      return v;
    });
  } catch {
    return false;
  }
  return found;
}

export const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/**
 * Why an answer breaks the service's error contract, or undefined when it keeps it: no 5xx; no 2xx to a JSON body
 * carrying NUL or a lone surrogate (such text is refused, never stored or silently replaced); a 4xx on a `/scim/`
 * path is a SCIM Error message (RFC 7644 §3.12) and elsewhere an RFC 9457 problem document with `status`, `title`,
 * `detail` and `code`.
 */
export function judgeAnswer(req: FuzzRequest, a: FuzzAnswer): string | undefined {
  if (a.kind === 'no_answer') return a.error;
  if (a.status >= 500) return `${a.status}`;
  if (a.status < 300 && carriesUnstorableText(req)) return `${a.status} to a body with NUL or a lone surrogate: such text must be refused, not stored, dropped or replaced by U+FFFD`;
  if (a.status < 400) return undefined;
  let body: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(a.text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  if (req.path.startsWith('/scim/')) {
    const schemas = body?.['schemas'];
    const ok =
      a.contentType.startsWith('application/scim+json') &&
      Array.isArray(schemas) &&
      schemas.includes(SCIM_ERROR_SCHEMA) &&
      body?.['status'] === String(a.status);
    return ok ? undefined : `SCIM ${a.status} is not a SCIM Error message`;
  }
  const ok =
    a.contentType.startsWith('application/problem+json') &&
    body?.['status'] === a.status &&
    ['title', 'detail', 'code'].every((k) => typeof body?.[k] === 'string' && (body[k] as string).length > 0);
  return ok ? undefined : `${a.status} is not a problem document with status, title, detail and code`;
}

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);
const SECRET_HEADERS = /^(authorization|x-admin-key)$/i;

/** A failure as it is printed: the operation, the mutation, the request as sent and the answer. */
export function describeFailure(operationId: string, m: Mutation, a: FuzzAnswer, why: string): string {
  const r = m.request;
  const headers = Object.entries(r.headers)
    .map(([k, v]) => `${k}: ${SECRET_HEADERS.test(k) ? `${v.slice(0, 12)}…` : v}`)
    .join('\n      ');
  const body = r.body === undefined ? '(none)' : r.headers['Content-Encoding'] ? `(${r.body.length} bytes, Content-Encoding ${r.headers['Content-Encoding']})` : truncate(r.body.toString('utf8'), 300);
  const url = truncate(r.query ? `${r.path}?${r.query}` : r.path, 300);
  const answer = a.kind === 'answer' ? `${a.status} ${a.contentType} ${truncate(a.text, 400)} (${a.ms} ms)` : `${a.error} (${a.ms} ms)`;
  return [`${operationId} — ${m.name}: ${why}`, `  request: ${r.method} ${url}`, `      ${headers}`, `    body: ${body}`, `  answer: ${answer}`].join('\n');
}
