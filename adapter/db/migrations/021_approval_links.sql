-- One-click approval links: each approval request mails its approver an Approve and a Decline link. A row is one
-- link: what it decides (approval, order, approver, decision), until when, and whether it has been used.
--
-- No secret is stored. `id` is the link's random identifier (128 bits, base64url), the `jti` of the signed token;
-- the token in the mailed URL is `<id>.<expiry>.<MAC>`, the MAC an HMAC-SHA256 under a key held by the service
-- (APPROVAL_LINK_KEY or DATA_DIR/approval-link.key) over this row's binding, recomputed from the row at each use.
-- Knowing a row therefore grants nothing, and a row changed after issue no longer matches any token it had.
CREATE TABLE approval_links (
  id              text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{22}$'),
  approval_id     bigint NOT NULL REFERENCES approvals (id) ON DELETE RESTRICT,
  order_id        bigint NOT NULL REFERENCES orders (id) ON DELETE RESTRICT,
  approver_email  text NOT NULL CHECK (approver_email <> '' AND approver_email = lower(approver_email)),
  decision        text NOT NULL CHECK (decision IN ('approved', 'declined')),
  -- Whole seconds: the token carries the expiry as Unix seconds, and the MAC covers it.
  expires_at      timestamptz NOT NULL CHECK (expires_at = date_trunc('second', expires_at)),
  created_at      timestamptz NOT NULL DEFAULT now(),
  -- Set once, in the transaction that makes the decision: a link decides at most once.
  used_at         timestamptz,
  -- The attribution the decision was made with (`approval-link:<approver>`).
  used_by         text,
  -- What the decision did: the round `approved` or `declined`, or the approval `counted` towards a quorum.
  outcome         text CHECK (outcome IN ('approved', 'declined', 'counted')),
  CONSTRAINT approval_links_used_check CHECK ((used_at IS NULL) = (used_by IS NULL) AND (used_at IS NULL) = (outcome IS NULL))
);
-- The links of an approval ("links sent" in the approvals API).
CREATE INDEX approval_links_approval_idx ON approval_links (approval_id, created_at);
