import { QueueName, type Database, type JobQueue, type Logger, type Queryable } from '../../adapter';
import {
  dueHealthChecks,
  loadIntegration,
  lockHealthState,
  recordHealth,
  type HealthResult,
  type HealthState,
  type HealthStatusView,
  type IntegrationRecord,
} from './integrations';

/** An integration whose health got worse with a check: from healthy (or not yet known) to degraded or offline, or from degraded to offline. */
export interface HealthWorsened {
  integration: { id: number; name: string };
  previous: HealthState;
  result: HealthResult;
}

/**
 * Told, inside the transaction that records the result, when a check finds an integration worse than before: the
 * service above this room mails its alert there (an outbox row committed with the state it reports), so that an
 * alert is neither lost nor sent for a state that was not stored. A failure rolls the record back; the next check
 * finds the same change and tells again.
 */
export type HealthWorsenedHook = (tx: Queryable, change: HealthWorsened) => Promise<void>;

/** What the sweep needs of the process's integration runtime. */
export interface HealthChecker {
  checkHealth(integration: IntegrationRecord): Promise<HealthResult>;
  /** See {@link HealthWorsenedHook}; none: results are only stored. */
  readonly onHealthWorsened?: HealthWorsenedHook | undefined;
}

// `unknown` is no alarm: an integration never checked turning offline is news, one turning online is not.
const SEVERITY: Readonly<Record<HealthState, number>> = { unknown: 0, online: 0, degraded: 1, offline: 2 };

/**
 * Stores a check's result, comparing it with the stored state under the row's lock (a sweep and a manual check of
 * the same integration then see each other's result, and a change is told once), and calls `onWorsened` when it is
 * worse. Throws NOT_FOUND for an integration deleted meanwhile.
 */
export async function storeHealthResult(
  db: Database,
  integration: Pick<IntegrationRecord, 'id' | 'name'>,
  result: HealthResult,
  onWorsened?: HealthWorsenedHook,
): Promise<HealthStatusView> {
  return db.transaction(async (tx) => {
    const previous = await lockHealthState(tx, integration.id);
    const view = await recordHealth(tx, integration.id, result);
    if (onWorsened && previous !== undefined && SEVERITY[result.status] > SEVERITY[previous]) {
      await onWorsened(tx, { integration: { id: integration.id, name: integration.name }, previous, result });
    }
    return view;
  });
}

/**
 * Checks every integration whose health `interval_s` has passed since its last check, one after the other, and
 * stores the results. A failing check is a result (offline), never an error of the sweep.
 */
export async function runDueHealthChecks(db: Database, integrations: HealthChecker, logger: Logger): Promise<number[]> {
  const checked: number[] = [];
  for (const id of await dueHealthChecks(db)) {
    try {
      const integration = await loadIntegration(db, id);
      const result = await integrations.checkHealth(integration);
      await storeHealthResult(db, integration, result, integrations.onHealthWorsened);
      if (result.status !== 'online') logger.warn('integration health check', { integration: integration.name, status: result.status, detail: result.detail });
      checked.push(id);
    } catch (e) {
      // Deleted meanwhile, or its model is gone: the next sweep will not see it, or will say so again.
      logger.error('integration health check failed to run', { integration_id: id, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return checked;
}

/** Schedules {@link runDueHealthChecks} once a minute across all processes (pg-boss cron), worked here. */
export async function registerIntegrationHealthChecks(deps: { db: Database; queue: JobQueue; logger: Logger; integrations: HealthChecker }): Promise<void> {
  const { db, queue, logger, integrations } = deps;
  await queue.recurring(QueueName.INTEGRATION_HEALTH, '* * * * *', async () => {
    await runDueHealthChecks(db, integrations, logger);
  });
}
