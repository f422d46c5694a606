-- Secrets at rest (adapter/secrets): every stored secret is sealed (AES-256-GCM) under a data key, and the data keys
-- are kept here wrapped under the master key (SECRETS_KEY or the key file). The master key itself is never stored:
-- `master_key_id` is its fingerprint (first 16 hex digits of SHA-256 of an HKDF of it), so a start with the wrong
-- key can name both fingerprints without revealing either key.
--
-- Rotating the master key re-wraps these few rows and leaves every sealed value as it is; a new data key becomes the
-- active one (what new values are sealed under) while older keys stay, inactive, until no value uses them.
CREATE TABLE secret_keys (
  id             text PRIMARY KEY,              -- random (base64url); sealed values name it: enc:v1:<id>:...
  wrapped_key    text NOT NULL,                 -- base64 of IV | ciphertext | tag of the data key, AAD = id
  master_key_id  text NOT NULL,
  active         boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  rotated_at     timestamptz
);
-- At most one active key: two processes creating the first key at once meet here, and one of them wins.
CREATE UNIQUE INDEX secret_keys_one_active ON secret_keys (active) WHERE active;

-- An asset type's Teams webhook URL is stored sealed now (enc:v1:...), which no longer starts with https://: the
-- rule is checked before the value is sealed (teams.ts), as the settings' webhook_url always was.
ALTER TABLE asset_type_teams_webhooks DROP CONSTRAINT asset_type_teams_webhooks_https;

-- Rows written before this migration hold their secrets in plain text: the start-up pass (server/domain/secrets,
-- sealPlaintextSecrets) seals them with the master key, which SQL here cannot know.
