import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { escapePointerToken as escapePointer, isRecord, onFirstUse, unescapePointerToken as unescapePointer } from '../../adapter';
import type { WorkflowIssue } from './issues';
import { WORKFLOW_DOCUMENT_SCHEMA } from './schema';
import { TEMPLATABLE_MARK, TEMPLATE_MARK, type JsonSchema } from './templatable';
import { TASK_KINDS } from './types';

// One strict validator for our own schema, compiled once, on the first document checked (the tests that check
// documents fail on a typo in it).
const validateDocumentSchema = onFirstUse((): ValidateFunction => {
  const documentAjv = new Ajv({ allErrors: true, verbose: true, discriminator: true, strict: true, strictRequired: false, strictTypes: false, allowUnionTypes: true });
  return documentAjv.compile(WORKFLOW_DOCUMENT_SCHEMA as object);
});

/**
 * Schemas we did not write (a run's inputSchema, an integration operation's input schema) may carry OpenAPI
 * keywords such as `example` or `x-*`: compile them leniently, and check formats with ajv-formats.
 */
const foreignAjv = onFirstUse(() => addFormats(new Ajv({ allErrors: true, verbose: true, strict: false, logger: false, allowUnionTypes: true })));

/** A run's inputs are checked with defaults filled in (`useDefaults`), so a run records what it really ran with. */
const inputAjv = onFirstUse(() => addFormats(new Ajv({ allErrors: true, strict: false, logger: false, allowUnionTypes: true, useDefaults: true })));

/** The task a document pointer is about: `/tasks/<id>/...`, `/steps/<i>/...` (by the step's id), `/transitions/<from>`. */
export function taskIdAt(doc: unknown, path: string): string | null {
  const segs = path.split('/').slice(1).map(unescapePointer);
  if (segs.length < 2 || !isRecord(doc)) return null;
  const [section, key] = segs as [string, string];
  if (section === 'tasks' || section === 'transitions') return key === 'workflow_start' || key === 'workflow_end' ? null : key;
  if (section === 'steps' && Array.isArray(doc.steps)) {
    const step = doc.steps[Number(key)] as unknown;
    return isRecord(step) && typeof step.id === 'string' ? step.id : null;
  }
  return null;
}

function schemaOf(e: ErrorObject): Record<string, unknown> | undefined {
  return isRecord(e.parentSchema) ? e.parentSchema : undefined;
}

/**
 * Ajv's raw errors, made readable: template alternatives and their wrappers dropped (the real branch's error says
 * more), an anyOf/not with a `description` reported once in its words, and the offending property named in the path.
 */
export function formatSchemaErrors(errors: ErrorObject[], basePath = ''): { path: string; message: string; keyword: string; params: Record<string, unknown> }[] {
  const described = errors.filter((e) => (e.keyword === 'anyOf' || e.keyword === 'not' || e.keyword === 'oneOf') && typeof schemaOf(e)?.description === 'string' && schemaOf(e)?.$comment !== TEMPLATABLE_MARK);
  const out: { path: string; message: string; keyword: string; params: Record<string, unknown> }[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const parent = schemaOf(e);
    if (parent?.$comment === TEMPLATE_MARK) continue;
    if (e.keyword === 'anyOf' && parent?.$comment === TEMPLATABLE_MARK) continue;
    if (e.keyword === 'if') continue; // the `then` branch's own errors say what is wrong
    // A missing tag: `required` says it. A tag that is there but not a string is reported below as the kind's error.
    if (e.keyword === 'discriminator' && (e.params as { error?: string }).error === 'tag' && (e.params as { tagValue?: unknown }).tagValue === undefined) continue;
    if (!described.includes(e) && described.some((d) => e.schemaPath.startsWith(`${d.schemaPath}/`) && e.instancePath.startsWith(d.instancePath))) continue;
    let path = basePath + e.instancePath;
    let message = e.message ?? 'is invalid';
    const params = e.params as Record<string, unknown>;
    if (described.includes(e)) message = `must be ${String(parent?.description)}`;
    if (e.keyword === 'additionalProperties') {
      path += `/${escapePointer(String(params.additionalProperty))}`;
      message = 'is not a known property here';
    } else if (e.keyword === 'required') {
      message = `must have required property '${String(params.missingProperty)}'`;
    } else if (e.keyword === 'propertyNames' || e.propertyName !== undefined) {
      if (e.keyword === 'propertyNames') continue; // reported by the inner error, which names the property
      path += `/${escapePointer(String(e.propertyName))}`;
      const rule = typeof parent?.description === 'string' ? `: ${parent.description}` : e.keyword === 'pattern' ? ` (${message})` : '';
      message = `is not a valid name here${rule}`;
    } else if (e.keyword === 'enum') {
      message = `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    }
    const key = `${path}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path, message, keyword: e.keyword, params });
  }
  return out;
}

/** Checks a document against {@link WORKFLOW_DOCUMENT_SCHEMA}; every issue points at its task where there is one. */
export function validateWorkflowDocument(doc: unknown): WorkflowIssue[] {
  const validate = validateDocumentSchema();
  if (validate(doc)) return [];
  const issues = formatSchemaErrors(validate.errors ?? []).map((e): WorkflowIssue => {
    const taskId = taskIdAt(doc, e.path);
    if (e.keyword === 'discriminator') {
      const tag = (e.params as { tagValue?: unknown }).tagValue;
      const what = typeof tag === 'string' ? `unknown task kind ${JSON.stringify(tag)}` : `task kind must be a string, not ${JSON.stringify(tag)}`;
      return { code: 'UNKNOWN_KIND', taskId, path: `${e.path}/kind`, message: `${what}: expected one of ${TASK_KINDS.join(', ')}` };
    }
    return { code: 'SCHEMA', taskId, path: e.path, message: e.message };
  });
  // The schema refused the document: never let it through to the compiler, even if every error was filtered as noise.
  return issues.length > 0 ? issues : [{ code: 'SCHEMA', taskId: null, path: '', message: 'the document does not match the workflow document schema' }];
}

/** Compiles a schema we did not write; returns the validator or the compile error's message. */
export function compileForeignSchema(schema: JsonSchema): ValidateFunction | string {
  try {
    // Without its $id: the same schema saved twice (or two documents sharing an $id) must not collide in ajv's registry.
    const anonymous = isRecord(schema) ? (({ $id: _id, ...rest }) => rest)(schema) : schema;
    const validate = foreignAjv().compile(anonymous as object);
    // The validator stays usable; dropping it from ajv's cache keeps one save after another from growing memory.
    foreignAjv().removeSchema(anonymous as object);
    return validate;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Compiles a workflow's `inputSchema` into a validator that fills in defaults. The returned function checks a COPY
 * of the inputs and answers the defaulted copy, or the first problem as a pointer under the inputs and a message.
 */
export function compileInputValidator(
  schema: JsonSchema,
): (inputs: Record<string, unknown>) => { ok: true; inputs: Record<string, unknown> } | { ok: false; path: string; message: string } {
  const anonymous = isRecord(schema) ? (({ $id: _id, ...rest }) => rest)(schema) : schema;
  const validate = inputAjv().compile(anonymous as object);
  inputAjv().removeSchema(anonymous as object);
  return (inputs) => {
    const copy = structuredClone(inputs);
    if (validate(copy)) return { ok: true, inputs: copy };
    const first = formatSchemaErrors(validate.errors ?? [])[0];
    if (!first) return { ok: false, path: '', message: 'is invalid' };
    // A missing input is about that input, not the object holding it.
    const path = first.keyword === 'required' ? `${first.path}/${escapePointer(String(first.params.missingProperty))}` : first.path;
    return { ok: false, path, message: first.message };
  };
}
