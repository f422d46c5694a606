import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from '../../adapter';

/** An HR payload fixture from `tests/fixtures/hr/`, parsed (a fresh copy per call). */
export function hrFixture<T = Record<string, unknown>>(name: 'native' | 'workday' | 'successfactors' | 'graph' | 'graph-deleted'): T {
  return JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'hr', `${name}.json`), 'utf8')) as T;
}

/**
 * Inserts orders for one person straight into the table, one per status given (the order API has its own
 * tests, and this is the fast way to give someone a thousand orders). Returns their ids, in order.
 */
export async function seedOrders(
  db: Database,
  o: { assetTypeId: number; email: string; employeeId?: string | null; statuses: readonly string[] },
): Promise<number[]> {
  const { rows } = await db.query<{ id: string | number }>(
    `INSERT INTO orders (asset_type_id, status, source, user_email, user_name, requester_employee_id, created_by)
     SELECT $1, s, 'api', lower($2), $2, $3, 'system:test' FROM unnest($4::text[]) WITH ORDINALITY AS u(s, n) ORDER BY n
     RETURNING id`,
    [o.assetTypeId, o.email, o.employeeId ?? null, o.statuses],
  );
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

/** Statuses of the given orders, by id. */
export async function statusesOf(db: Database, ids: readonly number[]): Promise<Record<number, string>> {
  const { rows } = await db.query<{ id: string | number; status: string }>('SELECT id, status FROM orders WHERE id = ANY($1::bigint[])', [ids]);
  return Object.fromEntries(rows.map((r) => [Number(r.id), r.status]));
}

/** The `order.deprovision` jobs of each order: how many there are per order id. */
export async function deprovisionJobsPerOrder(db: Database, ids: readonly number[]): Promise<Record<number, number>> {
  const { rows } = await db.query<{ order_id: string; n: number }>(
    `SELECT data->>'orderId' AS order_id, count(*)::int AS n FROM pgboss.job
      WHERE name = 'order.deprovision' AND (data->>'orderId')::bigint = ANY($1::bigint[]) GROUP BY 1`,
    [ids],
  );
  return Object.fromEntries(rows.map((r) => [Number(r.order_id), r.n]));
}
