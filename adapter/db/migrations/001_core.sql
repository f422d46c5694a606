-- Core schema: settings, API tokens, the append-only audit log, the asset catalogue, pool instances, orders.

CREATE TABLE app_config (
  key         text PRIMARY KEY,            -- "<section>.<name>", e.g. "servicenow.webhook_secret"
  section     text NOT NULL,
  value       jsonb NOT NULL,
  is_secret   boolean NOT NULL DEFAULT false,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text NOT NULL
);
CREATE INDEX app_config_section_idx ON app_config (section);

CREATE TABLE api_tokens (
  id            bigserial PRIMARY KEY,
  name          text NOT NULL,
  token_hash    text NOT NULL UNIQUE,       -- hex SHA-256 of the raw xpat_ token; the raw token is never stored
  token_prefix  text NOT NULL,              -- first characters of the raw token, to recognise it in lists
  scopes        text[] NOT NULL,
  role          text CHECK (role IN ('superadmin', 'admin', 'approver', 'auditor', 'helpdesk')),
  created_by    text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  revoked_at    timestamptz,
  last_used_at  timestamptz
);
-- A live token's name is what audit rows attribute actions to (webhook:token:<name>), so it must be unambiguous.
CREATE UNIQUE INDEX api_tokens_live_name_idx ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
  id            bigserial PRIMARY KEY,
  at            timestamptz NOT NULL DEFAULT now(),
  entity        text NOT NULL,
  entity_id     text,
  action        text NOT NULL,
  diff          jsonb NOT NULL DEFAULT '{}'::jsonb,  -- {"before": {...} | null, "after": {...} | null}, secrets removed
  triggered_by  text NOT NULL,
  request_id    text
);
CREATE INDEX audit_log_at_idx ON audit_log (at, id);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id);
CREATE INDEX audit_log_actor_idx ON audit_log (triggered_by);

-- The audit log is evidence: no UPDATE, DELETE or TRUNCATE, whoever asks, enforced by the database itself.
-- Statement-level triggers fire even when a DELETE or UPDATE matches no row, so the refusal is unconditional.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP USING ERRCODE = 'P0001';
END;
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

CREATE TABLE asset_types (
  id                   bigserial PRIMARY KEY,
  name                 text NOT NULL UNIQUE,
  description          text NOT NULL DEFAULT '',
  assignment_model     text NOT NULL CHECK (assignment_model IN ('capacity_pooled', 'personal')),
  pool_size            integer CHECK (pool_size >= 0),        -- null: no pool limit
  max_per_user         integer CHECK (max_per_user >= 1),     -- null: no per-user quota
  requires_approval    boolean NOT NULL DEFAULT false,
  monthly_cost         numeric(12, 2) CHECK (monthly_cost >= 0),
  currency             text CHECK (currency ~ '^[A-Z]{3}$'),
  cost_center          text,
  data_classification  jsonb NOT NULL DEFAULT '{"pii": false, "phi": false, "pci": false}'::jsonb,
  attributes           jsonb NOT NULL DEFAULT '[]'::jsonb,    -- [{key, type, required, help}]
  allow_user_lists     boolean NOT NULL DEFAULT false,
  provision_runbook    text,
  deprovision_runbook  text,
  reinstall_runbook    text,
  deprovision_policy   text NOT NULL DEFAULT 'access_only'
                       CHECK (deprovision_policy IN ('access_only', 'return_to_pool', 'reinstall')),
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE assets (
  id                 bigserial PRIMARY KEY,
  asset_type_id      bigint NOT NULL REFERENCES asset_types (id) ON DELETE RESTRICT,
  name               text NOT NULL,
  state              text NOT NULL DEFAULT 'free' CHECK (state IN ('free', 'in_use', 'reinstall', 'failed')),
  attributes         jsonb NOT NULL DEFAULT '{}'::jsonb,
  assigned_order_id  bigint,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  UNIQUE (asset_type_id, name)
);
CREATE INDEX assets_type_state_idx ON assets (asset_type_id, state);

CREATE TABLE orders (
  id                      bigserial PRIMARY KEY,
  asset_type_id           bigint NOT NULL REFERENCES asset_types (id) ON DELETE RESTRICT,
  action                  text NOT NULL DEFAULT 'provision' CHECK (action IN ('provision', 'delete')),
  target_order_id         bigint REFERENCES orders (id),      -- for action 'delete': the order being taken back
  status                  text NOT NULL CHECK (status IN ('pending_approval', 'scheduled', 'processing', 'provisioning',
                            'provisioned', 'failed', 'cancelled', 'deprovisioning', 'returned', 'revoked')),
  source                  text NOT NULL CHECK (source IN ('api', 'servicenow', 'portal')),
  servicenow_ref          text UNIQUE,                        -- RITM number: the idempotency key of webhook deliveries
  snow_req                text,
  user_email              text NOT NULL,                      -- stored lower-cased: quotas compare people, not spellings
  user_name               text NOT NULL,
  owner_email             text,
  owner_name              text,
  assigned_asset_id       bigint REFERENCES assets (id),
  rdp_users               text[] NOT NULL DEFAULT '{}',
  admin_users             text[] NOT NULL DEFAULT '{}',
  requested_from          timestamptz,
  requested_until         timestamptz,
  config                  jsonb NOT NULL DEFAULT '{}'::jsonb,
  job_id                  text,
  error_message           text,
  -- Requester snapshot taken at creation, so cost reports stay right after the person moves or leaves.
  requester_department    text,
  requester_cost_center   text,
  requester_company       text,
  requester_employee_id   text,
  requester_title         text,
  created_by              text NOT NULL,
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now(),
  CHECK (requested_until IS NULL OR requested_from IS NULL OR requested_until > requested_from)
);
CREATE INDEX orders_user_idx ON orders (user_email, asset_type_id, status);
CREATE INDEX orders_type_status_idx ON orders (asset_type_id, status);
CREATE INDEX orders_status_idx ON orders (status, id);

-- One row per runbook step attempt; written by the workflow engine.
CREATE TABLE order_steps (
  id             bigserial PRIMARY KEY,
  order_id       bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  run_id         text,
  step_id        text NOT NULL,
  name           text NOT NULL,
  status         text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'cancelled')),
  attempt        integer NOT NULL DEFAULT 1,
  input          jsonb,
  output         jsonb,
  error_message  text,
  started_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz,
  duration_ms    integer
);
CREATE INDEX order_steps_order_idx ON order_steps (order_id, id);
