import type { Database, Listener, Logger } from '../../adapter';
import type { Principal } from './principal';

/*
 * The verified-token cache of the main app. Asking the database about the bearer token was one round trip of every
 * API call (a third of a SCIM filter request's). A token the database accepted is kept here, but only as long as
 * the database's `api_token_version` (migration 029) is still the version read in the same statement that verified
 * it: any change that can take a token's rights away (revoke, expiry moved, scopes, role, purge) bumps that version
 * in its own transaction and announces it with NOTIFY at commit. So the truth stays the database's, and no process
 * trusts a token past a change another process made:
 *   - PGlite (one process holds the database): the notification runs before the changing statement's promise
 *     resolves, so a revoke is seen by the very next request.
 *   - PostgreSQL: every process LISTENs on `api_token_version`; a revoke reaches it when the notification does
 *     (delivered at commit, normally well under a millisecond on one network). In the process that revoked through
 *     the API, `tokensChanged()` after the commit stops the cache before the response is sent, not waiting for it.
 *   - No listener (it is still connecting, its connection was lost, or the database cannot LISTEN): nothing is
 *     served from the cache; every request asks the database, as before. Fail closed, never stale.
 * Entries are also never trusted past the token's own `expires_at` (by this process's clock) nor past `maxAgeMs`.
 * This is no concurrency control (design.md: that is the database's): it only remembers answers the database
 * gave, for as long as the database says nothing changed.
 */

const CHANNEL = 'api_token_version';
const RETRY_MS = 5000;

export interface VerifiedTokenCacheOptions {
  /** The longest an entry is trusted even with no change announced (default 5 minutes). */
  maxAgeMs?: number;
  /** At most this many tokens are kept (default 1000); only tokens the database accepted are ever added. */
  maxEntries?: number;
}

interface Entry {
  principal: Principal;
  version: number;
  until: number;
}

// The caches of this process, so that a revoke through this process's API stops them at once (tokensChanged).
const live = new Set<VerifiedTokenCache>();

/** Called after a transaction that changed api_tokens committed, in the process that ran it. */
export function tokensChanged(): void {
  for (const c of live) c.changed();
}

export class VerifiedTokenCache {
  readonly #db: Database;
  readonly #logger: Logger;
  readonly #maxAgeMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, Entry>();
  /** The newest version known; entries of any other version are not served. */
  #version = 0;
  /**
   * Counts this process's own committed changes (tokensChanged). A lookup that began before one may have read the
   * token before the change committed: its answer is not kept (put compares the epoch the lookup began in).
   */
  #epoch = 0;
  #listener: Listener | undefined;
  #starting: Promise<void> | undefined;
  /** When listening last failed to start: not tried again for RETRY_MS, so a refusing database is not asked per request. */
  #failedAt = -Infinity;
  #closed = false;

  constructor(db: Database, logger: Logger, opts: VerifiedTokenCacheOptions = {}) {
    this.#db = db;
    this.#logger = logger;
    this.#maxAgeMs = opts.maxAgeMs ?? 300_000;
    this.#maxEntries = opts.maxEntries ?? 1000;
    live.add(this);
  }

  /** True while changes are being heard: only then is anything served from the cache. */
  get listening(): boolean {
    return this.#listener !== undefined;
  }

  /** Starts listening if it is not yet; resolves true once listening (false when the database cannot). */
  async ready(): Promise<boolean> {
    this.#start();
    await this.#starting;
    return this.listening;
  }

  /** The principal of a verified token whose verification still holds, else undefined (ask the database). */
  get(hash: string): Principal | undefined {
    if (!this.#listener) {
      this.#start();
      return undefined;
    }
    const e = this.#entries.get(hash);
    if (!e) return undefined;
    if (e.version !== this.#version || e.until <= Date.now()) {
      this.#entries.delete(hash);
      return undefined;
    }
    return e.principal;
  }

  /** Read before asking the database; handed back to put with its answer. */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Keeps what the database answered; `version` is api_token_version as read by the verifying statement, `epoch`
   * the cache's epoch when the lookup began.
   */
  put(hash: string, principal: Principal, version: number, expiresAt: Date | null, epoch: number): void {
    if (!this.#listener || epoch !== this.#epoch) return;
    this.#learn(version);
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    const until = Math.min(Date.now() + this.#maxAgeMs, expiresAt ? new Date(expiresAt).getTime() : Infinity);
    this.#entries.set(hash, { principal, version, until });
  }

  /**
   * A change committed in this process: nothing verified before it is served again, without waiting for the
   * notification. Lookups from here on read the version the change wrote, so what they keep is good again.
   */
  changed(): void {
    this.#epoch++;
    this.#entries.clear();
  }

  async close(): Promise<void> {
    this.#closed = true;
    live.delete(this);
    this.#entries.clear();
    await this.#starting?.catch(() => undefined);
    const l = this.#listener;
    this.#listener = undefined;
    await l?.close();
  }

  #learn(version: number): void {
    if (version > this.#version) {
      this.#version = version;
      for (const [k, e] of this.#entries) if (e.version !== version) this.#entries.delete(k);
    }
  }

  /** Starts listening (once at a time); the version is read after LISTEN, so no change falls between the two. */
  #start(): void {
    if (this.#starting || this.#closed || !this.#db.listen || Date.now() - this.#failedAt < RETRY_MS) return;
    this.#starting = (async () => {
      const listener = await this.#db.listen!(CHANNEL, (payload) => this.#learn(Number(payload)), () => this.#lost());
      try {
        const { rows } = await this.#db.query<{ version: number }>('SELECT version FROM api_token_version');
        this.#learn(Number(rows[0]?.version ?? 0));
      } catch (e) {
        await listener.close();
        throw e;
      }
      if (this.#closed) await listener.close();
      else this.#listener = listener;
    })()
      .catch((err: unknown) => {
        this.#failedAt = Date.now();
        this.#logger.warn('token cache: cannot listen for token changes; asking the database on each request', { err: String(err) });
      })
      .finally(() => {
        this.#starting = undefined;
      });
  }

  #lost(): void {
    // Changes may be missed from here on: serve nothing until listening again (the next request starts it).
    this.#listener = undefined;
    this.#entries.clear();
    if (!this.#closed) this.#logger.warn('token cache: lost the token change listener; asking the database until it is back');
  }
}
