import {
  SecretsKeyError,
  configureSecrets,
  ensureSecretsKey,
  loadMasterKey,
  pendingKeyFile,
  type Database,
  type LoadedMasterKey,
  type Logger,
  type MasterKeySource,
} from '../../../adapter';
import { sealPlaintextSecrets } from './seal-plaintext';

/**
 * Secrets at rest at a process's start, after the migrations: loads the master key (SECRETS_KEY, else the key file,
 * else a key generated into it, with a warning naming the file), checks it against the stored data keys before
 * anything is read or written, then seals whatever is still stored in plain text (rows from before migration 025).
 * @throws SecretsKeyError for a bad or wrong key, or a key file others may read; the database is left as it was.
 */
export async function startSecretsAtRest(db: Database, source: MasterKeySource, logger: Logger): Promise<LoadedMasterKey> {
  const loaded = loadMasterKey(source);
  if (loaded.source === 'generated') {
    logger.warn(`secrets master key generated in ${loaded.file}`, {
      file: loaded.file,
      detail:
        `every secret stored in the database is sealed under the key in ${loaded.file}: back it up (without it the secrets ` +
        'are lost), and give every other process of this database (other machines, workers, a restored backup) the same key ' +
        'as SECRETS_KEY or SECRETS_KEY_FILE',
    });
  }
  configureSecrets({ masterKey: loaded.key, source: loaded.source === 'env' ? 'SECRETS_KEY' : `the key file ${loaded.file}` });
  try {
    await ensureSecretsKey(db);
  } catch (e) {
    const pending = loaded.source !== 'env' ? pendingKeyFile(loaded.file) : undefined;
    if (e instanceof SecretsKeyError && pending) {
      throw new SecretsKeyError(`${e.message}. ${pending} holds the new key of an interrupted \`secrets rotate-key\`: if it is the key the database names, move it over ${loaded.file}`);
    }
    throw e;
  }
  const { sealed } = await sealPlaintextSecrets(db);
  if (sealed > 0) logger.info('secrets stored in plain text were sealed', { count: sealed });
  return loaded;
}
