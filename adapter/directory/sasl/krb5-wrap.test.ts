/** RFC 3961 n-fold and RFC 3962 AES-CTS test vectors for the hand-written Kerberos crypto of krb5-wrap.ts. */
import { ctsDecrypt, ctsEncrypt, nfold } from './krb5-wrap';

test('n-fold matches RFC 3961 appendix A.1', () => {
  expect(nfold(Buffer.from('012345'), 8).toString('hex')).toBe('be072631276b1955');
  expect(nfold(Buffer.from('password'), 7).toString('hex')).toBe('78a07b6caf85fa');
  expect(nfold(Buffer.from('Rough Consensus, and Running Code'), 8).toString('hex')).toBe('bb6ed30870b7f0e0');
  expect(nfold(Buffer.from('kerberos'), 16).toString('hex')).toBe('6b65726265726f737b9b5b2b93132b93');
});

test('AES-CTS matches RFC 3962 appendix B, and decrypts back', () => {
  const key = Buffer.from('chicken teriyaki');
  const cases: [string, string][] = [
    ['4920776f756c64206c696b652074686520', 'c6353568f2bf8cb4d8a580362da7ff7f97'],
    ['4920776f756c64206c696b65207468652047656e6572616c20476175277320', 'fc00783e0efdb2c1d445d4c8eff7ed2297687268d6ecccc0c07b25e25ecfe5'],
    ['4920776f756c64206c696b65207468652047656e6572616c2047617527732043', '39312523a78662d5be7fcbcc98ebf5a897687268d6ecccc0c07b25e25ecfe584'],
  ];
  for (const [plain, cipher] of cases) {
    expect(ctsEncrypt(key, Buffer.from(plain, 'hex')).toString('hex')).toBe(cipher);
    expect(ctsDecrypt(key, Buffer.from(cipher, 'hex')).toString('hex')).toBe(plain);
  }
});
