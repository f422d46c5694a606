-- Integration models (OpenAPI documents), integrations (configured instances of a model), the roles generated for
-- each integration, and which API tokens hold them.

CREATE TABLE integration_models (
  id              text PRIMARY KEY,              -- '<info.title>:<info.version>', as Itential names models
  title           text NOT NULL,
  version         text NOT NULL,
  source_version  text NOT NULL,                 -- the OpenAPI/Swagger version submitted ('2.0', '3.0.3', …)
  document        jsonb NOT NULL,                -- the OpenAPI 3 document (converted copy for Swagger 2.0)
  operations      jsonb NOT NULL DEFAULT '[]'::jsonb,  -- [{operationId, method, path, summary?}], for listings
  dropped         jsonb NOT NULL DEFAULT '[]'::jsonb,  -- [{method, path, operationId?, reason}]
  warnings        jsonb NOT NULL DEFAULT '[]'::jsonb,  -- [{path, message, line?, column?}]
  verbs           text[] NOT NULL DEFAULT '{}',
  source          text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'file')),
  created_by      text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE integrations (
  id               bigserial PRIMARY KEY,
  name             text NOT NULL UNIQUE,
  model_id         text NOT NULL REFERENCES integration_models (id) ON DELETE RESTRICT,
  -- The validated configuration with every secret field removed (see SECRET_CONFIG_PATHS) and without
  -- logging.level, which lives in log_level so that changing it does not rebuild the client.
  config           jsonb NOT NULL,
  -- {"<RFC 6901 pointer>": value} for each secret field. Read only to build the runtime client; never answered.
  secrets          jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- Bumped on every change of config or secrets: processes rebuild their cached client when it moves.
  config_revision  bigint NOT NULL DEFAULT 1,
  log_level        text NOT NULL DEFAULT 'info'
                   CHECK (log_level IN ('error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly')),
  stub_mode        boolean NOT NULL DEFAULT false,
  health           jsonb,                        -- {operation_id, interval_s?, slow_ms?} or null
  health_status    text NOT NULL DEFAULT 'unknown' CHECK (health_status IN ('unknown', 'online', 'degraded', 'offline')),
  health_detail    text,
  health_http_status integer,
  health_latency_ms  integer,
  health_checked_at  timestamptz,
  created_by       text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX integrations_model_idx ON integrations (model_id);

-- One 'admin' role per integration plus one per HTTP verb its model uses; the role's name is
-- '<integration name>:<kind>', derived, so renaming an integration renames its roles.
CREATE TABLE integration_roles (
  id              bigserial PRIMARY KEY,
  integration_id  bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
  kind            text NOT NULL CHECK (kind IN ('admin', 'GET', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'TRACE')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (integration_id, kind)
);

CREATE TABLE api_token_integration_roles (
  token_id    bigint NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
  role_id     bigint NOT NULL REFERENCES integration_roles (id) ON DELETE CASCADE,
  granted_by  text NOT NULL,
  granted_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (token_id, role_id)
);
CREATE INDEX api_token_integration_roles_role_idx ON api_token_integration_roles (role_id);
