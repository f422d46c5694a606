import request from 'supertest';
import { createLogger } from '../../adapter';
import { buildApp } from '../../server/app';
import type { LeaverDeps } from '../../server/domain/identity/leaver';
import { hashSecret } from '../../server/domain/tokens/token-hash';
import { createTestApp, TEST_ADMIN_KEY, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { hrFixture, seedOrders } from '../support/leavers';
import { mintTestToken, seedAssetType } from '../support/orders';
import { scimClient, userBody } from '../support/scim';

/*
 * The leaver flow is built once per process (main.ts) and handed to the app: its HR and SCIM edges must take people
 * back with that set, not with one each assembles for itself. A recording approver hook in the handed-in set shows
 * which one ran.
 */
describe(`the app's leaver edges use the leaver set they are handed (${testEngine})`, () => {
  let t: TestApp;
  let wired: TestApp;
  let typeId: number;
  const seen: string[][] = [];

  beforeAll(async () => {
    t = await createTestApp();
    typeId = await seedAssetType(t.db, { name: 'Wired VDI' });
    const logger = createLogger({ silent: true });
    const leaver: LeaverDeps = {
      db: t.db,
      queue: t.queue,
      logger,
      approverHooks: [
        async (_tx, ctx) => {
          seen.push([...ctx.emails]);
          return [];
        },
      ],
    };
    const app = buildApp({ db: t.db, queue: t.queue, logger, integrations: t.integrations, leaver, adminKeyHash: async () => hashSecret(TEST_ADMIN_KEY) }, t.config);
    wired = { ...t, app, http: () => request.agent(app) };
  });
  afterAll(async () => {
    await t.close();
  });

  test('POST /hr/leaver', async () => {
    await seedOrders(t.db, { assetTypeId: typeId, email: 'hr.wired@example.com', statuses: ['provisioned'] });
    const token = await mintTestToken(t.db, 'hr-wired', ['hr:leaver']);
    const body = { ...hrFixture('native'), email: 'hr.wired@example.com', employee_id: undefined, effective_at: undefined, event_id: 'wired-1' };
    const res = await wired.http().post('/hr/leaver').set('Authorization', `Bearer ${token}`).send(body);
    expect(res.status).toBe(202);
    expect(res.body.results[0]).toMatchObject({ status: 'processed' });
    expect(seen).toContainEqual(['hr.wired@example.com']);
  });

  test('SCIM deactivation', async () => {
    await seedOrders(t.db, { assetTypeId: typeId, email: 'scim.wired@example.com', statuses: ['provisioned'] });
    const idp = await scimClient(wired, 'idp-wired');
    const created = await idp.post('/Users', userBody('scim.wired@example.com'));
    expect(created.status).toBe(201);
    const off = await idp.patch(`/Users/${created.body.id as string}`, [{ op: 'replace', value: { active: false } }]);
    expect(off.status).toBe(200);
    expect(seen).toContainEqual(['scim.wired@example.com']);
  });
});
