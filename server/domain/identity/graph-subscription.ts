import { randomBytes } from 'node:crypto';
import { GraphError } from '@microsoft/microsoft-graph-client';
import { createGraphDirectory, graphToDirectoryError, QueueName, writeAudit, type Database, type GraphDirectorySettings, type JobQueue, type Logger } from '../../../adapter';
import { readEntraSettings } from '../../gateway/entra-settings';
import { announceSettingsChanged, readSetting, updateSettings } from '../settings/settings';

/** What Graph watches for the leaver flow: users updated (disabled) or deleted. */
export const GRAPH_SUBSCRIPTION_RESOURCE = 'users';
export const GRAPH_SUBSCRIPTION_CHANGE_TYPE = 'updated,deleted';
/** Asked for at each create or renew; Graph allows at most 41 760 minutes (29 days) on users. */
export const GRAPH_SUBSCRIPTION_LIFETIME_MS = 3 * 24 * 3600_000;
/**
 * Renewed once less than this is left. With the hourly job, a day leaves 23 chances for a renewal to succeed
 * (Graph down, a deploy, the database away) before notifications would stop.
 */
export const GRAPH_SUBSCRIPTION_RENEW_BEFORE_MS = 24 * 3600_000;
/** Every hour at minute 17. */
export const GRAPH_SUBSCRIPTION_CRON = '17 * * * *';
const ACTOR = `system:${QueueName.GRAPH_SUBSCRIPTION}`;

/** The subscription as an admin sees it (GET /admin/entra/subscription). */
export interface GraphSubscriptionState {
  resource: string;
  status: 'active' | 'not_configured' | 'failed';
  subscription_id: string | null;
  change_type: string;
  notification_url: string | null;
  expires_at: Date | null;
  last_error: string | null;
  created_at: Date | null;
  renewed_at: Date | null;
  checked_at: Date;
}

export interface GraphSubscriptionDeps {
  db: Database;
  logger: Logger;
}

/** The stored state; null before the keeper ever ran. */
export async function readGraphSubscriptionState(db: Database): Promise<GraphSubscriptionState | null> {
  const { rows } = await db.query<GraphSubscriptionState>('SELECT * FROM graph_subscriptions WHERE resource = $1', [GRAPH_SUBSCRIPTION_RESOURCE]);
  return rows[0] ?? null;
}

async function save(db: Database, s: Omit<GraphSubscriptionState, 'resource' | 'change_type' | 'checked_at'>, now: Date, audit?: { action: string; before: GraphSubscriptionState | null }): Promise<GraphSubscriptionState> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<GraphSubscriptionState>(
      `INSERT INTO graph_subscriptions (resource, subscription_id, change_type, notification_url, expires_at, status, last_error, created_at, renewed_at, checked_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (resource) DO UPDATE SET subscription_id = $2, change_type = $3, notification_url = $4, expires_at = $5, status = $6,
         last_error = $7, created_at = $8, renewed_at = $9, checked_at = $10
       RETURNING *`,
      [GRAPH_SUBSCRIPTION_RESOURCE, s.subscription_id, GRAPH_SUBSCRIPTION_CHANGE_TYPE, s.notification_url, s.expires_at, s.status, s.last_error, s.created_at, s.renewed_at, now],
    );
    const row = rows[0]!;
    if (audit) {
      const view = (r: GraphSubscriptionState | null) =>
        r ? { subscription_id: r.subscription_id, notification_url: r.notification_url, expires_at: r.expires_at?.toISOString() ?? null, status: r.status } : null;
      await writeAudit(tx, { entity: 'graph_subscription', entityId: GRAPH_SUBSCRIPTION_RESOURCE, action: audit.action, before: view(audit.before), after: view(row), triggeredBy: ACTOR });
    }
    return row;
  });
}

/**
 * Keeps the Graph subscription on users alive: creates it when there is none (Graph calls the notification URL with
 * a validationToken before it answers), renews it (PATCH expirationDateTime) once less than
 * {@link GRAPH_SUBSCRIPTION_RENEW_BEFORE_MS} is left, creates it anew when Graph says it is gone (404) or the
 * notification URL changed, and records the outcome (failures too: an admin sees why). The clientState is the secret
 * setting `hr.graph_client_state`, the one POST /hr/leaver/graph verifies; when Graph is configured and it is not set,
 * one is generated and stored (audited as set, never shown), so nobody has to invent and paste a shared secret.
 *
 * Never throws for a Graph or settings problem: it is a scheduled job, and the state row says what went wrong.
 */
export async function keepGraphSubscription(deps: GraphSubscriptionDeps, now = new Date(), open: (s: GraphDirectorySettings) => ReturnType<typeof createGraphDirectory> = createGraphDirectory): Promise<GraphSubscriptionState> {
  const before = await readGraphSubscriptionState(deps.db);
  const keep = { subscription_id: before?.subscription_id ?? null, expires_at: before?.expires_at ?? null, created_at: before?.created_at ?? null, renewed_at: before?.renewed_at ?? null };
  const entra = await readEntraSettings(deps.db);
  const clientState = entra.graph && entra.notificationUrl ? await ensureClientState(deps.db) : await readSetting(deps.db, 'hr', 'graph_client_state');
  const missing = [
    !entra.notificationUrl && 'entra_id.subscription_notification_url',
    !entra.graph && 'entra_id.tenant_id, client_id and client_secret',
    (typeof clientState !== 'string' || clientState === '') && 'hr.graph_client_state',
  ].filter(Boolean);
  if (missing.length > 0 || !entra.graph || !entra.notificationUrl || typeof clientState !== 'string') {
    return save(deps.db, { ...keep, status: 'not_configured', notification_url: entra.notificationUrl ?? null, last_error: `not configured: set ${missing.join(', ')}` }, now);
  }
  const client = open(entra.graph).client;
  const expiration = new Date(now.getTime() + GRAPH_SUBSCRIPTION_LIFETIME_MS).toISOString();
  const url = entra.notificationUrl;

  const create = async (action: string) => {
    const created = (await client.api('/subscriptions').post({
      changeType: GRAPH_SUBSCRIPTION_CHANGE_TYPE,
      notificationUrl: url,
      resource: GRAPH_SUBSCRIPTION_RESOURCE,
      expirationDateTime: expiration,
      clientState,
    })) as { id: string; expirationDateTime: string };
    deps.logger.info('graph subscription created', { subscriptionId: created.id, expiresAt: created.expirationDateTime, action });
    return save(deps.db, { subscription_id: created.id, notification_url: url, expires_at: new Date(created.expirationDateTime), status: 'active', last_error: null, created_at: now, renewed_at: null }, now, { action, before });
  };

  try {
    if (before?.subscription_id && before.notification_url !== url) {
      // The public URL moved: the old subscription would keep posting to the old one.
      await client.api(`/subscriptions/${before.subscription_id}`).delete().catch((e: unknown) => {
        if (!(e instanceof GraphError && e.statusCode === 404)) throw e;
      });
      return await create('graph_subscription_recreated');
    }
    if (!before?.subscription_id) return await create('graph_subscription_created');
    const left = (before.expires_at?.getTime() ?? 0) - now.getTime();
    if (left > GRAPH_SUBSCRIPTION_RENEW_BEFORE_MS && before.status === 'active') {
      // Still ours? A subscription deleted in the tenant would otherwise go unnoticed until its renewal is due.
      try {
        await client.api(`/subscriptions/${before.subscription_id}`).get();
      } catch (e) {
        if (e instanceof GraphError && e.statusCode === 404) return await create('graph_subscription_recreated');
        throw e;
      }
      return save(deps.db, { ...keep, status: 'active', notification_url: url, last_error: null }, now);
    }
    try {
      const renewed = (await client.api(`/subscriptions/${before.subscription_id}`).patch({ expirationDateTime: expiration })) as { expirationDateTime: string };
      deps.logger.info('graph subscription renewed', { subscriptionId: before.subscription_id, expiresAt: renewed.expirationDateTime });
      return await save(deps.db, { ...keep, status: 'active', notification_url: url, expires_at: new Date(renewed.expirationDateTime), renewed_at: now, last_error: null }, now, { action: 'graph_subscription_renewed', before });
    } catch (e) {
      // Gone (expired while we were down, or deleted in the tenant): make a new one.
      if (e instanceof GraphError && e.statusCode === 404) return await create('graph_subscription_recreated');
      throw e;
    }
  } catch (e) {
    const err = graphToDirectoryError(e, 'keep the Graph subscription');
    deps.logger.warn('graph subscription could not be kept', { code: err.code, graphCode: err.details.graphCode, httpStatus: err.details.httpStatus, error: err.message });
    return save(deps.db, { ...keep, status: 'failed', notification_url: url, last_error: `${err.code}${err.details.graphCode ? ` (${err.details.graphCode})` : ''}: ${err.message}`.slice(0, 1000) }, now);
  }
}

/**
 * `hr.graph_client_state`, generated (32 random bytes, base64url: 43 characters, inside Graph's 128) and stored when it
 * is unset. Under the settings section's lock, so two processes keeping the subscription at once store one value.
 */
async function ensureClientState(db: Database): Promise<unknown> {
  const existing = await readSetting(db, 'hr', 'graph_client_state');
  if (existing !== undefined && existing !== null && existing !== '') return existing;
  const stored = await db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, ['app_config:hr']);
    const again = await readSetting(tx, 'hr', 'graph_client_state');
    if (again !== undefined && again !== null && again !== '') return { value: again, generated: false };
    const value = randomBytes(32).toString('base64url');
    await updateSettings(tx, 'hr', { graph_client_state: value }, { triggeredBy: 'system:graph-subscription' });
    return { value, generated: true };
  });
  if (stored.generated) announceSettingsChanged('hr');
  return stored.value;
}

/** Schedules {@link keepGraphSubscription} hourly across all processes (pg-boss cron), worked in this process. */
export async function registerGraphSubscriptionKeeper(deps: GraphSubscriptionDeps & { queue: JobQueue }): Promise<void> {
  await deps.queue.recurring(QueueName.GRAPH_SUBSCRIPTION, GRAPH_SUBSCRIPTION_CRON, () => keepGraphSubscription(deps));
}
