// Integration models: an OpenAPI document loaded, validated and read as a catalogue of typed operations
// (canvas tasks), security schemes and HTTP verbs; and the integration runtime built on them (runtime/): the
// integrations store, OAuth flows, stub mode, gateway cluster routing, health checks and `invoke`. Usable without
// the web server: depends on nothing above `adapter/`.
export { loadIntegrationModel, loadIntegrationModelFile, getOperation } from './model';
export type { LoadIntegrationModelOptions } from './model';
export { operationInputSchema, operationOutputSchema, responseEnvelopeSchema } from './task-schemas';
export { IntegrationModelError, IntegrationModelErrorCode } from './errors';
export type { ModelIssue } from './errors';
export { HTTP_METHODS } from './types';
export { resolveRef } from './pointer';
export type {
  DroppedOperation,
  DynamicKeyRetrieval,
  HttpMethod,
  IntegrationModel,
  JsonSchema,
  ModelOperation,
  ModelServer,
  OAuthFlow,
  OperationParameter,
  OperationRequestBody,
  OperationResponse,
  ParameterLocation,
  SchemeParameter,
  SecurityRequirement,
  SecurityScheme,
  SecuritySchemeKind,
} from './types';
export {
  buildTaskRequest,
  integrationRoleKinds,
  integrationRoleName,
  integrationTasks,
  responseExample,
  validateTaskInput,
} from './tasks';
export type { IntegrationTask, ResponseExample, TaskInput, TaskInputIssue } from './tasks';

// The integration runtime.
export { createIntegrationRuntime, IntegrationRuntime } from './runtime/integration-runtime';
export type {
  IntegrationInvoker,
  IntegrationRuntimeDeps,
  InvokeContext,
  ResolvedIntegration,
  TypedOperations,
} from './runtime/integration-runtime';
export { InvocationError } from './runtime/errors';
export { stubResult } from './runtime/stub';
export { clusterOf, clusterQueueName, registerClusterWorker } from './runtime/cluster';
export type { ClusterCallClients } from './runtime/cluster';
export { registerIntegrationHealthChecks, runDueHealthChecks, storeHealthResult } from './runtime/health';
export type { HealthChecker, HealthWorsened, HealthWorsenedHook } from './runtime/health';
export {
  cloneIntegration,
  createIntegration,
  deleteIntegration,
  fullConfig,
  grantIntegrationRole,
  listIntegrationRoles,
  listIntegrations,
  loadIntegration,
  openIntegrationSecrets,
  prepareConfig,
  readIntegration,
  recordHealth,
  redactedConfig,
  replaceIntegrationConfig,
  revokeIntegrationRole,
  sealIntegrationSecrets,
  setIntegrationLogLevel,
  tokenHoldsIntegrationRole,
  updateIntegration,
} from './runtime/integrations';
export type {
  HealthResult,
  HealthSettings,
  HealthState,
  HealthStatusView,
  IntegrationCreateInput,
  IntegrationRecord,
  IntegrationRoleView,
  IntegrationUpdateInput,
  IntegrationView,
  PreparedConfig,
  RoleGrantView,
  SecretValues,
} from './runtime/integrations';
export {
  ModelCache,
  createIntegrationModel,
  deleteIntegrationModel,
  listIntegrationModels,
  loadIntegrationModelFiles,
  parseModelUpload,
  readIntegrationModel,
  upsertIntegrationModel,
} from './runtime/integration-models';
export type { IntegrationModelSummaryView, IntegrationModelView, ModelOperationSummary, ModelSource } from './runtime/integration-models';
export { OAUTH_STATE_TTL_SECONDS, consumeOAuthState, createOAuthState, storeOAuthTokens } from './runtime/integration-oauth';
export type { ConsumedState } from './runtime/integration-oauth';
