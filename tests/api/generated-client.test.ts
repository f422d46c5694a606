import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTypedClient as createClient } from '../../adapter/clients';
import { createApiToken, createAssetType, createOrder, getOrder, listAuditEntries, listOrders } from '../../server/api/gen/sdk.gen';
import { createTestApp, TEST_ADMIN_KEY, type TestApp } from '../support/app';

// Integrators generate clients from openapi/provisio.yaml; this drives the running API through the client we
// generate the same way, so a spec that stops producing a usable client fails here.
describe('the API through the client generated from its own spec', () => {
  let t: TestApp;
  let server: Server;
  let baseURL: string;

  beforeAll(async () => {
    t = await createTestApp();
    server = t.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await t.close();
  });

  test('an admin mints a token, defines an asset type; the token orders; the order and its audit read back', async () => {
    const admin = createClient({ baseURL, headers: { 'X-Admin-Key': TEST_ADMIN_KEY } });
    const minted = await createApiToken({ client: admin, body: { name: 'portal-backend', scopes: ['orders:write', 'admin:read'] }, throwOnError: true });
    expect(minted.status).toBe(201);
    expect(minted.data.token).toMatch(/^xpat_/);

    const type = await createAssetType({
      client: admin,
      body: { name: 'Design laptop', assignment_model: 'personal', max_per_user: 1, attributes: [{ key: 'colour', type: 'string', required: false }] },
      throwOnError: true,
    });
    expect(type.data).toMatchObject({ name: 'Design laptop', assignment_model: 'personal' });

    const portal = createClient({ baseURL, auth: minted.data.token });
    const created = await createOrder({
      client: portal,
      security: [{ scheme: 'bearer', type: 'http' }],
      body: { asset_type_name: 'Design laptop', user_email: 'Ana.Lopez@example.com', user_name: 'Ana Lopez', config: { colour: 'silver' } },
      throwOnError: true,
    });
    expect(created.status).toBe(201);
    expect(created.data).toMatchObject({ status: 'processing', user_email: 'ana.lopez@example.com', config: { colour: 'silver' } });

    const read = await getOrder({ client: portal, security: [{ scheme: 'bearer', type: 'http' }], path: { id: created.data.id }, throwOnError: true });
    expect(read.data).toMatchObject({ id: created.data.id, steps: [] });
    const listed = await listOrders({ client: portal, security: [{ scheme: 'bearer', type: 'http' }], query: { user: 'ana.lopez@example.com' }, throwOnError: true });
    expect(listed.data.items.map((o) => o.id)).toEqual([created.data.id]);

    const audit = await listAuditEntries({ client: admin, query: { entity: 'order' }, throwOnError: true });
    expect(audit.data.items).toEqual([expect.objectContaining({ entity_id: String(created.data.id), action: 'create', triggered_by: 'api:token:portal-backend' })]);
  });

  test('a 4xx comes back as the typed problem document', async () => {
    const anonymous = createClient({ baseURL });
    const res = await createOrder({ client: anonymous, body: { asset_type_name: 'Design laptop', user_email: 'x@example.com', user_name: 'X' } });
    expect(res.status).toBe(401);
    expect(res.error).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
  });
});
