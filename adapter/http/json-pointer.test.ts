import { resolvePointer } from './json-pointer';

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
