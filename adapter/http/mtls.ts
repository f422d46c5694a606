import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import type { ConfigIssue, MtlsConfig } from './config';

/** PEM text from a data URL (`data:[type][;base64],payload`); plain PEM text is accepted as is. */
export function pemFromDataUrl(value: string): string {
  if (!value.startsWith('data:')) return value;
  const comma = value.indexOf(',');
  if (comma < 0) throw new Error('not a data URL: no comma');
  const meta = value.slice(5, comma);
  const payload = value.slice(comma + 1);
  return /;base64$/i.test(meta) ? Buffer.from(payload, 'base64').toString('utf8') : decodeURIComponent(payload);
}

/** A data URL holding `pem`, the form the configuration stores certificates and keys in. */
export function pemToDataUrl(pem: string, type = 'application/x-pem-file'): string {
  return `data:${type};base64,${Buffer.from(pem, 'utf8').toString('base64')}`;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM material decoded for Node's TLS options. */
export interface MtlsMaterial {
  cert?: string;
  key?: string;
  ca?: string[];
}

export function decodeMtls(mtls: MtlsConfig): MtlsMaterial {
  const out: MtlsMaterial = {};
  if (mtls.cert !== undefined) out.cert = pemFromDataUrl(mtls.cert);
  if (mtls.key !== undefined) out.key = pemFromDataUrl(mtls.key);
  if (mtls.ca !== undefined) out.ca = pemFromDataUrl(mtls.ca).match(PEM_CERT) ?? [];
  return out;
}

/**
 * Checks client certificate material before it is stored: each part parses, the key belongs to the certificate, and
 * the certificate is valid at `now`. Returns every problem, each naming its field (`/mtls/cert`, `/mtls/key`,
 * `/mtls/ca`); an empty list means usable. Uses Node's X.509 support, which (unlike node-forge) also reads EC keys.
 */
export function checkMtlsMaterial(cert: string | undefined, key: string | undefined, ca?: string, now: Date = new Date()): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  let x509: X509Certificate | undefined;
  let keyObject: KeyObject | undefined;
  if (cert !== undefined) {
    try {
      x509 = new X509Certificate(pemFromDataUrl(cert));
    } catch (e) {
      issues.push({ path: '/mtls/cert', message: `is not a PEM certificate (${(e as Error).message})` });
    }
  }
  if (key !== undefined) {
    try {
      keyObject = createPrivateKey(pemFromDataUrl(key));
    } catch (e) {
      issues.push({ path: '/mtls/key', message: `is not an unencrypted PEM private key (${(e as Error).message})` });
    }
  }
  if (ca !== undefined) {
    try {
      const blocks = pemFromDataUrl(ca).match(PEM_CERT) ?? [];
      if (blocks.length === 0) throw new Error('no CERTIFICATE block');
      for (const b of blocks) new X509Certificate(b);
    } catch (e) {
      issues.push({ path: '/mtls/ca', message: `is not a PEM certificate bundle (${(e as Error).message})` });
    }
  }
  if (x509 && keyObject && !x509.checkPrivateKey(keyObject)) {
    issues.push({ path: '/mtls/key', message: 'does not match the certificate (a different key pair)' });
  }
  if (x509) {
    if (new Date(x509.validTo).getTime() < now.getTime()) {
      issues.push({ path: '/mtls/cert', message: `has expired (valid to ${new Date(x509.validTo).toISOString()})` });
    } else if (new Date(x509.validFrom).getTime() > now.getTime()) {
      issues.push({ path: '/mtls/cert', message: `is not valid yet (valid from ${new Date(x509.validFrom).toISOString()})` });
    }
  }
  return issues;
}
