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

  test('a disabled manager is no approver: the answer is unknown, so the fallback approver gets the approval', async () => {
    const { logger } = createMemoryLogger();
    const dir = adRequesterDirectory(providerOf({ findManager: async () => user({ mail: 'boss@example.com', enabled: false }) }), logger);
    expect(await dir.managerOf!('jane@example.com')).toBeUndefined();
  });
});

describe('adRequesterDirectory.verify (the requester check of order placement)', () => {
  test('unconfigured, not found, found: the person with enabled flag, snapshot and groups searched once, by DN', async () => {
    const { logger } = createMemoryLogger();
    expect(await adRequesterDirectory(providerOf(undefined), logger).verify!('jane@example.com')).toEqual({ status: 'unconfigured' });
    const missing = adRequesterDirectory(
      providerOf({
        findUser: async () => {
          throw new DirectoryError(DirectoryErrorCode.NOT_FOUND, 'no such user');
        },
      }),
      logger,
    );
    expect(await missing.verify!('ghost@example.com')).toEqual({ status: 'not_found' });

    const searches: unknown[] = [];
    const found = adRequesterDirectory(
      providerOf({
        findUser: async () => user({ dn: 'CN=Jane,OU=Staff,DC=corp', enabled: false, attributes: { department: 'IT', cost_center: null, company: null, employee_id: null, title: null } }),
        listGroups: async (key, opts) => {
          searches.push({ key, opts });
          return [{ dn: 'CN=VDI Users,OU=Groups,DC=corp', sAMAccountName: 'VDI-Users', name: 'VDI Users', direct: false }];
        },
      }),
      logger,
    );
    const check = await found.verify!('jane@example.com');
    if (check.status !== 'found') throw new Error(`expected found, got ${check.status}`);
    expect(check.person.enabled).toBe(false);
    expect(check.person.snapshot).toMatchObject({ department: 'IT' });
    expect([...(await check.person.groups())].sort()).toEqual(['cn=vdi users,ou=groups,dc=corp', 'vdi users', 'vdi-users']);
    await check.person.groups();
    expect(searches).toEqual([{ key: { by: 'dn', value: 'CN=Jane,OU=Staff,DC=corp' }, opts: { nested: true } }]);
  });

  test.each([
    ['unreachable', DirectoryErrorCode.UNAVAILABLE, 'the directory did not answer'],
    ['refusing the service account', DirectoryErrorCode.INVALID_CREDENTIALS, 'check the active_directory settings'],
    ['ambiguous', DirectoryErrorCode.AMBIGUOUS, 'more than one directory account'],
  ])('a configured directory %s fails closed: DIRECTORY_UNAVAILABLE naming the settings section, never the server text', async (_l, code, words) => {
    const { logger } = createMemoryLogger();
    const dir = adRequesterDirectory(
      providerOf({
        findUser: async () => {
          throw new DirectoryError(code, 'ldaps://dc01.corp.example:636 said no to svc-provisio');
        },
      }),
      logger,
    );
    const err = await dir.verify!('jane@example.com').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'DIRECTORY_UNAVAILABLE', extra: { directory_code: code, settings_section: 'active_directory' } });
    expect((err as Error).message).toContain(words);
    expect((err as Error).message).not.toContain('dc01');
  });

  test('with Entra ID as the directory, DIRECTORY_UNAVAILABLE names the entra_id settings, not active_directory', async () => {
    const { logger } = createMemoryLogger();
    const provider: DirectoryProvider = {
      ...providerOf({
        findUser: async () => {
          throw new DirectoryError(DirectoryErrorCode.INVALID_CREDENTIALS, 'graph.microsoft.com said no to app 1234');
        },
      }),
      section: () => 'entra_id',
    };
    const err = await adRequesterDirectory(provider, logger).verify!('jane@example.com').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'DIRECTORY_UNAVAILABLE', extra: { directory_code: 'INVALID_CREDENTIALS', settings_section: 'entra_id' } });
    expect((err as Error).message).toContain('check the entra_id settings: tenant_id, client_id, client_secret');
    expect((err as Error).message).not.toContain('active_directory');
    expect((err as Error).message).not.toContain('1234');
  });

  test('a group search that fails is DIRECTORY_UNAVAILABLE too', async () => {
    const { logger } = createMemoryLogger();
    const dir = adRequesterDirectory(
      providerOf({
        findUser: async () => user({}),
        listGroups: async () => {
          throw new DirectoryError(DirectoryErrorCode.UNAVAILABLE, 'timeout');
        },
      }),
      logger,
    );
    const check = await dir.verify!('jane@example.com');
    if (check.status !== 'found') throw new Error('expected found');
    await expect(check.person.groups()).rejects.toMatchObject({ code: 'DIRECTORY_UNAVAILABLE' });
  });
});
