// Typed clients for the integration models in openapi/integrations/, bound to an integration's runtime.
//
// `npm run generate` writes one hey-api client per model into adapter/clients/<name>/ (SDK functions named after
// the operationIds, request and response types). Those functions take a `client`; the one made here sends through
// the integration's configured axios instance, so every typed call gets the integration's authentication
// (including dynamic keys and 401 refresh), TLS, proxy, timeout and redacted logging without code of its own:
//
//   const client = bindTypedClient(integration);
//   const { data, error, response } = await vcenter.apiVcenterVmPowerAction({ client, path: { vm }, query: { action: 'start' } });
//
// The generated `client/` runtime is identical in every generated directory (it does not depend on the model), so
// one bound client serves the SDK functions of every model.
import type { IntegrationClient } from '../http';
import { createClient, type Client } from './vcenter/client/index.js';

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

export * as vcenter from './vcenter/index.js';
export * as sccm from './sccm-adminservice/index.js';
export * as servicenow from './servicenow-table/index.js';
export * as adGateway from './ad-gateway/index.js';
