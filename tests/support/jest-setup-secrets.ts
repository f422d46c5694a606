// Runs before each test file (jest `setupFiles`): every database a test opens seals and opens secrets under the test
// master key, as `openRuntime` configures a process with its loaded one.
// The secrets module alone (the same module instance adapter/index.ts re-exports), so a unit test does not load all of adapter.
import { configureSecrets, decodeMasterKey } from '../../adapter/secrets';
import { TEST_SECRETS_KEY } from './secrets';

configureSecrets({ masterKey: decodeMasterKey(TEST_SECRETS_KEY, 'TEST_SECRETS_KEY'), source: 'the test key (tests/support/secrets.ts)' });
