-- Personal assignment, pool integrity and ServiceNow take-backs (issue 11, parts 5-7).

-- The person a personal instance is bound to (lower-cased, as orders store `user_email`). A personal order reuses
-- its user's free instance of the type before it takes an unbound one or creates a new one; `access_only` keeps the
-- binding when the order ends, `return_to_pool` and `reinstall` drop it. Null for pooled instances.
ALTER TABLE assets ADD COLUMN owner_email text;
CREATE INDEX assets_owner_idx ON assets (asset_type_id, owner_email, state) WHERE owner_email IS NOT NULL;

-- Why an instance is `failed` (a deprovision or reinstall runbook that failed on it); cleared when it leaves
-- `failed`. Without it a failed instance says nothing about what to check before putting it back in service.
ALTER TABLE assets ADD COLUMN error_message text;

-- A ServiceNow delete's own order no longer ends `provisioned` (it provisioned nothing): it is `deprovisioning`
-- while it takes its target back and ends `returned` or `failed` with it. Rows written before are brought in line
-- here, each with its audit row (the audit log is append-only: what happened before stays as it was written).
WITH moved AS (
  UPDATE orders SET status = 'returned', updated_at = now()
   WHERE action = 'delete' AND status = 'provisioned'
  RETURNING id
)
INSERT INTO audit_log (entity, entity_id, action, diff, triggered_by)
SELECT 'order', id::text, 'transition',
       jsonb_build_object('before', jsonb_build_object('status', 'provisioned'), 'after', jsonb_build_object('status', 'returned')),
       'system:migration-019'
  FROM moved;

WITH moved AS (
  UPDATE orders SET status = 'deprovisioning', updated_at = now()
   WHERE action = 'delete' AND status = 'processing'
  RETURNING id
)
INSERT INTO audit_log (entity, entity_id, action, diff, triggered_by)
SELECT 'order', id::text, 'transition',
       jsonb_build_object('before', jsonb_build_object('status', 'processing'), 'after', jsonb_build_object('status', 'deprovisioning')),
       'system:migration-019'
  FROM moved;

-- A failed order's `assigned_asset_id` names an instance only while that instance is still held by it (kept for a
-- rerun); one released before (a provision runbook that could not start) is no longer its to rerun on.
WITH cleared AS (
  UPDATE orders o SET assigned_asset_id = NULL, updated_at = now()
   WHERE o.status = 'failed' AND o.assigned_asset_id IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.id = o.assigned_asset_id AND a.state = 'in_use' AND a.assigned_order_id = o.id)
  RETURNING o.id
)
INSERT INTO audit_log (entity, entity_id, action, diff, triggered_by)
SELECT 'order', id::text, 'asset_cleared', '{"before": null, "after": {"assigned_asset_id": null}}'::jsonb, 'system:migration-019'
  FROM cleared;
