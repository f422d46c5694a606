import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MASTER_KEY_MIN_BYTES } from './crypto';

/** The key file's name under DATA_DIR when SECRETS_KEY_FILE does not name another. */
export const SECRETS_KEY_FILE_NAME = 'secrets.key';

/**
 * The master key cannot be used: missing or malformed, a key file others may read, or a key that did not wrap the
 * data keys stored in the database. The message names the environment variable or file and what to do; never a key.
 */
export class SecretsKeyError extends Error {
  readonly code = 'SECRETS_KEY';
  constructor(message: string) {
    super(message);
    this.name = 'SecretsKeyError';
  }
}

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * Decodes a master key: standard or URL-safe base64 of at least 32 bytes.
 * @throws SecretsKeyError naming `source` (the variable or file), never echoing the value.
 */
export function decodeMasterKey(text: string, source: string): Buffer {
  const s = text.trim();
  if (!BASE64.test(s)) throw new SecretsKeyError(`${source} must be base64 (e.g. \`openssl rand -base64 32\`)`);
  const key = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length < MASTER_KEY_MIN_BYTES) {
    throw new SecretsKeyError(`${source} must decode to at least ${MASTER_KEY_MIN_BYTES} bytes (got ${key.length}); e.g. \`openssl rand -base64 32\``);
  }
  return key;
}

/** A new master key as stored in a key file: base64 of 32 random bytes and a newline. */
export function newMasterKeyText(): string {
  return `${randomBytes(32).toString('base64')}\n`;
}

export interface MasterKeySource {
  /** SECRETS_KEY: wins over any file. */
  envKey?: string | undefined;
  /** SECRETS_KEY_FILE; default `<dataDir>/secrets.key`. */
  keyFile?: string | undefined;
  dataDir: string;
}

export interface LoadedMasterKey {
  key: Buffer;
  /** `env`: SECRETS_KEY; `file`: an existing key file; `generated`: this call created the key file. */
  source: 'env' | 'file' | 'generated';
  /** The key file read or written (also set with `env`: where a generated key would have gone). */
  file: string;
}

/** The key file a source names. */
export function masterKeyFile(src: MasterKeySource): string {
  return src.keyFile !== undefined && src.keyFile !== '' ? src.keyFile : join(src.dataDir, SECRETS_KEY_FILE_NAME);
}

/**
 * Reads a key file, refusing one that group or others may read (as ssh refuses such a private key: the file is the
 * key to every secret in the database). Undefined when there is no file.
 * @throws SecretsKeyError for a readable-by-others file or content that is not a key.
 */
export function readMasterKeyFile(file: string): Buffer | undefined {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if ((mode & 0o077) !== 0) {
    throw new SecretsKeyError(`the secrets key file ${file} is readable by group or others (mode ${(mode & 0o777).toString(8)}); run \`chmod 600 ${file}\``);
  }
  return decodeMasterKey(readFileSync(file, 'utf8'), `the secrets key file ${file}`);
}

/**
 * Writes `text` to `file` with mode 0600, only if no such file exists; true when this call wrote it. The text goes
 * to a temporary file first (created with O_EXCL, fsynced) and is hard-linked into place, which fails if the name
 * exists: two processes starting at once on one DATA_DIR cannot both write a key, and nobody ever reads a
 * half-written one (an O_EXCL create of the file itself would leave it empty for a moment).
 */
export function writeKeyFileOnce(file: string, text: string): boolean {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  writeSecretFile(tmp, text);
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    unlinkSync(tmp);
  }
}

/** Creates `file` (which must not exist) holding `text`, mode 0600 whatever the umask, fsynced. */
export function writeSecretFile(file: string, text: string): void {
  const fd = openSync(file, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(file, 0o600);
}

/** Renames `from` over `to` and fsyncs the directory, so the new name survives a crash. */
export function replaceFile(from: string, to: string): void {
  renameSync(from, to);
  try {
    const dir = openSync(dirname(to), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // Some file systems refuse fsync on a directory; the rename itself is done.
  }
}

/**
 * The master key of this process: SECRETS_KEY when set; else the key file (SECRETS_KEY_FILE, default
 * `<DATA_DIR>/secrets.key`); else a key generated into that file (mode 0600). The caller logs a warning for a
 * generated key: every other process of this database needs the same key.
 * @throws SecretsKeyError for a bad SECRETS_KEY, a key file others may read, or one that holds no key.
 */
export function loadMasterKey(src: MasterKeySource): LoadedMasterKey {
  const file = masterKeyFile(src);
  if (src.envKey !== undefined && src.envKey !== '') return { key: decodeMasterKey(src.envKey, 'SECRETS_KEY'), source: 'env', file };
  const existing = readMasterKeyFile(file);
  if (existing) return { key: existing, source: 'file', file };
  const wrote = writeKeyFileOnce(file, newMasterKeyText());
  return { key: readMasterKeyFile(file)!, source: wrote ? 'generated' : 'file', file };
}

/** Where an interrupted `secrets rotate-key` leaves the new key (written before its commit, renamed after). */
export function pendingKeyFile(file: string): string | undefined {
  const pending = `${file}.new`;
  return existsSync(pending) ? pending : undefined;
}
