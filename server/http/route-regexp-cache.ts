import pathToRegexpModule = require('path-to-regexp');

type PathToRegexp = typeof pathToRegexpModule.pathToRegexp;

/**
 * express-openapi-validator 5.x matches a request to its spec operation by calling path-to-regexp's
 * `pathToRegexp()` afresh for every route of the spec, on every request, until one matches
 * (`lookupRoute` in its openapi.metadata.js). With this API's ~60 routes that was about 30 % of the CPU of a
 * webhook request. The compiled expression is a pure function of (path, options) and is used only with
 * `exec`, so it is safe to compile each once: this wraps the module's export, which the validator reads at
 * call time, with a memo. Express's own router compiles its layers once and is unaffected.
 */
export function cacheRouteRegexps(): void {
  const mod = pathToRegexpModule as { pathToRegexp: PathToRegexp & { memoised?: true } };
  if (mod.pathToRegexp.memoised) return;
  const original = mod.pathToRegexp;
  // Keyed by path, then by the options' values. The validator builds a fresh options object for every route of every
  // request, so comparing their few flat values beats serialising them into a key (which cost as much as it saved).
  type Entry = { options: Record<string, unknown>; size: number; compiled: ReturnType<PathToRegexp> };
  const cache = new Map<string, Entry[]>();
  const memoised = ((path: Parameters<PathToRegexp>[0], options?: Parameters<PathToRegexp>[1]) => {
    const opts = (options ?? {}) as Record<string, unknown>;
    let size = 0;
    for (const k in opts) {
      const v = opts[k];
      // Only flat options of primitives compare this way; anything else (a custom encoder) is not memoised.
      if (v !== null && (typeof v === 'object' || typeof v === 'function')) return original(path, options);
      size++;
    }
    if (typeof path !== 'string') return original(path, options);
    let entries = cache.get(path);
    if (!entries) cache.set(path, (entries = []));
    search: for (const e of entries) {
      if (e.size !== size) continue;
      for (const k in opts) if (e.options[k] !== opts[k]) continue search;
      return e.compiled;
    }
    const compiled = original(path, options);
    entries.push({ options: { ...opts }, size, compiled });
    return compiled;
  }) as PathToRegexp & { memoised?: true };
  memoised.memoised = true;
  mod.pathToRegexp = memoised;
}
