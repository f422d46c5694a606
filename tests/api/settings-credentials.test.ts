import { openSecret, secretPlace } from '../../adapter';
import { SETTINGS_SECTIONS, type SettingsSectionDef } from '../../server/domain/settings/settings';
import { listOperations, loadSpec } from '../../server/spec';
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { hrFixture, seedOrders, statusesOf } from '../support/leavers';
import { hubSignature, seedAssetType } from '../support/orders';

/**
 * Settings keys that authenticate inbound requests (the ServiceNow/HR HMAC secret, the Graph clientState) are
 * credentials: whoever writes one must hold every scope it grants, or `admin:*` alone would open the HR leaver
 * flow and the ServiceNow webhook with a secret of its own choosing. WEBHOOK_SECRET_TOKEN is unset throughout,
 * so the stored secret is the one signatures are checked with.
 */
describe(`credential settings keys need the scopes they grant (${testEngine})`, () => {
  let t: TestApp;
  let typeId: number;
  let seq = 0;
  beforeAll(async () => {
    t = await createTestApp({ webhookSecretToken: undefined });
    typeId = await seedAssetType(t.db, { name: 'Standard VDI' });
  });
  afterAll(async () => {
    await t.close();
  });

  async function mint(scopes: string[]): Promise<Record<string, string>> {
    const res = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: `cred-${++seq}`, scopes, role: 'admin' });
    expect(res.status).toBe(201);
    return { Authorization: `Bearer ${res.body.token as string}` };
  }
  // The stored value, opened (secrets are stored sealed).
  const stored = async (key: string) =>
    openSecret(t.db, (await t.db.query<{ value: unknown }>(`SELECT value FROM app_config WHERE key = $1`, [key])).rows[0]?.value, secretPlace.setting(key));
  const signedLeaver = (body: unknown, secret: string) => {
    const raw = JSON.stringify(body);
    return t.http().post('/hr/leaver').set('Content-Type', 'application/json').set('X-Hub-Signature-256', hubSignature(raw, secret)).send(raw);
  };
  const graphNotification = (email: string, clientState: string) => {
    const body = hrFixture<{ value: Record<string, unknown>[] }>('graph');
    body.value[0]!['clientState'] = clientState;
    (body.value[0]!['resourceData'] as Record<string, unknown>)['userPrincipalName'] = email;
    return body;
  };

  test('the declared credential keys match the spec: the HMAC secret grants what every hubSignature operation requires', () => {
    const ops = listOperations(loadSpec());
    const signed = ops.filter((op) => op.security.some((r) => Object.hasOwn(r, 'hubSignature')));
    expect(signed.map((op) => op.operationId).sort()).toEqual(['receiveHrLeaver', 'receiveServiceNowOrder']);
    const hmacScopes = [...new Set(signed.flatMap((op) => op.requiredScopes))].sort();
    expect([...SETTINGS_SECTIONS.servicenow.credentials.webhook_secret].sort()).toEqual(hmacScopes);
    // The Graph endpoint is public: the clientState stands in for a receiveHrLeaver credential.
    const hrLeaver = ops.find((op) => op.operationId === 'receiveHrLeaver')!;
    expect([...SETTINGS_SECTIONS.hr.credentials.graph_client_state]).toEqual(hrLeaver.requiredScopes);
    // A credential is always a write-only secret of its section.
    for (const [section, def] of Object.entries(SETTINGS_SECTIONS) as [string, SettingsSectionDef][]) {
      for (const name of Object.keys(def.credentials ?? {})) {
        expect({ key: `${section}.${name}`, writeOnly: def.schema.properties[name]?.writeOnly }).toEqual({ key: `${section}.${name}`, writeOnly: true });
      }
    }
  });

  test('GET /admin/settings lists each section\'s credential keys with the scopes they grant', async () => {
    const res = await t.http().get('/admin/settings').set(t.admin);
    expect(res.status).toBe(200);
    const bySection = Object.fromEntries(res.body.items.map((s: { section: string; credential_scopes: unknown }) => [s.section, s.credential_scopes]));
    expect(bySection).toMatchObject({
      servicenow: { webhook_secret: ['webhook:in', 'hr:leaver'] },
      hr: { graph_client_state: ['hr:leaver'] },
      webhooks: {},
      smtp: {},
      active_directory: {},
      api_tokens: {},
    });
  });

  test('admin:* alone cannot choose the webhook secret, so it cannot sign /hr/leaver or /webhook/servicenow', async () => {
    const [orderId] = await seedOrders(t.db, { assetTypeId: typeId, email: 'victim.one@example.com', statuses: ['provisioned'] });
    const adminOnly = await mint(['admin:*']);
    const chosen = 'my-own-secret-0123456789';

    const put = await t.http().put('/admin/settings/servicenow').set(adminOnly).send({ webhook_secret: chosen });
    expect(put.status).toBe(403);
    expect(put.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(put.body).toMatchObject({ status: 403, code: 'FORBIDDEN', missing_scopes: ['webhook:in', 'hr:leaver'] });
    expect(put.body.detail).toContain('servicenow.webhook_secret');
    expect(JSON.stringify(put.body)).not.toContain(chosen);
    expect(await stored('servicenow.webhook_secret')).toBeUndefined();

    const leaver = await signedLeaver({ email: 'victim.one@example.com', event_id: 'escalation-1' }, chosen);
    expect(leaver.status).toBe(401);
    const snowBody = JSON.stringify({ servicenow_ref: 'RITM9900001', action: 'provision', user_email: 'x@example.com' });
    const snow = await t.http().post('/webhook/servicenow').set('Content-Type', 'application/json')
      .set('X-Hub-Signature-256', hubSignature(snowBody, chosen)).send(snowBody);
    expect(snow.status).toBe(401);
    expect(await statusesOf(t.db, [orderId!])).toEqual({ [orderId!]: 'provisioned' });
    const { rows } = await t.db.query(`SELECT 1 FROM audit_log WHERE entity = 'settings' AND entity_id = 'servicenow'`);
    expect(rows).toHaveLength(0);
  });

  test('a stored webhook secret can be neither changed nor cleared with admin:* alone, nor with only part of its scopes', async () => {
    const original = 'admin-key-set-secret-0123456789';
    expect((await t.http().put('/admin/settings/servicenow').set(t.admin).send({ webhook_secret: original })).status).toBe(200);
    const adminOnly = await mint(['admin:*']);
    const change = await t.http().put('/admin/settings/servicenow').set(adminOnly).send({ webhook_secret: 'my-own-secret-0123456789' });
    expect(change.status).toBe(403);
    const clear = await t.http().put('/admin/settings/servicenow').set(adminOnly).send({ webhook_secret: null });
    expect(clear.status).toBe(403);
    expect(clear.body.missing_scopes).toEqual(['webhook:in', 'hr:leaver']);
    // Refused before validation: an invalid value does not reveal whether the caller could write it.
    const invalid = await t.http().put('/admin/settings/servicenow').set(adminOnly).send({ webhook_secret: 'short' });
    expect(invalid.status).toBe(403);

    const partial = await mint(['admin:*', 'hr:leaver']);
    const partialPut = await t.http().put('/admin/settings/servicenow').set(partial).send({ webhook_secret: 'my-own-secret-0123456789' });
    expect(partialPut.status).toBe(403);
    expect(partialPut.body).toMatchObject({ code: 'FORBIDDEN', missing_scopes: ['webhook:in'] });
    expect(await stored('servicenow.webhook_secret')).toBe(original);
  });

  test('admin:* with webhook:in and hr:leaver may set the webhook secret, and the secret then signs', async () => {
    const [orderId] = await seedOrders(t.db, { assetTypeId: typeId, email: 'leaver.two@example.com', statuses: ['provisioned'] });
    const holder = await mint(['admin:*', 'webhook:in', 'hr:leaver']);
    const secret = 'holder-chosen-secret-0123456789';
    const put = await t.http().put('/admin/settings/servicenow').set(holder).send({ webhook_secret: secret });
    expect(put.status).toBe(200);
    expect(put.body.secrets).toEqual({ webhook_secret: { configured: true } });
    expect(put.body.updated_by).toMatch(/^admin:token:cred-\d+$/);
    expect(await stored('servicenow.webhook_secret')).toBe(secret);

    const leaver = await signedLeaver({ email: 'leaver.two@example.com', event_id: 'holder-1' }, secret);
    expect(leaver.status).toBe(202);
    expect(leaver.body.results[0]).toMatchObject({ status: 'processed', revoked_orders: [orderId] });

    expect((await t.http().put('/admin/settings/servicenow').set(holder).send({ webhook_secret: null })).status).toBe(200);
    expect(await stored('servicenow.webhook_secret')).toBeUndefined();
  });

  test('the admin key may set and clear the webhook secret', async () => {
    const put = await t.http().put('/admin/settings/servicenow').set(t.admin).send({ webhook_secret: 'admin-key-secret-0123456789' });
    expect(put.status).toBe(200);
    expect(await stored('servicenow.webhook_secret')).toBe('admin-key-secret-0123456789');
    expect((await t.http().put('/admin/settings/servicenow').set(t.admin).send({ webhook_secret: null })).status).toBe(200);
    expect(await stored('servicenow.webhook_secret')).toBeUndefined();
  });

  test('hr.graph_client_state: admin:* alone cannot choose it (so cannot open /hr/leaver/graph); with hr:leaver or the admin key it can', async () => {
    const [orderId] = await seedOrders(t.db, { assetTypeId: typeId, email: 'victim.graph@example.com', statuses: ['provisioned'] });
    const chosen = 'my-own-client-state-0123';
    const adminOnly = await mint(['admin:*']);

    const put = await t.http().put('/admin/settings/hr').set(adminOnly).send({ graph_client_state: chosen });
    expect(put.status).toBe(403);
    expect(put.body).toMatchObject({ code: 'FORBIDDEN', missing_scopes: ['hr:leaver'] });
    expect(put.body.detail).toContain('hr.graph_client_state');
    expect(await stored('hr.graph_client_state')).toBeUndefined();
    const graph = await t.http().post('/hr/leaver/graph').send(graphNotification('victim.graph@example.com', chosen));
    expect(graph.status).toBe(401);
    expect(await statusesOf(t.db, [orderId!])).toEqual({ [orderId!]: 'provisioned' });

    const viaKey = 'admin-key-client-state-0123';
    expect((await t.http().put('/admin/settings/hr').set(t.admin).send({ graph_client_state: viaKey })).status).toBe(200);
    expect((await t.http().put('/admin/settings/hr').set(adminOnly).send({ graph_client_state: chosen })).status).toBe(403);
    expect((await t.http().put('/admin/settings/hr').set(adminOnly).send({ graph_client_state: null })).status).toBe(403);
    expect(await stored('hr.graph_client_state')).toBe(viaKey);

    const holder = await mint(['admin:*', 'hr:leaver']);
    const own = 'holder-client-state-0123456';
    expect((await t.http().put('/admin/settings/hr').set(holder).send({ graph_client_state: own })).status).toBe(200);
    expect(await stored('hr.graph_client_state')).toBe(own);
    const accepted = await t.http().post('/hr/leaver/graph').send(graphNotification('victim.graph@example.com', own));
    expect(accepted.status).toBe(202);
    expect(accepted.body.results[0]).toMatchObject({ status: 'processed', revoked_orders: [orderId] });
  });

  test('every other settings key stays writable with admin:* alone, secrets included', async () => {
    const adminOnly = await mint(['admin:*']);
    const cases: [string, Record<string, unknown>][] = [
      ['smtp', { host: 'smtp.example.com', port: 587, password: 'smtp-pa55word-0123' }],
      ['webhooks', { saas_seat_secret: 'outbound-signing-secret-0123' }],
      ['active_directory', { server: 'dc1.corp.example', bind_password: 'ad-pa55word-0123' }],
      ['api_tokens', { purge_after_days: 30 }],
      ['scim', { request_log_retention_days: 7 }],
    ];
    for (const [section, body] of cases) {
      const res = await t.http().put(`/admin/settings/${section}`).set(adminOnly).send(body);
      expect({ section, status: res.status }).toEqual({ section, status: 200 });
    }
    expect((await t.http().put('/admin/settings/webhooks').set(adminOnly).send({ saas_seat_secret: null })).status).toBe(200);
  });
});
