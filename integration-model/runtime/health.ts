import { QueueName, type Database, type JobQueue, type Logger } from '../../adapter';
import { dueHealthChecks, loadIntegration, recordHealth, type HealthResult, type IntegrationRecord } from './integrations';

/** What the sweep needs of the process's integration runtime. */
export interface HealthChecker {
  checkHealth(integration: IntegrationRecord): Promise<HealthResult>;
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
      await recordHealth(db, id, result);
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
