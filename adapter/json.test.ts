import { canonicalJson, escapePointerToken, getByPointer, hasPointer, isRecord, parsePointer, resolvePointer, toPointer, unescapePointerToken } from './json';

// The examples of RFC 6901 §5.
const doc = { foo: ['bar', 'baz'], '': 0, 'a/b': 1, 'c%d': 2, 'e^f': 3, 'g|h': 4, 'i\\j': 5, 'k"l': 6, ' ': 7, 'm~n': 8 };

describe('RFC 6901 JSON pointer', () => {
  test.each([
    ['', doc],
    ['/foo', ['bar', 'baz']],
    ['/foo/0', 'bar'],
    ['/', 0],
    ['/a~1b', 1],
    ['/c%d', 2],
    ['/e^f', 3],
    ['/g|h', 4],
    ['/i\\j', 5],
    ['/k"l', 6],
    ['/ ', 7],
    ['/m~0n', 8],
  ])('%s finds its value', (pointer, value) => {
    expect(resolvePointer(doc, pointer)).toEqual({ found: true, value });
  });

  test.each(['/nope', '/foo/2', '/foo/01', '/foo/-', '/foo/0/x', 'foo', '/constructor', '/m~1n'])('%s finds nothing', (pointer) => {
    expect(resolvePointer(doc, pointer)).toEqual({ found: false });
  });

  test('~01 is "~1", not "/"', () => {
    expect(resolvePointer({ '~1': 'tilde-one', '/': 'slash' }, '/~01')).toEqual({ found: true, value: 'tilde-one' });
  });
});

describe('pointer tokens and the other helpers', () => {
  test('escaping and unescaping round-trip, ~ before /', () => {
    expect(escapePointerToken('a/b~c')).toBe('a~1b~0c');
    expect(escapePointerToken(3)).toBe('3');
    expect(unescapePointerToken('a~1b~0c')).toBe('a/b~c');
    expect(toPointer(['paths', '/users/{id}', 'get'])).toBe('/paths/~1users~1{id}/get');
    expect(parsePointer('/paths/~1users~1{id}/get')).toEqual(['paths', '/users/{id}', 'get']);
    expect(parsePointer('')).toEqual([]);
    expect(() => parsePointer('paths')).toThrow('not a JSON pointer');
  });

  test('getByPointer and hasPointer tell a missing member from an undefined one', () => {
    const d = { a: { b: null as unknown }, list: [1] };
    expect(getByPointer(d, '/a/b')).toBeNull();
    expect(hasPointer(d, '/a/b')).toBe(true);
    expect(getByPointer(d, '/a/c')).toBeUndefined();
    expect(hasPointer(d, '/a/c')).toBe(false);
    expect(hasPointer(d, '/list/1')).toBe(false);
    expect(() => getByPointer(d, 'a')).toThrow('not a JSON pointer');
  });

  test('isRecord: objects only, not arrays or null', () => {
    expect(isRecord({})).toBe(true);
    expect(isRecord(Object.create(null))).toBe(true);
    expect([[], null, 'x', 1, undefined].map(isRecord)).toEqual([false, false, false, false, false]);
  });

  test('canonical JSON: members sorted at every depth, array order kept, undefined members left out', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[3,{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
    expect(canonicalJson(JSON.parse('{"__proto__": {"x": 1}, "a": 1}'))).toBe('{"__proto__":{"x":1},"a":1}');
    expect(canonicalJson(undefined)).toBe('null');
  });
});
