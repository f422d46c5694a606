import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { Client } from 'ldapts';
import { DirectoryError, DirectoryErrorCode, toDirectoryError } from './errors';
import { createSaslBinder, type SaslBinder, type SaslDeps } from './sasl/index';
import { SaslSocket } from './sasl/transport';
import { directorySecrets, type ResolvedDirectorySettings } from './settings';

/** The SASL socket under each SASL-bound client: ldapts's own `isBound` only knows its simple/SASL-PLAIN binds. */
const saslSockets = new WeakMap<Client, SaslSocket>();

/**
 * True while `client` holds the connection it was bound on. With the one-socket rule below, a connected client
 * is still on its first (bound) socket; a SASL socket also reports its own state.
 */
export function isSessionBound(client: Client): boolean {
  if (!client.isConnected) return false;
  const sasl = saslSockets.get(client);
  return sasl ? sasl.bound && !sasl.destroyed : client.isBound;
}

/** The negotiated SASL protection of a client's session (`undefined` for simple binds). */
export function saslProtectionOf(client: Client): 'sign' | 'seal' | 'none' | undefined {
  return saslSockets.get(client)?.protection;
}

function tlsOptionsFor(s: ResolvedDirectorySettings): ConnectionOptions {
  const o: ConnectionOptions = { rejectUnauthorized: true, minVersion: 'TLSv1.2', host: s.server };
  if (s.caCertPem) o.ca = s.caCertPem;
  // SNI must be a name, never an address; the identity check then uses servername, else host.
  const name = s.tlsServerName ?? (isIP(s.server) ? undefined : s.server);
  if (name) o.servername = name;
  return o;
}

function urlFor(s: ResolvedDirectorySettings): string {
  const host = isIP(s.server) === 6 ? `[${s.server}]` : s.server;
  return `${s.security === 'ldaps' ? 'ldaps' : 'ldap'}://${host}:${s.port}`;
}

/**
 * Opens a connection, upgrades it with StartTLS when configured, and binds as the service account.
 *
 * ldapts re-opens a dropped socket on the next operation by itself; for us that would be a plain,
 * unauthenticated connection where there was a TLS one. So each client may open its socket exactly once:
 * a second attempt fails as UNAVAILABLE and the pool replaces the client.
 * @throws DirectoryError INVALID_CREDENTIALS, TLS, UNAVAILABLE, STRONG_AUTH_REQUIRED.
 */
export async function openBoundClient(s: ResolvedDirectorySettings, sasl?: SaslBinder): Promise<Client> {
  if (s.authType !== 'simple') return openSaslClient(s, sasl ?? createSaslBinder(s));
  const tlsOptions = tlsOptionsFor(s);
  let opened = false;
  const once = (): void => {
    if (opened) throw new DirectoryError(DirectoryErrorCode.UNAVAILABLE, 'LDAP connection was closed; not re-opening it without its TLS and bind');
    opened = true;
  };
  const client = new Client({
    url: urlFor(s),
    timeout: s.timeoutMs,
    connectTimeout: s.connectTimeoutMs,
    // tlsOptions only with ldaps://: with ldap:// URLs they have broken the plain connection (ECONNRESET).
    ...(s.security === 'ldaps'
      ? {
          tlsOptions,
          createSecureConnection: ((port: number, host: string, options: ConnectionOptions) => {
            once();
            return tlsConnect(port, host, options);
          }) as unknown as typeof tlsConnect,
        }
      : {
          createConnection: ((port: number, host: string) => {
            once();
            return netConnect(port, host);
          }) as unknown as typeof netConnect,
        }),
  });
  const what = `bind as ${s.bindDn} to ${urlFor(s)}`;
  try {
    if (s.security === 'starttls') await client.startTLS(tlsOptions);
    await client.bind(s.bindDn, s.bindPassword);
    return client;
  } catch (e) {
    await client.unbind().catch(() => undefined);
    throw toDirectoryError(e, what, directorySecrets(s));
  }
}

/**
 * The SASL (Kerberos/NTLM) variant: ldapts's connection hook returns a SaslSocket that connects, does StartTLS
 * when configured, binds and installs the security layer before ldapts sees it connected. A root DSE read then
 * opens it and proves the layer works both ways. Same one-socket-per-client rule as simple binds.
 */
async function openSaslClient(s: ResolvedDirectorySettings, binder: SaslBinder): Promise<Client> {
  const what = `${binder.describe} to ${urlFor(s)}`;
  const secrets = directorySecrets(s);
  // Ticket acquisition (kinit) happens here, before the connect timer starts.
  const mechanism = await binder.mechanism().catch((e: unknown) => { throw toDirectoryError(e, what, secrets); });
  const tlsOptions = tlsOptionsFor(s);
  let socket: SaslSocket | undefined;
  const open = (): SaslSocket => {
    if (socket) throw new DirectoryError(DirectoryErrorCode.UNAVAILABLE, 'LDAP connection was closed; not re-opening it without its SASL bind');
    socket = new SaslSocket({
      host: s.server, port: s.port, security: s.security, tls: tlsOptions, mechanism,
      connectTimeoutMs: s.connectTimeoutMs, timeoutMs: s.timeoutMs, context: what, secrets,
    });
    return socket;
  };
  const client = new Client({
    url: urlFor(s),
    timeout: s.timeoutMs,
    // An outer bound only: the socket bounds connect and each bind round itself, with precise messages.
    connectTimeout: s.connectTimeoutMs + 4 * s.timeoutMs,
    ...(s.security === 'ldaps'
      ? { tlsOptions, createSecureConnection: (() => open()) as unknown as typeof tlsConnect }
      : { createConnection: (() => open()) as unknown as typeof netConnect }),
  });
  try {
    await client.search('', { scope: 'base', attributes: ['1.1'] });
    if (!socket) throw new DirectoryError(DirectoryErrorCode.UNAVAILABLE, `${what}: no connection was opened`);
    saslSockets.set(client, socket);
    return client;
  } catch (e) {
    await client.unbind().catch(() => undefined);
    throw toDirectoryError(e, what, secrets);
  }
}

interface Waiter {
  resolve: (c: Client) => void;
  reject: (e: unknown) => void;
}

/**
 * A small pool of bound connections. Each `use` gets one connection to itself for the callback, so a
 * sequence of searches runs on one bound session; afterwards the connection goes back for the next caller.
 * Why a pool and not a connection per call: measured against Samba AD on loopback, a user lookup on a
 * pooled bound connection took 0.6-1.2 ms, connect (+TLS) + bind + search + unbind per call 17-25 ms.
 */
export class BoundClientPool {
  readonly #s: ResolvedDirectorySettings;
  readonly #sasl: SaslBinder | undefined;
  readonly #idle: { client: Client; timer: NodeJS.Timeout }[] = [];
  readonly #waiters: Waiter[] = [];
  #open = 0;
  #closed = false;

  constructor(settings: ResolvedDirectorySettings, saslDeps: SaslDeps = {}) {
    this.#s = settings;
    // One binder per pool: its Kerberos ticket is acquired by the first connection and shared by the others.
    this.#sasl = settings.authType === 'simple' ? undefined : createSaslBinder(settings, saslDeps);
  }

  /** Connections currently open (idle or in use). */
  get size(): number {
    return this.#open;
  }

  async #acquire(): Promise<{ client: Client; reused: boolean }> {
    if (this.#closed) throw new DirectoryError(DirectoryErrorCode.UNAVAILABLE, 'directory adapter is closed');
    for (;;) {
      const idle = this.#idle.pop();
      if (!idle) break;
      clearTimeout(idle.timer);
      if (isSessionBound(idle.client)) return { client: idle.client, reused: true };
      this.#discard(idle.client);
    }
    if (this.#open < this.#s.poolSize) {
      this.#open += 1;
      try {
        return { client: await openBoundClient(this.#s, this.#sasl), reused: false };
      } catch (e) {
        this.#open -= 1;
        this.#wakeOne();
        throw e;
      }
    }
    const client = await new Promise<Client>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    return { client, reused: true };
  }

  #release(client: Client): void {
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter.resolve(client);
      return;
    }
    if (this.#closed) {
      this.#discard(client);
      return;
    }
    const timer = setTimeout(() => {
      const i = this.#idle.findIndex((x) => x.client === client);
      if (i >= 0) {
        this.#idle.splice(i, 1);
        this.#discard(client);
      }
    }, this.#s.idleTimeoutMs);
    timer.unref();
    this.#idle.push({ client, timer });
  }

  #discard(client: Client): void {
    this.#open -= 1;
    client.unbind().catch(() => undefined);
    this.#wakeOne();
  }

  // A slot freed up: let a waiter open a fresh connection instead of waiting for a busy one.
  #wakeOne(): void {
    const waiter = this.#waiters.shift();
    if (!waiter) return;
    this.#acquire().then(({ client }) => waiter.resolve(client), waiter.reject);
  }

  /**
   * Runs `fn` on a bound connection. When the connection fails underneath (not an LDAP answer) and it was a
   * reused one — the server may have dropped it while idle — `fn` runs once more on a fresh connection;
   * every operation of this adapter is idempotent, so repeating it is safe.
   * @throws DirectoryError mapped from whatever `fn` or the bind threw.
   */
  async use<T>(context: string, fn: (client: Client) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const { client, reused } = await this.#acquire();
      try {
        const result = await fn(client);
        this.#release(client);
        return result;
      } catch (e) {
        const err = toDirectoryError(e, context, directorySecrets(this.#s));
        const connectionLost = err.code === DirectoryErrorCode.UNAVAILABLE && err.details.ldapCode === undefined;
        if (connectionLost || !client.isConnected) this.#discard(client);
        else this.#release(client);
        if (connectionLost && reused && attempt === 0) continue;
        throw err;
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w.reject(new DirectoryError(DirectoryErrorCode.UNAVAILABLE, 'directory adapter is closed'));
    const idle = this.#idle.splice(0);
    for (const { client, timer } of idle) {
      clearTimeout(timer);
      this.#open -= 1;
    }
    await Promise.all(idle.map(({ client }) => client.unbind().catch(() => undefined)));
  }
}
