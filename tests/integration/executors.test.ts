/**
 * The task executors against real things: script modules stored and versioned in the database (PGlite, or
 * PostgreSQL when DATABASE_URL is set) and run as subprocesses, and the directory executor against the Samba AD
 * domain controller on loopback (tests/support/samba-ad.ts). The HTTP executors have their own files next to the
 * code (workflows/executors/*.test.ts) with real loopback servers.
 */
import { readFileSync } from 'node:fs';
import { createDirectory, type Directory } from '../../adapter/directory';
import { PgErrorCode, sqlState } from '../../adapter';
import {
  createDirectoryExecutor,
  createScriptExecutor,
  createScriptModuleVersion,
  getScriptModule,
  listScriptModules,
  listScriptModuleVersions,
  scriptModuleExists,
  ScriptModuleInputError,
} from '../../workflows/executors';
import type { DirectoryOperation } from '../../workflows/document';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { compiledTask, stepContext } from '../support/executors';
import { ensureSambaAd, type SambaAd } from '../support/samba-ad';

describe('script modules: stored and versioned in the database', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  test('saving adds the next version; latest and specific versions are read back', async () => {
    const v1 = await createScriptModuleVersion(t.db, { name: 'ad.cleanup', runtime: 'bash', body: 'echo \'{"v":1}\'', createdBy: 'admin:key', category: 'directory' });
    expect(v1).toEqual({
      name: 'ad.cleanup',
      version: 1,
      category: 'directory',
      platform: 'any',
      runtime: 'bash',
      description: '',
      body: 'echo \'{"v":1}\'',
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      createdBy: 'admin:key',
    });
    const v2 = await createScriptModuleVersion(t.db, {
      name: 'ad.cleanup',
      runtime: 'python3',
      body: 'print(\'{"v":2}\')',
      createdBy: 'admin:other',
      category: 'directory',
      platform: 'linux',
      description: 'rewritten in python',
    });
    expect(v2).toMatchObject({ version: 2, runtime: 'python3', platform: 'linux', createdBy: 'admin:other' });
    expect(await getScriptModule(t.db, 'ad.cleanup')).toEqual(v2);
    expect(await getScriptModule(t.db, 'ad.cleanup', 1)).toEqual(v1);
    expect(await getScriptModule(t.db, 'ad.cleanup', 3)).toBeUndefined();
    expect(await getScriptModule(t.db, 'nope')).toBeUndefined();
    expect(await scriptModuleExists(t.db, 'ad.cleanup', 2)).toBe(true);
    expect(await scriptModuleExists(t.db, 'ad.cleanup', 3)).toBe(false);
    expect((await listScriptModuleVersions(t.db, 'ad.cleanup')).map((v) => [v.version, v.runtime])).toEqual([
      [2, 'python3'],
      [1, 'bash'],
    ]);
    expect(await listScriptModuleVersions(t.db, 'nope')).toEqual([]);
  });

  test('the listing shows each module once (latest version, no body, version count), by name, filterable by category', async () => {
    await createScriptModuleVersion(t.db, { name: 'sccm.probe', runtime: 'node', body: 'console.log("{}")', createdBy: 'test', category: 'sccm' });
    const all = await listScriptModules(t.db);
    expect(all.map((m) => [m.name, m.version, m.versions, m.category])).toEqual([
      ['ad.cleanup', 2, 2, 'directory'],
      ['sccm.probe', 1, 1, 'sccm'],
    ]);
    expect(all[0]).not.toHaveProperty('body');
    expect((await listScriptModules(t.db, { category: 'sccm' })).map((m) => m.name)).toEqual(['sccm.probe']);
  });

  test('concurrent saves of one module get consecutive versions', async () => {
    const saved = await Promise.all(
      Array.from({ length: 8 }, (_, i) => createScriptModuleVersion(t.db, { name: 'race', runtime: 'bash', body: `echo ${i}`, createdBy: 'test' })),
    );
    expect(saved.map((m) => m.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('concurrent saves inside transactions (as the API makes them) also get consecutive versions', async () => {
    const saved = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        t.db.transaction(async (tx) => {
          const m = await createScriptModuleVersion(tx, { name: 'race-tx', runtime: 'bash', body: `echo ${i}`, createdBy: 'test' });
          // The transaction stays usable after a lost race: a later statement in it still works.
          await tx.query('SELECT 1');
          return m;
        }),
      ),
    );
    expect(saved.map((m) => m.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('inside a transaction: rolled back with it', async () => {
    await expect(
      t.db.transaction(async (tx) => {
        await createScriptModuleVersion(tx, { name: 'rolled', runtime: 'bash', body: 'true', createdBy: 'test' });
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await getScriptModule(t.db, 'rolled')).toBeUndefined();
  });

  test.each([
    [{ name: '../etc', runtime: 'bash', body: 'x' }, 'name'],
    [{ name: 'ok', runtime: 'ruby', body: 'x' }, 'runtime'],
    [{ name: 'ok', runtime: 'bash', body: 'x', platform: 'mac' }, 'platform'],
    [{ name: 'ok', runtime: 'bash', body: '   ' }, 'body'],
    [{ name: 'ok', runtime: 'bash', body: 'x'.repeat(300_000) }, 'body'],
    [{ name: 'ok', runtime: 'bash', body: 'x', category: '' }, 'category'],
  ])('invalid input %# is refused naming the field', async (input, field) => {
    const err = await createScriptModuleVersion(t.db, { createdBy: 'test', ...(input as { name: string; runtime: 'bash'; body: string }) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScriptModuleInputError);
    expect((err as ScriptModuleInputError).field).toBe(field);
  });

  test('the table enforces runtime, platform and (name, version) uniqueness itself', async () => {
    const insert = (runtime: string, platform: string, version = 1) =>
      t.db.query(`INSERT INTO script_modules (name, version, runtime, platform, body, created_by) VALUES ('raw', $1, $2, $3, 'x', 'test')`, [version, runtime, platform]);
    expect(sqlState(await insert('ruby', 'any').catch((e: unknown) => e))).toBe(PgErrorCode.CHECK_VIOLATION);
    expect(sqlState(await insert('bash', 'mac').catch((e: unknown) => e))).toBe(PgErrorCode.CHECK_VIOLATION);
    await insert('bash', 'any');
    expect(sqlState(await insert('node', 'any').catch((e: unknown) => e))).toBe(PgErrorCode.UNIQUE_VIOLATION);
  });

  test('the script executor runs exactly the pinned version', async () => {
    await createScriptModuleVersion(t.db, { name: 'pinned', runtime: 'bash', body: `printf '{"v":1,"who":"%s"}' "$PARAM_who"`, createdBy: 'test' });
    await createScriptModuleVersion(t.db, { name: 'pinned', runtime: 'node', body: `console.log(JSON.stringify({ v: 2, who: process.env.PARAM_who }))`, createdBy: 'test' });
    await createScriptModuleVersion(t.db, { name: 'pinned', runtime: 'python3', body: `import os, json; print(json.dumps({"v": 3, "who": os.environ["PARAM_who"]}))`, createdBy: 'test' });
    const run = createScriptExecutor({ db: t.db });
    for (const version of [1, 2, 3]) {
      const result = await run(compiledTask({ kind: 'script', script: { module: 'pinned', version } }, { timeoutMs: 20_000 }), { who: 'jdoe' }, stepContext());
      expect(result).toEqual({ ok: true, output: { v: version, who: 'jdoe' } });
    }
  });
});

describe('directory executor against Samba AD', () => {
  let ad: SambaAd;
  let dir: Directory;
  beforeAll(async () => {
    ad = await ensureSambaAd();
    dir = createDirectory({ server: ad.host, security: 'ldaps', caCertPem: readFileSync(ad.caCertPath, 'utf8'), bindDn: ad.bindDn, bindPassword: ad.bindPassword, baseDn: ad.seed.ou });
  }, 300_000);
  afterAll(() => dir?.close());

  const exec = (operation: DirectoryOperation, input: Record<string, unknown>) =>
    createDirectoryExecutor({ getDirectory: () => dir })(compiledTask({ kind: 'directory', operation, incoming: {} }), input, stepContext());

  test('findUser by sAMAccountName and by UPN; an unknown user is found: false', async () => {
    const byName = await exec('findUser', { user: 'jdoe' });
    expect(byName).toEqual({
      ok: true,
      output: {
        found: true,
        user: expect.objectContaining({ dn: ad.seed.users.jdoe, sAMAccountName: 'jdoe', userPrincipalName: 'jdoe@test.local', mail: 'jdoe@test.local', displayName: 'John Doe' }),
      },
    });
    expect((byName as { output: { user: { attributes: Record<string, unknown> } } }).output.user.attributes).toMatchObject({
      department: 'Engineering',
      cost_center: 'CC-200',
      enabled: true,
      managerDn: ad.seed.users.manager,
    });
    expect(await exec('findUser', { user: 'jdoe@test.local', attributes: ['title'] })).toMatchObject({ ok: true, output: { user: { attributes: { title: 'Engineer' } } } });
    expect(await exec('findUser', { user: 'no-such-user' })).toEqual({ ok: true, output: { found: false, user: null } });
  });

  test("findManager resolves jdoe's manager; a user without one is found: false", async () => {
    expect(await exec('findManager', { user: 'jdoe' })).toMatchObject({ ok: true, output: { found: true, manager: { dn: ad.seed.users.manager, sAMAccountName: 'amanager' } } });
    expect(await exec('findManager', { user: 'amanager' })).toEqual({ ok: true, output: { found: false, manager: null } });
  });

  test('addGroupMember / removeGroupMember change membership once, by name and by DN', async () => {
    const user = 'svc-readonly';
    // Another run may have stopped half-way.
    await exec('removeGroupMember', { user, group: 'Provisio-Sandbox' });
    try {
      expect(await exec('addGroupMember', { user, group: 'Provisio-Sandbox' })).toEqual({ ok: true, output: { changed: true } });
      expect(await exec('addGroupMember', { user, group: ad.seed.groups.sandbox })).toEqual({ ok: true, output: { changed: false } });
      expect(await dir.checkMembership({ by: 'sAMAccountName', value: user }, { by: 'dn', value: ad.seed.groups.sandbox })).toEqual({ member: true, direct: true });
      expect(await exec('removeGroupMember', { user, group: 'Provisio-Sandbox' })).toEqual({ ok: true, output: { changed: true } });
      expect(await exec('removeGroupMember', { user, group: 'Provisio-Sandbox' })).toEqual({ ok: true, output: { changed: false } });
    } finally {
      await dir.removeGroupMember({ by: 'sAMAccountName', value: 'Provisio-Sandbox' }, { by: 'sAMAccountName', value: user }).catch(() => undefined);
    }
  });

  test('setAttribute writes and clears; a protected attribute is a non-retryable DIRECTORY error', async () => {
    const user = 'svc-readonly';
    try {
      expect(await exec('setAttribute', { user, attribute: 'telephoneNumber', value: '+41 44 000 00 01' })).toEqual({ ok: true, output: { changed: true } });
      expect(await exec('setAttribute', { user, attribute: 'telephoneNumber', value: '+41 44 000 00 01' })).toEqual({ ok: true, output: { changed: false } });
      expect(await exec('setAttribute', { user, attribute: 'telephoneNumber', value: null })).toEqual({ ok: true, output: { changed: true } });
    } finally {
      await dir.setAttributes({ by: 'sAMAccountName', value: user }, { telephoneNumber: null }).catch(() => undefined);
    }
    expect(await exec('setAttribute', { user, attribute: 'userAccountControl', value: '512' })).toMatchObject({
      ok: false,
      error: { code: 'DIRECTORY', retryable: false, message: expect.stringContaining('ATTRIBUTE_NOT_ALLOWED') },
    });
  });

  test('a wrong service password is a non-retryable DIRECTORY error without the password in it', async () => {
    const bad = createDirectory({ server: ad.host, security: 'ldaps', caCertPem: readFileSync(ad.caCertPath, 'utf8'), bindDn: ad.bindDn, bindPassword: 'Wr0ng!Secret', baseDn: ad.seed.ou });
    try {
      const result = await createDirectoryExecutor({ getDirectory: () => bad })(compiledTask({ kind: 'directory', operation: 'findUser', incoming: {} }), { user: 'jdoe' }, stepContext());
      expect(result).toMatchObject({ ok: false, error: { code: 'DIRECTORY', retryable: false, message: expect.stringContaining('INVALID_CREDENTIALS') } });
      expect(JSON.stringify(result)).not.toContain('Wr0ng!Secret');
    } finally {
      await bad.close();
    }
  });
});
