// Microsoft Graph at the seed's endpoint (issue 11, part 8): `POST /hr/leaver` answers Graph's validationToken
// handshake and accepts Graph change notifications authenticated by `clientState` alone; every other request without
// a bearer token or signature stays 401. `/hr/leaver/graph` keeps working.
import request from 'supertest';
import { buildApp } from '../../server/app';
import { loadSpec } from '../../server/spec';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import { createTestApp, TEST_ADMIN_KEY, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { createMemoryLogger } from '../support/memory-logger';
import { countRows, mintTestToken, seedAssetType } from '../support/orders';
import { hrFixture, seedOrders, statusesOf } from '../support/leavers';

const CLIENT_STATE = 'graph-client-state-for-hr-leaver-0123';
const TOKEN = 'Validation: Testing client application reachability for subscription Request-Id: 5d4a2b6c';
type GraphBody = { value: Record<string, unknown>[] };

describe(`POST /hr/leaver as a Graph notificationUrl (${testEngine})`, () => {
  let t: TestApp;
  let typeId: number;

  beforeAll(async () => {
    t = await createTestApp({ webhookSecretToken: 'hr-graph-webhook-secret' });
    typeId = await seedAssetType(t.db, { name: 'Graph seat' });
    expect((await t.http().put('/admin/settings/hr').set(t.admin).send({ graph_client_state: CLIENT_STATE })).status).toBe(200);
  });
  afterAll(async () => {
    await t.close();
  });

  /** A Graph user notification for `upn`; `clientState` null leaves it out. */
  const graphBody = (upn: string, clientState: string | null = CLIENT_STATE): GraphBody => {
    const body = hrFixture<GraphBody>('graph');
    const n = body.value[0]!;
    (n['resourceData'] as Record<string, unknown>)['userPrincipalName'] = upn;
    if (clientState === null) delete n['clientState'];
    else n['clientState'] = clientState;
    return body;
  };

  test('the validationToken handshake is answered 200 text/plain with the token, without credentials', async () => {
    const res = await t.http().post(`/hr/leaver?validationToken=${encodeURIComponent(TOKEN)}`).set('Content-Type', 'text/plain; charset=utf-8').send('');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.text).toBe(TOKEN);
    // As Graph may send it: no Content-Type and no body at all.
    const bare = await t.http().post(`/hr/leaver?validationToken=${encodeURIComponent(TOKEN)}`);
    expect([bare.status, bare.text]).toEqual([200, TOKEN]);
  });

  test('a Graph notification with the right clientState runs the leaver flow without bearer or HMAC, attributed to hr:graph', async () => {
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'graph.leaver@example.com', statuses: ['provisioned', 'pending_approval'] });
    const res = await t.http().post('/hr/leaver').send(graphBody('graph.leaver@example.com'));
    expect(res.status).toBe(202);
    expect(res.body.results).toEqual([
      { status: 'processed', event_id: expect.any(Number), source: 'graph', revoked_orders: [ids[0]], cancelled_orders: [ids[1]], message: '1 order(s) revoked, 1 cancelled' },
    ]);
    expect(await statusesOf(t.db, ids)).toEqual({ [ids[0]!]: 'revoked', [ids[1]!]: 'cancelled' });
    const { rows } = await t.db.query<{ triggered_by: string; diff: { after: Record<string, unknown> } }>(
      `SELECT triggered_by, diff FROM audit_log WHERE entity = 'leaver_event' AND action = 'received' AND entity_id = $1`,
      [String(res.body.results[0].event_id)],
    );
    expect(rows[0]).toMatchObject({ triggered_by: 'hr:graph', diff: { after: { credential: 'client_state' } } });
  });

  test('a wrong or missing clientState is 401, logged without the values, and changes nothing', async () => {
    const mem = createMemoryLogger();
    const app = buildApp({ db: t.db, queue: t.queue, logger: mem.logger, integrations: t.integrations, adminKeyHash: async () => hashSecret(TEST_ADMIN_KEY) }, t.config);
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'forged.graph@example.com', statuses: ['provisioned'] });
    const events = await countRows(t.db, 'leaver_events');
    const wrong = await request(app).post('/hr/leaver').send(graphBody('forged.graph@example.com', 'guessed-client-state-value'));
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ status: 401, code: 'UNAUTHENTICATED', detail: 'clientState does not match this subscription' });
    const line = mem.lines.find((l) => String(l['message']).startsWith('graph notification refused'));
    expect(line).toMatchObject({ level: 'warn', operationId: 'receiveHrLeaver', subscriptionIds: ['7f105c7d-2dc5-4530-97cd-4e7ae6534c07'], notifications: 1 });
    expect(mem.text()).not.toContain('guessed-client-state-value');
    expect(mem.text()).not.toContain(CLIENT_STATE);
    // No clientState at all: not a Graph delivery, so no credential at all.
    const missing = await request(app).post('/hr/leaver').send(graphBody('forged.graph@example.com', null));
    expect(missing.status).toBe(401);
    // One right clientState does not carry a second, wrong one.
    const mixed = graphBody('forged.graph@example.com');
    mixed.value.push({ ...(mixed.value[0] as Record<string, unknown>), clientState: 'guessed-client-state-value' });
    expect((await request(app).post('/hr/leaver').send(mixed)).status).toBe(401);
    expect(await countRows(t.db, 'leaver_events')).toBe(events);
    expect(await statusesOf(t.db, ids)).toEqual({ [ids[0]!]: 'provisioned' });
  });

  test('only Graph notifications skip bearer/HMAC: every other payload, with or without a clientState, stays 401', async () => {
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'native.forger@example.com', statuses: ['provisioned'] });
    const payloads: unknown[] = [
      { email: 'native.forger@example.com' },
      { email: 'native.forger@example.com', clientState: CLIENT_STATE },
      { ...hrFixture<Record<string, unknown>>('workday'), clientState: CLIENT_STATE },
      { value: [] },
      { value: [{ email: 'native.forger@example.com' }] },
      { value: 'x', clientState: CLIENT_STATE },
    ];
    for (const p of payloads) {
      const res = await t.http().post('/hr/leaver').send(p as object);
      expect([res.status, res.body.code]).toEqual([401, 'UNAUTHENTICATED']);
    }
    // A handshake token does not open the door to a body either.
    const withBody = await t.http().post(`/hr/leaver?validationToken=abc`).send({ email: 'native.forger@example.com' });
    expect(withBody.status).toBe(401);
    expect(await statusesOf(t.db, ids)).toEqual({ [ids[0]!]: 'provisioned' });
  });

  test('with no clientState configured, Graph notifications are refused; the handshake is still answered', async () => {
    expect((await t.http().put('/admin/settings/hr').set(t.admin).send({ graph_client_state: null })).status).toBe(200);
    try {
      const res = await t.http().post('/hr/leaver').send(graphBody('anyone@example.com'));
      expect(res.status).toBe(401);
      const hs = await t.http().post(`/hr/leaver?validationToken=${encodeURIComponent(TOKEN)}`).set('Content-Type', 'text/plain').send('');
      expect(hs.status).toBe(200);
    } finally {
      expect((await t.http().put('/admin/settings/hr').set(t.admin).send({ graph_client_state: CLIENT_STATE })).status).toBe(200);
    }
  });

  test('bearer and HMAC deliveries work as before; a bearer without hr:leaver is still 403 even on a Graph body', async () => {
    const hr = await mintTestToken(t.db, 'hr-graph-relay', ['hr:leaver']);
    const native = await t.http().post('/hr/leaver').set('Authorization', `Bearer ${hr}`).send({ email: 'nobody.graph@example.com' });
    expect(native.status).toBe(202);
    const snow = await mintTestToken(t.db, 'not-hr', ['webhook:in']);
    const wrongScope = await t.http().post('/hr/leaver').set('Authorization', `Bearer ${snow}`).send(graphBody('x@example.com'));
    expect(wrongScope.status).toBe(403);
    // An invalid bearer is not rescued by a valid clientState: Bearer wins and is refused.
    const badBearer = await t.http().post('/hr/leaver').set('Authorization', 'Bearer xpat_not-a-real-token').send(graphBody('x@example.com'));
    expect(badBearer.status).toBe(401);
  });

  test('/hr/leaver/graph is kept: handshake and notifications', async () => {
    const hs = await t.http().post(`/hr/leaver/graph?validationToken=${encodeURIComponent(TOKEN)}`).set('Content-Type', 'text/plain').send('');
    expect([hs.status, hs.text]).toEqual([200, TOKEN]);
    const body = graphBody('graph.kept@example.com');
    (body.value[0]!['resourceData'] as Record<string, unknown>)['id'] = 'kept-user-object-id';
    const res = await t.http().post('/hr/leaver/graph').send(body);
    expect(res.status).toBe(202);
    expect(res.body.results[0]).toMatchObject({ source: 'graph', status: 'no_matching_user' });
  });

  test('the spec says so: receiveHrLeaver accepts bearerAuth, hubSignature or graphClientState', () => {
    const spec = loadSpec() as unknown as { paths: Record<string, Record<string, { security?: unknown }>>; components: { securitySchemes: Record<string, unknown> } };
    expect(spec.paths['/hr/leaver']!['post']!.security).toEqual([{ bearerAuth: [] }, { hubSignature: [] }, { graphClientState: [] }]);
    expect(spec.components.securitySchemes['graphClientState']).toMatchObject({ type: 'apiKey' });
  });
});
