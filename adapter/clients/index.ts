// Typed clients for the integration models in openapi/integrations/, bound to an integration's runtime.
//
// `npm run generate` writes one hey-api client per model into adapter/clients/<name>/ (SDK functions named after
// the operationIds, request and response types), all of them on one shared hey-api runtime (adapter/clients/
// runtime/), and a registry of them by document digest (registry.gen.ts). Those functions take a `client`; the one
// made here sends through the integration's configured axios instance, so every typed call gets the integration's
// authentication (including dynamic keys and 401 refresh), TLS, proxy, timeout and redacted logging without code
// of its own:
//
//   const client = bindTypedClient(integration);
//   const { data, error, response } = await vcenter.apiVcenterVmPowerAction({ client, path: { vm }, query: { action: 'start' } });
//
// Runbook steps take the registry's way: `typedOperation(modelDocumentDigest(model.document), operationId)` is the
// operation's SDK function returning the standard envelope, or undefined for a model no client was generated from.
export { bindTypedClient, statusOf } from './bind';
export type { TypedClient } from './bind';
export { modelDocumentDigest } from './digest';
export { typedModels, typedOperation } from './typed';
export { XenApiError, xenapiErrorOf, xenapiResult } from './xenapi';
export type { TypedOperation, TypedOperationInput } from './typed';
export type { GeneratedModel, GeneratedOperation, GeneratedSdkFunction } from './types';
export { createClient as createTypedClient } from './runtime/client/index.js';
export type { Config as TypedClientConfig } from './runtime/client/index.js';

export * as vcenter from './vcenter/index.js';
export * as sccm from './sccm-adminservice/index.js';
export * as servicenow from './servicenow-table/index.js';
export * as adGateway from './ad-gateway/index.js';
export * as xenserver from './xenserver/index.js';
