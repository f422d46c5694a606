import { createHash } from 'node:crypto';
import type { JsonSchema } from './types';
import { getByPointer, isRecord, parsePointer } from '../adapter';

/** Keywords whose value is one subschema. */
const SCHEMA_KEYWORDS = ['additionalProperties', 'items', 'not', 'if', 'then', 'else', 'contains', 'propertyNames', 'unevaluatedProperties', 'unevaluatedItems', 'additionalItems'];
/** Keywords whose value is a list of subschemas. */
const SCHEMA_LIST_KEYWORDS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];
/** Keywords whose value maps names to subschemas. */
const SCHEMA_MAP_KEYWORDS = ['properties', 'patternProperties', 'dependentSchemas', '$defs', 'definitions'];
/**
 * OpenAPI annotations that are not JSON Schema: a strict validator rejects them, and nothing downstream needs them.
 * `$id`/`$schema` go too, because a nested `$id` would change what the inlined `#/$defs/…` references mean.
 */
const DROPPED_KEYWORDS = new Set(['discriminator', 'xml', 'externalDocs', 'nullable', 'example', '$id', '$schema', '$anchor', '$dynamicAnchor']);

/**
 * Turns OpenAPI Schema Objects into self-contained JSON Schemas (2020-12 compatible): local `$ref`s are inlined,
 * OpenAPI 3.0's dialect (`nullable`, boolean `exclusiveMinimum`, `example`) is rewritten as JSON Schema, and a
 * recursive schema is emitted once under `$defs` and referenced from there. One resolver serves one document; its
 * `$defs` names derive from the document pointer, so schemas from several calls can be merged under one root.
 */
export class SchemaResolver {
  readonly #document: Record<string, unknown>;
  readonly #openapi30: boolean;

  constructor(document: Record<string, unknown>, openapiVersion: string) {
    this.#document = document;
    this.#openapi30 = openapiVersion.startsWith('3.0');
  }

  /** A self-contained JSON Schema for an OpenAPI Schema Object (with `$defs` at its root if it recurses). */
  toJsonSchema(node: unknown): JsonSchema {
    const defs = new Map<string, { name: string; schema?: JsonSchema }>();
    const result = this.#convert(node, [], defs);
    // Definitions are filled after the fact: converting one may discover further cycles (and more definitions).
    for (let pending = [...defs].filter(([, d]) => !d.schema); pending.length > 0; pending = [...defs].filter(([, d]) => !d.schema)) {
      for (const [pointer, def] of pending) def.schema = this.#convert(getByPointer(this.#document, pointer), [pointer], defs);
    }
    if (defs.size === 0) return result;
    const $defs = Object.fromEntries([...defs.values()].map((d) => [d.name, d.schema as JsonSchema]));
    return isRecord(result) ? { ...result, $defs: { ...(result.$defs as Record<string, unknown> | undefined), ...$defs } } : { allOf: [result], $defs };
  }

  #convert(node: unknown, stack: readonly string[], defs: Map<string, { name: string; schema?: JsonSchema }>): JsonSchema {
    if (typeof node === 'boolean') return node;
    if (!isRecord(node)) return {};

    if (typeof node.$ref === 'string') {
      const pointer = decodeURIComponent(node.$ref.slice(1));
      let target: JsonSchema;
      if (stack.includes(pointer)) {
        if (!defs.has(pointer)) defs.set(pointer, { name: defName(pointer) });
        target = { $ref: `#/$defs/${encodeURIComponent((defs.get(pointer) as { name: string }).name)}` };
      } else {
        target = this.#convert(getByPointer(this.#document, pointer), [...stack, pointer], defs);
      }
      // OpenAPI 3.0 ignores a $ref's siblings; 3.1 (JSON Schema 2020-12) applies them alongside it.
      const siblings = Object.keys(node).filter((k) => k !== '$ref');
      if (this.#openapi30 || siblings.length === 0) return target;
      const rest = this.#convertObject(Object.fromEntries(siblings.map((k) => [k, node[k]])), stack, defs);
      return { ...rest, allOf: [target, ...(Array.isArray(rest.allOf) ? rest.allOf : [])] };
    }
    return this.#convertObject(node, stack, defs);
  }

  #convertObject(node: Record<string, unknown>, stack: readonly string[], defs: Map<string, { name: string; schema?: JsonSchema }>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      if (DROPPED_KEYWORDS.has(key) || key.startsWith('x-')) continue;
      if (SCHEMA_KEYWORDS.includes(key) && (isRecord(value) || typeof value === 'boolean')) {
        out[key] = this.#convert(value, stack, defs);
      } else if (key === 'items' && Array.isArray(value)) {
        // The draft-04 tuple form (not valid OpenAPI, but seen in the wild) is `prefixItems` in 2020-12.
        out.prefixItems = value.map((v) => this.#convert(v, stack, defs));
      } else if (SCHEMA_LIST_KEYWORDS.includes(key) && Array.isArray(value)) {
        out[key] = value.map((v) => this.#convert(v, stack, defs));
      } else if (SCHEMA_MAP_KEYWORDS.includes(key) && isRecord(value)) {
        out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.#convert(v, stack, defs)]));
      } else {
        out[key] = structuredClone(value);
      }
    }
    if (node.example !== undefined && out.examples === undefined) out.examples = [structuredClone(node.example)];

    if (this.#openapi30) {
      // Draft-04 style exclusive bounds: a boolean beside minimum/maximum.
      for (const [exclusive, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
        if (typeof out[exclusive] === 'boolean') {
          if (out[exclusive] === true && typeof out[bound] === 'number') {
            out[exclusive] = out[bound];
            delete out[bound];
          } else {
            delete out[exclusive];
          }
        }
      }
      if (node.nullable === true) return makeNullable(out);
    }
    return out;
  }
}

function makeNullable(schema: Record<string, unknown>): Record<string, unknown> {
  if (typeof schema.type === 'string') {
    const out: Record<string, unknown> = { ...schema, type: [schema.type, 'null'] };
    if (Array.isArray(schema.enum) && !schema.enum.includes(null)) out.enum = [...schema.enum, null];
    return out;
  }
  if (Object.keys(schema).length === 0) return schema;
  return { anyOf: [schema, { type: 'null' }] };
}

/** A stable, `$defs`-safe name for the schema at a document pointer (readable for component schemas). */
function defName(pointer: string): string {
  const tokens = parsePointer(pointer);
  const readable = tokens.length === 3 && tokens[0] === 'components' && tokens[1] === 'schemas' ? (tokens[2] as string) : tokens.join('.');
  const safe = readable.replace(/[^A-Za-z0-9_.-]/g, '_');
  return safe === readable ? safe : `${safe}_${createHash('sha256').update(pointer).digest('hex').slice(0, 8)}`;
}

/** Moves a schema's root `$defs` out, so several schemas can be combined under one root that holds them all. */
export function hoistDefinitions(schema: JsonSchema, into: Record<string, JsonSchema>): JsonSchema {
  if (!isRecord(schema) || !isRecord(schema.$defs)) return schema;
  const { $defs, ...rest } = schema;
  Object.assign(into, $defs);
  return rest;
}
