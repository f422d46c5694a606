/**
 * The AAD of each place a secret is stored (see sealing.ts: a sealed value opens only at the place it was sealed
 * for). Every writer and reader of a place names it through these, so the two can never disagree.
 */
export const secretPlace = {
  /** A settings row (`app_config.key`, e.g. `smtp.password`). */
  setting: (key: string): string => `app_config:${key}`,
  /** One secret of an integration's configuration, by its RFC 6901 pointer (a key of `integrations.secrets`). */
  integration: (integrationId: number, pointer: string): string => `integrations:${integrationId}:${pointer}`,
  /** An asset type's own Teams webhook URL (`asset_type_teams_webhooks.webhook_url`). */
  teamsWebhook: (assetTypeId: number): string => `asset_type_teams_webhooks:${assetTypeId}`,
} as const;
