// One PGlite shared by its holder and wire clients (openDatabase on the same DATA_DIR): statements never land in
// someone else's transaction, a client that vanishes mid-transaction is rolled back, a second holder is refused.
// Embedded only, so the same under both runs of the suite.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import type { Database } from './database';
import { acquireDataDirLock, EmbeddedDatabaseLockedError, LOCK_FILE } from './data-dir-lock';
import { embeddedDatabaseHolder, embeddedSocketPath, openDatabase } from './open';
import { lastReadyStatus } from './pglite-wire-server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the embedded database shared over its socket', () => {
  let dataDir: string;
  let holder: Database;
  let client: Database;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'provisio-sharing-'));
    holder = await openDatabase({ dataDir, command: 'test holder', serveToOthers: true, connectToHolder: false });
    await holder.exec('CREATE TABLE ledger (id serial PRIMARY KEY, amount int NOT NULL)');
    client = await openDatabase({ dataDir, command: 'test client' });
  });
  afterAll(async () => {
    await client?.close();
    await holder?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the lock names the holder and its socket; the client works through it', async () => {
    expect(embeddedDatabaseHolder(dataDir)).toMatchObject({ pid: process.pid, command: 'test holder', socket: embeddedSocketPath(dataDir) });
    await client.query('INSERT INTO ledger (amount) VALUES ($1)', [0]);
    expect((await holder.query<{ n: number }>('SELECT count(*)::int AS n FROM ledger')).rows).toEqual([{ n: 1 }]);
  });

  test("neither side ever sees the other's transaction half done", async () => {
    // Every transaction books +x and -x with a pause between; a statement that slipped into one would see a sum != 0.
    const book = (db: Database, x: number) =>
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO ledger (amount) VALUES ($1)', [x]);
        await sleep(3);
        await tx.query('INSERT INTO ledger (amount) VALUES ($1)', [-x]);
      });
    const sums: number[] = [];
    const read = async (db: Database) => sums.push((await db.query<{ s: number }>('SELECT coalesce(sum(amount), 0)::int AS s FROM ledger', [])).rows[0]!.s);
    const work: Promise<unknown>[] = [];
    for (let i = 1; i <= 25; i++) work.push(book(holder, i), book(client, 100 + i), read(holder), read(client));
    await Promise.all(work);
    expect(sums).toHaveLength(50);
    expect(new Set(sums)).toEqual(new Set([0]));
    expect((await client.query<{ n: number }>('SELECT count(*)::int AS n FROM ledger')).rows).toEqual([{ n: 101 }]);
  });

  test('a failed client transaction is rolled back and poisons nothing', async () => {
    await expect(
      client.transaction(async (tx) => {
        await tx.query('INSERT INTO ledger (amount) VALUES ($1)', [7777]);
        await tx.query('SELECT 1 / 0');
      }),
    ).rejects.toThrow(/division by zero/);
    expect((await holder.query<{ n: number }>('SELECT count(*)::int AS n FROM ledger WHERE amount = $1', [7777])).rows).toEqual([{ n: 0 }]);
    expect((await client.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  test('a client that disconnects inside a transaction is rolled back and frees the database', async () => {
    let stream: Socket | undefined;
    const raw = new Client({ host: dataDir, port: 5432, user: 'postgres', database: 'postgres', stream: () => (stream = new Socket()) });
    raw.on('error', () => undefined);
    await raw.connect();
    await raw.query('BEGIN');
    await raw.query('INSERT INTO ledger (amount) VALUES (4242)');
    // While it holds the transaction the holder waits; its connection dropping ends the wait.
    const waiting = holder.query<{ n: number }>('SELECT count(*)::int AS n FROM ledger WHERE amount = 4242');
    await sleep(50);
    stream!.destroy();
    expect((await waiting).rows).toEqual([{ n: 0 }]);
    await raw.end().catch(() => undefined);
  });

  test('a second holder is refused, naming the first', async () => {
    const second = openDatabase({ dataDir, command: 'second', connectToHolder: false });
    await expect(second).rejects.toBeInstanceOf(EmbeddedDatabaseLockedError);
    await expect(second).rejects.toThrow(`lock held by pid ${process.pid} (test holder)`);
  });

  test('a client that sends garbage is dropped; the others go on', async () => {
    const socket = createConnection(embeddedSocketPath(dataDir));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.write(Buffer.from([0, 0, 0, 3, 0, 3, 0, 0]));
    await closed;
    expect((await client.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    expect((await holder.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  test('a half-sent message waits for its rest', async () => {
    // A startup message split across two writes is answered once complete.
    const socket = createConnection(embeddedSocketPath(dataDir));
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const params = Buffer.from('user\0postgres\0database\0postgres\0\0');
    const startup = Buffer.alloc(8 + params.length);
    startup.writeInt32BE(startup.length, 0);
    startup.writeInt32BE(196608, 4);
    params.copy(startup, 8);
    const answer = new Promise<Buffer>((resolve) => {
      let got = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (lastReadyStatus(got) === 'I') resolve(got);
      });
    });
    socket.write(startup.subarray(0, 5));
    await sleep(20);
    socket.write(startup.subarray(5));
    expect(lastReadyStatus(await answer)).toBe('I');
    socket.destroy();
  });
});

describe('lastReadyStatus', () => {
  const z = (status: string) => Buffer.from([0x5a, 0, 0, 0, 5, status.charCodeAt(0)]);
  test('reads the status of the last ReadyForQuery, or none', () => {
    const commandComplete = Buffer.concat([Buffer.from([0x43, 0, 0, 0, 10]), Buffer.from('BEGIN\0')]);
    expect(lastReadyStatus(Buffer.concat([commandComplete, z('T')]))).toBe('T');
    expect(lastReadyStatus(Buffer.concat([z('T'), z('I')]))).toBe('I');
    expect(lastReadyStatus(Buffer.from([0x31, 0, 0, 0, 4]))).toBeUndefined(); // ParseComplete alone
  });
});

describe('the DATA_DIR lock file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'provisio-lock-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const lockFile = () => join(dir, LOCK_FILE);

  // Start times come from /proc (Linux); elsewhere a reused live pid counts as the holder (refused, never taken over).
  (existsSync('/proc/self/stat') ? test : test.skip)('a live pid that started after the lock was written is a reused pid: the lock is taken over', () => {
    // The parent process is alive, but the lock says it started at another clock tick than it did.
    const reused = { pid: process.ppid, hostname: hostname(), command: 'provisio serve', startedAt: '2026-01-01T00:00:00.000Z', socket: null, processStart: 1 };
    writeFileSync(lockFile(), JSON.stringify(reused));
    const stale: unknown[] = [];
    const lock = acquireDataDirLock(dir, { command: 'test', socket: null, onStaleLock: (h) => stale.push(h) });
    expect(stale).toEqual([reused]);
    expect(JSON.parse(readFileSync(lockFile(), 'utf8'))).toMatchObject({ pid: process.pid, command: 'test' });
    lock.release();
    expect(existsSync(lockFile())).toBe(false);
  });

  test('a live holder on this host is refused; one on another host is never judged from here', () => {
    writeFileSync(lockFile(), JSON.stringify({ pid: process.ppid, hostname: hostname(), command: 'provisio worker', startedAt: 'x', socket: null }));
    expect(() => acquireDataDirLock(dir, { command: 'test', socket: null })).toThrow(`lock held by pid ${process.ppid} (provisio worker)`);
    writeFileSync(lockFile(), JSON.stringify({ pid: 999_999_999, hostname: 'elsewhere.example', command: 'provisio serve', startedAt: 'x', socket: null }));
    expect(() => acquireDataDirLock(dir, { command: 'test', socket: null })).toThrow(EmbeddedDatabaseLockedError);
  });

  test('an unreadable lock file is replaced; release leaves a lock that is no longer ours alone', () => {
    writeFileSync(lockFile(), '{"pid":');
    const lock = acquireDataDirLock(dir, { command: 'test', socket: null });
    const other = JSON.stringify({ pid: process.ppid, hostname: hostname(), command: 'someone else', startedAt: 'y', socket: null });
    writeFileSync(lockFile(), other);
    lock.release();
    expect(readFileSync(lockFile(), 'utf8')).toBe(other);
  });
});
