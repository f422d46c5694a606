/**
 * The secret backends, one per scheme of a reference. Each is built with the process's logger (its request lines,
 * secrets redacted) by the resolver; add a backend here with one line.
 */
import type { SecretBackend, SecretScheme } from '../backend';
import { createAwsSecretsManagerBackend } from './aws-sm';
import { createAzureKeyVaultBackend } from './azure-kv';
import { createConjurBackend } from './conjur';
import { createCyberArkCcpBackend } from './cyberark-ccp';
import type { BackendDeps } from './http';
import { createVaultBackend } from './vault';

/** A backend that holds connections open (AWS, CCP keep their clients) closes them here. */
export type ClosableSecretBackend = SecretBackend & { close?(): void };

/** Every backend, built with `deps`, by scheme. */
export function createSecretBackends(deps: BackendDeps = {}): Map<SecretScheme, ClosableSecretBackend> {
  const backends: ClosableSecretBackend[] = [
    createVaultBackend(deps),
    createConjurBackend(deps),
    createAzureKeyVaultBackend(deps),
    createAwsSecretsManagerBackend(deps),
    createCyberArkCcpBackend(deps),
  ];
  return new Map(backends.map((b) => [b.scheme, b]));
}

export { forgetVaultLogins } from './vault';
export { forgetConjurTokens } from './conjur';
export { forgetAzureTokens, azureSecretName, AZURE_KEY_VAULT_API_VERSION } from './azure-kv';
export { SECRET_BACKEND_TIMEOUT_MS } from './http';
export type { BackendDeps } from './http';
