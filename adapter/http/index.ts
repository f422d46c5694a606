export {
  integrationConfigSchema,
  validateIntegrationConfig,
  redactConfig,
  SECRET_CONFIG_PATHS,
  REDACTED,
  AUTH_TYPES,
  LOG_LEVELS,
} from './config';
export type {
  IntegrationConfig,
  IntegrationConfigInput,
  AuthenticationConfig,
  AuthType,
  OAuthConfig,
  DynamicApiKeyConfig,
  MtlsConfig,
  ServerConfig,
  SyslogConfig,
  LogLevel,
  ConfigIssue,
  ConfigValidation,
} from './config';
export {
  buildEnvelope,
  isEnvelope,
  explainNetworkError,
  missingInformation,
  CallNotMadeError,
  CallNotMadeCode,
  TokenRequestError,
  NOT_MADE,
  NOT_REACHED,
} from './envelope';
export type { IntegrationEnvelope, IntegrationCallResult, ParseError, ResponseHeaders } from './envelope';
export { checkMtlsMaterial, pemFromDataUrl, pemToDataUrl } from './mtls';
export { createIntegrationClient, DEFAULT_TIMEOUT_MS } from './transport';
export { createEndpointClient, pathOf } from './endpoint';
export type { EndpointClientOptions, EndpointConnection } from './endpoint';
export type { IntegrationClient, IntegrationClientDeps, IntegrationCallRequest, QueryValue, RawResponseOptions } from './transport';
export type { OAuthTokens } from './auth/oauth2';
