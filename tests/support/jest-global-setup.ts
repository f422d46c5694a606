import { markTestRun } from './samba-ad';

/**
 * Runs once in jest's main process before any worker starts. It starts nothing: shared real servers
 * (Samba AD) start lazily in the first test file that needs them; this only gives the run an id that
 * the workers inherit, so the teardown can tell this run's lease on them from other runs'.
 */
export default function globalSetup(): void {
  markTestRun();
}
