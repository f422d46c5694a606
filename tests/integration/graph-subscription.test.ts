/**
 * The Microsoft Graph subscription the service keeps for the leaver webhook, against the loopback HTTPS Graph
 * (tests/support/graph-server.ts), with the app listening on loopback as Graph's notificationUrl: created (Graph's
 * validationToken call-back answered), renewed before expiry, created anew when Graph says it is gone; a basic
 * notification (object id only) for a disabled user runs the leaver flow, a wrong clientState is refused; the state
 * is visible to admins; no secret reaches the log.
 */
import http from 'node:http';
import {
  GRAPH_SUBSCRIPTION_LIFETIME_MS,
  keepGraphSubscription,
} from '../../server/domain/identity/graph-subscription';
import { adRequesterDirectory, createDirectoryProvider, type DirectoryProvider, type RequesterDirectory } from '../../server/domain/identity/requester-directory';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { startGraphServer, type GraphServer } from '../support/graph-server';
import { seedOrders, statusesOf } from '../support/leavers';
import { listen, type LoopbackServer } from '../support/loopback-server';
import { createMemoryLogger } from '../support/memory-logger';
import { countRows, seedAssetType } from '../support/orders';

jest.setTimeout(60_000);

const CLIENT_STATE = 'graph-client-state-subscription-0123456789';
const mem = createMemoryLogger();
let g: GraphServer;
let t: TestApp;
let provider: DirectoryProvider;
let web: LoopbackServer;
/** The clientState the service generated (set by the test that makes it do so). */
let generated: string | undefined;
let typeId: number;
const deps = () => ({ db: t.db, logger: mem.logger });

beforeAll(async () => {
  g = await startGraphServer({
    users: [
      { userPrincipalName: 'leaver@contoso.test', mail: 'leaver@contoso.test' },
      { userPrincipalName: 'stayer@contoso.test', mail: 'stayer@contoso.test' },
    ],
    groups: [],
  });
  let inner: RequesterDirectory | undefined;
  const late: RequesterDirectory = {
    lookup: (email) => inner!.lookup(email),
    managerOf: (email) => inner!.managerOf!(email),
    accountById: (id) => inner!.accountById!(id),
  };
  t = await createTestApp({}, { requesterDirectory: late, logger: mem.logger });
  provider = createDirectoryProvider(t.db, mem.logger);
  inner = adRequesterDirectory(provider, mem.logger);
  web = await listen(http.createServer(t.app));
  typeId = await seedAssetType(t.db, { name: 'Graph leaver seat' });
  expect((await t.http().put('/admin/settings/hr').set(t.admin).send({ graph_client_state: CLIENT_STATE })).status).toBe(200);
});
afterAll(async () => {
  await web?.close();
  await provider?.close();
  await t?.close();
  await g?.close();
});

describe(`Graph subscription for the leaver webhook (${testEngine})`, () => {
  test('not configured: the state names what is missing; nothing is sent to Graph', async () => {
    const before = g.requests.length;
    const st = await keepGraphSubscription(deps());
    expect(st.status).toBe('not_configured');
    expect(st.last_error).toContain('entra_id.subscription_notification_url');
    expect(g.requests.length).toBe(before);
    const res = await t.http().get('/admin/entra/subscription').set(t.admin);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'not_configured', subscription_id: null });
  });

  test('created with the validation handshake, clientState the hr setting; visible to admins without it', async () => {
    const put = await t.http().put('/admin/settings/entra_id').set(t.admin).send({
      use_as_directory: true,
      tenant_id: g.tenantId,
      client_id: g.clientId,
      client_secret: g.clientSecret,
      authority_host: g.url,
      graph_base_url: g.graphBaseUrl,
      ca_cert_pem: g.caPem,
      subscription_notification_url: `${web.url}/hr/leaver/graph`,
    });
    expect(put.status).toBe(200);
    const st = await keepGraphSubscription(deps());
    expect(st).toMatchObject({ status: 'active', last_error: null, change_type: 'updated,deleted', notification_url: `${web.url}/hr/leaver/graph` });
    const sub = g.subscriptions.get(st.subscription_id!)!;
    expect(sub).toMatchObject({ resource: 'users', changeType: 'updated,deleted', clientState: CLIENT_STATE });
    const res = await t.http().get('/admin/entra/subscription').set(t.admin);
    expect(res.body).toMatchObject({ status: 'active', subscription_id: sub.id, expires_at: st.expires_at!.toISOString() });
    expect(JSON.stringify(res.body)).not.toContain(CLIENT_STATE);
    const { rows } = await t.db.query(`SELECT action, triggered_by FROM audit_log WHERE entity = 'graph_subscription'`);
    expect(rows).toEqual([{ action: 'graph_subscription_created', triggered_by: 'system:graph-subscription-hourly' }]);
  });

  test('left alone while far from expiry, renewed (PATCH) once within a day of it', async () => {
    const before = (await keepGraphSubscription(deps())).expires_at!;
    const patches = () => g.requests.filter((r) => r.method === 'PATCH' && r.url.includes('/subscriptions/')).length;
    const p0 = patches();
    expect((await keepGraphSubscription(deps(), new Date(Date.now() + 3600_000))).expires_at).toEqual(before);
    expect(patches()).toBe(p0);
    // 2.5 days later: less than a day left.
    const later = new Date(Date.now() + GRAPH_SUBSCRIPTION_LIFETIME_MS - 12 * 3600_000);
    const st = await keepGraphSubscription(deps(), later);
    expect(patches()).toBe(p0 + 1);
    expect(st.status).toBe('active');
    expect(st.renewed_at).toEqual(later);
    expect(st.expires_at!.getTime()).toBe(later.getTime() + GRAPH_SUBSCRIPTION_LIFETIME_MS);
    expect(g.subscriptions.get(st.subscription_id!)!.expirationDateTime).toBe(st.expires_at!.toISOString());
  });

  test('created anew when Graph says the subscription is gone', async () => {
    const old = (await keepGraphSubscription(deps())).subscription_id!;
    g.dropSubscription(old);
    const st = await keepGraphSubscription(deps(), new Date(Date.now() + GRAPH_SUBSCRIPTION_LIFETIME_MS - 3600_000));
    expect(st.status).toBe('active');
    expect(st.subscription_id).not.toBe(old);
    expect(g.subscriptions.has(st.subscription_id!)).toBe(true);
  });

  test('a Graph refusal is recorded as failed with its code, and the next run recovers', async () => {
    const current = (await keepGraphSubscription(deps())).subscription_id!;
    g.dropSubscription(current);
    g.deny = 'writes';
    try {
      const st = await keepGraphSubscription(deps(), new Date(Date.now() + GRAPH_SUBSCRIPTION_LIFETIME_MS - 3600_000));
      expect(st.status).toBe('failed');
      expect(st.last_error).toContain('INSUFFICIENT_ACCESS (Authorization_RequestDenied)');
    } finally {
      g.deny = null;
    }
    expect((await keepGraphSubscription(deps())).status).toBe('active');
  });

  test('a notification for a user disabled in Entra runs the leaver flow; an enabled one is ignored', async () => {
    const leaverIds = await seedOrders(t.db, { assetTypeId: typeId, email: 'leaver@contoso.test', statuses: ['provisioned'] });
    const stayerIds = await seedOrders(t.db, { assetTypeId: typeId, email: 'stayer@contoso.test', statuses: ['provisioned'] });
    // The provider reopened on the entra_id change: wait until Entra answers.
    for (let i = 0; i < 50 && !(await provider.get()); i++) await new Promise((r) => setTimeout(r, 100));

    g.users.get(g.idOf('leaver@contoso.test'))!['accountEnabled'] = false;
    const [gone] = await g.notify(g.idOf('leaver@contoso.test'), 'updated');
    expect(gone!.status).toBe(202);
    expect(JSON.parse(gone!.body).results).toEqual([expect.objectContaining({ status: 'processed', source: 'graph', revoked_orders: leaverIds })]);
    expect(await statusesOf(t.db, leaverIds)).toEqual({ [leaverIds[0]!]: 'revoked' });

    const [stay] = await g.notify(g.idOf('stayer@contoso.test'), 'updated');
    expect(JSON.parse(stay!.body).results).toEqual([expect.objectContaining({ status: 'ignored' })]);
    expect(await statusesOf(t.db, stayerIds)).toEqual({ [stayerIds[0]!]: 'provisioned' });
  });

  test('a notification with a wrong clientState is refused 401 and changes nothing', async () => {
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'stayer@contoso.test', statuses: ['provisioned'] });
    g.users.get(g.idOf('stayer@contoso.test'))!['accountEnabled'] = false;
    const events = await countRows(t.db, 'leaver_events');
    const [r] = await g.notify(g.idOf('stayer@contoso.test'), 'updated', { clientState: 'forged-client-state-0000000' });
    expect(r!.status).toBe(401);
    expect(await countRows(t.db, 'leaver_events')).toBe(events);
    expect(await statusesOf(t.db, ids)).toEqual({ [ids[0]!]: 'provisioned' });
  });

  test('without hr.graph_client_state one is generated, stored sealed, audited as set, and is what Graph and the webhook use', async () => {
    expect((await t.http().put('/admin/settings/hr').set(t.admin).send({ graph_client_state: null })).status).toBe(200);
    g.dropSubscription((await keepGraphSubscription(deps())).subscription_id!);
    const st = await keepGraphSubscription(deps(), new Date(Date.now() + GRAPH_SUBSCRIPTION_LIFETIME_MS - 3600_000));
    expect(st.status).toBe('active');
    generated = g.subscriptions.get(st.subscription_id!)!.clientState as string;
    expect(generated).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(generated).not.toBe(CLIENT_STATE);
    // Kept, not regenerated: the next run leaves the subscription and its clientState alone.
    expect((await keepGraphSubscription(deps())).subscription_id).toBe(st.subscription_id);
    const { rows } = await t.db.query<{ is_secret: boolean; value: unknown }>(`SELECT is_secret, value FROM app_config WHERE key = 'hr.graph_client_state'`);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.is_secret).toBe(true);
    expect(JSON.stringify(rows[0]!.value)).not.toContain(generated);
    const audit = await t.db.query<{ triggered_by: string; text: string }>(
      `SELECT triggered_by, diff::text AS text FROM audit_log WHERE entity = 'settings' AND entity_id = 'hr' ORDER BY id DESC LIMIT 1`,
    );
    expect(audit.rows[0]!.triggered_by).toBe('system:graph-subscription');
    expect(audit.rows[0]!.text).not.toContain(generated);
    expect((await t.http().get('/admin/settings/hr').set(t.admin)).body.secrets).toEqual({ graph_client_state: { configured: true } });

    // The webhook verifies against the generated value: Graph's notification passes, a forged one does not.
    // stayer@ was disabled by the test before (whose forged notification was refused): now Graph's own notification counts.
    const ids = await seedOrders(t.db, { assetTypeId: typeId, email: 'stayer@contoso.test', statuses: ['provisioned'] });
    const [ok] = await g.notify(g.idOf('stayer@contoso.test'), 'updated');
    expect(ok!.status).toBe(202);
    expect(await statusesOf(t.db, ids)).toEqual({ [ids[0]!]: 'revoked' });
    const [forged] = await g.notify(g.idOf('stayer@contoso.test'), 'updated', { clientState: CLIENT_STATE });
    expect(forged!.status).toBe(401);
  });

  test('no secret reaches the log: client secret, clientState, access tokens', () => {
    const text = mem.text();
    expect(generated).toBeDefined();
    expect(text).not.toContain(generated!);
    expect(text).toContain('graph subscription created');
    expect(text).not.toContain(g.clientSecret);
    expect(text).not.toContain(CLIENT_STATE);
    expect(text).not.toContain('eyJ0eXAiOiJKV1Qi.');
  });
});
