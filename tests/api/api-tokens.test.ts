import { createHash } from 'node:crypto';
import { QueueName } from '../../adapter';
import {
  mintTokenFromCli,
  purgeRetiredTokens,
  registerTokenPurge,
  TOKEN_PURGE_CRON,
  TOKEN_PURGE_TRIGGER,
  TOKEN_PURGE_TZ,
} from '../../server/domain/tokens/api-tokens';
import { createLogger } from '../../adapter';
import { SCOPES } from '../../server/auth/principal';
import { createTestApp, type TestApp } from '../support/app';
import { userBody } from '../support/scim';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

describe('API tokens', () => {
  let t: TestApp;
  let seq = 0;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  /** Mints through the API (as the admin key unless `as` is given) and returns the 201 body. */
  async function mint(body: Record<string, unknown>, as: Record<string, string> = t.admin) {
    const res = await t.http().post('/admin/api-tokens').set(as).send({ name: `tok-${++seq}`, ...body });
    expect(res.status).toBe(201);
    return res.body as { id: number; token: string; name: string; role: string | null };
  }

  describe('minting', () => {
    test('answers 201 with the raw token once and stores only its SHA-256', async () => {
      const res = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'snow-prod', scopes: ['webhook:in'] });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        name: 'snow-prod',
        scopes: ['webhook:in'],
        role: null,
        approver_email: null,
        status: 'active',
        created_by: 'admin:key',
        expires_at: null,
        revoked_at: null,
        last_used_at: null,
      });
      expect(res.body.token).toMatch(/^xpat_[A-Za-z0-9_-]{43}$/);
      expect(res.body.token_prefix).toBe(res.body.token.slice(0, 12));
      expect(res.body).not.toHaveProperty('token_hash');

      const { rows } = await t.db.query<Record<string, unknown>>('SELECT * FROM api_tokens WHERE id = $1', [res.body.id]);
      expect(rows[0]!['token_hash']).toBe(sha256(res.body.token));
      expect(JSON.stringify(rows[0])).not.toContain(res.body.token);

      const audit = await t.db.query<{ diff: unknown; triggered_by: string }>(
        `SELECT diff, triggered_by FROM audit_log WHERE entity = 'api_token' AND entity_id = $1 AND action = 'create'`,
        [String(res.body.id)],
      );
      expect(audit.rows).toHaveLength(1);
      expect(audit.rows[0]!.triggered_by).toBe('admin:key');
      expect(JSON.stringify(audit.rows[0]!.diff)).not.toContain(res.body.token);
      expect(JSON.stringify(audit.rows[0]!.diff)).not.toContain('token_hash');
      expect(audit.rows[0]!.diff).toMatchObject({
        before: null,
        after: { id: res.body.id, name: 'snow-prod', scopes: ['webhook:in'], role: null, created_at: res.body.created_at, revoked_at: null },
      });
    });

    test('the minted token authenticates; the list and the record never show a hash or a raw token', async () => {
      const reader = await mint({ scopes: ['admin:read'] });
      const list = await t.http().get('/admin/api-tokens').set(bearer(reader.token));
      expect(list.status).toBe(200);
      expect(list.body.total).toBeGreaterThanOrEqual(2);
      const text = JSON.stringify(list.body);
      expect(text).not.toContain('token_hash');
      expect(text).not.toContain(reader.token);
      expect(list.body.items.every((i: Record<string, unknown>) => !('token' in i))).toBe(true);

      const one = await t.http().get(`/admin/api-tokens/${reader.id}`).set(bearer(reader.token));
      expect(one.status).toBe(200);
      expect(one.body).toMatchObject({ id: reader.id, name: reader.name, scopes: ['admin:read'], status: 'active' });
      expect(one.body).not.toHaveProperty('token');
      expect(one.body).not.toHaveProperty('token_hash');
      // last_used_at is written in the background after the first use.
      await new Promise((r) => setTimeout(r, 50));
      const again = await t.http().get(`/admin/api-tokens/${reader.id}`).set(t.admin);
      expect(again.body.last_used_at).toEqual(expect.any(String));
    });

    test('bad bodies are 422 naming the field; a duplicate live name is 409', async () => {
      const unknownScope = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'x1', scopes: ['admin:write'] });
      expect(unknownScope.status).toBe(422);
      expect(unknownScope.body.code).toBe('VALIDATION_FAILED');
      expect(unknownScope.body.errors[0].path).toBe('/body/scopes/0');

      const noScopes = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'x2', scopes: [] });
      expect(noScopes.status).toBe(422);
      expect(noScopes.body.errors[0].path).toBe('/body/scopes');

      const badName = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'has space', scopes: ['admin:read'] });
      expect(badName.status).toBe(422);
      expect(badName.body.errors[0].path).toBe('/body/name');

      const badRole = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'x3', scopes: ['admin:read'], role: 'root' });
      expect(badRole.status).toBe(422);
      expect(badRole.body.errors[0].path).toBe('/body/role');

      const past = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'x4', scopes: ['admin:read'], expires_at: '2020-01-01T00:00:00Z' });
      expect(past.status).toBe(422);
      expect(past.body.errors).toEqual([{ path: '/body/expires_at', message: 'must be in the future' }]);

      const notIso = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'x5', scopes: ['admin:read'], expires_at: 'tomorrow' });
      expect(notIso.status).toBe(422);
      expect(notIso.body.errors[0].path).toBe('/body/expires_at');

      await mint({ name: 'dup', scopes: ['admin:read'] });
      const dup = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'dup', scopes: ['orders:write'] });
      expect(dup.status).toBe(409);
      expect(dup.body).toMatchObject({ code: 'CONFLICT', detail: "an active API token named 'dup' already exists" });
    });
  });

  describe('roles and scopes', () => {
    test('the mint guard: an admin-role token cannot mint a superadmin (403) but can mint below it', async () => {
      const admin = await mint({ scopes: ['admin:*'], role: 'admin' });
      const up = await t.http().post('/admin/api-tokens').set(bearer(admin.token)).send({ name: 'escalate', scopes: ['admin:*'], role: 'superadmin' });
      expect(up.status).toBe(403);
      expect(up.body).toMatchObject({ code: 'FORBIDDEN', detail: "a credential with role 'admin' may not mint a token with role 'superadmin'" });

      const approver = await mint({ scopes: ['admin:read'], role: 'approver', approver_email: 'boss@example.com' }, bearer(admin.token));
      expect(approver.role).toBe('approver');
      const peer = await mint({ scopes: ['admin:*'], role: 'admin' }, bearer(admin.token));
      expect(peer.role).toBe('admin');
      const created = await t.http().get(`/admin/api-tokens/${peer.id}`).set(t.admin);
      expect(created.body.created_by).toBe(`admin:token:${admin.name}`);
    });

    test('a superadmin token mints any role; a role-less admin:* token mints as an admin', async () => {
      const root = await mint({ scopes: ['admin:*'], role: 'superadmin' });
      const su = await mint({ scopes: ['admin:*'], role: 'superadmin' }, bearer(root.token));
      expect(su.role).toBe('superadmin');

      const roleless = await mint({ scopes: ['admin:*'] });
      const up = await t.http().post('/admin/api-tokens').set(bearer(roleless.token)).send({ name: 'esc2', scopes: ['admin:*'], role: 'superadmin' });
      expect(up.status).toBe(403);
      const ok = await mint({ scopes: ['admin:read'], role: 'admin' }, bearer(roleless.token));
      expect(ok.role).toBe('admin');
    });

    test('role-gated routes check the role as well as the scope', async () => {
      // auditor holding admin:* still may not mint: minting is for superadmin and admin only.
      const auditor = await mint({ scopes: ['admin:*'], role: 'auditor' });
      const res = await t.http().post('/admin/api-tokens').set(bearer(auditor.token)).send({ name: 'by-auditor', scopes: ['admin:read'], role: 'auditor' });
      expect(res.status).toBe(403);
      expect(res.body.detail).toBe("role 'auditor' may not call createApiToken; allowed: superadmin, admin");
      // …but may read the token list, which admits auditors.
      expect((await t.http().get('/admin/api-tokens').set(bearer(auditor.token))).status).toBe(200);

      const helpdesk = await mint({ scopes: ['admin:*'], role: 'helpdesk' });
      const hd = await t.http().get('/admin/api-tokens').set(bearer(helpdesk.token));
      expect(hd.status).toBe(403);
      expect(hd.body.code).toBe('FORBIDDEN');
    });

    test('a role-less token is checked on scope only', async () => {
      const orders = await mint({ scopes: ['orders:write'] });
      const noScope = await t.http().get('/admin/api-tokens').set(bearer(orders.token));
      expect(noScope.status).toBe(403);
      expect(noScope.body.detail).toBe('requires scope admin:read');

      const reader = await mint({ scopes: ['admin:read'] });
      expect((await t.http().get('/admin/api-tokens').set(bearer(reader.token))).status).toBe(200);
      const write = await t.http().post('/admin/api-tokens').set(bearer(reader.token)).send({ name: 'by-reader', scopes: ['admin:read'] });
      expect(write.status).toBe(403);
      expect(write.body.detail).toBe('requires scope admin:*');
    });

    test('the legacy X-Admin-Key is a virtual superadmin; a wrong key or none is 401', async () => {
      const su = await mint({ scopes: ['admin:*'], role: 'superadmin' });
      expect(su.role).toBe('superadmin');

      const wrong = await t.http().get('/admin/api-tokens').set({ 'X-Admin-Key': 'not-the-key-0123456789' });
      expect(wrong.status).toBe(401);
      expect(wrong.body).toMatchObject({ code: 'UNAUTHENTICATED', detail: 'X-Admin-Key is not valid' });
      const none = await t.http().get('/admin/api-tokens');
      expect(none.status).toBe(401);
      const unknown = await t.http().get('/admin/api-tokens').set(bearer('xpat_' + 'A'.repeat(43)));
      expect(unknown.status).toBe(401);
      expect(unknown.body.detail).toBe('API token is unknown, revoked or expired');
    });
  });

  describe('the mint guard on scopes: nobody grants what they do not hold', () => {
    const attempt = (as: Record<string, string>, body: Record<string, unknown>) =>
      t.http().post('/admin/api-tokens').set(as).send({ name: `tok-${++seq}`, ...body });
    const countNamed = async (name: string) =>
      (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM api_tokens WHERE name = $1', [name])).rows[0]!.n;

    test.each([
      ['role admin', { role: 'admin' }],
      ['role superadmin', { role: 'superadmin' }],
      ['no role', {}],
    ])('an admin:*-only token (%s) may not mint scopes it does not hold: 403 naming them, nothing stored', async (_label, roleOf) => {
      const minter = await mint({ scopes: ['admin:*'], ...roleOf });
      const one = await attempt(bearer(minter.token), { name: `esc-${seq}`, scopes: ['scim:write'] });
      expect(one.status).toBe(403);
      expect(one.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(one.body).toMatchObject({ status: 403, code: 'FORBIDDEN', missing_scopes: ['scim:write'] });
      expect(one.body.detail).toBe('the caller may not grant scopes it does not hold: scim:write');
      expect(await countNamed(`esc-${seq}`)).toBe(0);

      const many = await attempt(bearer(minter.token), { scopes: ['admin:read', 'orders:write', 'hr:leaver', 'admin:*', 'webhook:in', 'scim:write', 'scim:read'] });
      expect(many.status).toBe(403);
      expect(many.body.missing_scopes).toEqual(['orders:write', 'hr:leaver', 'webhook:in', 'scim:write', 'scim:read']);

      // What admin:* does grant: itself and admin:read.
      const ok = await mint({ scopes: ['admin:*', 'admin:read'] }, bearer(minter.token));
      expect(ok.role).toBeNull();
    });

    test('a token holding admin:* and scim:write may mint scim:write, with or without a role', async () => {
      for (const roleOf of [{ role: 'admin' }, {}]) {
        const minter = await mint({ scopes: ['admin:*', 'scim:write'], ...roleOf });
        const made = await mint({ scopes: ['scim:write'] }, bearer(minter.token));
        const rec = await t.http().get(`/admin/api-tokens/${made.id}`).set(t.admin);
        expect(rec.body).toMatchObject({ scopes: ['scim:write'], created_by: `admin:token:${minter.name}` });
        // …but still not a scope beyond its own.
        const more = await attempt(bearer(minter.token), { scopes: ['scim:write', 'scim:read'] });
        expect(more.status).toBe(403);
        expect(more.body.missing_scopes).toEqual(['scim:read']);
      }
    });

    test('the admin key and the CLI (local operator) mint every scope', async () => {
      const all = await mint({ scopes: [...SCOPES] });
      expect((await t.http().get(`/admin/api-tokens/${all.id}`).set(t.admin)).body.scopes).toEqual([...SCOPES]);

      const raw = await mintTokenFromCli(t.db, { name: 'cli-all', scopes: SCOPES.join(','), role: 'admin' });
      const { rows } = await t.db.query<{ scopes: string[]; role: string; created_by: string }>(
        `SELECT scopes, role, created_by FROM api_tokens WHERE name = 'cli-all' AND revoked_at IS NULL`,
      );
      expect(rows).toEqual([{ scopes: [...SCOPES], role: 'admin', created_by: 'system:cli' }]);
      const scim = await t.http().get('/scim/v2/Users').set(bearer(raw)).set('Accept', 'application/scim+json');
      expect(scim.status).toBe(200);
    });

    test('end to end: an admin:*-only token cannot reach SCIM itself, nor through a token it mints', async () => {
      const admin = await mint({ scopes: ['admin:*'], role: 'admin' });
      const scimCreate = (as: Record<string, string>) =>
        t.http().post('/scim/v2/Users').set(as).set('Content-Type', 'application/scim+json').send(JSON.stringify(userBody(`esc-${++seq}@example.com`)));
      expect((await scimCreate(bearer(admin.token))).status).toBe(403);

      const minted = await attempt(bearer(admin.token), { scopes: ['scim:write', 'scim:read'] });
      expect(minted.status).toBe(403);
      expect(minted.body).not.toHaveProperty('token');
      // Had it been minted, this is what it would have done; the admin key's token shows the path is real.
      const byKey = await mint({ scopes: ['scim:write', 'scim:read'] });
      expect((await scimCreate(bearer(byKey.token))).status).toBe(201);
      const audit = await t.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM audit_log WHERE entity = 'api_token' AND action = 'create' AND triggered_by = $1`,
        [`admin:token:${admin.name}`],
      );
      expect(audit.rows[0]!.n).toBe(0);
    });

    test('revoking is not granting: an admin:*-only token revokes a scim:write token it could not mint', async () => {
      const admin = await mint({ scopes: ['admin:*'], role: 'admin' });
      const scim = await mint({ scopes: ['scim:write'] });
      const res = await t.http().delete(`/admin/api-tokens/${scim.id}`).set(bearer(admin.token));
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('revoked');
    });
  });

  describe('approver tokens are bound to one approver', () => {
    test('approver_email is required with role approver, refused with any other role (422 naming it)', async () => {
      const missing = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'appr-none', scopes: ['admin:read'], role: 'approver' });
      expect(missing.status).toBe(422);
      expect(missing.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: '/body/approver_email', message: "is required when role is 'approver'" }] });
      const nulled = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'appr-null', scopes: ['admin:read'], role: 'approver', approver_email: null });
      expect(nulled.status).toBe(422);
      expect(nulled.body.errors[0].path).toBe('/body/approver_email');

      for (const roleOf of [{ role: 'helpdesk' }, { role: 'admin' }, {}]) {
        const res = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'appr-other', scopes: ['admin:read'], approver_email: 'boss@example.com', ...roleOf });
        expect({ roleOf, status: res.status, path: res.body.errors?.[0]?.path }).toEqual({ roleOf, status: 422, path: '/body/approver_email' });
      }
      const notEmail = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'appr-bad', scopes: ['admin:read'], role: 'approver', approver_email: 'boss' });
      expect(notEmail.status).toBe(422);
      expect(notEmail.body.errors[0].path).toBe('/body/approver_email');
      expect((await t.db.query(`SELECT 1 FROM api_tokens WHERE name LIKE 'appr-%'`)).rows).toEqual([]);
    });

    test('the binding is stored lower-cased, answered on the token, and in the mint audit row', async () => {
      const res = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: 'appr-boss', scopes: ['admin:read'], role: 'approver', approver_email: 'Boss@Example.com' });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ role: 'approver', approver_email: 'boss@example.com' });
      expect((await t.http().get(`/admin/api-tokens/${res.body.id}`).set(t.admin)).body.approver_email).toBe('boss@example.com');
      const listed = await t.http().get('/admin/api-tokens?limit=500').set(t.admin);
      expect(listed.body.items.find((i: { id: number }) => i.id === res.body.id).approver_email).toBe('boss@example.com');
      const audit = await t.db.query<{ diff: { after: Record<string, unknown> } }>(
        `SELECT diff FROM audit_log WHERE entity = 'api_token' AND entity_id = $1 AND action = 'create'`,
        [String(res.body.id)],
      );
      expect(audit.rows[0]!.diff.after).toMatchObject({ role: 'approver', approver_email: 'boss@example.com' });
    });

    test('the CLI takes --approver-email, requires it with --role approver and refuses it otherwise', async () => {
      await mintTokenFromCli(t.db, { name: 'cli-appr', scopes: 'admin:read', role: 'approver', approverEmail: ' Mgr@Example.com ' });
      const { rows } = await t.db.query<{ approver_email: string }>(`SELECT approver_email FROM api_tokens WHERE name = 'cli-appr'`);
      expect(rows).toEqual([{ approver_email: 'mgr@example.com' }]);
      await expect(mintTokenFromCli(t.db, { name: 'cli-appr2', scopes: 'admin:read', role: 'approver' })).rejects.toThrow(
        '--approver-email is required with --role approver',
      );
      await expect(mintTokenFromCli(t.db, { name: 'cli-appr3', scopes: 'admin:read', approverEmail: 'a@example.com' })).rejects.toThrow(
        '--approver-email is only for --role approver',
      );
    });

    test('the database refuses a binding on a token of another role', async () => {
      const tok = await mint({ scopes: ['admin:read'], role: 'helpdesk' });
      await expect(t.db.query(`UPDATE api_tokens SET approver_email = 'x@example.com' WHERE id = $1`, [tok.id])).rejects.toThrow(/api_tokens_approver_email_check/);
    });
  });

  describe('listing', () => {
    test('paginates newest first with a total, and filters by status', async () => {
      const a = await mint({ scopes: ['hr:leaver'] });
      const b = await mint({ scopes: ['hr:leaver'] });
      const c = await mint({ scopes: ['hr:leaver'], expires_at: new Date(Date.now() + 3_600_000).toISOString() });
      await t.db.query(`UPDATE api_tokens SET revoked_at = now() WHERE id = $1`, [a.id]);
      await t.db.query(`UPDATE api_tokens SET expires_at = now() - interval '1 minute' WHERE id = $1`, [c.id]);

      const all = await t.http().get('/admin/api-tokens?limit=2&offset=0').set(t.admin);
      expect(all.status).toBe(200);
      expect(all.body.limit).toBe(2);
      expect(all.body.offset).toBe(0);
      expect(all.body.items.map((i: { id: number }) => i.id)).toEqual([c.id, b.id]);
      const next = await t.http().get('/admin/api-tokens?limit=2&offset=2').set(t.admin);
      expect(next.body.items[0].id).toBe(a.id);
      expect(next.body.total).toBe(all.body.total);

      const count = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM api_tokens');
      expect(all.body.total).toBe(count.rows[0]!.n);

      const revoked = await t.http().get('/admin/api-tokens?status=revoked').set(t.admin);
      expect(revoked.body.items.map((i: { id: number }) => i.id)).toContain(a.id);
      expect(revoked.body.items.every((i: { status: string }) => i.status === 'revoked')).toBe(true);
      const expired = await t.http().get('/admin/api-tokens?status=expired').set(t.admin);
      expect(expired.body.items.map((i: { id: number }) => i.id)).toEqual([c.id]);
      expect(expired.body.total).toBe(1);
      const active = await t.http().get('/admin/api-tokens?status=active&limit=500').set(t.admin);
      const ids = active.body.items.map((i: { id: number }) => i.id);
      expect(ids).toContain(b.id);
      expect(ids).not.toContain(a.id);
      expect(ids).not.toContain(c.id);

      const bad = await t.http().get('/admin/api-tokens?status=gone').set(t.admin);
      expect(bad.status).toBe(400);
      expect(bad.body.errors[0].path).toBe('/query/status');
    });

    test('an unknown id is 404, a malformed one 400', async () => {
      const res = await t.http().get('/admin/api-tokens/999999').set(t.admin);
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ code: 'NOT_FOUND', detail: 'no API token with id 999999' });
      expect((await t.http().get('/admin/api-tokens/abc').set(t.admin)).status).toBe(400);
    });
  });

  describe('revocation and expiry', () => {
    test('a revoked token is refused at once; revocation is audited; revoking twice is 409', async () => {
      const victim = await mint({ scopes: ['admin:read'] });
      expect((await t.http().get('/admin/api-tokens').set(bearer(victim.token))).status).toBe(200);

      const res = await t.http().delete(`/admin/api-tokens/${victim.id}`).set(t.admin);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: victim.id, status: 'revoked', revoked_at: expect.any(String) });

      const after = await t.http().get('/admin/api-tokens').set(bearer(victim.token));
      expect(after.status).toBe(401);
      expect(after.body.code).toBe('UNAUTHENTICATED');

      const audit = await t.db.query<{ diff: { before: Record<string, unknown>; after: Record<string, unknown> }; triggered_by: string }>(
        `SELECT diff, triggered_by FROM audit_log WHERE entity = 'api_token' AND entity_id = $1 AND action = 'revoke'`,
        [String(victim.id)],
      );
      expect(audit.rows).toHaveLength(1);
      expect(audit.rows[0]!.triggered_by).toBe('admin:key');
      expect(audit.rows[0]!.diff).toEqual({ before: { revoked_at: null }, after: { revoked_at: res.body.revoked_at } });

      const twice = await t.http().delete(`/admin/api-tokens/${victim.id}`).set(t.admin);
      expect(twice.status).toBe(409);
      expect(twice.body.code).toBe('CONFLICT');
      expect((await t.http().delete('/admin/api-tokens/999999').set(t.admin)).status).toBe(404);

      // The name of a revoked token is free again.
      const reuse = await t.http().post('/admin/api-tokens').set(t.admin).send({ name: victim.name, scopes: ['admin:read'] });
      expect(reuse.status).toBe(201);
    });

    test('an admin cannot revoke a superadmin token; a superadmin can', async () => {
      const su = await mint({ scopes: ['admin:*'], role: 'superadmin' });
      const admin = await mint({ scopes: ['admin:*'], role: 'admin' });
      const res = await t.http().delete(`/admin/api-tokens/${su.id}`).set(bearer(admin.token));
      expect(res.status).toBe(403);
      expect(res.body.detail).toBe("a credential with role 'admin' may not revoke a token with role 'superadmin'");
      expect((await t.http().get('/admin/api-tokens').set(bearer(su.token))).status).toBe(200);
      const byRoot = await t.http().delete(`/admin/api-tokens/${admin.id}`).set(bearer(su.token));
      expect(byRoot.status).toBe(200);
      const audit = await t.db.query<{ triggered_by: string }>(
        `SELECT triggered_by FROM audit_log WHERE entity = 'api_token' AND entity_id = $1 AND action = 'revoke'`,
        [String(admin.id)],
      );
      expect(audit.rows[0]!.triggered_by).toBe(`admin:token:${su.name}`);
    });

    test('an expired token is 401', async () => {
      const tok = await mint({ scopes: ['admin:read'], expires_at: new Date(Date.now() + 86_400_000).toISOString() });
      expect((await t.http().get('/admin/api-tokens').set(bearer(tok.token))).status).toBe(200);
      await t.db.query(`UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, [tok.id]);
      const res = await t.http().get('/admin/api-tokens').set(bearer(tok.token));
      expect(res.status).toBe(401);
      expect(res.body.detail).toBe('API token is unknown, revoked or expired');
      const rec = await t.http().get(`/admin/api-tokens/${tok.id}`).set(t.admin);
      expect(rec.body.status).toBe('expired');
    });
  });

  describe('the daily purge', () => {
    const DAY = 86_400_000;
    async function retired(kind: 'revoked' | 'expired', daysAgo: number): Promise<number> {
      const { id } = await mint({ scopes: ['hr:leaver'] });
      const column = kind === 'revoked' ? 'revoked_at' : 'expires_at';
      await t.db.query(`UPDATE api_tokens SET ${column} = $1 WHERE id = $2`, [new Date(Date.now() - daysAgo * DAY), id]);
      return id;
    }
    const exists = async (id: number) => (await t.db.query('SELECT 1 FROM api_tokens WHERE id = $1', [id])).rows.length === 1;
    const setPurgeDays = async (days: number | null) => {
      const res = await t.http().put('/admin/settings/api_tokens').set(t.admin).send({ purge_after_days: days });
      expect(res.status).toBe(200);
    };

    test('keeps every token while purge_after_days is unset or 0', async () => {
      const old = await retired('revoked', 400);
      expect(await purgeRetiredTokens(t.db)).toEqual({ purged: [], cutoff: null });
      await setPurgeDays(0);
      expect((await purgeRetiredTokens(t.db)).purged).toEqual([]);
      expect(await exists(old)).toBe(true);
      await setPurgeDays(null);
    });

    test('hard-deletes tokens revoked or expired longer ago than purge_after_days, each audited', async () => {
      const oldRevoked = await retired('revoked', 31);
      const oldExpired = await retired('expired', 45);
      const recentRevoked = await retired('revoked', 29);
      const recentExpired = await retired('expired', 2);
      const live = await mint({ scopes: ['hr:leaver'] });
      await setPurgeDays(30);

      const now = new Date();
      const result = await purgeRetiredTokens(t.db, now);
      expect(result.cutoff).toEqual(new Date(now.getTime() - 30 * DAY));
      expect(result.purged).toEqual(expect.arrayContaining([oldRevoked, oldExpired]));
      expect(result.purged).not.toEqual(expect.arrayContaining([recentRevoked]));
      for (const id of [oldRevoked, oldExpired]) expect(await exists(id)).toBe(false);
      for (const id of [recentRevoked, recentExpired, live.id]) expect(await exists(id)).toBe(true);

      const audit = await t.db.query<{ entity_id: string; triggered_by: string; diff: { before: Record<string, unknown>; after: unknown } }>(
        `SELECT entity_id, triggered_by, diff FROM audit_log WHERE entity = 'api_token' AND action = 'purge' ORDER BY id`,
      );
      const purgedIds = audit.rows.map((r) => Number(r.entity_id));
      expect(purgedIds).toEqual(expect.arrayContaining([oldRevoked, oldExpired]));
      expect(audit.rows.length).toBe(result.purged.length);
      for (const r of audit.rows) {
        expect(r.triggered_by).toBe('system:api-token-purge-daily');
        expect(r.diff.after).toBeNull();
        expect(r.diff.before).toMatchObject({ id: Number(r.entity_id) });
        expect(r.diff.before).not.toHaveProperty('token_hash');
      }
      expect(TOKEN_PURGE_TRIGGER).toBe('system:api-token-purge-daily');

      // A later `now` reaches the recent ones too.
      const later = await purgeRetiredTokens(t.db, new Date(now.getTime() + 29 * DAY));
      expect(later.purged).toEqual(expect.arrayContaining([recentRevoked, recentExpired]));
      expect(await exists(live.id)).toBe(true);
      await setPurgeDays(null);
    });

    test('registerTokenPurge schedules the daily cron on api-token-purge-daily and works its jobs', async () => {
      const logger = createLogger({ silent: true });
      await registerTokenPurge(t.queue, t.db, logger);
      const schedules = await t.queue.getSchedules();
      const mine = schedules.find((s) => s.name === QueueName.API_TOKEN_PURGE);
      expect(QueueName.API_TOKEN_PURGE).toBe('api-token-purge-daily');
      expect(mine).toMatchObject({ name: 'api-token-purge-daily', cron: TOKEN_PURGE_CRON, tz: TOKEN_PURGE_TZ });
      // Registering again (a second process, a restart) keeps one schedule.
      await registerTokenPurge(t.queue, t.db, logger);
      expect((await t.queue.getSchedules()).filter((s) => s.name === QueueName.API_TOKEN_PURGE)).toHaveLength(1);

      // A job on the queue (what the cron sends each day) runs the purge in the worker.
      const victim = await retired('revoked', 10);
      await setPurgeDays(5);
      await t.queue.send(t.db, QueueName.API_TOKEN_PURGE, {});
      const deadline = Date.now() + 15_000;
      while ((await exists(victim)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(await exists(victim)).toBe(false);
      await setPurgeDays(null);
    });
  });
});
