import type { JobQueue, Logger } from '../../../adapter';
import { writeAudit } from '../../../adapter';
import { enqueueNotice } from '../notices';
import { selectOrderSummaries } from '../orders/store';
import type { LeaverNoticeHook } from './leaver';
import type { RequesterDirectory } from './requester-directory';

/**
 * The leaver notice: when the leaver flow revokes or cancels someone's orders, their manager from the directory is
 * mailed what was revoked and what was cancelled, in the leaver transaction (so the notice is queued exactly when
 * the take-backs commit, and a repeated event, which takes nothing back, mails nobody). Without a manager in the
 * directory nobody is mailed; the audit row says so.
 */
export function leaverNoticeHook(deps: { queue: JobQueue; logger?: Logger | undefined }, directory: RequesterDirectory | undefined): LeaverNoticeHook {
  return async (tx, ctx) => {
    if (ctx.revokedOrders.length === 0 && ctx.cancelledOrders.length === 0) return;
    const emails = ctx.emails.map((e) => e.toLowerCase());
    let manager: string | undefined;
    for (const e of emails) {
      const m = (await directory?.managerOf?.(e))?.trim().toLowerCase();
      if (m && !emails.includes(m)) {
        manager = m;
        break;
      }
    }
    const audit = { triggeredBy: ctx.triggeredBy, requestId: ctx.requestId };
    if (!manager) {
      await writeAudit(tx, {
        entity: 'leaver_event',
        entityId: ctx.eventId,
        action: 'leaver_notice_unsent',
        after: { reason: 'no manager in the directory', emails },
        ...audit,
      });
      deps.logger?.info('leaver notice not sent: no manager in the directory', { eventId: ctx.eventId });
      return;
    }
    const orders = await selectOrderSummaries(tx, [...ctx.revokedOrders, ...ctx.cancelledOrders]);
    const revoked = new Set(ctx.revokedOrders);
    await enqueueNotice(
      tx,
      deps.queue,
      {
        template: 'leaver_notice',
        to: [manager],
        data: {
          leaver_emails: emails,
          revoked: orders.filter((o) => revoked.has(o.id)).map((o) => ({ order_id: o.id, asset_type_name: o.asset_type_name, asset_name: o.asset_name })),
          cancelled: orders.filter((o) => !revoked.has(o.id)).map((o) => ({ order_id: o.id, asset_type_name: o.asset_type_name, asset_name: o.asset_name })),
        },
      },
      audit,
      { entity: 'leaver_event', entityId: ctx.eventId },
    );
  };
}
