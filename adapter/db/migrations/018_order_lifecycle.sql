-- The order lifecycle: cancel, return, extend, retry, a delayed start at `requested_from` and an expiry at
-- `requested_until`. The delayed start and the expiry are pg-boss jobs with `start_after` (durable in pgboss.job,
-- so a restart loses neither); what this migration adds is what the renewals need.

-- The longest an order of the type may run, counted from its `requested_from` (else its creation): an extension
-- (or a new order) whose `requested_until` lies beyond it is refused. Null: no limit.
ALTER TABLE asset_types
  ADD COLUMN max_duration_days integer
    CONSTRAINT asset_types_max_duration_days_range CHECK (max_duration_days BETWEEN 1 AND 3650);

-- An extension waiting for approval: the `requested_until` it asks for, applied when it is approved. Kept on the
-- order rather than only on the approval because an extension nobody could be routed to (no manager, no fallback
-- approver) has no approval row, yet an admin may still approve it, as with an unrouted order.
ALTER TABLE orders ADD COLUMN extension_requested_until timestamptz;

-- What an approval decides: the order itself (placing it), or an extension of it (its new `requested_until`).
-- An order waits for one approval at a time (approvals_one_pending_per_order), whichever kind it is.
ALTER TABLE approvals
  ADD COLUMN kind text NOT NULL DEFAULT 'order' CONSTRAINT approvals_kind_check CHECK (kind IN ('order', 'extension')),
  ADD COLUMN requested_until timestamptz,
  ADD CONSTRAINT approvals_extension_until CHECK ((kind = 'extension') = (requested_until IS NOT NULL));
