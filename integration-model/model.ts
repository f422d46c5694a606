import { readFile } from 'node:fs/promises';
import { IntegrationModelError, IntegrationModelErrorCode, invalidModel, type ModelIssue } from './errors';
import { parseSource, type Locator } from './parse';
import { escapePointerToken, isRecord, toPointer } from '../adapter';
import { resolveRef } from './pointer';
import { SchemaResolver } from './schema';
import { readSecuritySchemes } from './security';
import {
  HTTP_METHODS,
  type DroppedOperation,
  type HttpMethod,
  type IntegrationModel,
  type ModelOperation,
  type ModelServer,
  type OperationParameter,
  type OperationRequestBody,
  type OpenApiDocument,
  type OperationResponse,
  type ParameterLocation,
  type SecurityRequirement,
} from './types';
import { checkReferences, validateAgainstOfficialSchema, type DocumentVersion } from './validate';

export interface LoadIntegrationModelOptions {
  /** Names the source (a file path, an upload) in the error message. */
  sourceName?: string;
}

/**
 * Loads an integration model: YAML or JSON text, or a parsed object; OpenAPI 3.0.x or 3.1.x, or Swagger 2.0
 * (converted to OpenAPI 3.0 on import, as Itential does). The document is validated against the official schema
 * of its version, every `$ref` must resolve inside it, and every security requirement must name a declared scheme.
 * Operations without an operationId, or sharing one, are left out and listed in `dropped` with the reason.
 * @throws IntegrationModelError INVALID_MODEL listing every problem with its JSON Pointer (and line, for text).
 */
export async function loadIntegrationModel(source: string | object, opts: LoadIntegrationModelOptions = {}): Promise<IntegrationModel> {
  try {
    return await load(source);
  } catch (e) {
    if (e instanceof IntegrationModelError && opts.sourceName) {
      throw new IntegrationModelError(e.code, e.issues, `${opts.sourceName}: ${e.message}`);
    }
    throw e;
  }
}

/** {@link loadIntegrationModel} for a file, e.g. one under `openapi/integrations/`. */
export async function loadIntegrationModelFile(path: string): Promise<IntegrationModel> {
  return loadIntegrationModel(await readFile(path, 'utf8'), { sourceName: path });
}

async function load(source: string | object): Promise<IntegrationModel> {
  const { document: submitted, locate } = parseSource(source);
  const version = detectVersion(submitted);
  const sourceVersion = String(version === '2.0' ? submitted.swagger : submitted.openapi);

  // Problems are reported against the document as submitted, so the pointers (and lines) lead to the author's text.
  // All three checks run even when one fails, so an author sees every problem in one pass.
  failIfAny([...validateAgainstOfficialSchema(submitted, version), ...checkReferences(submitted), ...checkSecurityRequirements(submitted, version)], locate);

  // It passed the official schema of its version: from here on its objects have the shapes openapi-types gives.
  let document = submitted as unknown as OpenApiDocument;
  let locateIn: Locator = locate;
  if (version === '2.0') {
    // From here on pointers are into the converted document, which has no lines of its own.
    locateIn = () => undefined;
    document = await convertSwagger2(submitted);
    const afterConversion = validateAgainstOfficialSchema(document, '3.0');
    failIfAny(afterConversion.map((i) => ({ ...i, message: `after conversion from Swagger 2.0: ${i.message}` })), () => undefined);
  }
  const openapiVersion = String(document.openapi);
  const resolver = new SchemaResolver(document, openapiVersion);

  const security = readSecuritySchemes(document, resolver);
  failIfAny(security.errors, locateIn);
  const { operations, dropped } = readOperations(document, resolver);

  const warnings: ModelIssue[] = [...security.warnings];
  const servers = readServers(document);
  if (servers.length !== 1) {
    warnings.push({ path: '/servers', message: `an integration model should have exactly one server entry; this one has ${servers.length}` });
  }
  if (openapiVersion === '3.0.4') warnings.push({ path: '/openapi', message: 'Itential rejects OpenAPI 3.0.4; declare 3.0.3' });
  const applied = new Set(operations.flatMap((op) => op.security.flatMap((alt) => Object.keys(alt))));
  for (const scheme of security.schemes) {
    if (!applied.has(scheme.name)) {
      warnings.push({ path: `/components/securitySchemes/${escapePointerToken(scheme.name)}`, message: `security scheme '${scheme.name}' is declared but applied to no operation` });
    }
  }

  const { info } = document;
  const verbsUsed = new Set(operations.map((op) => op.method));
  return {
    id: `${info.title}:${info.version}`,
    title: info.title,
    version: info.version,
    ...(typeof info.description === 'string' ? { description: info.description } : {}),
    sourceVersion,
    document,
    servers,
    operations,
    dropped,
    securitySchemes: security.schemes,
    verbs: HTTP_METHODS.filter((m) => verbsUsed.has(m)),
    warnings: warnings.map((w) => withPosition(w, locateIn)),
  };
}

/** The operation of a model with this operationId. @throws IntegrationModelError UNKNOWN_OPERATION */
export function getOperation(model: IntegrationModel, operationId: string): ModelOperation {
  const op = model.operations.find((o) => o.operationId === operationId);
  if (!op) {
    const dropped = model.dropped.find((d) => d.operationId === operationId);
    const message = dropped ? `operation '${operationId}' was dropped: ${dropped.reason}` : `model '${model.id}' has no operation '${operationId}'`;
    throw new IntegrationModelError(IntegrationModelErrorCode.UNKNOWN_OPERATION, [{ path: '', message }], message);
  }
  return op;
}

function detectVersion(doc: Record<string, unknown>): DocumentVersion {
  if (doc.swagger !== undefined) {
    if (doc.swagger === '2.0') return '2.0';
    throw invalidModel([{ path: '/swagger', message: `unsupported Swagger version ${JSON.stringify(doc.swagger)}: only "2.0" is converted` }]);
  }
  if (typeof doc.openapi === 'string') {
    if (/^3\.0\.\d+$/.test(doc.openapi)) return '3.0';
    if (/^3\.1\.\d+$/.test(doc.openapi)) return '3.1';
  }
  if (doc.openapi === undefined) throw invalidModel([{ path: '', message: "not an OpenAPI document: neither 'openapi' nor 'swagger' is present" }]);
  throw invalidModel([{ path: '/openapi', message: `unsupported OpenAPI version ${JSON.stringify(doc.openapi)}: expected a string 3.0.x or 3.1.x` }]);
}

/** Enough to fix a document by; a wholly wrong one (say, a different format) could otherwise yield thousands. */
const MAX_ISSUES = 100;

function failIfAny(issues: readonly ModelIssue[], locate: Locator): void {
  if (issues.length === 0) return;
  const shown = issues.slice(0, MAX_ISSUES).map((i) => withPosition(i, locate));
  if (issues.length > MAX_ISSUES) shown.push({ path: '', message: `${issues.length - MAX_ISSUES} more problems not listed` });
  throw invalidModel(shown);
}

function withPosition(issue: ModelIssue, locate: Locator): ModelIssue {
  const pos = issue.line === undefined ? locate(issue.path) : undefined;
  return pos ? { ...issue, line: pos.line, column: pos.column } : issue;
}

async function convertSwagger2(document: Record<string, unknown>): Promise<OpenApiDocument> {
  try {
    // The source already validated against the 2.0 schema, so `patch` only smooths what the converter is
    // known to trip over (it never invents operations or schemes).
    // Required here, not at the top: only a Swagger 2.0 upload needs the converter, and loading it costs every start.
    const { convertObj } = require('swagger2openapi') as typeof import('swagger2openapi');
    const converted: unknown = await convertObj(document, { patch: true, warnOnly: false, direct: true, targetVersion: '3.0.3' });
    if (!isRecord(converted)) throw new Error('the converter returned no document');
    // Checked against the official 3.0 schema by the caller before it is read as one.
    return converted as unknown as OpenApiDocument;
  } catch (e) {
    throw invalidModel([{ path: '', message: `Swagger 2.0 conversion failed: ${(e as Error).message}` }]);
  }
}

/** Security requirements must name declared schemes; an undeclared one would make calls go out unauthenticated. */
function checkSecurityRequirements(doc: Record<string, unknown>, version: DocumentVersion): ModelIssue[] {
  const declaredAt = version === '2.0' ? doc.securityDefinitions : isRecord(doc.components) ? doc.components.securitySchemes : undefined;
  const declared = new Set(isRecord(declaredAt) ? Object.keys(declaredAt) : []);
  const issues: ModelIssue[] = [];
  const check = (requirements: unknown, at: (string | number)[]) => {
    if (!Array.isArray(requirements)) return;
    requirements.forEach((alt, i) => {
      if (!isRecord(alt)) return;
      for (const name of Object.keys(alt)) {
        if (!declared.has(name)) issues.push({ path: toPointer([...at, i, name]), message: `security scheme '${name}' is not declared` });
      }
    });
  };
  check(doc.security, ['security']);
  for (const [path, item] of Object.entries(isRecord(doc.paths) ? doc.paths : {})) {
    if (!isRecord(item)) continue;
    for (const method of HTTP_METHODS) {
      const op = item[method.toLowerCase()];
      if (isRecord(op)) check(op.security, ['paths', path, method.toLowerCase(), 'security']);
    }
  }
  return issues;
}

function readServers(doc: OpenApiDocument): ModelServer[] {
  return (doc.servers ?? []).map((s) => ({
    url: s.url,
    ...(typeof s.description === 'string' ? { description: s.description } : {}),
    ...(s.variables !== undefined ? { variables: structuredClone(s.variables) as ModelServer['variables'] } : {}),
  }));
}

/** Headers the OpenAPI specification says to ignore as parameters: the runtime and auth own them. */
const IGNORED_HEADER_PARAMETERS = new Set(['accept', 'content-type', 'authorization']);

interface Candidate {
  method: HttpMethod;
  path: string;
  operationId?: string;
  build: () => ModelOperation | string;
}

function readOperations(doc: OpenApiDocument, resolver: SchemaResolver): { operations: ModelOperation[]; dropped: DroppedOperation[] } {
  const candidates: Candidate[] = [];
  for (const [path, rawItem] of Object.entries(doc.paths ?? {})) {
    if (!path.startsWith('/')) continue; // `x-…` extensions of the Paths Object
    const item = resolveRef(doc, rawItem);
    if (!isRecord(item)) continue;
    for (const method of HTTP_METHODS) {
      const op = item[method.toLowerCase()];
      if (!isRecord(op)) continue;
      const operationId = typeof op.operationId === 'string' && op.operationId.trim() !== '' ? op.operationId : undefined;
      candidates.push({ method, path, ...(operationId ? { operationId } : {}), build: () => buildOperation(doc, resolver, path, method, item, op, operationId as string) });
    }
  }

  const uses = new Map<string, Candidate[]>();
  for (const c of candidates) if (c.operationId) uses.set(c.operationId, [...(uses.get(c.operationId) ?? []), c]);

  const operations: ModelOperation[] = [];
  const dropped: DroppedOperation[] = [];
  for (const c of candidates) {
    const where = { method: c.method, path: c.path, ...(c.operationId ? { operationId: c.operationId } : {}) };
    if (!c.operationId) {
      dropped.push({ ...where, reason: 'missing operationId' });
      continue;
    }
    const sharing = (uses.get(c.operationId) ?? []).filter((o) => o !== c);
    if (sharing.length > 0) {
      // All of them go: keeping "the first" would make a task's meaning depend on the order of the document.
      dropped.push({ ...where, reason: `duplicate operationId '${c.operationId}' (also ${sharing.map((o) => `${o.method} ${o.path}`).join(', ')})` });
      continue;
    }
    const built = c.build();
    if (typeof built === 'string') dropped.push({ ...where, reason: built });
    else operations.push(built);
  }
  return { operations, dropped };
}

function buildOperation(
  doc: OpenApiDocument,
  resolver: SchemaResolver,
  path: string,
  method: HttpMethod,
  item: Record<string, unknown>,
  op: Record<string, unknown>,
  operationId: string,
): ModelOperation | string {
  // Operation parameters override path-item parameters with the same name and location.
  const merged = new Map<string, Record<string, unknown>>();
  for (const raw of [...asArray(item.parameters), ...asArray(op.parameters)]) {
    const p = resolveRef(doc, raw);
    if (isRecord(p)) merged.set(`${String(p.in)}:${String(p.name)}`, p);
  }
  const parameters: OperationParameter[] = [];
  for (const p of merged.values()) {
    const location = p.in as ParameterLocation;
    const name = String(p.name);
    if (location === 'header' && IGNORED_HEADER_PARAMETERS.has(name.toLowerCase())) continue;
    const mediaSchema = isRecord(p.content) ? Object.values(p.content).find(isRecord)?.schema : undefined;
    parameters.push({
      name,
      in: location,
      required: location === 'path' ? true : p.required === true,
      ...(typeof p.description === 'string' ? { description: p.description } : {}),
      ...(p.deprecated === true ? { deprecated: true } : {}),
      schema: resolver.toJsonSchema(p.schema ?? mediaSchema ?? {}),
      ...(typeof p.style === 'string' ? { style: p.style } : {}),
      ...(typeof p.explode === 'boolean' ? { explode: p.explode } : {}),
    });
  }

  // A template variable without a declared parameter could never be filled; a declared one not in the template
  // would be silently ignored. Either way the task would not call what the model says.
  const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string);
  const declaredPath = parameters.filter((p) => p.in === 'path').map((p) => p.name);
  const undeclared = templated.filter((n) => !declaredPath.includes(n));
  if (undeclared.length > 0) return `path parameter${undeclared.length > 1 ? 's' : ''} ${undeclared.map((n) => `'${n}'`).join(', ')} not declared`;
  const untemplated = declaredPath.filter((n) => !templated.includes(n));
  if (untemplated.length > 0) return `path parameter${untemplated.length > 1 ? 's' : ''} ${untemplated.map((n) => `'${n}'`).join(', ')} not in the path template`;

  const requestBody = readRequestBody(doc, resolver, op.requestBody);
  const responses: OperationResponse[] = [];
  for (const [status, raw] of Object.entries(isRecord(op.responses) ? op.responses : {})) {
    if (status.startsWith('x-')) continue;
    const r = resolveRef(doc, raw);
    if (!isRecord(r)) continue;
    const content = isRecord(r.content) ? r.content : {};
    const contentTypes = Object.keys(content);
    const chosen = pickMediaType(contentTypes);
    const media = chosen !== undefined ? content[chosen] : undefined;
    responses.push({
      status,
      ...(typeof r.description === 'string' ? { description: r.description } : {}),
      contentTypes,
      ...(chosen !== undefined ? { schema: resolver.toJsonSchema(isRecord(media) && media.schema !== undefined ? media.schema : {}) } : {}),
    });
  }

  const security = (Array.isArray(op.security) ? op.security : Array.isArray(doc.security) ? doc.security : [])
    .filter(isRecord)
    .map((alt): SecurityRequirement => Object.fromEntries(Object.entries(alt).map(([k, v]) => [k, Array.isArray(v) ? v.map(String) : []])));

  return {
    operationId,
    method,
    path,
    ...(typeof op.summary === 'string' ? { summary: op.summary } : {}),
    ...(typeof op.description === 'string' ? { description: op.description } : {}),
    tags: asArray(op.tags).map(String),
    deprecated: op.deprecated === true,
    parameters,
    ...(requestBody ? { requestBody } : {}),
    responses,
    security,
    extensions: Object.fromEntries(Object.entries(op).filter(([k]) => k.startsWith('x-')).map(([k, v]) => [k, structuredClone(v)])),
  };
}

function readRequestBody(doc: OpenApiDocument, resolver: SchemaResolver, raw: unknown): OperationRequestBody | undefined {
  const body = resolveRef(doc, raw);
  if (!isRecord(body)) return undefined;
  const content = isRecord(body.content) ? body.content : {};
  const contentTypes = Object.keys(content);
  const contentType = pickMediaType(contentTypes) ?? 'application/json';
  const media = content[contentType];
  return {
    required: body.required === true,
    ...(typeof body.description === 'string' ? { description: body.description } : {}),
    contentTypes,
    contentType,
    schema: resolver.toJsonSchema(isRecord(media) && media.schema !== undefined ? media.schema : {}),
  };
}

/** JSON if offered (`application/json`, then any `…+json` or `…/json`), else the first media type. */
function pickMediaType(types: readonly string[]): string | undefined {
  const base = (t: string) => t.split(';')[0]!.trim().toLowerCase();
  return types.find((t) => base(t) === 'application/json') ?? types.find((t) => /[/+]json$/.test(base(t))) ?? types[0];
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
