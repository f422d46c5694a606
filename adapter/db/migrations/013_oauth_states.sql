-- Pending OAuth 2.0 authorization-code flows: the `state` an operator was sent to the provider with. The state is
-- the only credential of the public callback, so it is stored hashed (SHA-256), bound to one integration, used once
-- (deleted when the callback consumes it) and valid for ten minutes.
CREATE TABLE oauth_states (
  state_hash      text PRIMARY KEY,
  integration_id  bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
  created_by      text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL
);

CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);
