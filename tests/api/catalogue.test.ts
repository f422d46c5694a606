/**
 * `GET /catalogue`: the asset types a person may order, as a request form needs them, filtered by the types'
 * entitlements; without `user_email`, every type (the admin view). The directory is a fake of what the AD requester
 * directory answers (tests/integration/order-directory.test.ts has the real one against Samba AD).
 */
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { fakeDirectory, type FakeDirectory } from '../support/fake-directory';
import { mintTestToken } from '../support/orders';
import { projectedCost } from '../../server/domain/catalogue/catalogue';

interface Item {
  name: string;
  projected_cost: number | null;
  availability: unknown;
  entitled_by: unknown;
  [k: string]: unknown;
}

describe(`catalogue (${testEngine})`, () => {
  let t: TestApp;
  let dir: FakeDirectory;
  let writer: string;
  const asWriter = () => ({ Authorization: `Bearer ${writer}` });
  const catalogue = (query: string, headers: Record<string, string> = asWriter()) => t.http().get(`/catalogue${query}`).set(headers);
  const names = (body: { items: Item[] }) => body.items.map((i) => i.name);
  const type = async (body: Record<string, unknown>) => {
    const res = await t.http().post('/admin/asset-types').set(t.admin).send({ assignment_model: 'personal', ...body });
    expect({ status: res.status, body: res.status === 201 ? null : res.body }).toEqual({ status: 201, body: null });
    return res.body.id as number;
  };

  beforeAll(async () => {
    dir = fakeDirectory({
      'jane.doe@example.com': { department: 'Finance' },
      'eng@example.com': { department: 'Engineering', groups: ['VDI-Users'] },
      'gone@example.com': { department: 'Finance', enabled: false },
    });
    t = await createTestApp({}, { requesterDirectory: dir });
    writer = await mintTestToken(t.db, 'portal', ['orders:write']);
    const vdi = await type({
      name: 'Cat: Standard VDI',
      description: 'Pooled Windows desktop',
      assignment_model: 'capacity_pooled',
      pool_size: 3,
      monthly_cost: 85,
      currency: 'EUR',
      default_duration_days: 45,
      data_classification: { pii: true, pci: true },
      attributes: [{ key: 'project_code', type: 'string', required: true, help: 'Project to charge' }],
      entitlements: { groups: ['VDI-Users'] },
    });
    await type({ name: 'Cat: Finance seat', monthly_cost: 12.34, currency: 'EUR', entitlements: { departments: ['finance'] } });
    await type({ name: 'Cat: Named seat', entitlements: { users: ['Jane.Doe@example.com'] } });
    await type({ name: 'Cat: Open laptop', requires_approval: true, monthly_cost: 40, currency: 'USD', default_duration_days: 365 });
    // The pool: two free instances and one order holding a place.
    for (const name of ['vdi-01', 'vdi-02']) {
      expect((await t.http().post('/admin/assets').set(t.admin).send({ asset_type_id: vdi, name })).status).toBe(201);
    }
    const placed = await t.http().post('/orders').set(asWriter())
      .send({ asset_type_name: 'Cat: Standard VDI', user_email: 'eng@example.com', user_name: 'Eng', config: { project_code: 'P-1' } });
    expect(placed.status).toBe(201);
  });
  afterAll(async () => {
    await t?.close();
  });
  beforeEach(() => {
    dir.mode = 'configured';
  });

  test('per person: only the types their entitlements admit, with why', async () => {
    const jane = await catalogue('?user_email=jane.doe@example.com');
    expect(jane.status).toBe(200);
    expect(jane.body.user_email).toBe('jane.doe@example.com');
    expect(names(jane.body)).toEqual(['Cat: Finance seat', 'Cat: Named seat', 'Cat: Open laptop']);
    expect(jane.body.items.map((i: Item) => i.entitled_by)).toEqual([
      { rule: 'departments', value: 'finance' },
      { rule: 'users', value: 'jane.doe@example.com' },
      { rule: 'everyone', value: null },
    ]);
    const eng = await catalogue('?user_email=ENG@example.com');
    expect(eng.body.user_email).toBe('eng@example.com');
    expect(names(eng.body)).toEqual(['Cat: Open laptop', 'Cat: Standard VDI']);
  });

  test('each item carries what a request form needs: attributes with help, classification, cost, projection, availability', async () => {
    const eng = await catalogue('?user_email=eng@example.com');
    const vdi = eng.body.items.find((i: Item) => i.name === 'Cat: Standard VDI');
    expect(vdi).toEqual({
      asset_type_id: expect.any(Number),
      name: 'Cat: Standard VDI',
      description: 'Pooled Windows desktop',
      assignment_model: 'capacity_pooled',
      requires_approval: false,
      attributes: [{ key: 'project_code', type: 'string', required: true, help: 'Project to charge' }],
      data_classification: { pii: true, phi: false, pci: true },
      monthly_cost: 85,
      currency: 'EUR',
      default_duration_days: 45,
      // 85 × 45 / 30
      projected_cost: 127.5,
      availability: { capacity: 3, taken: 1, available: 2, free_instances: 2 },
      entitlements: { groups: ['VDI-Users'], departments: [], users: [] },
      entitled_by: { rule: 'groups', value: 'VDI-Users' },
    });
    const laptop = eng.body.items.find((i: Item) => i.name === 'Cat: Open laptop');
    expect(laptop).toMatchObject({ requires_approval: true, projected_cost: 486.67, availability: null });
  });

  test('projected cost: monthly cost × default days / 30, to the cent; null without a cost or a default length', () => {
    expect(projectedCost(85, 45)).toBe(127.5);
    expect(projectedCost(40, 365)).toBe(486.67);
    expect(projectedCost(12.34, 30)).toBe(12.34);
    expect(projectedCost(0.01, 1)).toBe(0);
    expect(projectedCost(null, 30)).toBeNull();
    expect(projectedCost(10, null)).toBeNull();
  });

  test('without user_email: every type, unfiltered, entitled_by null (the admin view)', async () => {
    const all = await catalogue('', t.admin);
    expect(all.status).toBe(200);
    expect(all.body.user_email).toBeNull();
    expect(names(all.body)).toEqual(['Cat: Finance seat', 'Cat: Named seat', 'Cat: Open laptop', 'Cat: Standard VDI']);
    expect(all.body.items.every((i: Item) => i.entitled_by === null)).toBe(true);
    expect(all.body.items.find((i: Item) => i.name === 'Cat: Finance seat')).toMatchObject({
      projected_cost: null,
      entitlements: { groups: [], departments: ['finance'], users: [] },
    });
  });

  test('the requester check applies: unknown or disabled people are 422 naming /query/user_email', async () => {
    const ghost = await catalogue('?user_email=ghost@example.com');
    expect(ghost.status).toBe(422);
    expect(ghost.body).toMatchObject({ code: 'REQUESTER_NOT_FOUND', errors: [{ path: '/query/user_email' }] });
    const gone = await catalogue('?user_email=gone@example.com');
    expect(gone.status).toBe(422);
    expect(gone.body.code).toBe('REQUESTER_DISABLED');
  });

  test('a directory that does not answer is 503; without configured settings only users rules and open types remain', async () => {
    dir.mode = 'down';
    const down = await catalogue('?user_email=jane.doe@example.com');
    expect(down.status).toBe(503);
    expect(down.body.code).toBe('DIRECTORY_UNAVAILABLE');
    dir.mode = 'unconfigured';
    const none = await catalogue('?user_email=jane.doe@example.com');
    expect(names(none.body)).toEqual(['Cat: Named seat', 'Cat: Open laptop']);
  });

  test('what the catalogue offers is what an order is accepted for', async () => {
    const offered = names((await catalogue('?user_email=jane.doe@example.com')).body);
    const all = names((await catalogue('', t.admin)).body);
    for (const name of all) {
      const res = await t.http().post('/orders').set(asWriter())
        .send({ asset_type_name: name, user_email: 'jane.doe@example.com', user_name: 'Jane', config: name === 'Cat: Standard VDI' ? { project_code: 'P' } : {} });
      expect({ name, status: res.status }).toEqual({ name, status: offered.includes(name) ? 201 : 403 });
    }
  });

  test('the @ of user_email needs no percent-encoding; an encoded one works too; a malformed one is 400', async () => {
    const raw = await catalogue('?user_email=jane.doe@example.com');
    const encoded = await catalogue('?user_email=jane.doe%40example.com');
    expect(encoded.status).toBe(200);
    expect(encoded.body).toEqual(raw.body);
    const bad = await catalogue('?user_email=not-an-email');
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toContain('user_email');
  });

  test('readable with orders:write or admin:read, by every role; not with other scopes', async () => {
    const reader = (await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'cat-helpdesk', scopes: ['admin:read'], role: 'helpdesk' })).body.token as string;
    expect((await catalogue('?user_email=jane.doe@example.com', { Authorization: `Bearer ${reader}` })).status).toBe(200);
    const hook = await mintTestToken(t.db, 'cat-hook', ['webhook:in']);
    const refused = await catalogue('', { Authorization: `Bearer ${hook}` });
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('FORBIDDEN');
    expect((await catalogue('', {})).status).toBe(401);
  });
});
