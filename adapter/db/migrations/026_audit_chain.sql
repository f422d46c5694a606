-- A tamper-evident audit log: every audit row is linked into one hash chain. Each link holds the SHA-256 of the row's
-- canonical text together with the previous link's hash, so changing, deleting or inserting a row behind the
-- triggers' back (a superuser can disable them) breaks the chain at that row; `provisio audit verify` finds where.
--
-- Why a separate `audit_chain` table rather than `prev_hash`/`hash` columns on audit_log: the hash can only be
-- computed at commit (below), after the row is inserted, so columns would have to be filled by an UPDATE, and
-- audit_log's refusal would have to become a row trigger with an exception for exactly that UPDATE. The statement
-- triggers of 001 refuse every UPDATE and DELETE unconditionally, even one matching no row; keeping them untouched
-- keeps that guarantee simple, and the chain table gets the same unconditional refusal. The link of a row is found by
-- `audit_chain.audit_id` (unique); there is no foreign key, so that verifying (not the engine) is what reports a
-- link whose row is gone, and the insert path carries no extra FK check.
--
-- Concurrency: many transactions write audit rows at once, and ids from the sequence commit out of order, so the
-- chain cannot be built at insert time. A DEFERRABLE INITIALLY DEFERRED constraint trigger runs for each audit row at
-- commit: it takes a transaction-level advisory lock (held from there to the end of the commit only, never for the
-- transaction's whole length), reads the head, and appends the link. A transaction's deferred triggers run in the
-- order its rows were inserted, which is their id order, so its rows are linked consecutively in id order; the chain
-- order across transactions is commit order (`seq`). `prev_hash` is UNIQUE: should two commits ever read the same
-- head (a REPEATABLE READ transaction whose snapshot predates the other's commit), the second fails with a unique
-- violation instead of forking the chain silently.

CREATE TABLE audit_chain (
  seq        bigserial PRIMARY KEY,               -- the chain's order: commit order, then id order within a commit
  audit_id   bigint NOT NULL UNIQUE,              -- audit_log.id
  prev_hash  text NOT NULL UNIQUE,                -- the previous link's hash; 64 zeros for the first
  hash       text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);

-- The canonical text of an audit row and its predecessor's hash, hashed. A JSON array (json, not jsonb, so the order
-- is kept) quotes and escapes every field, so no field can run into the next; `at` is written in UTC with
-- microseconds whatever the session's TimeZone; `diff::text` is jsonb's own canonical text. The same function serves
-- the trigger and the verifier, so both hash the database's text, never the application's.
CREATE FUNCTION audit_row_hash(a audit_log, prev_hash text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT encode(sha256(convert_to(json_build_array(
    a.id::text,
    to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    a.entity,
    a.entity_id,
    a.action,
    a.diff::text,
    a.triggered_by,
    a.request_id,
    prev_hash
  )::text, 'UTF8')), 'hex')
$$;

-- Any fixed number, shared by every process writing to this database.
CREATE FUNCTION audit_chain_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  head text;
BEGIN
  PERFORM pg_advisory_xact_lock(7302114826);
  SELECT hash INTO head FROM audit_chain ORDER BY seq DESC LIMIT 1;
  head := coalesce(head, repeat('0', 64));
  INSERT INTO audit_chain (audit_id, prev_hash, hash) VALUES (NEW.id, head, audit_row_hash(NEW, head));
  RETURN NULL;
END;
$$;

-- Rows that exist before this migration are linked in id order.
DO $$
DECLARE
  r audit_log;
  head text := repeat('0', 64);
  h text;
BEGIN
  FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
    h := audit_row_hash(r, head);
    INSERT INTO audit_chain (audit_id, prev_hash, hash) VALUES (r.id, head, h);
    head := h;
  END LOOP;
END;
$$;

CREATE CONSTRAINT TRIGGER audit_log_chain AFTER INSERT ON audit_log
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_chain_link();

-- The chain is evidence too: appended to, never changed. The refusal of 001 now names the table it guards.
CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP USING ERRCODE = 'P0001';
END;
$$;
CREATE TRIGGER audit_chain_no_update_delete BEFORE UPDATE OR DELETE ON audit_chain
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
