import { rm } from 'node:fs/promises';
import { releaseSambaAd } from './samba-ad';

/** Runs once after all test files: stops the shared Samba AD if this run started it and no other run uses it. */
export default async function globalTeardown(): Promise<void> {
  await releaseSambaAd();
  // This run's Kerberos ticket caches (jest-global-setup exported the DIR: collection).
  const cc = process.env['KRB5CCNAME'];
  if (cc?.startsWith('DIR:/tmp/provisio-test/krb5cc-')) await rm(cc.slice('DIR:'.length), { recursive: true, force: true });
}
