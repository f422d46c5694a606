import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { MAX_JSON_DEPTH } from '../../server/http/input-guard';
import { resolveRef } from '../../integration-model';
import { listOperations, loadSpec } from '../../server/spec';
import { createTestApp, type TestApp } from '../support/app';
import { mintTestToken } from '../support/orders';

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

// Input that used to reach SQL or recursive code and answer 500 (issue 14, finding 2): refused at the edge, for
// every operation, with the field named and nothing stored.
describe('input no handler sees', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });
  const assetTypeCount = async () => Number((await t.db.query<{ n: string }>(`SELECT count(*) AS n FROM asset_types`)).rows[0]!.n);

  test.each(['99999999999999999999', 'Infinity', '1e99', '1'.repeat(400), '9007199254740993', '0x10', '1e3', '%201', '+1', '1.0'])(
    'an integer path or query parameter written %s is a 400 naming it, not a query',
    async (v) => {
      const path = await t.http().get(`/admin/asset-types/${v}`).set(t.admin);
      expect(path.status).toBe(400);
      expect(path.body).toMatchObject({ code: 'BAD_REQUEST', errors: [{ path: '/path/id', message: 'must be a decimal integer from 1 to 9007199254740991' }] });
      const query = await t.http().get(`/admin/runs?order_id=${v}`).set(t.admin);
      expect(query.status).toBe(400);
      expect(query.body.errors).toEqual([expect.objectContaining({ path: '/query/order_id' })]);
      const limit = await t.http().get(`/admin/asset-types?limit=${v}`).set(t.admin);
      expect(limit.status).toBe(400);
    },
  );

  test('an int32 column is bounded by int32: a script module version past 2^31-1 is a 400', async () => {
    const res = await t.http().get('/admin/script-modules/x/versions/2147483648').set(t.admin);
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ path: '/path/version', message: 'must be a decimal integer from 1 to 2147483647' }]);
    expect((await t.http().get('/admin/script-modules/x/versions/2147483647').set(t.admin)).status).toBe(404);
  });

  test.each([
    ['NUL in a value', '{"name":"a\\u0000b","assignment_model":"personal"}', '/body/name', 'NUL'],
    ['a lone surrogate in a value', '{"name":"a\\ud800b","assignment_model":"personal"}', '/body/name', 'lone surrogate'],
    ['a lone low surrogate', '{"name":"a\\udc00","assignment_model":"personal"}', '/body/name', 'lone surrogate'],
    ['NUL in a member name', '{"name":"ok","assignment_model":"personal","attributes":[{"k\\u0000":1}]}', '/body/attributes/0', 'member name'],
  ])('%s is a 422 naming the field, and nothing is stored', async (_what, body, path, message) => {
    const res = await t.http().post('/admin/asset-types').set(t.admin).set('Content-Type', 'application/json').send(body);
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path, message: expect.stringContaining(message) }] });
    expect(await assetTypeCount()).toBe(0);
  });

  test('a surrogate pair (an emoji) is text like any other', async () => {
    const res = await t.http().post('/admin/asset-types').set(t.admin).send({ name: 'Desk \ud83d\udda5', assignment_model: 'personal' });
    expect(res.status).toBe(201);
    expect(res.body.name).toBe('Desk \u{1F5A5}');
    expect((await t.http().delete(`/admin/asset-types/${res.body.id}`).set(t.admin)).status).toBe(204);
  });

  test('NUL in a path or query parameter is a 422 naming it', async () => {
    const path = await t.http().get('/admin/workflows/%00').set(t.admin);
    expect(path.status).toBe(422);
    expect(path.body.errors).toEqual([expect.objectContaining({ path: '/path/name', message: expect.stringContaining('NUL') })]);
    const query = await t.http().get('/admin/audit?entity=a%00').set(t.admin);
    expect(query.status).toBe(422);
    expect(query.body.errors).toEqual([expect.objectContaining({ path: '/query/entity' })]);
  });

  test('a path that is not valid percent-encoded UTF-8 is a 400', async () => {
    const res = await t.http().get('/admin/workflows/%E0%A4%A').set(t.admin);
    expect(res.status).toBe(400);
  });

  test.each([
    ['POST', '/admin/workflows/import', (deep: string) => `{"document":${deep}}`],
    ['PUT', '/admin/integrations/1/config', (deep: string) => `{"properties":${deep}}`],
    ['POST', '/admin/asset-types', (deep: string) => `{"name":"x","assignment_model":"personal","attributes":${deep}}`],
  ])('5,000 levels of nesting in %s %s are a 422 before any recursive code sees them', async (method, path, body) => {
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    const res = await t.http()[method.toLowerCase() as 'post'](path).set(t.admin).set('Content-Type', 'application/json').send(body(deep));
    expect(res.status).toBe(422);
    expect(res.body.errors[0].message).toBe(`nests deeper than ${MAX_JSON_DEPTH} levels of objects and arrays`);
  });

  test(`nesting up to ${MAX_JSON_DEPTH} levels passes the guard (the spec validator then judges the shape)`, async () => {
    const nested = '['.repeat(MAX_JSON_DEPTH - 1) + ']'.repeat(MAX_JSON_DEPTH - 1);
    const res = await t.http().post('/admin/asset-types').set(t.admin).set('Content-Type', 'application/json').send(`{"name":"x","assignment_model":"personal","attributes":${nested}}`);
    expect(res.status).toBe(422);
    expect(res.body.errors[0].message).not.toContain('nests deeper');
  });

  test.each(['gzip', 'deflate', 'br'])('Content-Encoding: %s on a body that is not compressed is a 400', async (encoding) => {
    const res = await t.http().post('/admin/asset-types').set(t.admin).set('Content-Type', 'application/json').set('Content-Encoding', encoding).send('{"name":"x"}');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'BAD_REQUEST', detail: expect.stringContaining('Content-Encoding') });
  });

  test('a body really sent gzip-compressed is read', async () => {
    const server = t.app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const { port } = server.address() as AddressInfo;
      const body = gzipSync(Buffer.from(JSON.stringify({ name: 'Gzipped', assignment_model: 'personal' })));
      const res = await fetch(`http://127.0.0.1:${port}/admin/asset-types`, {
        method: 'POST',
        headers: { ...t.admin, 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
        body,
      });
      expect(res.status).toBe(201);
      expect(await res.json()).toMatchObject({ name: 'Gzipped' });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('a SCIM body with NUL is a SCIM 400 invalidValue, not a 500', async () => {
    const token = await mintTestToken(t.db, 'guard-idp', ['scim:write', 'scim:read']);
    const res = await t
      .http()
      .post('/scim/v2/Users')
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', 'application/scim+json')
      .send('{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a\\u0000@example.com"}');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ status: '400', scimType: 'invalidValue' });
  });

  test('the service is healthy after all of it', async () => {
    expect((await t.http().get('/healthz')).status).toBe(200);
    expect((await t.http().get('/admin/asset-types').set(t.admin)).status).toBe(200);
  });
});

// Every integer a client can send is declared with the range the guard and the database enforce, so a generated
// client and an Itential canvas task see the same bounds the service applies.
describe('integer bounds in the spec', () => {
  test('every integer parameter and request-body integer declares int32 or int64, within what the database holds', () => {
    const spec = loadSpec();
    const unbounded: string[] = [];
    const seen = new Set<unknown>();
    const walk = (schema: unknown, where: string): void => {
      if (!schema || typeof schema !== 'object' || seen.has(schema)) return;
      const s = schema as Record<string, unknown>;
      if (typeof s['$ref'] === 'string') return walk(resolveRef(spec, s), s['$ref']);
      seen.add(schema);
      if (s['type'] === 'integer') {
        const max = s['maximum'] as number | undefined;
        if (s['format'] === 'int32') {
          if (max !== undefined && max > 2 ** 31 - 1) unbounded.push(`${where}: maximum beyond int32`);
        } else if (s['format'] === 'int64') {
          if (max === undefined || max > Number.MAX_SAFE_INTEGER) unbounded.push(`${where}: int64 without a maximum within 2^53-1`);
        } else unbounded.push(`${where}: no int32/int64 format`);
      }
      for (const [k, v] of Object.entries((s['properties'] as Record<string, unknown>) ?? {})) walk(v, `${where}/properties/${k}`);
      if (s['items']) walk(s['items'], `${where}/items`);
      if (typeof s['additionalProperties'] === 'object') walk(s['additionalProperties'], `${where}/additionalProperties`);
      for (const k of ['allOf', 'oneOf', 'anyOf']) ((s[k] as unknown[]) ?? []).forEach((x, i) => walk(x, `${where}/${k}/${i}`));
    };
    let integers = 0;
    for (const op of listOperations(spec)) {
      for (const p of op.parameters) {
        if (p.schema?.type === 'integer') integers++;
        walk(p.schema, `${op.operationId} ${p.in}:${p.name}`);
      }
      const body = (spec.paths[op.path]![op.method] as { requestBody?: { content?: Record<string, { schema?: unknown }> } }).requestBody;
      for (const [type, c] of Object.entries(body?.content ?? {})) walk(c.schema, `${op.operationId} body ${type}`);
    }
    expect(integers).toBeGreaterThan(40);
    expect(unbounded).toEqual([]);
  });
});

// Issue 11, "Bad input": what a caller sends by mistake is answered precisely, naming what is wrong.
describe('bad input named precisely', () => {
  let t: TestApp;
  let hr: string;
  beforeAll(async () => {
    t = await createTestApp({ webhookSecretToken: undefined });
    hr = await mintTestToken(t.db, 'hr-bad-input', ['hr:leaver']);
  });
  afterAll(async () => {
    await t.close();
  });
  const leaver = (body: string) =>
    t.http().post('/hr/leaver').set('Authorization', `Bearer ${hr}`).set('Content-Type', 'application/json').send(body);

  test('an HR leaver body is judged against the format it came closest to, named, without the other formats\' errors', async () => {
    const native = await leaver('{"email":"not-an-email"}');
    expect(native.status).toBe(422);
    expect(native.body.errors).toEqual([
      { path: '/body/email', message: 'must match format "email"' },
      { path: '/body', message: expect.stringMatching(/closest to native leaver event$/) },
    ]);
    const workday = await leaver('{"Event_ID":"wd-1","Event_Type":"Termination","Termination_Date":"2026-06-30"}');
    expect(workday.status).toBe(422);
    expect(workday.body.errors).toEqual([
      { path: '/body/Worker', message: "must have required property 'Worker'" },
      { path: '/body', message: expect.stringMatching(/closest to Workday termination event$/) },
    ]);
    expect(JSON.stringify(workday.body)).not.toContain('externalEventMeta');
  });

  test('a JSON null (or any non-object) body is a 422 naming the body, not "not valid JSON"', async () => {
    for (const body of ['null', '5', '"text"', '[]']) {
      const order = await t.http().post('/orders').set(t.admin).set('Content-Type', 'application/json').send(body);
      expect(order.status).toBe(422);
      expect(order.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: '/body', message: 'must be object' }] });
      const hrRes = await leaver(body);
      expect(hrRes.status).toBe(422);
      expect(hrRes.body.errors).toEqual([{ path: '/body', message: expect.stringContaining('must be a JSON object in one of the accepted formats (native leaver event, Workday') }]);
    }
    expect((await t.db.query(`SELECT 1 FROM orders`)).rowCount).toBe(0);
    // Text that is not JSON stays a 400.
    expect((await t.http().post('/orders').set(t.admin).set('Content-Type', 'application/json').send('{nope')).status).toBe(400);
  });

  test('GET /orders?user= takes an email with a raw @', async () => {
    const res = await t.http().get('/orders?user=jane.doe@example.com').set(t.admin);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ items: [], total: 0 });
  });

  test('a signed webhook sent while no secret is configured is told so', async () => {
    const res = await t.http().post('/webhook/servicenow').set('Content-Type', 'application/json').set('X-Hub-Signature-256', `sha256=${'a'.repeat(64)}`).send('{}');
    expect(res.status).toBe(401);
    expect(res.body.detail).toMatch(/no webhook secret is configured/);
  });
});
