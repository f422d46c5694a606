import type { Queryable } from '../../adapter';
import { pageBody, pageOf, queryPage, Where } from './paging';

/** A Queryable that records each statement and answers the page rows, then the count. */
function recordingDb(rows: unknown[], total: number) {
  const calls: { sql: string; params: readonly unknown[] }[] = [];
  const q: Queryable = {
    async query<R>(sql: string, params: readonly unknown[] = []) {
      calls.push({ sql: sql.replace(/\s+/g, ' ').trim(), params });
      const result = sql.includes('count(*)') ? [{ total }] : rows;
      return { rows: result as R[], rowCount: result.length } as never;
    },
  };
  return { q, calls };
}

describe('Where', () => {
  test('numbers parameters in the order they are bound, across conditions', () => {
    const w = new Where().and('a = ?', 1).and('b BETWEEN ? AND ?', 2, 3);
    const twice = w.param('x');
    w.and(`(c = ${twice} OR d = ${twice})`);
    expect(w.sql).toBe('WHERE a = $1 AND b BETWEEN $2 AND $3 AND (c = $4 OR d = $4)');
    expect(w.params).toEqual([1, 2, 3, 'x']);
  });

  test('is empty without conditions, and a condition may bind nothing', () => {
    expect(new Where().sql).toBe('');
    expect(new Where().and('revoked_at IS NOT NULL').sql).toBe('WHERE revoked_at IS NOT NULL');
  });

  test('refuses a condition whose placeholders and values do not match', () => {
    expect(() => new Where().and('a = ? AND b = ?', 1)).toThrow(/2 placeholder\(s\) for 1 value/);
    expect(() => new Where().and('a = ?', 1, 2)).toThrow(/1 placeholder\(s\) for 2 value/);
  });
});

describe('queryPage', () => {
  test('binds LIMIT and OFFSET after the filters and counts with the same filters', async () => {
    const { q, calls } = recordingDb([{ id: 7 }], 12);
    const where = new Where().and('state = ?', 'free');
    const page = await queryPage<{ id: number }>(
      q,
      { select: 'SELECT a.id FROM assets a JOIN asset_types t ON t.id = a.asset_type_id', countFrom: 'assets a', where, orderBy: 'a.id' },
      { limit: 5, offset: 10 },
    );
    expect(page).toEqual({ items: [{ id: 7 }], total: 12 });
    expect(calls).toEqual([
      {
        sql: 'SELECT a.id FROM assets a JOIN asset_types t ON t.id = a.asset_type_id WHERE state = $1 ORDER BY a.id LIMIT $2 OFFSET $3',
        params: ['free', 5, 10],
      },
      { sql: 'SELECT count(*)::int AS total FROM assets a WHERE state = $1', params: ['free'] },
    ]);
  });

  test('without filters the page takes $1 and $2', async () => {
    const { q, calls } = recordingDb([], 0);
    expect(await queryPage(q, { select: 'SELECT id FROM t', countFrom: 't', where: new Where(), orderBy: 'id DESC' }, { limit: 50, offset: 0 })).toEqual({
      items: [],
      total: 0,
    });
    expect(calls[0]).toEqual({ sql: 'SELECT id FROM t ORDER BY id DESC LIMIT $1 OFFSET $2', params: [50, 0] });
  });
});

describe('pageOf and pageBody', () => {
  test("fill in the spec's defaults and echo the page asked for", () => {
    expect(pageOf({})).toEqual({ limit: 50, offset: 0 });
    expect(pageOf({ limit: 3, offset: 9 })).toEqual({ limit: 3, offset: 9 });
    expect(pageBody({ items: [1, 2], total: 9 }, (n) => `#${n}`, { limit: 2, offset: 4 })).toEqual({
      items: ['#1', '#2'],
      total: 9,
      limit: 2,
      offset: 4,
    });
  });
});
