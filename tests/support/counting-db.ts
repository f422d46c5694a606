import type { Database, Transaction } from '../../adapter';

/** A Database whose round trips are counted: every `query`, and every statement of its transactions. */
export interface CountingDatabase extends Database {
  /** Statements sent so far, in order (their SQL). */
  readonly statements: string[];
}

/** Wraps `db` so each statement sent through it (directly or inside a transaction) is recorded; `db` itself is shared. */
export function countingDatabase(db: Database): CountingDatabase {
  const statements: string[] = [];
  const countTx = (tx: Transaction): Transaction => ({
    query: <R,>(sql: string, params?: readonly unknown[]) => {
      statements.push(sql);
      return tx.query<R>(sql, params);
    },
    exec: (sql) => {
      statements.push(sql);
      return tx.exec(sql);
    },
  });
  return {
    statements,
    get kind() {
      return db.kind;
    },
    query: <R,>(sql: string, params?: readonly unknown[]) => {
      statements.push(sql);
      return db.query<R>(sql, params);
    },
    transaction: (fn) => db.transaction((tx) => fn(countTx(tx))),
    exec: (sql) => {
      statements.push(sql);
      return db.exec(sql);
    },
    close: () => db.close(),
  };
}
