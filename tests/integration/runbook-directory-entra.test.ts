/**
 * Runbook `directory` tasks on a cloud-only tenant: with `entra_id.use_as_directory` saved, the same workflow
 * document that drives AD (findUser, findManager, addGroupMember, setAttribute, removeGroupMember) runs on the
 * service's engine against a loopback Microsoft Graph (tests/support/graph-server.ts) and changes its state; a
 * found user's `dn` (an Entra object id) passes on to the next task unchanged. A Graph refusal fails the run with
 * the step's DIRECTORY error naming the Graph code.
 */
import { createTestApp, type TestApp } from '../support/app';
import { testEngine } from '../support/db';
import { TEST_ENGINE_CONFIG } from '../support/engine-config';
import { startGraphServer, type GraphServer } from '../support/graph-server';
import { createMemoryLogger, type MemoryLogger } from '../support/memory-logger';

jest.setTimeout(90_000);

const WORKFLOW = {
  name: 'Entra - grant desk access',
  version: 1,
  description: 'directory tasks as an AD runbook writes them',
  inputSchema: {
    type: 'object',
    properties: { user: { type: 'string' }, group: { type: 'string' }, formerGroup: { type: 'string' } },
    required: ['user', 'group', 'formerGroup'],
    additionalProperties: false,
  },
  tasks: {
    find: { kind: 'directory', operation: 'findUser', incoming: { user: '{{inputs.user}}', attributes: ['department'] }, nodeLocation: { x: 0, y: 100 } },
    manager: { kind: 'directory', operation: 'findManager', incoming: { user: '{{inputs.user}}' }, nodeLocation: { x: 0, y: 200 } },
    grant: {
      kind: 'directory',
      operation: 'addGroupMember',
      incoming: { user: '{{steps.find.output.user.dn}}', group: '{{inputs.group}}' },
      nodeLocation: { x: 0, y: 300 },
    },
    label: {
      kind: 'directory',
      operation: 'setAttribute',
      incoming: { user: '{{steps.find.output.user.dn}}', attribute: 'department', value: 'Desk {{steps.manager.output.manager.displayName}}' },
      nodeLocation: { x: 0, y: 400 },
    },
    revoke: {
      kind: 'directory',
      operation: 'removeGroupMember',
      incoming: { user: '{{inputs.user}}', group: '{{inputs.formerGroup}}' },
      nodeLocation: { x: 0, y: 500 },
    },
  },
  transitions: {
    workflow_start: { find: { type: 'standard', state: 'success' } },
    find: { manager: { type: 'standard', state: 'success' } },
    manager: { grant: { type: 'standard', state: 'success' } },
    grant: { label: { type: 'standard', state: 'success' } },
    label: { revoke: { type: 'standard', state: 'success' } },
    revoke: { workflow_end: { type: 'standard', state: 'success' } },
  },
};

let g: GraphServer;
let mem: MemoryLogger;
let t: TestApp;

async function runToEnd(inputs: Record<string, unknown>): Promise<{ status: string; steps: { stepId: string; status: string; output: unknown; error: unknown }[] }> {
  const engine = t.workflows!.engine;
  const run = await t.db.transaction((tx) => engine.startRun(tx, { workflow: WORKFLOW.name, inputs, createdBy: 'test' }));
  let last: unknown;
  for (let i = 0; i < 600; i++) {
    const r = await engine.getRun(run.id);
    if (['succeeded', 'failed', 'cancelled'].includes(r.status)) return r as never;
    last = r;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`run ${run.id} did not end within 60 s: ${JSON.stringify(last)}`);
}

const membersOf = (nickname: string): string[] => {
  const group = [...g.groups.values()].find((x) => x.mailNickname === nickname);
  return [...(group?.members ?? [])].sort();
};

beforeAll(async () => {
  mem = createMemoryLogger();
  g = await startGraphServer({
    users: [
      { userPrincipalName: 'lead@contoso.test', mail: 'lead@contoso.test', displayName: 'Lea Lead' },
      { userPrincipalName: 'ana@contoso.test', mail: 'ana@contoso.test', mailNickname: 'ana', displayName: 'Ana', department: 'Controlling', manager: 'lead@contoso.test' },
    ],
    groups: [
      { displayName: 'Desk Users', mailNickname: 'desk-users', members: [] },
      { displayName: 'Old Desk', mailNickname: 'old-desk', members: ['ana@contoso.test'] },
    ],
  });
  t = await createTestApp({}, { workflows: { config: TEST_ENGINE_CONFIG }, logger: mem.logger });
  const saved = await t.http().put('/admin/settings/entra_id').set(t.admin).send({
    use_as_directory: true,
    tenant_id: g.tenantId,
    client_id: g.clientId,
    client_secret: g.clientSecret,
    authority_host: g.url,
    graph_base_url: g.graphBaseUrl,
    ca_cert_pem: g.caPem,
  });
  expect(saved.status).toBe(200);
  const created = await t.http().post('/admin/workflows').set(t.admin).send(WORKFLOW);
  expect({ status: created.status, body: created.status === 201 ? null : created.body }).toEqual({ status: 201, body: null });
  await t.workflows!.startWorkers();
});

afterAll(async () => {
  await t?.close();
  await g?.close();
});

describe(`runbook directory tasks with Entra ID as the directory (${testEngine})`, () => {
  test('find, manager, grant by object id, set an attribute, revoke: the run completes and Graph holds the changes', async () => {
    const anaId = g.idOf('ana@contoso.test');
    const run = await runToEnd({ user: 'ana@contoso.test', group: 'desk-users', formerGroup: 'Old Desk' });
    expect({ status: run.status, failed: run.steps.filter((s) => s.status !== 'succeeded').map((s) => [s.stepId, s.error]) }).toEqual({ status: 'succeeded', failed: [] });

    const output = Object.fromEntries(run.steps.map((s) => [s.stepId, s.output]));
    expect(output['find']).toMatchObject({ found: true, user: { dn: anaId, sAMAccountName: 'ana', userPrincipalName: 'ana@contoso.test', attributes: { department: 'Controlling' } } });
    expect(output["manager"]).toMatchObject({ found: true, manager: { userPrincipalName: 'lead@contoso.test', displayName: 'Lea Lead' } });
    expect(output['grant']).toEqual({ changed: true });
    expect(output['revoke']).toEqual({ changed: true });

    expect(membersOf('desk-users')).toEqual([anaId]);
    expect(membersOf('old-desk')).toEqual([]);
    expect(g.users.get(anaId)?.['department']).toBe('Desk Lea Lead');
    // The writes went to Graph's own endpoints for them.
    const writes = g.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.url.replace(/\?.*$/, '')}`);
    expect(writes).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^POST \/v1\.0\/groups\/[0-9a-f-]{36}\/members\/\$ref$/),
        `PATCH /v1.0/users/${anaId}`,
        expect.stringMatching(new RegExp(`^DELETE /v1\\.0/groups/[0-9a-f-]{36}/members/${anaId}/\\$ref$`)),
      ]),
    );
  });

  test('the same run again changes nothing and says so', async () => {
    const run = await runToEnd({ user: 'ana@contoso.test', group: 'desk-users', formerGroup: 'Old Desk' });
    expect(run.status).toBe('succeeded');
    const output = Object.fromEntries(run.steps.map((s) => [s.stepId, s.output]));
    expect([output['grant'], output['revoke']]).toEqual([{ changed: false }, { changed: false }]);
  });

  test('a Graph refusal (403 Authorization_RequestDenied on writes) fails the run at the write with DIRECTORY, the Graph code named', async () => {
    g.deny = 'writes';
    try {
      const run = await runToEnd({ user: 'ana@contoso.test', group: 'old-desk', formerGroup: 'desk-users' });
      expect(run.status).toBe('failed');
      const grant = run.steps.find((s) => s.stepId === 'grant');
      expect(grant?.status).toBe('failed');
      expect(JSON.stringify(grant?.error)).toMatch(/DIRECTORY/);
      expect(JSON.stringify(grant?.error)).toMatch(/Authorization_RequestDenied|INSUFFICIENT_ACCESS/);
    } finally {
      g.deny = null;
    }
    expect(membersOf('old-desk')).toEqual([]);
  });

  test('the client secret and access tokens reach no log line', () => {
    const text = mem.text();
    expect(text.length).toBeGreaterThan(0);
    expect(text).not.toContain(g.clientSecret);
    expect(text).not.toContain('eyJ0eXAiOiJKV1Qi.');
  });
});
