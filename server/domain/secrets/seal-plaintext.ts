import { type Database } from '../../../adapter';
import { rewriteStoredSecrets, sealPlain } from './stored-secrets';

// Any fixed number: processes starting at once against one database take turns at the sealing pass.
const SEALING_LOCK_KEY = 7_302_114_825;

/**
 * The start-up pass: seals every secret still stored in plain text (rows written before migration 025), in one
 * transaction under an advisory lock. Idempotent: sealed values are left as they are, so a second run (or a second
 * process) seals nothing. Run it after `ensureSecretsKey`, so a wrong master key never seals anything.
 */
export async function sealPlaintextSecrets(db: Database): Promise<{ sealed: number; visited: number }> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [SEALING_LOCK_KEY]);
    const { visited, rewritten } = await rewriteStoredSecrets(tx, sealPlain(tx));
    return { sealed: rewritten, visited };
  });
}
