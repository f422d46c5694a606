import type { JobQueue, Queryable } from '../../../adapter';
import type { HealthWorsenedHook } from '../../../integration-model';
import { readSettings } from '../settings/settings';
import { enqueueNotice } from './enqueue-notice';

/** Attribution of the alert mails. */
export const HEALTH_ALERT_ACTOR = 'system:integration-health';

/** The addresses `alerts.recipients` names (none while it is unset). */
async function alertRecipients(q: Queryable): Promise<string[]> {
  const r = (await readSettings(q, 'alerts'))['recipients'];
  return Array.isArray(r) ? r.filter((e): e is string => typeof e === 'string' && e.trim() !== '') : [];
}

/**
 * The integration health alert: when a health check (the minutely sweep's or an admin's) finds an integration worse
 * than before, the addresses in `alerts.recipients` are mailed, in the transaction that records the result. Wired
 * into the integration runtime (server/main.ts), which calls it from below this room.
 */
export function integrationHealthAlert(queue: JobQueue): HealthWorsenedHook {
  return async (tx, change) => {
    const to = await alertRecipients(tx);
    if (to.length === 0) return;
    await enqueueNotice(
      tx,
      queue,
      {
        template: 'health_alert',
        to,
        data: {
          integration_id: change.integration.id,
          integration_name: change.integration.name,
          previous_status: change.previous,
          status: change.result.status,
          detail: change.result.detail,
          http_status: change.result.http_status,
        },
      },
      { triggeredBy: HEALTH_ALERT_ACTOR },
      { entity: 'integration', entityId: change.integration.id },
    );
  };
}
