-- The outbox: every notification (a mail, a Teams card) is a row written in the transaction of the change that causes
-- it, with a pg-boss job on `outbox.send` sent in that same transaction. The row, not the job, is the record: it says
-- what is to be sent (template and data; links are rendered at send time from link ids, so no signed URL and no
-- secret is ever stored here), to whom, and where its delivery stands.
--
-- States: queued (waiting for its first or next attempt at `next_attempt_at`), sending (claimed by a worker until
-- `locked_until`; a worker that dies leaves the claim to expire and the row is claimed again), sent, failed (refused
-- for good: a permanent SMTP refusal, a header that cannot be sent) and dead (every attempt failed). An admin puts a
-- failed or dead row back to queued.
CREATE TABLE outbox (
  id               bigserial PRIMARY KEY,
  channel          text NOT NULL CONSTRAINT outbox_channel_check CHECK (channel IN ('mail', 'teams')),
  template         text NOT NULL CONSTRAINT outbox_template_check CHECK (template ~ '^[a-z][a-z0-9_]{0,63}$'),
  recipients_to    text[] NOT NULL,
  recipients_cc    text[] NOT NULL DEFAULT '{}',
  data             jsonb NOT NULL,
  state            text NOT NULL DEFAULT 'queued'
                   CONSTRAINT outbox_state_check CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'dead')),
  attempts         integer NOT NULL DEFAULT 0 CONSTRAINT outbox_attempts_range CHECK (attempts >= 0),
  next_attempt_at  timestamptz,
  locked_until     timestamptz,
  last_error       text,
  last_error_code  text,
  server_response  text,
  message_id       text,
  triggered_by     text NOT NULL,
  request_id       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  sent_at          timestamptz,
  CONSTRAINT outbox_queued_has_time CHECK (state <> 'queued' OR next_attempt_at IS NOT NULL),
  CONSTRAINT outbox_sending_has_lease CHECK (state <> 'sending' OR locked_until IS NOT NULL)
);

-- The sweep's candidates (rows whose job went missing or whose claim expired) and the admin list's filters.
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE state IN ('queued', 'sending');
CREATE INDEX outbox_state_idx ON outbox (state, id);
