import { randomBytes } from 'node:crypto';
import type { Queryable } from '../db';
import { decrypt, deriveMasterKey, encrypt, newDataKey, unwrapDataKey, wrapDataKey, type MasterKey } from './crypto';
import { SecretsKeyError } from './master-key';

/*
 * Sealed values and the data keys they are sealed under (table secret_keys, migration 025).
 *
 * A sealed value is the string `enc:v1:<keyId>:<base64url(IV | ciphertext | tag)>` of AES-256-GCM over the value's
 * JSON, under data key <keyId>, bound (AAD) to its key id and to its place (`app_config:<key>`,
 * `integrations:<id>:<pointer>`, `asset_type_teams_webhooks:<asset type id>`; see secretPlace). Binding to the place
 * means a ciphertext copied by someone who can write the database but lacks the key does not open anywhere else:
 * integration A's token pasted into integration B (whose server URL that person controls) fails to decrypt instead of
 * being sent to B's server. The price: copying a value to another place re-seals it (cloneIntegration does).
 *
 * Data keys are wrapped under the master key (SECRETS_KEY or the key file), so rotating the master key rewrites a
 * handful of secret_keys rows, never the values, and processes that already hold the data keys keep working.
 *
 * Unwrapped data keys are kept in this process's memory by id: opening a value costs one AES-GCM decryption and no
 * query once its key is known. The active key's id is read on every seal (writes are rare, and another process may
 * have made a new key active).
 */

const SEALED = /^enc:v1:([A-Za-z0-9_-]{1,64}):([A-Za-z0-9_-]{38,})$/;

/** A sealed value that does not open: altered, moved from another place, or its data key is gone. Names no value. */
export class SealedSecretError extends Error {
  readonly code = 'SECRET_SEALED_VALUE';
  constructor(message: string) {
    super(message);
    this.name = 'SealedSecretError';
  }
}

interface SecretsState {
  master: MasterKey;
  /** How an error names where the master key came from: `SECRETS_KEY` or `the key file <path>`. */
  source: string;
}

let state: SecretsState | undefined;
const dataKeys = new Map<string, Buffer>();

/**
 * Sets this process's master key (once at start-up: `openRuntime` with the loaded key; tests with a fixed test key).
 * Data keys already unwrapped stay known: they do not change when the master key does.
 * @throws Error for a key shorter than 32 bytes.
 */
export function configureSecrets(opts: { masterKey: Buffer; source?: string }): void {
  state = { master: deriveMasterKey(opts.masterKey), source: opts.source ?? 'the configured master key' };
}

/** The fingerprint of the configured master key (what secret_keys.master_key_id stores); never the key. */
export function masterKeyId(): string {
  return configured().master.id;
}

function configured(): SecretsState {
  if (!state) throw new SecretsKeyError('secrets at rest are not configured: configureSecrets() must run before a secret is read or written');
  return state;
}

/** Whether `v` is a sealed value (a string in the `enc:v1:` format). */
export function isSealed(v: unknown): v is string {
  return typeof v === 'string' && SEALED.test(v);
}

/** The data key id a sealed value names; undefined for anything else. */
export function sealedKeyId(v: unknown): string | undefined {
  return typeof v === 'string' ? SEALED.exec(v)?.[1] : undefined;
}

const valueAad = (keyId: string, aad: string): string => `enc:v1:${keyId}:${aad}`;

/**
 * Seals `value` (anything JSON can hold) for the place `aad` names, under the active data key (created when the
 * database has none yet).
 * @throws SecretsKeyError when the master key does not open the active data key.
 */
export async function sealSecret(q: Queryable, value: unknown, aad: string): Promise<string> {
  if (value === undefined) throw new TypeError('sealSecret: undefined cannot be sealed');
  const { id, key } = await activeDataKey(q);
  const box = encrypt(key, Buffer.from(JSON.stringify(value), 'utf8'), valueAad(id, aad));
  return `enc:v1:${id}:${box.toString('base64url')}`;
}

/**
 * The value a stored secret holds. A value that is not sealed is answered as it is: rows written before migration 025
 * read correctly until the start-up pass seals them. Costs one AES-GCM decryption, plus one query the first time a
 * data key is met in this process.
 * @throws SealedSecretError when the value does not open at `aad` (altered, or copied from another place);
 * SecretsKeyError when the master key does not open its data key.
 */
export async function openSecret(q: Queryable, stored: unknown, aad: string): Promise<unknown> {
  if (typeof stored !== 'string') return stored;
  const m = SEALED.exec(stored);
  if (!m) return stored;
  const keyId = m[1]!;
  const key = dataKeys.get(keyId) ?? (await loadDataKey(q, keyId));
  let plain: Buffer;
  try {
    plain = decrypt(key, Buffer.from(m[2]!, 'base64url'), valueAad(keyId, aad));
  } catch {
    throw new SealedSecretError(`the sealed secret at ${aad} does not open: it was altered, or copied from another place`);
  }
  return JSON.parse(plain.toString('utf8')) as unknown;
}

// ---- data keys (the SQL of secret_keys) ----

interface KeyRow {
  id: string;
  wrapped_key: string;
  master_key_id: string;
  active: boolean;
}

function unwrap(row: Pick<KeyRow, 'id' | 'wrapped_key' | 'master_key_id'>): Buffer {
  const { master, source } = configured();
  if (row.master_key_id !== master.id) {
    throw new SecretsKeyError(
      `the master key from ${source} is not the one this database's secrets are sealed under: the stored data keys were ` +
        `wrapped under master key ${row.master_key_id}, the given key is ${master.id}. Start with the key the database ` +
        'was set up with (SECRETS_KEY, or the key file SECRETS_KEY_FILE / DATA_DIR/secrets.key); nothing was changed',
    );
  }
  try {
    return unwrapDataKey(master, row.id, row.wrapped_key);
  } catch {
    throw new SecretsKeyError(`data key ${row.id} does not unwrap under master key ${master.id} (from ${source}): its row was altered`);
  }
}

async function loadDataKey(q: Queryable, keyId: string): Promise<Buffer> {
  configured(); // before the round trip: an unconfigured process fails without touching the database
  const { rows } = await q.query<KeyRow>('SELECT id, wrapped_key, master_key_id, active FROM secret_keys WHERE id = $1', [keyId]);
  if (!rows[0]) throw new SealedSecretError(`a secret is sealed under data key ${keyId}, which is not in secret_keys`);
  const key = unwrap(rows[0]);
  dataKeys.set(keyId, key);
  return key;
}

async function activeDataKey(q: Queryable): Promise<{ id: string; key: Buffer }> {
  for (let attempt = 0; attempt < 2; attempt++) {
    // FOR SHARE: a data-key rotation (which steps this key down) waits for the transaction sealing under it, and so
    // re-seals what it writes (server/domain/secrets/rotate-key.ts).
    const { rows } = await q.query<KeyRow>('SELECT id, wrapped_key, master_key_id, active FROM secret_keys WHERE active FOR SHARE');
    const row = rows[0];
    if (row) {
      const key = dataKeys.get(row.id) ?? unwrap(row);
      dataKeys.set(row.id, key);
      return { id: row.id, key };
    }
    // No key yet (a database migrated but never started by `serve`): make the first one. Two writers racing meet at
    // the one-active index; the loser's insert does nothing and it reads the winner's key.
    await insertDataKey(q, { active: true, onConflictDoNothing: true });
  }
  throw new Error('unreachable: no active data key after creating one');
}

async function insertDataKey(q: Queryable, opts: { active: boolean; onConflictDoNothing?: boolean }): Promise<string | undefined> {
  const { master } = configured();
  const id = randomBytes(12).toString('base64url');
  const key = newDataKey();
  const { rowCount } = await q.query(
    `INSERT INTO secret_keys (id, wrapped_key, master_key_id, active) VALUES ($1, $2, $3, $4)
     ${opts.onConflictDoNothing ? 'ON CONFLICT (active) WHERE active DO NOTHING' : ''}`,
    [id, wrapDataKey(master, id, key), master.id, opts.active],
  );
  if (rowCount === 0) return undefined;
  dataKeys.set(id, key);
  return id;
}

/**
 * The start-up check: with no data key yet, creates the first one; otherwise unwraps every stored data key with the
 * configured master key (keeping them in memory), so a wrong key is found before anything is read or written.
 * @throws SecretsKeyError naming the stored and the given master key ids (never a key) when the key is wrong; the
 * database is left as it was.
 */
export async function ensureSecretsKey(q: Queryable): Promise<{ created: boolean; keyIds: string[] }> {
  const { rows } = await q.query<KeyRow>('SELECT id, wrapped_key, master_key_id, active FROM secret_keys ORDER BY created_at, id');
  if (rows.length === 0) {
    const id = await insertDataKey(q, { active: true, onConflictDoNothing: true });
    if (id) return { created: true, keyIds: [id] };
    return ensureSecretsKey(q); // another process made it first
  }
  // Every row is checked before any is cached, so a half-wrong set of keys changes nothing either.
  const keys = rows.map((r) => [r.id, unwrap(r)] as const);
  for (const [id, key] of keys) dataKeys.set(id, key);
  return { created: false, keyIds: rows.map((r) => r.id) };
}

/** The ids of the stored data keys, oldest first, and which one is active. */
export async function listDataKeys(q: Queryable): Promise<{ id: string; active: boolean; master_key_id: string }[]> {
  const { rows } = await q.query<KeyRow>('SELECT id, master_key_id, active FROM secret_keys ORDER BY created_at, id');
  return rows.map((r) => ({ id: r.id, active: r.active, master_key_id: r.master_key_id }));
}

/**
 * Re-wraps every data key under `newMasterKey`, in the caller's transaction (rows locked). Values are not touched: they
 * stay sealed under the same data keys, so processes holding those keys keep working through the rotation. After it,
 * this process uses the new master key.
 * @throws SecretsKeyError when the configured (old) master key does not open every row: nothing is changed.
 */
export async function rewrapDataKeys(tx: Queryable, newMasterKey: Buffer): Promise<{ keyIds: string[]; from: string; to: string }> {
  const next = deriveMasterKey(newMasterKey);
  const { rows } = await tx.query<KeyRow>('SELECT id, wrapped_key, master_key_id, active FROM secret_keys ORDER BY created_at, id FOR UPDATE');
  const keys = rows.map((r) => [r.id, unwrap(r)] as const);
  const from = configured().master.id;
  for (const [id, key] of keys) {
    await tx.query('UPDATE secret_keys SET wrapped_key = $2, master_key_id = $3, rotated_at = now() WHERE id = $1', [id, wrapDataKey(next, id, key), next.id]);
    dataKeys.set(id, key);
  }
  state = { master: next, source: configured().source };
  return { keyIds: keys.map(([id]) => id), from, to: next.id };
}

/**
 * Makes a fresh data key the active one (the previous one stays, inactive, so what is sealed under it still opens), in
 * the caller's transaction. Answers the new key's id.
 */
export async function createActiveDataKey(tx: Queryable): Promise<string> {
  await tx.query('SELECT id FROM secret_keys FOR UPDATE');
  // The one-active index allows no moment with two: the old one steps down first.
  await tx.query('UPDATE secret_keys SET active = false WHERE active');
  const id = await insertDataKey(tx, { active: true });
  return id!;
}

/** Deletes data keys (none of whose values may still exist: the caller has checked). */
export async function deleteDataKeys(tx: Queryable, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await tx.query('DELETE FROM secret_keys WHERE id = ANY($1::text[]) AND NOT active', [[...ids]]);
  for (const id of ids) dataKeys.delete(id);
}
