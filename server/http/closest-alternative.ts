import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { ErrorRequestHandler } from 'express';
import type { OpenApiDocument } from '../spec';

/**
 * A body that must match one of several schemas (`anyOf`/`oneOf`, e.g. the HR leaver's Workday, SuccessFactors,
 * Graph and native formats) and matches none gets every alternative's errors from the spec validator: a native
 * event with a bad `email` was told it also lacks Workday's `Event_Type`. This narrows such a refusal to the
 * alternative the body came closest to (fewest errors; a tie goes to the one listed first), names that alternative,
 * and drops the others' errors. The validator keeps the verdict; only what it says is narrowed.
 */

interface ValidatorErrorLike {
  status: number;
  message: string;
  errors: { path: string; message: string; errorCode?: string }[];
}

interface Alternative {
  name: string;
  validate: ValidateFunction;
}

const SPEC_ID = 'provisio-spec';
const ALTERNATIVE_FAILED = /^must match (a schema in anyOf|exactly one schema in oneOf)$/;

const isValidatorError = (e: unknown): e is ValidatorErrorLike =>
  typeof e === 'object' && e !== null && (e as ValidatorErrorLike).status === 400 && Array.isArray((e as ValidatorErrorLike).errors);

type SchemaNode = Record<string, unknown>;
const asNode = (v: unknown): SchemaNode | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as SchemaNode) : undefined);

/** Follows local `$ref`s (`#/components/schemas/X`) to the schema they name, remembering the last name seen. */
function resolve(spec: OpenApiDocument, node: SchemaNode | undefined): { node: SchemaNode | undefined; pointer: string | undefined } {
  let pointer: string | undefined;
  for (let hops = 0; node && typeof node['$ref'] === 'string' && hops < 16; hops++) {
    pointer = node['$ref'] as string;
    let target: unknown = spec;
    for (const part of pointer.replace(/^#\//, '').split('/')) target = asNode(target)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    node = asNode(target);
  }
  return { node, pointer };
}

/** The JSON body schema of each operation (by method and OpenAPI path) whose top level is `anyOf`/`oneOf`, compiled per alternative. */
function compileAlternatives(spec: OpenApiDocument): Map<string, Alternative[]> {
  // The spec is OpenAPI 3.0: `nullable` is understood, `example` and other annotations are ignored (strict: false).
  const ajv = new Ajv({ allErrors: true, strict: false, logger: false, validateSchema: false });
  addFormats(ajv);
  ajv.addSchema(spec as object, SPEC_ID);
  const out = new Map<string, Alternative[]>();
  for (const [path, item] of Object.entries(asNode(spec.paths) ?? {})) {
    for (const [method, op] of Object.entries(asNode(item) ?? {})) {
      const bodySchema = asNode(asNode(asNode(asNode(asNode(op)?.['requestBody'])?.['content'])?.['application/json'])?.['schema']);
      const { node, pointer } = resolve(spec, bodySchema);
      const kind = node && Array.isArray(node['anyOf']) ? 'anyOf' : node && Array.isArray(node['oneOf']) ? 'oneOf' : undefined;
      if (!node || !kind || !pointer) continue;
      const alternatives = (node[kind] as unknown[]).map((branch, i): Alternative => {
        const b = asNode(branch) ?? {};
        const named = resolve(spec, b);
        const title = typeof named.node?.['title'] === 'string' ? (named.node['title'] as string) : undefined;
        const refName = named.pointer?.split('/').pop();
        return {
          name: title ?? refName ?? `alternative ${i + 1}`,
          validate: ajv.compile({ $ref: `${SPEC_ID}${pointer}/${kind}/${i}` }),
        };
      });
      out.set(`${method.toUpperCase()} ${path}`, alternatives);
    }
  }
  return out;
}

function toFieldErrors(errors: readonly ErrorObject[]): { path: string; message: string }[] {
  return errors.map((e) => {
    const missing = e.keyword === 'required' ? `/${String((e.params as { missingProperty?: unknown }).missingProperty)}` : '';
    const extra = e.keyword === 'additionalProperties' ? `/${String((e.params as { additionalProperty?: unknown }).additionalProperty)}` : '';
    return { path: `/body${e.instancePath}${missing}${extra}`, message: e.keyword === 'additionalProperties' ? 'is not a known property' : e.message ?? 'is invalid' };
  });
}

/** Error middleware placed right after the spec validator: narrows an alternatives refusal of the body (see above). */
export function narrowToClosestAlternative(spec: OpenApiDocument): ErrorRequestHandler {
  const byOperation = compileAlternatives(spec);
  return (err, req, _res, next) => {
    const op = req.operation;
    const alternatives = op ? byOperation.get(`${op.method.toUpperCase()} ${op.path}`) : undefined;
    if (!alternatives || !isValidatorError(err) || !err.errors.some((e) => /^\.?\/?body$/.test(e.path) && ALTERNATIVE_FAILED.test(e.message))) return next(err);
    // Only a refusal about the body alone is narrowed: a bad parameter next to it must still be reported.
    if (!err.errors.every((e) => /^\.?\/?body([./]|$)/.test(e.path))) return next(err);
    const names = alternatives.map((a) => a.name).join(', ');
    const body: unknown = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      // Not an object at all: no alternative is closer than another.
      const errors = [{ path: '/body', message: `must be a JSON object in one of the accepted formats (${names})` }];
      return next(Object.assign(Object.create(Object.getPrototypeOf(err) as object) as object, err, { errors, message: 'request body is not an object' }));
    }
    let best: { alt: Alternative; errors: ErrorObject[] } | undefined;
    for (const alt of alternatives) {
      if (alt.validate(req.body)) return next(err); // the validator and we disagree: keep its answer untouched
      const errors = alt.validate.errors ?? [];
      if (!best || errors.length < best.errors.length) best = { alt, errors };
    }
    if (!best) return next(err);
    const errors = [
      ...toFieldErrors(best.errors),
      { path: '/body', message: `matches none of the accepted formats (${names}); it is closest to ${best.alt.name}` },
    ];
    next(Object.assign(Object.create(Object.getPrototypeOf(err) as object) as object, err, { errors, message: `request body does not match ${best.alt.name}` }));
  };
}
