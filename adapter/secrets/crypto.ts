import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/*
 * The primitives of encryption at rest: AES-256-GCM with a 12-byte random IV and a 16-byte tag, laid out as
 * IV | ciphertext | tag. Envelope encryption: values are sealed under a data key (secret_keys), data keys are wrapped
 * under a key derived from the master key. Nothing here touches the database.
 */

const IV_BYTES = 12;
const TAG_BYTES = 16;
export const DATA_KEY_BYTES = 32;

/** Minimum length of a master key, decoded (SECRETS_KEY or the key file). */
export const MASTER_KEY_MIN_BYTES = 32;

/** AES-256-GCM of `plain` under `key`, bound to `aad`: IV | ciphertext | tag. */
export function encrypt(key: Buffer, plain: Buffer, aad: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

/**
 * The plaintext of `box` (see {@link encrypt}). Throws when the key or the AAD is not the one it was sealed with, or
 * the bytes were altered (the tag does not verify); the error says nothing about the content.
 */
export function decrypt(key: Buffer, box: Buffer, aad: string): Buffer {
  if (box.length < IV_BYTES + TAG_BYTES) throw new Error('sealed data too short');
  const decipher = createDecipheriv('aes-256-gcm', key, box.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(box.subarray(box.length - TAG_BYTES));
  return Buffer.concat([decipher.update(box.subarray(IV_BYTES, box.length - TAG_BYTES)), decipher.final()]);
}

/**
 * What a master key is used as. The master key itself never encrypts anything: HKDF derives the wrapping key from it
 * (so a master key longer than 32 bytes works, and the bytes of the key file are used for one purpose only) and,
 * with another label, the fingerprint stored beside each wrapped data key. The fingerprint names which master key
 * wrapped a row, so a start with the wrong key can say "stored: X, given: Y" without revealing either key.
 */
export interface MasterKey {
  /** Wraps and unwraps data keys (AES-256-GCM, AAD = the data key's id). */
  readonly wrapKey: Buffer;
  /** First 16 hex digits of SHA-256 of HKDF(master, 'provisio key id'). */
  readonly id: string;
}

/** @throws Error for a key shorter than {@link MASTER_KEY_MIN_BYTES}. */
export function deriveMasterKey(master: Buffer): MasterKey {
  if (master.length < MASTER_KEY_MIN_BYTES) throw new Error(`a master key must be at least ${MASTER_KEY_MIN_BYTES} bytes`);
  const wrapKey = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'provisio secrets wrap v1', 32));
  const idKey = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'provisio key id', 32));
  return { wrapKey, id: createHash('sha256').update(idKey).digest('hex').slice(0, 16) };
}

/** A fresh data key. */
export function newDataKey(): Buffer {
  return randomBytes(DATA_KEY_BYTES);
}

/** The stored form of a data key: base64 of IV | wrapped key | tag, bound to the key's id. */
export function wrapDataKey(master: MasterKey, keyId: string, dataKey: Buffer): string {
  return encrypt(master.wrapKey, dataKey, keyId).toString('base64');
}

/** @throws Error when `master` did not wrap it (or the row was altered, or moved to another id). */
export function unwrapDataKey(master: MasterKey, keyId: string, wrapped: string): Buffer {
  const key = decrypt(master.wrapKey, Buffer.from(wrapped, 'base64'), keyId);
  if (key.length !== DATA_KEY_BYTES) throw new Error('unwrapped data key has the wrong length');
  return key;
}
