import type { Queryable } from '../../../adapter';

/*
 * The SQL of the expiry warnings (expiry-warnings.ts): which orders are due a warning, and the record that one was
 * sent for an order's `requested_until` (migration 024's `order_expiry_warnings`).
 */

/** An order whose type's warning window has begun, with what its warning says. */
export interface DueExpiryWarning {
  id: number;
  user_email: string;
  user_name: string;
  status: string;
  requested_until: Date;
  asset_type_name: string;
  expiry_warning_days: number;
}

// Orders that will end and can still be extended (an order already ending, or ended, needs no warning), whose type
// warns, whose end is ahead but within the type's window, and not yet warned for this end. An extension moves
// `requested_until`, so the same order is due again for its new end.
const DUE = `o.action = 'provision'
   AND o.status IN ('scheduled', 'processing', 'provisioning', 'provisioned')
   AND o.requested_until IS NOT NULL
   AND t.expiry_warning_days IS NOT NULL
   AND o.requested_until > now()
   AND o.requested_until <= now() + make_interval(days => t.expiry_warning_days)
   AND NOT EXISTS (SELECT 1 FROM order_expiry_warnings w WHERE w.order_id = o.id AND w.requested_until = o.requested_until)`;

const COLUMNS = `o.id, o.user_email, o.user_name, o.status, o.requested_until, t.name AS asset_type_name, t.expiry_warning_days`;

const fromDb = (r: DueExpiryWarning): DueExpiryWarning => ({
  ...r,
  id: Number(r.id),
  requested_until: new Date(r.requested_until),
  expiry_warning_days: Number(r.expiry_warning_days),
});

/** The ids of orders due a warning now, soonest end first (at most `limit`). */
export async function selectDueExpiryWarnings(q: Queryable, limit: number): Promise<number[]> {
  const { rows } = await q.query<{ id: string | number }>(
    `SELECT o.id FROM orders o JOIN asset_types t ON t.id = o.asset_type_id WHERE ${DUE} ORDER BY o.requested_until, o.id LIMIT $1`,
    [limit],
  );
  return rows.map((r) => Number(r.id));
}

/** The order if it is (still) due a warning, locked; undefined otherwise (extended, ended, warned meanwhile). */
export async function lockDueExpiryWarning(tx: Queryable, orderId: number): Promise<DueExpiryWarning | undefined> {
  const { rows } = await tx.query<DueExpiryWarning>(
    `SELECT ${COLUMNS} FROM orders o JOIN asset_types t ON t.id = o.asset_type_id WHERE o.id = $1 AND ${DUE} FOR UPDATE OF o`,
    [orderId],
  );
  return rows[0] ? fromDb(rows[0]) : undefined;
}

/**
 * Records the warning for the order's `requested_until`; false when one was recorded already (the primary key
 * holds "once" across processes and scans).
 */
export async function insertExpiryWarning(tx: Queryable, orderId: number, requestedUntil: Date): Promise<boolean> {
  const r = await tx.query('INSERT INTO order_expiry_warnings (order_id, requested_until) VALUES ($1, $2) ON CONFLICT DO NOTHING', [orderId, requestedUntil]);
  return r.rowCount !== 0;
}
