-- Approvals that reach more than one person: N-of-M quorums, deputies standing in for an approver for a while, and
-- the record separation of duties needs (who last configured an asset type).

-- Who last created or changed the asset type, as its audit attribution (`admin:token:<name>`, `admin:key`, ...):
-- that person may not approve the type's orders. NULL for types configured before this migration.
ALTER TABLE asset_types ADD COLUMN last_configured_by text;
-- The type's quorum policy, `{"quorum": N, "approvers": [emails], "approver_group": name-or-DN | null}`; NULL: one
-- approver (the requester's manager, else the fallback approver), as before.
ALTER TABLE asset_types ADD COLUMN approval jsonb;

-- One decision an order (or an extension of it) waits for: `quorum` approvals out of the approval rows routed in it.
-- `single` rounds are the one-approver routing (manager, else fallback approver): with nobody left to hand one on
-- to, the order stays waiting, unrouted, for an admin. `quorum` rounds come from the type's policy: once too few
-- approvers are left to reach the quorum, the round is declined.
CREATE TABLE approval_rounds (
  id               bigserial PRIMARY KEY,
  order_id         bigint NOT NULL REFERENCES orders (id) ON DELETE RESTRICT,
  kind             text NOT NULL CHECK (kind IN ('order', 'extension')),
  requested_until  timestamptz,
  mode             text NOT NULL CHECK (mode IN ('single', 'quorum')),
  quorum           integer NOT NULL CHECK (quorum >= 1),
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX approval_rounds_order_idx ON approval_rounds (order_id);

-- An approver's deputy for a window [starts_at, ends_at). Windows of one approver never overlap (checked under an
-- advisory lock per approver when one is created: an exclusion constraint would need btree_gist, which PGlite lacks).
CREATE TABLE approval_delegations (
  id              bigserial PRIMARY KEY,
  approver_email  text NOT NULL CHECK (approver_email <> '' AND approver_email = lower(approver_email)),
  deputy_email    text NOT NULL CHECK (deputy_email <> '' AND deputy_email = lower(deputy_email)),
  starts_at       timestamptz NOT NULL,
  ends_at         timestamptz NOT NULL,
  reason          text,
  created_by      text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  revoked_at      timestamptz,
  revoked_by      text,
  CONSTRAINT approval_delegations_window_check CHECK (ends_at > starts_at),
  CONSTRAINT approval_delegations_not_self_check CHECK (deputy_email <> approver_email)
);
CREATE INDEX approval_delegations_approver_idx ON approval_delegations (approver_email, starts_at) WHERE revoked_at IS NULL;
CREATE INDEX approval_delegations_deputy_idx ON approval_delegations (deputy_email) WHERE revoked_at IS NULL;

ALTER TABLE approvals ADD COLUMN round_id bigint REFERENCES approval_rounds (id);
-- A deputy's approval: the approver they stand in for, and the delegation that sent it to them.
ALTER TABLE approvals ADD COLUMN on_behalf_of text CHECK (on_behalf_of IS NULL OR on_behalf_of = lower(on_behalf_of));
ALTER TABLE approvals ADD COLUMN delegation_id bigint REFERENCES approval_delegations (id);

-- Existing approvals: one single-approver round per first routing, shared by the rows it was handed on to.
DO $$
DECLARE
  a record;
  rid bigint;
BEGIN
  FOR a IN SELECT id, order_id, kind, requested_until, created_at FROM approvals WHERE routed_from_approval_id IS NULL ORDER BY id LOOP
    INSERT INTO approval_rounds (order_id, kind, requested_until, mode, quorum, created_at)
      VALUES (a.order_id, a.kind, a.requested_until, 'single', 1, a.created_at) RETURNING id INTO rid;
    UPDATE approvals SET round_id = rid WHERE id = a.id;
  END LOOP;
  LOOP
    UPDATE approvals c SET round_id = p.round_id
      FROM approvals p
     WHERE c.routed_from_approval_id = p.id AND c.round_id IS NULL AND p.round_id IS NOT NULL;
    EXIT WHEN NOT FOUND;
  END LOOP;
END $$;

-- An approval inserted without a round joins the round of the approval it was handed on from (a re-route, an
-- escalation), else opens a single-approver round of its own. Every writer of approvals (this service's routing,
-- and any later one that inserts a row the old way) then keeps the invariant below without knowing rounds.
CREATE FUNCTION approvals_fill_round() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.routed_from_approval_id IS NOT NULL THEN
    SELECT round_id INTO NEW.round_id FROM approvals WHERE id = NEW.routed_from_approval_id;
  END IF;
  IF NEW.round_id IS NULL THEN
    INSERT INTO approval_rounds (order_id, kind, requested_until, mode, quorum)
      VALUES (NEW.order_id, NEW.kind, NEW.requested_until, 'single', 1) RETURNING id INTO NEW.round_id;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER approvals_fill_round BEFORE INSERT ON approvals
  FOR EACH ROW WHEN (NEW.round_id IS NULL) EXECUTE FUNCTION approvals_fill_round();
ALTER TABLE approvals ALTER COLUMN round_id SET NOT NULL;
CREATE INDEX approvals_round_idx ON approvals (round_id);

-- A quorum waits for several approvers at once; each still waits at most once per order (one vote per person).
DROP INDEX approvals_one_pending_per_order;
CREATE UNIQUE INDEX approvals_one_pending_per_approver ON approvals (order_id, approver_email) WHERE status = 'pending';
