import { postTeamsMessage, type EndpointConnection, type Logger, type Queryable } from '../../../adapter';
import { readSettings } from '../settings/settings';
import { webhookConnectionOf } from '../settings/webhook-connection';
import { DeliveryError, type OutboxSender } from './sender';
import { isTeamsTemplate, renderTeamsMessage, type TeamsTemplateData } from './teams-card';
import { resolveTeamsWebhookUrl } from './teams';

export interface TeamsSenderDeps {
  db: Queryable;
  /** The lines of each post (the URL redacted), at the connection's `logging.level`. */
  logger: Logger;
  /** Bounds one post (ms); default DEFAULT_TEAMS_TIMEOUT_MS (15 s), well below the outbox claim's lease. */
  timeoutMs?: number | undefined;
  /**
   * How posts reach Teams, read at each post; default: the `webhooks` settings section's connection (proxy, TLS/CA,
   * client certificate, logging), the one every outbound webhook uses, so a corporate proxy configured once serves both.
   */
  resolveConnection?: (() => Promise<EndpointConnection | undefined>) | undefined;
}

/**
 * The outbox's Teams channel: renders the row's card at send time (signed links made from the row's link ids),
 * resolves the row's destination (`asset_type:<id>` or `global`) to the webhook URL as the settings say now, and
 * posts it through adapter/teams. A failure is a `TeamsError` (retryable or not, see adapter/teams/post.ts) or:
 * - UNKNOWN_TEMPLATE, RENDER_FAILED: not retryable (the same row renders the same way next time);
 * - TEAMS_NOT_CONFIGURED: retryable, the card waits for an admin to set a URL (until the row is dead).
 * None of them, nor any log line of the post, names the URL beyond its scheme and host.
 */
export function createTeamsSender(deps: TeamsSenderDeps): OutboxSender {
  const resolveConnection = deps.resolveConnection ?? (async () => webhookConnectionOf(await readSettings(deps.db, 'webhooks')));
  return async (item, ctx) => {
    if (!isTeamsTemplate(item.template)) {
      throw new DeliveryError('UNKNOWN_TEMPLATE', `unknown Teams template '${item.template}'`, { retryable: false });
    }
    let message;
    try {
      message = renderTeamsMessage(item.template, item.data as unknown as TeamsTemplateData[typeof item.template], ctx);
    } catch (e) {
      throw new DeliveryError('RENDER_FAILED', `Teams card ${item.template} did not render: ${e instanceof Error ? e.message : String(e)}`, { retryable: false, cause: e });
    }
    const destination = item.to[0] ?? 'global';
    const url = await resolveTeamsWebhookUrl(deps.db, destination);
    if (url === undefined) {
      throw new DeliveryError('TEAMS_NOT_CONFIGURED', `no Teams webhook URL is configured for ${destination} (settings teams.webhook_url, or the asset type's teams_webhook_url)`, {
        retryable: true,
      });
    }
    const posted = await postTeamsMessage(url, message, { logger: deps.logger, connection: await resolveConnection(), timeoutMs: deps.timeoutMs });
    return { response: posted.response };
  };
}
