// The directory executor over an in-memory Directory (the adapter's interface); tests/integration/executors.test.ts
// runs the same operations against the real Samba AD.
import { DirectoryError, DirectoryErrorCode, type Directory, type DirectoryUser, type GroupKey, type UserKey } from '../../adapter';
import { compiledTask, stepContext } from '../../tests/support/executors';
import type { DirectoryOperation } from '../document';
import { createDirectoryExecutor, groupKey, userKey } from './directory';

function user(sam: string, over: Partial<DirectoryUser> = {}): DirectoryUser {
  return {
    dn: `CN=${sam},OU=People,DC=test,DC=local`,
    sAMAccountName: sam,
    userPrincipalName: `${sam}@test.local`,
    mail: null,
    displayName: sam.toUpperCase(),
    enabled: true,
    managerDn: null,
    attributes: { department: 'IT', cost_center: null, company: 'ACME', employee_id: null, title: null },
    ...over,
  };
}

const calls: unknown[][] = [];
const users = new Map<string, DirectoryUser>([
  ['jdoe', user('jdoe', { managerDn: 'CN=boss,OU=People,DC=test,DC=local', mail: 'jdoe@test.local' })],
  ['boss', user('boss')],
]);
const members = new Set<string>();
let failWith: DirectoryError | undefined;

function find(key: UserKey): DirectoryUser {
  const u = [...users.values()].find((x) => (key.by === 'dn' ? x.dn === key.value : key.by === 'userPrincipalName' ? x.userPrincipalName === key.value : x.sAMAccountName === key.value));
  if (!u) throw new DirectoryError(DirectoryErrorCode.NOT_FOUND, `no user with ${key.by} ${key.value}`);
  return u;
}

const fake: Pick<Directory, 'findUser' | 'findManager' | 'addGroupMember' | 'removeGroupMember' | 'setAttributes'> = {
  async findUser(key) {
    calls.push(['findUser', key]);
    if (failWith) throw failWith;
    return find(key);
  },
  async findManager(key) {
    calls.push(['findManager', key]);
    const u = find(key);
    return u.managerDn ? find({ by: 'dn', value: u.managerDn }) : null;
  },
  async addGroupMember(group: GroupKey, key: UserKey) {
    calls.push(['addGroupMember', group, key]);
    if (failWith) throw failWith;
    const u = find(key);
    const k = `${group.value}|${u.dn}`;
    const changed = !members.has(k);
    members.add(k);
    return { changed, reason: changed ? 'added' : 'already-member', groupDn: group.value, memberDn: u.dn };
  },
  async removeGroupMember(group: GroupKey, key: UserKey) {
    calls.push(['removeGroupMember', group, key]);
    const u = find(key);
    const changed = members.delete(`${group.value}|${u.dn}`);
    return { changed, reason: changed ? 'removed' : 'not-a-member', groupDn: group.value, memberDn: u.dn };
  },
  async setAttributes(key, values) {
    calls.push(['setAttributes', key, values]);
    if ('userPassword' in values) throw new DirectoryError(DirectoryErrorCode.ATTRIBUTE_NOT_ALLOWED, 'userPassword may not be written');
    return { dn: find(key).dn, changed: Object.keys(values).filter((k) => values[k] !== 'unchanged') };
  },
};

const executor = createDirectoryExecutor({ getDirectory: () => fake as Directory });
const exec = (operation: DirectoryOperation, input: Record<string, unknown>) =>
  executor(compiledTask({ kind: 'directory', operation, incoming: {} }), input, stepContext());

beforeEach(() => {
  calls.length = 0;
  failWith = undefined;
});

describe('directory executor (in-memory directory)', () => {
  test('user and group names map to lookup keys: DN, UPN, sAMAccountName', () => {
    expect(userKey('CN=John Doe,OU=People,DC=test,DC=local')).toEqual({ by: 'dn', value: 'CN=John Doe,OU=People,DC=test,DC=local' });
    expect(userKey('jdoe@test.local')).toEqual({ by: 'userPrincipalName', value: 'jdoe@test.local' });
    expect(userKey('jdoe')).toEqual({ by: 'sAMAccountName', value: 'jdoe' });
    expect(userKey('o(brien)')).toEqual({ by: 'sAMAccountName', value: 'o(brien)' });
    expect(groupKey('CN=VDI Users,OU=Groups,DC=test,DC=local')).toEqual({ by: 'dn', value: 'CN=VDI Users,OU=Groups,DC=test,DC=local' });
    expect(groupKey('VDI-Users')).toEqual({ by: 'sAMAccountName', value: 'VDI-Users' });
  });

  test('addGroupMember / removeGroupMember report whether anything changed', async () => {
    expect(await exec('addGroupMember', { user: 'jdoe', group: 'VDI-Users' })).toEqual({ ok: true, output: { changed: true } });
    expect(await exec('addGroupMember', { user: 'jdoe@test.local', group: 'VDI-Users' })).toEqual({ ok: true, output: { changed: false } });
    expect(calls[0]).toEqual(['addGroupMember', { by: 'sAMAccountName', value: 'VDI-Users' }, { by: 'sAMAccountName', value: 'jdoe' }]);
    expect(await exec('removeGroupMember', { user: 'jdoe', group: 'VDI-Users' })).toEqual({ ok: true, output: { changed: true } });
    expect(await exec('removeGroupMember', { user: 'jdoe', group: 'VDI-Users' })).toEqual({ ok: true, output: { changed: false } });
  });

  test('setAttribute: strings, numbers, booleans, arrays and null', async () => {
    expect(await exec('setAttribute', { user: 'jdoe', attribute: 'title', value: 'Engineer' })).toEqual({ ok: true, output: { changed: true } });
    expect(await exec('setAttribute', { user: 'jdoe', attribute: 'title', value: 'unchanged' })).toEqual({ ok: true, output: { changed: false } });
    await exec('setAttribute', { user: 'jdoe', attribute: 'extensionAttribute1', value: 42 });
    await exec('setAttribute', { user: 'jdoe', attribute: 'msExchHideFromAddressLists', value: true });
    await exec('setAttribute', { user: 'jdoe', attribute: 'otherTelephone', value: ['1', '2'] });
    await exec('setAttribute', { user: 'jdoe', attribute: 'title', value: null });
    expect(calls.map((c) => c[2])).toEqual([
      { title: 'Engineer' },
      { title: 'unchanged' },
      { extensionAttribute1: '42' },
      { msExchHideFromAddressLists: 'TRUE' },
      { otherTelephone: ['1', '2'] },
      { title: null },
    ]);
    expect(await exec('setAttribute', { user: 'jdoe', attribute: 'title' })).toMatchObject({ ok: false, error: { code: 'DIRECTORY', retryable: false } });
  });

  test('findUser: found with entry, or found: false; asked-for attributes only', async () => {
    expect(await exec('findUser', { user: 'jdoe' })).toEqual({
      ok: true,
      output: {
        found: true,
        user: {
          dn: 'CN=jdoe,OU=People,DC=test,DC=local',
          sAMAccountName: 'jdoe',
          userPrincipalName: 'jdoe@test.local',
          mail: 'jdoe@test.local',
          displayName: 'JDOE',
          attributes: { department: 'IT', cost_center: null, company: 'ACME', employee_id: null, title: null, enabled: true, managerDn: 'CN=boss,OU=People,DC=test,DC=local' },
        },
      },
    });
    expect(await exec('findUser', { user: 'jdoe', attributes: ['department', 'nope'] })).toMatchObject({
      output: { user: { attributes: { department: 'IT', nope: null } } },
    });
    expect(await exec('findUser', { user: 'ghost' })).toEqual({ ok: true, output: { found: false, user: null } });
  });

  test('findManager: the manager, or found: false when none; an unknown user is an error', async () => {
    expect(await exec('findManager', { user: 'jdoe' })).toMatchObject({ ok: true, output: { found: true, manager: { sAMAccountName: 'boss' } } });
    expect(await exec('findManager', { user: 'boss' })).toEqual({ ok: true, output: { found: false, manager: null } });
    expect(await exec('findManager', { user: 'ghost' })).toMatchObject({ ok: false, error: { code: 'DIRECTORY', retryable: false, message: expect.stringContaining('NOT_FOUND') } });
  });

  test('adapter errors are DIRECTORY: retryable only when the adapter says so', async () => {
    failWith = new DirectoryError(DirectoryErrorCode.UNAVAILABLE, 'cannot connect to ldaps://dc1:636');
    expect(await exec('addGroupMember', { user: 'jdoe', group: 'G' })).toEqual({
      ok: false,
      error: { code: 'DIRECTORY', retryable: true, message: 'addGroupMember: UNAVAILABLE: cannot connect to ldaps://dc1:636' },
    });
    failWith = undefined;
    expect(await exec('setAttribute', { user: 'jdoe', attribute: 'userPassword', value: 'x' })).toMatchObject({
      ok: false,
      error: { code: 'DIRECTORY', retryable: false, message: expect.stringContaining('ATTRIBUTE_NOT_ALLOWED') },
    });
    expect(await exec('addGroupMember', { user: '', group: 'G' })).toMatchObject({ ok: false, error: { code: 'DIRECTORY', retryable: false } });
  });

  test('no directory configured is a non-retryable DIRECTORY error', async () => {
    const none = createDirectoryExecutor({ getDirectory: () => undefined });
    expect(await none(compiledTask({ kind: 'directory', operation: 'findUser', incoming: {} }), { user: 'x' }, stepContext())).toMatchObject({
      ok: false,
      error: { code: 'DIRECTORY', retryable: false },
    });
  });
});
