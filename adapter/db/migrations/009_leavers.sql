-- Leaver events: one row per leaver notification (SCIM deactivation/delete, an HR system's termination), and
-- what it did to the person's orders. The flow is idempotent in the database: the dedupe key is unique, and an
-- order is revoked or cancelled by at most one leaver event (partial unique index below).

CREATE TABLE leaver_events (
  id            bigserial PRIMARY KEY,
  source        text NOT NULL CHECK (source IN ('scim', 'workday', 'successfactors', 'graph', 'native')),
  identity      jsonb NOT NULL,                  -- the identifiers the edge sent (email, userName, externalId, employeeId)
  person_key    text,                            -- the matched person: lower-cased email; NULL when nobody matched
  dedupe_key    text NOT NULL UNIQUE,            -- the same key again is a duplicate delivery and changes nothing
  effective_at  timestamptz,
  status        text NOT NULL CHECK (status IN ('processed', 'scheduled', 'no_matching_user')),
  reason        text,
  outcome       jsonb NOT NULL DEFAULT '{}'::jsonb,
  job_id        text,                            -- the delayed job of a scheduled event
  triggered_by  text NOT NULL,
  request_id    text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  processed_at  timestamptz
);
CREATE INDEX leaver_events_person_idx ON leaver_events (person_key, id);
CREATE INDEX leaver_events_source_idx ON leaver_events (source, id);
CREATE INDEX leaver_events_status_idx ON leaver_events (status, id);

CREATE TABLE leaver_event_orders (
  event_id            bigint NOT NULL REFERENCES leaver_events (id) ON DELETE RESTRICT,
  order_id            bigint NOT NULL REFERENCES orders (id) ON DELETE RESTRICT,
  outcome             text NOT NULL CHECK (outcome IN ('revoked', 'cancelled', 'superseded')),
  deprovision_job_id  text,                      -- the order.deprovision job of a revoked order
  PRIMARY KEY (event_id, order_id)
);
-- The database's own guard that no order is revoked (or cancelled) twice, whichever edge fired and however they race.
CREATE UNIQUE INDEX leaver_event_orders_once ON leaver_event_orders (order_id) WHERE outcome IN ('revoked', 'cancelled');
CREATE INDEX leaver_event_orders_order_idx ON leaver_event_orders (order_id);

-- The leaver flow resolves people on the SCIM users table (migration 008) by employee number and by email;
-- these make both index lookups. Guarded, so this migration stands on its own.
DO $$
BEGIN
  IF to_regclass('scim_users') IS NOT NULL THEN
    CREATE INDEX IF NOT EXISTS scim_users_employee_number_idx ON scim_users (employee_number);
    CREATE INDEX IF NOT EXISTS scim_users_emails_idx ON scim_users USING gin (emails jsonb_path_ops);
  END IF;
END $$;
