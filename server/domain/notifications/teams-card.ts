/**
 * The Adaptive Cards posted to Teams incoming webhooks, built at send time from the outbox row's data (links are
 * rendered then, from link ids: the row never holds a URL that decides anything).
 *
 * Version 1.4: Teams renders up to 1.5 on desktop and web, and 1.4 is what its mobile clients and incoming webhooks
 * have long accepted; nothing here needs more than 1.2 (`Action.OpenUrl` styles). The card is validated against the
 * Adaptive Cards 1.4.0 JSON schema in tests (tests/fixtures/adaptive-cards). Teams' own `msteams` extension property
 * is left out: the schema does not allow it.
 *
 * Why the buttons open links rather than post back: an incoming webhook is one-way. Teams supports `Action.OpenUrl`,
 * `Action.ShowCard` and `Action.ToggleVisibility` on webhook cards, not `Action.Submit` or `Action.Execute`, which
 * need a bot to receive the click. So Approve and Decline open the approver's signed one-click links, whose page
 * asks for confirmation and decides by its POST (the same links the approval mail carries; either is used once).
 *
 * Text from people (names, asset type names, the justification, an integration's error) goes into TextBlock and
 * FactSet text, which Teams renders as a Markdown subset (bold, italic, lists, `[text](url)` links). So it is made
 * plain first, by {@link plainCardText}: control and bidirectional-override characters removed, line breaks kept only
 * where a block is meant to have several lines, the length limited, and every Markdown metacharacter
 * backslash-escaped. Escaped, `[Approve](https://evil.example)` shows as that text, never as a link whose label hides
 * its target; and since `(` is escaped too, a renderer that ignored escapes would still find no `](` to make a link
 * of. A bare URL in a justification stays visible as the URL it is (Teams may make it clickable, as mail clients do).
 */
import type { ApprovalMailData, MailTemplateData, RenderContext } from './templates';

/** The schema version the cards declare. */
export const ADAPTIVE_CARD_VERSION = '1.4';
export const ADAPTIVE_CARD_SCHEMA = 'http://adaptivecards.io/schemas/adaptive-card.json';
export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';

type Colour = 'default' | 'accent' | 'good' | 'warning' | 'attention';

export interface TextBlock {
  type: 'TextBlock';
  text: string;
  wrap?: boolean;
  weight?: 'default' | 'bolder';
  size?: 'small' | 'default' | 'medium' | 'large';
  color?: Colour;
  isSubtle?: boolean;
  maxLines?: number;
  spacing?: 'none' | 'small' | 'medium' | 'large';
  separator?: boolean;
}

export interface FactSet {
  type: 'FactSet';
  facts: { title: string; value: string }[];
}

export type CardElement = TextBlock | FactSet;

export interface OpenUrlAction {
  type: 'Action.OpenUrl';
  title: string;
  url: string;
  style?: 'default' | 'positive' | 'destructive';
}

export interface AdaptiveCard {
  $schema: typeof ADAPTIVE_CARD_SCHEMA;
  type: 'AdaptiveCard';
  version: typeof ADAPTIVE_CARD_VERSION;
  /** Shown by a client that cannot render the card (and in notifications); plain, escaped like the rest. */
  fallbackText: string;
  body: CardElement[];
  actions?: OpenUrlAction[];
}

/** The body Teams incoming webhooks take: a `message` activity with the card as its one attachment. */
export interface TeamsMessage {
  type: 'message';
  attachments: [{ contentType: typeof ADAPTIVE_CARD_CONTENT_TYPE; contentUrl: null; content: AdaptiveCard }];
}

/** The templates a Teams card can be queued with (outbox channel `teams`). */
export type TeamsTemplate = 'approval_request' | 'health_alert';
export const TEAMS_TEMPLATES: readonly TeamsTemplate[] = Object.freeze(['approval_request', 'health_alert']);

export function isTeamsTemplate(name: string): name is TeamsTemplate {
  return (TEAMS_TEMPLATES as readonly string[]).includes(name);
}

/** An approval request's card: the approval mail's data and the approver the card asks. */
export type TeamsApprovalCardData = ApprovalMailData & { approver_email: string };

/** The data each Teams template renders. */
export interface TeamsTemplateData {
  approval_request: TeamsApprovalCardData;
  health_alert: MailTemplateData['health_alert'];
}

// ---------------------------------------------------------------------------------------------------------------
// Text

// C0 and C1 controls (tab and line breaks are handled apart), invisible spaces and joiners that hide or split text
// (U+200B, U+2060-U+2064, U+FEFF), and the bidirectional overrides and isolates, which can make text read differently
// from what it is. ZWNJ/ZWJ and the LRM/RLM marks stay: scripts and emoji need them, and they reorder nothing.
const INVISIBLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;
// Markdown's inline metacharacters; `#`, `|` and `!` mean nothing in Adaptive Cards without the ones escaped here.
const MARKDOWN_INLINE = /[\\`*_~[\]()<>]/g;

/**
 * `value` as text that Teams shows literally inside a TextBlock or a Fact: invisible characters removed, whitespace
 * runs collapsed (line breaks kept, at most `maxLines` of them, only when `multiline`), at most `max` characters
 * (cut with `…`), then Markdown metacharacters backslash-escaped, as are a line's leading list markers (`-`, `+`,
 * `1.`). Empty for null and undefined.
 */
export function plainCardText(value: unknown, opts: { max: number; multiline?: boolean; maxLines?: number }): string {
  if (value === null || value === undefined) return '';
  let text = String(value).replace(/\r\n?/g, '\n').replace(/\t/g, ' ').replace(INVISIBLE, '');
  if (opts.multiline) {
    const lines = text
      .split('\n')
      .map((l) => l.replace(/\s+/g, ' ').trim())
      .filter((l, i, all) => l !== '' || (i > 0 && all[i - 1] !== ''));
    const kept = lines.slice(0, opts.maxLines ?? 20);
    text = kept.join('\n').trim() + (lines.length > kept.length ? ' …' : '');
  } else {
    text = text.replace(/\s+/g, ' ').trim();
  }
  const chars = [...text];
  if (chars.length > opts.max) text = `${chars.slice(0, opts.max - 1).join('').trimEnd()}…`;
  return text
    .replace(MARKDOWN_INLINE, '\\$&')
    .replace(/^(\s*)([-+])(?=\s)/gm, '$1\\$2')
    .replace(/^(\s*\d+)\.(?=\s)/gm, '$1\\.');
}

// Limits (characters) per field: enough for what people write, and a card stays far below Teams' 28 KB message limit.
const LIMIT = { name: 200, email: 320, title: 200, justification: 1500, error: 1000 } as const;

/** `2026-12-01 14:00 UTC` from an ISO instant; the input (made plain) when it is not one. */
function when(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? plainCardText(iso, { max: 40 }) : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function costOf(c: ApprovalMailData['cost']): string {
  if (!c || typeof c.amount !== 'number' || !Number.isFinite(c.amount)) return '';
  return `${c.amount.toFixed(2)}${c.currency ? ` ${plainCardText(c.currency, { max: 3 })}` : ''} per ${c.period ?? 'month'}`;
}

/** The facts that have a value; each value is already plain. */
function facts(list: { title: string; value: string }[]): FactSet {
  return { type: 'FactSet', facts: list.filter((f) => f.value !== '') };
}

// A rendered link must be a web address: a `linkUrl` that produced anything else (javascript:, data:) is a bug, and a
// button to it would be worse than none.
function webUrl(url: string): string {
  if (!/^https?:\/\//i.test(url)) throw new Error(`a card link must be an http(s) URL, got '${url.slice(0, 40)}'`);
  return url;
}

function card(fallbackText: string, body: CardElement[], actions?: OpenUrlAction[]): AdaptiveCard {
  return {
    $schema: ADAPTIVE_CARD_SCHEMA,
    type: 'AdaptiveCard',
    version: ADAPTIVE_CARD_VERSION,
    fallbackText,
    body,
    ...(actions && actions.length ? { actions } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Cards

/**
 * An approval request: what is asked (order, requester, asset type, dates, cost, justification), of whom (the
 * approver, and whom a deputy decides for, and the quorum), and Approve / Decline buttons that open the approver's
 * signed links. Without links (none were issued) the card says to decide in provisio.
 * @throws Error when `ctx.linkUrl` gives something other than an http(s) URL.
 */
export function approvalRequestCard(d: TeamsApprovalCardData, ctx: RenderContext): AdaptiveCard {
  const extension = d.kind === 'extension';
  const orderId = Number(d.order_id);
  const requesterName = plainCardText(d.requester_name, { max: LIMIT.name });
  const requesterEmail = plainCardText(d.requester_email, { max: LIMIT.email });
  const requester = requesterName ? `${requesterName} (${requesterEmail})` : requesterEmail;
  const asset = plainCardText(d.asset_type_name, { max: LIMIT.title });
  const approver = plainCardText(d.approver_email, { max: LIMIT.email });
  const reason = plainCardText(d.reason, { max: LIMIT.justification, multiline: true, maxLines: 20 });
  const title = extension ? `Approval needed: extension of order #${orderId}` : `Approval needed: order #${orderId}`;
  const ask = extension ? `${requester} asks to keep ${asset} until ${when(d.requested_until)}.` : `${requester} asks for ${asset}.`;

  const body: CardElement[] = [
    { type: 'TextBlock', text: title, weight: 'bolder', size: 'medium', wrap: true },
    { type: 'TextBlock', text: ask, wrap: true, spacing: 'small' },
    facts([
      { title: 'Order', value: `#${orderId}` },
      { title: 'Requester', value: requester },
      { title: 'Asset type', value: asset },
      { title: extension ? 'Current start' : 'From', value: when(d.requested_from) },
      { title: extension ? 'Extend until' : 'Until', value: when(d.requested_until) },
      { title: 'Cost', value: costOf(d.cost) },
      { title: 'Approver', value: approver },
      { title: 'Deciding for', value: plainCardText(d.on_behalf_of, { max: LIMIT.email }) },
      { title: 'Quorum', value: d.quorum ? `${Number(d.quorum.required)} of ${Number(d.quorum.approvers)} approvals needed` : '' },
    ]),
  ];
  if (reason) {
    body.push({ type: 'TextBlock', text: 'Justification', weight: 'bolder', wrap: true, separator: true });
    body.push({ type: 'TextBlock', text: reason, wrap: true, spacing: 'small' });
  }
  const actions: OpenUrlAction[] = d.links
    ? [
        { type: 'Action.OpenUrl', title: 'Approve', url: webUrl(ctx.linkUrl(d.links.approve)), style: 'positive' },
        { type: 'Action.OpenUrl', title: 'Decline', url: webUrl(ctx.linkUrl(d.links.decline)), style: 'destructive' },
      ]
    : [];
  body.push({
    type: 'TextBlock',
    text: actions.length
      ? `Approve and Decline open a confirmation page in your browser; nothing is decided until it is confirmed there. Each link works once, for ${approver} only, and expires.`
      : `Decide this request in provisio (${plainCardText(ctx.publicUrl, { max: 200 })}).`,
    wrap: true,
    isSubtle: true,
    size: 'small',
    separator: true,
  });
  return card(`${title}: ${ask}`, body, actions);
}

const STATE_COLOUR: Record<string, Colour> = { offline: 'attention', degraded: 'warning', online: 'good', healthy: 'good' };

/** An integration's health alert: which integration, its state (and the one before), and the error it reported. */
export function healthAlertCard(d: MailTemplateData['health_alert'], _ctx: RenderContext): AdaptiveCard {
  const name = plainCardText(d.integration_name, { max: LIMIT.title });
  const status = plainCardText(d.status, { max: 40 });
  const title = `Integration ${name} is ${status}`;
  const body: CardElement[] = [
    { type: 'TextBlock', text: title, weight: 'bolder', size: 'medium', wrap: true, color: STATE_COLOUR[String(d.status).toLowerCase()] ?? 'warning' },
    facts([
      { title: 'Integration', value: `${name} (id ${plainCardText(d.integration_id, { max: 40 })})` },
      { title: 'State', value: status },
      { title: 'Previous state', value: plainCardText(d.previous_status, { max: 40 }) },
      { title: 'HTTP status', value: d.http_status === null || d.http_status === undefined ? '' : String(Number(d.http_status)) },
    ]),
  ];
  const detail = plainCardText(d.detail, { max: LIMIT.error, multiline: true, maxLines: 10 });
  if (detail) {
    body.push({ type: 'TextBlock', text: 'Error', weight: 'bolder', wrap: true, separator: true });
    body.push({ type: 'TextBlock', text: detail, wrap: true, spacing: 'small' });
  }
  body.push({ type: 'TextBlock', text: 'Orders whose runbooks call it may fail until it is back.', wrap: true, isSubtle: true, size: 'small' });
  return card(title, body);
}

/** The card in the envelope Teams incoming webhooks take. */
export function teamsMessage(content: AdaptiveCard): TeamsMessage {
  return { type: 'message', attachments: [{ contentType: ADAPTIVE_CARD_CONTENT_TYPE, contentUrl: null, content }] };
}

/**
 * The message of an outbox row's template and data.
 * @throws Error for an unknown template, and as the card builders do.
 */
export function renderTeamsMessage<T extends TeamsTemplate>(template: T, data: TeamsTemplateData[T], ctx: RenderContext): TeamsMessage {
  switch (template) {
    case 'approval_request':
      return teamsMessage(approvalRequestCard(data as TeamsApprovalCardData, ctx));
    case 'health_alert':
      return teamsMessage(healthAlertCard(data as MailTemplateData['health_alert'], ctx));
    default:
      throw new Error(`unknown Teams template '${String(template)}'`);
  }
}
