import request from 'supertest';
import { buildApp } from '../../server/app';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import { processLeaverEvent, registerLeaverWorker } from '../../server/domain/identity/leaver';
import { createTestApp, TEST_ADMIN_KEY, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { createMemoryLogger } from '../support/memory-logger';
import { countRows, hubSignature, mintTestToken, seedAssetType } from '../support/orders';
import { deprovisionJobsPerOrder, hrFixture, seedOrders, statusesOf } from '../support/leavers';

const SECRET = 'hr-webhook-secret-0123456789';
const CLIENT_STATE = 'graph-client-state-0123456789';

describe(`POST /hr/leaver, POST /hr/leaver/graph, GET /admin/leavers (${testEngine})`, () => {
  let t: TestApp;
  let hrToken: string;
  let typeId: number;
  let helpdeskToken: string;

  beforeAll(async () => {
    t = await createTestApp({ webhookSecretToken: SECRET });
    hrToken = await mintTestToken(t.db, 'hr-prod', ['hr:leaver']);
    typeId = await seedAssetType(t.db, { name: 'Standard VDI' });
    await t.db.query(`UPDATE asset_types SET deprovision_policy = 'reinstall' WHERE id = $1`, [typeId]);
    const put = await t.http().put('/admin/settings/hr').set(t.admin).send({ graph_client_state: CLIENT_STATE });
    expect(put.status).toBe(200);
    const mint = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'desk', scopes: ['admin:read'], role: 'helpdesk' });
    expect(mint.status).toBe(201);
    helpdeskToken = mint.body.token as string;
  });
  afterAll(async () => {
    await t.close();
  });

  const bearer = (body: unknown, token = hrToken) => t.http().post('/hr/leaver').set('Authorization', `Bearer ${token}`).send(body as object);
  const signed = (body: unknown, secret = SECRET) => {
    const raw = JSON.stringify(body);
    return t.http().post('/hr/leaver').set('Content-Type', 'application/json').set('X-Hub-Signature-256', hubSignature(raw, secret)).send(raw);
  };
  const ALL = ['provisioned', 'provisioning', 'processing', 'failed', 'pending_approval', 'scheduled', 'returned', 'cancelled'];

  test('native format (bearer): active orders revoked with one deprovision job each, pending orders cancelled, all audited', async () => {
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'Nat.Ive@Example.com', statuses: ALL });
    const other = await seedOrders(t.db, { assetTypeId: typeId, email: 'someone.else@example.com', statuses: ['provisioned'] });
    const body = { ...hrFixture('native'), email: 'NAT.IVE@example.com', employee_id: undefined, event_id: 'bhr-1' };
    const res = await bearer(body);
    expect(res.status).toBe(202);
    const [revoked, cancelled] = [ids.slice(0, 4), ids.slice(4, 6)];
    expect(res.body).toEqual({
      results: [{ status: 'processed', event_id: expect.any(Number), source: 'native', revoked_orders: revoked, cancelled_orders: cancelled, message: '4 order(s) revoked, 2 cancelled' }],
    });
    expect(await statusesOf(t.db, [...ids, ...other])).toEqual({
      [ids[0]!]: 'revoked', [ids[1]!]: 'revoked', [ids[2]!]: 'revoked', [ids[3]!]: 'revoked',
      [ids[4]!]: 'cancelled', [ids[5]!]: 'cancelled', [ids[6]!]: 'returned', [ids[7]!]: 'cancelled', [other[0]!]: 'provisioned',
    });
    expect(await deprovisionJobsPerOrder(t.db, ids)).toEqual(Object.fromEntries(revoked.map((id) => [id, 1])));
    const { rows: jobs } = await t.db.query<{ data: Record<string, unknown> }>(
      `SELECT data FROM pgboss.job WHERE name = 'order.deprovision' AND (data->>'orderId')::bigint = $1`,
      [revoked[0]],
    );
    expect(jobs[0]!.data).toEqual({ orderId: revoked[0], reason: 'leaver', policy: 'reinstall', leaverEventId: res.body.results[0].event_id });
    // Every step attributed to the HR source.
    expect(await countRows(t.db, `audit_log WHERE triggered_by = 'hr:bamboohr' AND entity = 'order' AND action = 'transition'`)).toBe(6);
    expect(await countRows(t.db, `audit_log WHERE triggered_by = 'hr:bamboohr' AND entity = 'order' AND action = 'deprovision_dispatched'`)).toBe(4);
    const { rows: received } = await t.db.query<{ diff: { after: Record<string, unknown> } }>(
      `SELECT diff FROM audit_log WHERE entity = 'leaver_event' AND action = 'received' AND entity_id = $1`,
      [String(res.body.results[0].event_id)],
    );
    expect(received[0]!.diff.after).toMatchObject({ source: 'native', person_key: 'nat.ive@example.com', credential: 'token:hr-prod' });
  });

  test('duplicate delivery: the same event again is answered duplicate and changes nothing', async () => {
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'dup@example.com', statuses: ['provisioned', 'provisioned'] });
    const body = { email: 'dup@example.com', event_id: 'dup-1' };
    const first = await bearer(body);
    expect(first.body.results[0]).toMatchObject({ status: 'processed', revoked_orders: ids });
    const auditBefore = await countRows(t.db, `audit_log WHERE entity = 'order' AND entity_id = ANY($1::text[])`, [ids.map(String)]);
    const again = await signed(body);
    expect(again.status).toBe(202);
    expect(again.body).toEqual({
      results: [{ status: 'duplicate', event_id: first.body.results[0].event_id, source: 'native', revoked_orders: [], cancelled_orders: [], message: 'duplicate delivery: nothing changed' }],
    });
    expect(await deprovisionJobsPerOrder(t.db, ids)).toEqual({ [ids[0]!]: 1, [ids[1]!]: 1 });
    expect(await countRows(t.db, `audit_log WHERE entity = 'order' AND entity_id = ANY($1::text[])`, [ids.map(String)])).toBe(auditBefore);
    expect(await countRows(t.db, `leaver_events WHERE person_key = 'dup@example.com'`)).toBe(1);
    // A second source for the same person: a new event that finds nothing left to take back.
    const scim = await processLeaverEvent({ db: t.db, queue: t.queue, logger: createMemoryLogger().logger }, {
      source: 'scim', identity: { userName: 'DUP@example.com' }, triggeredBy: 'scim:token:okta', dedupeKey: 'scim:u1:deactivate',
    });
    expect(scim).toEqual({ eventId: expect.any(Number), status: 'processed', revokedOrders: [], cancelledOrders: [] });
    expect(await deprovisionJobsPerOrder(t.db, ids)).toEqual({ [ids[0]!]: 1, [ids[1]!]: 1 });
  });

  test('Workday termination (HMAC), matched by the employee id of the requester snapshot alone', async () => {
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'wd.worker@example.com', employeeId: 'WD-77', statuses: ['provisioned', 'pending_approval'] });
    const body = hrFixture<Record<string, Record<string, unknown>>>('workday');
    body['Worker'] = { Employee_ID: 'WD-77' };
    const res = await signed(body);
    expect(res.status).toBe(202);
    expect(res.body.results).toEqual([
      { status: 'processed', event_id: expect.any(Number), source: 'workday', revoked_orders: [ids[0]], cancelled_orders: [ids[1]], message: '1 order(s) revoked, 1 cancelled' },
    ]);
    const { rows } = await t.db.query<Record<string, unknown>>('SELECT person_key, dedupe_key, effective_at, reason, triggered_by FROM leaver_events WHERE id = $1', [res.body.results[0].event_id]);
    expect(rows[0]).toEqual({
      person_key: 'wd.worker@example.com',
      dedupe_key: 'workday:4f1c2b7e9d3a4e8b9c0d1e2f3a4b5c6d',
      // The last day of work ends at midnight after it.
      effective_at: new Date('2026-07-01T00:00:00Z'),
      reason: 'Terminate_Employee_Voluntary_Resignation',
      triggered_by: 'hr:workday',
    });
    // A Workday event that is not a termination is answered, not recorded.
    const hire = await signed({ ...body, Event_Type: 'Hire', Event_ID: 'wd-hire-1' });
    expect(hire.body.results).toEqual([
      { status: 'ignored', event_id: null, source: 'workday', revoked_orders: [], cancelled_orders: [], message: "Workday event type 'Hire' is not a termination" },
    ]);
  });

  test('a person resolved through the SCIM users table: employee number -> userName and emails -> their orders', async () => {
    await t.db.query(
      `INSERT INTO scim_users (id, user_name, external_id, emails, employee_number)
       VALUES ('0b1e7c4a-3d2f-4a5b-9c8d-7e6f5a4b3c2d', 'S.Person@example.com', 'ext-9', $1, 'E-9')`,
      [JSON.stringify([{ value: 'Scim.Work@Example.com', type: 'work', primary: true }])],
    );
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'scim.work@example.com', statuses: ['provisioned'] });
    const ids2 = await seedOrders(t.db, { assetTypeId: typeId, email: 's.person@example.com', statuses: ['provisioned'] });
    const body = { ...hrFixture<Record<string, unknown>>('workday'), Event_ID: 'wd-scim-1', Worker: { Employee_ID: 'E-9' } };
    const res = await signed(body);
    expect(res.body.results).toEqual([
      { status: 'processed', event_id: expect.any(Number), source: 'workday', revoked_orders: [...ids, ...ids2], cancelled_orders: [], message: '2 order(s) revoked, 0 cancelled' },
    ]);
    // Known to SCIM but holding nothing: processed, not "no matching user".
    await t.db.query(`INSERT INTO scim_users (id, user_name, emails) VALUES ('1c2e7c4a-3d2f-4a5b-9c8d-7e6f5a4b3c2d', 'idle@example.com', '[]')`);
    const idle = await bearer({ email: 'IDLE@example.com' });
    expect(idle.body.results[0]).toMatchObject({ status: 'processed', revoked_orders: [], cancelled_orders: [] });
  });

  test('SAP SuccessFactors EmpJob termination (bearer)', async () => {
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'jane.doe@example.com', statuses: ['provisioned'] });
    const res = await bearer(hrFixture('successfactors'));
    expect(res.status).toBe(202);
    expect(res.body.results).toEqual([
      { status: 'processed', event_id: expect.any(Number), source: 'successfactors', revoked_orders: ids, cancelled_orders: [], message: '1 order(s) revoked, 0 cancelled' },
    ]);
    const { rows } = await t.db.query<Record<string, unknown>>('SELECT identity, effective_at, triggered_by FROM leaver_events WHERE id = $1', [res.body.results[0].event_id]);
    expect(rows[0]).toEqual({
      identity: { email: 'jane.doe@example.com', userName: null, externalId: '21001', employeeId: '21001' },
      effective_at: new Date('2026-07-01T00:00:00Z'),
      triggered_by: 'hr:successfactors',
    });
  });

  test('Microsoft Graph: the validation handshake is echoed as text/plain at once', async () => {
    const token = 'Validation: Testing client application reachability for subscription Request-Id: 5d4a2b6c';
    const res = await t.http().post(`/hr/leaver/graph?validationToken=${encodeURIComponent(token)}`).set('Content-Type', 'text/plain; charset=utf-8').send('');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toBe(token);
  });

  test('Microsoft Graph: accountEnabled false runs the flow; a deleted user nobody knows is "no matching user"; other updates are ignored', async () => {
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'graph.user@example.com', statuses: ['provisioned', 'scheduled'] });
    const body = hrFixture<{ value: Record<string, Record<string, unknown>>[] }>('graph');
    body.value[0]!['resourceData']!['userPrincipalName'] = 'graph.user@example.com';
    const res = await t.http().post('/hr/leaver/graph').send(body);
    expect(res.status).toBe(202);
    expect(res.body.results).toEqual([
      { status: 'processed', event_id: expect.any(Number), source: 'graph', revoked_orders: [ids[0]], cancelled_orders: [ids[1]], message: '1 order(s) revoked, 1 cancelled' },
    ]);
    expect(await countRows(t.db, `audit_log WHERE triggered_by = 'hr:graph' AND entity = 'order'`)).toBe(3);

    const deleted = await t.http().post('/hr/leaver/graph').send(hrFixture('graph-deleted'));
    expect(deleted.body.results).toEqual([
      { status: 'no_matching_user', event_id: expect.any(Number), source: 'graph', revoked_orders: [], cancelled_orders: [], message: 'no matching user' },
    ]);
    const enabled = hrFixture<{ value: Record<string, Record<string, unknown>>[] }>('graph');
    enabled.value[0]!['resourceData']!['accountEnabled'] = true;
    const events = await countRows(t.db, 'leaver_events');
    const ignored = await t.http().post('/hr/leaver/graph').send(enabled);
    expect(ignored.body.results[0]).toMatchObject({ status: 'ignored', event_id: null });
    expect(await countRows(t.db, 'leaver_events')).toBe(events);

    // Relayed to POST /hr/leaver with a token, the clientState is still checked.
    const relayed = await bearer(body);
    expect(relayed.status).toBe(202);
    expect(relayed.body.results[0]).toMatchObject({ status: 'duplicate', event_id: res.body.results[0].event_id });
  });

  test('Microsoft Graph: a wrong clientState is refused (401), logged without the value, and changes nothing', async () => {
    const mem = createMemoryLogger();
    const app = buildApp({ db: t.db, queue: t.queue, logger: mem.logger, integrations: t.integrations, adminKeyHash: async () => hashSecret(TEST_ADMIN_KEY) }, t.config);
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'forged@example.com', statuses: ['provisioned'] });
    const body = hrFixture<{ value: Record<string, unknown>[] }>('graph');
    (body.value[0]!['resourceData'] as Record<string, unknown>)['userPrincipalName'] = 'forged@example.com';
    body.value[0]!['clientState'] = 'guessed-client-state-value';
    const events = await countRows(t.db, 'leaver_events');
    const res = await request(app).post('/hr/leaver/graph').send(body);
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ status: 401, code: 'UNAUTHENTICATED', detail: 'clientState does not match this subscription' });
    const line = mem.lines.find((l) => String(l['message']).startsWith('graph notification refused'));
    expect(line).toMatchObject({ level: 'warn', subscriptionIds: ['7f105c7d-2dc5-4530-97cd-4e7ae6534c07'], notifications: 1 });
    expect(mem.text()).not.toContain('guessed-client-state-value');
    expect(mem.text()).not.toContain(CLIENT_STATE);
    // Missing clientState: refused as well; and through POST /hr/leaver with a valid token too.
    delete body.value[0]!['clientState'];
    expect((await request(app).post('/hr/leaver/graph').send(body)).status).toBe(401);
    expect((await bearer(body)).status).toBe(401);
    expect(await countRows(t.db, 'leaver_events')).toBe(events);
    expect(await statusesOf(t.db, ids)).toEqual({ [ids[0]!]: 'provisioned' });
  });

  test('unknown person: 202 "no matching user", recorded, and nothing else changes', async () => {
    const jobs = await countRows(t.db, `pgboss.job WHERE name = 'order.deprovision'`);
    const orderAudits = await countRows(t.db, `audit_log WHERE entity = 'order'`);
    const res = await bearer({ email: 'nobody@example.com', employee_id: 'NOPE-1' });
    expect(res.status).toBe(202);
    expect(res.body.results).toEqual([
      { status: 'no_matching_user', event_id: expect.any(Number), source: 'native', revoked_orders: [], cancelled_orders: [], message: 'no matching user' },
    ]);
    const { rows } = await t.db.query<Record<string, unknown>>('SELECT status, person_key, outcome FROM leaver_events WHERE id = $1', [res.body.results[0].event_id]);
    expect(rows[0]).toEqual({ status: 'no_matching_user', person_key: null, outcome: { message: 'no matching user' } });
    expect(await countRows(t.db, `pgboss.job WHERE name = 'order.deprovision'`)).toBe(jobs);
    expect(await countRows(t.db, `audit_log WHERE entity = 'order'`)).toBe(orderAudits);
  });

  test('future effective_at: recorded as scheduled with a delayed job, and processed when it comes due', async () => {
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'later@example.com', statuses: ['provisioned', 'pending_approval'] });
    const effective = new Date(Date.now() + 1500);
    const res = await bearer({ email: 'later@example.com', effective_at: effective.toISOString(), event_id: 'later-1' });
    expect(res.status).toBe(202);
    expect(res.body.results).toEqual([
      { status: 'scheduled', event_id: expect.any(Number), source: 'native', revoked_orders: [], cancelled_orders: [], message: 'scheduled for its effective time' },
    ]);
    const eventId = res.body.results[0].event_id as number;
    const { rows: job } = await t.db.query<{ start_after: Date; data: unknown }>(
      `SELECT j.start_after, j.data FROM pgboss.job j JOIN leaver_events e ON e.job_id = j.id::text WHERE e.id = $1`,
      [eventId],
    );
    expect(job[0]!.data).toEqual({ eventId });
    expect(Math.abs(new Date(job[0]!.start_after).getTime() - effective.getTime())).toBeLessThan(1000);
    expect(await statusesOf(t.db, ids)).toEqual({ [ids[0]!]: 'provisioned', [ids[1]!]: 'pending_approval' });

    await registerLeaverWorker({ db: t.db, queue: t.queue, logger: createMemoryLogger().logger });
    const deadline = Date.now() + 20_000;
    let status = 'scheduled';
    while (status === 'scheduled' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      status = (await t.db.query<{ status: string }>('SELECT status FROM leaver_events WHERE id = $1', [eventId])).rows[0]!.status;
    }
    expect(status).toBe('processed');
    expect(await statusesOf(t.db, ids)).toEqual({ [ids[0]!]: 'revoked', [ids[1]!]: 'cancelled' });
    expect(await deprovisionJobsPerOrder(t.db, ids)).toEqual({ [ids[0]!]: 1 });
  }, 30_000);

  test('auth: no credentials 401, a token without hr:leaver 403, a bad signature 401', async () => {
    const body = { email: 'x@example.com' };
    const none = await t.http().post('/hr/leaver').send(body);
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    const snow = await mintTestToken(t.db, 'snow-only', ['webhook:in']);
    const wrongScope = await bearer(body, snow);
    expect(wrongScope.status).toBe(403);
    expect(wrongScope.body).toMatchObject({ status: 403, code: 'FORBIDDEN', detail: 'requires scope hr:leaver' });
    const badSig = await signed(body, 'not-the-secret');
    expect(badSig.status).toBe(401);
    expect(badSig.body.detail).toBe('X-Hub-Signature-256 does not match the request body');
  });

  test('bad input: malformed JSON 400, a native event without email 422, an impossible date 422, a worker with no identifier 422', async () => {
    const malformed = await t.http().post('/hr/leaver').set('Authorization', `Bearer ${hrToken}`).set('Content-Type', 'application/json').send('{"email": ');
    expect(malformed.status).toBe(400);
    const noEmail = await bearer({ employee_id: '1' });
    expect(noEmail.status).toBe(422);
    const wd = hrFixture<Record<string, unknown>>('workday');
    const badDate = await bearer({ ...wd, Termination_Date: '2026-13-45' });
    expect(badDate.status).toBe(422);
    expect(badDate.body.errors).toEqual([{ path: '/body/Termination_Date', message: 'is not a date (YYYY-MM-DD) or an ISO 8601 date-time' }]);
    const noWorker = await bearer({ ...wd, Worker: {} });
    expect(noWorker.status).toBe(422);
    expect(noWorker.body.errors[0]).toMatchObject({ path: '/body/Worker' });
  });

  test('GET /admin/leavers: events with per-order outcome and job state; filters; pagination; roles', async () => {
    const all = await t.http().get('/admin/leavers').set(t.admin);
    expect(all.status).toBe(200);
    expect(all.body.total).toBeGreaterThanOrEqual(8);
    const native = await t.http().get('/admin/leavers?person=nat.ive@example.com').set('Authorization', `Bearer ${helpdeskToken}`);
    expect(native.status).toBe(200);
    expect(native.body.total).toBe(1);
    const ev = native.body.items[0];
    expect(ev).toMatchObject({ source: 'native', status: 'processed', person_key: 'nat.ive@example.com', triggered_by: 'hr:bamboohr', dedupe_key: 'native:bamboohr:bhr-1' });
    expect(ev.orders).toHaveLength(6);
    expect(ev.orders.filter((o: { outcome: string }) => o.outcome === 'revoked')).toHaveLength(4);
    for (const o of ev.orders.filter((x: { outcome: string }) => x.outcome === 'revoked')) {
      expect(o).toEqual({ order_id: expect.any(Number), outcome: 'revoked', order_status: 'revoked', deprovision_job_id: expect.any(String), deprovision_job_state: 'created' });
    }
    const byEmployee = await t.http().get('/admin/leavers?person=WD-77').set(t.admin);
    expect(byEmployee.body.items.map((i: { source: string }) => i.source)).toEqual(['workday']);
    const unknown = await t.http().get('/admin/leavers?status=no_matching_user').set(t.admin);
    expect(unknown.body.items.every((i: { status: string }) => i.status === 'no_matching_user')).toBe(true);
    expect(unknown.body.total).toBeGreaterThanOrEqual(2);
    const graph = await t.http().get('/admin/leavers?source=graph&limit=1&offset=1').set(t.admin);
    expect(graph.body).toMatchObject({ total: 2, limit: 1, offset: 1 });
    expect(graph.body.items).toHaveLength(1);
    const badSource = await t.http().get('/admin/leavers?source=ldap').set(t.admin);
    expect(badSource.status).toBe(400);
    const approver = await mintTestToken(t.db, 'hr-only', ['hr:leaver']);
    expect((await t.http().get('/admin/leavers').set('Authorization', `Bearer ${approver}`)).status).toBe(403);
  });
});
