import { randomBytes } from 'node:crypto';
import { decrypt, deriveMasterKey, encrypt, newDataKey, unwrapDataKey, wrapDataKey } from './crypto';

describe('AES-256-GCM envelope primitives', () => {
  const key = randomBytes(32);

  test('encrypt lays out IV | ciphertext | tag with a fresh IV each time, and decrypt reverses it', () => {
    const plain = Buffer.from('the value', 'utf8');
    const a = encrypt(key, plain, 'place');
    const b = encrypt(key, plain, 'place');
    expect(a.length).toBe(12 + plain.length + 16);
    expect(a.subarray(0, 12).equals(b.subarray(0, 12))).toBe(false);
    expect(decrypt(key, a, 'place').toString('utf8')).toBe('the value');
  });

  test('another AAD, another key, or one altered byte does not decrypt', () => {
    const box = encrypt(key, Buffer.from('the value'), 'place');
    expect(() => decrypt(key, box, 'elsewhere')).toThrow();
    expect(() => decrypt(randomBytes(32), box, 'place')).toThrow();
    for (const i of [0, 12, box.length - 1]) {
      const altered = Buffer.from(box);
      altered[i] = altered[i]! ^ 1;
      expect(() => decrypt(key, altered, 'place')).toThrow();
    }
    expect(() => decrypt(key, box.subarray(0, 20), 'place')).toThrow('sealed data too short');
  });

  test('a master key derives a stable 16-hex fingerprint that is not the key, and wraps data keys bound to their id', () => {
    const master = randomBytes(32);
    const m = deriveMasterKey(master);
    expect(m.id).toMatch(/^[0-9a-f]{16}$/);
    expect(deriveMasterKey(master).id).toBe(m.id);
    expect(deriveMasterKey(randomBytes(32)).id).not.toBe(m.id);
    expect(master.toString('hex')).not.toContain(m.id);
    expect(m.wrapKey.equals(master)).toBe(false);
    const dk = newDataKey();
    const wrapped = wrapDataKey(m, 'key-1', dk);
    expect(unwrapDataKey(m, 'key-1', wrapped).equals(dk)).toBe(true);
    expect(() => unwrapDataKey(m, 'key-2', wrapped)).toThrow();
    expect(() => unwrapDataKey(deriveMasterKey(randomBytes(32)), 'key-1', wrapped)).toThrow();
    expect(() => deriveMasterKey(randomBytes(31))).toThrow('at least 32 bytes');
  });
});
