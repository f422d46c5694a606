import { SCOPES } from '../../server/auth/principal';
import { listOperations, loadSpec, type OpenApiDocument, type SpecOperation } from '../../server/spec';

// Walking `openapi/provisio.yaml` for the spec-driven tests (the authorization matrix, the fuzz test): the
// operations with their security metadata, example values for path parameters, filled paths, the variants of a
// path that must never address an operation, and an oracle saying which operation a raw path addresses by the
// spec alone. The operations come from server/spec.ts (`loadSpec`, `listOperations`), exactly as the service
// reads them; the oracle and the declared outcomes are written from the spec's rules, not from the service's
// matcher or authenticator, so a test comparing the two can fail.

export type { OpenApiDocument, SpecOperation };

/** A parameter of an operation, `$ref`s resolved; path-level parameters included. */
export interface SpecParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required: boolean;
  schema: Record<string, unknown>;
  example?: unknown;
}

/** The spec once and its operations, in `listOperations` order (literal paths before templated ones). */
export function walkSpec(spec: OpenApiDocument = loadSpec()): { spec: OpenApiDocument; operations: SpecOperation[] } {
  return { spec, operations: listOperations(spec) };
}

/** Follows a local `$ref` (`#/components/...`) until the object is not a reference. Throws on a remote one. */
export function deref<T = Record<string, unknown>>(spec: OpenApiDocument, value: unknown): T {
  let v = value as Record<string, unknown>;
  for (let hops = 0; v && typeof v === 'object' && typeof v['$ref'] === 'string'; hops++) {
    const ref = v['$ref'] as string;
    if (!ref.startsWith('#/') || hops > 32) throw new Error(`cannot follow $ref ${ref}`);
    v = ref
      .slice(2)
      .split('/')
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], spec) as Record<string, unknown>;
  }
  return v as T;
}

const operationObject = (spec: OpenApiDocument, op: SpecOperation) => {
  const item = spec.paths[op.path];
  const o = item?.[op.method] as Record<string, unknown> | undefined;
  if (!item || !o) throw new Error(`${op.method.toUpperCase()} ${op.path} is not in the spec`);
  return { item, o };
};

/** The parameters of `op` (operation-level ones override path-level ones of the same name and location). */
export function operationParameters(spec: OpenApiDocument, op: SpecOperation): SpecParameter[] {
  const { item, o } = operationObject(spec, op);
  const byKey = new Map<string, SpecParameter>();
  for (const raw of [...((item['parameters'] as unknown[]) ?? []), ...((o['parameters'] as unknown[]) ?? [])]) {
    const p = deref<Record<string, unknown>>(spec, raw);
    const param: SpecParameter = {
      name: String(p['name']),
      in: p['in'] as SpecParameter['in'],
      required: p['required'] === true,
      schema: deref(spec, p['schema'] ?? {}),
      ...('example' in p ? { example: p['example'] } : {}),
    };
    byKey.set(`${param.in}:${param.name}`, param);
  }
  return [...byKey.values()];
}

/** The media types `op`'s request body accepts, in spec order, and whether a body is required; undefined without a body. */
export function requestBodyOf(spec: OpenApiDocument, op: SpecOperation): { required: boolean; contentTypes: string[] } | undefined {
  const { o } = operationObject(spec, op);
  if (!o['requestBody']) return undefined;
  const rb = deref<Record<string, unknown>>(spec, o['requestBody']);
  return { required: rb['required'] === true, contentTypes: Object.keys((rb['content'] as Record<string, unknown>) ?? {}) };
}

/**
 * A value the spec itself offers for a parameter: its `example`, the schema's `example`, `default` or first
 * `enum` value, else one derived from the type (the minimum or 1 for integers, a fixed v4 UUID for
 * `format: uuid`, `x` for other strings). A value, not necessarily an existing resource.
 */
export function exampleParameterValue(param: SpecParameter): string {
  const s = param.schema;
  const first = param.example ?? s['example'] ?? s['default'] ?? (Array.isArray(s['enum']) ? s['enum'][0] : undefined);
  if (first !== undefined && first !== null) return String(first);
  if (s['type'] === 'integer' || s['type'] === 'number') return String(typeof s['minimum'] === 'number' ? Math.max(1, s['minimum']) : 1);
  if (s['format'] === 'uuid') return '00000000-0000-4000-8000-000000000000';
  return 'x';
}

/**
 * Values for path parameters. A key is either a template prefix ending in the parameter (`/admin/assets/{id}`,
 * which also serves `/admin/assets/{id}/...`) or a bare parameter name (`section`); the longest matching prefix
 * wins over the bare name. Values are percent-encoded by `fillPath`.
 */
export type PathValues = Readonly<Record<string, string | number>>;

const PARAM = /^\{([^}]+)\}$/;

/**
 * Fills a path template: each `{param}` becomes its value from `values` (see `PathValues`), else, when `spec` and
 * `op` are given, the spec's example for it (`exampleParameterValue`), percent-encoded as one path segment.
 * Throws when a parameter has no value.
 */
export function fillPath(template: string, values: PathValues = {}, from?: { spec: OpenApiDocument; op: SpecOperation }): string {
  const segments = template.split('/');
  return segments
    .map((seg, i) => {
      const m = PARAM.exec(seg);
      if (!m) return seg;
      const name = m[1]!;
      const prefix = segments.slice(0, i + 1).join('/');
      let value: string | number | undefined = values[prefix] ?? values[name];
      if (value === undefined && from) {
        const param = operationParameters(from.spec, from.op).find((p) => p.in === 'path' && p.name === name);
        if (param) value = exampleParameterValue(param);
      }
      if (value === undefined) throw new Error(`no value for {${name}} in ${template}`);
      return encodeURIComponent(String(value));
    })
    .join('/');
}

/** How a variant of a path was made; each must address no operation the canonical path does not. */
export type PathVariantName =
  | 'upper-case'
  | 'segment-initial-case'
  | 'last-literal-upper-case'
  | 'trailing-slash'
  | 'leading-double-slash'
  | 'inner-double-slash'
  | 'dot-segment'
  | 'dot-dot-segment'
  | 'percent-encoded-literal'
  | 'encoded-slash-in-parameter';

export interface PathVariant {
  name: PathVariantName;
  /** The raw request path (send it verbatim: no normalisation, no re-encoding). */
  path: string;
  /**
   * True only for a trailing slash on a `/scim/` path: the service strips it before anything else (identity
   * providers send `/Users/?filter=`), so the variant is the canonical operation and must answer exactly as the
   * canonical path does. Every other variant must answer what `resolveSpecPath` says for its path: no route
   * (404) for all but the encoded slash, which may address another templated operation (and is then
   * authenticated as that one).
   */
  sameAsCanonical: boolean;
}

const swapCase = (c: string) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase());
const pctEncode = (c: string) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;

/**
 * The variants of `path` (a `fillPath(template, …)` result, so its segments line up with the template's):
 * case changes (whole path upper-cased; the first letter of every segment swapped; the last literal segment
 * upper-cased), a trailing slash, `//` in front and between the first two segments, `/./` and `/x/../` segments,
 * the first character percent-encoded, and, for templated paths, a percent-encoded slash joining the first
 * parameter to the segment after it (or to a copy of itself when it is last). Variants equal to `path` are left
 * out, so a path without letters has no case variants.
 */
export function pathVariants(template: string, path: string): PathVariant[] {
  const t = template.split('/').slice(1);
  const s = path.split('/').slice(1);
  if (t.length !== s.length) throw new Error(`${path} does not line up with ${template}`);
  const literal = t.map((seg) => !PARAM.test(seg));
  const join = (segs: string[]) => `/${segs.join('/')}`;
  const out: PathVariant[] = [];
  const add = (name: PathVariantName, p: string, sameAsCanonical = false) => {
    if (p !== path) out.push({ name, path: p, sameAsCanonical });
  };

  add('upper-case', path.toUpperCase());
  add('segment-initial-case', join(s.map((seg) => seg.replace(/[A-Za-z]/, swapCase))));
  const lastLiteral = literal.lastIndexOf(true);
  add('last-literal-upper-case', join(s.map((seg, i) => (i === lastLiteral ? seg.toUpperCase() : seg))));
  add('trailing-slash', `${path}/`, path.startsWith('/scim/'));
  add('leading-double-slash', `/${path}`);
  if (s.length > 1) add('inner-double-slash', join([s[0]!, '', ...s.slice(1)]));
  add('dot-segment', s.length > 1 ? join([s[0]!, '.', ...s.slice(1)]) : join(['.', ...s]));
  add('dot-dot-segment', s.length > 1 ? join([s[0]!, 'x', '..', ...s.slice(1)]) : join(['x', '..', ...s]));
  add('percent-encoded-literal', `/${pctEncode(s[0]![0]!)}${s[0]!.slice(1)}${s.length > 1 ? `/${s.slice(1).join('/')}` : ''}`);
  const param = literal.indexOf(false);
  if (param >= 0) {
    const joined = param + 1 < s.length ? `${s[param]}%2F${s[param + 1]}` : `${s[param]}%2F${s[param]}`;
    add('encoded-slash-in-parameter', join([...s.slice(0, param), joined, ...s.slice(param + 2)]));
  }
  return out;
}

/** What a method and raw path address by the spec alone. */
export type SpecResolution =
  | { kind: 'operation'; operation: SpecOperation }
  /** The path exists with other methods only; `allow` lists them, upper case, sorted. */
  | { kind: 'method_not_allowed'; allow: string[] }
  | { kind: 'no_route' };

/**
 * The oracle: which operation `method` and the raw, undecoded `path` address as the spec writes its paths.
 * Segments compare exactly (case-sensitive, no decoding, no dot-segment or slash normalisation); a `{param}`
 * is one non-empty segment. Among templates that match and declare the method, the one with the most literal
 * segments wins (`/admin/workflows/tasks` over `/admin/workflows/{name}`). A match without the method is a
 * 405 whose `allow` is every method of every matching template.
 */
export function resolveSpecPath(operations: readonly SpecOperation[], method: string, path: string): SpecResolution {
  const raw = path.split('/');
  const m = method.toLowerCase();
  let best: { op: SpecOperation; literals: number } | undefined;
  const allow = new Set<string>();
  for (const op of operations) {
    const t = op.path.split('/');
    if (t.length !== raw.length) continue;
    let literals = 0;
    const matches = t.every((seg, i) => {
      if (PARAM.test(seg)) return raw[i]!.length > 0;
      literals++;
      return seg === raw[i];
    });
    if (!matches) continue;
    allow.add(op.method.toUpperCase());
    if (op.method === m && (!best || literals > best.literals)) best = { op, literals };
  }
  if (best) return { kind: 'operation', operation: best.op };
  return allow.size ? { kind: 'method_not_allowed', allow: [...allow].sort() } : { kind: 'no_route' };
}

/** What a request carries, as the spec's security schemes see it. */
export type PresentedCredential =
  | { kind: 'none' }
  /** A live bearer token (`bearerAuth`) with these scopes, bound to `role` or role-less (null). */
  | { kind: 'bearer'; scopes: readonly string[]; role: string | null }
  /** The valid admin key (`adminKey`): a virtual superadmin holding every scope. */
  | { kind: 'adminKey' }
  /** A valid `X-Hub-Signature-256` of the body (`hubSignature`): the webhook credential, no role. */
  | { kind: 'hubSignature' }
  /** A credential of `scheme` that is not valid: unknown, revoked, expired, malformed or a wrong key or signature. */
  | { kind: 'invalid'; scheme: 'bearerAuth' | 'adminKey' | 'hubSignature' };

/** The outcome the spec declares for an operation and a credential: admitted, or refused with 401 or 403. */
export type DeclaredOutcome = 'admitted' | 401 | 403;

const grants = (held: readonly string[], needed: string) => held.includes(needed) || (needed === 'admin:read' && held.includes('admin:*'));

/**
 * The spec's authorization rules for `op`: public operations (`security: []`) admit anyone; otherwise a
 * credential is 401 unless it is valid and of a scheme one of the operation's security requirements names;
 * then 403 unless it holds one of `x-required-scopes` (`admin:*` implies `admin:read`; a signature holds exactly
 * the operation's scopes, the admin key all of them) and, when it is bound to a role, that role is one of
 * `x-allowed-roles` (a role-less token is checked on scopes only).
 */
export function declaredOutcome(op: SpecOperation, cred: PresentedCredential): DeclaredOutcome {
  if (op.security.length === 0) return 'admitted';
  if (cred.kind === 'none' || cred.kind === 'invalid') return 401;
  const scheme = cred.kind === 'bearer' ? 'bearerAuth' : cred.kind;
  // A requirement naming several schemes needs all of them; one credential satisfies only a single-scheme one.
  if (!op.security.some((req) => Object.keys(req).length === 1 && scheme in req)) return 401;
  const held = cred.kind === 'bearer' ? cred.scopes : cred.kind === 'adminKey' ? SCOPES : op.requiredScopes;
  const role = cred.kind === 'bearer' ? cred.role : cred.kind === 'adminKey' ? 'superadmin' : null;
  if (op.requiredScopes.length > 0 && !op.requiredScopes.some((s) => grants(held, s))) return 403;
  if (op.allowedRoles && role !== null && !op.allowedRoles.includes(role)) return 403;
  return 'admitted';
}
