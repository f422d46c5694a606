/**
 * Entra ID as the directory, over Microsoft Graph v1.0 through @microsoft/microsoft-graph-client, against a loopback
 * HTTPS Graph with state (tests/support/graph-server.ts; page size 2, so every collection pages with
 * @odata.nextLink): the Directory operations, client-credentials tokens (cached, one fetch for concurrent callers),
 * throttling (429 with Retry-After honoured, bounded), a missing permission (403 Authorization_RequestDenied) and
 * wrong credentials named precisely, and an order placed by an Entra user through the service's own requester check,
 * chosen by the `entra_id` settings as `serve` builds it.
 */
import { createGraphDirectory, DirectoryError, type GraphDirectory, type GraphDirectorySettings } from '../../adapter';
import { adRequesterDirectory, createDirectoryProvider, type DirectoryProvider, type RequesterDirectory } from '../../server/domain/identity/requester-directory';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { startGraphServer, type GraphServer } from '../support/graph-server';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';
import { countRows, mintTestToken } from '../support/orders';

jest.setTimeout(60_000);

let g: GraphServer;
let mem: MemoryLogger;
const settingsOf = (over: Partial<GraphDirectorySettings> = {}): GraphDirectorySettings => ({
  tenantId: g.tenantId,
  clientId: g.clientId,
  clientSecret: g.clientSecret,
  authorityHost: g.url,
  graphBaseUrl: g.graphBaseUrl,
  caCertPem: g.caPem,
  ...over,
});

async function codeOf(p: Promise<unknown>): Promise<DirectoryError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DirectoryError) return e;
    throw e;
  }
  throw new Error('expected a DirectoryError');
}

beforeAll(async () => {
  mem = createMemoryLogger();
  g = await startGraphServer({
    users: [
      { userPrincipalName: 'boss@contoso.test', mail: 'boss@contoso.test', displayName: 'Boss', department: 'Finance' },
      {
        userPrincipalName: 'ana@contoso.test',
        mail: 'Ana.Requester@contoso.test',
        mailNickname: 'ana',
        displayName: 'Ana Requester',
        department: 'Controlling',
        companyName: 'Contoso',
        employeeId: 'E100',
        jobTitle: 'Controller',
        employeeOrgData: { costCenter: 'CC-42' },
        manager: 'boss@contoso.test',
      },
      { userPrincipalName: 'gone@contoso.test', mail: 'gone@contoso.test', accountEnabled: false, department: 'Controlling' },
      { userPrincipalName: 'plain@contoso.test', mail: 'plain@contoso.test', department: 'Sales' },
      { userPrincipalName: 'q1@contoso.test', mail: 'q1@contoso.test' },
      { userPrincipalName: 'q2@contoso.test', mail: 'q2@contoso.test' },
      { userPrincipalName: 'q3@contoso.test', mail: 'q3@contoso.test' },
    ],
    groups: [
      { displayName: 'Inner', mailNickname: 'inner', members: ['ana@contoso.test', 'gone@contoso.test'] },
      { displayName: 'Outer', mailNickname: 'outer', members: ['Inner', 'q1@contoso.test'] },
      { displayName: 'Third', mailNickname: 'third', members: ['ana@contoso.test'] },
      { displayName: 'Fourth', mailNickname: 'fourth', members: ['Outer'] },
      { displayName: 'Quorum', mailNickname: 'quorum', members: ['q1@contoso.test', 'q2@contoso.test', 'q3@contoso.test', 'gone@contoso.test'] },
      { displayName: 'Empty', mailNickname: 'empty', members: [] },
    ],
  });
});
afterAll(async () => {
  await g?.close();
});

describe('the Directory interface over Graph', () => {
  let d: GraphDirectory;
  beforeAll(() => {
    d = createGraphDirectory(settingsOf(), { logger: mem.logger });
  });
  beforeEach(() => {
    g.deny = null;
    g.throttle.remaining = 0;
  });

  test('finds a user by UPN, mail, employeeId, object id and mailNickname, with the consumer attributes', async () => {
    const want = {
      dn: g.idOf('ana@contoso.test'),
      sAMAccountName: 'ana',
      userPrincipalName: 'ana@contoso.test',
      mail: 'Ana.Requester@contoso.test',
      displayName: 'Ana Requester',
      enabled: true,
      managerDn: null,
      attributes: { department: 'Controlling', cost_center: 'CC-42', company: 'Contoso', employee_id: 'E100', title: 'Controller' },
    };
    expect(await d.findUser({ by: 'userPrincipalName', value: 'ana@contoso.test' })).toEqual(want);
    expect(await d.findUser({ by: 'mail', value: 'ana.requester@contoso.test' })).toEqual(want);
    expect(await d.findUser({ by: 'employeeId', value: 'E100' })).toEqual(want);
    expect(await d.findUser({ by: 'dn', value: want.dn })).toEqual(want);
    expect(await d.findUser({ by: 'sAMAccountName', value: 'ana' })).toEqual(want);
    expect((await d.findUser({ by: 'mail', value: 'gone@contoso.test' })).enabled).toBe(false);
    // An OData quote in the value is escaped, not a way out of the filter.
    const e = await codeOf(d.findUser({ by: 'mail', value: "x' or mail eq 'boss@contoso.test" }));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.details.key).toEqual({ kind: 'mail', value: "x' or mail eq 'boss@contoso.test" });
    expect((await codeOf(d.findUser({ by: 'dn', value: 'CN=x,DC=y' }))).code).toBe('INVALID_INPUT');
    expect((await codeOf(d.findUser({ by: 'userPrincipalName', value: 'nobody@contoso.test' }))).code).toBe('NOT_FOUND');
  });

  test('the manager, and null for a user without one', async () => {
    expect((await d.findManager({ by: 'mail', value: 'ana.requester@contoso.test' }))?.mail).toBe('boss@contoso.test');
    expect(await d.findManager({ by: 'mail', value: 'boss@contoso.test' })).toBeNull();
  });

  test('groups: transitive through nesting, direct flagged, paged with @odata.nextLink', async () => {
    const before = g.requests.filter((r) => decodeURIComponent(r.url).includes('$skiptoken')).length;
    const groups = await d.listGroups({ by: 'mail', value: 'ana.requester@contoso.test' });
    expect(groups.map((x) => [x.name, x.sAMAccountName, x.direct]).sort()).toEqual([
      ['Fourth', 'fourth', false],
      ['Inner', 'inner', true],
      ['Outer', 'outer', false],
      ['Third', 'third', true],
    ]);
    expect(g.requests.filter((r) => decodeURIComponent(r.url).includes('$skiptoken')).length).toBeGreaterThan(before);
    expect((await d.listGroups({ by: 'mail', value: 'ana.requester@contoso.test' }, { nested: false })).map((x) => x.name).sort()).toEqual(['Inner', 'Third']);
  });

  test('group members (nested and direct), membership and the eligible-requestor check', async () => {
    const members = await d.listGroupMembers({ by: 'sAMAccountName', value: 'Fourth' });
    expect(members.map((m) => m.userPrincipalName).sort()).toEqual(['ana@contoso.test', 'gone@contoso.test', 'q1@contoso.test']);
    expect(await d.listGroupMembers({ by: 'sAMAccountName', value: 'Fourth' }, { nested: false })).toEqual([]);
    const quorum = await d.listGroupMembers({ by: 'dn', value: [...g.groups.values()].find((x) => x.displayName === 'Quorum')!.id });
    expect(quorum).toHaveLength(4);
    const ana = { by: 'userPrincipalName', value: 'ana@contoso.test' } as const;
    expect(await d.checkMembership(ana, { by: 'sAMAccountName', value: 'outer' })).toEqual({ member: true, direct: false });
    expect(await d.checkMembership(ana, { by: 'sAMAccountName', value: 'inner' })).toEqual({ member: true, direct: true });
    expect(await d.checkMembership(ana, { by: 'sAMAccountName', value: 'outer' }, { nested: false })).toEqual({ member: false, direct: false });
    expect((await d.checkEligibleRequestor(ana, { by: 'sAMAccountName', value: 'Outer' })).reason).toBe('nested-member');
    expect((await d.checkEligibleRequestor({ by: 'mail', value: 'gone@contoso.test' }, { by: 'sAMAccountName', value: 'Outer' })).reason).toBe('account-disabled');
    expect((await d.checkEligibleRequestor({ by: 'mail', value: 'plain@contoso.test' }, { by: 'sAMAccountName', value: 'Outer' })).reason).toBe('not-a-member');
    expect((await codeOf(d.listGroupMembers({ by: 'sAMAccountName', value: 'No such group' }))).code).toBe('NOT_FOUND');
  });

  test('add and remove a member through $ref, each idempotent', async () => {
    const group = { by: 'sAMAccountName', value: 'empty' } as const;
    const user = { by: 'mail', value: 'plain@contoso.test' } as const;
    expect(await d.addGroupMember(group, user)).toMatchObject({ changed: true, reason: 'added' });
    expect(await d.addGroupMember(group, user)).toMatchObject({ changed: false, reason: 'already-member' });
    const gid = [...g.groups.values()].find((x) => x.displayName === 'Empty')!;
    expect(gid.members.has(g.idOf('plain@contoso.test'))).toBe(true);
    expect(g.requests.some((r) => r.method === 'POST' && r.url.endsWith(`/groups/${gid.id}/members/$ref`))).toBe(true);
    expect(await d.removeGroupMember(group, user)).toMatchObject({ changed: true, reason: 'removed' });
    expect(await d.removeGroupMember(group, user)).toMatchObject({ changed: false, reason: 'not-a-member' });
    expect(gid.members.size).toBe(0);
  });

  test('disable and enable an account (PATCH accountEnabled); consumer attributes written within the allow-list', async () => {
    const user = { by: 'mail', value: 'plain@contoso.test' } as const;
    expect(await d.setAccountEnabled(user, false)).toMatchObject({ changed: true, enabled: false });
    expect(g.users.get(g.idOf('plain@contoso.test'))!['accountEnabled']).toBe(false);
    expect(await d.setAccountEnabled(user, false)).toMatchObject({ changed: false });
    expect(await d.setAccountEnabled(user, true)).toMatchObject({ changed: true, enabled: true });

    expect(await d.setAttributes(user, { department: 'Marketing', 'employeeOrgData.costCenter': 'CC-7', jobTitle: null })).toMatchObject({ changed: ['department', 'employeeOrgData.costCenter'] });
    expect((await d.findUser(user)).attributes).toMatchObject({ department: 'Marketing', cost_center: 'CC-7' });
    expect((await codeOf(d.setAttributes(user, { accountEnabled: 'false' }))).code).toBe('ATTRIBUTE_NOT_ALLOWED');
    expect((await codeOf(d.setAttributes(user, { officeLocation: 'x' }))).code).toBe('ATTRIBUTE_NOT_ALLOWED');
  });

  test('tokens: one fetch shared by concurrent callers, cached until shortly before expiry', async () => {
    const fresh = createGraphDirectory(settingsOf());
    const before = g.tokenRequests;
    await Promise.all(Array.from({ length: 20 }, () => fresh.findUser({ by: 'mail', value: 'boss@contoso.test' })));
    await fresh.findManager({ by: 'mail', value: 'ana.requester@contoso.test' });
    expect(g.tokenRequests - before).toBe(1);
    expect(fresh.tokens.fetches).toBe(1);

    // A token of 2 s lifetime is renewed at half-life, before Graph would refuse it.
    g.tokenLifetimeSeconds = 2;
    try {
      const short = createGraphDirectory(settingsOf());
      await short.findUser({ by: 'mail', value: 'boss@contoso.test' });
      await new Promise((r) => setTimeout(r, 1200));
      await short.findUser({ by: 'mail', value: 'boss@contoso.test' });
      expect(short.tokens.fetches).toBe(2);
    } finally {
      g.tokenLifetimeSeconds = 3600;
    }
  });

  test('wrong client secret: INVALID_CREDENTIALS naming invalid_client and the AADSTS code, the secret nowhere', async () => {
    const bad = createGraphDirectory(settingsOf({ clientSecret: 'wrong-secret-value-123' }), { logger: mem.logger });
    const e = await codeOf(bad.findUser({ by: 'mail', value: 'boss@contoso.test' }));
    expect(e.code).toBe('INVALID_CREDENTIALS');
    expect(e.details).toMatchObject({ graphCode: 'invalid_client', aadsts: '7000215', httpStatus: 401 });
    expect(e.message).not.toContain('wrong-secret-value-123');
    const tenant = await codeOf(createGraphDirectory(settingsOf({ tenantId: 'other-tenant' })).testConnection());
    expect(tenant.code).toBe('CONFIG');
  });

  test('429 with Retry-After is waited out and retried; a Retry-After beyond the bound fails at once as UNAVAILABLE', async () => {
    g.throttle = { remaining: 2, retryAfter: '1', status: 429 };
    const started = Date.now();
    expect((await d.findUser({ by: 'mail', value: 'boss@contoso.test' })).mail).toBe('boss@contoso.test');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(g.throttle.remaining).toBe(0);

    g.throttle = { remaining: 1, retryAfter: '3600', status: 503 };
    const t0 = Date.now();
    const e = await codeOf(d.findUser({ by: 'mail', value: 'boss@contoso.test' }));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.retryable).toBe(true);
    expect(e.details).toMatchObject({ httpStatus: 503, graphCode: 'ServiceUnavailable' });

    // Throttled every time: gives up after the bounded retries, never hangs.
    const bounded = createGraphDirectory(settingsOf({ maxRetries: 2 }));
    g.throttle = { remaining: 100, retryAfter: '0', status: 429 };
    const gave = await codeOf(bounded.findUser({ by: 'mail', value: 'boss@contoso.test' }));
    expect(gave.details).toMatchObject({ httpStatus: 429, graphCode: 'TooManyRequests' });
    g.throttle.remaining = 0;
  });

  test('403 Authorization_RequestDenied is INSUFFICIENT_ACCESS with the Graph code carried', async () => {
    g.deny = 'writes';
    const e = await codeOf(d.setAccountEnabled({ by: 'mail', value: 'plain@contoso.test' }, false));
    expect(e.code).toBe('INSUFFICIENT_ACCESS');
    expect(e.details).toEqual({ httpStatus: 403, graphCode: 'Authorization_RequestDenied' });
    expect(e.message).toContain('permission');
    expect(g.users.get(g.idOf('plain@contoso.test'))!['accountEnabled']).toBe(true);
  });

  test('testConnection fetches a fresh token and reads the tenant', async () => {
    const before = d.tokens.fetches;
    expect(await d.testConnection()).toEqual({ defaultNamingContext: 'Provisio Test Tenant' });
    expect(d.tokens.fetches).toBe(before + 1);
  });
});

describe(`orders with Entra ID as the directory (${testEngine})`, () => {
  let t: TestApp;
  let provider: DirectoryProvider;
  let writer: string;
  const order = (type: string, user: string) =>
    t.http().post('/orders').set({ Authorization: `Bearer ${writer}` }).send({ asset_type_name: type, user_email: user, user_name: 'Someone' });

  beforeAll(async () => {
    let inner: RequesterDirectory | undefined;
    const late: RequesterDirectory = {
      lookup: (email) => inner!.lookup(email),
      managerOf: (email) => inner!.managerOf!(email),
      verify: (email) => inner!.verify!(email),
      membersOf: (group) => inner!.membersOf!(group),
    };
    t = await createTestApp({}, { requesterDirectory: late, logger: mem.logger });
    provider = createDirectoryProvider(t.db, mem.logger);
    inner = adRequesterDirectory(provider, mem.logger);
    writer = await mintTestToken(t.db, 'portal', ['orders:write']);
    const res = await t.http().put('/admin/settings/entra_id').set(t.admin).send({
      use_as_directory: true,
      tenant_id: g.tenantId,
      client_id: g.clientId,
      client_secret: g.clientSecret,
      authority_host: g.url,
      graph_base_url: g.graphBaseUrl,
      ca_cert_pem: g.caPem,
    });
    expect({ status: res.status, body: res.status === 200 ? null : res.body }).toEqual({ status: 200, body: null });
    expect(res.body.secrets).toEqual({ client_secret: { configured: true } });
    expect(JSON.stringify(res.body)).not.toContain(g.clientSecret);
    for (const body of [
      { name: 'Open seat' },
      { name: 'Approved seat', requires_approval: true, fallback_approver: 'it@contoso.test' },
      { name: 'Outer seat', entitlements: { groups: ['Outer'] } },
    ]) {
      expect((await t.http().post('/admin/asset-types').set(t.admin).send({ assignment_model: 'personal', ...body })).status).toBe(201);
    }
    // The settings were saved in this process: the provider reopens on the change; wait for it to answer.
    for (let i = 0; i < 50 && !(await provider.get()); i++) await new Promise((r) => setTimeout(r, 100));
  });
  afterAll(async () => {
    await provider?.close();
    await t?.close();
  });

  test('an Entra user passes the requester check; the snapshot is the Graph consumer attributes', async () => {
    const res = await order('Open seat', 'ana.requester@contoso.test');
    expect(res.status).toBe(201);
    expect(res.body.requester).toEqual({ department: 'Controlling', cost_center: 'CC-42', company: 'Contoso', employee_id: 'E100', title: 'Controller' });
  });

  test('unknown and disabled Entra users are refused 422; nothing placed', async () => {
    const before = await countRows(t.db, 'orders');
    expect((await order('Open seat', 'nobody@contoso.test')).body.code).toBe('REQUESTER_NOT_FOUND');
    expect((await order('Open seat', 'gone@contoso.test')).body.code).toBe('REQUESTER_DISABLED');
    expect(await countRows(t.db, 'orders')).toBe(before);
  });

  test('approval goes to the Graph manager; group entitlements use transitive membership', async () => {
    const res = await order('Approved seat', 'ana.requester@contoso.test');
    expect(res.body.status).toBe('pending_approval');
    const { rows } = await t.db.query<{ approver_email: string }>('SELECT approver_email FROM approvals WHERE order_id = $1', [res.body.id]);
    expect(rows.map((r) => r.approver_email)).toEqual(['boss@contoso.test']);
    expect((await order('Outer seat', 'ana.requester@contoso.test')).status).toBe(201);
    expect((await order('Outer seat', 'plain@contoso.test')).body.code).toBe('NOT_ENTITLED');
  });

  test('quorum group lookups list the enabled members with mail', async () => {
    const r = await late().membersOf!('Quorum');
    expect(r.status === 'found' ? r.emails.sort() : r).toEqual(['q1@contoso.test', 'q2@contoso.test', 'q3@contoso.test']);
  });

  test('the provider names entra_id as the directory\'s settings section (what DIRECTORY_UNAVAILABLE points to)', () => {
    expect(provider.section?.()).toBe('entra_id');
  });

  test('the client secret and access tokens never reach a log line', () => {
    const text = mem.text();
    expect(text.length).toBeGreaterThan(0);
    expect(text).not.toContain(g.clientSecret);
    expect(text).not.toContain('eyJ0eXAiOiJKV1Qi.');
  });

  function late(): RequesterDirectory {
    return adRequesterDirectory(provider, mem.logger);
  }
});


