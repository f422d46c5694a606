import { ScimError } from './errors';
import { parseFilter, parsePath } from './filter';

// A filter's values go to SQL as parameters; PostgreSQL fails on a NUL in text (500 before this check) and the
// driver silently turns a lone surrogate into U+FFFD. Both are refused by the parser, whatever edge let them in.
describe('SCIM filter text PostgreSQL cannot store', () => {
  const refusal = (f: () => unknown): ScimError => {
    try {
      f();
    } catch (err) {
      if (err instanceof ScimError) return err;
      throw err;
    }
    throw new Error('not refused');
  };

  test.each([
    ['a NUL in a value', 'userName eq "a\u0000"', /NUL/],
    ['a NUL outside a string', 'userName\u0000 eq "a"', /NUL/],
    ['a lone high surrogate', 'userName eq "\ud800"', /unpaired UTF-16 surrogate/],
    ['a lone low surrogate', 'displayName co "x\udc00y"', /unpaired UTF-16 surrogate/],
  ])('a filter with %s: 400 invalidFilter', (_what, filter, detail) => {
    const err = refusal(() => parseFilter(filter));
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.scimType).toBe('invalidFilter');
    expect(err.message).toMatch(detail);
  });

  test('a PATCH path with a NUL: 400 invalidPath', () => {
    const err = refusal(() => parsePath('members[value eq "\u0000"]'));
    expect(err.scimType).toBe('invalidPath');
  });

  test('paired surrogates (an emoji) are text like any other', () => {
    expect(parseFilter('displayName eq "\ud83d\ude00"')).toMatchObject({ kind: 'cmp', value: '\ud83d\ude00' });
  });
});
