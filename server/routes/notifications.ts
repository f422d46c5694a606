import { QueueName } from '../../adapter';
import type { RouteModule } from './route-module';
import type { OutboxItem as OutboxItemView } from '../api/gen/types.gen';
import { listOutbox, retryOutboxItem, sendSmtpTestMail, type OutboxItem } from '../domain/notifications';
import { pageBody, pageOf } from '../domain/paging';
import { adminActor } from './api-tokens';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The API form of an outbox row: its template data stays inside (it is what the mail says, not what the list is for). */
export function toOutboxView(i: OutboxItem): OutboxItemView {
  return {
    id: i.id,
    channel: i.channel,
    template: i.template,
    to: i.to,
    cc: i.cc,
    state: i.state,
    attempts: i.attempts,
    next_attempt_at: iso(i.next_attempt_at),
    last_error: i.last_error,
    last_error_code: i.last_error_code,
    server_response: i.server_response,
    message_id: i.message_id,
    triggered_by: i.triggered_by,
    created_at: i.created_at.toISOString(),
    updated_at: i.updated_at.toISOString(),
    sent_at: iso(i.sent_at),
  };
}

export const notificationHandlers: RouteModule = ({ db, queue, logger }) => ({
  testSmtpSettings: async (input) => {
    const actor = adminActor(input);
    const result = await sendSmtpTestMail(db, input.body.to, { requestedBy: actor.triggeredBy, logger });
    return { status: 200, body: result };
  },

  listOutbox: async ({ query }) => {
    const page = pageOf(query);
    const found = await listOutbox(db, { state: query.state, template: query.template, channel: query.channel }, page);
    return { status: 200, body: pageBody(found, toOutboxView, page) };
  },

  retryOutboxItem: async (input) => {
    const actor = adminActor(input);
    const item = await db.transaction((tx) => retryOutboxItem(tx, queue, Number(input.path.id), actor));
    // Committed: a worker of this process looks at it now rather than at its next poll.
    queue.wake(QueueName.OUTBOX_SEND);
    return { status: 200, body: toOutboxView(item) };
  },
});
