/**
 * The AD gateway (`provisio ad-gateway`) against the real Samba AD domain controller on loopback
 * (tests/support/samba-ad.ts), on PGlite or PostgreSQL (the API tokens and the audit rows live there):
 * every operation over HTTP with a bearer token, authentication and authorisation, the directory's errors as
 * HTTP, the generated typed client (adapter/clients/ad-gateway) against the running gateway, settings from the
 * `active_directory` section, and the CLI command.
 *
 * The seeded objects the other directory tests change (Max Member, Tina Toggle, svc-readonly, the Sandbox group)
 * are left alone: this file changes a user and a group of its own, created here and reset before use.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Express } from 'express';
import { Attribute, Change, Client } from 'ldapts';
import request from 'supertest';
import * as gw from '../../adapter/clients/ad-gateway';
import { adGateway, bindTypedClient, createTypedClient as createClient, statusOf } from '../../adapter/clients';
import { createIntegrationClient } from '../../adapter/http';
import { createDirectory, type Directory, type DirectorySettings } from '../../adapter/directory';
import { createLogger, type Database } from '../../adapter';
import type { Role, Scope } from '../../server/auth/principal';
import { buildConfig } from '../../server/config';
import { mintToken, revokeToken } from '../../server/domain/tokens/api-tokens';
import { updateSettings } from '../../server/domain/settings/settings';
import { buildGatewayApp, readDirectorySettings } from '../../server/gateway';
import { runCli, spawnCli, waitForOutput } from '../support/cli';
import { createTestDatabase, testEngine, type TestDatabase } from '../support/db';
import { ensureSambaAd, SEED_USER_PASSWORD, type SambaAd } from '../support/samba-ad';

let ad: SambaAd;
let caPem: string;
let t: TestDatabase;
let db: Database;
const logger = createLogger({ silent: !process.env['TEST_LOGS'], level: 'debug' });
const config = buildConfig({ validateResponses: true });
const directories: Directory[] = [];
let app: Express;
let server: Server;
let baseURL: string;
const tokens = {} as Record<'reader' | 'writer' | 'orders' | 'helpdesk', string>;

// This file's own objects (see the header).
const TESTER = { sam: 'gw-tester', cn: 'Gateway Tester', mail: 'gw.tester@test.local', employeeID: 'E9001' };
const GROUP = 'Provisio-Gateway-Test';
let testerDn: string;
let groupDn: string;

function settings(over: Partial<DirectorySettings> = {}): DirectorySettings {
  return { server: ad.host, security: 'ldaps', caCertPem: caPem, bindDn: ad.bindDn, bindPassword: ad.bindPassword, baseDn: ad.seed.ou, ...over };
}

function directory(over: Partial<DirectorySettings> = {}): Directory {
  const d = createDirectory(settings(over), { logger });
  directories.push(d);
  return d;
}

const isCode = (e: unknown, code: number) => typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;

/** Creates (or resets) this file's user and group: enabled, title Tester, manager Alice, no group members. */
async function resetOwnObjects(): Promise<void> {
  const c = new Client({ url: ad.ldapsUrl, tlsOptions: { ca: caPem }, timeout: 15_000 });
  try {
    await c.bind(ad.bindDn, ad.bindPassword);
    const attrs: Record<string, string> = {
      givenName: 'Gateway', sn: 'Tester', displayName: TESTER.cn, userPrincipalName: `${TESTER.sam}@test.local`, mail: TESTER.mail,
      department: 'QA', departmentNumber: 'CC-900', company: 'Provisio Test', employeeID: TESTER.employeeID, title: 'Tester',
      manager: ad.seed.users.manager,
    };
    try {
      await c.add(testerDn, [
        new Attribute({ type: 'objectClass', values: ['top', 'person', 'organizationalPerson', 'user'] }),
        new Attribute({ type: 'sAMAccountName', values: [TESTER.sam] }),
        ...Object.entries(attrs).map(([type, v]) => new Attribute({ type, values: [v] })),
        new Attribute({ type: 'unicodePwd', values: [Buffer.from(`"${SEED_USER_PASSWORD}"`, 'utf16le')] }),
        new Attribute({ type: 'userAccountControl', values: ['512'] }),
      ]);
    } catch (e) {
      if (!isCode(e, 68)) throw e;
      await c.modify(testerDn, [
        ...Object.entries(attrs).map(([type, v]) => new Change({ operation: 'replace', modification: new Attribute({ type, values: [v] }) })),
        new Change({ operation: 'replace', modification: new Attribute({ type: 'userAccountControl', values: ['512'] }) }),
        new Change({ operation: 'replace', modification: new Attribute({ type: 'telephoneNumber', values: [] }) }),
      ]);
    }
    try {
      await c.add(groupDn, { objectClass: ['top', 'group'], cn: GROUP, sAMAccountName: GROUP, groupType: '-2147483646' });
    } catch (e) {
      if (!isCode(e, 68)) throw e;
    }
    await c.modify(groupDn, new Change({ operation: 'replace', modification: new Attribute({ type: 'member', values: [] }) }));
  } finally {
    await c.unbind().catch(() => undefined);
  }
}

async function mintWithId(name: string, scopes: Scope[], role: Role | null = null): Promise<{ id: number; token: string }> {
  const { row, token } = await db.transaction((tx) =>
    mintToken(tx, { name, scopes, role, expiresAt: null }, { role: 'superadmin', triggeredBy: 'system:test' }),
  );
  return { id: row.id, token };
}
const mint = async (name: string, scopes: Scope[], role: Role | null = null) => (await mintWithId(name, scopes, role)).token;

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const http = () => request(app);
const enc = encodeURIComponent;

beforeAll(async () => {
  ad = await ensureSambaAd();
  caPem = readFileSync(ad.caCertPath, 'utf8');
  testerDn = `CN=${TESTER.cn},${ad.seed.ou}`;
  groupDn = `CN=${GROUP},${ad.seed.ou}`;
  await resetOwnObjects();
  t = await createTestDatabase();
  db = t.db;
  tokens.reader = await mint('gw-reader', ['admin:read']);
  tokens.writer = await mint('gw-writer', ['admin:*']);
  tokens.orders = await mint('gw-orders', ['orders:write']);
  tokens.helpdesk = await mint('gw-helpdesk', ['admin:*'], 'helpdesk');
  app = buildGatewayApp({ db, logger, directory: directory() }, config);
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 300_000);

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await Promise.all(directories.map((d) => d.close()));
  await t?.drop();
});

const JDOE = {
  dn: '', // filled in below from the seed
  sam_account_name: 'jdoe',
  user_principal_name: 'jdoe@test.local',
  mail: 'jdoe@test.local',
  display_name: 'John Doe',
  enabled: true,
  attributes: { department: 'Engineering', cost_center: 'CC-200', company: 'Provisio Test', employee_id: 'E1001', title: 'Engineer' },
};

describe(`AD gateway over HTTP (${testEngine})`, () => {
  test('findUser by every key kind returns the consumer attributes', async () => {
    const expected = { ...JDOE, dn: ad.seed.users.jdoe, manager_dn: ad.seed.users.manager };
    for (const [key, by] of [
      ['jdoe', undefined],
      ['jdoe', 'sAMAccountName'],
      ['jdoe@test.local', 'userPrincipalName'],
      ['jdoe@test.local', 'mail'],
      ['E1001', 'employeeID'],
      [ad.seed.users.jdoe, 'dn'],
    ] as const) {
      const res = await http().get(`/users/${enc(key)}${by ? `?by=${by}` : ''}`).set(bearer(tokens.reader));
      expect({ key, by, status: res.status }).toEqual({ key, by, status: 200 });
      expect(res.body).toEqual(expected);
    }
  });

  test('an unknown user is 404 naming the key; a key is never read as a filter; a DN outside the base DN is 422', async () => {
    const res = await http().get('/users/nobody?by=mail').set(bearer(tokens.reader));
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 404, code: 'NOT_FOUND', directory_code: 'NOT_FOUND', key: { kind: 'mail', value: 'nobody' } });
    expect(res.body.detail).toContain('nobody');

    for (const key of ['*', 'jdoe)(objectClass=*', 'j*', '*)(|(sAMAccountName=*']) {
      const r = await http().get(`/users/${enc(key)}`).set(bearer(tokens.reader));
      expect({ key, status: r.status }).toEqual({ key, status: 404 });
    }
    // Metacharacters stored in the directory are matched literally.
    const weird = await http().get(`/users/${enc('star*(paren)@test.local')}?by=mail`).set(bearer(tokens.reader));
    expect(weird.status).toBe(200);
    expect(weird.body).toMatchObject({ sam_account_name: 'o(brien)', attributes: { employee_id: 'E*100' } });

    const outside = await http().get(`/users/${enc('CN=Administrator,CN=Users,DC=test,DC=local')}?by=dn`).set(bearer(tokens.reader));
    expect(outside.status).toBe(422);
    expect(outside.body).toMatchObject({ code: 'VALIDATION_FAILED', directory_code: 'INVALID_INPUT' });
    expect(outside.body.detail).toContain('outside the base DN');

    const badKind = await http().get('/users/jdoe?by=cn').set(bearer(tokens.reader));
    expect(badKind.status).toBe(400);
    expect(badKind.body.code).toBe('BAD_REQUEST');
  });

  test('findUserManager resolves the manager, or says there is none', async () => {
    const res = await http().get('/users/jdoe/manager').set(bearer(tokens.reader));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ has_manager: true, manager: { dn: ad.seed.users.manager, sam_account_name: 'amanager', attributes: { title: 'Head of IT' } } });
    const none = await http().get('/users/amanager/manager').set(bearer(tokens.reader));
    expect(none.status).toBe(200);
    expect(none.body).toEqual({ has_manager: false });
    expect((await http().get('/users/nobody/manager').set(bearer(tokens.reader))).status).toBe(404);
  });

  test('listUserGroups: nested through two levels by default, direct only with nested=false', async () => {
    const res = await http().get('/users/jdoe/groups').set(bearer(tokens.reader));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      nested: true,
      groups: [
        { dn: ad.seed.groups.approvers, sam_account_name: 'Provisio-Approvers', name: 'Provisio-Approvers', direct: false },
        { dn: ad.seed.groups.leads, sam_account_name: 'Provisio-Leads', name: 'Provisio-Leads', direct: true },
        { dn: ad.seed.groups.restricted, sam_account_name: 'Provisio-Restricted', name: 'Provisio-Restricted', direct: false },
      ],
    });
    const direct = await http().get('/users/jdoe/groups?nested=false').set(bearer(tokens.reader));
    expect(direct.body).toEqual({ nested: false, groups: [{ dn: ad.seed.groups.leads, sam_account_name: 'Provisio-Leads', name: 'Provisio-Leads', direct: true }] });
  });

  test('checkGroupMembership: nested and direct', async () => {
    const nested = await http().get('/groups/Provisio-Restricted/members/jdoe').set(bearer(tokens.reader));
    expect(nested.status).toBe(200);
    expect(nested.body).toEqual({ member: true, direct: false });
    const directOnly = await http().get('/groups/Provisio-Restricted/members/jdoe?nested=false').set(bearer(tokens.reader));
    expect(directOnly.body).toEqual({ member: false, direct: false });
    const byDn = await http().get(`/groups/${enc(ad.seed.groups.restricted)}/members/${enc('alice.manager@test.local')}?group_by=dn&by=mail`).set(bearer(tokens.reader));
    expect(byDn.body).toEqual({ member: true, direct: true });
    expect((await http().get('/groups/No-Such-Group/members/jdoe').set(bearer(tokens.reader))).status).toBe(404);
  });

  test('checkEligibleRequestor: nested member, direct member, disabled member, non-member', async () => {
    const verdict = async (user: string) => (await http().get(`/groups/Provisio-Restricted/eligible/${enc(user)}`).set(bearer(tokens.reader))).body;
    expect(await verdict('jdoe')).toEqual({ eligible: true, reason: 'nested-member', user_dn: ad.seed.users.jdoe, group_dn: ad.seed.groups.restricted });
    expect(await verdict('amanager')).toMatchObject({ eligible: true, reason: 'direct-member' });
    expect(await verdict('bleaver')).toMatchObject({ eligible: false, reason: 'account-disabled' });
    expect(await verdict('mmember')).toMatchObject({ eligible: false, reason: 'not-a-member' });
  });

  test('addGroupMember / removeGroupMember are idempotent and audited with the token as the actor', async () => {
    const path = `/groups/${GROUP}/members/${TESTER.sam}`;
    const ids = { group_dn: groupDn, member_dn: testerDn };
    const add = await http().put(path).set(bearer(tokens.writer));
    expect(add.status).toBe(200);
    expect(add.body).toEqual({ ...ids, changed: true, reason: 'added' });
    const again = await http().put(`/groups/${enc(groupDn)}/members/${TESTER.employeeID}?group_by=dn&by=employeeID`).set(bearer(tokens.writer));
    expect(again.body).toEqual({ ...ids, changed: false, reason: 'already-member' });
    expect((await http().get(path).set(bearer(tokens.reader))).body).toEqual({ member: true, direct: true });
    const remove = await http().delete(path).set(bearer(tokens.writer));
    expect(remove.body).toEqual({ ...ids, changed: true, reason: 'removed' });
    expect((await http().delete(path).set(bearer(tokens.writer))).body).toEqual({ ...ids, changed: false, reason: 'not-a-member' });

    const { rows } = await db.query<{ entity: string; entity_id: string; action: string; triggered_by: string; diff: unknown }>(
      `SELECT entity, entity_id, action, triggered_by, diff FROM audit_log WHERE entity = 'directory_group' ORDER BY id`,
    );
    expect(rows).toEqual([
      { entity: 'directory_group', entity_id: groupDn, action: 'add_member', triggered_by: 'ad-gateway:token:gw-writer', diff: { before: null, after: { member_dn: testerDn } } },
      { entity: 'directory_group', entity_id: groupDn, action: 'remove_member', triggered_by: 'ad-gateway:token:gw-writer', diff: { before: { member_dn: testerDn }, after: { member_dn: null } } },
    ]);
    // A group outside the base DN is refused before anything is written.
    const outside = await http().put(`/groups/${enc('CN=Domain Admins,CN=Users,DC=test,DC=local')}/members/${TESTER.sam}?group_by=dn`).set(bearer(tokens.writer));
    expect(outside.status).toBe(422);
    expect(outside.body.directory_code).toBe('INVALID_INPUT');
  });

  test('disableUser / enableUser flip the account, report no-ops, and show in findUser', async () => {
    const off = await http().post(`/users/${TESTER.sam}/disable`).set(bearer(tokens.writer));
    expect(off.status).toBe(200);
    expect(off.body).toEqual({ changed: true, enabled: false, dn: testerDn });
    expect((await http().post(`/users/${TESTER.sam}/disable`).set(bearer(tokens.writer))).body).toEqual({ changed: false, enabled: false, dn: testerDn });
    expect((await http().get(`/users/${TESTER.sam}`).set(bearer(tokens.reader))).body.enabled).toBe(false);
    const on = await http().post(`/users/${enc(TESTER.mail)}/enable?by=mail`).set(bearer(tokens.writer));
    expect(on.body).toEqual({ changed: true, enabled: true, dn: testerDn });
    const { rows } = await db.query<{ action: string }>(`SELECT action FROM audit_log WHERE entity = 'directory_user' AND entity_id = $1 ORDER BY id`, [testerDn]);
    expect(rows.map((r) => r.action)).toEqual(['disable', 'enable']);
  });

  test('setUserAttributes writes and clears allowed attributes; protected or unlisted ones are 422', async () => {
    const path = `/users/${TESTER.sam}/attributes`;
    const set = await http().patch(path).set(bearer(tokens.writer)).send({ attributes: { title: 'Senior Tester', telephoneNumber: '+41 44 000 00 09' } });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({ dn: testerDn, changed: ['title', 'telephoneNumber'] });
    expect((await http().patch(path).set(bearer(tokens.writer)).send({ attributes: { title: 'Senior Tester' } })).body).toEqual({ dn: testerDn, changed: [] });
    expect((await http().get(`/users/${TESTER.sam}`).set(bearer(tokens.reader))).body.attributes.title).toBe('Senior Tester');
    const clear = await http().patch(path).set(bearer(tokens.writer)).send({ attributes: { title: ['Tester'], telephoneNumber: null } });
    expect(clear.body).toEqual({ dn: testerDn, changed: ['title', 'telephoneNumber'] });

    const prot = await http().patch(path).set(bearer(tokens.writer)).send({ attributes: { userAccountControl: '514' } });
    expect(prot.status).toBe(422);
    expect(prot.body).toMatchObject({
      code: 'VALIDATION_FAILED',
      directory_code: 'ATTRIBUTE_NOT_ALLOWED',
      errors: [{ path: '/body/attributes/userAccountControl', message: 'attribute userAccountControl is protected' }],
    });
    const unlisted = await http().patch(path).set(bearer(tokens.writer)).send({ attributes: { street: 'Main Street 1' } });
    expect(unlisted.status).toBe(422);
    expect(unlisted.body.directory_code).toBe('ATTRIBUTE_NOT_ALLOWED');
    // The spec itself refuses an empty change and a non-string value, naming the field.
    const empty = await http().patch(path).set(bearer(tokens.writer)).send({ attributes: {} });
    expect(empty.status).toBe(422);
    expect(empty.body.errors[0].path).toBe('/body/attributes');
    const wrongType = await http().patch(path).set(bearer(tokens.writer)).send({ attributes: { title: { text: 'x' } } });
    expect(wrongType.status).toBe(422);

    const { rows } = await db.query<{ diff: unknown }>(`SELECT diff FROM audit_log WHERE entity = 'directory_user' AND action = 'set_attributes' ORDER BY id`);
    expect(rows.map((r) => r.diff)).toEqual([
      { before: null, after: { title: 'Senior Tester', telephoneNumber: '+41 44 000 00 09' } },
      { before: null, after: { title: ['Tester'], telephoneNumber: null } },
    ]);
  });

  test('testDirectoryConnection binds and reads the naming context', async () => {
    const res = await http().get('/directory/status').set(bearer(tokens.reader));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', default_naming_context: 'DC=test,DC=local' });
  });

  test('401 without a valid bearer token (the admin key is not accepted here); 403 without the scope or role', async () => {
    const none = await http().get('/users/jdoe');
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await http().get('/users/jdoe').set(bearer('xpat_not-a-real-token'))).status).toBe(401);
    expect((await http().get('/users/jdoe').set({ 'X-Admin-Key': 'whatever-admin-key-0123456789' })).status).toBe(401);

    const readerWrites = await http().put(`/groups/${GROUP}/members/${TESTER.sam}`).set(bearer(tokens.reader));
    expect(readerWrites.status).toBe(403);
    expect(readerWrites.body.detail).toContain('admin:*');
    expect((await http().get('/users/jdoe').set(bearer(tokens.orders))).status).toBe(403);
    const helpdesk = await http().post(`/users/${TESTER.sam}/disable`).set(bearer(tokens.helpdesk));
    expect(helpdesk.status).toBe(403);
    expect(helpdesk.body.detail).toContain("role 'helpdesk'");
    // The writer's admin:* includes admin:read.
    expect((await http().get('/users/jdoe').set(bearer(tokens.writer))).status).toBe(200);
    expect((await http().get('/nope').set(bearer(tokens.reader))).status).toBe(404);
    // The model itself is public, for whoever imports it.
    const spec = await http().get('/openapi.json');
    expect(spec.status).toBe(200);
    expect(spec.body.info.title).toBe('provisio AD gateway');
  });

  test('a revoked token works on a caching gateway only until its cache entry expires; without the cache, never', async () => {
    const { id, token } = await mintWithId('gw-short-lived', ['admin:read']);
    // Long enough that the steps before the second cached call fit inside it even on a loaded machine.
    const cached = buildGatewayApp({ db, logger, directory: directory() }, { ...config, tokenCacheMs: 3000 });
    expect((await request(cached).get('/directory/status').set(bearer(token))).status).toBe(200);
    await db.transaction((tx) => revokeToken(tx, id, { role: 'superadmin', triggeredBy: 'system:test' }));
    // The main app's default: no cache, so the revocation is immediate.
    const uncached = buildGatewayApp({ db, logger, directory: directory() }, { ...config, tokenCacheMs: 0 });
    expect((await request(uncached).get('/directory/status').set(bearer(token))).status).toBe(401);
    expect((await request(cached).get('/directory/status').set(bearer(token))).status).toBe(200);
    await new Promise((r) => setTimeout(r, 3100));
    expect((await request(cached).get('/directory/status').set(bearer(token))).status).toBe(401);
  });

  test('directory trouble is 502/503 with a safe detail: wrong bind password, missing rights, unreachable server', async () => {
    const wrongPassword = 'Wr0ng!Passw0rd-xyz';
    const badApp = buildGatewayApp({ db, logger, directory: directory({ bindPassword: wrongPassword }) }, config);
    const bad = await request(badApp).get('/users/jdoe').set(bearer(tokens.reader));
    expect(bad.status).toBe(502);
    expect(bad.body).toMatchObject({ code: 'INTEGRATION_CALL_FAILED', directory_code: 'INVALID_CREDENTIALS' });
    expect(bad.body.detail).toBe('the directory refused the service account: wrong password (AD data 52e)');
    expect(JSON.stringify(bad.body)).not.toContain(wrongPassword);

    const roApp = buildGatewayApp({ db, logger, directory: directory({ bindDn: 'svc-readonly@test.local', bindPassword: SEED_USER_PASSWORD }) }, config);
    const ro = await request(roApp).put(`/groups/${GROUP}/members/${TESTER.sam}`).set(bearer(tokens.writer));
    expect(ro.status).toBe(502);
    expect(ro.body).toMatchObject({ directory_code: 'INSUFFICIENT_ACCESS' });

    const wrongCa = buildGatewayApp({ db, logger, directory: directory({ caCertPem: readFileSync(ad.otherCaCertPath, 'utf8') }) }, config);
    const tls = await request(wrongCa).get('/users/jdoe').set(bearer(tokens.reader));
    expect(tls.status).toBe(502);
    expect(tls.body).toMatchObject({ directory_code: 'TLS', detail: 'TLS to the directory failed: check the CA certificate and the server name' });

    const downApp = buildGatewayApp({ db, logger, directory: directory({ port: 1, security: 'none', connectTimeoutMs: 1000 }) }, config);
    const down = await request(downApp).get('/users/jdoe').set(bearer(tokens.reader));
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ code: 'INTEGRATION_UNAVAILABLE', directory_code: 'UNAVAILABLE', detail: 'the directory is unavailable; try again later' });
  });
});

describe(`the generated typed client against the running gateway (${testEngine})`, () => {
  const client = () => createClient({ baseURL, auth: () => tokens.writer });

  test('every read operation answers the shapes the model declares', async () => {
    const c = client();
    const user = await gw.findUser({ client: c, path: { key: 'E1001' }, query: { by: 'employeeID' }, throwOnError: true });
    expect(user.data).toMatchObject({ dn: ad.seed.users.jdoe, attributes: JDOE.attributes });
    const mgr = await gw.findUserManager({ client: c, path: { key: 'jdoe' }, throwOnError: true });
    expect(mgr.data.manager?.sam_account_name).toBe('amanager');
    const groups = await gw.listUserGroups({ client: c, path: { key: 'jdoe' }, query: { nested: true }, throwOnError: true });
    expect(groups.data.groups.map((g) => g.name)).toEqual(['Provisio-Approvers', 'Provisio-Leads', 'Provisio-Restricted']);
    const member = await gw.checkGroupMembership({ client: c, path: { group: ad.seed.groups.restricted, user: ad.seed.users.jdoe }, query: { group_by: 'dn', by: 'dn' }, throwOnError: true });
    expect(member.data).toEqual({ member: true, direct: false });
    const eligible = await gw.checkEligibleRequestor({ client: c, path: { group: 'Provisio-Restricted', user: 'jdoe@test.local' }, query: { by: 'userPrincipalName' }, throwOnError: true });
    expect(eligible.data.reason).toBe('nested-member');
    const status = await gw.testDirectoryConnection({ client: c, throwOnError: true });
    expect(status.data.status).toBe('ok');
  });

  test('every write operation, and errors as typed problem documents', async () => {
    const c = client();
    const path = { group: GROUP, user: TESTER.sam };
    expect((await gw.addGroupMember({ client: c, path, throwOnError: true })).data).toMatchObject({ changed: true, reason: 'added' });
    expect((await gw.removeGroupMember({ client: c, path, throwOnError: true })).data).toMatchObject({ changed: true, reason: 'removed' });
    expect((await gw.disableUser({ client: c, path: { key: TESTER.sam }, throwOnError: true })).data).toMatchObject({ changed: true, enabled: false });
    expect((await gw.enableUser({ client: c, path: { key: TESTER.sam }, throwOnError: true })).data).toMatchObject({ changed: true, enabled: true });
    const attrs = await gw.setUserAttributes({ client: c, path: { key: TESTER.sam }, body: { attributes: { description: 'via the typed client' } }, throwOnError: true });
    expect(attrs.data).toEqual({ dn: testerDn, changed: ['description'] });
    await gw.setUserAttributes({ client: c, path: { key: TESTER.sam }, body: { attributes: { description: null } }, throwOnError: true });

    const missing = await gw.findUser({ client: c, path: { key: 'nobody' } });
    expect(missing.data).toBeUndefined();
    expect(missing.error).toMatchObject({ status: 404, code: 'NOT_FOUND', directory_code: 'NOT_FOUND', key: { kind: 'sAMAccountName', value: 'nobody' } });
    const unauthenticated = await gw.findUser({ client: createClient({ baseURL }), path: { key: 'jdoe' } });
    expect(unauthenticated.error).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
  });
});

describe(`the gateway as an integration of the runtime, as a runbook reaches it (${testEngine})`, () => {
  test('a typed call through createIntegrationClient with bearer auth; a token without the scope is a 403 result', async () => {
    const { port } = server.address() as AddressInfo;
    const integration = (token: string) =>
      createIntegrationClient(
        { server: { protocol: 'http', host: '127.0.0.1', port }, authentication: { type: 'bearer', token } },
        { logger, name: 'ad-gateway' },
      );
    const reader = integration(tokens.reader);
    const orders = integration(tokens.orders);
    try {
      const eligible = await adGateway.checkEligibleRequestor({ client: bindTypedClient(reader), path: { group: 'Provisio-Restricted', user: 'jdoe' } });
      expect(statusOf(eligible)).toBe(200);
      expect(eligible.data).toMatchObject({ eligible: true, reason: 'nested-member' });
      const refused = await adGateway.findUser({ client: bindTypedClient(orders), path: { key: 'jdoe' } });
      expect(statusOf(refused)).toBe(403);
      expect(refused.error).toMatchObject({ code: 'FORBIDDEN' });
    } finally {
      reader.close();
      orders.close();
    }
  });
});

describe(`directory settings from the active_directory section (${testEngine})`, () => {
  test('stored settings (with the CA) reach the directory; the environment overrides them key by key', async () => {
    await expect(readDirectorySettings(db, {})).rejects.toThrow(/not configured: set server \(AD_SERVER\), bind_dn/);
    await db.transaction((tx) =>
      updateSettings(tx, 'active_directory', {
        server: ad.host, port: 636, use_tls: true, bind_dn: ad.bindDn, bind_password: ad.bindPassword, base_dn: ad.seed.ou,
        ca_cert_pem: caPem, cost_center_attribute: 'departmentNumber', title_attribute: 'description',
      }, { triggeredBy: 'system:test' }),
    );
    const stored = await readDirectorySettings(db, {});
    expect(stored).toMatchObject({ server: ad.host, port: 636, security: 'ldaps', bindDn: ad.bindDn, baseDn: ad.seed.ou, caCertPem: caPem });
    const d = directory(stored);
    // title comes from `description` now, as the settings say.
    expect((await d.findUser({ by: 'sAMAccountName', value: 'svc-readonly' })).attributes.title).toBe('read-only service account for tests');

    const env = { AD_PORT: '389', AD_SECURITY: 'starttls', AD_CA_CERT_FILE: ad.caCertPath, AD_BASE_DN: ad.baseDn };
    const overridden = await readDirectorySettings(db, env);
    expect(overridden).toMatchObject({ port: 389, security: 'starttls', baseDn: ad.baseDn, caCertPem: caPem });
    expect((await directory(overridden).testConnection()).defaultNamingContext).toBe('DC=test,DC=local');
    await expect(readDirectorySettings(db, { AD_SECURITY: 'tls' })).rejects.toThrow(/AD_SECURITY must be ldaps, starttls or none/);
  });
});

describe(`provisio ad-gateway (${testEngine})`, () => {
  let dataDir: string;
  let pg: TestDatabase | undefined;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'provisio-gw-'));
    if (testEngine === 'postgres') pg = await createTestDatabase({ migrate: false });
  });
  afterAll(async () => {
    await pg?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('starts on AD_GATEWAY_PORT against the same database, answers a token minted by the CLI, stops on SIGTERM', async () => {
    const env = {
      DATA_DIR: dataDir, DATABASE_URL: pg?.url, LOG_LEVEL: 'info',
      AD_SERVER: ad.host, AD_SECURITY: 'ldaps', AD_CA_CERT_FILE: ad.caCertPath, AD_BIND_DN: ad.bindDn,
      AD_BIND_PASSWORD: ad.bindPassword, AD_BASE_DN: ad.seed.ou,
    };
    const minted = await runCli(['token', 'create', '--name', 'gw-cli', '--scopes', 'admin:read'], env);
    expect(minted.code).toBe(0);
    // The first command on a fresh database also logs the migrations it applied.
    const token = /xpat_\S+/.exec(minted.stdout)?.[0] ?? '';
    const port = await freePort();
    const child = spawnCli(['ad-gateway'], { ...env, AD_GATEWAY_PORT: String(port) });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await waitForOutput(child, /AD gateway listening/);
      const c = createClient({ baseURL: `http://127.0.0.1:${port}`, auth: () => token });
      const res = await gw.findUser({ client: c, path: { key: 'jdoe' }, throwOnError: true });
      expect(res.data.attributes.employee_id).toBe('E1001');
      const code = await new Promise<number | null>((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      });
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);
});

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
