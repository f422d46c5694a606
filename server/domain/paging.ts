import type { Queryable } from '../../adapter';

// Every admin list (orders, approvals, asset types, assets, API tokens, leaver events, the audit log) answers one
// page of rows matching AND-ed optional filters, newest or alphabetically first, with how many match in all.
// The WHERE clause, its numbered parameters, the page and the count are built here once.

/** Which page: at most `limit` rows after skipping `offset`. */
export interface PageRequest {
  limit: number;
  offset: number;
}

/** One page of a list and how many rows match its filters across all pages. */
export interface Page<T> {
  items: T[];
  total: number;
}

/** The spec's `Limit` and `Offset` defaults (openapi/provisio.yaml, components.parameters). */
const DEFAULT_PAGE: PageRequest = Object.freeze({ limit: 50, offset: 0 });

/** The page a list request asks for, the spec's defaults filled in (the validator has checked the bounds). */
export function pageOf(query: { limit?: number | undefined; offset?: number | undefined }): PageRequest {
  return { limit: query.limit ?? DEFAULT_PAGE.limit, offset: query.offset ?? DEFAULT_PAGE.offset };
}

/** A list response body: the page's items in their API form, the total, and the page that was asked for. */
export function pageBody<R, V>(page: Page<R>, toView: (row: R) => V, asked: PageRequest): { items: V[]; total: number; limit: number; offset: number } {
  return { items: page.items.map((row) => toView(row)), total: page.total, limit: asked.limit, offset: asked.offset };
}

/**
 * The conditions of a WHERE clause, AND-ed, with their parameters numbered `$1`, `$2`, … in the order they are
 * bound. Values always travel as parameters; only the SQL text given to `and` is spliced.
 */
export class Where {
  readonly #conditions: string[] = [];
  readonly #params: unknown[] = [];

  /** Binds `value` and returns its placeholder, for a condition that names one value more than once. */
  param(value: unknown): string {
    return `$${this.#params.push(value)}`;
  }

  /** Adds a condition; each `?` in it binds the next of `values` (`'at >= ?'`, `'name ILIKE ? ESCAPE ...'`). */
  and(condition: string, ...values: unknown[]): this {
    let i = 0;
    const sql = values.length === 0 ? condition : condition.replace(/\?/g, () => this.param(values[i++]));
    if (i !== values.length) throw new Error(`condition '${condition}' has ${i} placeholder(s) for ${values.length} value(s)`);
    this.#conditions.push(sql);
    return this;
  }

  /** `WHERE a AND b`, or nothing without conditions. */
  get sql(): string {
    return this.#conditions.length ? `WHERE ${this.#conditions.join(' AND ')}` : '';
  }

  get params(): readonly unknown[] {
    return this.#params;
  }
}

/** A paged list statement in parts. */
export interface PagedQuery {
  /** `SELECT <columns> FROM <table> [JOIN …]`, without WHERE. */
  select: string;
  /** The FROM part the count runs on (`orders`, `assets a`); the filters may name only its columns. */
  countFrom: string;
  where: Where;
  /** The page's order; it ends on a unique column, so pages neither overlap nor skip rows. */
  orderBy: string;
}

/**
 * Runs one page of `query` and its total count (two statements, the count second). `LIMIT` and `OFFSET` are
 * bound after the filters' parameters.
 */
export async function queryPage<R>(q: Queryable, query: PagedQuery, page: PageRequest): Promise<Page<R>> {
  const { where } = query;
  const n = where.params.length;
  const { rows } = await q.query<R>(`${query.select} ${where.sql} ORDER BY ${query.orderBy} LIMIT $${n + 1} OFFSET $${n + 2}`, [
    ...where.params,
    page.limit,
    page.offset,
  ]);
  const count = await q.query<{ total: number }>(`SELECT count(*)::int AS total FROM ${query.countFrom} ${where.sql}`, [...where.params]);
  return { items: rows, total: count.rows[0]?.total ?? 0 };
}
