/**
 * Entra ID as a directory: the `Directory` interface over Microsoft Graph v1.0 through
 * `@microsoft/microsoft-graph-client`, with client-credentials tokens (cached, shared fetch) and Graph's throttling
 * (429/503 with Retry-After) honoured within bounds.
 */
export { createGraphDirectory, DEFAULT_GRAPH_CONSUMER_ATTRIBUTES, graphToDirectoryError } from './graph-directory';
export type { GraphDirectory, GraphDirectorySettings } from './graph-directory';
export { ClientCredentialsProvider, TOKEN_EXPIRY_MARGIN_MS } from './token';
export type { ClientCredentials } from './token';
export { graphTransport, httpsRequest, retryDelayMs } from './transport';
export type { HttpsOptions, RawResponse, ThrottleOptions } from './transport';
