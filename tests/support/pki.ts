import { constants, createPrivateKey, generateKeyPairSync, privateEncrypt, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

/** A certificate and its key, PEM encoded. */
export interface Issued {
  certPem: string;
  keyPem: string;
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

// Node generates the RSA keys; node-forge builds the certificates.
function rsaKeyPair(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()) as forge.pki.rsa.PrivateKey;
  return { privateKey: key, publicKey: forge.pki.setRsaPublicKey(key.n, key.e) };
}

// forge's pure-JS RSA signature costs ~170 ms per certificate; the same PKCS#1 v1.5 signature from OpenSSL is instant.
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');
function nativeSigner(key: forge.pki.rsa.PrivateKey): forge.pki.rsa.PrivateKey {
  const native: KeyObject = createPrivateKey(forge.pki.privateKeyToPem(key));
  const sign = (md: forge.md.MessageDigest): string => {
    const digest = Buffer.from(md.digest().getBytes(), 'binary');
    return privateEncrypt({ key: native, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA256_DIGEST_INFO, digest])).toString('binary');
  };
  return { ...key, sign } as forge.pki.rsa.PrivateKey;
}

let serial = 1;

function build(opts: {
  cn: string;
  issuer?: Issued;
  isCa?: boolean;
  server?: boolean;
  /** Further DNS names in a server certificate's SAN, beside 127.0.0.1 and localhost. */
  dnsNames?: string[];
  notBefore?: Date;
  notAfter?: Date;
}): Issued {
  const keys = rsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = (serial++).toString(16).padStart(2, '0');
  cert.validity.notBefore = opts.notBefore ?? new Date(Date.now() - 60_000);
  cert.validity.notAfter = opts.notAfter ?? new Date(Date.now() + 24 * 3600_000);
  const subject = [{ name: 'commonName', value: opts.cn }];
  cert.setSubject(subject);
  cert.setIssuer(opts.issuer ? opts.issuer.cert.subject.attributes : subject);
  const extensions: object[] = [{ name: 'basicConstraints', cA: opts.isCa === true, critical: true }];
  if (opts.isCa) {
    extensions.push({ name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true });
  } else {
    extensions.push({ name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true });
    extensions.push({ name: 'extKeyUsage', serverAuth: opts.server === true, clientAuth: opts.server !== true });
    if (opts.server) extensions.push({ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }, ...(opts.dnsNames ?? []).map((value) => ({ type: 2, value }))] });
  }
  cert.setExtensions(extensions);
  cert.sign(nativeSigner(opts.issuer ? opts.issuer.key : keys.privateKey), forge.md.sha256.create());
  return { cert, key: keys.privateKey, certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

export function createCa(cn: string): Issued {
  return build({ cn, isCa: true });
}

export function issueServerCert(ca: Issued, cn = 'localhost', dnsNames: string[] = []): Issued {
  return build({ cn, issuer: ca, server: true, dnsNames });
}

export function issueClientCert(ca: Issued, cn: string, validity: { notBefore?: Date; notAfter?: Date } = {}): Issued {
  return build({ cn, issuer: ca, ...validity });
}
