import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { projectPath } from '../adapter';

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
}

export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
  security?: SecurityRequirement[];
  [key: string]: unknown;
}

/** The spec as a plain object, parsed once. */
export function loadSpec(path = SPEC_PATH): OpenApiDocument {
  return parse(readFileSync(path, 'utf8')) as OpenApiDocument;
}

const toRoutePath = (p: string) => p.replace(/\{([^}]+)\}/g, ':$1');
const toPattern = (p: string) =>
  new RegExp(`^${p.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '([^/]+)').replace(/\{[^}]+\}/g, '([^/]+)')}/?$`);

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
      });
    }
  }
  // Literal segments before templated ones, so `/admin/workflows/tasks` wins over `/admin/workflows/{id}`.
  return ops.sort((a, b) => a.path.split('{').length - b.path.split('{').length);
}

/** The operation a request path and method address, if any. */
export function findOperation(ops: readonly SpecOperation[], method: string, path: string): SpecOperation | undefined {
  const m = method.toLowerCase();
  return ops.find((o) => o.method === m && o.pattern.test(path));
}
