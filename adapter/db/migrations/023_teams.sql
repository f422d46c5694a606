-- Microsoft Teams: an asset type's own incoming-webhook URL, to which its approval requests are posted as Adaptive
-- Cards (the global one is the `teams.webhook_url` setting in app_config).
--
-- Why a table of its own and not a column of asset_types: the URL is a secret (it embeds the webhook's signature:
-- whoever holds it can post to the channel). The asset_types row is what the API answers, what every catalogue query
-- reads and what the audit log copies whole into its diffs; a column there would be one SELECT away from a response
-- or an audit row. Here it is read by exactly one query (the Teams sender's, at send time), the API says only whether
-- a row exists, and the issue on secrets at rest has one column to encrypt. It lives and dies with its asset type.
CREATE TABLE asset_type_teams_webhooks (
  asset_type_id  bigint PRIMARY KEY REFERENCES asset_types (id) ON DELETE CASCADE,
  -- https only; the full rules (parses, no credentials, a host) are checked before it is stored.
  webhook_url    text NOT NULL CONSTRAINT asset_type_teams_webhooks_https CHECK (webhook_url ~ '^https://'),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  updated_by     text NOT NULL
);
