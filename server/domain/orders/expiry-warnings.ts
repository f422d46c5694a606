/**
 * Expiry warnings: an order's requester is mailed `expiry_warning_days` (per asset type; null: never) before its
 * `requested_until`, once per `requested_until`, so an extension re-arms it.
 *
 * Kept by an hourly scan (pg-boss cron, one run per slot across all processes) rather than a delayed job per order:
 * the scan reads the type's `expiry_warning_days` and the order's end as they are when the window begins, so a type
 * whose warning is set or changed later, orders placed before that, an extension, an end moved by any path and a
 * service that was down when a warning fell due are all covered by the one query, and nothing has to be re-sent or
 * cancelled when an end moves. "Once" is a row per order and end (`order_expiry_warnings`, its primary key), written
 * with the mail in one transaction under the order's lock. The price is up to an hour's lateness, for a warning
 * measured in days.
 */
import { QueueName, writeAudit, type Database, type JobQueue, type Logger } from '../../../adapter';
import { enqueueNotice } from '../notices';
import { insertExpiryWarning, lockDueExpiryWarning, selectDueExpiryWarnings } from './expiry-warning-store';

/** Attribution of the warnings. */
export const EXPIRY_WARNING_ACTOR = 'system:expiry-warning';
/** Hourly, at minute 7 (UTC). */
export const EXPIRY_WARNING_CRON = '7 * * * *';
/** Orders looked at per query; the scan goes on until none is due. */
const BATCH = 200;

export interface ExpiryWarningDeps {
  db: Database;
  queue: JobQueue;
  logger?: Logger | undefined;
}

/**
 * Warns every order due a warning now, each in its own transaction (the order locked, still due, the warning
 * recorded, the mail queued, audited `order` / `expiry_warning_sent`). Returns the ids of the orders warned.
 * Safe to run concurrently and again: an order warned for its end is not due any more.
 */
export async function sendDueExpiryWarnings(deps: ExpiryWarningDeps): Promise<number[]> {
  const warned: number[] = [];
  const seen = new Set<number>();
  for (;;) {
    const due = (await selectDueExpiryWarnings(deps.db, BATCH)).filter((id) => !seen.has(id));
    if (due.length === 0) break;
    for (const id of due) {
      seen.add(id);
      try {
        if (await warnOrder(deps, id)) warned.push(id);
      } catch (e) {
        // One order's failure (say, an address the outbox refuses) must not keep the others from their warning.
        deps.logger?.error('expiry warning failed', { orderId: id, error: e instanceof Error ? e.message : String(e) });
      }
    }
  }
  if (warned.length) deps.logger?.info('expiry warnings sent', { count: warned.length, orderIds: warned });
  return warned;
}

async function warnOrder(deps: ExpiryWarningDeps, orderId: number): Promise<boolean> {
  return deps.db.transaction(async (tx) => {
    const o = await lockDueExpiryWarning(tx, orderId);
    if (!o || !(await insertExpiryWarning(tx, o.id, o.requested_until))) return false;
    const daysLeft = Math.max(0, Math.ceil((o.requested_until.getTime() - Date.now()) / 86_400_000));
    await enqueueNotice(
      tx,
      deps.queue,
      {
        template: 'expiry_warning',
        to: [o.user_email],
        data: {
          order_id: o.id,
          asset_type_name: o.asset_type_name,
          requester_name: o.user_name,
          requested_until: o.requested_until.toISOString(),
          days_left: daysLeft,
        },
      },
      { triggeredBy: EXPIRY_WARNING_ACTOR },
      { entity: 'order', entityId: o.id },
    );
    await writeAudit(tx, {
      entity: 'order',
      entityId: o.id,
      action: 'expiry_warning_sent',
      after: { to: o.user_email, requested_until: o.requested_until.toISOString(), expiry_warning_days: o.expiry_warning_days, days_left: daysLeft },
      triggeredBy: EXPIRY_WARNING_ACTOR,
    });
    return true;
  });
}

/** Schedules {@link sendDueExpiryWarnings} hourly across all processes (pg-boss cron), worked in this process. */
export async function registerExpiryWarnings(deps: ExpiryWarningDeps): Promise<void> {
  await deps.queue.recurring(QueueName.ORDER_EXPIRY_WARNING, EXPIRY_WARNING_CRON, () => sendDueExpiryWarnings(deps));
}
