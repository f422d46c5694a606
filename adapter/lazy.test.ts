import { onFirstUse } from './lazy';

describe('onFirstUse', () => {
  test('makes the value on the first call only, and not before', () => {
    let made = 0;
    const get = onFirstUse(() => ({ n: (made += 1) }));
    expect(made).toBe(0);
    const first = get();
    expect(get()).toBe(first);
    expect(made).toBe(1);
  });

  test('a maker that throws is tried again on the next call', () => {
    let calls = 0;
    const get = onFirstUse(() => {
      calls += 1;
      if (calls === 1) throw new Error('not yet');
      return calls;
    });
    expect(() => get()).toThrow('not yet');
    expect(get()).toBe(2);
  });
});
