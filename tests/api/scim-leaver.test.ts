import { randomUUID } from 'node:crypto';
import { createTestApp, type TestApp } from '../support/app';
import { deprovisionJobsPerOrder, seedOrders, statusesOf } from '../support/leavers';
import { seedAssetType } from '../support/orders';
import { CORE_USER, ENTERPRISE_USER, scimClient, userBody, type ScimClient } from '../support/scim';

// The joiner/mover/leaver sequences of the IdP checklist (../shared/scim-conformance/idp-checklist.md §3-§4),
// request for request, and what the leaver flow did: orders revoked or cancelled, one deprovision job each.

describe('SCIM deactivation runs the leaver flow once', () => {
  let t: TestApp;
  let okta: ScimClient;
  let entra: ScimClient;
  let typeId: number;
  beforeAll(async () => {
    t = await createTestApp();
    okta = await scimClient(t, 'okta');
    entra = await scimClient(t, 'entra');
    typeId = await seedAssetType(t.db, { name: 'Laptop' });
  });
  afterAll(async () => {
    await t.close();
  });

  const events = async (email: string) =>
    (await t.db.query<{ status: string; triggered_by: string; dedupe_key: string }>(
      `SELECT status, triggered_by, dedupe_key FROM leaver_events WHERE source = 'scim' AND person_key = lower($1) ORDER BY id`, [email],
    )).rows;
  const q = (filter: string) => `/Users?filter=${encodeURIComponent(filter)}`;

  test('Okta OIN: match, create, GET, PUT profile, PATCH active false (no path), repeat, reactivate', async () => {
    const email = 'okta.leaver@example.com';
    const orders = await seedOrders(t.db, { assetTypeId: typeId, email, statuses: ['provisioned', 'provisioned', 'pending_approval'] });

    const match = await okta.get(`/Users?filter=${encodeURIComponent(`userName eq "${email}"`)}&startIndex=1&count=100`);
    expect(match.body).toMatchObject({ totalResults: 0, Resources: [] });
    const created = await okta.post('/Users', {
      schemas: [CORE_USER], userName: email, name: { givenName: 'Okta', familyName: 'Leaver' },
      emails: [{ primary: true, value: email, type: 'work' }], displayName: 'Okta Leaver', locale: 'en-US',
      externalId: '00u1abcd', groups: [], password: '1mncas-sdv', active: true,
    }, 'application/json');
    expect(created.status).toBe(201);
    expect(created.body).not.toHaveProperty('password');
    const id = created.body.id as string;
    const got = await okta.get(`/Users/${id}`);
    const put = await okta.put(`/Users/${id}`, { ...got.body, displayName: 'Okta Mover', groups: [] });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ displayName: 'Okta Mover', active: true });
    expect(await events(email)).toEqual([]);

    const off = await okta.patch(`/Users/${id}`, [{ op: 'replace', value: { active: false } }]);
    expect(off.status).toBe(200);
    expect(off.body.active).toBe(false);
    const st = await statusesOf(t.db, orders);
    expect([st[orders[0]!], st[orders[1]!], st[orders[2]!]]).toEqual(['revoked', 'revoked', 'cancelled']);
    expect(await deprovisionJobsPerOrder(t.db, orders)).toEqual({ [orders[0]!]: 1, [orders[1]!]: 1 });
    const ev = await events(email);
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ status: 'processed', triggered_by: 'scim:token:okta' });
    expect(ev[0]!.dedupe_key).toMatch(new RegExp(`^scim:${id}:deactivate:`));

    // Deactivated users are still served, by id and by the matching filter.
    expect((await okta.get(`/Users/${id}`)).body.active).toBe(false);
    expect((await okta.get(q(`userName eq "${email}"`))).body.Resources[0]).toMatchObject({ id, active: false });

    // Okta retries: the same deactivation again changes nothing.
    expect((await okta.patch(`/Users/${id}`, [{ op: 'replace', value: { active: false } }])).status).toBe(200);
    expect(await events(email)).toHaveLength(1);
    expect(await deprovisionJobsPerOrder(t.db, orders)).toEqual({ [orders[0]!]: 1, [orders[1]!]: 1 });

    // Reactivation is recorded and restores nothing.
    const on = await okta.patch(`/Users/${id}`, [{ op: 'replace', value: { active: true } }]);
    expect(on.body.active).toBe(true);
    expect(Object.values(await statusesOf(t.db, orders)).sort()).toEqual(['cancelled', 'revoked', 'revoked']);
    const audit = await t.db.query<{ action: string; triggered_by: string }>(
      `SELECT action, triggered_by FROM audit_log WHERE entity = 'scim_user' AND entity_id = $1 ORDER BY id`, [id],
    );
    expect(audit.rows.map((r) => r.action)).toEqual(['create', 'update', 'deactivate', 'update', 'reactivate']);
    expect(new Set(audit.rows.map((r) => r.triggered_by))).toEqual(new Set(['scim:token:okta']));
  });

  test('Okta AIW: GET then PUT the whole body with active false', async () => {
    const email = 'okta.aiw@example.com';
    const orders = await seedOrders(t.db, { assetTypeId: typeId, email, statuses: ['provisioned'] });
    const id = (await okta.post('/Users', userBody(email))).body.id as string;
    const got = await okta.get(`/Users/${id}`);
    const put = await okta.put(`/Users/${id}`, { ...got.body, active: false });
    expect(put.status).toBe(200);
    expect(put.body.active).toBe(false);
    expect(await statusesOf(t.db, orders)).toEqual({ [orders[0]!]: 'revoked' });
    expect(await events(email)).toHaveLength(1);
    // a PUT that echoes active false again is the same deactivation
    await okta.put(`/Users/${id}`, { ...put.body });
    expect(await events(email)).toHaveLength(1);
    expect(await deprovisionJobsPerOrder(t.db, orders)).toEqual({ [orders[0]!]: 1 });
  });

  test('Entra default job: test connection, match, create, mover PATCHes, "False", GET, hard DELETE, re-create', async () => {
    const email = 'entra.leaver@example.com';
    const orders = await seedOrders(t.db, { assetTypeId: typeId, email, employeeId: 'EMP-9', statuses: ['provisioned', 'scheduled'] });

    expect((await entra.get(q(`userName eq "${randomUUID()}"`))).body).toEqual({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [],
    });
    expect((await entra.get(q(`userName eq "${email}"`))).body.totalResults).toBe(0);
    const created = await entra.post('/Users', {
      schemas: [CORE_USER, ENTERPRISE_USER], externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef', userName: email, active: true,
      addresses: null, manager: null, title: null,
      emails: [{ primary: true, type: 'work', value: email }], meta: { resourceType: 'User' },
      name: { formatted: 'Entra Leaver', familyName: 'Leaver', givenName: 'Entra' }, roles: [],
      [ENTERPRISE_USER]: { employeeNumber: 'EMP-9', department: 'Finance' },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect((await entra.get(`/Users/${id}`)).status).toBe(200);
    const mover = await entra.patch(`/Users/${id}`, [{ op: 'Replace', path: 'emails[type eq "work"].value', value: email }]);
    expect(mover.status).toBe(200);
    await entra.patch(`/Users/${id}`, [{ op: 'Add', path: 'nickName', value: 'EL' }]);
    await entra.patch(`/Users/${id}`, [{ op: 'Replace', path: 'title', value: 'Analyst' }]);
    expect(await events(email)).toEqual([]);

    const off = await entra.patch(`/Users/${id}`, [{ op: 'Replace', path: 'active', value: 'False' }]);
    expect(off.status).toBe(200);
    expect(off.body.active).toBe(false);
    expect(await statusesOf(t.db, orders)).toEqual({ [orders[0]!]: 'revoked', [orders[1]!]: 'cancelled' });
    expect(await events(email)).toHaveLength(1);
    expect((await entra.get(`/Users/${id}`)).body.active).toBe(false);

    // 30 days later: the hard delete is the same leaver episode, nothing is revoked or dispatched twice
    expect((await entra.del(`/Users/${id}`)).status).toBe(204);
    expect(await events(email)).toHaveLength(1);
    expect(await deprovisionJobsPerOrder(t.db, orders)).toEqual({ [orders[0]!]: 1 });
    expect((await entra.get(`/Users/${id}`)).status).toBe(404);
    expect((await entra.get(q(`userName eq "${email}"`))).body.totalResults).toBe(0);

    // Restore_User_Test: the same userName can be provisioned again
    const again = await entra.post('/Users', userBody(email));
    expect(again.status).toBe(201);
  });

  test('Entra SCIM-compliant job: boolean false inside a multi-operation PATCH, active not first', async () => {
    const email = 'entra.flagged@example.com';
    const orders = await seedOrders(t.db, { assetTypeId: typeId, email, statuses: ['provisioned'] });
    const id = (await entra.post('/Users', userBody(email))).body.id as string;
    const res = await entra.patch(`/Users/${id}`, [
      { op: 'replace', value: { displayName: 'Gone Soon', 'name.givenName': 'G' } },
      { op: 'replace', path: 'active', value: false },
      { op: 'add', path: 'title', value: 'Former' },
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ active: false, displayName: 'Gone Soon', title: 'Former' });
    expect(await statusesOf(t.db, orders)).toEqual({ [orders[0]!]: 'revoked' });
    expect(await events(email)).toHaveLength(1);
  });

  test('DELETE of an active user runs the leaver flow; a person holding nothing gets one event and no revocation', async () => {
    const email = 'deleted.active@example.com';
    const orders = await seedOrders(t.db, { assetTypeId: typeId, email, statuses: ['provisioned'] });
    const id = (await entra.post('/Users', userBody(email))).body.id as string;
    expect((await entra.del(`/Users/${id}`)).status).toBe(204);
    expect(await statusesOf(t.db, orders)).toEqual({ [orders[0]!]: 'revoked' });
    expect(await events(email)).toHaveLength(1);

    const stranger = (await entra.post('/Users', userBody('nobody.here@example.com'))).body.id as string;
    expect((await entra.patch(`/Users/${stranger}`, [{ op: 'replace', path: 'active', value: 'false' }])).status).toBe(200);
    const ev = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM leaver_event_orders o JOIN leaver_events e ON e.id = o.event_id WHERE e.dedupe_key LIKE $1`, [`scim:${stranger}:%`],
    );
    expect(ev.rows).toEqual([{ n: 0 }]);
    expect((await t.db.query(`SELECT 1 FROM leaver_events WHERE dedupe_key LIKE $1`, [`scim:${stranger}:%`])).rows).toHaveLength(1);
  });

  test('concurrent deactivations of one user (Entra PATCH, Okta PATCH and Okta PUT racing) revoke once', async () => {
    const email = 'racing@example.com';
    const orders = await seedOrders(t.db, { assetTypeId: typeId, email, statuses: ['provisioned', 'provisioned'] });
    const id = (await entra.post('/Users', userBody(email))).body.id as string;
    const results = await Promise.all([
      entra.patch(`/Users/${id}`, [{ op: 'Replace', path: 'active', value: 'False' }]),
      okta.patch(`/Users/${id}`, [{ op: 'replace', value: { active: false } }]),
      okta.put(`/Users/${id}`, userBody(email, { active: false })),
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await events(email)).toHaveLength(1);
    expect(await deprovisionJobsPerOrder(t.db, orders)).toEqual({ [orders[0]!]: 1, [orders[1]!]: 1 });
  });
});
