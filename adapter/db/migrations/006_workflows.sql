-- The durable workflow engine: stored workflow versions, runs and one row per step attempt.
-- A save never changes a row: it adds the next version. A run pins the version it started with.
CREATE TABLE workflows (
  name        text NOT NULL,
  version     integer NOT NULL CHECK (version > 0),
  document    jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  created_by  text NOT NULL,
  PRIMARY KEY (name, version)
);

-- Per-workflow concurrency limit (by name, across versions): at most max_active runs running or waiting at once;
-- on_limit 'queue' keeps a further run pending until one finishes, 'reject' refuses to start it.
CREATE TABLE workflow_limits (
  name        text PRIMARY KEY,
  max_active  integer NOT NULL CHECK (max_active > 0),
  on_limit    text NOT NULL CHECK (on_limit IN ('queue', 'reject'))
);

CREATE TABLE workflow_runs (
  id                uuid PRIMARY KEY,
  workflow_name     text NOT NULL,
  workflow_version  integer NOT NULL,
  status            text NOT NULL CHECK (status IN ('pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled')),
  inputs            jsonb NOT NULL DEFAULT '{}',
  -- What templates read besides inputs: {order, asset, params}, given by whoever starts the run.
  variables         jsonb NOT NULL DEFAULT '{}',
  -- The engine's progress: active tasks and their dispatch tokens, finished tasks, outputs, job variables, joins.
  state             jsonb NOT NULL DEFAULT '{}',
  -- The asset (or other resource) the run holds: runs with the same key never run at once.
  lock_key          text,
  error_code        text,
  error_message     text,
  error_step        text,
  created_by        text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  parent_run_id     uuid REFERENCES workflow_runs (id) ON DELETE CASCADE,
  parent_step_id    text,
  child_index       integer,
  rerun_of          uuid REFERENCES workflow_runs (id) ON DELETE SET NULL,
  FOREIGN KEY (workflow_name, workflow_version) REFERENCES workflows (name, version) ON DELETE RESTRICT
);
-- Admission: the oldest pending run per lock key / workflow is promoted when a holder finishes.
CREATE INDEX workflow_runs_lock_idx ON workflow_runs (lock_key, status, created_at) WHERE lock_key IS NOT NULL;
CREATE INDEX workflow_runs_workflow_status_idx ON workflow_runs (workflow_name, status, created_at);
CREATE INDEX workflow_runs_parent_idx ON workflow_runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
-- A child task starts each child run once, whichever attempt gets there first.
CREATE UNIQUE INDEX workflow_runs_child_uq ON workflow_runs (parent_run_id, parent_step_id, child_index) WHERE parent_run_id IS NOT NULL;

CREATE TABLE workflow_steps (
  id               bigserial PRIMARY KEY,
  run_id           uuid NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
  task_id          text NOT NULL,
  kind             text NOT NULL,
  attempt          integer NOT NULL CHECK (attempt > 0),
  -- abandoned: the worker running it was lost (crash, kill); the step runs again as a new attempt.
  status           text NOT NULL CHECK (status IN ('running', 'waiting', 'succeeded', 'failed', 'abandoned', 'cancelled')),
  input            jsonb,
  output           jsonb,
  error_code       text,
  error_message    text,
  started_at       timestamptz NOT NULL,
  finished_at      timestamptz,
  duration_ms      integer,
  -- `${run_id}:${task_id}:${attempt}`: what integration and webhook calls send as Idempotency-Key.
  idempotency_key  text NOT NULL UNIQUE,
  -- A worker renews this while the attempt runs; a lapsed lease means the worker is gone.
  lease_until      timestamptz
);
CREATE INDEX workflow_steps_run_idx ON workflow_steps (run_id, id);
CREATE INDEX workflow_steps_lease_idx ON workflow_steps (lease_until) WHERE status = 'running';
