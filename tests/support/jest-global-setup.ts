import { markTestRun } from './samba-ad';
import { TEST_SECRETS_KEY } from './secrets';

/**
 * Runs once in jest's main process before any worker starts. It starts nothing: shared real servers
 * (Samba AD) start lazily in the first test file that needs them; this only gives the run an id that
 * the workers inherit, so the teardown can tell this run's lease on them from other runs'.
 */
export default function globalSetup(): void {
  markTestRun();
  // Processes the tests spawn (CLI, workers) inherit it and open what the test process sealed.
  process.env['SECRETS_KEY'] ??= TEST_SECRETS_KEY;
}
