import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretsKeyError, decodeMasterKey, loadMasterKey, masterKeyFile, writeKeyFileOnce } from './master-key';

describe('the master key', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'provisio-master-key-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('SECRETS_KEY: standard or URL-safe base64 of at least 32 bytes; a bad one is named, never echoed', () => {
    const raw = randomBytes(32);
    expect(decodeMasterKey(raw.toString('base64'), 'SECRETS_KEY').equals(raw)).toBe(true);
    expect(decodeMasterKey(raw.toString('base64url'), 'SECRETS_KEY').equals(raw)).toBe(true);
    const short = randomBytes(16).toString('base64');
    expect(() => decodeMasterKey(short, 'SECRETS_KEY')).toThrow(new SecretsKeyError('SECRETS_KEY must decode to at least 32 bytes (got 16); e.g. `openssl rand -base64 32`'));
    expect(() => decodeMasterKey('not base64!', 'SECRETS_KEY')).toThrow(/^SECRETS_KEY must be base64/);
    expect(loadMasterKey({ envKey: raw.toString('base64'), dataDir: dir })).toMatchObject({ source: 'env', file: join(dir, 'secrets.key') });
  });

  test('without SECRETS_KEY a key is generated into DATA_DIR/secrets.key (0600) once, then read', () => {
    const first = loadMasterKey({ dataDir: join(dir, 'nested') });
    expect(first.source).toBe('generated');
    expect(first.file).toBe(join(dir, 'nested', 'secrets.key'));
    expect(statSync(first.file).mode & 0o777).toBe(0o600);
    expect(first.key.length).toBe(32);
    const second = loadMasterKey({ dataDir: join(dir, 'nested') });
    expect(second.source).toBe('file');
    expect(second.key.equals(first.key)).toBe(true);
  });

  test('SECRETS_KEY_FILE names another file', () => {
    const file = join(dir, 'elsewhere.key');
    expect(masterKeyFile({ keyFile: file, dataDir: dir })).toBe(file);
    expect(loadMasterKey({ keyFile: file, dataDir: dir })).toMatchObject({ source: 'generated', file });
  });

  test('two writers racing for the file: one writes, the other keeps what is there', () => {
    const file = join(dir, 'race.key');
    expect(writeKeyFileOnce(file, 'first\n')).toBe(true);
    expect(writeKeyFileOnce(file, 'second\n')).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('first\n');
  });

  test('a key file readable by group or others is refused with the fix; one holding no key is named', () => {
    const file = join(dir, 'secrets.key');
    writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o644 });
    chmodSync(file, 0o644);
    expect(() => loadMasterKey({ dataDir: dir })).toThrow(`the secrets key file ${file} is readable by group or others (mode 644); run \`chmod 600 ${file}\``);
    chmodSync(file, 0o600);
    expect(loadMasterKey({ dataDir: dir }).source).toBe('file');
    writeFileSync(file, 'short\n');
    expect(() => loadMasterKey({ dataDir: dir })).toThrow(`the secrets key file ${file} must decode to at least 32 bytes`);
  });
});
