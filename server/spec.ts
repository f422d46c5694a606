import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import { projectPath } from '../adapter';
import { resolveRef } from '../integration-model';

export const SPEC_PATH = projectPath('openapi', 'provisio.yaml');

export type HttpMethod = 'get' | 'put' | 'post' | 'delete' | 'patch' | 'head' | 'options';
const METHODS: readonly HttpMethod[] = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

export type SecurityRequirement = Record<string, string[]>;

/** What the service reads from an operation of its own spec. */
export interface SpecOperation {
  operationId: string;
  method: HttpMethod;
  /** OpenAPI path template, e.g. `/orders/{id}`. */
  path: string;
  /** Express route path, e.g. `/orders/:id`. */
  routePath: string;
  pattern: RegExp;
  /** Effective security requirements; empty means public. */
  security: SecurityRequirement[];
  /** `x-required-scopes`: any one of these suffices. Empty: authentication alone suffices. */
  requiredScopes: string[];
  /** `x-allowed-roles`: a token bound to a role must hold one of these. Undefined: not role-gated. */
  allowedRoles: string[] | undefined;
  /** The names of the path's `{templates}`, in order: the capture groups of `pattern`. */
  pathParameterNames: string[];
  /** The operation's parameters (the path item's and its own, `$ref`s resolved). */
  parameters: SpecParameter[];
}

/** A parameter as the edge guards read it. */
export interface SpecParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  schema?: { type?: string; format?: string; minimum?: number; maximum?: number };
}

export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
  security?: SecurityRequirement[];
  [key: string]: unknown;
}

// Where parsed specs are kept as JSON, by the hash of their text (the usual home of tools' caches).
const SPEC_CACHE_DIR = projectPath('node_modules', '.cache', 'provisio', 'spec');

/**
 * The spec as a plain object, a fresh copy per call (express-openapi-validator changes the object it is given).
 * Parsing its 300 KB of YAML took about a fifth of the service's start-up, and as long again in every test file
 * that builds an app; JSON.parse of the same document takes a few milliseconds. So the parsed document is kept in
 * SPEC_CACHE_DIR under the SHA-256 of the YAML text: an edited spec has another hash and is parsed again. The cache
 * is best effort: where it cannot be read or written the YAML is parsed, as before.
 */
export function loadSpec(path = SPEC_PATH): OpenApiDocument {
  const text = readFileSync(path, 'utf8');
  const prefix = `${basename(path)}-`;
  const cached = join(SPEC_CACHE_DIR, `${prefix}${createHash('sha256').update(text).digest('hex')}.json`);
  try {
    return JSON.parse(readFileSync(cached, 'utf8')) as OpenApiDocument;
  } catch {
    // not cached yet (or unreadable): parse below
  }
  const json = JSON.stringify(parse(text));
  try {
    mkdirSync(SPEC_CACHE_DIR, { recursive: true });
    // Written aside and renamed: parallel test workers never read a half-written file.
    const aside = `${cached}.${process.pid}.tmp`;
    writeFileSync(aside, json);
    renameSync(aside, cached);
    // Earlier versions of the same spec are of no further use.
    for (const f of readdirSync(SPEC_CACHE_DIR)) {
      if (f.startsWith(prefix) && f.endsWith('.json') && join(SPEC_CACHE_DIR, f) !== cached) rmSync(join(SPEC_CACHE_DIR, f), { force: true });
    }
  } catch {
    // a read-only install: every start parses the YAML
  }
  return JSON.parse(json) as OpenApiDocument;
}

const toRoutePath = (p: string) => p.replace(/\{([^}]+)\}/g, ':$1');
// Exactly the spec's path: case-sensitive (a RegExp without the `i` flag), no optional trailing slash, a template
// parameter one non-empty segment. Express is told to route the same way (see `routeOperations`), so the
// operation that authentication checks is the one whose handler runs.
const toPattern = (p: string) =>
  new RegExp(`^${p.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '([^/]+)')}$`);

/** Parameters of an operation: the path item's, overridden by the operation's own of the same name and place. */
function parametersOf(spec: OpenApiDocument, item: Record<string, unknown>, op: Record<string, unknown>): SpecParameter[] {
  const read = (list: unknown) => ((list as unknown[] | undefined) ?? []).map((p) => resolveRef(spec, p) as SpecParameter);
  const byKey = new Map<string, SpecParameter>();
  for (const p of [...read(item['parameters']), ...read(op['parameters'])]) byKey.set(`${p.in}:${p.name}`, p);
  return [...byKey.values()];
}

/** Every operation of the spec, compiled once at start-up. */
export function listOperations(spec: OpenApiDocument): SpecOperation[] {
  const ops: SpecOperation[] = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of METHODS) {
      const op = item[method] as Record<string, unknown> | undefined;
      if (!op) continue;
      ops.push({
        operationId: String(op['operationId']),
        method,
        path,
        routePath: toRoutePath(path),
        pattern: toPattern(path),
        security: (op['security'] as SecurityRequirement[] | undefined) ?? spec.security ?? [],
        requiredScopes: (op['x-required-scopes'] as string[] | undefined) ?? [],
        allowedRoles: op['x-allowed-roles'] as string[] | undefined,
        pathParameterNames: [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!),
        parameters: parametersOf(spec, item, op),
      });
    }
  }
  // Literal segments before templated ones, so `/admin/workflows/tasks` wins over `/admin/workflows/{id}`.
  return ops.sort((a, b) => a.path.split('{').length - b.path.split('{').length);
}

/** What a request line addresses in the spec: one operation, a path without that method, or nothing. */
export type OperationMatch =
  | { kind: 'operation'; operation: SpecOperation }
  /** The path exists with other methods only; `allow` lists them (upper case) for the 405's `Allow` header. */
  | { kind: 'method_not_allowed'; allow: string[] }
  | { kind: 'no_route' };

/**
 * The operation that `method` and `path` (the raw, undecoded request path) address, matched exactly as the spec
 * writes it. The first match in `ops` order wins, which is `listOperations`' literal-before-templated order.
 */
export function matchOperation(ops: readonly SpecOperation[], method: string, path: string): OperationMatch {
  const m = method.toLowerCase();
  let allow: string[] | undefined;
  for (const o of ops) {
    if (!o.pattern.test(path)) continue;
    if (o.method === m) return { kind: 'operation', operation: o };
    (allow ??= []).push(o.method.toUpperCase());
  }
  return allow ? { kind: 'method_not_allowed', allow: [...new Set(allow)].sort() } : { kind: 'no_route' };
}
