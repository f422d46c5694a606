import type { Database } from '../../../adapter';
import { readSetting, storeSettingOnce } from '../settings/settings';
import { generateToken, hashSecret } from './token-hash';

/** The hash's key in the service's own `security` settings section. */
const ADMIN_KEY_HASH = 'admin_key_hash';

/**
 * The admin key's hash: from ADMIN_KEY when set; otherwise the stored one, or, on first start, a new key
 * whose raw value is returned once (for the caller to print) and whose hash is stored.
 */
export async function ensureAdminKey(db: Database, fromEnv: string | undefined): Promise<{ hash: string; generated?: string }> {
  if (fromEnv) return { hash: hashSecret(fromEnv) };
  const stored = await readSetting(db, 'security', ADMIN_KEY_HASH);
  if (typeof stored === 'string') return { hash: stored };
  const raw = generateToken().replace(/^xpat_/, 'xadm_');
  const hash = hashSecret(raw);
  const inserted = await storeSettingOnce(db, 'security', ADMIN_KEY_HASH, hash, { secret: true, updatedBy: 'system:first-start' });
  // Another process won the race on first start: use its key, whose raw value it printed.
  if (!inserted) return ensureAdminKey(db, undefined);
  return { hash, generated: raw };
}
