import { createHash, randomBytes } from 'node:crypto';
import { badRequest, sealSecret, secretPlace, writeAudit, type Actor, type OAuthTokens, type Queryable } from '../../adapter';
import { loadIntegration, type SecretValues } from './integrations';

/** How long an operator has to complete the provider's login and consent. */
export const OAUTH_STATE_TTL_SECONDS = 600;

/** The secret pointers the authorization-code tokens are stored under (see SECRET_CONFIG_PATHS). */
const TOKEN_POINTERS = {
  access: '/authentication/access_token',
  refresh: '/authentication/refresh_token',
  expires: '/authentication/expires_at',
} as const;

const hashState = (state: string) => createHash('sha256').update(state, 'utf8').digest('hex');

/**
 * Starts an authorization-code flow: a random state bound to the integration, stored hashed (it is the callback's
 * only credential) and valid for {@link OAUTH_STATE_TTL_SECONDS}. Expired states of any integration are swept here.
 */
export async function createOAuthState(tx: Queryable, integrationId: number, actor: Actor): Promise<string> {
  const state = randomBytes(32).toString('base64url');
  await tx.query(`DELETE FROM oauth_states WHERE expires_at <= now()`);
  const { rows } = await tx.query<{ expires_at: Date }>(
    `INSERT INTO oauth_states (state_hash, integration_id, created_by, expires_at)
     VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING expires_at`,
    [hashState(state), integrationId, actor.triggeredBy, OAUTH_STATE_TTL_SECONDS],
  );
  await writeAudit(tx, {
    entity: 'integration',
    entityId: integrationId,
    action: 'oauth_authorization_started',
    after: { expires_at: rows[0]!.expires_at.toISOString() },
    triggeredBy: actor.triggeredBy,
    requestId: actor.requestId,
  });
  return state;
}

/** Who started a flow, and for which integration: what a consumed state tells the callback. */
export interface ConsumedState {
  integration_id: number;
  created_by: string;
}

/**
 * Consumes a state: it is deleted whether or not it is still valid, so it can never be used twice. One statement,
 * run on its own (not in a transaction the 400 would roll back).
 * @throws CodedError BAD_REQUEST (400) for a state that is unknown, already used or expired.
 */
export async function consumeOAuthState(q: Queryable, state: string): Promise<ConsumedState> {
  const { rows } = await q.query<{ integration_id: number; created_by: string; live: boolean }>(
    `DELETE FROM oauth_states WHERE state_hash = $1
     RETURNING integration_id::int AS integration_id, created_by, expires_at > now() AS live`,
    [hashState(state)],
  );
  const row = rows[0];
  if (!row) throw badRequest('the OAuth state is unknown or was already used; start the authorization again');
  if (!row.live) throw badRequest('the OAuth state has expired; start the authorization again');
  return { integration_id: row.integration_id, created_by: row.created_by };
}

/**
 * Stores an integration's OAuth tokens as secrets and bumps its configuration revision, so every process (and this
 * one after a restart) builds its client with them. A token set without a refresh token keeps the stored one.
 * Resolves the revision before and after: a process whose client was built at `before` holds these tokens already.
 * @throws CodedError NOT_FOUND when the integration is gone.
 */
export async function storeOAuthTokens(tx: Queryable, integrationId: number, tokens: OAuthTokens): Promise<{ before: number; after: number }> {
  const before = await loadIntegration(tx, integrationId, true);
  // The other secrets stay as stored (sealed); the tokens are sealed for their places.
  const seal = (pointer: string, value: unknown) => sealSecret(tx, value, secretPlace.integration(integrationId, pointer));
  const secrets: SecretValues = { ...before.secrets, [TOKEN_POINTERS.access]: await seal(TOKEN_POINTERS.access, tokens.access_token) };
  if (tokens.refresh_token !== undefined) secrets[TOKEN_POINTERS.refresh] = await seal(TOKEN_POINTERS.refresh, tokens.refresh_token);
  if (tokens.expires_at !== undefined) secrets[TOKEN_POINTERS.expires] = await seal(TOKEN_POINTERS.expires, Math.floor(tokens.expires_at));
  else delete secrets[TOKEN_POINTERS.expires];
  const { rows } = await tx.query<{ revision: number }>(
    `UPDATE integrations SET secrets = $2, config_revision = config_revision + 1, updated_at = now() WHERE id = $1
     RETURNING config_revision::int AS revision`,
    [integrationId, JSON.stringify(secrets)],
  );
  return { before: before.config_revision, after: rows[0]!.revision };
}
