import { isSealed, openSecret, sealSecret, sealedKeyId, secretPlace, type Queryable } from '../../../adapter';

/*
 * Every place a secret is stored, in one module: settings marked writeOnly (app_config rows with is_secret, the
 * internal `security` section included), integration secrets (integrations.secrets, one value per RFC 6901 pointer:
 * credentials, mTLS keys, OAuth tokens) and asset types' Teams webhook URLs. Whatever walks all secrets (the start-up
 * sealing pass, `secrets rotate-key --new-data-key`, a migration to an external backend) walks them here, so a new
 * place is added once. OAuth states and API tokens are stored hashed, never sealed: they are not here.
 */

export type SecretTable = 'app_config' | 'integrations' | 'asset_type_teams_webhooks';

/** One stored secret: where it is, the AAD it is sealed for, and its stored form (sealed, or plain from before 025). */
export interface StoredSecret {
  table: SecretTable;
  /** The place's AAD (adapter's secretPlace). */
  place: string;
  /** Names the secret for a report or a log, never its value: `settings smtp.password`, `integration 3 /authentication/password`. */
  label: string;
  stored: unknown;
}

/** Answers the new stored form of a secret, or undefined to leave it as it is. */
export type SecretRewrite = (s: StoredSecret) => Promise<unknown>;

/**
 * Calls `rewrite` for every stored secret, each row locked (FOR UPDATE) in the caller's transaction, and writes back
 * what it answers. Values do not change meaning, so nothing else moves: no `updated_at`, no configuration revision
 * (a client built from the old sealed form holds the same values).
 */
export async function rewriteStoredSecrets(tx: Queryable, rewrite: SecretRewrite): Promise<{ visited: number; rewritten: number }> {
  let visited = 0;
  let rewritten = 0;

  const settings = await tx.query<{ key: string; value: unknown }>('SELECT key, value FROM app_config WHERE is_secret ORDER BY key FOR UPDATE');
  for (const r of settings.rows) {
    visited++;
    const next = await rewrite({ table: 'app_config', place: secretPlace.setting(r.key), label: `settings ${r.key}`, stored: r.value });
    if (next === undefined) continue;
    await tx.query('UPDATE app_config SET value = $2::jsonb WHERE key = $1', [r.key, JSON.stringify(next)]);
    rewritten++;
  }

  const integrations = await tx.query<{ id: number; secrets: Record<string, unknown> | null }>(
    'SELECT id::int AS id, secrets FROM integrations ORDER BY id FOR UPDATE',
  );
  for (const r of integrations.rows) {
    const secrets = { ...(r.secrets ?? {}) };
    let changed = false;
    for (const [pointer, stored] of Object.entries(secrets)) {
      visited++;
      const next = await rewrite({ table: 'integrations', place: secretPlace.integration(r.id, pointer), label: `integration ${r.id} ${pointer}`, stored });
      if (next === undefined) continue;
      secrets[pointer] = next;
      changed = true;
      rewritten++;
    }
    if (changed) await tx.query('UPDATE integrations SET secrets = $2 WHERE id = $1', [r.id, JSON.stringify(secrets)]);
  }

  const teams = await tx.query<{ asset_type_id: number; webhook_url: string }>(
    'SELECT asset_type_id::int AS asset_type_id, webhook_url FROM asset_type_teams_webhooks ORDER BY asset_type_id FOR UPDATE',
  );
  for (const r of teams.rows) {
    visited++;
    const next = await rewrite({
      table: 'asset_type_teams_webhooks',
      place: secretPlace.teamsWebhook(r.asset_type_id),
      label: `asset type ${r.asset_type_id} teams_webhook_url`,
      stored: r.webhook_url,
    });
    if (next === undefined) continue;
    await tx.query('UPDATE asset_type_teams_webhooks SET webhook_url = $2 WHERE asset_type_id = $1', [r.asset_type_id, next]);
    rewritten++;
  }
  return { visited, rewritten };
}

/** The data key ids the stored secrets are sealed under (read in the caller's transaction). */
export async function dataKeysInUse(tx: Queryable): Promise<Set<string>> {
  const used = new Set<string>();
  await rewriteStoredSecrets(tx, async (s) => {
    const id = sealedKeyId(s.stored);
    if (id !== undefined) used.add(id);
    return undefined;
  });
  return used;
}

/** Seals `s` under the active data key unless it is sealed under `keyId` already. */
export function resealUnder(tx: Queryable, keyId: string): SecretRewrite {
  return async (s) => {
    if (sealedKeyId(s.stored) === keyId) return undefined;
    return sealSecret(tx, await openSecret(tx, s.stored, s.place), s.place);
  };
}

/** Seals a value stored in plain text; undefined (unchanged) for a sealed one. */
export function sealPlain(tx: Queryable): SecretRewrite {
  return async (s) => (isSealed(s.stored) ? undefined : sealSecret(tx, s.stored, s.place));
}
