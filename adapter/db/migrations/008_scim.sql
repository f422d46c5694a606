-- SCIM 2.0 (RFC 7643/7644): the minimal records identity providers read back after writing them.
-- Deleted resources are removed (a hard DELETE frees the userName); deactivated users stay with active = false.

CREATE TABLE scim_users (
  id              uuid PRIMARY KEY,
  user_name       text NOT NULL,
  external_id     text,
  name            jsonb,
  display_name    text,
  emails          jsonb NOT NULL DEFAULT '[]'::jsonb,
  active          boolean NOT NULL DEFAULT true,
  -- urn:ietf:params:scim:schemas:extension:enterprise:2.0:User
  department      text,
  cost_center     text,
  employee_number text,
  manager         jsonb,
  -- every other attribute the IdP sent (title, phoneNumbers, addresses, …), stored as sent; never a password
  raw             jsonb NOT NULL DEFAULT '{}'::jsonb,
  version         integer NOT NULL DEFAULT 1,
  -- start of the current deactivation, the leaver flow's idempotency key for it
  deactivated_at  timestamptz,
  created         timestamptz NOT NULL DEFAULT now(),
  last_modified   timestamptz NOT NULL DEFAULT now()
);
-- userName is caseExact false (RFC 7643 §4.1.1): unique regardless of case.
CREATE UNIQUE INDEX scim_users_user_name_key ON scim_users (lower(user_name));
-- not unique: IdPs reuse externalIds (the Microsoft reference collection sends one literal for all)
CREATE INDEX scim_users_external_id_idx ON scim_users (external_id);
CREATE INDEX scim_users_created_idx ON scim_users (created, id);

CREATE TABLE scim_groups (
  id             uuid PRIMARY KEY,
  display_name   text NOT NULL,
  external_id    text,
  raw            jsonb NOT NULL DEFAULT '{}'::jsonb,
  version        integer NOT NULL DEFAULT 1,
  created        timestamptz NOT NULL DEFAULT now(),
  last_modified  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scim_groups_display_name_idx ON scim_groups (lower(display_name));
CREATE INDEX scim_groups_created_idx ON scim_groups (created, id);

-- Members are kept as sent: IdPs may add ids of users this server never saw, and display strings.
CREATE TABLE scim_group_members (
  group_id  uuid NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
  value     text NOT NULL,
  display   text,
  type      text,
  PRIMARY KEY (group_id, value)
);
CREATE INDEX scim_group_members_value_idx ON scim_group_members (value);

-- What each SCIM request got, for admins reading an IdP's error report. Never bodies, never credentials.
CREATE TABLE scim_request_log (
  id          bigserial PRIMARY KEY,
  method      text NOT NULL,
  path        text NOT NULL,
  status      integer NOT NULL,
  scim_type   text,
  detail      text,
  token_name  text,
  request_id  text,
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scim_request_log_at_idx ON scim_request_log (at DESC, id DESC);
