import { mintToken } from '../../server/domain/tokens/api-tokens';
import { claimFreeAsset, finishReinstall, releaseAsset } from '../../server/domain/catalogue/assets';
import { createTestApp, type TestApp } from '../support/app';

describe('/admin/assets', () => {
  let t: TestApp;
  let poolType: number;
  let otherType: number;
  let readerToken: string;

  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  const create = (body: Record<string, unknown>) => t.http().post('/admin/assets').set(t.admin).send(body);
  const patch = (id: number, body: Record<string, unknown>) => t.http().patch(`/admin/assets/${id}`).set(t.admin).send(body);
  const auditRows = async (entityId: number) =>
    (
      await t.db.query<{ action: string; diff: { before: Record<string, unknown> | null; after: Record<string, unknown> | null }; triggered_by: string }>(
        `SELECT action, diff, triggered_by FROM audit_log WHERE entity = 'asset' AND entity_id = $1 ORDER BY id`,
        [String(entityId)],
      )
    ).rows;
  /** An order holding the asset, the way the order flow leaves it: asset in_use, both sides pointing at each other. */
  const assignToOrder = async (assetId: number, typeId: number): Promise<number> => {
    const o = await t.db.query<{ id: number }>(
      `INSERT INTO orders (asset_type_id, status, source, user_email, user_name, created_by, assigned_asset_id)
       VALUES ($1, 'provisioned', 'api', 'u@example.com', 'U', 'test', $2) RETURNING id`,
      [typeId, assetId],
    );
    const orderId = o.rows[0]!.id;
    await t.db.query(`UPDATE assets SET state = 'in_use', assigned_order_id = $2 WHERE id = $1`, [assetId, orderId]);
    return orderId;
  };

  beforeAll(async () => {
    t = await createTestApp();
    const a = await t.http().post('/admin/asset-types').set(t.admin).send({ name: 'Pool PCs', assignment_model: 'capacity_pooled', pool_size: 4 });
    const b = await t.http().post('/admin/asset-types').set(t.admin).send({ name: 'Other PCs', assignment_model: 'capacity_pooled' });
    poolType = a.body.id;
    otherType = b.body.id;
    readerToken = (
      await t.db.transaction((tx) =>
        mintToken(tx, { name: 'helpdesk-reader', scopes: ['admin:read'], role: 'helpdesk', expiresAt: null }, { role: 'superadmin', triggeredBy: 'system:test' }),
      )
    ).token;
  });
  afterAll(async () => {
    await t.close();
  });

  test('create: 201, free by default, with the type name; audited', async () => {
    const res = await create({ asset_type_id: poolType, name: 'PC-001', attributes: { hostname: 'pc-001.corp.example.com' } });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.any(Number),
      asset_type_id: poolType,
      asset_type_name: 'Pool PCs',
      name: 'PC-001',
      state: 'free',
      attributes: { hostname: 'pc-001.corp.example.com' },
      assigned_order_id: null,
      owner_email: null,
      error_message: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    const audit = await auditRows(res.body.id);
    expect(audit).toEqual([
      {
        action: 'create',
        triggered_by: 'admin:key',
        diff: {
          before: null,
          after: {
            id: res.body.id,
            asset_type_id: poolType,
            name: 'PC-001',
            state: 'free',
            attributes: { hostname: 'pc-001.corp.example.com' },
            assigned_order_id: null,
            owner_email: null,
            error_message: null,
          },
        },
      },
    ]);
  });

  test('create: an instance may start failed, never in_use', async () => {
    const failed = await create({ asset_type_id: poolType, name: 'PC-BROKEN', state: 'failed' });
    expect(failed.status).toBe(201);
    expect(failed.body.state).toBe('failed');
    const inUse = await create({ asset_type_id: poolType, name: 'PC-X', state: 'in_use' });
    expect(inUse.status).toBe(422);
    expect(inUse.body.errors[0].path).toBe('/body/state');
  });

  test('create: 409 for a name the type already has; the same name in another type is fine', async () => {
    const dup = await create({ asset_type_id: poolType, name: 'PC-001' });
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ code: 'CONFLICT', detail: "asset type 'Pool PCs' already has an asset named 'PC-001'" });
    const other = await create({ asset_type_id: otherType, name: 'PC-001' });
    expect(other.status).toBe(201);
  });

  test('create: 422 naming asset_type_id when the type does not exist, and for missing or blank fields', async () => {
    const res = await create({ asset_type_id: 999999, name: 'PC-404' });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ path: '/body/asset_type_id', message: 'asset type 999999 does not exist' }],
    });
    const noName = await create({ asset_type_id: poolType });
    expect(noName.status).toBe(422);
    expect(noName.body.errors[0].path).toBe('/body/name');
    const blank = await create({ asset_type_id: poolType, name: '   ' });
    expect(blank.status).toBe(422);
    expect(blank.body.errors).toEqual([{ path: '/body/name', message: 'must not be blank' }]);
  });

  test('create and update: 422 for a secret-named attribute, at any depth', async () => {
    const res = await create({ asset_type_id: poolType, name: 'PC-SECRET', attributes: { hostname: 'h', local_admin_password: 'x' } });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([
      { path: '/body/attributes/local_admin_password', message: 'holds a secret-named field; keep secrets in the settings, not on assets' },
    ]);
    expect(JSON.stringify(res.body)).not.toContain('"x"');
    const nested = await patch((await create({ asset_type_id: poolType, name: 'PC-SECRET' })).body.id, { attributes: { bmc: { api_key: 'k' } } });
    expect(nested.status).toBe(422);
    expect(nested.body.errors[0].path).toBe('/body/attributes/bmc');
    await t.db.query(`DELETE FROM assets WHERE name = 'PC-SECRET'`);
  });

  test('get by id, 404 for an unknown id', async () => {
    const created = await create({ asset_type_id: poolType, name: 'PC-GET' });
    const res = await t.http().get(`/admin/assets/${created.body.id}`).set(t.admin);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(created.body);
    const missing = await t.http().get('/admin/assets/999999').set(t.admin);
    expect(missing.status).toBe(404);
    expect(missing.body.detail).toBe('asset 999999 does not exist');
  });

  test('list: filters by type and state, pages with a total', async () => {
    const all = await t.http().get(`/admin/assets?asset_type_id=${poolType}`).set(t.admin);
    expect(all.status).toBe(200);
    expect(all.body.total).toBe(3);
    expect(all.body.items.map((a: { name: string }) => a.name)).toEqual(['PC-001', 'PC-BROKEN', 'PC-GET']);
    const page = await t.http().get(`/admin/assets?asset_type_id=${poolType}&limit=1&offset=1`).set(t.admin);
    expect(page.body).toMatchObject({ total: 3, limit: 1, offset: 1, items: [{ name: 'PC-BROKEN' }] });
    const failed = await t.http().get(`/admin/assets?state=failed`).set(t.admin);
    expect(failed.body).toMatchObject({ total: 1, items: [{ name: 'PC-BROKEN', state: 'failed' }] });
    const everything = await t.http().get('/admin/assets').set(t.admin);
    expect(everything.body.total).toBe(4);
    expect((await t.http().get('/admin/assets?state=lost').set(t.admin)).status).toBe(400);
  });

  test('update: rename and replace attributes, audited with the changed fields', async () => {
    const created = await create({ asset_type_id: poolType, name: 'PC-REN', attributes: { a: 1, b: 2 } });
    const res = await patch(created.body.id, { name: 'PC-RENAMED', attributes: { a: 1 } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'PC-RENAMED', attributes: { a: 1 }, state: 'free' });
    const audit = await auditRows(created.body.id);
    expect(audit[1]).toEqual({
      action: 'update',
      triggered_by: 'admin:key',
      diff: { before: { name: 'PC-REN', attributes: { a: 1, b: 2 } }, after: { name: 'PC-RENAMED', attributes: { a: 1 } } },
    });
    const same = await patch(created.body.id, { name: 'PC-RENAMED' });
    expect(same.status).toBe(200);
    expect(await auditRows(created.body.id)).toHaveLength(2);
    const dup = await patch(created.body.id, { name: 'PC-001' });
    expect(dup.status).toBe(409);
    expect(dup.body.detail).toBe("asset type 'Pool PCs' already has an asset named 'PC-001'");
    expect((await patch(999999, { name: 'x' })).status).toBe(404);
    expect((await patch(created.body.id, {})).status).toBe(422);
  });

  test('state: free -> failed -> free (repair); reinstall -> free / failed; never to in_use by hand', async () => {
    const created = await create({ asset_type_id: poolType, name: 'PC-STATE' });
    const id = created.body.id as number;
    expect((await patch(id, { state: 'failed' })).body.state).toBe('failed');
    expect((await patch(id, { state: 'free' })).body.state).toBe('free');

    const toInUse = await patch(id, { state: 'in_use' });
    expect(toInUse.status).toBe(409);
    expect(toInUse.body).toMatchObject({
      code: 'CONFLICT',
      current_state: 'free',
      detail: "asset 'PC-STATE' may not change from free to in_use: an asset becomes in_use only by being assigned to an order",
    });
    const toReinstall = await patch(id, { state: 'reinstall' });
    expect(toReinstall.status).toBe(409);
    expect(toReinstall.body.detail).toBe("asset 'PC-STATE' may not change from free to reinstall: allowed from free: failed");

    await t.db.query(`UPDATE assets SET state = 'reinstall' WHERE id = $1`, [id]);
    expect((await patch(id, { state: 'free' })).body.state).toBe('free');
    await t.db.query(`UPDATE assets SET state = 'reinstall' WHERE id = $1`, [id]);
    expect((await patch(id, { state: 'failed' })).body.state).toBe('failed');

    const audit = await auditRows(id);
    expect(audit.map((a) => `${a.action}:${String(a.diff.after?.['state'])}`)).toEqual([
      'create:free',
      'update:failed',
      'update:free',
      'update:free',
      'update:failed',
    ]);
  });

  test('state: an in_use asset stays with its order; it cannot be deleted; renaming it is fine', async () => {
    const created = await create({ asset_type_id: poolType, name: 'PC-HELD' });
    const id = created.body.id as number;
    const orderId = await assignToOrder(id, poolType);
    const free = await patch(id, { state: 'free' });
    expect(free.status).toBe(409);
    expect(free.body.detail).toBe(
      `asset 'PC-HELD' may not change from in_use to free: it is assigned to order ${orderId}; it is released through that order`,
    );
    expect((await patch(id, { state: 'failed' })).status).toBe(409);
    const del = await t.http().delete(`/admin/assets/${id}`).set(t.admin);
    expect(del.status).toBe(409);
    expect(del.body).toMatchObject({ current_state: 'in_use', detail: "asset 'PC-HELD' is in_use; only free or failed assets can be removed" });
    const renamed = await patch(id, { name: 'PC-HELD-2' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ state: 'in_use', assigned_order_id: orderId });

    // Returned to the pool by the order flow, the asset still carries the order's history: not deletable.
    await t.db.query(`UPDATE assets SET state = 'free', assigned_order_id = NULL WHERE id = $1`, [id]);
    const referenced = await t.http().delete(`/admin/assets/${id}`).set(t.admin);
    expect(referenced.status).toBe(409);
    expect(referenced.body.detail).toBe("asset 'PC-HELD-2' is referenced by 1 order(s); mark it failed instead");
  });

  test('delete: 204 for a free asset, audited; then 404', async () => {
    const created = await create({ asset_type_id: otherType, name: 'PC-GONE' });
    const id = created.body.id as number;
    const del = await t.http().delete(`/admin/assets/${id}`).set(t.admin);
    expect(del.status).toBe(204);
    expect((await t.http().get(`/admin/assets/${id}`).set(t.admin)).status).toBe(404);
    expect((await t.http().delete(`/admin/assets/${id}`).set(t.admin)).status).toBe(404);
    const audit = await auditRows(id);
    expect(audit.map((a) => a.action)).toEqual(['create', 'delete']);
    expect(audit[1]!.diff).toMatchObject({ before: { name: 'PC-GONE', state: 'free' }, after: null });
  });

  test('the asset type read model counts its pool', async () => {
    const res = await t.http().get(`/admin/asset-types/${poolType}`).set(t.admin);
    const list = await t.http().get(`/admin/assets?asset_type_id=${poolType}&limit=500`).set(t.admin);
    const count = (s: string) => list.body.items.filter((a: { state: string }) => a.state === s).length;
    expect(res.body.pool).toMatchObject({
      free: count('free'),
      in_use: count('in_use'),
      reinstall: count('reinstall'),
      failed: count('failed'),
      total: list.body.total,
    });
    expect(res.body.pool.total).toBeGreaterThan(0);
  });

  test('a helpdesk token with admin:read reads but may not write: 403', async () => {
    const list = await t.http().get('/admin/assets').set(bearer(readerToken));
    expect(list.status).toBe(200);
    const id = list.body.items[0].id as number;
    expect((await t.http().get(`/admin/assets/${id}`).set(bearer(readerToken))).status).toBe(200);
    const post = await t.http().post('/admin/assets').set(bearer(readerToken)).send({ asset_type_id: poolType, name: 'PC-NO' });
    expect(post.status).toBe(403);
    expect(post.body.code).toBe('FORBIDDEN');
    expect((await t.http().patch(`/admin/assets/${id}`).set(bearer(readerToken)).send({ state: 'failed' })).status).toBe(403);
    expect((await t.http().delete(`/admin/assets/${id}`).set(bearer(readerToken))).status).toBe(403);
  });

  describe('order-flow commands', () => {
    const flow = { triggeredBy: 'system:test-flow' };
    let flowType: number;
    const newOrder = async () =>
      (
        await t.db.query<{ id: number }>(
          `INSERT INTO orders (asset_type_id, status, source, user_email, user_name, created_by)
           VALUES ($1, 'provisioning', 'api', 'f@example.com', 'F', 'test') RETURNING id`,
          [flowType],
        )
      ).rows[0]!.id;

    beforeAll(async () => {
      const type = await t.http().post('/admin/asset-types').set(t.admin).send({ name: 'Flow PCs', assignment_model: 'capacity_pooled' });
      flowType = type.body.id;
      for (const n of ['F-1', 'F-2', 'F-3']) expect((await create({ asset_type_id: flowType, name: n })).status).toBe(201);
    });

    test('K free instances under 3K concurrent claims: exactly K are handed out, each once', async () => {
      const orders = await Promise.all(Array.from({ length: 9 }, () => newOrder()));
      const claims = await Promise.all(orders.map((o) => t.db.transaction((tx) => claimFreeAsset(tx, flowType, o, flow))));
      const got = claims.filter((c) => c !== undefined);
      expect(got).toHaveLength(3);
      expect(new Set(got.map((c) => c!.name))).toEqual(new Set(['F-1', 'F-2', 'F-3']));
      expect(got.every((c) => c!.state === 'in_use' && c!.assigned_order_id !== null)).toBe(true);
      const pool = await t.http().get(`/admin/asset-types/${flowType}`).set(t.admin);
      expect(pool.body.pool).toMatchObject({ free: 0, in_use: 3, fill_percent: 100, alert: 'critical' });

      // Release per policy, then finish the reinstall both ways.
      const [a, b, c] = got as NonNullable<(typeof got)[number]>[];
      const freed = await t.db.transaction((tx) => releaseAsset(tx, a!.id, a!.assigned_order_id!, 'return_to_pool', flow));
      expect(freed).toMatchObject({ state: 'free', assigned_order_id: null });
      const wiping = await t.db.transaction((tx) => releaseAsset(tx, b!.id, b!.assigned_order_id!, 'reinstall', flow));
      expect(wiping.state).toBe('reinstall');
      expect((await t.db.transaction((tx) => finishReinstall(tx, b!.id, true, flow))).state).toBe('free');
      const wiping2 = await t.db.transaction((tx) => releaseAsset(tx, c!.id, c!.assigned_order_id!, 'reinstall', flow));
      expect(wiping2.state).toBe('reinstall');
      expect((await t.db.transaction((tx) => finishReinstall(tx, c!.id, false, flow))).state).toBe('failed');

      const audit = await auditRows(b!.id);
      expect(audit.map((r) => `${r.action}:${String(r.diff.after?.['state'] ?? '')}`)).toEqual([
        'create:free',
        'assign:in_use',
        'release:reinstall',
        'reinstall_succeeded:free',
      ]);
      expect(audit[1]!.triggered_by).toBe('system:test-flow');
    });

    test('release refuses an asset the order does not hold; finishReinstall refuses one not in reinstall', async () => {
      const list = await t.http().get(`/admin/assets?asset_type_id=${flowType}&state=free`).set(t.admin);
      const freeId = list.body.items[0].id as number;
      await expect(t.db.transaction((tx) => releaseAsset(tx, freeId, 1, 'return_to_pool', flow))).rejects.toMatchObject({
        code: 'CONFLICT',
        message: `asset '${list.body.items[0].name}' is not in use by order 1`,
      });
      await expect(t.db.transaction((tx) => finishReinstall(tx, freeId, true, flow))).rejects.toMatchObject({ code: 'CONFLICT' });
      await expect(t.db.transaction((tx) => finishReinstall(tx, 999999, true, flow))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });
  });
});
