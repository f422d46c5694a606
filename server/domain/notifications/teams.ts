/**
 * Where Teams cards go, and queuing them. An approval request is posted to its asset type's own incoming webhook
 * when the type has one (`teams_webhook_url` in the asset type API), else to the global one (settings section
 * `teams`, key `webhook_url`), else nowhere: Teams is optional and mail carries every request anyway.
 *
 * The outbox row names its destination, never the URL: `to` is `asset_type:<id>` or `global`, resolved to the URL
 * when the card is sent (teams-sender.ts), so a rotated URL applies to cards still queued, and the URL, a secret
 * that lets anyone post to the channel, is in no row, response, audit diff or log line.
 */
import { PgErrorCode, sqlState, teamsWebhookUrlProblem, writeAudit, type Actor, type JobQueue, type Queryable } from '../../../adapter';
import { invalidField, notFound } from '../../errors';
import { readSetting } from '../settings/settings';
import { enqueueNotification, type NotificationActor } from './outbox';
import type { TeamsApprovalCardData, TeamsTemplateData } from './teams-card';
import { deleteAssetTypeTeamsWebhook, selectAssetTypesWithTeamsWebhook, selectAssetTypeTeamsWebhookUrl, selectOrderTeamsRoute, upsertAssetTypeTeamsWebhook } from './teams-store';
import type { ApprovalMailData } from './templates';

/** A Teams card's destination as its outbox row names it. */
export type TeamsDestination = `asset_type:${number}` | 'global';

const GLOBAL: TeamsDestination = 'global';
const ASSET_TYPE = /^asset_type:([1-9]\d{0,18})$/;

/**
 * Throws VALIDATION_FAILED naming `path` when `value` is not an https webhook URL (the message never repeats it).
 */
export function checkTeamsWebhookUrl(path: string, value: unknown): asserts value is string {
  const problem = teamsWebhookUrlProblem(value);
  if (problem !== undefined) throw invalidField(path, problem);
}

/**
 * Sets (`url`) or clears (`null`) the asset type's own webhook URL, in the caller's transaction, audited as
 * `asset_type` / `teams_webhook` with `write_only_changed` (set or deleted, never the value). Clearing a type that
 * has none writes nothing.
 * @throws VALIDATION_FAILED naming `/body/teams_webhook_url` for a URL that is not an https webhook URL;
 * NOT_FOUND for an asset type that does not exist.
 */
export async function setAssetTypeTeamsWebhook(tx: Queryable, assetTypeId: number, url: string | null, actor: Actor): Promise<void> {
  let change: 'set' | 'deleted';
  if (url === null) {
    if (!(await deleteAssetTypeTeamsWebhook(tx, assetTypeId))) return;
    change = 'deleted';
  } else {
    checkTeamsWebhookUrl('/body/teams_webhook_url', url);
    try {
      await upsertAssetTypeTeamsWebhook(tx, assetTypeId, url, actor.triggeredBy);
    } catch (e) {
      if (sqlState(e) === PgErrorCode.FOREIGN_KEY_VIOLATION) throw notFound(`asset type ${assetTypeId} does not exist`);
      throw e;
    }
    change = 'set';
  }
  await writeAudit(tx, {
    entity: 'asset_type',
    entityId: assetTypeId,
    action: 'teams_webhook',
    after: { write_only_changed: [{ key: 'teams_webhook_url', change }] },
    triggeredBy: actor.triggeredBy,
    requestId: actor.requestId,
  });
}

/** Which of the asset types `ids` have a webhook URL of their own (what the API shows as `teams_webhook.configured`). */
export async function assetTypesWithTeamsWebhook(q: Queryable, ids: readonly number[]): Promise<Set<number>> {
  return selectAssetTypesWithTeamsWebhook(q, ids);
}

async function globalWebhookUrl(q: Queryable): Promise<string | undefined> {
  const v = await readSetting(q, 'teams', 'webhook_url');
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * The URL a card for `destination` is posted to now: an asset type's own, else the global one (a type whose URL was
 * cleared after the card was queued falls back to it); undefined when neither is set. For the sender alone.
 */
export async function resolveTeamsWebhookUrl(q: Queryable, destination: string): Promise<string | undefined> {
  const m = ASSET_TYPE.exec(destination);
  if (m) {
    const own = await selectAssetTypeTeamsWebhookUrl(q, Number(m[1]));
    if (own !== undefined) return own;
  }
  return globalWebhookUrl(q);
}

/**
 * Queues the Teams card of an approval request in the caller's transaction, beside its mail: to the order's asset
 * type's webhook when it has one, else the global one. Returns the outbox row, or undefined when no webhook is
 * configured (nothing is queued). `data` is the approval mail's (links as ids, rendered when the card is sent).
 */
export async function enqueueTeamsApprovalCard(
  tx: Queryable,
  queue: JobQueue,
  approval: { approverEmail: string; data: ApprovalMailData },
  actor: NotificationActor,
): Promise<{ id: number; destination: TeamsDestination } | undefined> {
  const route = await selectOrderTeamsRoute(tx, Number(approval.data.order_id));
  if (!route) return undefined;
  const destination: TeamsDestination | undefined = route.ownWebhook
    ? `asset_type:${route.assetTypeId}`
    : (await globalWebhookUrl(tx)) !== undefined
      ? GLOBAL
      : undefined;
  if (!destination) return undefined;
  const data: TeamsApprovalCardData = { ...approval.data, approver_email: approval.approverEmail };
  const { id } = await enqueueNotification(tx, queue, { channel: 'teams', template: 'approval_request', to: [destination], data }, actor);
  return { id, destination };
}

/**
 * Queues an integration health alert card to the global webhook, in the caller's transaction; undefined (nothing
 * queued) while none is configured. Not wired to the health checks yet: the mail alert is (notices/health-alert.ts).
 */
export async function enqueueTeamsHealthAlert(
  tx: Queryable,
  queue: JobQueue,
  data: TeamsTemplateData['health_alert'],
  actor: NotificationActor,
): Promise<{ id: number } | undefined> {
  if ((await globalWebhookUrl(tx)) === undefined) return undefined;
  return enqueueNotification(tx, queue, { channel: 'teams', template: 'health_alert', to: [GLOBAL], data }, actor);
}
