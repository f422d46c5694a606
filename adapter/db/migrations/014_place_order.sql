-- Placing an order in one round trip. On the ServiceNow webhook's path every round trip to the database costs two
-- system calls on each side; BEGIN, type lookup and lock, checks and insert, job, COMMIT were five. The same steps run
-- here, in the same order and under the same locks, as one statement (an implicit transaction when the caller has
-- none open). Being PL/pgSQL, each statement below takes a fresh snapshot, so a count read after a lock sees what
-- the lock's previous holder committed.

-- Enqueues a pg-boss job the way pg-boss 10's `send` does for our queues (id, data, start time; the queue's own
-- policy, retry, expiry, retention and dead letter; pg-boss's built-in defaults, since we configure none). Mirrored
-- so that an order's job can be written by the same statement as the order; tests compare its row with the one
-- pg-boss writes, so an upgrade that changes pg-boss's insert fails them.
CREATE FUNCTION provisio_enqueue_job(p_name text, p_id uuid, p_data jsonb, p_start_after timestamptz)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  v_id uuid;
BEGIN
  INSERT INTO pgboss.job (id, name, data, priority, start_after, singleton_key, singleton_on, dead_letter,
                          expire_in, keep_until, retry_limit, retry_delay, retry_backoff, policy)
  SELECT j.id, j.name, j.data, 0, j.start_after, NULL, NULL, q.dead_letter,
         CASE WHEN q.expire_seconds IS NOT NULL THEN q.expire_seconds * interval '1s' ELSE interval '15 minutes' END,
         j.start_after + CAST(COALESCE((q.retention_minutes * 60)::text, '14 days') AS interval),
         COALESCE(q.retry_limit, 2),
         CASE WHEN COALESCE(q.retry_backoff, false) THEN GREATEST(q.retry_delay, 1) ELSE COALESCE(q.retry_delay, 0) END,
         COALESCE(q.retry_backoff, false),
         q.policy
    FROM (SELECT COALESCE(p_id, gen_random_uuid()) AS id, p_name AS name, p_data AS data,
                 COALESCE(p_start_after, now()) AS start_after) j
    JOIN pgboss.queue q ON q.name = j.name
  ON CONFLICT DO NOTHING
  RETURNING id INTO v_id;
  IF v_id IS NULL THEN
    RAISE EXCEPTION 'queue % refused job %', p_name, p_id USING ERRCODE = 'PV005';
  END IF;
  RETURN v_id;
END $$;

-- p_order: the new row's columns as JSON (`id`, `created_at`, `updated_at` are the table's). p_type_version: the
-- `xmin` of the asset type row the caller validated the order against; a type changed since then raises PV001 so
-- that the caller validates again. p_check_limits: apply the type's pool size and per-user quota (a take-back does
-- not). p_lock_user: take the per-user lock even without a quota. The other failures: PV002 duplicate
-- `servicenow_ref` (DETAIL: the ref), PV003 pool full and PV004 quota full (DETAIL: the count in use).
-- p_audit: the creation's audit diff; its `after.id` is set here. p_job_queue (null: no job) and p_job_data: the
-- order's job, with id `job_id` and `orderId` added to its data.
CREATE FUNCTION provisio_place_order(
  p_type_id bigint, p_type_version text, p_check_limits boolean, p_lock_user boolean, p_active_statuses text[],
  p_order jsonb, p_audit jsonb, p_request_id text, p_job_queue text, p_job_data jsonb
) RETURNS orders LANGUAGE plpgsql AS $$
DECLARE
  v_version text;
  v_pool_size integer;
  v_pooled boolean;
  v_quota integer;
  v_ref text := p_order ->> 'servicenow_ref';
  v_user text := p_order ->> 'user_email';
  v_count integer;
  v_row orders;
BEGIN
  SELECT a.xmin::text, a.assignment_model = 'capacity_pooled' AND a.pool_size IS NOT NULL, a.max_per_user
    INTO v_version, v_pooled, v_quota
    FROM asset_types a WHERE a.id = p_type_id;
  IF v_version IS DISTINCT FROM p_type_version THEN
    RAISE EXCEPTION 'asset type % changed', p_type_id USING ERRCODE = 'PV001';
  END IF;
  IF NOT p_check_limits THEN
    v_pooled := false;
    v_quota := NULL;
  END IF;

  -- The per-user lock serialises one user's orders of one type, so that a quota check and the insert it allows
  -- are one step; then the pool lock (always in this order, so the two never deadlock), which also re-reads the
  -- pool size under the lock.
  IF p_lock_user OR v_quota IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('order-user:' || p_type_id || ':' || v_user, 0));
  END IF;
  IF v_pooled THEN
    SELECT pool_size INTO v_pool_size FROM asset_types WHERE id = p_type_id FOR NO KEY UPDATE;
  END IF;

  -- Under the locks the duplicate check is exact, and a redelivery is a 409 even when the pool is full. Without a
  -- lock, racing duplicates meet at the unique index instead.
  IF v_ref IS NOT NULL AND EXISTS (SELECT 1 FROM orders WHERE servicenow_ref = v_ref) THEN
    RAISE EXCEPTION 'duplicate servicenow_ref' USING ERRCODE = 'PV002', DETAIL = v_ref;
  END IF;
  IF v_pool_size IS NOT NULL THEN
    -- The pool's places taken: active orders, and failed ones whose desktop is still theirs (a failed provision keeps
    -- its asset for a rerun until it is taken back), so the count agrees with the pool's free assets.
    SELECT (SELECT count(*) FROM orders
             WHERE asset_type_id = p_type_id AND action = 'provision' AND status = ANY (p_active_statuses))
         + (SELECT count(*) FROM assets a JOIN orders o ON o.id = a.assigned_order_id
             WHERE a.asset_type_id = p_type_id AND a.state = 'in_use' AND o.status = 'failed')
      INTO v_count;
    IF v_count >= v_pool_size THEN
      RAISE EXCEPTION 'pool full' USING ERRCODE = 'PV003', DETAIL = v_count::text || '/' || v_pool_size::text;
    END IF;
  END IF;
  IF v_quota IS NOT NULL THEN
    SELECT count(*) INTO v_count FROM orders
     WHERE asset_type_id = p_type_id AND action = 'provision' AND status = ANY (p_active_statuses) AND user_email = v_user;
    IF v_count >= v_quota THEN
      RAISE EXCEPTION 'quota full' USING ERRCODE = 'PV004', DETAIL = v_count::text || '/' || v_quota::text;
    END IF;
  END IF;

  INSERT INTO orders (asset_type_id, action, target_order_id, status, source, servicenow_ref, snow_req, user_email,
                      user_name, owner_email, owner_name, rdp_users, admin_users, requested_from, requested_until,
                      config, job_id, requester_department, requester_cost_center, requester_company,
                      requester_employee_id, requester_title, created_by)
  SELECT p_type_id, r.action, r.target_order_id, r.status, r.source, r.servicenow_ref, r.snow_req, r.user_email,
         r.user_name, r.owner_email, r.owner_name, r.rdp_users, r.admin_users, r.requested_from, r.requested_until,
         COALESCE(p_order -> 'config', '{}'::jsonb), r.job_id, r.requester_department, r.requester_cost_center,
         r.requester_company, r.requester_employee_id, r.requester_title, r.created_by
    FROM jsonb_populate_record(NULL::orders, p_order) r
  RETURNING * INTO v_row;

  INSERT INTO audit_log (entity, entity_id, action, diff, triggered_by, request_id)
  VALUES ('order', v_row.id::text, 'create', jsonb_set(p_audit, '{after,id}', to_jsonb(v_row.id)), v_row.created_by,
          p_request_id);

  IF p_job_queue IS NOT NULL THEN
    PERFORM provisio_enqueue_job(p_job_queue, v_row.job_id::uuid, COALESCE(p_job_data, '{}'::jsonb)
                                 || jsonb_build_object('orderId', v_row.id), NULL);
  END IF;
  RETURN v_row;
END $$;
