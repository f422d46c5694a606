import { releaseSambaAd } from './samba-ad';

/** Runs once after all test files: stops the shared Samba AD if this run started it and no other run uses it. */
export default async function globalTeardown(): Promise<void> {
  await releaseSambaAd();
}
