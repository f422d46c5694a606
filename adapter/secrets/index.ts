// Secrets at rest: the master key, envelope encryption (AES-256-GCM data keys wrapped by the master key) and sealed values.
export { DATA_KEY_BYTES, MASTER_KEY_MIN_BYTES, decrypt, deriveMasterKey, encrypt, unwrapDataKey, wrapDataKey } from './crypto';
export type { MasterKey } from './crypto';
export {
  SECRETS_KEY_FILE_NAME,
  SecretsKeyError,
  decodeMasterKey,
  loadMasterKey,
  masterKeyFile,
  newMasterKeyText,
  pendingKeyFile,
  readMasterKeyFile,
  replaceFile,
  writeKeyFileOnce,
  writeSecretFile,
} from './master-key';
export type { LoadedMasterKey, MasterKeySource } from './master-key';
export {
  SealedSecretError,
  configureSecrets,
  createActiveDataKey,
  deleteDataKeys,
  ensureSecretsKey,
  isSealed,
  listDataKeys,
  masterKeyId,
  openSecret,
  rewrapDataKeys,
  sealSecret,
  sealedKeyId,
} from './sealing';
export { secretPlace } from './places';
// External secret backends: references (`vault://…`, `conjur://…`, `azurekv://…`, `awssm://…`, `ccp://…`), the backends, and
// read-time resolution with the process-local TTL cache.
export { SECRET_SCHEMES, SecretBackendError } from './backend';
export type { SecretBackend, SecretBackendErrorCode, SecretBackendSettings, SecretReference, SecretScheme } from './backend';
export { formatSecretReference, looksLikeSecretReference, parseSecretReference } from './references';
export type { ParsedReference } from './references';
export {
  DEFAULT_CACHE_TTL_SECONDS,
  DEFAULT_NEGATIVE_TTL_SECONDS,
  clearSecretCache,
  configureSecretResolver,
  resolveSecretReference,
  resolveSecretValue,
  resolveSecretValues,
} from './resolver';
export { AZURE_KEY_VAULT_API_VERSION, SECRET_BACKEND_TIMEOUT_MS, azureSecretName, createSecretBackends, forgetAzureTokens, forgetConjurTokens, forgetVaultLogins } from './backends';
export type { BackendDeps, ClosableSecretBackend } from './backends';
