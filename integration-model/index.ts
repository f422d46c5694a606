// Integration models: an OpenAPI document loaded, validated and read as a catalogue of typed operations
// (canvas tasks), security schemes and HTTP verbs. Depends on nothing above `adapter/`.
export { loadIntegrationModel, loadIntegrationModelFile, getOperation } from './model';
export type { LoadIntegrationModelOptions } from './model';
export { operationInputSchema, operationOutputSchema, responseEnvelopeSchema } from './task-schemas';
export { IntegrationModelError, IntegrationModelErrorCode } from './errors';
export type { ModelIssue } from './errors';
export { HTTP_METHODS } from './types';
export { escapeToken, resolveRef } from './pointer';
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
