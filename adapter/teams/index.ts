/**
 * Microsoft Teams incoming webhooks: one message (an Adaptive Card) posted over the integration transport, the
 * URL (a bearer secret) checked without being echoed and redacted from every log line, every failure a `TeamsError`
 * that says whether a later attempt may succeed.
 */
export { DEFAULT_TEAMS_TIMEOUT_MS, postTeamsMessage, TeamsError, TeamsErrorCode } from './post';
export type { TeamsPosted, TeamsPostOptions } from './post';
export { describeTeamsWebhook, TEAMS_WEBHOOK_URL_MAX_LENGTH, teamsWebhookUrlProblem } from './webhook-url';
