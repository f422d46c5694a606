import { DirectoryError, DirectoryErrorCode, type Directory, type DirectoryUser } from '../../../adapter';
import { createMemoryLogger } from '../../../tests/support/memory-logger';
import { adRequesterDirectory, type DirectoryProvider } from './requester-directory';

const user = (over: Partial<DirectoryUser>): DirectoryUser => ({
  dn: 'CN=x,DC=corp',
  sAMAccountName: 'x',
  userPrincipalName: null,
  mail: null,
  displayName: null,
  enabled: true,
  managerDn: null,
  attributes: { department: null, cost_center: null, company: null, employee_id: null, title: null },
  ...over,
});

/** A provider over a fake directory answering findUser/findManager from the given functions. */
function providerOf(d: Partial<Directory> | undefined): DirectoryProvider {
  return { get: async () => d as Directory | undefined, close: async () => undefined };
}

describe('adRequesterDirectory', () => {
  test('a person is looked up by mail: their consumer attributes are the snapshot, their manager is its mail', async () => {
    const { logger } = createMemoryLogger();
    const asked: unknown[] = [];
    const dir = adRequesterDirectory(
      providerOf({
        findUser: async (key) => {
          asked.push(key);
          return user({ attributes: { department: 'IT', cost_center: 'CC-7', company: 'Corp', employee_id: '42', title: 'Engineer' } });
        },
        findManager: async () => user({ mail: 'boss@example.com' }),
      }),
      logger,
    );
    expect(await dir.lookup('jane@example.com')).toEqual({ department: 'IT', cost_center: 'CC-7', company: 'Corp', employee_id: '42', title: 'Engineer' });
    expect(asked).toEqual([{ by: 'mail', value: 'jane@example.com' }]);
    expect(await dir.managerOf!('jane@example.com')).toBe('boss@example.com');
  });

  test('no manager, an unknown person or an unconfigured directory is "unknown", silently', async () => {
    const { logger, lines } = createMemoryLogger();
    const none = adRequesterDirectory(
      providerOf({
        findUser: async () => {
          throw new DirectoryError(DirectoryErrorCode.NOT_FOUND, 'no such user');
        },
        findManager: async () => null,
      }),
      logger,
    );
    expect(await none.lookup('ghost@example.com')).toBeUndefined();
    expect(await none.managerOf!('ghost@example.com')).toBeUndefined();
    const unconfigured = adRequesterDirectory(providerOf(undefined), logger);
    expect(await unconfigured.lookup('jane@example.com')).toBeUndefined();
    expect(await unconfigured.managerOf!('jane@example.com')).toBeUndefined();
    expect(lines.filter((l) => l['level'] === 'warn')).toEqual([]);
  });

  test('an unreachable directory never fails the order or the leaver: the answer is unknown and a warning is logged', async () => {
    const { logger, lines } = createMemoryLogger();
    const down = adRequesterDirectory(
      providerOf({
        findUser: async () => {
          throw new DirectoryError(DirectoryErrorCode.UNAVAILABLE, 'connect ECONNREFUSED');
        },
        findManager: async () => {
          throw new DirectoryError(DirectoryErrorCode.UNAVAILABLE, 'connect ECONNREFUSED');
        },
      }),
      logger,
    );
    expect(await down.lookup('jane@example.com')).toBeUndefined();
    expect(await down.managerOf!('jane@example.com')).toBeUndefined();
    expect(lines.filter((l) => l['level'] === 'warn').map((l) => l['message'])).toEqual([
      'directory lookup failed; going on without it',
      'directory manager lookup failed; going on without it',
    ]);
  });
});
