-- Which workflow run carries out which phase of which order. The workflow engine knows runs, not orders: the order
-- domain records here the runs it starts and finds its order again from a run in the engine's hooks.
-- `first` marks the run a job started (a rerun of it is recorded with first = false): the partial unique index
-- is what makes a redelivered provision/deprovision job start no second run.
CREATE TABLE order_runs (
  run_id            uuid PRIMARY KEY REFERENCES workflow_runs (id) ON DELETE CASCADE,
  -- The order the run acts on (for a ServiceNow delete: the order being taken back).
  order_id          bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  -- The delete order that asked for a deprovision, when one did.
  request_order_id  bigint REFERENCES orders (id) ON DELETE CASCADE,
  phase             text NOT NULL CHECK (phase IN ('provision', 'deprovision', 'reinstall')),
  asset_id          bigint REFERENCES assets (id),
  policy            text CHECK (policy IN ('access_only', 'return_to_pool', 'reinstall')),
  first             boolean NOT NULL DEFAULT true,
  created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX order_runs_first_uq ON order_runs (order_id, phase) WHERE first;
