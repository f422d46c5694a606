/**
 * The directory adapter against a real Samba AD domain controller on loopback (tests/support/samba-ad.ts):
 * every operation over LDAPS, the reads also over plain LDAP and StartTLS, TLS verification, AD's bind
 * errors, and LDAP filter injection in every lookup key. Needs no database, so it is the same on both CI passes.
 */
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import winston from 'winston';
import {
  createDirectory,
  DirectoryError,
  DirectoryErrorCode,
  type Directory,
  type DirectorySettings,
  type GroupKey,
  type UserKey,
  type UserKeyKind,
} from '../../adapter/directory';
import { ensureSambaAd, SEED_USER_PASSWORD, type SambaAd } from '../support/samba-ad';

let ad: SambaAd;
let caPem: string;
const open: Directory[] = [];

function settings(over: Partial<DirectorySettings> = {}): DirectorySettings {
  return {
    server: ad.host,
    security: 'ldaps',
    caCertPem: caPem,
    bindDn: ad.bindDn,
    bindPassword: ad.bindPassword,
    baseDn: ad.seed.ou,
    ...over,
  };
}

function directory(over: Partial<DirectorySettings> = {}, logger?: winston.Logger): Directory {
  const d = createDirectory(settings(over), logger ? { logger } : {});
  open.push(d);
  return d;
}

/** The rejection of `p` as a DirectoryError (fails the test if `p` resolves or throws something else). */
async function failure(p: Promise<unknown>): Promise<DirectoryError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DirectoryError);
    return e as DirectoryError;
  }
  throw new Error('expected a DirectoryError, but the call succeeded');
}

const sam = (value: string): UserKey => ({ by: 'sAMAccountName', value });
const group = (value: string): GroupKey => ({ by: 'sAMAccountName', value });

beforeAll(async () => {
  ad = await ensureSambaAd();
  caPem = readFileSync(ad.caCertPath, 'utf8');
}, 300_000);

afterAll(async () => {
  await Promise.all(open.map((d) => d.close()));
});

const JDOE = {
  sAMAccountName: 'jdoe',
  userPrincipalName: 'jdoe@test.local',
  mail: 'jdoe@test.local',
  displayName: 'John Doe',
  enabled: true,
  attributes: { department: 'Engineering', cost_center: 'CC-200', company: 'Provisio Test', employee_id: 'E1001', title: 'Engineer' },
};

describe.each([
  ['plain LDAP', { security: 'none', port: 389 }],
  ['LDAPS with CA verification', { security: 'ldaps' }],
  ['StartTLS with CA verification', { security: 'starttls' }],
] as const)('reads over %s', (_label, transport) => {
  let d: Directory;
  beforeAll(() => {
    d = directory(transport);
  });

  it.each<[UserKeyKind, () => string]>([
    ['sAMAccountName', () => 'jdoe'],
    ['userPrincipalName', () => 'jdoe@test.local'],
    ['mail', () => 'jdoe@test.local'],
    ['employeeId', () => 'E1001'],
    ['dn', () => ad.seed.users.jdoe],
  ])('finds a user by %s with the consumer attributes', async (by, value) => {
    const user = await d.findUser({ by, value: value() });
    expect(user).toEqual({ ...JDOE, dn: ad.seed.users.jdoe, managerDn: ad.seed.users.manager });
  });

  it('resolves the manager, and null for a user without one', async () => {
    const m = await d.findManager(sam('jdoe'));
    expect(m).toMatchObject({ dn: ad.seed.users.manager, sAMAccountName: 'amanager', attributes: { title: 'Head of IT', cost_center: 'CC-100' } });
    expect(await d.findManager(sam('amanager'))).toBeNull();
  });

  it('lists direct and nested groups', async () => {
    expect(await d.listGroups(sam('jdoe'), { nested: false })).toEqual([
      { dn: ad.seed.groups.leads, sAMAccountName: 'Provisio-Leads', name: 'Provisio-Leads', direct: true },
    ]);
    expect(await d.listGroups(sam('jdoe'))).toEqual([
      { dn: ad.seed.groups.approvers, sAMAccountName: 'Provisio-Approvers', name: 'Provisio-Approvers', direct: false },
      { dn: ad.seed.groups.leads, sAMAccountName: 'Provisio-Leads', name: 'Provisio-Leads', direct: true },
      { dn: ad.seed.groups.restricted, sAMAccountName: 'Provisio-Restricted', name: 'Provisio-Restricted', direct: false },
    ]);
  });

  it('checks eligible requestors: direct, nested, disabled, not a member', async () => {
    const restricted = group('Provisio-Restricted');
    expect(await d.checkEligibleRequestor(sam('amanager'), restricted)).toMatchObject({ eligible: true, reason: 'direct-member' });
    expect(await d.checkEligibleRequestor({ by: 'mail', value: 'jdoe@test.local' }, { by: 'dn', value: ad.seed.groups.restricted }))
      .toEqual({ eligible: true, reason: 'nested-member', userDn: ad.seed.users.jdoe, groupDn: ad.seed.groups.restricted });
    expect(await d.checkEligibleRequestor(sam('bleaver'), restricted)).toMatchObject({ eligible: false, reason: 'account-disabled' });
    expect(await d.checkEligibleRequestor(sam('mmember'), restricted)).toMatchObject({ eligible: false, reason: 'not-a-member' });
  });
});

describe('user lookup', () => {
  let d: Directory;
  beforeAll(() => {
    d = directory();
  });

  it('is case-insensitive like AD and reports a disabled account as not enabled', async () => {
    expect((await d.findUser(sam('JDOE'))).dn).toBe(ad.seed.users.jdoe);
    expect(await d.findUser({ by: 'employeeId', value: 'E1002' })).toMatchObject({ sAMAccountName: 'bleaver', enabled: false });
  });

  it('answers NOT_FOUND with the key that was looked for', async () => {
    const err = await failure(d.findUser({ by: 'mail', value: 'nobody@test.local' }));
    expect(err.code).toBe(DirectoryErrorCode.NOT_FOUND);
    expect(err.retryable).toBe(false);
    expect(err.details.key).toEqual({ kind: 'mail', value: 'nobody@test.local' });
    expect(err.message).toBe('no user with mail "nobody@test.local"');
    expect((await failure(d.findManager(sam('nobody')))).code).toBe(DirectoryErrorCode.NOT_FOUND);
    expect((await failure(d.listGroups(sam('nobody')))).code).toBe(DirectoryErrorCode.NOT_FOUND);
  });

  it('refuses an empty key and a DN outside the base DN', async () => {
    expect((await failure(d.findUser(sam('  ')))).code).toBe(DirectoryErrorCode.INVALID_INPUT);
    const outside = await failure(d.findUser({ by: 'dn', value: 'CN=Administrator,CN=Users,DC=test,DC=local' }));
    expect(outside.code).toBe(DirectoryErrorCode.INVALID_INPUT);
    expect(outside.message).toContain('outside the base DN');
    // An escaped comma must not let a one-RDN name pose as an entry beneath the base DN.
    const posing = await failure(d.findUser({ by: 'dn', value: 'CN=x\\,OU=Provisio\\,DC=test\\,DC=local' }));
    expect(posing.code).toBe(DirectoryErrorCode.INVALID_INPUT);
  });

  it('does not find users outside the base DN', async () => {
    expect((await failure(d.findUser(sam('Administrator')))).code).toBe(DirectoryErrorCode.NOT_FOUND);
    // The domain root as base DN: AD answers with referrals to other partitions, which are ignored.
    const whole = directory({ baseDn: ad.baseDn });
    expect((await whole.findUser(sam('Administrator'))).dn).toBe('CN=Administrator,CN=Users,DC=test,DC=local');
  });

  it('maps the configured consumer attribute names', async () => {
    const custom = directory({ consumerAttributes: { cost_center: 'company', employee_id: 'mail' } });
    const u = await custom.findUser({ by: 'employeeId', value: 'jdoe@test.local' });
    expect(u.attributes).toEqual({ ...JDOE.attributes, cost_center: 'Provisio Test', employee_id: 'jdoe@test.local' });
  });

  describe('LDAP filter injection is searched for literally', () => {
    const attacks = ['*', '*)(objectClass=*', 'jdoe)(|(sAMAccountName=*', '*)(|(mail=*)', 'j*', '\\2a', 'jdoe\\00'];
    it.each(['sAMAccountName', 'userPrincipalName', 'mail', 'employeeId'] as const)('in %s', async (by) => {
      for (const value of attacks) {
        const err = await failure(d.findUser({ by, value }));
        expect([by, value, err.code]).toEqual([by, value, DirectoryErrorCode.NOT_FOUND]);
      }
    });

    it('refuses control characters, which Samba would truncate the value at', async () => {
      for (const [by, value] of [['sAMAccountName', 'jdoe\u0000'], ['mail', 'jdoe@test.local\u0000'], ['employeeId', 'E1001\u0000x'],
        ['userPrincipalName', 'jdoe\n@test.local']] as const) {
        const err = await failure(d.findUser({ by, value }));
        expect([by, err.code]).toEqual([by, DirectoryErrorCode.INVALID_INPUT]);
      }
      expect((await failure(d.addGroupMember(group('Provisio-Sandbox\u0000'), sam('mmember')))).code).toBe(DirectoryErrorCode.INVALID_INPUT);
      expect((await failure(d.setAttributes(sam('ttoggle'), { title: 'a\u0000b' }))).code).toBe(DirectoryErrorCode.INVALID_INPUT);
    });

    it('in group names, membership and eligibility checks', async () => {
      for (const value of attacks) {
        expect((await failure(d.checkEligibleRequestor(sam('jdoe'), group(value)))).code).toBe(DirectoryErrorCode.NOT_FOUND);
        expect((await failure(d.checkEligibleRequestor(sam(value), group('Provisio-Restricted')))).code).toBe(DirectoryErrorCode.NOT_FOUND);
        expect((await failure(d.addGroupMember(group(value), sam('mmember')))).code).toBe(DirectoryErrorCode.NOT_FOUND);
      }
    });

    it('in a DN key (refused or not found, never widened)', async () => {
      for (const value of [`${ad.seed.users.jdoe})(objectClass=*`, `*,${ad.seed.ou}`, `CN=*,${ad.seed.ou}`]) {
        const err = await failure(d.findUser({ by: 'dn', value }));
        expect([DirectoryErrorCode.INVALID_INPUT, DirectoryErrorCode.NOT_FOUND]).toContain(err.code);
      }
    });

    it('finds stored values that contain metacharacters exactly', async () => {
      const weird = ad.seed.users.weird;
      expect((await d.findUser({ by: 'mail', value: 'star*(paren)@test.local' })).dn).toBe(weird);
      expect((await d.findUser({ by: 'employeeId', value: 'E*100' })).dn).toBe(weird);
      expect((await d.findUser(sam('o(brien)'))).dn).toBe(weird);
      expect((await d.findUser({ by: 'dn', value: weird })).sAMAccountName).toBe('o(brien)');
      expect((await failure(d.findUser({ by: 'employeeId', value: 'E*' }))).code).toBe(DirectoryErrorCode.NOT_FOUND);
    });
  });
});

describe('group membership', () => {
  let d: Directory;
  beforeAll(async () => {
    d = directory();
    // Another run may have stopped half-way: start from a member-less sandbox group.
    await d.removeGroupMember(group('Provisio-Sandbox'), sam('mmember'));
  });

  it('checks direct and nested membership', async () => {
    expect(await d.checkMembership(sam('jdoe'), group('Provisio-Leads'))).toEqual({ member: true, direct: true });
    expect(await d.checkMembership(sam('jdoe'), group('Provisio-Restricted'))).toEqual({ member: true, direct: false });
    expect(await d.checkMembership(sam('jdoe'), group('Provisio-Restricted'), { nested: false })).toEqual({ member: false, direct: false });
    expect(await d.checkMembership(sam('mmember'), group('Provisio-Restricted'))).toEqual({ member: false, direct: false });
  });

  it('adds and removes a member; repeating either is reported, not an error', async () => {
    const sandbox = group('Provisio-Sandbox');
    const ids = { groupDn: ad.seed.groups.sandbox, memberDn: ad.seed.users.member };
    expect(await d.addGroupMember(sandbox, sam('mmember'))).toEqual({ ...ids, changed: true, reason: 'added' });
    expect(await d.addGroupMember({ by: 'dn', value: ad.seed.groups.sandbox }, { by: 'mail', value: 'max.member@test.local' }))
      .toEqual({ ...ids, changed: false, reason: 'already-member' });
    expect(await d.checkMembership(sam('mmember'), sandbox)).toEqual({ member: true, direct: true });
    expect(await d.listGroups(sam('mmember'))).toEqual([expect.objectContaining({ dn: ad.seed.groups.sandbox, direct: true })]);
    expect(await d.removeGroupMember(sandbox, sam('mmember'))).toEqual({ ...ids, changed: true, reason: 'removed' });
    expect(await d.removeGroupMember(sandbox, sam('mmember'))).toEqual({ ...ids, changed: false, reason: 'not-a-member' });
    expect(await d.checkMembership(sam('mmember'), sandbox)).toEqual({ member: false, direct: false });
  });

  it('removing a nested-only member changes nothing', async () => {
    expect(await d.removeGroupMember(group('Provisio-Restricted'), sam('jdoe'))).toMatchObject({ changed: false, reason: 'not-a-member' });
    expect(await d.checkMembership(sam('jdoe'), group('Provisio-Restricted'))).toEqual({ member: true, direct: false });
  });

  it('refuses a group outside the base DN and reports unknown groups and users', async () => {
    const outside = await failure(d.addGroupMember({ by: 'dn', value: 'CN=Domain Admins,CN=Users,DC=test,DC=local' }, sam('mmember')));
    expect(outside.code).toBe(DirectoryErrorCode.INVALID_INPUT);
    expect(outside.details.key).toEqual({ kind: 'group dn', value: 'CN=Domain Admins,CN=Users,DC=test,DC=local' });
    const noGroup = await failure(d.addGroupMember({ by: 'dn', value: `CN=Nope,${ad.seed.ou}` }, sam('mmember')));
    expect(noGroup.code).toBe(DirectoryErrorCode.NOT_FOUND);
    expect((await failure(d.addGroupMember(group('Provisio-Sandbox'), sam('nobody')))).code).toBe(DirectoryErrorCode.NOT_FOUND);
  });

  it('surfaces AD refusing a write by an account without rights as INSUFFICIENT_ACCESS', async () => {
    const ro = directory({ bindDn: 'svc-readonly@test.local', bindPassword: SEED_USER_PASSWORD });
    expect((await ro.findUser(sam('jdoe'))).dn).toBe(ad.seed.users.jdoe);
    const err = await failure(ro.addGroupMember(group('Provisio-Sandbox'), sam('mmember')));
    expect(err.code).toBe(DirectoryErrorCode.INSUFFICIENT_ACCESS);
    expect(err.details.ldapCode).toBe(50);
    expect((await failure(ro.setAccountEnabled(sam('ttoggle'), false))).code).toBe(DirectoryErrorCode.INSUFFICIENT_ACCESS);
  });
});

describe('account and attribute changes', () => {
  let d: Directory;
  beforeAll(async () => {
    d = directory();
    await d.setAccountEnabled(sam('ttoggle'), true);
  });

  it('disables and enables an account through userAccountControl, idempotently', async () => {
    const dn = ad.seed.users.toggle;
    expect(await d.setAccountEnabled(sam('ttoggle'), false)).toEqual({ changed: true, enabled: false, dn });
    expect(await d.findUser(sam('ttoggle'))).toMatchObject({ enabled: false });
    expect(await d.setAccountEnabled(sam('ttoggle'), false)).toEqual({ changed: false, enabled: false, dn });
    expect(await d.setAccountEnabled({ by: 'employeeId', value: 'E1003' }, true)).toEqual({ changed: true, enabled: true, dn });
    expect(await d.findUser(sam('ttoggle'))).toMatchObject({ enabled: true });
  });

  it('sets allowed attributes and writes only what changed', async () => {
    const key = sam('ttoggle');
    await d.setAttributes(key, { title: 'Analyst', department: 'Finance', telephoneNumber: null, manager: null });
    expect(await d.setAttributes(key, { title: 'Senior Analyst', department: 'Finance', telephoneNumber: '+41 44 000 00 00' }))
      .toEqual({ dn: ad.seed.users.toggle, changed: ['title', 'telephoneNumber'] });
    expect(await d.setAttributes(key, { manager: ad.seed.users.manager })).toEqual({ dn: ad.seed.users.toggle, changed: ['manager'] });
    const u = await d.findUser(key);
    expect(u).toMatchObject({ managerDn: ad.seed.users.manager, attributes: { title: 'Senior Analyst', department: 'Finance' } });
    expect(await d.setAttributes(key, { title: 'Senior Analyst', manager: ad.seed.users.manager.toUpperCase() }))
      .toEqual({ dn: ad.seed.users.toggle, changed: [] });
    expect(await d.setAttributes(key, { title: 'Analyst', telephoneNumber: null, manager: null }))
      .toEqual({ dn: ad.seed.users.toggle, changed: ['title', 'telephoneNumber', 'manager'] });
    expect((await d.findManager(key))).toBeNull();
  });

  it.each(['userAccountControl', 'unicodePwd', 'memberOf', 'sAMAccountName', 'servicePrincipalName', 'homePhone'])(
    'refuses to write %s', async (attr) => {
      const err = await failure(d.setAttributes(sam('ttoggle'), { [attr]: 'x' }));
      expect(err.code).toBe(DirectoryErrorCode.ATTRIBUTE_NOT_ALLOWED);
      expect(err.details.attribute).toBe(attr);
    },
  );

  it('refuses malformed names and values and a manager outside the base DN', async () => {
    expect((await failure(d.setAttributes(sam('ttoggle'), { 'title)(x': 'y' }))).code).toBe(DirectoryErrorCode.INVALID_INPUT);
    expect((await failure(d.setAttributes(sam('ttoggle'), {}))).code).toBe(DirectoryErrorCode.INVALID_INPUT);
    expect((await failure(d.setAttributes(sam('ttoggle'), { title: '' }))).code).toBe(DirectoryErrorCode.INVALID_INPUT);
    const mgr = await failure(d.setAttributes(sam('ttoggle'), { manager: 'CN=Administrator,CN=Users,DC=test,DC=local' }));
    expect(mgr.code).toBe(DirectoryErrorCode.INVALID_INPUT);
  });

  it('writes over StartTLS too', async () => {
    const st = directory({ security: 'starttls' });
    expect(await st.setAccountEnabled(sam('ttoggle'), false)).toMatchObject({ changed: true });
    expect(await st.setAccountEnabled(sam('ttoggle'), true)).toMatchObject({ changed: true });
  });
});

describe('connection, TLS and credentials', () => {
  it('tests a connection and returns the naming context', async () => {
    expect(await directory().testConnection()).toEqual({ defaultNamingContext: 'DC=test,DC=local' });
  });

  it('turns a wrong bind password into INVALID_CREDENTIALS with AD\'s reason, and never leaks it', async () => {
    const lines: string[] = [];
    const logger = winston.createLogger({
      level: 'debug',
      transports: [new winston.transports.Stream({ stream: new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }) })],
    });
    const secret = 'Wr0ng-Secret-Value';
    const d = directory({ bindPassword: secret }, logger);
    const err = await failure(d.findUser(sam('jdoe')));
    expect(err.code).toBe(DirectoryErrorCode.INVALID_CREDENTIALS);
    expect(err.details).toMatchObject({ ldapCode: 49, adDataCode: '52e', adReason: 'wrong password' });
    expect(err.message).toContain('bind as administrator@test.local');
    expect(err.message).toContain('wrong password (AD data 52e)');
    expect(err.retryable).toBe(false);
    expect((await failure(d.testConnection())).code).toBe(DirectoryErrorCode.INVALID_CREDENTIALS);
    expect(lines.length).toBeGreaterThan(0);
    for (const text of [err.message, JSON.stringify(err.details), err.stack ?? '', ...lines]) expect(text).not.toContain(secret);
  });

  it('reports a disabled service account as such', async () => {
    const err = await failure(directory({ bindDn: 'bleaver@test.local', bindPassword: SEED_USER_PASSWORD }).findUser(sam('jdoe')));
    expect(err.details).toMatchObject({ ldapCode: 49, adDataCode: '533', adReason: 'account disabled' });
  });

  it.each(['ldaps', 'starttls'] as const)('fails %s with TLS when the CA is not the issuer', async (security) => {
    const err = await failure(directory({ security, caCertPem: readFileSync(ad.otherCaCertPath, 'utf8') }).findUser(sam('jdoe')));
    expect(err.code).toBe(DirectoryErrorCode.TLS);
    expect(err.message).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|self-signed|unable to verify/i);
  });

  it('fails with TLS when the certificate does not name the server', async () => {
    const err = await failure(directory({ tlsServerName: 'wrong.example' }).findUser(sam('jdoe')));
    expect(err.code).toBe(DirectoryErrorCode.TLS);
    expect(err.message).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('verifies against a configured server name', async () => {
    expect((await directory({ tlsServerName: 'dc1.test.local' }).findUser(sam('jdoe'))).dn).toBe(ad.seed.users.jdoe);
  });

  it('answers UNAVAILABLE (retryable) when nothing listens', async () => {
    const err = await failure(directory({ security: 'none', port: 1 }).findUser(sam('jdoe')));
    expect(err.code).toBe(DirectoryErrorCode.UNAVAILABLE);
    expect(err.retryable).toBe(true);
  });

  it('refuses unsupported auth types at configuration time', () => {
    // ntlm and kerberos are implemented (tests/integration/directory-kerberos-bind.test.ts); anything else is CONFIG.
    expect(() => createDirectory(settings({ authType: 'digest' as 'simple' }))).toThrow(
      expect.objectContaining({ code: DirectoryErrorCode.CONFIG, message: expect.stringMatching(/use simple, ntlm or kerberos/) }),
    );
  });

  describe('pooled connections', () => {
    // A loopback TCP relay to Samba's LDAP port whose connections the test can cut, as an idle timeout would.
    let relay: Server;
    const sockets = new Set<Socket>();
    // Client sockets whose requests the relay swallows, as a half-dead connection behind a firewall would.
    const stalled = new Set<Socket>();
    let port = 0;
    beforeAll(async () => {
      relay = createServer((client) => {
        const upstream = connect(389, ad.host);
        client.on('data', (chunk) => {
          if (!stalled.has(client)) upstream.write(chunk);
        });
        upstream.pipe(client);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => sockets.delete(s));
        }
      });
      await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
      port = (relay.address() as { port: number }).port;
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => relay.close(r));
    });

    it('reuse one bound connection, and replace it transparently when the server drops it', async () => {
      let accepted = 0;
      relay.on('connection', () => (accepted += 1));
      const d = directory({ security: 'none', port, poolSize: 1 });
      for (let i = 0; i < 5; i++) expect((await d.findUser(sam('jdoe'))).dn).toBe(ad.seed.users.jdoe);
      expect(accepted).toBe(1);
      for (const s of sockets) s.destroy();
      await new Promise((r) => setTimeout(r, 50));
      expect((await d.findUser(sam('jdoe'))).dn).toBe(ad.seed.users.jdoe);
      expect(accepted).toBe(2);
    });

    it('retry once on a fresh connection when a reused one stops answering', async () => {
      let accepted = 0;
      const clients: Socket[] = [];
      const onConnection = (c: Socket) => {
        accepted += 1;
        clients.push(c);
      };
      relay.on('connection', onConnection);
      const d = directory({ security: 'none', port, poolSize: 1, timeoutMs: 300 });
      expect((await d.findUser(sam('jdoe'))).dn).toBe(ad.seed.users.jdoe);
      for (const c of clients) stalled.add(c);
      expect((await d.findUser(sam('jdoe'))).dn).toBe(ad.seed.users.jdoe);
      expect(accepted).toBe(2);
      relay.off('connection', onConnection);
    });

    it('serve concurrent callers with at most poolSize connections', async () => {
      let accepted = 0;
      relay.on('connection', () => (accepted += 1));
      const d = directory({ security: 'none', port, poolSize: 2 });
      const users = await Promise.all(Array.from({ length: 20 }, () => d.findUser(sam('amanager'))));
      expect(users.every((u) => u.sAMAccountName === 'amanager')).toBe(true);
      expect(accepted).toBe(2);
    });
  });
});
