-- The Microsoft Graph subscription the service keeps alive for the leaver webhook (server/domain/identity/
-- graph-subscription.ts): one row per watched resource. Graph forgets a subscription at its expirationDateTime
-- (at most 29 days ahead for users), so an hourly job renews it well before, and creates it anew when Graph
-- answers that it is gone. The row is what an admin reads (GET /admin/entra/subscription); the clientState is
-- the secret setting hr.graph_client_state and is never stored here.
CREATE TABLE graph_subscriptions (
  resource          text PRIMARY KEY,              -- 'users'
  subscription_id   text,                          -- Graph's id; null until one was created
  change_type       text NOT NULL,
  notification_url  text,
  expires_at        timestamptz,
  status            text NOT NULL,                 -- active | not_configured | failed
  last_error        text,                          -- why the last attempt failed (Graph's code and our words, no secret)
  created_at        timestamptz,                   -- when the current subscription was created
  renewed_at        timestamptz,
  checked_at        timestamptz NOT NULL DEFAULT now()
);
