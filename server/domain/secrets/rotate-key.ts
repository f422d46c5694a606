import { randomBytes } from 'node:crypto';
import { existsSync, unlinkSync } from 'node:fs';
import {
  SecretsKeyError,
  createActiveDataKey,
  decodeMasterKey,
  deleteDataKeys,
  listDataKeys,
  readMasterKeyFile,
  replaceFile,
  rewrapDataKeys,
  writeAudit,
  writeSecretFile,
  type Actor,
  type Database,
  type LoadedMasterKey,
} from '../../../adapter';
import { dataKeysInUse, resealUnder, rewriteStoredSecrets } from './stored-secrets';

// The sealing pass's lock (seal-plaintext.ts): a rotation and a start-up pass never interleave.
const SEALING_LOCK_KEY = 7_302_114_825;

/**
 * Re-wraps every data key under `newKey`, in one transaction, audited (`secrets` / `rotate_key`, key ids only).
 * Sealed values are not touched: processes running with the old master key hold the data keys in memory and keep
 * reading and writing through the rotation; they need the new key only when they start again.
 * @throws SecretsKeyError when the current master key does not open every data key (nothing changes).
 */
export async function rotateMasterKey(db: Database, newKey: Buffer, actor: Actor): Promise<{ from: string; to: string; keyIds: string[] }> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [SEALING_LOCK_KEY]);
    const r = await rewrapDataKeys(tx, newKey);
    await writeAudit(tx, {
      entity: 'secrets',
      entityId: 'master_key',
      action: 'rotate_key',
      before: { master_key_id: r.from },
      after: { master_key_id: r.to, data_key_ids: r.keyIds },
      triggeredBy: actor.triggeredBy,
      requestId: actor.requestId,
    });
    return r;
  });
}

/**
 * Makes a fresh data key the active one and re-seals every stored secret under it, in one transaction, audited
 * (`secrets` / `new_data_key`, key ids only); the data keys no value uses any more are then deleted.
 *
 * Why no value is lost to a writer racing the rotation: a seal reads the active key FOR SHARE (sealing.ts), so the
 * step-down of the old key waits for transactions sealing under it, and the walk that follows sees what they wrote.
 */
export async function rotateDataKey(db: Database, actor: Actor): Promise<{ keyId: string; resealed: number; deleted: string[] }> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [SEALING_LOCK_KEY]);
    const before = await listDataKeys(tx);
    const keyId = await createActiveDataKey(tx);
    const { rewritten } = await rewriteStoredSecrets(tx, resealUnder(tx, keyId));
    const used = await dataKeysInUse(tx);
    const deleted = before.map((k) => k.id).filter((id) => !used.has(id));
    await deleteDataKeys(tx, deleted);
    await writeAudit(tx, {
      entity: 'secrets',
      entityId: 'data_key',
      action: 'new_data_key',
      before: { active_data_key_id: before.find((k) => k.active)?.id ?? null },
      after: { active_data_key_id: keyId, resealed: rewritten, deleted_data_key_ids: deleted },
      triggeredBy: actor.triggeredBy,
      requestId: actor.requestId,
    });
    return { keyId, resealed: rewritten, deleted };
  });
}

export interface RotateKeyCommand {
  db: Database;
  /** The master key the process started with, and where it came from. */
  current: LoadedMasterKey;
  /** `--new-key-file F`: the new master key is read from F (mode 0600, like the key file). */
  newKeyFile?: string | undefined;
  /** SECRETS_NEW_KEY: the new master key (base64). */
  envNewKey?: string | undefined;
  /** `--new-data-key`: a fresh data key, every value re-sealed under it. */
  newDataKey: boolean;
}

/**
 * `provisio secrets rotate-key`. With `--new-data-key` and no new master key (neither `--new-key-file` nor
 * SECRETS_NEW_KEY), only the data key is replaced; otherwise the master key is rotated (to a generated key when none
 * is given), after the data key when both are asked for.
 *
 * When the master key came from the key file, the new key is written to `<file>.new` (0600, fsynced) before the
 * commit and renamed over the key file after it: a crash in between leaves the new key in `<file>.new`, and the start
 * that then fails names both fingerprints. Answers the lines to print (what the operator must do next); the new key
 * itself appears in them only when it was generated here and the old one came from SECRETS_KEY (there is nowhere
 * else to put it).
 * @throws SecretsKeyError for a bad new key, the key in use given as the new one, or a `<file>.new` left behind.
 */
export async function runRotateKey(cmd: RotateKeyCommand, actor: Actor = { triggeredBy: 'system:cli' }): Promise<string[]> {
  const lines: string[] = [];
  const wantMaster = !cmd.newDataKey || cmd.newKeyFile !== undefined || (cmd.envNewKey !== undefined && cmd.envNewKey !== '');
  let next: { key: Buffer; text: string; origin: 'file' | 'env' | 'generated' } | undefined;
  if (wantMaster) {
    if (cmd.newKeyFile !== undefined) {
      const key = readMasterKeyFile(cmd.newKeyFile);
      if (!key) throw new SecretsKeyError(`--new-key-file ${cmd.newKeyFile} does not exist`);
      next = { key, text: `${key.toString('base64')}\n`, origin: 'file' };
    } else if (cmd.envNewKey !== undefined && cmd.envNewKey !== '') {
      const key = decodeMasterKey(cmd.envNewKey, 'SECRETS_NEW_KEY');
      next = { key, text: `${key.toString('base64')}\n`, origin: 'env' };
    } else {
      const key = randomBytes(32);
      next = { key, text: `${key.toString('base64')}\n`, origin: 'generated' };
    }
    if (cmd.current.key.equals(next.key)) throw new SecretsKeyError('the new master key is the one in use: give another key');
  }

  if (cmd.newDataKey) {
    const r = await rotateDataKey(cmd.db, actor);
    lines.push(`new data key ${r.keyId} is active; ${r.resealed} secret(s) re-sealed under it` + (r.deleted.length ? `; data key(s) ${r.deleted.join(', ')} deleted` : ''));
  }
  if (!next) return lines;

  const fromFile = cmd.current.source !== 'env';
  const pending = `${cmd.current.file}.new`;
  if (fromFile) {
    if (existsSync(pending)) {
      throw new SecretsKeyError(`${pending} exists (left by an interrupted rotation?): check which key the database uses, then remove it and run again`);
    }
    writeSecretFile(pending, next.text);
  }
  let r: { from: string; to: string; keyIds: string[] };
  try {
    r = await rotateMasterKey(cmd.db, next.key, actor);
  } catch (e) {
    if (fromFile) unlinkSync(pending);
    throw e;
  }
  if (fromFile) replaceFile(pending, cmd.current.file);
  lines.push(`master key rotated: ${r.from} -> ${r.to} (${r.keyIds.length} data key(s) re-wrapped; running processes keep working)`);
  if (fromFile) {
    lines.push(`the key file ${cmd.current.file} now holds the new master key; give every other process of this database the same key (its key file, or SECRETS_KEY) before it next starts`);
  } else if (next.origin === 'generated') {
    lines.push('set SECRETS_KEY to this new master key for every process of this database before it next starts (shown once):');
    lines.push(next.text.trim());
  } else {
    const where = next.origin === 'file' ? `the content of ${cmd.newKeyFile}` : 'the value of SECRETS_NEW_KEY';
    lines.push(`set SECRETS_KEY to ${where} for every process of this database before it next starts`);
  }
  return lines;
}
