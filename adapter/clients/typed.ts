import type { IntegrationCallResult, IntegrationClient, RawResponseOptions } from '../http';
import type { AxiosResponse } from 'axios';
import { isRecord } from '../json';
import { bindTypedClient, type TypedClient } from './bind';
import { generatedModels } from './registry.gen';
import type { GeneratedModel, GeneratedOperation } from './types';

/**
 * The input of one operation call, shaped as integration-model's `TaskInput` (the task input schema's properties):
 * path parameters by name, query parameters, headers, cookies and the body.
 */
export interface TypedOperationInput {
  path?: Record<string, unknown>;
  query?: Record<string, unknown>;
  headers?: Record<string, unknown>;
  cookies?: Record<string, unknown>;
  body?: unknown;
}

/**
 * Calls one operation through its generated SDK function, bound to `client` (the integration's transport: auth,
 * TLS, proxy, timeout, logging), and returns the same result {@link IntegrationClient.call} does: the response
 * envelope, or a string saying why no response came (including an aborted `signal`). Never rejects.
 */
export type TypedOperation = (client: IntegrationClient, input: TypedOperationInput, signal?: AbortSignal) => Promise<IntegrationCallResult>;

const modelsByDigest = new Map<string, GeneratedModel>(generatedModels.map((m) => [m.digest, m]));
const operations = new Map<string, TypedOperation>();
// One hey-api client per integration client, so a step pays for binding once per integration version.
const typedClients = new WeakMap<IntegrationClient, TypedClient>();

/**
 * The typed call of `operationId` in the model whose document has `digest` ({@link modelDocumentDigest}), or
 * undefined when no generated client was made from exactly that document (a model uploaded or edited at run time)
 * or the document has no such operation: the caller then takes the generic path.
 */
export function typedOperation(digest: string, operationId: string): TypedOperation | undefined {
  const key = `${digest}\n${operationId}`;
  const known = operations.get(key);
  if (known) return known;
  const model = modelsByDigest.get(digest);
  if (!model || !Object.prototype.hasOwnProperty.call(model.operations, operationId)) return undefined;
  const op = model.operations[operationId] as GeneratedOperation;
  const typed: TypedOperation = (client, input, signal) =>
    client.callThrough(op.method, (raw) => send(op, typedClientOf(client), input, raw, signal), signal);
  operations.set(key, typed);
  return typed;
}

/** The digests and operationIds of every generated client, for callers that list what runs typed. */
export function typedModels(): readonly { name: string; source: string; digest: string; operationIds: string[] }[] {
  return generatedModels.map((m) => ({ name: m.name, source: m.source, digest: m.digest, operationIds: Object.keys(m.operations) }));
}

function typedClientOf(client: IntegrationClient): TypedClient {
  let typed = typedClients.get(client);
  if (!typed) {
    typed = bindTypedClient(client);
    typedClients.set(client, typed);
  }
  return typed;
}

type SdkCall = (options: Record<string, unknown>) => Promise<AxiosResponse>;

function send(op: GeneratedOperation, typed: TypedClient, input: TypedOperationInput, raw: RawResponseOptions, signal: AbortSignal | undefined): Promise<AxiosResponse> {
  const options: Record<string, unknown> = {
    client: typed,
    // Errors reach callThrough as thrown, so they settle exactly as the generic call's do.
    throwOnError: true,
    ...raw,
  };
  if (input.path !== undefined) options['path'] = input.path;
  const query = withoutNulls(input.query);
  if (query !== undefined) options['query'] = query;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers ?? {})) if (v !== undefined && v !== null) headers[k] = scalar(v);
  // Cookies as the generic request builder sends them: one Cookie header, values percent-encoded.
  const cookies = Object.entries(input.cookies ?? {}).filter(([, v]) => v !== undefined && v !== null);
  if (cookies.length > 0) headers['Cookie'] = cookies.map(([k, v]) => `${k}=${encodeURIComponent(scalar(v))}`).join('; ');
  if (Object.keys(headers).length > 0) options['headers'] = headers;
  if (input.body !== undefined) options['body'] = input.body;
  if (signal) options['signal'] = signal;
  return (op.call as unknown as SdkCall)(options);
}

function withoutNulls(values: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!isRecord(values)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== null) out[k] = v;
  return Object.keys(out).length > 0 ? out : undefined;
}

function scalar(v: unknown): string {
  if (typeof v === 'string') return v;
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}
