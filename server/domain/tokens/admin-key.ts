import type { Database } from '../../../adapter';
import { generateToken, hashSecret } from './token-hash';

const ADMIN_KEY_HASH = 'security.admin_key_hash';

/**
 * The admin key's hash: from ADMIN_KEY when set; otherwise the stored one, or, on first start, a new key
 * whose raw value is returned once (for the caller to print) and whose hash is stored.
 */
export async function ensureAdminKey(db: Database, fromEnv: string | undefined): Promise<{ hash: string; generated?: string }> {
  if (fromEnv) return { hash: hashSecret(fromEnv) };
  const { rows } = await db.query<{ value: string }>(`SELECT value FROM app_config WHERE key = $1`, [ADMIN_KEY_HASH]);
  if (rows[0]) return { hash: rows[0].value };
  const raw = generateToken().replace(/^xpat_/, 'xadm_');
  const hash = hashSecret(raw);
  const inserted = await db.query(
    `INSERT INTO app_config (key, section, value, is_secret, updated_by) VALUES ($1, 'security', $2, true, 'system:first-start')
     ON CONFLICT (key) DO NOTHING`,
    [ADMIN_KEY_HASH, JSON.stringify(hash)],
  );
  // Another process won the race on first start: use its key, whose raw value it printed.
  if (inserted.rowCount === 0) return ensureAdminKey(db, undefined);
  return { hash, generated: raw };
}
