// Secrets at rest, the service's side: every place a secret is stored, the start-up sealing pass, key rotation.
export { dataKeysInUse, resealUnder, rewriteStoredSecrets, sealPlain } from './stored-secrets';
export type { SecretRewrite, SecretTable, StoredSecret } from './stored-secrets';
export { sealPlaintextSecrets } from './seal-plaintext';
export { rotateDataKey, rotateMasterKey, runRotateKey } from './rotate-key';
export type { RotateKeyCommand } from './rotate-key';
export { startSecretsAtRest } from './start';
