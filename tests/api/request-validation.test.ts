import { createTestApp, type TestApp } from '../support/app';

// What the spec validator does with types: JSON bodies are taken as sent, parameters are coerced from text.
describe('request validation against the spec', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  test('a number where the body wants a string is a 422 naming the field, not silently turned into text', async () => {
    const res = await t
      .http()
      .post('/admin/asset-types')
      .set(t.admin)
      .send({ name: 'Typed', assignment_model: 'personal', description: 5 });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path: '/body/description' })]));
    const { rowCount } = await t.db.query(`SELECT 1 FROM asset_types WHERE name = 'Typed'`);
    expect(rowCount).toBe(0);
  });

  test('query parameters arrive as text and are coerced to the declared integer', async () => {
    const res = await t.http().get('/admin/asset-types?limit=2&offset=0').set(t.admin);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ limit: 2, offset: 0 });
  });

  test('a query parameter that is not an integer is a 400 naming it', async () => {
    const res = await t.http().get('/admin/asset-types?limit=two').set(t.admin);
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path: '/query/limit' })]));
  });
});
