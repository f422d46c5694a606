import type { IntegrationClient } from '../http';
import { createClient, type Client } from './runtime/client/index.js';

export type TypedClient = Client;

/**
 * A hey-api client sending through `integration.axios`. Its base URL is the integration's (server protocol, host,
 * port, base path); non-2xx answers come back as `{ error, response }` rather than thrown, unless a call passes
 * `throwOnError: true`.
 */
export function bindTypedClient(integration: Pick<IntegrationClient, 'axios'>): TypedClient {
  return createClient({ axios: integration.axios });
}

/** What a typed call resolves to when it does not throw: the axios response, or the error with its response. */
interface TypedResult {
  error?: unknown;
  status?: number;
  response?: { status: number };
}

/**
 * The HTTP status of a typed call's result, success or not; undefined when no response arrived (the server could
 * not be reached, or the runtime could not authenticate: then the result is the Error itself, with its message).
 */
export function statusOf(result: TypedResult): number | undefined {
  return result.error === undefined ? result.status : result.response?.status;
}
