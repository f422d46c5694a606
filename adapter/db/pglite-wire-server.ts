import type { PGlite } from '@electric-sql/pglite';
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';

/**
 * PGlite is one Postgres backend: one session, one transaction at a time. Everything that talks to it (the embedding
 * process's own queries and transactions, and every wire client) takes this lock first and keeps it until the
 * backend is idle again, so no statement ever lands inside someone else's transaction. First come, first served.
 */
export class PgliteSession {
  #tail: Promise<void> = Promise.resolve();

  /** Resolves with the release function once the session is ours. */
  acquire(): Promise<() => void> {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const before = this.#tail;
    this.#tail = before.then(() => released);
    return before.then(() => release);
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

export interface WireServerOptions {
  /**
   * How long a client may hold the session (an open transaction, or a half-sent extended query) without sending
   * anything, ms; then it is disconnected and its transaction rolled back, so a stuck or frozen client cannot stall the
   * embedding process's own requests for longer than this.
   */
  idleInTransactionTimeoutMs?: number;
  /** Told about a client dropped for a protocol error or an idle transaction (no SQL, no data). */
  onClientError?: (message: string) => void;
}

export interface WireServer {
  readonly path: string;
  /** Stops accepting, disconnects every client (rolling back what they left open), removes the socket file. */
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;
const DEFAULT_IDLE_IN_TRANSACTION_MS = 60_000; // 1 min
const MAX_STARTUP_BYTES = 10_000; // PostgreSQL's own limit on a startup packet
const MAX_MESSAGE_BYTES = 0x40000000; // 1 GiB

/** A Sync message: ends an extended query a client left half-sent, so the backend accepts the next statement. */
const SYNC = Buffer.from([0x53, 0, 0, 0, 4]);

/** A simple-protocol Query message. */
function queryMessage(sql: string): Buffer {
  const text = Buffer.from(`${sql}\0`, 'utf8');
  const msg = Buffer.alloc(5 + text.length);
  msg.write('Q', 0, 'latin1');
  msg.writeInt32BE(4 + text.length, 1);
  text.copy(msg, 5);
  return msg;
}

/**
 * The transaction status of the last ReadyForQuery ('Z') message in a backend answer: 'I' idle, 'T' in a transaction,
 * 'E' in a failed transaction; undefined when the answer holds none (Parse, Bind, ... before their Sync).
 */
export function lastReadyStatus(out: Uint8Array): string | undefined {
  let status: string | undefined;
  let i = 0;
  while (i + 5 <= out.length) {
    const len = ((out[i + 1]! << 24) | (out[i + 2]! << 16) | (out[i + 3]! << 8) | out[i + 4]!) >>> 0;
    if (out[i] === 0x5a && len === 5 && i + 5 < out.length) status = String.fromCharCode(out[i + 5]!);
    i += 1 + len;
  }
  return status;
}

/**
 * Serves `pg` over the PostgreSQL wire protocol on the unix socket `path`, so other processes of this machine work on
 * the same embedded database through `pg` instead of opening its files a second time.
 *
 * Why not `@electric-sql/pglite-socket`: its releases pin one exact PGlite version as a peer (0.2.17 wants 0.5.14;
 * we run 0.5.16), and its queue only serialises its own clients against each other: the embedding process's
 * `transaction()` releases PGlite's query lock between statements, so a client's statement could run inside it (and
 * the embedding process's statements inside a client's open transaction). Here every message waits for the one
 * PgliteSession the embedding process's queries also take, and a client keeps it from its first message until the
 * backend reports idle (ReadyForQuery 'I'): a whole transaction, or a whole Parse/Bind/Execute/Sync, runs undisturbed.
 *
 * Session state is shared by all clients because there is one backend: named prepared statements would collide, so
 * clients must use unnamed ones (createPostgresDatabase's `namedStatements: false`); session-level advisory locks
 * would not exclude anyone (the code base takes transaction-level ones only, and transactions never interleave here).
 */
export async function serveWire(pg: PGlite, session: PgliteSession, path: string, opts: WireServerOptions = {}): Promise<WireServer> {
  const idleMs = opts.idleInTransactionTimeoutMs ?? DEFAULT_IDLE_IN_TRANSACTION_MS;
  const connections = new Set<Promise<void>>();
  const sockets = new Set<Socket>();

  const handle = (socket: Socket) => {
    sockets.add(socket);
    let buffer: Buffer = Buffer.alloc(0);
    let started = false;
    let closed = false;
    let release: (() => void) | undefined;
    let idleTimer: NodeJS.Timeout | undefined;
    // Messages of one connection run strictly in order, one at a time.
    let chain: Promise<void> = Promise.resolve();

    const drop = (message?: string) => {
      if (message) opts.onClientError?.(message);
      socket.destroy();
    };

    const run = async (message: Buffer): Promise<void> => {
      if (!release) release = await session.acquire();
      if (closed) return; // the connection went while we waited; the close handler releases
      const out = Buffer.from(await pg.execProtocolRaw(message));
      if (lastReadyStatus(out) === 'I') {
        release();
        release = undefined;
      }
      if (!socket.destroyed) socket.write(out);
    };

    // Armed whenever the client has been served and still holds the session; any data from it disarms it.
    const armIdleTimer = () => {
      clearTimeout(idleTimer);
      if (release && !closed) {
        idleTimer = setTimeout(() => drop(`a client held the embedded database idle in a transaction for ${idleMs} ms`), idleMs);
      }
    };

    const drain = async (): Promise<void> => {
      while (!closed) {
        if (!started) {
          // Before the startup message: untyped messages, int32 length then int32 code.
          if (buffer.length < 8) return;
          const len = buffer.readInt32BE(0);
          if (len < 8 || len > MAX_STARTUP_BYTES) return drop(`a client sent a startup message of ${len} bytes`);
          if (buffer.length < len) return;
          const code = buffer.readInt32BE(4);
          const message = buffer.subarray(0, len);
          buffer = buffer.subarray(len);
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
            socket.write('N'); // no TLS on a local socket: the client goes on in plain text
          } else if (code === CANCEL_REQUEST) {
            return drop(); // one backend, nothing to signal
          } else if (code === PROTOCOL_3) {
            started = true;
            await run(Buffer.from(message));
          } else {
            return drop(`a client spoke an unsupported protocol (${code})`);
          }
          continue;
        }
        if (buffer.length < 5) return;
        // The length counts itself, never the type byte; PostgreSQL refuses more than 1 GiB the same way.
        const len = 1 + buffer.readInt32BE(1);
        if (len < 5 || len > MAX_MESSAGE_BYTES) return drop(`a client sent a message of ${len} bytes`);
        if (buffer.length < len) return;
        const message = Buffer.from(buffer.subarray(0, len));
        buffer = buffer.subarray(len);
        if (message[0] === 0x58) return drop(); // Terminate
        await run(message);
      }
    };

    socket.on('data', (data: Buffer) => {
      buffer = buffer.length ? Buffer.concat([buffer, data]) : data;
      clearTimeout(idleTimer);
      chain = chain.then(drain).then(armIdleTimer).catch((e: unknown) => drop(`wire client failed: ${e instanceof Error ? e.message : String(e)}`));
    });
    socket.on('error', () => undefined); // a client that vanishes mid-write; 'close' follows
    const done = new Promise<void>((resolve) => {
      socket.on('close', () => {
        closed = true;
        clearTimeout(idleTimer);
        sockets.delete(socket);
        // Wait for a message in flight, then give back the session, rolling back whatever the client left open.
        chain = chain
          .catch(() => undefined)
          .then(async () => {
            if (!release) return;
            try {
              await pg.execProtocolRaw(SYNC);
              if (pg.isInTransaction()) await pg.execProtocolRaw(queryMessage('ROLLBACK'));
            } finally {
              release();
              release = undefined;
            }
          })
          .catch((e: unknown) => opts.onClientError?.(`rolling back a disconnected client failed: ${e instanceof Error ? e.message : String(e)}`))
          .finally(resolve);
      });
    });
    connections.add(done);
    void done.then(() => connections.delete(done));
  };

  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // A socket file left by a holder that crashed: we hold the DATA_DIR lock, so nobody else serves on it.
  try {
    unlinkSync(path);
  } catch {
    /* none */
  }
  const server: Server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // No authentication on this socket: only this user (and root) may connect to it.
  chmodSync(path, 0o600);

  return {
    path,
    async close() {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await Promise.all([...connections]);
      await closing;
      try {
        unlinkSync(path);
      } catch {
        /* removed by server.close already */
      }
    },
  };
}
