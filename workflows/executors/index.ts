// Task executors for the kinds that reach outside the process: integration (adapter/http), webhook (Lumos-style
// provisioning webhook), script (stored script modules in a subprocess) and directory (adapter/directory). Each is
// a factory closing over its dependencies and returns a TaskExecutor (workflows/engine/executor.ts).
export { createIntegrationExecutor, parseOperationRef } from './integration';
export type { IntegrationExecutorDeps } from './integration';
export {
  createWebhookExecutor,
  buildWebhookPayload,
  signWebhookBody,
  WEBHOOK_HEADERS,
  WEBHOOK_SIGNATURE_TOLERANCE_S,
  DEFAULT_WEBHOOK_TIMEOUT_MS,
} from './webhook';
export type { WebhookExecutorDeps, WebhookPayload } from './webhook';
export {
  createScriptExecutor,
  defaultScriptRuntimes,
  findOnPath,
  PARAM_ENV_PREFIX,
  DEFAULT_SCRIPT_TIMEOUT_MS,
  DEFAULT_KILL_GRACE_MS,
  MAX_SCRIPT_STDOUT_BYTES,
} from './script';
export type { ScriptExecutorDeps } from './script';
export {
  createScriptModuleVersion,
  getScriptModule,
  scriptModuleExists,
  listScriptModules,
  listScriptModuleVersions,
  ScriptModuleInputError,
  SCRIPT_RUNTIMES,
  SCRIPT_PLATFORMS,
  SCRIPT_MODULE_NAME_PATTERN,
  MAX_SCRIPT_BODY_BYTES,
} from './script-modules';
export type { ScriptModule, ScriptModuleSummary, NewScriptModuleVersion, ScriptRuntime, ScriptPlatform } from './script-modules';
export { createDirectoryExecutor, userKey, groupKey } from './directory';
export type { DirectoryExecutorDeps } from './directory';
export { createWinrmExecutor, TASK_SEQUENCE_PROGRAM_ID, WINRM_HTTP_PORT, WINRM_HTTPS_PORT } from './winrm';
export type { WinrmExecutorDeps } from './winrm';
