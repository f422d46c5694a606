/**
 * The one narrow database interface every room persists through. Two implementations:
 * PostgreSQL through a `pg` pool, and embedded PGlite. Both run the same SQL.
 */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** Something that runs parameterised SQL: the database itself or an open transaction. */
export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
}

/** An open transaction: parameterised queries plus multi-statement DDL. */
export interface Transaction extends Queryable {
  exec(sql: string): Promise<void>;
}

export type DatabaseKind = 'pglite' | 'postgres';

export interface Database extends Queryable {
  readonly kind: DatabaseKind;
  /**
   * Runs `fn` inside BEGIN/COMMIT. The transaction is rolled back, and the error rethrown,
   * when `fn` throws. On PGlite transactions are serialised because it is one connection.
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Runs parameter-less, possibly multi-statement SQL (migrations, pg-boss DDL). */
  exec(sql: string): Promise<void>;
  /**
   * LISTENs on `channel` (a plain identifier): `onNotify` gets the payload of each NOTIFY committed on it, `onLost`
   * is told once when the listening connection is gone (nothing is delivered afterwards). Absent where
   * notifications cannot be received (a client of the embedded database through its holder's socket).
   */
  listen?(channel: string, onNotify: (payload: string) => void, onLost?: () => void): Promise<Listener>;
  close(): Promise<void>;
}

/** A LISTEN in progress; `close` ends it. */
export interface Listener {
  close(): Promise<void>;
}

/** PostgreSQL error codes we act on. */
export const PgErrorCode = {
  UNIQUE_VIOLATION: '23505',
  FOREIGN_KEY_VIOLATION: '23503',
  CHECK_VIOLATION: '23514',
  RAISE_EXCEPTION: 'P0001',
} as const;

/** The SQLSTATE of a driver error, from either implementation. */
export function sqlState(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}
