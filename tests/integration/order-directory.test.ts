/**
 * Active Directory wired into order placement, against the Samba AD domain controller the suite starts
 * (tests/support/samba-ad.ts), through the service's own `active_directory` settings and the process's directory
 * provider, as `serve` builds them: the requester check (exists, enabled), the snapshot of the consumer attributes
 * the settings map, the manager resolved live for approval routing, department and nested-group entitlements, the
 * catalogue, and a configured directory that does not answer (fail closed). This file's people and groups live in
 * an OU of their own, so the directory tests that change the seeded users cannot disturb them.
 */
import { readFileSync } from 'node:fs';
import { Attribute, Change, Client } from 'ldapts';
import { createLogger } from '../../adapter';
import {
  adRequesterDirectory,
  createDirectoryProvider,
  type DirectoryProvider,
  type RequesterDirectory,
} from '../../server/domain/identity/requester-directory';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { countRows, hubSignature, mintTestToken, snowPayload } from '../support/orders';
import { ensureSambaAd, SEED_USER_PASSWORD, type SambaAd } from '../support/samba-ad';

jest.setTimeout(60_000);

const SECRET = 'order-directory-webhook-secret';

let ad: SambaAd;
let ou: string;
const dnOf = (cn: string) => `CN=${cn},${ou}`;

interface Person {
  cn: string;
  sam: string;
  mail: string;
  attrs: Record<string, string>;
  disabled?: boolean;
  manager?: string;
}

const BOSS: Person = { cn: 'OD Boss', sam: 'od-boss', mail: 'od.boss@test.local', attrs: { department: 'Finance' } };
const DEPUTY: Person = { cn: 'OD Deputy', sam: 'od-deputy', mail: 'od.deputy@test.local', attrs: { department: 'Finance' } };
const REQUESTER: Person = {
  cn: 'OD Requester',
  sam: 'od-requester',
  mail: 'od.requester@test.local',
  // `description` stands in for the title: the settings map title_attribute onto it, and the snapshot must follow.
  attrs: { department: 'Controlling', departmentNumber: 'CC-900', company: 'Provisio Test', employeeID: 'E9601', title: 'Controller', description: 'Senior Controller' },
  manager: 'OD Boss',
};
const GONE: Person = { cn: 'OD Gone', sam: 'od-gone', mail: 'od.gone@test.local', attrs: { department: 'Controlling' }, disabled: true };
const PLAIN: Person = { cn: 'OD Plain', sam: 'od-plain', mail: 'od.plain@test.local', attrs: { department: 'Sales' } };
const PEOPLE = [BOSS, DEPUTY, REQUESTER, GONE, PLAIN];

async function ldap<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ url: ad.ldapsUrl, tlsOptions: { ca: readFileSync(ad.caCertPath) }, timeout: 15_000 });
  try {
    await c.bind(ad.bindDn, ad.bindPassword);
    return await fn(c);
  } finally {
    await c.unbind().catch(() => undefined);
  }
}

const exists = (e: unknown) => (e as { code?: unknown }).code === 68;

/** Creates this file's people and groups, or resets them to this state: OD-Outer <- OD-Inner <- the requester. */
async function seedPeople(): Promise<void> {
  await ldap(async (c) => {
    try {
      await c.add(ou, { objectClass: ['top', 'organizationalUnit'], ou: 'OrderDirectory' });
    } catch (e) {
      if (!exists(e)) throw e;
    }
    for (const p of PEOPLE) {
      const attrs = { mail: p.mail, displayName: p.cn, userPrincipalName: `${p.sam}@test.local`, ...p.attrs };
      const uac = p.disabled ? '514' : '512';
      try {
        await c.add(dnOf(p.cn), [
          new Attribute({ type: 'objectClass', values: ['top', 'person', 'organizationalPerson', 'user'] }),
          new Attribute({ type: 'sAMAccountName', values: [p.sam] }),
          ...Object.entries(attrs).map(([type, v]) => new Attribute({ type, values: [v] })),
          new Attribute({ type: 'unicodePwd', values: [Buffer.from(`"${SEED_USER_PASSWORD}"`, 'utf16le')] }),
          new Attribute({ type: 'userAccountControl', values: [uac] }),
        ]);
      } catch (e) {
        if (!exists(e)) throw e;
        await c.modify(dnOf(p.cn), [
          ...Object.entries(attrs).map(([type, v]) => new Change({ operation: 'replace', modification: new Attribute({ type, values: [v] }) })),
          new Change({ operation: 'replace', modification: new Attribute({ type: 'userAccountControl', values: [uac] }) }),
        ]);
      }
    }
    for (const p of PEOPLE) await setManager(c, p, p.manager);
    for (const [cn, members] of [
      ['OD-Inner', [dnOf(REQUESTER.cn)]],
      ['OD-Outer', [dnOf('OD-Inner')]],
    ] as const) {
      try {
        await c.add(dnOf(cn), { objectClass: ['top', 'group'], cn, sAMAccountName: cn, groupType: '-2147483646' });
      } catch (e) {
        if (!exists(e)) throw e;
      }
    }
    // Members after both groups exist: OD-Outer's member is the OD-Inner group.
    await c.modify(dnOf('OD-Inner'), new Change({ operation: 'replace', modification: new Attribute({ type: 'member', values: [dnOf(REQUESTER.cn)] }) }));
    await c.modify(dnOf('OD-Outer'), new Change({ operation: 'replace', modification: new Attribute({ type: 'member', values: [dnOf('OD-Inner')] }) }));
  });
}

async function setManager(c: Client, p: Person, managerCn: string | undefined): Promise<void> {
  await c.modify(dnOf(p.cn), new Change({ operation: 'replace', modification: new Attribute({ type: 'manager', values: managerCn ? [dnOf(managerCn)] : [] }) }));
}

/** The app with the process's real directory provider and AD requester directory over its own database. */
async function appWithDirectory(): Promise<{ t: TestApp; provider: DirectoryProvider }> {
  const logger = createLogger({ silent: !process.env['TEST_LOGS'] });
  let inner: RequesterDirectory | undefined;
  // The provider reads the settings from the app's database, which exists only once the app does.
  const late: RequesterDirectory = {
    lookup: (email) => inner!.lookup(email),
    managerOf: (email) => inner!.managerOf!(email),
    verify: (email) => inner!.verify!(email),
  };
  const t = await createTestApp({ webhookSecretToken: SECRET }, { requesterDirectory: late });
  const provider = createDirectoryProvider(t.db, logger);
  inner = adRequesterDirectory(provider, logger);
  return { t, provider };
}

async function configure(t: TestApp, over: Record<string, unknown> = {}): Promise<void> {
  const res = await t.http().put('/admin/settings/active_directory').set(t.admin).send({
    server: ad.host,
    port: 636,
    use_tls: true,
    ca_cert_pem: readFileSync(ad.caCertPath, 'utf8'),
    bind_dn: ad.bindDn,
    bind_password: ad.bindPassword,
    base_dn: ad.seed.ou,
    cost_center_attribute: 'departmentNumber',
    title_attribute: 'description',
    ...over,
  });
  expect({ status: res.status, body: res.status === 200 ? null : res.body }).toEqual({ status: 200, body: null });
}

beforeAll(async () => {
  ad = await ensureSambaAd();
  ou = `OU=OrderDirectory,${ad.seed.ou}`;
  await seedPeople();
}, 300_000);

describe(`orders with Active Directory (${testEngine})`, () => {
  let t: TestApp;
  let provider: DirectoryProvider;
  let writer: string;
  const order = (type: string, user: string) =>
    t.http().post('/orders').set({ Authorization: `Bearer ${writer}` }).send({ asset_type_name: type, user_email: user, user_name: 'Someone' });
  const snow = (type: string, user: string) => {
    const body = JSON.stringify(snowPayload(type, { user_email: user }));
    return t.http().post('/webhook/servicenow').set('Content-Type', 'application/json').set('X-Hub-Signature-256', hubSignature(body, SECRET)).send(body);
  };
  const approverOf = async (orderId: number) =>
    (await t.db.query<{ approver_email: string; reason: string }>('SELECT approver_email, reason FROM approvals WHERE order_id = $1', [orderId])).rows;

  beforeAll(async () => {
    ({ t, provider } = await appWithDirectory());
    writer = await mintTestToken(t.db, 'portal', ['orders:write']);
    const types: Record<string, unknown>[] = [
      { name: 'Open seat' },
      { name: 'Approved seat', requires_approval: true, fallback_approver: 'it-approvals@test.local' },
      { name: 'Outer group seat', entitlements: { groups: ['OD-Outer'] } },
      { name: 'Outer group by DN', entitlements: { groups: [`cn=od-outer,${ou.toLowerCase()}`] } },
      { name: 'Controlling seat', entitlements: { departments: ['controlling'] } },
    ];
    for (const body of types) expect((await t.http().post('/admin/asset-types').set(t.admin).send({ assignment_model: 'personal', ...body })).status).toBe(201);
  });
  afterAll(async () => {
    await provider?.close();
    await t?.close();
  });

  test('without the active_directory settings an order is placed as without a directory', async () => {
    const res = await order('Open seat', 'not.in.ad@test.local');
    expect(res.status).toBe(201);
    expect(res.body.requester).toEqual({ department: null, cost_center: null, company: null, employee_id: null, title: null });
    // Group rules cannot be answered: they admit nobody, and the refusal names the settings section.
    const group = await order('Outer group seat', REQUESTER.mail);
    expect(group.status).toBe(403);
    expect(group.body.detail).toContain('active_directory is not configured');
  });

  describe('configured', () => {
    beforeAll(async () => {
      await configure(t);
    });

    test("the requester's consumer attributes, as the settings map them, are copied onto the order, on both edges", async () => {
      const want = { department: 'Controlling', cost_center: 'CC-900', company: 'Provisio Test', employee_id: 'E9601', title: 'Senior Controller' };
      const api = await order('Open seat', 'OD.Requester@test.local');
      expect(api.status).toBe(201);
      expect(api.body.requester).toEqual(want);
      const hook = await snow('Open seat', REQUESTER.mail);
      expect(hook.status).toBe(201);
      expect(hook.body.requester).toEqual(want);
      const { rows } = await t.db.query('SELECT requester_department, requester_cost_center, requester_title FROM orders WHERE id = $1', [hook.body.id]);
      expect(rows[0]).toEqual({ requester_department: 'Controlling', requester_cost_center: 'CC-900', requester_title: 'Senior Controller' });
    });

    test('a requester unknown to the directory, or disabled there, is 422 naming /body/user_email; nothing is placed', async () => {
      const before = await countRows(t.db, 'orders');
      const unknown = await order('Open seat', 'nobody@test.local');
      expect(unknown.status).toBe(422);
      expect(unknown.body).toMatchObject({ code: 'REQUESTER_NOT_FOUND', errors: [{ path: '/body/user_email' }] });
      expect(unknown.body.detail).toContain('settings section active_directory');
      const unknownHook = await snow('Open seat', 'nobody@test.local');
      expect(unknownHook.body.code).toBe('REQUESTER_NOT_FOUND');
      const disabled = await order('Open seat', GONE.mail);
      expect(disabled.status).toBe(422);
      expect(disabled.body).toMatchObject({ code: 'REQUESTER_DISABLED', errors: [{ path: '/body/user_email' }] });
      expect((await snow('Open seat', GONE.mail)).body.code).toBe('REQUESTER_DISABLED');
      expect(await countRows(t.db, 'orders')).toBe(before);
    });

    test('the approval goes to the manager the directory names at that moment', async () => {
      const first = await order('Approved seat', REQUESTER.mail);
      expect(first.body.status).toBe('pending_approval');
      expect(await approverOf(first.body.id)).toEqual([{ approver_email: BOSS.mail, reason: 'manager' }]);

      await ldap((c) => setManager(c, REQUESTER, DEPUTY.cn));
      try {
        const second = await order('Approved seat', REQUESTER.mail);
        expect(await approverOf(second.body.id)).toEqual([{ approver_email: DEPUTY.mail, reason: 'manager' }]);
        // No manager in the directory: the type's fallback approver.
        const plain = await order('Approved seat', PLAIN.mail);
        expect(await approverOf(plain.body.id)).toEqual([{ approver_email: 'it-approvals@test.local', reason: 'fallback_approver' }]);
      } finally {
        await ldap((c) => setManager(c, REQUESTER, BOSS.cn));
      }
    });

    test('a group entitlement admits members through nested groups, by name or DN, on both edges', async () => {
      expect((await order('Outer group seat', REQUESTER.mail)).status).toBe(201);
      expect((await snow('Outer group by DN', REQUESTER.mail)).status).toBe(201);
      const api = await order('Outer group seat', PLAIN.mail);
      expect(api.status).toBe(403);
      expect(api.body).toMatchObject({ code: 'NOT_ENTITLED', failed_rules: ['groups'] });
      const hook = await snow('Outer group seat', BOSS.mail);
      expect(hook.status).toBe(403);
      expect(hook.body.code).toBe('NOT_ENTITLED');
    });

    test("a department entitlement compares the directory's department", async () => {
      expect((await order('Controlling seat', REQUESTER.mail)).status).toBe(201);
      const refused = await snow('Controlling seat', PLAIN.mail);
      expect(refused.status).toBe(403);
      expect(refused.body.detail).toContain("department 'Sales' is not one of 'controlling'");
    });

    test('the catalogue lists per person what the directory entitles them to', async () => {
      const mine = await t.http().get(`/catalogue?user_email=${REQUESTER.mail}`).set({ Authorization: `Bearer ${writer}` });
      expect(mine.status).toBe(200);
      expect(mine.body.items.map((i: { name: string; entitled_by: unknown }) => [i.name, i.entitled_by])).toEqual([
        ['Approved seat', { rule: 'everyone', value: null }],
        ['Controlling seat', { rule: 'departments', value: 'controlling' }],
        ['Open seat', { rule: 'everyone', value: null }],
        ['Outer group by DN', { rule: 'groups', value: `cn=od-outer,${ou.toLowerCase()}` }],
        ['Outer group seat', { rule: 'groups', value: 'OD-Outer' }],
      ]);
      const plain = await t.http().get(`/catalogue?user_email=${PLAIN.mail}`).set({ Authorization: `Bearer ${writer}` });
      expect(plain.body.items.map((i: { name: string }) => i.name)).toEqual(['Approved seat', 'Open seat']);
      const gone = await t.http().get(`/catalogue?user_email=${GONE.mail}`).set({ Authorization: `Bearer ${writer}` });
      expect(gone.status).toBe(422);
      expect(gone.body).toMatchObject({ code: 'REQUESTER_DISABLED', errors: [{ path: '/query/user_email' }] });
    });
  });
});

describe(`orders with an Active Directory that does not answer (${testEngine})`, () => {
  let t: TestApp;
  let provider: DirectoryProvider;

  beforeAll(async () => {
    ({ t, provider } = await appWithDirectory());
    // Configured, but nothing listens there: every check that needs the directory fails closed.
    await configure(t, { port: 1, use_tls: false, start_tls: false });
    expect((await t.http().post('/admin/asset-types').set(t.admin).send({ name: 'Open seat', assignment_model: 'personal' })).status).toBe(201);
  });
  afterAll(async () => {
    await provider?.close();
    await t?.close();
  });

  test('orders and the catalogue answer 503 DIRECTORY_UNAVAILABLE and place nothing', async () => {
    const writer = await mintTestToken(t.db, 'portal', ['orders:write']);
    const res = await t.http().post('/orders').set({ Authorization: `Bearer ${writer}` }).send({ asset_type_name: 'Open seat', user_email: REQUESTER.mail, user_name: 'R' });
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ code: 'DIRECTORY_UNAVAILABLE', directory_code: 'UNAVAILABLE' });
    expect(res.body.detail).not.toContain(ad.bindPassword);
    const body = JSON.stringify(snowPayload('Open seat', { user_email: REQUESTER.mail }));
    const hook = await t.http().post('/webhook/servicenow').set('Content-Type', 'application/json').set('X-Hub-Signature-256', hubSignature(body, SECRET)).send(body);
    expect(hook.status).toBe(503);
    const catalogue = await t.http().get(`/catalogue?user_email=${REQUESTER.mail}`).set(t.admin);
    expect(catalogue.status).toBe(503);
    expect(await countRows(t.db, 'orders')).toBe(0);
  });
});
