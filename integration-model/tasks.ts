import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { IntegrationCallRequest, QueryValue } from '../adapter';
import { escapePointerToken as escapeToken, isRecord } from '../adapter';
import { resolveRef } from './pointer';
import { InvocationError } from './runtime/errors';
import { operationInputSchema, operationOutputSchema } from './task-schemas';
import type { HttpMethod, IntegrationModel, JsonSchema, ModelOperation } from './types';

/**
 * One canvas task: an operation of an integration's model, named `<integration>/<operationId>`, callable by
 * whoever holds `requiredRole` (or the integration's admin role).
 */
export interface IntegrationTask {
  name: string;
  operationId: string;
  method: HttpMethod;
  path: string;
  summary?: string;
  inputSchema: JsonSchema;
  outputSchema: JsonSchema;
  requiredRole: string;
}

/** The kinds of role generated for an integration: `admin`, then one per HTTP verb its model uses. */
export function integrationRoleKinds(model: Pick<IntegrationModel, 'verbs'>): string[] {
  return ['admin', ...model.verbs];
}

/** A role's name as operators see it: `<integration name>:<admin | verb>`. */
export function integrationRoleName(integrationName: string, kind: string): string {
  return `${integrationName}:${kind}`;
}

/** Every operation of `model` as a task of the integration named `integrationName`. */
export function integrationTasks(model: IntegrationModel, integrationName: string): IntegrationTask[] {
  return model.operations.map((op) => ({
    name: `${integrationName}/${op.operationId}`,
    operationId: op.operationId,
    method: op.method,
    path: op.path,
    ...(op.summary !== undefined ? { summary: op.summary } : {}),
    inputSchema: operationInputSchema(op),
    outputSchema: operationOutputSchema(op),
    requiredRole: integrationRoleName(integrationName, op.method),
  }));
}

/** One problem with a task input: an RFC 6901 pointer into the input, and why. */
export interface TaskInputIssue {
  path: string;
  message: string;
}

// The task schemas are 2020-12 (`$defs`); vendor schemas carry keywords Ajv does not know (`example`, `xml`, …),
// so strict mode is off. Validators are compiled once per operation object (models are cached by the caller).
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
const compiled = new WeakMap<ModelOperation, ValidateFunction>();

/** Checks a task input against {@link operationInputSchema}; an empty list means valid. */
export function validateTaskInput(op: ModelOperation, input: unknown): TaskInputIssue[] {
  let validate = compiled.get(op);
  if (!validate) {
    validate = ajv.compile(operationInputSchema(op) as object);
    compiled.set(op, validate);
  }
  if (validate(input)) return [];
  return (validate.errors ?? []).map(inputIssue);
}

function inputIssue(e: ErrorObject): TaskInputIssue {
  if (e.keyword === 'required') return { path: `${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}`, message: 'is required' };
  if (e.keyword === 'additionalProperties') {
    return { path: `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}`, message: 'is not a parameter of this operation' };
  }
  return { path: e.instancePath, message: e.message ?? 'is invalid' };
}

/** A task input as {@link operationInputSchema} describes it. */
export interface TaskInput {
  path?: Record<string, unknown>;
  query?: Record<string, unknown>;
  headers?: Record<string, unknown>;
  cookies?: Record<string, unknown>;
  body?: unknown;
}

/**
 * The HTTP request a (validated, see {@link validateTaskInput}) task input stands for: every `{name}` of the path
 * template substituted with `input.path.name`, percent-encoded (so `a/b` cannot climb to another resource); query,
 * headers and cookies set; the body sent with the operation's media type. The one request builder of every call.
 * @throws InvocationError VALIDATION_FAILED for a path parameter without a value (which no request may leave empty).
 */
export function buildTaskRequest(op: Pick<ModelOperation, 'method' | 'path' | 'requestBody'>, input: TaskInput): IntegrationCallRequest {
  const pathValues = input.path ?? {};
  const path = op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const v = Object.prototype.hasOwnProperty.call(pathValues, name) ? pathValues[name] : undefined;
    if (v === undefined || v === null || v === '') throw InvocationError.invalidInput([{ path: `/path/${escapeToken(name)}`, message: 'has no value' }]);
    return encodeURIComponent(scalar(v));
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers ?? {})) if (v !== undefined && v !== null) headers[k] = scalar(v);
  const cookies = Object.entries(input.cookies ?? {}).filter(([, v]) => v !== undefined && v !== null);
  if (cookies.length > 0) headers['Cookie'] = cookies.map(([k, v]) => `${k}=${encodeURIComponent(scalar(v))}`).join('; ');
  const query: Record<string, QueryValue> = {};
  for (const [k, v] of Object.entries(input.query ?? {})) {
    if (v === undefined || v === null) continue;
    query[k] = Array.isArray(v) ? v.map((x) => scalar(x)) : typeof v === 'number' || typeof v === 'boolean' ? v : scalar(v);
  }
  const request: IntegrationCallRequest = { method: op.method, path, headers };
  if (Object.keys(query).length > 0) request.query = query;
  if (input.body !== undefined && op.requestBody) {
    headers['Content-Type'] = op.requestBody.contentType;
    // The runtime sends strings as they are and anything else as JSON: a JSON string value must be encoded here.
    const json = /[/+]json$/i.test(op.requestBody.contentType.split(';')[0]!.trim());
    request.body = typeof input.body === 'string' ? (json ? JSON.stringify(input.body) : input.body) : input.body;
  }
  return request;
}

function scalar(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** A response the model documents with an example, for stub mode. */
export interface ResponseExample {
  status: number;
  contentType: string | undefined;
  /** Absent when the chosen response documents no example (e.g. a 204). */
  example?: unknown;
}

/**
 * What stub mode answers for `op`: the first 2xx response (in document order) that carries an example
 * (`example`, the first of `examples`, or the schema's `example`), else the first 2xx without one, else undefined.
 * `2XX` ranges count as 200.
 */
export function responseExample(model: IntegrationModel, op: ModelOperation): ResponseExample | undefined {
  const doc = model.document;
  const paths = isRecord(doc.paths) ? doc.paths : {};
  const item = resolveRef(doc, paths[op.path]);
  const raw = isRecord(item) ? resolveRef(doc, item[op.method.toLowerCase()]) : undefined;
  const responses = isRecord(raw) && isRecord(raw.responses) ? raw.responses : {};
  let firstWithout: ResponseExample | undefined;
  for (const [code, rawResponse] of Object.entries(responses)) {
    if (!/^2(\d\d|XX)$/i.test(code)) continue;
    const status = /XX$/i.test(code) ? 200 : Number(code);
    const response = resolveRef(doc, rawResponse);
    const content = isRecord(response) && isRecord(response.content) ? response.content : {};
    const types = Object.keys(content);
    const ordered = [...types.filter((t) => /[/+]json\b/i.test(t)), ...types.filter((t) => !/[/+]json\b/i.test(t))];
    for (const type of ordered) {
      const found = exampleOf(doc, content[type]);
      if (found.found) return { status, contentType: type, example: found.value };
    }
    firstWithout ??= { status, contentType: ordered[0] };
  }
  return firstWithout;
}

function exampleOf(doc: Record<string, unknown>, rawMedia: unknown): { found: boolean; value?: unknown } {
  const media = resolveRef(doc, rawMedia);
  if (!isRecord(media)) return { found: false };
  if (media.example !== undefined) return { found: true, value: media.example };
  if (isRecord(media.examples)) {
    for (const ex of Object.values(media.examples)) {
      const e = resolveRef(doc, ex);
      if (isRecord(e) && e.value !== undefined) return { found: true, value: e.value };
    }
  }
  const schema = resolveRef(doc, media.schema);
  if (isRecord(schema)) {
    if (schema.example !== undefined) return { found: true, value: schema.example };
    if (Array.isArray(schema.examples) && schema.examples.length > 0) return { found: true, value: schema.examples[0] };
  }
  return { found: false };
}
