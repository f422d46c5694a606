-- An approval whose order ended before anyone decided it (the requester left and the order was cancelled) is
-- `withdrawn`, so that no approver is left with a pending request for an order that no longer waits.
ALTER TABLE approvals DROP CONSTRAINT approvals_status_check;
ALTER TABLE approvals ADD CONSTRAINT approvals_status_check
  CHECK (status IN ('pending', 'approved', 'declined', 'superseded', 'withdrawn'));
