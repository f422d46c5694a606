import { DirectoryError, DirectoryErrorCode, createLogger } from '../../../adapter';
import { createDirectoryExecutor } from '../../../workflows';
import { compiledTask, stepContext } from '../../../tests/support/executors';
import { createDemoDirectory } from './demo-directory';
import { DEMO_GROUPS, DEMO_PEOPLE } from './demo-directory-fixture';
import { adRequesterDirectory, createDirectoryProvider, groupNames } from './requester-directory';

const mail = (value: string) => ({ by: 'mail' as const, value });
const sam = (value: string) => ({ by: 'sAMAccountName' as const, value });

describe('demo directory (in memory, over the fixture)', () => {
  test('the fixture: 6-8 people, managers, consumer attributes, nested groups, one disabled account', () => {
    expect(DEMO_PEOPLE.length).toBeGreaterThanOrEqual(6);
    expect(DEMO_PEOPLE.length).toBeLessThanOrEqual(8);
    expect(DEMO_PEOPLE.filter((p) => !p.enabled).map((p) => p.mail)).toEqual(['lee.leaver@example.com']);
    expect(DEMO_GROUPS.some((g) => g.members.some((m) => DEMO_GROUPS.some((x) => x.sAMAccountName === m)))).toBe(true);
  });

  test('finds a person by mail, sAMAccountName, UPN, employee id and DN, case-insensitively, with their attributes', async () => {
    const d = createDemoDirectory();
    const jane = await d.findUser(mail('Jane.Doe@Example.com'));
    expect(jane).toEqual({
      dn: 'CN=Jane Doe,OU=Users,OU=Demo,DC=example,DC=com',
      sAMAccountName: 'jane.doe',
      userPrincipalName: 'jane.doe@example.com',
      mail: 'jane.doe@example.com',
      displayName: 'Jane Doe',
      enabled: true,
      managerDn: 'CN=Morgan Boss,OU=Users,OU=Demo,DC=example,DC=com',
      attributes: { department: 'Engineering', cost_center: 'CC-ENG-100', company: 'Example Corp', employee_id: 'E1001', title: 'Software Engineer' },
    });
    for (const key of [sam('JANE.DOE'), { by: 'userPrincipalName' as const, value: 'jane.doe@example.com' }, { by: 'employeeId' as const, value: 'e1001' }, { by: 'dn' as const, value: 'cn=jane doe,ou=users,ou=demo,dc=example,dc=com' }]) {
      expect((await d.findUser(key)).dn).toBe(jane.dn);
    }
  });

  test('unknown people and groups are NOT_FOUND; empty keys and foreign DNs INVALID_INPUT (rejections, as LDAP answers)', async () => {
    const d = createDemoDirectory();
    await expect(d.findUser(mail('nobody@example.com'))).rejects.toMatchObject({ code: DirectoryErrorCode.NOT_FOUND, details: { key: { kind: 'mail', value: 'nobody@example.com' } } });
    await expect(d.findUser(mail('  '))).rejects.toMatchObject({ code: DirectoryErrorCode.INVALID_INPUT });
    await expect(d.findUser({ by: 'dn', value: 'CN=x,DC=other,DC=org' })).rejects.toMatchObject({ code: DirectoryErrorCode.INVALID_INPUT });
    await expect(d.addGroupMember(sam('No-Such-Group'), sam('jane.doe'))).rejects.toBeInstanceOf(DirectoryError);
  });

  test('managers: the chain up, none at the top', async () => {
    const d = createDemoDirectory();
    expect((await d.findManager(mail('jane.doe@example.com')))?.mail).toBe('boss@example.com');
    expect((await d.findManager(mail('boss@example.com')))?.mail).toBe('sam.ceo@example.com');
    expect((await d.findManager(mail('alex.analyst@example.com')))?.mail).toBe('fiona.finance@example.com');
    expect(await d.findManager(mail('sam.ceo@example.com'))).toBeNull();
  });

  test('groups: direct and nested; a runbook\'s add and remove are visible to later lookups of the same instance', async () => {
    const d = createDemoDirectory();
    expect((await d.listGroups(mail('jane.doe@example.com'))).map((g) => `${g.name}:${g.direct}`)).toEqual(['All-Staff:false', 'Engineering:true']);
    expect((await d.listGroups(mail('jane.doe@example.com'), { nested: false })).map((g) => g.name)).toEqual(['Engineering']);
    expect(await d.checkMembership(sam('jane.doe'), sam('Remote-Access'))).toEqual({ member: false, direct: false });

    expect(await d.addGroupMember(sam('VDI-Users'), sam('jane.doe'))).toEqual({
      changed: true,
      reason: 'added',
      groupDn: 'CN=VDI-Users,OU=Groups,OU=Demo,DC=example,DC=com',
      memberDn: 'CN=Jane Doe,OU=Users,OU=Demo,DC=example,DC=com',
    });
    expect((await d.addGroupMember(sam('VDI-Users'), sam('jane.doe'))).reason).toBe('already-member');
    expect(await d.checkMembership(sam('jane.doe'), sam('VDI-Users'))).toEqual({ member: true, direct: true });
    // VDI-Users sits in Remote-Access: membership through nesting.
    expect(await d.checkMembership(sam('jane.doe'), sam('Remote-Access'))).toEqual({ member: true, direct: false });
    expect(await d.checkMembership(sam('jane.doe'), sam('Remote-Access'), { nested: false })).toEqual({ member: false, direct: false });
    expect([...groupNames(await d.listGroups(mail('jane.doe@example.com')))]).toEqual(
      expect.arrayContaining(['vdi-users', 'remote-access', 'engineering', 'all-staff', 'cn=vdi-users,ou=groups,ou=demo,dc=example,dc=com']),
    );

    expect((await d.removeGroupMember(sam('VDI-Users'), sam('jane.doe'))).reason).toBe('removed');
    expect((await d.removeGroupMember(sam('VDI-Users'), sam('jane.doe'))).reason).toBe('not-a-member');
    // Another instance starts from the fixture.
    await d.addGroupMember(sam('VDI-Users'), sam('john.smith'));
    expect((await createDemoDirectory().checkMembership(sam('john.smith'), sam('VDI-Users'))).member).toBe(false);
  });

  test('eligibility, account state and the attribute allow-list', async () => {
    const d = createDemoDirectory();
    expect((await d.checkEligibleRequestor(sam('lee.leaver'), sam('Engineering'))).reason).toBe('account-disabled');
    expect((await d.checkEligibleRequestor(sam('jane.doe'), sam('All-Staff'))).reason).toBe('nested-member');
    expect((await d.checkEligibleRequestor(sam('alex.analyst'), sam('Engineering'))).reason).toBe('not-a-member');
    expect(await d.setAccountEnabled(sam('john.smith'), false)).toMatchObject({ changed: true, enabled: false });
    expect((await d.findUser(sam('john.smith'))).enabled).toBe(false);
    expect(await d.setAttributes(sam('jane.doe'), { title: 'Staff Engineer', department: 'Engineering' })).toMatchObject({ changed: ['title'] });
    expect((await d.findUser(sam('jane.doe'))).attributes.title).toBe('Staff Engineer');
    await expect(d.setAttributes(sam('jane.doe'), { userAccountControl: '512' })).rejects.toMatchObject({ code: DirectoryErrorCode.ATTRIBUTE_NOT_ALLOWED });
    expect(await d.testConnection()).toEqual({ defaultNamingContext: 'DC=example,DC=com' });
  });

  test('a broken fixture is refused when built', () => {
    expect(() => createDemoDirectory({ people: [{ ...DEMO_PEOPLE[2]!, manager: 'ghost' }], groups: [] })).toThrow(/manager 'ghost'/);
  });

  test('serves approval routing and the requester check through the provider while active_directory is not configured', async () => {
    const logger = createLogger({ silent: true });
    const fallback = createDemoDirectory();
    // A database that has no active_directory settings: every section read answers nothing.
    const db = { query: async () => ({ rows: [], rowCount: 0 }) } as unknown as Parameters<typeof createDirectoryProvider>[0];
    const provider = createDirectoryProvider(db, logger, { fallback });
    expect(await provider.get()).toBe(fallback);
    expect(await provider.get()).toBe(fallback);
    const requesters = adRequesterDirectory(provider, logger);
    expect(await requesters.managerOf!('jane.doe@example.com')).toBe('boss@example.com');
    expect(await requesters.lookup('alex.analyst@example.com')).toMatchObject({ department: 'Finance', cost_center: 'CC-FIN-210' });
    expect(await requesters.verify!('lee.leaver@example.com')).toMatchObject({ status: 'found', person: { enabled: false } });
    expect(await requesters.verify!('stranger@example.com')).toEqual({ status: 'not_found' });
    // Without a fallback: no directory, as before.
    expect(await createDirectoryProvider(db, logger).get()).toBeUndefined();
  });

  test('the runbook directory task adds and removes through it', async () => {
    const d = createDemoDirectory();
    const exec = createDirectoryExecutor({ getDirectory: () => d });
    const add = await exec(compiledTask({ kind: 'directory', operation: 'addGroupMember' } as never, { id: 'add_rdp_group' }), { user: 'jane.doe', group: 'VDI-Users' }, stepContext());
    expect(add).toEqual({ ok: true, output: { changed: true } });
    const find = await exec(compiledTask({ kind: 'directory', operation: 'findUser' } as never, { id: 'who' }), { user: 'jane.doe@example.com' }, stepContext());
    expect(find).toMatchObject({ ok: true, output: { found: true, user: { sAMAccountName: 'jane.doe', attributes: { department: 'Engineering' } } } });
    const none = createDirectoryExecutor({ getDirectory: () => undefined });
    expect(await none(compiledTask({ kind: 'directory', operation: 'addGroupMember' } as never, { id: 'x' }), { user: 'a', group: 'b' }, stepContext())).toMatchObject({
      ok: false,
      error: { code: 'DIRECTORY', message: expect.stringContaining('settings section active_directory') },
    });
  });
});
