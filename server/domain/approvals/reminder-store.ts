import type { Queryable } from '../../../adapter';
import type { OrderStatus } from '../orders/order-status';
import type { ApprovalKind, ApprovalStatus } from './store';

/*
 * The SQL of the approval clock (reminders.ts): the reads and writes a reminder, an escalation and an expiry make on
 * `approvals` beyond what routing and deciding do (store.ts).
 */

/** The step of an approval's clock due next (migration 024). */
export type ClockStep = 'remind' | 'escalate' | 'expire';

/** An approval as the clock's jobs see it, with what they need of its order. */
export interface TimerApproval {
  id: number;
  order_id: number;
  kind: ApprovalKind;
  /** For an extension: the end it asks for. */
  requested_until: Date | null;
  approver_email: string;
  status: ApprovalStatus;
  last_reminded_at: Date | null;
  clock_step: ClockStep;
  created_at: Date;
  /** A deputy's approval: the approver they stand in for. */
  on_behalf_of: string | null;
  /** The order's requester, lower-cased. */
  requester: string;
  asset_type_id: number;
  order_status: OrderStatus;
  order_requested_until: Date | null;
  extension_requested_until: Date | null;
}

const toDate = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));

/** The order an approval belongs to; undefined for an unknown approval. Read unlocked: the order is locked first. */
export async function selectApprovalOrderId(q: Queryable, approvalId: number): Promise<number | undefined> {
  const { rows } = await q.query<{ order_id: string | number }>('SELECT order_id FROM approvals WHERE id = $1', [approvalId]);
  return rows[0] ? Number(rows[0].order_id) : undefined;
}

/**
 * The approval with what the clock needs of its order, the approval row locked (the caller has locked the order
 * first, the order in which a decision takes them); undefined for an unknown one.
 */
export async function lockTimerApproval(q: Queryable, approvalId: number): Promise<TimerApproval | undefined> {
  const { rows } = await q.query<TimerApproval>(
    `SELECT a.id, a.order_id, a.kind, a.requested_until, a.approver_email, a.status, a.last_reminded_at, a.clock_step,
            a.created_at, a.on_behalf_of, lower(o.user_email) AS requester, o.asset_type_id, o.status AS order_status,
            o.requested_until AS order_requested_until, o.extension_requested_until
       FROM approvals a JOIN orders o ON o.id = a.order_id
      WHERE a.id = $1
      FOR UPDATE OF a`,
    [approvalId],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    ...r,
    id: Number(r.id),
    order_id: Number(r.order_id),
    asset_type_id: Number(r.asset_type_id),
    requested_until: toDate(r.requested_until),
    last_reminded_at: toDate(r.last_reminded_at),
    created_at: new Date(r.created_at),
    order_requested_until: toDate(r.order_requested_until),
    extension_requested_until: toDate(r.extension_requested_until),
  };
}

/** Counts a reminder sent now; returns the new count and moment. */
export async function markReminded(q: Queryable, approvalId: number): Promise<{ reminders_sent: number; last_reminded_at: Date }> {
  const { rows } = await q.query<{ reminders_sent: number; last_reminded_at: Date | string }>(
    `UPDATE approvals SET reminders_sent = reminders_sent + 1, last_reminded_at = now() WHERE id = $1
     RETURNING reminders_sent, last_reminded_at`,
    [approvalId],
  );
  const r = rows[0]!;
  return { reminders_sent: Number(r.reminders_sent), last_reminded_at: new Date(r.last_reminded_at) };
}

/** Moves the approval's clock to `step`. */
export async function setClockStep(q: Queryable, approvalId: number, step: ClockStep): Promise<void> {
  await q.query('UPDATE approvals SET clock_step = $2 WHERE id = $1', [approvalId, step]);
}
