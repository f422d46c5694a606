-- Cron schedules of standalone runbooks, and one row per fire slot (the history).
-- next_fire_at is the first slot not yet handled; NULL while the schedule is disabled.
CREATE TABLE schedules (
  id                       uuid PRIMARY KEY,
  name                     text NOT NULL UNIQUE,
  workflow_name            text NOT NULL,
  -- NULL: each fire runs the workflow's latest version at that moment.
  workflow_version         integer CHECK (workflow_version > 0),
  inputs                   jsonb NOT NULL DEFAULT '{}',
  -- Standard 5 fields: minute hour day-of-month month day-of-week, read in time_zone (IANA).
  cron                     text NOT NULL,
  time_zone                text NOT NULL DEFAULT 'UTC',
  overlap_policy           text NOT NULL DEFAULT 'skip' CHECK (overlap_policy IN ('skip', 'buffer_one', 'allow')),
  -- How late a slot missed while no scheduler ran may still fire; 0 = none.
  catch_up_window_seconds  integer NOT NULL DEFAULT 0 CHECK (catch_up_window_seconds >= 0),
  enabled                  boolean NOT NULL DEFAULT true,
  next_fire_at             timestamptz,
  last_fired_at            timestamptz,
  created_by               text NOT NULL,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_due_idx ON schedules (next_fire_at) WHERE enabled;

CREATE TABLE schedule_fires (
  id             bigserial PRIMARY KEY,
  schedule_id    uuid NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
  -- The cron slot (or, for a manual trigger, the moment it was asked for).
  scheduled_for  timestamptz NOT NULL,
  trigger        text NOT NULL DEFAULT 'cron' CHECK (trigger IN ('cron', 'manual')),
  -- started: a run was created; buffered: waits for the schedule's active run to finish (then becomes started);
  -- skipped_overlap: the overlap policy refused it; missed: older than the catch-up window, or collapsed into a
  -- later catch-up fire; failed: the engine refused the run (workflow gone, concurrency limit `reject`).
  outcome        text NOT NULL CHECK (outcome IN ('started', 'skipped_overlap', 'buffered', 'missed', 'failed')),
  fired_at       timestamptz,
  run_id         uuid REFERENCES workflow_runs (id) ON DELETE SET NULL,
  error          text,
  created_at     timestamptz NOT NULL DEFAULT now()
);
-- The at-most-once key: whichever scheduler process inserts a cron slot first fires it; every other one conflicts.
CREATE UNIQUE INDEX schedule_fires_slot_uq ON schedule_fires (schedule_id, scheduled_for) WHERE trigger = 'cron';
CREATE INDEX schedule_fires_history_idx ON schedule_fires (schedule_id, scheduled_for DESC, id DESC);
CREATE INDEX schedule_fires_run_idx ON schedule_fires (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX schedule_fires_buffered_idx ON schedule_fires (schedule_id) WHERE outcome = 'buffered';
