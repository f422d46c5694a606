/**
 * A Teams incoming-webhook URL is a bearer secret: its path (a classic `…webhook.office.com/webhookb2/…` URL) or its
 * query (a Power Automate workflow's `…&sig=…`) is the signature that lets anyone post to the channel. So it is
 * checked here without ever being echoed, and shown only as {@link describeTeamsWebhook} gives it.
 */

/** The longest URL accepted (characters); Teams' own are about 250, a workflow's about 400. */
export const TEAMS_WEBHOOK_URL_MAX_LENGTH = 2048;

/**
 * Why `value` is not a usable Teams webhook URL, or undefined when it is: an https URL that parses, with a host, no
 * user information (it would be dropped silently) and no whitespace or control characters. The reason never
 * contains the value.
 */
export function teamsWebhookUrlProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'must be a string';
  if (value.length > TEAMS_WEBHOOK_URL_MAX_LENGTH) return `must be at most ${TEAMS_WEBHOOK_URL_MAX_LENGTH} characters`;
  // Checked before parsing: URL would quietly strip or encode them.
  if (/[\s\u0000-\u001f\u007f]/.test(value)) return 'must not contain whitespace or control characters';
  if (!/^https:\/\//i.test(value)) return 'must be an https:// URL (Teams webhooks are only reached over TLS)';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL that can be parsed';
  }
  if (url.protocol !== 'https:') return 'must be an https:// URL (Teams webhooks are only reached over TLS)';
  if (url.hostname === '') return 'must name a host';
  if (url.username !== '' || url.password !== '') return 'must not carry a user name or password';
  return undefined;
}

/** The URL as logs and messages may show it: scheme and host only, never the path or query that sign it. */
export function describeTeamsWebhook(url: URL): string {
  return `${url.protocol}//${url.host}/…`;
}
