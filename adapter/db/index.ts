export type { Database, DatabaseKind, Queryable, QueryResult, Transaction } from './database';
export { PgErrorCode, sqlState } from './database';
export { createPgliteDatabase } from './pglite';
export { createPostgresDatabase } from './postgres';
export { migrate, pendingMigrations, listMigrations } from './migrate';
export { openDatabase } from './open';
export { writeAudit, stripSecrets } from './audit-log';
export type { Actor, AuditEntry } from './audit-log';
