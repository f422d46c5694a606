import Ajv from 'ajv';
import { buildEnvelope, onFirstUse, type FieldError, type IntegrationCallResult } from '../../adapter';
import { responseExample } from '../tasks';
import type { IntegrationModel, ModelOperation } from '../types';
import type { IntegrationRecord } from './integrations';

/**
 * Stub mode: every invocation of a stub-mode integration (API or runbook step) is answered without any request.
 *
 * What it answers, per operation: the response the integration's configuration sets for that operationId under
 * `stub.responses` (Itential's "mock data": an admin writes it in the advanced view, `PUT
 * /admin/integrations/{id}/config`, or in `config` on create/update), else the model's example for the first 2xx
 * that has one, else a string saying there is nothing to answer with. A configured response may be any status,
 * so a runbook's failure path can be rehearsed as well as its happy path. A model's examples are written for
 * documentation and rarely say what a runbook waits for (a poll's "succeeded" status, say); configured responses
 * are how an operator makes a stub answer what a rehearsal needs.
 */

/** One configured stub answer. `status` defaults to 200; `body` is sent as JSON; header values are strings. */
export interface StubResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** The `stub` key of an integration's configuration. */
export interface StubConfig {
  responses: Record<string, StubResponse>;
}

/** The configuration key stub settings live under; kept apart from the transport's configuration. */
export const STUB_CONFIG_KEY = 'stub';

/** A configured body larger than this is refused: stubs stand in for small API answers, not bulk data. Bytes of JSON. */
export const MAX_STUB_BODY_BYTES = 256 * 1024;

const stubConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['responses'],
  properties: {
    responses: {
      type: 'object',
      maxProperties: 1000,
      propertyNames: { type: 'string', minLength: 1, maxLength: 200 },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          status: { type: 'integer', minimum: 100, maximum: 599, default: 200 },
          headers: {
            type: 'object',
            maxProperties: 50,
            propertyNames: { type: 'string', pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$" },
            additionalProperties: { type: 'string', maxLength: 4096 },
          },
          body: {},
        },
      },
    },
  },
} as const;

const validateStubSchema = onFirstUse(() => new Ajv({ allErrors: true, useDefaults: true, strict: false }).compile(stubConfigSchema));

/**
 * Checks the `stub` key of a submitted configuration and returns it with defaults applied, or the problems found,
 * each at `<at>/<field>` (for example `/body/config/stub/responses/getThing/status`). Never throws.
 */
export function checkStubConfig(input: unknown, at: string): { ok: true; stub: StubConfig } | { ok: false; errors: FieldError[] } {
  const copy: unknown = structuredClone(input);
  const validate = validateStubSchema();
  if (!validate(copy)) {
    const errors = (validate.errors ?? []).map((e): FieldError => {
      if (e.keyword === 'additionalProperties') {
        return { path: `${at}${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}`, message: 'is not a known field (status, headers, body)' };
      }
      if (e.keyword === 'required') return { path: `${at}${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}`, message: 'is required' };
      if (e.keyword === 'propertyNames') return { path: `${at}${e.instancePath}`, message: `has a key that is not allowed (${String((e.params as { propertyName?: string }).propertyName ?? '')})` };
      return { path: `${at}${e.instancePath}`, message: e.message ?? 'is invalid' };
    });
    return { ok: false, errors: dedupe(errors) };
  }
  const stub = copy as StubConfig;
  const errors: FieldError[] = [];
  for (const [operationId, r] of Object.entries(stub.responses)) {
    if (r.body !== undefined && Buffer.byteLength(JSON.stringify(r.body)) > MAX_STUB_BODY_BYTES) {
      errors.push({ path: `${at}/responses/${escapePointer(operationId)}/body`, message: `is larger than ${MAX_STUB_BODY_BYTES} bytes of JSON` });
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, stub };
}

/** Stub responses naming operations the model does not have (a typo would otherwise never answer). */
export function unknownStubOperations(model: IntegrationModel, config: Record<string, unknown>, at: string): FieldError[] {
  const stub = stubConfigOf(config);
  if (!stub) return [];
  const known = new Set(model.operations.map((o) => o.operationId));
  return Object.keys(stub.responses)
    .filter((id) => !known.has(id))
    .map((id) => ({ path: `${at}/responses/${escapePointer(id)}`, message: `is not an operation of model '${model.id}'` }));
}

/** The stored (already checked) stub settings of a configuration, if any. */
export function stubConfigOf(config: Record<string, unknown>): StubConfig | undefined {
  const s = config[STUB_CONFIG_KEY] as StubConfig | undefined;
  return s !== undefined && s !== null && typeof s === 'object' ? s : undefined;
}

/**
 * The envelope stub mode answers for one call (see the module comment for the order of precedence); a string
 * when the operation has neither a configured response nor a 2xx example.
 */
export function stubResult(
  model: IntegrationModel,
  op: ModelOperation,
  integration: Pick<IntegrationRecord, 'config'>,
  path: string,
  query: Record<string, unknown> | undefined,
): IntegrationCallResult {
  const configured = stubConfigOf(integration.config)?.responses[op.operationId];
  if (configured) {
    const hasBody = configured.body !== undefined;
    return buildEnvelope({
      method: op.method,
      url: stubUrl(integration, path, query),
      status: configured.status,
      statusText: '',
      headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...configured.headers, 'x-provisio-stub': 'configured' },
      raw: hasBody ? JSON.stringify(configured.body) : '',
    });
  }
  const example = responseExample(model, op);
  if (!example) return `stub mode: operation '${op.operationId}' documents no 2xx response to answer with, and the integration's config sets no stub.responses.${op.operationId}`;
  const json = example.contentType === undefined || /[/+]json\b/i.test(example.contentType);
  const raw = example.example === undefined ? '' : !json && typeof example.example === 'string' ? example.example : JSON.stringify(example.example);
  return buildEnvelope({
    method: op.method,
    url: stubUrl(integration, path, query),
    status: example.status,
    statusText: '',
    headers: { ...(example.contentType ? { 'content-type': example.contentType } : {}), 'x-provisio-stub': 'true' },
    raw,
  });
}

/** The URL the call would have gone to; built from the (secret-free) stored server settings. */
function stubUrl(integration: Pick<IntegrationRecord, 'config'>, path: string, query: Record<string, unknown> | undefined): string {
  const s = (integration.config['server'] ?? {}) as { protocol?: string; host?: string; port?: number; base_path?: string };
  const base = `${s.protocol ?? 'http'}://${s.host ?? ''}${s.port !== undefined ? `:${s.port}` : ''}${(s.base_path ?? '').replace(/\/$/, '')}`;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    for (const x of Array.isArray(v) ? v : [v]) params.append(k, String(x));
  }
  const qs = params.toString();
  return `${base}${path}${qs ? `?${qs}` : ''}`;
}

const escapePointer = (token: string) => token.replace(/~/g, '~0').replace(/\//g, '~1');

function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = `${e.path}\u0000${e.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
