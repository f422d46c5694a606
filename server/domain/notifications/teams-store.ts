import { openSecret, resolveSecretValue, sealSecret, secretPlace, type Queryable } from '../../../adapter';

// The Teams channel's SQL, all of it (adapter/db/migrations/023_teams.sql has the table and why it is apart).

/**
 * Stores (or replaces) the asset type's own webhook URL, sealed (adapter/secrets); a type that does not exist raises a
 * foreign key violation.
 */
export async function upsertAssetTypeTeamsWebhook(q: Queryable, assetTypeId: number, url: string, updatedBy: string): Promise<void> {
  await q.query(
    `INSERT INTO asset_type_teams_webhooks (asset_type_id, webhook_url, updated_by) VALUES ($1, $2, $3)
     ON CONFLICT (asset_type_id) DO UPDATE SET webhook_url = EXCLUDED.webhook_url, updated_at = now(), updated_by = EXCLUDED.updated_by`,
    [assetTypeId, await sealSecret(q, url, secretPlace.teamsWebhook(assetTypeId)), updatedBy],
  );
}

/** Removes the asset type's own webhook URL; true when there was one. */
export async function deleteAssetTypeTeamsWebhook(q: Queryable, assetTypeId: number): Promise<boolean> {
  const { rowCount } = await q.query(`DELETE FROM asset_type_teams_webhooks WHERE asset_type_id = $1`, [assetTypeId]);
  return rowCount > 0;
}

/**
 * The asset type's own webhook URL, opened (a secret: for the sender alone), or undefined. A stored reference
 * (`vault://…`, left by `POST /admin/secrets/migrate`) is resolved to the URL it names.
 * @throws SecretBackendError naming the reference when it cannot be resolved.
 */
export async function selectAssetTypeTeamsWebhookUrl(q: Queryable, assetTypeId: number): Promise<string | undefined> {
  const { rows } = await q.query<{ webhook_url: string }>(`SELECT webhook_url FROM asset_type_teams_webhooks WHERE asset_type_id = $1`, [assetTypeId]);
  return rows[0] ? ((await resolveSecretValue(q, await openSecret(q, rows[0].webhook_url, secretPlace.teamsWebhook(assetTypeId)))) as string) : undefined;
}

/** Which of `ids` have a webhook URL of their own (never the URLs). */
export async function selectAssetTypesWithTeamsWebhook(q: Queryable, ids: readonly number[]): Promise<Set<number>> {
  if (ids.length === 0) return new Set();
  const { rows } = await q.query<{ asset_type_id: string | number }>(
    `SELECT asset_type_id FROM asset_type_teams_webhooks WHERE asset_type_id = ANY($1::bigint[])`,
    [[...ids]],
  );
  return new Set(rows.map((r) => Number(r.asset_type_id)));
}

/** The asset type of an order, and whether that type has a webhook URL of its own; undefined for an unknown order. */
export async function selectOrderTeamsRoute(q: Queryable, orderId: number): Promise<{ assetTypeId: number; ownWebhook: boolean } | undefined> {
  const { rows } = await q.query<{ asset_type_id: string | number; own_webhook: boolean }>(
    `SELECT o.asset_type_id, (w.asset_type_id IS NOT NULL) AS own_webhook
       FROM orders o LEFT JOIN asset_type_teams_webhooks w ON w.asset_type_id = o.asset_type_id
      WHERE o.id = $1`,
    [orderId],
  );
  const r = rows[0];
  return r ? { assetTypeId: Number(r.asset_type_id), ownWebhook: r.own_webhook === true } : undefined;
}
