/**
 * Turning a runtime JSON Schema (what a task's input must be once rendered) into the schema its document form must
 * satisfy: anywhere a value is expected, a whole-string template (`"{{inputs.count}}"`, `"$var.a.b"`) may stand in for
 * it, and a constrained string may also be text with embedded placeholders. One source of truth gives both the
 * palette's input schema and the save-time check.
 */

export type JsonSchema = boolean | { [keyword: string]: unknown };
type SchemaObject = { [keyword: string]: unknown };

/** `$comment` on the template alternatives this module adds; validation errors from them are noise and dropped. */
export const TEMPLATE_MARK = 'provisio:template';
/** `$comment` on the anyOf wrappers this module adds. */
export const TEMPLATABLE_MARK = 'provisio:templatable';
/** `$comment` a schema author puts on a node that must be a literal (an operator, an enum of modes). */
export const STATIC_MARK = 'provisio:static';

/** A string that is exactly one `{{...}}` placeholder or one `$var.<task>.<name>[.path]` reference. */
export const WHOLE_TEMPLATE_PATTERN = '^(\\{\\{[^{}]+\\}\\}|\\$var\\.[A-Za-z0-9_$-]+\\.[A-Za-z0-9_$-]+(\\.[A-Za-z0-9_$-]+)*)$';
/** A string that holds a placeholder somewhere, or is a `$var` reference. */
export const ANY_TEMPLATE_PATTERN = '(\\{\\{)|(^\\$var\\.)';

const WHOLE: SchemaObject = { $comment: TEMPLATE_MARK, type: 'string', pattern: WHOLE_TEMPLATE_PATTERN };
const EMBEDDED: SchemaObject = { $comment: TEMPLATE_MARK, type: 'string', pattern: ANY_TEMPLATE_PATTERN };

const STRING_CONSTRAINTS = ['pattern', 'format', 'enum', 'const'];
const CONSTRAINING = ['type', 'enum', 'const', 'pattern', 'format', 'properties', 'items', 'anyOf', 'oneOf', 'allOf', '$ref', 'not', 'required', 'additionalProperties', 'minimum', 'maximum', 'minItems', 'maxItems'];

function isObject(v: unknown): v is SchemaObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function types(s: SchemaObject): string[] | undefined {
  if (typeof s.type === 'string') return [s.type];
  if (Array.isArray(s.type)) return s.type as string[];
  return undefined;
}

function mapValues(o: unknown, f: (s: JsonSchema) => JsonSchema): unknown {
  if (!isObject(o)) return o;
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v as JsonSchema)]));
}

function transform(schema: JsonSchema, wrapSelf: boolean): JsonSchema {
  if (!isObject(schema)) return schema;
  if (schema.$comment === STATIC_MARK) return schema;
  const out: SchemaObject = { ...schema };
  const sub = (s: JsonSchema): JsonSchema => transform(s, true);
  if (out.properties) out.properties = mapValues(out.properties, sub);
  if (out.patternProperties) out.patternProperties = mapValues(out.patternProperties, sub);
  if (isObject(out.additionalProperties)) out.additionalProperties = sub(out.additionalProperties);
  if (Array.isArray(out.items)) out.items = (out.items as JsonSchema[]).map(sub);
  else if (isObject(out.items)) out.items = sub(out.items);
  if (isObject(out.additionalItems)) out.additionalItems = sub(out.additionalItems);
  // Branches describe the same value: only their children become templatable; the node itself is wrapped once.
  for (const k of ['anyOf', 'oneOf', 'allOf']) {
    if (Array.isArray(out[k])) out[k] = (out[k] as JsonSchema[]).map((b) => transform(b, false));
  }
  if (isObject(out.then)) out.then = transform(out.then, false);
  if (isObject(out.else)) out.else = transform(out.else, false);
  for (const k of ['$defs', 'definitions']) if (out[k]) out[k] = mapValues(out[k], sub);
  if (!wrapSelf) return out;

  if (!CONSTRAINING.some((k) => k in out)) return out; // accepts anything already
  const t = types(out);
  const onlyString = t !== undefined && t.length === 1 && t[0] === 'string';
  if (onlyString && !STRING_CONSTRAINTS.some((k) => k in out)) return out; // a template is a string: already fine
  const mayBeString = t === undefined || t.includes('string');
  return { $comment: TEMPLATABLE_MARK, anyOf: [out, mayBeString ? EMBEDDED : WHOLE] };
}

/**
 * The document form of a runtime schema. `$defs`/`definitions` of the root stay at the root so `$ref`s still resolve.
 */
export function templatable(schema: JsonSchema): JsonSchema {
  if (!isObject(schema)) return schema;
  const { $defs, definitions, ...rest } = schema;
  const body = transform(rest, true);
  if (!isObject(body)) return body;
  const defs: SchemaObject = {};
  if ($defs !== undefined) defs.$defs = mapValues($defs, (s) => transform(s, true));
  if (definitions !== undefined) defs.definitions = mapValues(definitions, (s) => transform(s, true));
  return { ...body, ...defs };
}
