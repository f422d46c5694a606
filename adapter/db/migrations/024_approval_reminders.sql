-- Approvals that do not wait forever: a pending approval is reminded, then escalated (superseded and re-routed to
-- the approver's manager, else the type's fallback approver), then expires (the order is cancelled). The clock is
-- kept by pg-boss jobs with `start_after` (durable in pgboss.job); what the rows need is what the jobs check and what
-- the API shows.

-- How often the approver was reminded, and when last (the API shows both).
-- `clock_step` is the step of the clock due next: each job carries the step it was sent for and acts only while
-- the approval is still pending at that step, then moves it on, under the row's lock; so a job delivered twice, or
-- one that finds the approval decided, changes nothing. An escalated approval starts at `expire`.
ALTER TABLE approvals
  ADD COLUMN reminders_sent integer NOT NULL DEFAULT 0 CONSTRAINT approvals_reminders_sent_range CHECK (reminders_sent >= 0),
  ADD COLUMN last_reminded_at timestamptz,
  ADD COLUMN clock_step text NOT NULL DEFAULT 'remind'
    CONSTRAINT approvals_clock_step_check CHECK (clock_step IN ('remind', 'escalate', 'expire'));

-- `expired`: nobody decided in time; the order (or the extension) it decided is cancelled (dropped).
ALTER TABLE approvals DROP CONSTRAINT approvals_status_check;
ALTER TABLE approvals ADD CONSTRAINT approvals_status_check
  CHECK (status IN ('pending', 'approved', 'declined', 'superseded', 'withdrawn', 'expired'));

-- Days before an order's `requested_until` its requester is warned that it ends. Null: no warning.
ALTER TABLE asset_types
  ADD COLUMN expiry_warning_days integer
    CONSTRAINT asset_types_expiry_warning_days_range CHECK (expiry_warning_days BETWEEN 1 AND 365);

-- The expiry warnings sent: one per order and `requested_until`, so the hourly scan warns once, and an extension
-- (a new `requested_until`) is warned again. The primary key is what makes "once" hold across processes.
CREATE TABLE order_expiry_warnings (
  order_id         bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  requested_until  timestamptz NOT NULL,
  sent_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (order_id, requested_until)
);
-- The scan's candidates: orders that end at all.
CREATE INDEX IF NOT EXISTS orders_requested_until_idx ON orders (requested_until) WHERE requested_until IS NOT NULL;
