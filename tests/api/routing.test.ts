import { createTestApp, type TestApp } from '../support/app';
import { scimClient, userBody, PATCH_OP, type ScimClient } from '../support/scim';

// Routing and authentication agree on one match: the path exactly as the spec writes it. Before, authentication
// matched case-sensitively and waved through what it did not recognise, while Express routed case-insensitively,
// so `/ADMIN/API-TOKENS` reached its handler with no credentials at all (issue 14, finding 1).
describe('routing: one exact match for authentication and handlers', () => {
  let t: TestApp;
  let scim: ScimClient;
  let userId: string;

  beforeAll(async () => {
    t = await createTestApp();
    scim = await scimClient(t);
    const created = await scim.post('/Users', userBody('routing.victim@example.com'));
    expect(created.status).toBe(201);
    userId = created.body.id;
  });
  afterAll(async () => {
    await t.close();
  });

  test.each([
    ['GET', '/ADMIN/API-TOKENS'],
    ['GET', '/Admin/Api-Tokens'],
    ['GET', '/ADMIN/SETTINGS/smtp'],
    ['GET', '/ADMIN/AUDIT'],
    ['GET', '/admin/api-tokens/'],
    ['GET', '//admin/api-tokens'],
    ['GET', '/admin//api-tokens'],
    ['GET', '/admin/./api-tokens'],
    ['GET', '/admin/x/../api-tokens'],
    ['GET', '/%61dmin/api-tokens'],
    ['GET', '/admin/api%2Dtokens'],
  ])('%s %s without credentials is 404 problem+json, never data', async (method, path) => {
    const res = await t.http()[method.toLowerCase() as 'get'](path);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    expect(res.body).not.toHaveProperty('items');
  });

  test('an upper-cased SCIM delete neither authenticates nor deletes', async () => {
    const res = await t.http().delete(`/SCIM/V2/USERS/${userId}`);
    expect(res.status).toBe(404);
    expect((await scim.get(`/Users/${userId}`)).status).toBe(200);
  });

  test('an upper-cased SCIM deactivation does not run the leaver flow', async () => {
    const res = await t
      .http()
      .patch(`/SCIM/V2/USERS/${userId}`)
      .set('Content-Type', 'application/scim+json')
      .send(JSON.stringify({ schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] }));
    expect(res.status).toBe(404);
    const after = await scim.get(`/Users/${userId}`);
    expect(after.body.active).toBe(true);
    const leavers = await t.db.query(`SELECT 1 FROM leaver_events`);
    expect(leavers.rowCount).toBe(0);
  });

  test('the exact path still asks for credentials (401) and answers with them', async () => {
    expect((await t.http().get('/admin/api-tokens')).status).toBe(401);
    expect((await t.http().get('/admin/api-tokens').set(t.admin)).status).toBe(200);
  });

  test('a method the spec does not declare on a path is 405 with Allow, before authentication', async () => {
    const head = await t.http().head('/admin/api-tokens');
    expect(head.status).toBe(405);
    expect(head.headers['allow']).toBe('GET, POST');
    const put = await t.http().put('/admin/audit').set(t.admin).send({});
    expect(put.status).toBe(405);
    expect(put.body).toMatchObject({ code: 'METHOD_NOT_ALLOWED' });
    const options = await t.http().options(`/scim/v2/Users/${userId}`);
    expect(options.status).toBe(405);
    expect(options.headers['allow']).toBe('DELETE, GET, PATCH, PUT');
  });

  test("SCIM keeps its trailing-slash tolerance, as the same operation with the same authentication", async () => {
    expect((await t.http().get('/scim/v2/Users/')).status).toBe(401);
    const res = await scim.get('/Users/');
    expect(res.status).toBe(200);
    expect(res.body.totalResults).toBeGreaterThanOrEqual(1);
  });

  test('a literal route wins over a templated one for the method it declares', async () => {
    const res = await t.http().get('/admin/workflows/tasks').set(t.admin);
    expect(res.status).toBe(200);
  });
});
