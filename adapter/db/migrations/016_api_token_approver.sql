-- An approver token decides only as the one approver it is bound to at mint; before this an approver token
-- approved any order by naming that order's approver in the request body. Approver tokens minted before this
-- migration keep a NULL binding and are refused when they decide, until an admin mints a bound replacement.
-- Stored trimmed and lower-cased, the way approvals store approver_email, so the comparison is plain equality.
ALTER TABLE api_tokens ADD COLUMN approver_email text;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_approver_email_check
  CHECK (approver_email IS NULL OR (role = 'approver' AND approver_email <> '' AND approver_email = lower(btrim(approver_email))));
