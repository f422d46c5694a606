import { isRecord } from '../adapter';
import { hoistDefinitions } from './schema';
import { HTTP_METHODS, type JsonSchema, type ModelOperation, type ParameterLocation } from './types';

/** Input sections of a task, by parameter location. */
const SECTIONS: Record<ParameterLocation, string> = { path: 'path', query: 'query', header: 'headers', cookie: 'cookies' };

/**
 * The JSON Schema of a task's input: `{path, query, headers, cookies, body}`, each section present only when the
 * operation has something for it, and required when it holds a required parameter (or the body is required).
 */
export function operationInputSchema(op: ModelOperation): JsonSchema {
  const defs: Record<string, JsonSchema> = {};
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];

  for (const [location, section] of Object.entries(SECTIONS) as [ParameterLocation, string][]) {
    const params = op.parameters.filter((p) => p.in === location);
    if (params.length === 0) continue;
    const sectionRequired = params.filter((p) => p.required).map((p) => p.name);
    properties[section] = {
      type: 'object',
      properties: Object.fromEntries(params.map((p) => [p.name, describe(hoistDefinitions(p.schema, defs), p.description)])),
      ...(sectionRequired.length > 0 ? { required: sectionRequired } : {}),
      additionalProperties: false,
    };
    if (sectionRequired.length > 0) required.push(section);
  }
  if (op.requestBody) {
    properties.body = describe(hoistDefinitions(op.requestBody.schema, defs), op.requestBody.description);
    if (op.requestBody.required) required.push('body');
  }

  return {
    title: `${op.operationId} input`,
    type: 'object',
    properties,
    ...(required.length > 0 ? { required } : {}),
    additionalProperties: false,
    ...(Object.keys(defs).length > 0 ? { $defs: defs } : {}),
  };
}

/**
 * The JSON Schema of a task's output: the standard response envelope, with `body` typed by the operation's 2xx
 * responses (several different ones become `anyOf`; none, or none with content, leaves `body` open). The envelope
 * of a failed call has the same fields with the server's error body, so `body` is typed for successes only.
 */
export function operationOutputSchema(op: ModelOperation): JsonSchema {
  const defs: Record<string, JsonSchema> = {};
  const success = op.responses.filter((r) => /^2(\d\d|XX)$/i.test(r.status));
  const bodies = success.filter((r) => r.schema !== undefined).map((r) => hoistDefinitions(r.schema as JsonSchema, defs));
  const distinct = bodies.filter((s, i) => bodies.findIndex((o) => JSON.stringify(o) === JSON.stringify(s)) === i);
  const body: JsonSchema = distinct.length === 0 ? {} : distinct.length === 1 ? (distinct[0] as JsonSchema) : { anyOf: distinct };
  const schema = responseEnvelopeSchema(describe(body, success.map((r) => r.description).filter(Boolean).join(' / ') || undefined));
  return {
    title: `${op.operationId} output`,
    ...(schema as Record<string, unknown>),
    ...(Object.keys(defs).length > 0 ? { $defs: defs } : {}),
  };
}

/**
 * The response envelope every call returns (as Itential's integrations do; `buildEnvelope` in adapter/http makes it):
 * always `ok`, `method`, `url`, `status`, `statusText` and `headers`; then `body` when the response parsed as JSON
 * (null when it was empty), or else `text` with `parseError`. Header names are lower case; a value is a string, or a
 * list for a repeated header. Closed, so a workflow reading a field the envelope never has is refused on save.
 * The one schema of the envelope: task output schemas (here) and the runbook `integration` kind both use it.
 */
export function responseEnvelopeSchema(body: JsonSchema = {}): JsonSchema {
  return {
    type: 'object',
    properties: {
      ok: { type: 'boolean', description: 'true when the status is 2xx' },
      method: { type: 'string', enum: [...HTTP_METHODS] },
      url: { type: 'string' },
      status: { type: 'integer' },
      statusText: { type: 'string' },
      headers: { type: 'object', additionalProperties: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] } },
      body,
      text: { type: 'string', description: 'the raw response text, when the body could not be parsed' },
      parseError: {
        type: 'object',
        description: 'why the body could not be parsed',
        properties: { name: { type: 'string' }, message: { type: 'string' } },
        required: ['name', 'message'],
        additionalProperties: false,
      },
    },
    required: ['ok', 'method', 'url', 'status', 'statusText', 'headers'],
    additionalProperties: false,
  };
}

function describe(schema: JsonSchema, description: string | undefined): JsonSchema {
  if (!description) return schema;
  if (schema === true) return { description };
  if (!isRecord(schema) || typeof schema.description === 'string') return schema;
  return { ...schema, description };
}
