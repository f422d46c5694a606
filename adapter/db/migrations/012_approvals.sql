-- Approvals: who is to decide an order that waits in `pending_approval`, and what they decided.
-- One row per routing; a re-route (the approver left) supersedes the row and adds a new one pointing back at it.

-- Where an approval goes when the requester has no manager in the directory (and where a leaver's go).
ALTER TABLE asset_types ADD COLUMN fallback_approver text CHECK (fallback_approver IS NULL OR fallback_approver = lower(fallback_approver));

CREATE TABLE approvals (
  id                       bigserial PRIMARY KEY,
  order_id                 bigint NOT NULL REFERENCES orders (id) ON DELETE RESTRICT,
  approver_email           text NOT NULL CHECK (approver_email = lower(approver_email)),
  status                   text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'declined', 'superseded')),
  routed_from_approval_id  bigint REFERENCES approvals (id),
  reason                   text,
  decided_at               timestamptz,
  decided_by               text,
  created_at               timestamptz NOT NULL DEFAULT now()
);
-- An order waits for one approver at a time.
CREATE UNIQUE INDEX approvals_one_pending_per_order ON approvals (order_id) WHERE status = 'pending';
-- The approver's queue, and the leaver flow's lookup of the approvals a leaver was to give.
CREATE INDEX approvals_pending_approver_idx ON approvals (approver_email) WHERE status = 'pending';
CREATE INDEX approvals_order_idx ON approvals (order_id);
CREATE INDEX approvals_created_idx ON approvals (created_at DESC, id DESC);
