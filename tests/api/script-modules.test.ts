import type { Role, Scope } from '../../server/auth/principal';
import { mintToken } from '../../server/domain/tokens/api-tokens';
import { createTestApp, type TestApp } from '../support/app';

describe('/admin/script-modules', () => {
  let t: TestApp;
  let auditorToken: string;
  let helpdeskToken: string;

  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  const mint = async (name: string, scopes: Scope[], role: Role | null) =>
    (await t.db.transaction((tx) => mintToken(tx, { name, scopes, role, expiresAt: null }, { role: 'superadmin', triggeredBy: 'system:test' }))).token;
  const save = (body: Record<string, unknown>) => t.http().post('/admin/script-modules').set(t.admin).send(body);

  const probe = { name: 'sccm.device-status', runtime: 'bash', body: `printf '{"device":"%s"}' "$PARAM_device"`, category: 'sccm', description: 'Is the device online?' };

  beforeAll(async () => {
    t = await createTestApp();
    auditorToken = await mint('auditor', ['admin:read'], 'auditor');
    helpdeskToken = await mint('helpdesk', ['admin:read'], 'helpdesk');
  });
  afterAll(() => t.close());

  test('POST saves version 1, then the next version; each save is audited with the body by digest', async () => {
    const first = await save(probe);
    expect(first.status).toBe(201);
    expect(first.body).toEqual({
      name: 'sccm.device-status',
      version: 1,
      category: 'sccm',
      platform: 'any',
      runtime: 'bash',
      description: 'Is the device online?',
      body: probe.body,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      created_by: expect.stringMatching(/^admin:/),
    });
    const second = await save({ ...probe, runtime: 'python3', platform: 'linux', body: 'print("{}")' });
    expect(second.status).toBe(201);
    expect(second.body).toMatchObject({ version: 2, runtime: 'python3', platform: 'linux', category: 'sccm' });

    const { rows } = await t.db.query<{ entity_id: string; action: string; diff: { after: Record<string, unknown> } }>(
      `SELECT entity_id, action, diff FROM audit_log WHERE entity = 'script_module' ORDER BY id`,
    );
    expect(rows.map((r) => [r.entity_id, r.action])).toEqual([
      ['sccm.device-status@1', 'create_version'],
      ['sccm.device-status@2', 'create_version'],
    ]);
    expect(rows[0]!.diff.after).toMatchObject({ version: 1, runtime: 'bash', body_sha256: expect.stringMatching(/^[0-9a-f]{64}$/), body_bytes: probe.body.length });
    expect(JSON.stringify(rows[0]!.diff)).not.toContain('PARAM_device');
  });

  test('GET list: each module once with its latest version and version count; filter by category', async () => {
    await save({ name: 'ad.cleanup', runtime: 'node', body: 'console.log("{}")', category: 'directory' });
    const res = await t.http().get('/admin/script-modules').set(bearer(auditorToken));
    expect(res.status).toBe(200);
    expect(res.body.items.map((m: { name: string; version: number; versions: number }) => [m.name, m.version, m.versions])).toEqual([
      ['ad.cleanup', 1, 1],
      ['sccm.device-status', 2, 2],
    ]);
    expect(res.body.items[0]).not.toHaveProperty('body');
    const sccm = await t.http().get('/admin/script-modules?category=sccm').set(t.admin);
    expect(sccm.status).toBe(200);
    expect(sccm.body.items.map((m: { name: string }) => m.name)).toEqual(['sccm.device-status']);
  });

  test('GET /{name}: latest version with body and the history; GET /{name}/versions/{version}: that version', async () => {
    const res = await t.http().get('/admin/script-modules/sccm.device-status').set(t.admin);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: 2, runtime: 'python3', body: 'print("{}")' });
    expect(res.body.versions.map((v: { version: number; runtime: string }) => [v.version, v.runtime])).toEqual([
      [2, 'python3'],
      [1, 'bash'],
    ]);
    const v1 = await t.http().get('/admin/script-modules/sccm.device-status/versions/1').set(bearer(auditorToken));
    expect(v1.status).toBe(200);
    expect(v1.body).toMatchObject({ version: 1, runtime: 'bash', body: probe.body });
  });

  test('404 for an unknown module or version', async () => {
    const missing = await t.http().get('/admin/script-modules/nope').set(t.admin);
    expect(missing.status).toBe(404);
    expect(missing.body.detail).toBe("script module 'nope' does not exist");
    const noVersion = await t.http().get('/admin/script-modules/sccm.device-status/versions/9').set(t.admin);
    expect(noVersion.status).toBe(404);
    expect(noVersion.body.detail).toBe("script module 'sccm.device-status' has no version 9");
  });

  test('422 names the invalid field', async () => {
    const badRuntime = await save({ ...probe, runtime: 'ruby' });
    expect(badRuntime.status).toBe(422);
    expect(JSON.stringify(badRuntime.body.errors)).toContain('/body/runtime');
    const badName = await save({ ...probe, name: '../etc/passwd' });
    expect(badName.status).toBe(422);
    expect(JSON.stringify(badName.body.errors)).toContain('/body/name');
    const blank = await save({ ...probe, body: '   ' });
    expect(blank.status).toBe(422);
    expect(blank.body.errors).toEqual([expect.objectContaining({ path: '/body/body' })]);
  });

  test('roles: auditors read but may not save; helpdesk may not read', async () => {
    expect((await t.http().post('/admin/script-modules').set(bearer(auditorToken)).send(probe)).status).toBe(403);
    expect((await t.http().get('/admin/script-modules').set(bearer(helpdeskToken))).status).toBe(403);
    expect((await t.http().get('/admin/script-modules')).status).toBe(401);
  });
});
