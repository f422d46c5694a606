// The README's quick start as a new user runs it: `DEMO=1 provisio serve` as a real child process on a fresh data
// directory (embedded PGlite) and a free port, with no other configuration — no integration, no directory, no admin
// key (the generated one is read from its output). Then: list the catalogue, order a Standard VDI desktop and watch
// its steps to `provisioned`, order a SaaS seat that the requester's manager (from the demo directory) approves, and
// take the desktop back through the reinstall runbook to `free`. Each phase must finish within 30 s.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawnCli, waitForOutput } from '../support/cli';

jest.setTimeout(180_000);

const PHASE_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface Step {
  step_id: string;
  name: string;
  status: string;
  error_message: string | null;
}
type Order = { id: number; status: string; error_message: string | null; assigned_asset_id: number | null; requester: Record<string, unknown> | null; steps: Step[] };

describe('DEMO=1 quick start, end to end (child process, PGlite)', () => {
  let dataDir: string;
  let child: ChildProcessWithoutNullStreams;
  let output = '';
  let base: string;
  let adminKey: string;
  const admin = () => ({ 'X-Admin-Key': adminKey, 'Content-Type': 'application/json' });

  async function api<T = Record<string, unknown>>(method: string, path: string, body?: unknown, headers: Record<string, string> = admin()): Promise<{ status: number; body: T }> {
    const res = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  }

  /** Polls until `done` holds; fails after PHASE_MS naming what it last saw. */
  async function within<T>(what: string, read: () => Promise<T>, done: (v: T) => boolean): Promise<{ value: T; ms: number }> {
    const started = Date.now();
    let last: T | undefined;
    while (Date.now() - started < PHASE_MS) {
      last = await read();
      if (done(last)) return { value: last, ms: Date.now() - started };
      await sleep(250);
    }
    throw new Error(`${what} not reached within ${PHASE_MS} ms; last: ${JSON.stringify(last)}\nservice output:\n${output.slice(-4000)}`);
  }

  const order = async (id: number) => (await api<Order>('GET', `/orders/${id}`)).body;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'provisio-demo-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    child = spawnCli(['serve'], { DEMO: '1', DATA_DIR: dataDir, PORT: String(port), ADMIN_KEY: undefined, WEBHOOK_SECRET_TOKEN: undefined, LOG_LEVEL: undefined });
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const keyLine = await waitForOutput(child, /Generated admin key \(shown once, store it now\): (xadm_\S+)/, 60_000);
    adminKey = /(xadm_\S+)/.exec(keyLine)![1]!;
    await waitForOutput(child, /"message":"listening"/, 60_000);
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 15_000)))]);
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the start loads the demo data and says which samples loaded', () => {
    expect(output).toContain('"message":"demo data loaded"');
    const loaded = output.split('\n').find((l) => l.includes('"message":"sample workflows loaded"'));
    expect(loaded).toBeDefined();
    expect(JSON.parse(loaded!).workflows.sort()).toEqual([
      'SaaS seat - deprovision',
      'SaaS seat - provision',
      'ServiceNow - RITM work note',
      'Standard VDI - deprovision',
      'Standard VDI - provision',
      'Standard VDI - reinstall',
      'XenServer VM - deprovision',
      'XenServer VM - provision',
    ]);
    expect(output).not.toContain('sample workflow waiting');
  });

  test('the catalogue lists both demo types', async () => {
    const types = await api<{ items: { name: string }[] }>('GET', '/admin/asset-types');
    expect(types.status).toBe(200);
    expect(types.body.items.map((t) => t.name)).toEqual(['SaaS seat', 'Standard VDI']);
    const forJane = await api<{ items: { name: string }[] }>('GET', '/catalogue?user_email=jane.doe@example.com');
    expect(forJane.status).toBe(200);
    expect(forJane.body.items.map((t) => t.name).sort()).toEqual(['SaaS seat', 'Standard VDI']);
  });

  let vdiOrder: Order;

  test('a Standard VDI order reaches provisioned within 30 s, every step visible', async () => {
    const placed = await api<Order>('POST', '/orders', { asset_type_name: 'Standard VDI', user_email: 'jane.doe@example.com', user_name: 'Jane Doe' });
    expect(placed.status).toBe(201);
    // The requester snapshot comes from the demo directory.
    expect(placed.body.requester).toMatchObject({ department: 'Engineering', cost_center: 'CC-ENG-100', company: 'Example Corp', employee_id: 'E1001', title: 'Software Engineer' });
    const { value, ms } = await within('Standard VDI provisioned', () => order(placed.body.id), (o) => ['provisioned', 'failed'].includes(o.status));
    expect(value).toMatchObject({ status: 'provisioned', error_message: null });
    expect(ms).toBeLessThan(PHASE_MS);
    expect(value.steps.map((s) => [s.name, s.status])).toEqual([
      ['Find the VM', 'succeeded'],
      ['VM exists', 'succeeded'],
      ['Apply guest customisation', 'succeeded'],
      ['Power on', 'succeeded'],
      ['Grant RDP access', 'succeeded'],
      ['Find the SCCM device', 'succeeded'],
      ['Add to task sequence collection', 'succeeded'],
      // The WinRM steps: the demo's sccm integration is in stub mode, so they answer ReturnValue 0 and call nothing.
      ["Refresh the device's machine policy", 'succeeded'],
      ['Start the task sequence on the device', 'succeeded'],
      ['Wait for the task sequence', 'succeeded'],
      // An evaluate step whose condition does not hold takes its `error` transition: not ordered through ServiceNow.
      ['Ordered through ServiceNow?', 'failed'],
    ]);
    vdiOrder = value;
  });

  test('a SaaS seat order is routed to the manager, approved, and reaches provisioned within 30 s', async () => {
    const placed = await api<Order>('POST', '/orders', { asset_type_name: 'SaaS seat', user_email: 'jane.doe@example.com', user_name: 'Jane Doe', config: { licence_tier: 'pro' } });
    expect(placed.status).toBe(201);
    expect(placed.body.status).toBe('pending_approval');
    const approvals = await api<{ items: { order_id: number; approver_email: string; reason: string; status: string }[] }>('GET', '/admin/approvals');
    expect(approvals.body.items.find((a) => a.order_id === placed.body.id)).toMatchObject({ approver_email: 'boss@example.com', reason: 'manager', status: 'pending' });

    const approved = await api('POST', `/orders/${placed.body.id}/approve`, {});
    expect(approved.status).toBe(200);
    const { value, ms } = await within('SaaS seat provisioned', () => order(placed.body.id), (o) => ['provisioned', 'failed'].includes(o.status));
    expect(value).toMatchObject({ status: 'provisioned', error_message: null });
    expect(ms).toBeLessThan(PHASE_MS);
    expect(value.steps.map((s) => [s.name, s.status])).toEqual([
      ['Provisioning webhook', 'succeeded'],
      ['Ordered through ServiceNow?', 'failed'],
    ]);
  });

  test('taking the desktop back runs deprovision and reinstall: the asset goes reinstall -> free within 30 s', async () => {
    // As the README walks it: the requester's side returns the order through the API.
    const ret = await api<{ id: number; status: string }>('POST', `/orders/${vdiOrder.id}/return`, { reason: 'project finished' });
    expect(ret.status).toBe(202);
    expect(ret.body).toMatchObject({ id: vdiOrder.id, status: 'deprovisioning' });

    const assetId = vdiOrder.assigned_asset_id!;
    type AuditRow = { action: string; diff: { before?: { state?: string }; after?: { state?: string } } | null };
    const history = async () => (await api<{ items: AuditRow[] }>('GET', `/admin/audit?entity=asset&entity_id=${assetId}&limit=50`)).body.items;
    const { ms } = await within('asset free again', history, (rows) => rows.some((r) => r.action === 'reinstall_succeeded'));
    expect(ms).toBeLessThan(PHASE_MS);
    // Oldest first: handed out, released into reinstall, reinstalled to free.
    const states = (await history())
      .reverse()
      .filter((r) => r.diff?.after?.state !== undefined)
      .map((r) => `${r.action}:${r.diff!.before?.state ?? '-'}->${r.diff!.after!.state}`);
    expect(states).toEqual(expect.arrayContaining(['release:in_use->reinstall', 'reinstall_succeeded:reinstall->free']));
    expect(states.indexOf('release:in_use->reinstall')).toBeLessThan(states.indexOf('reinstall_succeeded:reinstall->free'));

    const assets = await api<{ items: { id: number; state: string; assigned_order_id: number | null }[] }>('GET', '/admin/assets');
    expect(assets.body.items.find((a) => a.id === assetId)).toMatchObject({ state: 'free', assigned_order_id: null });
    const returned = await within('order returned', () => order(vdiOrder.id), (o) => o.status === 'returned');
    const names = returned.value.steps.map((s) => `${s.name}:${s.status}`);
    expect(names).toEqual(
      expect.arrayContaining(['Revoke RDP access:succeeded', 'Shut the guest down:succeeded', 'Power off:succeeded', 'Power on (PXE boot):succeeded', 'Wait for the OS deployment:succeeded', 'Remove from OS deployment collection:succeeded']),
    );
  });
});
