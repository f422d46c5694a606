import pathToRegexpModule = require('path-to-regexp');
import { cacheRouteRegexps } from './route-regexp-cache';

describe('cacheRouteRegexps', () => {
  beforeAll(() => cacheRouteRegexps());
  const compile = (path: string, options?: Record<string, unknown>) => pathToRegexpModule.pathToRegexp(path, options);

  test('the same path with equal options (a fresh object each time) compiles once', () => {
    const a = compile('/orders/:id', { sensitive: false, strict: true });
    expect(compile('/orders/:id', { strict: true, sensitive: false })).toBe(a);
    expect(a.regexp.exec('/orders/42')?.[1]).toBe('42');
    expect(a.keys.map((k) => k.name)).toEqual(['id']);
  });

  test('different options or a different path compile apart', () => {
    const strict = compile('/assets/:id', { sensitive: false, strict: true });
    expect(compile('/assets/:id', { sensitive: true, strict: true })).not.toBe(strict);
    expect(compile('/assets/:id', { sensitive: false })).not.toBe(strict);
    expect(compile('/assets/:name', { sensitive: false, strict: true })).not.toBe(strict);
  });

  test('options holding a function are not memoised', () => {
    const encode = (s: string) => s;
    expect(compile('/runs/:id', { encode })).not.toBe(compile('/runs/:id', { encode }));
  });
});
