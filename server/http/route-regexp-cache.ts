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
  const cache = new Map<string, ReturnType<PathToRegexp>>();
  const memoised = ((path: Parameters<PathToRegexp>[0], options?: Parameters<PathToRegexp>[1]) => {
    if (typeof path !== 'string') return original(path, options);
    const key = `${path}\u0000${JSON.stringify(options ?? {})}`;
    let hit = cache.get(key);
    if (!hit) {
      hit = original(path, options);
      cache.set(key, hit);
    }
    return hit;
  }) as PathToRegexp & { memoised?: true };
  memoised.memoised = true;
  mod.pathToRegexp = memoised;
}
