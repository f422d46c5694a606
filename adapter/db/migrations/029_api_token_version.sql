-- The version of the API token table, for the verified-token cache of server/auth/authenticate.ts. A process keeps
-- each token it verified together with the version read in the same statement, and trusts it only while the version it
-- last read is still that one. Any change that can take a token's rights away (revoked_at, expires_at, scopes, role,
-- the approver binding, the hash or name, a delete by the purge) bumps it, in the changing transaction itself, so the
-- database, not a process's memory, says when a cached token must be asked about again. `last_used_at` (touched once
-- a minute per token) is left out on purpose: it changes nobody's rights and would empty every cache every minute.
CREATE TABLE api_token_version (
  only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  version   bigint NOT NULL
);
INSERT INTO api_token_version (version) VALUES (1);

-- The new version is also announced on channel `api_token_version` (delivered at commit, to every process
-- listening), so caches drop what they hold without asking the database on each request.
CREATE FUNCTION api_token_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v bigint;
BEGIN
  UPDATE api_token_version SET version = version + 1 RETURNING version INTO v;
  PERFORM pg_notify('api_token_version', v::text);
  RETURN NULL;
END;
$$;

-- Per statement: a purge deleting many tokens bumps once. INSERT is left out: a new token was never cached.
CREATE TRIGGER api_tokens_version_update AFTER UPDATE OF name, token_hash, scopes, role, approver_email, expires_at, revoked_at
  ON api_tokens FOR EACH STATEMENT EXECUTE FUNCTION api_token_version_bump();
CREATE TRIGGER api_tokens_version_delete AFTER DELETE ON api_tokens FOR EACH STATEMENT EXECUTE FUNCTION api_token_version_bump();
