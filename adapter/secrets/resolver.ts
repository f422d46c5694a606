/**
 * Resolution of secret references at read time, with the process-local cache the seed asks for.
 *
 * A stored secret (a settings value, an integration secret) may hold a reference (`vault://…`, see references.ts)
 * instead of its value; whoever uses the secret passes it through {@link resolveSecretValue} right after opening it.
 * A value that is not a reference comes back as it is, after a type check and a prefix comparison.
 *
 * The cache, keyed by the reference text:
 *  - a value is kept `secret_backend.cache_ttl_seconds` (default 60 s), then fetched again at the next read;
 *  - a failure is kept `secret_backend.negative_ttl_seconds` (default 10 s) and re-thrown to every read meanwhile,
 *    so an unreachable backend is not hammered by every step that needs it, and is tried again after;
 *  - concurrent reads of a reference that is not cached share one fetch (single flight).
 * Values live in this process's memory only (a Map private to this module), never in an object that is logged.
 */
import type { Queryable } from '../db';
import { createLogger, type Logger } from '../log';
import { SecretBackendError, type SecretBackendSettings, type SecretScheme } from './backend';
import { createSecretBackends, type ClosableSecretBackend } from './backends';
import { looksLikeSecretReference, parseSecretReference } from './references';
import { openSecret } from './sealing';
import { secretPlace } from './places';

/** How long a fetched value is used before it is fetched again, when the settings name no other (seconds). */
export const DEFAULT_CACHE_TTL_SECONDS = 60;
/** How long a failure is re-thrown before the backend is asked again, when the settings name no other (seconds). */
export const DEFAULT_NEGATIVE_TTL_SECONDS = 10;

type Entry =
  | { kind: 'pending'; promise: Promise<string> }
  | { kind: 'value'; value: string; expiresAt: number }
  | { kind: 'failure'; error: SecretBackendError; expiresAt: number };

const cache = new Map<string, Entry>();
let now: () => number = Date.now;
let backends: Map<SecretScheme, ClosableSecretBackend> = createSecretBackends({ logger: createLogger({ silent: true }) });

/**
 * Sets where backend request lines go (the process's logger) and, for tests, the clock the TTLs are measured on.
 * Rebuilds the backends (their login tokens are dropped) and empties the cache.
 */
export function configureSecretResolver(opts: { logger?: Logger; now?: () => number }): void {
  for (const b of backends.values()) b.close?.();
  now = opts.now ?? Date.now;
  backends = createSecretBackends({ logger: opts.logger ?? createLogger({ silent: true }), now });
  cache.clear();
}

/** Empties the cache: the next read of every reference asks its backend (after a change of `secret_backend`). */
export function clearSecretCache(): void {
  cache.clear();
}

/**
 * The `secret_backend` section, its secrets opened. Read here with one query rather than through the settings room's
 * `readSettings`: that room sits above this one (server/ → adapter/, never the other way), and `readSettings` itself
 * resolves references through this module, so going through it would loop. The section's own secrets cannot be
 * references (the settings room refuses them), so nothing here resolves anything.
 */
async function loadBackendSettings(q: Queryable): Promise<SecretBackendSettings> {
  const { rows } = await q.query<{ key: string; value: unknown; is_secret: boolean }>(
    `SELECT key, value, is_secret FROM app_config WHERE section = 'secret_backend'`,
  );
  const out: Record<string, unknown> = {};
  for (const r of rows) out[r.key.slice('secret_backend.'.length)] = r.is_secret ? await openSecret(q, r.value, secretPlace.setting(r.key)) : r.value;
  return out;
}

function seconds(settings: SecretBackendSettings, key: string, fallback: number): number {
  const v = settings[key];
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : fallback;
}

/** Asks the backend; every failure becomes a SecretBackendError that names the reference. */
async function fetchValue(raw: string, settings: SecretBackendSettings): Promise<string> {
  const parsed = parseSecretReference(raw);
  if (!parsed.ok) {
    // Stored before references were checked on save (or written behind the API's back): the text may not be a
    // reference at all, so it is not repeated.
    const scheme = raw.slice(0, raw.indexOf('://')).toLowerCase();
    throw new SecretBackendError('SECRET_NOT_FOUND', `a stored secret starts like a ${scheme}:// reference but is not a valid one: ${parsed.message}`);
  }
  const ref = parsed.ref;
  const backend = backends.get(ref.scheme);
  if (!backend) throw new SecretBackendError('SECRET_BACKEND_NOT_CONFIGURED', `${raw}: no backend serves ${ref.scheme}:// references`, raw);
  try {
    return await backend.read(ref, settings);
  } catch (e) {
    if (e instanceof SecretBackendError) throw e;
    // Our own code's failure (a bug, a file system error): its message names no value, and the reference is added.
    throw new SecretBackendError('SECRET_BACKEND_UNREACHABLE', `${raw}: the ${ref.scheme} backend failed: ${e instanceof Error ? e.message : String(e)}`, raw);
  }
}

/**
 * The value `raw` names: from the cache while it is fresh (a remembered failure is re-thrown), else from its backend.
 * @throws SecretBackendError naming the reference and the cause (never a value).
 */
export async function resolveSecretReference(q: Queryable, raw: string): Promise<string> {
  const hit = cache.get(raw);
  if (hit) {
    if (hit.kind === 'pending') return hit.promise;
    if (now() < hit.expiresAt) {
      if (hit.kind === 'failure') throw hit.error;
      return hit.value;
    }
  }
  const promise = (async () => {
    // A settings read that fails (the database is away) is not remembered: it says nothing about the backend.
    let settings: SecretBackendSettings;
    try {
      settings = await loadBackendSettings(q);
    } catch (e) {
      if (cache.get(raw)?.kind === 'pending') cache.delete(raw);
      throw e;
    }
    try {
      const value = await fetchValue(raw, settings);
      cache.set(raw, { kind: 'value', value, expiresAt: now() + seconds(settings, 'cache_ttl_seconds', DEFAULT_CACHE_TTL_SECONDS) * 1000 });
      return value;
    } catch (e) {
      const error = e as SecretBackendError;
      cache.set(raw, { kind: 'failure', error, expiresAt: now() + seconds(settings, 'negative_ttl_seconds', DEFAULT_NEGATIVE_TTL_SECONDS) * 1000 });
      throw error;
    }
  })();
  cache.set(raw, { kind: 'pending', promise });
  return promise;
}

/**
 * `value` itself unless it is a reference (a string starting with one of the five schemes), in which case the value
 * it names. Call it right after a stored secret is opened.
 * @throws SecretBackendError naming the reference and the cause (never a value).
 */
export async function resolveSecretValue(q: Queryable, value: unknown): Promise<unknown> {
  return looksLikeSecretReference(value) ? resolveSecretReference(q, value) : value;
}

/**
 * `values` with every reference among its own values replaced by what it names; the same object, untouched, when
 * none is a reference. References are resolved concurrently (each cached as above).
 * @throws SecretBackendError for the first reference that fails.
 */
export async function resolveSecretValues<T extends Readonly<Record<string, unknown>>>(q: Queryable, values: T): Promise<T> {
  let refs: [string, string][] | undefined;
  for (const [k, v] of Object.entries(values)) if (looksLikeSecretReference(v)) (refs ??= []).push([k, v]);
  if (!refs) return values;
  const resolved = await Promise.all(refs.map(([, raw]) => resolveSecretReference(q, raw)));
  const out: Record<string, unknown> = { ...values };
  refs.forEach(([k], i) => (out[k] = resolved[i]));
  return out as T;
}
