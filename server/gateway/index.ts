// The AD gateway: the directory module (adapter/directory) behind HTTP, described by
// openapi/integrations/ad-gateway.yaml and authenticated with the service's API tokens.
export { buildGatewayApp, GATEWAY_SPEC_PATH, GATEWAY_TOKEN_CACHE_MS } from './app';
export type { GatewayConfig } from './app';
export { gatewayHandlers } from './handlers';
export type { GatewayDeps } from './handlers';
export { gatewayOperationIds } from './operations';
export type { GatewayOperationId, GatewayOperations } from './operations';
export { DIRECTORY_ENV, readDirectorySettings } from './settings';
export { DEFAULT_GATEWAY_PORT, gatewayConfigFromEnv, serveGateway } from './main';
