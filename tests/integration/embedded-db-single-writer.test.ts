// The embedded database is never written by two processes. `provisio serve` holds DATA_DIR (its lock file) and serves
// its PGlite on a unix socket there; `token create`, `migrate` and `worker` started beside it work through that
// socket, so their writes land in the server's own database: seen at once, kept across a restart. A second `serve`
// is refused at once naming the holder; a lock left by a dead process is taken over.
//
// Embedded only: with DATABASE_URL every process opens PostgreSQL and no lock is taken, so under the PostgreSQL run
// of the suite (DATABASE_URL set) this file is skipped; its children always run without DATABASE_URL anyway.
import { spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedDatabaseHolder, embeddedSocketPath } from '../../adapter';
import { runCli, spawnCli, waitForOutput } from '../support/cli';
import { testEngine } from '../support/db';
import { sendJson, startLoopbackServer, type LoopbackServer } from '../support/loopback-server';

jest.setTimeout(120_000);

const ADMIN_KEY = 'single-writer-admin-key-0123456789';
const BEARER = 'single-writer-bearer-Xk81';
const LOCK = join('pglite', '.provisio.lock');

const describeEmbedded = testEngine === 'pglite' ? describe : describe.skip;

interface Running {
  child: ChildProcessWithoutNullStreams;
  exited: Promise<number | null>;
}

function start(args: string[], env: Record<string, string | undefined>): Running {
  const child = spawnCli(args, env);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited };
}

async function stop(r: Running | undefined): Promise<number | null | undefined> {
  if (!r) return undefined;
  if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM');
  return r.exited;
}

/** A port free on loopback now (a random one may be taken by another suite's server). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

describeEmbedded('the embedded database has one writer (serve holds it, the other commands work through it)', () => {
  let dataDir: string;
  let port: number;
  let env: Record<string, string | undefined>;
  let server: Running | undefined;
  let target: LoopbackServer;

  const url = (path: string) => `http://127.0.0.1:${port}${path}`;
  const asAdmin = (path: string, body?: unknown) =>
    fetch(url(path), {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'X-Admin-Key': ADMIN_KEY, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const withToken = (token: string, path: string) => fetch(url(path), { headers: { authorization: `Bearer ${token}` } });

  async function startServe(): Promise<Running> {
    const r = start(['serve'], { ...env, PORT: String(port) });
    await waitForOutput(r.child, /"message":"listening"/, 60_000);
    return r;
  }

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'provisio-single-writer-'));
    port = await freePort();
    env = { DATA_DIR: dataDir, ADMIN_KEY, LOG_LEVEL: 'info' };
    target = await startLoopbackServer((req, res) => {
      if (req.headers.authorization !== `Bearer ${BEARER}`) return sendJson(res, 401, { error: 'unauthorised' });
      return sendJson(res, 200, { status: 'ok', via: 'target' });
    });
    server = await startServe();
  });
  afterAll(async () => {
    await stop(server);
    await target?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('serve holds DATA_DIR: its lock file names it and the socket it serves', () => {
    const holder = embeddedDatabaseHolder(dataDir);
    expect(holder).toMatchObject({ pid: server!.child.pid, command: 'provisio serve', hostname: hostname(), socket: embeddedSocketPath(dataDir) });
    expect(existsSync(embeddedSocketPath(dataDir))).toBe(true);
  });

  let token: string;
  test('token create beside serve prints a token the running server accepts at once', async () => {
    const res = await runCli(['token', 'create', '--name', 'beside-serve', '--scopes', 'admin:read', '--role', 'auditor'], env);
    expect(res.stderr).not.toMatch(/provisio:/);
    expect(res.code).toBe(0);
    // stdout is the token alone, so `TOKEN=$(provisio token create ...)` works beside a running serve too.
    token = res.stdout.trim();
    expect(token).toMatch(/^xpat_[A-Za-z0-9_-]{43}$/);
    const listed = await withToken(token, '/admin/api-tokens');
    expect(listed.status).toBe(200);
    const body = (await listed.json()) as { items: { name: string; created_by: string }[] };
    expect(body.items).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'beside-serve', created_by: 'system:cli' })]));
    // It did not open the files itself: the lock still names serve.
    expect(embeddedDatabaseHolder(dataDir)?.pid).toBe(server!.child.pid);
  });

  test('migrate beside serve exits 0', async () => {
    const res = await runCli(['migrate'], env);
    expect(res.stderr).not.toMatch(/provisio:/);
    expect(res.code).toBe(0);
    expect(embeddedDatabaseHolder(dataDir)?.pid).toBe(server!.child.pid);
  });

  test('a second serve on the same DATA_DIR is refused at once, naming the holder', async () => {
    const began = Date.now();
    const second = start(['serve'], { ...env, PORT: String(await freePort()) });
    let stdout = '';
    let stderr = '';
    second.child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    second.child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Refused before opening anything (the time is mostly tsx compiling the CLI); one that is not refused is stopped.
    const kill = setTimeout(() => second.child.kill('SIGKILL'), 30_000);
    const code = await second.exited.finally(() => clearTimeout(kill));
    expect(code).toBe(1);
    expect(stderr).toContain(`provisio: the embedded database in ${join(dataDir, 'pglite')} is in use: lock held by pid ${server!.child.pid} (provisio serve) on host ${hostname()} since `);
    expect(stdout).not.toContain('"message":"listening"');
    expect(Date.now() - began).toBeLessThan(30_000);
    // The running server is untouched.
    expect((await withToken(token, '/admin/api-tokens')).status).toBe(200);
    expect(embeddedDatabaseHolder(dataDir)?.pid).toBe(server!.child.pid);
  });

  test('a worker beside serve takes the jobs routed to it and completes them in the server database', async () => {
    const model = await asAdmin('/admin/integration-models', {
      document: await readFile(join(__dirname, '..', 'fixtures', 'integration-models', 'hello-inventory.yaml'), 'utf8'),
    });
    expect(model.status).toBe(201);
    const created = await asAdmin('/admin/integrations', {
      name: 'edge-inventory',
      model_id: 'Hello Inventory:1.0.0',
      config: {
        server: { host: '127.0.0.1', port: target.port, base_path: '/api' },
        authentication: { type: 'bearer', token: BEARER },
        cluster: { override: true, cluster_id: 'edge-1' },
        timeout: 30_000,
      },
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: number };

    // Only a `worker --cluster edge-1` takes calls of that cluster: serve enqueues them and waits for the answer.
    const worker = start(['worker', '--cluster', 'edge-1'], env);
    try {
      await waitForOutput(worker.child, /"message":"cluster worker started"/, 60_000);
      const before = target.requests.length;
      const res = await asAdmin(`/admin/integrations/${id}/tasks/ping/invoke`, {});
      const body = (await res.json()) as Record<string, unknown>;
      expect({ status: res.status, body }).toMatchObject({ status: 200, body: { ok: true, status: 200, body: { status: 'ok', via: 'target' } } });
      // The worker made the call (with the secret it read from the server's database) and wrote the result back there.
      expect(target.requests.slice(before).map((r) => [r.method, r.url, r.headers.authorization])).toEqual([['GET', '/api/ping', `Bearer ${BEARER}`]]);
      expect(embeddedDatabaseHolder(dataDir)?.pid).toBe(server!.child.pid);
    } finally {
      expect(await stop(worker)).toBe(0);
    }
    // The server goes on after its client left.
    expect((await withToken(token, '/admin/api-tokens')).status).toBe(200);
  });

  test('the AD gateway beside serve checks tokens against the server database', async () => {
    // No directory here: a known token gets past authentication to the directory error, an unknown one is 401.
    const gwPort = await freePort();
    const gateway = start(['ad-gateway'], {
      ...env,
      AD_GATEWAY_PORT: String(gwPort),
      AD_SERVER: '127.0.0.1',
      AD_PORT: '1',
      AD_SECURITY: 'none',
      AD_BIND_DN: 'CN=svc,DC=test,DC=local',
      AD_BIND_PASSWORD: 'not-used-here',
      AD_BASE_DN: 'DC=test,DC=local',
    });
    try {
      await waitForOutput(gateway.child, /"message":"AD gateway listening"/, 60_000);
      const status = (bearer: string) => fetch(`http://127.0.0.1:${gwPort}/directory/status`, { headers: { authorization: `Bearer ${bearer}` } });
      expect((await status(`xpat_${'A'.repeat(43)}`)).status).toBe(401);
      expect([502, 503]).toContain((await status(token)).status);
      expect(embeddedDatabaseHolder(dataDir)?.pid).toBe(server!.child.pid);
    } finally {
      expect(await stop(gateway)).toBe(0);
    }
  });

  test('after serve restarts, the token minted beside it is still accepted; shutdown removed the lock and socket', async () => {
    expect(await stop(server)).toBe(0);
    server = undefined;
    expect(existsSync(join(dataDir, LOCK))).toBe(false);
    expect(existsSync(embeddedSocketPath(dataDir))).toBe(false);
    server = await startServe();
    expect((await withToken(token, '/admin/api-tokens')).status).toBe(200);
  });
});

describeEmbedded('a stale DATA_DIR lock', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'provisio-stale-lock-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  test('left by a dead process is taken over, logged, and released at exit', async () => {
    // A pid that certainly belonged to a process that has exited.
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
    const stale = { pid: deadPid, hostname: hostname(), command: 'provisio serve', startedAt: '2026-01-01T00:00:00.000Z', socket: embeddedSocketPath(dataDir) };
    mkdirSync(join(dataDir, 'pglite'));
    writeFileSync(join(dataDir, LOCK), JSON.stringify(stale));
    const res = await runCli(['migrate'], { DATA_DIR: dataDir, LOG_LEVEL: 'info' });
    expect(res.stderr).not.toMatch(/provisio:/);
    expect(res.code).toBe(0);
    const warning = res.stdout.split('\n').find((l) => l.includes('took over the embedded database lock'));
    expect(warning && JSON.parse(warning)).toMatchObject({ level: 'warn', pid: deadPid, command: 'provisio serve', since: stale.startedAt });
    expect(existsSync(join(dataDir, LOCK))).toBe(false);
  });

  test('held by a live process that serves no socket refuses the others, naming it', async () => {
    // This jest process stands in for a live holder that serves nothing (like a running `token create`).
    const live = { pid: process.pid, hostname: hostname(), command: 'provisio token create', startedAt: new Date().toISOString(), socket: null };
    writeFileSync(join(dataDir, LOCK), JSON.stringify(live));
    try {
      const res = await runCli(['token', 'create', '--name', 'x', '--scopes', 'admin:read'], { DATA_DIR: dataDir, LOG_LEVEL: 'info' });
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`lock held by pid ${process.pid} (provisio token create)`);
      expect(res.stderr).toContain('serves no socket');
      expect(JSON.parse(readFileSync(join(dataDir, LOCK), 'utf8'))).toEqual(live);
    } finally {
      rmSync(join(dataDir, LOCK), { force: true });
    }
  });
});
