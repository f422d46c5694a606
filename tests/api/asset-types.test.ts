import type { Role, Scope } from '../../server/auth/principal';
import { mintToken } from '../../server/domain/tokens/api-tokens';
import { createTestApp, type TestApp } from '../support/app';

/** A full create body: every field set. */
const vdi = {
  name: 'Lab VDI',
  description: 'Pooled lab desktop',
  assignment_model: 'capacity_pooled',
  pool_size: 5,
  max_per_user: 1,
  requires_approval: true,
  monthly_cost: 85.5,
  currency: 'EUR',
  cost_center: 'CC-IT-100',
  data_classification: { pii: true },
  attributes: [
    { key: 'project_code', type: 'string', required: true, help: 'Project to charge' },
    { key: 'start_on', type: 'date' },
  ],
  allow_user_lists: true,
  provision_runbook: 'lab-vdi-provision',
  deprovision_runbook: 'lab-vdi-deprovision',
  reinstall_runbook: 'lab-vdi-reinstall',
  deprovision_policy: 'reinstall',
};

describe('/admin/asset-types', () => {
  let t: TestApp;
  let readerToken: string;

  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  const mint = async (name: string, scopes: Scope[], role: Role | null) =>
    (
      await t.db.transaction((tx) =>
        mintToken(tx, { name, scopes, role, expiresAt: null }, { role: 'superadmin', triggeredBy: 'system:test' }),
      )
    ).token;
  const create = (body: Record<string, unknown>) => t.http().post('/admin/asset-types').set(t.admin).send(body);
  const auditRows = async (entityId: number) =>
    (
      await t.db.query<{ action: string; diff: { before: Record<string, unknown> | null; after: Record<string, unknown> | null }; triggered_by: string }>(
        `SELECT action, diff, triggered_by FROM audit_log WHERE entity = 'asset_type' AND entity_id = $1 ORDER BY id`,
        [String(entityId)],
      )
    ).rows;

  beforeAll(async () => {
    t = await createTestApp();
    readerToken = await mint('auditor-reader', ['admin:read'], 'auditor');
  });
  afterAll(async () => {
    await t.close();
  });

  describe('create', () => {
    test('201 with every field, monthly_cost as a number, an empty pool, and an audit row', async () => {
      const res = await create(vdi);
      expect(res.status).toBe(201);
      expect(res.body).toEqual({
        ...vdi,
        fallback_approver: null,
        entitlements: { groups: [], departments: [], users: [] },
        default_duration_days: null,
        max_duration_days: null,
        approval: null,
        last_configured_by: 'admin:key',
        expiry_warning_days: null,
        teams_webhook: { configured: false },
        id: expect.any(Number),
        data_classification: { pii: true, phi: false, pci: false },
        attributes: [
          { key: 'project_code', type: 'string', required: true, help: 'Project to charge' },
          { key: 'start_on', type: 'date', required: false },
        ],
        pool: { free: 0, in_use: 0, reinstall: 0, failed: 0, total: 0, fill_percent: null, alert: 'none' },
        created_at: expect.any(String),
        updated_at: expect.any(String),
      });
      const audit = await auditRows(res.body.id);
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ action: 'create', triggered_by: 'admin:key', diff: { before: null } });
      expect(audit[0]!.diff.after).toMatchObject({ name: 'Lab VDI', monthly_cost: 85.5, currency: 'EUR', pool_size: 5 });
    });

    test('defaults for a minimal body', async () => {
      const res = await create({ name: 'Minimal', assignment_model: 'personal' });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        name: 'Minimal',
        description: '',
        assignment_model: 'personal',
        pool_size: null,
        max_per_user: null,
        requires_approval: false,
        monthly_cost: null,
        currency: null,
        cost_center: null,
        data_classification: { pii: false, phi: false, pci: false },
        attributes: [],
        allow_user_lists: false,
        provision_runbook: null,
        deprovision_runbook: null,
        reinstall_runbook: null,
        deprovision_policy: 'access_only',
        fallback_approver: null,
      });
    });

    test('409 on a duplicate name, and nothing audited for it', async () => {
      const before = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_log WHERE entity = 'asset_type'`);
      const res = await create({ name: 'Lab VDI', assignment_model: 'personal' });
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ status: 409, code: 'CONFLICT', detail: "an asset type named 'Lab VDI' already exists" });
      const after = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_log WHERE entity = 'asset_type'`);
      expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
    });

    test.each([
      ['a bad assignment_model', { assignment_model: 'shared' }, '/body/assignment_model'],
      ['pool_size -1', { pool_size: -1 }, '/body/pool_size'],
      ['max_per_user 0', { max_per_user: 0 }, '/body/max_per_user'],
      ["currency 'euro'", { currency: 'euro' }, '/body/currency'],
      ['monthly_cost below 0', { monthly_cost: -1, currency: 'EUR' }, '/body/monthly_cost'],
      ['a bad deprovision_policy', { deprovision_policy: 'shred' }, '/body/deprovision_policy'],
      ['an attribute key that is not snake_case', { attributes: [{ key: 'Project', type: 'string' }] }, '/body/attributes/0/key'],
      ['an unknown attribute type', { attributes: [{ key: 'x', type: 'uuid' }] }, '/body/attributes/0/type'],
      ['an unknown field', { colour: 'red' }, '/body/colour'],
    ])('422 naming the field for %s', async (_what, over, path) => {
      const res = await create({ name: `Bad ${path}`, assignment_model: 'personal', ...over });
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ status: 422, code: 'VALIDATION_FAILED' });
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    });

    test('422 naming a duplicate attribute key', async () => {
      const res = await create({
        name: 'Dup attrs',
        assignment_model: 'personal',
        attributes: [
          { key: 'tier', type: 'string' },
          { key: 'seats', type: 'integer' },
          { key: 'tier', type: 'integer' },
        ],
      });
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({
        code: 'VALIDATION_FAILED',
        detail: "attributes/2/key: duplicate key 'tier' (already at attributes/0)",
        errors: [{ path: '/body/attributes/2/key', message: "duplicate key 'tier' (already at attributes/0)" }],
      });
    });

    test('422 for a cost without a currency', async () => {
      const res = await create({ name: 'No currency', assignment_model: 'personal', monthly_cost: 10 });
      expect(res.status).toBe(422);
      expect(res.body.errors).toEqual([{ path: '/body/currency', message: 'is required when monthly_cost is set' }]);
    });
  });

  describe('read', () => {
    test('get by id, and 404 for an unknown id', async () => {
      const created = await create({ name: 'Readable', assignment_model: 'personal' });
      const res = await t.http().get(`/admin/asset-types/${created.body.id}`).set(t.admin);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(created.body);
      const missing = await t.http().get('/admin/asset-types/999999').set(t.admin);
      expect(missing.status).toBe(404);
      expect(missing.body).toMatchObject({ code: 'NOT_FOUND', detail: 'asset type 999999 does not exist' });
    });

    test('list pages by name with a total, and filters by name and assignment_model', async () => {
      for (const n of ['Page A', 'Page B', 'Page C']) expect((await create({ name: n, assignment_model: 'capacity_pooled' })).status).toBe(201);
      const page = await t.http().get('/admin/asset-types?name=page&limit=2&offset=1').set(t.admin);
      expect(page.status).toBe(200);
      expect(page.body).toMatchObject({ total: 3, limit: 2, offset: 1 });
      expect(page.body.items.map((i: { name: string }) => i.name)).toEqual(['Page B', 'Page C']);

      const personal = await t.http().get('/admin/asset-types?assignment_model=personal&limit=500').set(t.admin);
      expect(personal.status).toBe(200);
      expect(personal.body.items.length).toBe(personal.body.total);
      expect(personal.body.items.every((i: { assignment_model: string }) => i.assignment_model === 'personal')).toBe(true);
      expect(personal.body.items.map((i: { name: string }) => i.name)).toContain('Minimal');

      // LIKE wildcards in the filter are taken literally.
      const literal = await t.http().get('/admin/asset-types?name=%25').set(t.admin);
      expect(literal.body).toMatchObject({ items: [], total: 0 });

      const bad = await t.http().get('/admin/asset-types?assignment_model=shared').set(t.admin);
      expect(bad.status).toBe(400);
    });

    test('pool counts by state with the fill level of the dashboard tiles', async () => {
      const type = await create({ name: 'Counted', assignment_model: 'capacity_pooled', pool_size: 10 });
      const states = ['free', 'in_use', 'in_use', 'in_use', 'reinstall', 'failed'];
      for (const [i, state] of states.entries()) {
        await t.db.query(`INSERT INTO assets (asset_type_id, name, state) VALUES ($1, $2, $3)`, [type.body.id, `C-${i}`, state]);
      }
      const res = await t.http().get(`/admin/asset-types/${type.body.id}`).set(t.admin);
      // 4 of the 5 serviceable instances are taken: 80 %, the warning threshold.
      expect(res.body.pool).toEqual({ free: 1, in_use: 3, reinstall: 1, failed: 1, total: 6, fill_percent: 80, alert: 'warning' });
      await t.db.query(`UPDATE assets SET state = 'in_use' WHERE asset_type_id = $1 AND state = 'free'`, [type.body.id]);
      const full = await t.http().get(`/admin/asset-types?name=Counted`).set(t.admin);
      expect(full.body.items[0].pool).toMatchObject({ free: 0, fill_percent: 100, alert: 'critical' });
    });
  });

  describe('update (PATCH, merge semantics)', () => {
    test('changes only the fields sent, merges data_classification, and audits the changed fields only', async () => {
      const created = await create({ ...vdi, name: 'Patched' });
      const id = created.body.id as number;
      const res = await t
        .http()
        .patch(`/admin/asset-types/${id}`)
        .set(t.admin)
        .send({ pool_size: 8, data_classification: { pci: true }, cost_center: null });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        ...created.body,
        pool_size: 8,
        cost_center: null,
        data_classification: { pii: true, phi: false, pci: true },
        updated_at: expect.any(String),
      });
      const audit = await auditRows(id);
      expect(audit.map((a) => a.action)).toEqual(['create', 'update']);
      expect(audit[1]!.diff).toEqual({
        before: { pool_size: 5, cost_center: 'CC-IT-100', data_classification: { pii: true, phi: false, pci: false } },
        after: { pool_size: 8, cost_center: null, data_classification: { pii: true, phi: false, pci: true } },
      });
    });

    test('attributes, when sent, replace the list; sending the same values again audits nothing', async () => {
      const created = await create({ name: 'Attr swap', assignment_model: 'personal', attributes: [{ key: 'a', type: 'string' }] });
      const id = created.body.id as number;
      const attributes = [{ key: 'tier', type: 'string', required: true, help: 'standard or pro' }];
      const res = await t.http().patch(`/admin/asset-types/${id}`).set(t.admin).send({ attributes });
      expect(res.status).toBe(200);
      expect(res.body.attributes).toEqual(attributes);
      const again = await t.http().patch(`/admin/asset-types/${id}`).set(t.admin).send({ attributes, name: 'Attr swap' });
      expect(again.status).toBe(200);
      expect(again.body.updated_at).toBe(res.body.updated_at);
      expect((await auditRows(id)).map((a) => a.action)).toEqual(['create', 'update']);
    });

    test('409 renaming onto a taken name; 422 for invalid changes; 404 for an unknown id; 422 for an empty body', async () => {
      const created = await create({ name: 'Renamable', assignment_model: 'personal' });
      const id = created.body.id as number;
      const taken = await t.http().patch(`/admin/asset-types/${id}`).set(t.admin).send({ name: 'Lab VDI' });
      expect(taken.status).toBe(409);
      expect(taken.body.detail).toBe("an asset type named 'Lab VDI' already exists");

      const dup = await t
        .http()
        .patch(`/admin/asset-types/${id}`)
        .set(t.admin)
        .send({ attributes: [{ key: 'x', type: 'string' }, { key: 'x', type: 'string' }] });
      expect(dup.status).toBe(422);
      expect(dup.body.errors).toEqual([{ path: '/body/attributes/1/key', message: "duplicate key 'x' (already at attributes/0)" }]);

      const cost = await t.http().patch(`/admin/asset-types/${id}`).set(t.admin).send({ monthly_cost: 3 });
      expect(cost.status).toBe(422);
      expect(cost.body.errors).toEqual([{ path: '/body/currency', message: 'is required when monthly_cost is set' }]);

      const neg = await t.http().patch(`/admin/asset-types/${id}`).set(t.admin).send({ pool_size: -1 });
      expect(neg.status).toBe(422);
      expect(neg.body.errors[0].path).toBe('/body/pool_size');

      const empty = await t.http().patch(`/admin/asset-types/${id}`).set(t.admin).send({});
      expect(empty.status).toBe(422);

      const missing = await t.http().patch('/admin/asset-types/999999').set(t.admin).send({ description: 'x' });
      expect(missing.status).toBe(404);
      expect((await auditRows(id)).map((a) => a.action)).toEqual(['create']);
    });
  });

  describe('delete', () => {
    test('409 while pool assets or orders reference the type; 204 and an audit row once free of them', async () => {
      const created = await create({ name: 'Doomed', assignment_model: 'capacity_pooled' });
      const id = created.body.id as number;
      const asset = await t.db.query<{ id: number }>(`INSERT INTO assets (asset_type_id, name) VALUES ($1, 'D-1') RETURNING id`, [id]);
      const withAsset = await t.http().delete(`/admin/asset-types/${id}`).set(t.admin);
      expect(withAsset.status).toBe(409);
      expect(withAsset.body).toMatchObject({ code: 'CONFLICT', detail: "asset type 'Doomed' is still referenced by 1 pool asset(s)" });

      await t.db.query('DELETE FROM assets WHERE id = $1', [asset.rows[0]!.id]);
      await t.db.query(
        `INSERT INTO orders (asset_type_id, status, source, user_email, user_name, created_by)
         VALUES ($1, 'returned', 'api', 'a@example.com', 'A', 'test')`,
        [id],
      );
      const withOrder = await t.http().delete(`/admin/asset-types/${id}`).set(t.admin);
      expect(withOrder.status).toBe(409);
      expect(withOrder.body.detail).toBe("asset type 'Doomed' is still referenced by 1 order(s)");

      const free = await create({ name: 'Deletable', assignment_model: 'personal', cost_center: 'CC-1' });
      const del = await t.http().delete(`/admin/asset-types/${free.body.id}`).set(t.admin);
      expect(del.status).toBe(204);
      expect(del.text).toBe('');
      expect((await t.http().get(`/admin/asset-types/${free.body.id}`).set(t.admin)).status).toBe(404);
      const audit = await auditRows(free.body.id);
      expect(audit.map((a) => a.action)).toEqual(['create', 'delete']);
      expect(audit[1]!.diff.before).toMatchObject({ name: 'Deletable', cost_center: 'CC-1' });
      expect(audit[1]!.diff.after).toBeNull();
      expect((await t.http().delete(`/admin/asset-types/${free.body.id}`).set(t.admin)).status).toBe(404);
    });
  });

  describe('authorisation', () => {
    test('a read-only token (admin:read, auditor) may read but not write: 403', async () => {
      const list = await t.http().get('/admin/asset-types').set(bearer(readerToken));
      expect(list.status).toBe(200);
      const id = list.body.items[0].id as number;
      expect((await t.http().get(`/admin/asset-types/${id}`).set(bearer(readerToken))).status).toBe(200);

      const post = await t.http().post('/admin/asset-types').set(bearer(readerToken)).send({ name: 'Nope', assignment_model: 'personal' });
      expect(post.status).toBe(403);
      expect(post.body).toMatchObject({ code: 'FORBIDDEN', detail: 'requires scope admin:*' });
      expect((await t.http().patch(`/admin/asset-types/${id}`).set(bearer(readerToken)).send({ description: 'x' })).status).toBe(403);
      expect((await t.http().delete(`/admin/asset-types/${id}`).set(bearer(readerToken))).status).toBe(403);
    });

    test('an admin:* token bound to a functional role is refused writes by role; its writes are attributed to it', async () => {
      const helpdesk = await mint('helpdesk-writer', ['admin:*'], 'helpdesk');
      const refused = await t.http().post('/admin/asset-types').set(bearer(helpdesk)).send({ name: 'Nope', assignment_model: 'personal' });
      expect(refused.status).toBe(403);
      expect(refused.body.detail).toMatch(/role 'helpdesk' may not call createAssetType/);

      const admin = await mint('catalogue-admin', ['admin:*'], 'admin');
      const ok = await t.http().post('/admin/asset-types').set(bearer(admin)).send({ name: 'By token', assignment_model: 'personal' });
      expect(ok.status).toBe(201);
      expect((await auditRows(ok.body.id))[0]!.triggered_by).toBe('admin:token:catalogue-admin');
    });

    test('a token without admin scopes may not even read; no credentials is 401', async () => {
      const orderer = await mint('orderer', ['orders:write'], null);
      expect((await t.http().get('/admin/asset-types').set(bearer(orderer))).status).toBe(403);
      const anon = await t.http().get('/admin/asset-types');
      expect(anon.status).toBe(401);
    });
  });
});
