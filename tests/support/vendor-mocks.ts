import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { getOperation, operationOutputSchema, type IntegrationModel } from '../../integration-model';
import type { RecordedRequest } from './loopback-server';

/** A request a loopback vendor mock received, split for assertions. */
export interface SeenRequest {
  method: string;
  /** Decoded path. */
  path: string;
  /** Raw path as sent (percent-encoding kept). */
  rawPath: string;
  query: Record<string, string | string[]>;
  body: unknown;
  authorization: string | undefined;
  contentType: string | undefined;
}

export function seen(req: RecordedRequest): SeenRequest {
  const u = new URL(req.url, 'http://loopback');
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of u.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  let body: unknown = undefined;
  if (req.body !== '') {
    try {
      body = JSON.parse(req.body);
    } catch {
      body = req.body;
    }
  }
  return {
    method: req.method,
    path: decodeURIComponent(u.pathname),
    rawPath: u.pathname,
    query,
    body,
    authorization: req.headers.authorization,
    contentType: req.headers['content-type'],
  };
}

/** Asserts that a 2xx answer body satisfies the model's output schema of `operationId` (the task's envelope). */
export function expectConforms(model: IntegrationModel, operationId: string, status: number, body: unknown): void {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const validate = ajv.compile(operationOutputSchema(getOperation(model, operationId)) as object);
  if (!validate({ ok: true, method: 'GET', url: 'http://loopback/', status, statusText: 'OK', headers: {}, body })) {
    throw new Error(`${operationId}: ${ajv.errorsText(validate.errors)}`);
  }
}
