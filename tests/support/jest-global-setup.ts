import { ensureKerberosAddon } from './kerberos-addon';
import { markTestRun } from './samba-ad';
import { KERBEROS_TEST_CCACHE_DIR, KERBEROS_TEST_KRB5_CONF } from './samba-kerberos';
import { TEST_SECRETS_KEY } from './secrets';

/**
 * Runs once in jest's main process before any worker starts. It starts nothing: shared real servers
 * (Samba AD) start lazily in the first test file that needs them; this only gives the run an id that
 * the workers inherit, so the teardown can tell this run's lease on them from other runs'.
 */
export default async function globalSetup(): Promise<void> {
  markTestRun();
  // The native addon behind Kerberos (directory binds, HTTP negotiate): built here once, so no file has to.
  await ensureKerberosAddon();
  // libkrb5 reads these from the real environment, which jest's per-file process.env copy cannot change: set them
  // here, so workers inherit them (adapter/kerberos keeps an inherited DIR: collection).
  process.env['KRB5CCNAME'] ??= `DIR:${KERBEROS_TEST_CCACHE_DIR}-${process.pid}`;
  process.env['KRB5_CONFIG'] ??= KERBEROS_TEST_KRB5_CONF;
  // Processes the tests spawn (CLI, workers) inherit it and open what the test process sealed.
  process.env['SECRETS_KEY'] ??= TEST_SECRETS_KEY;
}
