/**
 * The mail templates: each renders a subject, a plain-text part and an HTML part from the data stored on the outbox
 * row, at send time. Links are rendered then too (`ctx.linkUrl(id)`): the row keeps link ids, never signed URLs, so
 * nothing that grants a decision sits in the outbox. Everything interpolated into HTML is escaped; subjects are
 * checked against header injection (by the caller and again by the transport).
 */

/** The templates a mail can be queued with. */
export type MailTemplate = 'approval_request' | 'approval_reminder' | 'decision' | 'expiry_warning' | 'leaver_notice' | 'health_alert';

export const MAIL_TEMPLATES: readonly MailTemplate[] = Object.freeze([
  'approval_request',
  'approval_reminder',
  'decision',
  'expiry_warning',
  'leaver_notice',
  'health_alert',
]);

/** What an approval mail says about the order it asks a decision on. Times are ISO 8601 strings. */
export interface ApprovalMailData {
  order_id: number;
  approval_id?: number | undefined;
  asset_type_name: string;
  requester_email: string;
  requester_name?: string | null | undefined;
  /** What is decided: the order itself (default), or an extension of it to `requested_until`. */
  kind?: 'order' | 'extension' | undefined;
  requested_from?: string | null | undefined;
  requested_until?: string | null | undefined;
  /** The requester's justification. */
  reason?: string | null | undefined;
  /** The asset type's cost, when it has one. */
  cost?: { amount: number; currency?: string | null | undefined; period?: 'month' | undefined } | null | undefined;
  /** The deputy case: the approver the recipient decides for (who is copied on the mail). */
  on_behalf_of?: string | null | undefined;
  /** A quorum: how many approvals the order needs, out of how many approvers. */
  quorum?: { required: number; approvers: number } | null | undefined;
  /** Link ids (never URLs): rendered as Approve / Decline buttons with `RenderContext.linkUrl`. */
  links?: { approve: string; decline: string } | undefined;
}

/** The data each template renders. */
export interface MailTemplateData {
  approval_request: ApprovalMailData;
  approval_reminder: ApprovalMailData & { /** Reminders sent so far, this one included. */ reminders_sent?: number | undefined };
  decision: {
    order_id: number;
    asset_type_name: string;
    requester_name?: string | null | undefined;
    decision: 'approved' | 'declined' | 'expired';
    kind?: 'order' | 'extension' | undefined;
    requested_until?: string | null | undefined;
    decided_by?: string | null | undefined;
    reason?: string | null | undefined;
  };
  expiry_warning: {
    order_id: number;
    asset_type_name: string;
    requester_name?: string | null | undefined;
    requested_until: string;
    days_left: number;
  };
  leaver_notice: {
    leaver_emails: readonly string[];
    revoked: readonly LeaverNoticeOrder[];
    cancelled: readonly LeaverNoticeOrder[];
  };
  health_alert: {
    integration_id: number | string;
    integration_name: string;
    previous_status?: string | null | undefined;
    status: string;
    detail?: string | null | undefined;
    http_status?: number | null | undefined;
  };
}

export interface LeaverNoticeOrder {
  order_id: number;
  asset_type_name: string;
  asset_name?: string | null | undefined;
}

/** What rendering needs beyond the row: how a link id becomes a URL, and the service's public address. */
export interface RenderContext {
  linkUrl(linkId: string): string;
  publicUrl: string;
}

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

/** HTML-escapes text for element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** `2026-12-01 14:00 UTC` from an ISO instant; the input as it is when it is not one. */
function when(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** The date part only: `2026-12-01`. */
function day(iso: string | null | undefined): string {
  return when(iso).slice(0, 10);
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

// A rendered link must be a web address: a `linkUrl` that produced anything else (javascript:, data:) is a bug, and a
// button to it would be worse than none.
function webUrl(url: string): string {
  if (!/^https?:\/\//i.test(url)) throw new Error(`a mail link must be an http(s) URL, got '${url.slice(0, 40)}'`);
  return url;
}

/** One labelled fact of a mail, in both parts; left out when it has no value. */
interface Fact {
  label: string;
  value: string | null | undefined;
}

/** The parts a template body is built from. */
interface Body {
  intro: string[];
  facts?: Fact[];
  /** Bulleted lists with a heading. */
  lists?: { heading: string; items: string[] }[];
  buttons?: { label: string; url: string; colour: string }[];
  outro?: string[];
}

function renderText(b: Body, ctx: RenderContext): string {
  const lines: string[] = [...b.intro, ''];
  const facts = (b.facts ?? []).filter((f) => f.value);
  if (facts.length) {
    for (const f of facts) lines.push(`${f.label}: ${f.value}`);
    lines.push('');
  }
  for (const l of b.lists ?? []) {
    lines.push(`${l.heading}:`);
    for (const i of l.items) lines.push(`  - ${i}`);
    lines.push('');
  }
  for (const btn of b.buttons ?? []) lines.push(`${btn.label}: ${btn.url}`);
  if (b.buttons?.length) lines.push('');
  if (b.outro?.length) lines.push(...b.outro, '');
  lines.push('--', `provisio ${ctx.publicUrl}`);
  return lines.join('\n');
}

function renderHtml(b: Body, ctx: RenderContext): string {
  const p = (t: string) => `<p style="margin:0 0 12px">${escapeHtml(t)}</p>`;
  const facts = (b.facts ?? []).filter((f) => f.value);
  const parts: string[] = b.intro.map(p);
  if (facts.length) {
    parts.push(
      '<table style="border-collapse:collapse;margin:0 0 16px">' +
        facts
          .map((f) => `<tr><th style="text-align:left;padding:2px 12px 2px 0;color:#555;font-weight:normal">${escapeHtml(f.label)}</th><td style="padding:2px 0">${escapeHtml(f.value)}</td></tr>`)
          .join('') +
        '</table>',
    );
  }
  for (const l of b.lists ?? []) {
    parts.push(`<p style="margin:0 0 4px"><strong>${escapeHtml(l.heading)}</strong></p><ul style="margin:0 0 16px">${l.items.map((i) => `<li>${escapeHtml(i)}</li>`).join('')}</ul>`);
  }
  if (b.buttons?.length) {
    parts.push(
      '<p style="margin:16px 0">' +
        b.buttons
          .map((btn) => `<a href="${escapeHtml(btn.url)}" style="display:inline-block;padding:10px 20px;margin-right:12px;border-radius:4px;background:${btn.colour};color:#ffffff;text-decoration:none;font-weight:bold">${escapeHtml(btn.label)}</a>`)
          .join('') +
        '</p>',
    );
  }
  for (const o of b.outro ?? []) parts.push(p(o));
  return (
    '<!DOCTYPE html><html><head><meta charset="utf-8"></head>' +
    '<body style="font-family:Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#222;line-height:1.4">' +
    parts.join('') +
    `<p style="margin:24px 0 0;color:#888;font-size:12px">provisio &middot; ${escapeHtml(ctx.publicUrl)}</p>` +
    '</body></html>'
  );
}

function requesterOf(d: { requester_name?: string | null | undefined; requester_email: string }): string {
  return d.requester_name ? `${d.requester_name} <${d.requester_email}>` : d.requester_email;
}

function costOf(c: ApprovalMailData['cost']): string | null {
  if (!c || typeof c.amount !== 'number' || !Number.isFinite(c.amount)) return null;
  return `${c.amount.toFixed(2)}${c.currency ? ` ${c.currency}` : ''} per ${c.period ?? 'month'}`;
}

function approvalBody(d: ApprovalMailData, ctx: RenderContext, reminder: { sent: number } | undefined): Body {
  const extension = d.kind === 'extension';
  const what = extension ? `an extension of ${d.asset_type_name} until ${day(d.requested_until)}` : d.asset_type_name;
  const intro = [
    reminder
      ? `Reminder: ${requesterOf(d)} is still waiting for your decision on ${what} (order #${d.order_id}).`
      : `${requesterOf(d)} asks for ${what} (order #${d.order_id}) and needs your decision.`,
  ];
  if (d.on_behalf_of) intro.push(`You are deciding for ${d.on_behalf_of}, who is copied on this mail.`);
  if (d.quorum) intro.push(`This request needs ${d.quorum.required} of ${d.quorum.approvers} approvals; yours counts as one.`);
  const buttons = d.links
    ? [
        { label: 'Approve', url: webUrl(ctx.linkUrl(d.links.approve)), colour: '#1e7d32' },
        { label: 'Decline', url: webUrl(ctx.linkUrl(d.links.decline)), colour: '#b71c1c' },
      ]
    : [];
  return {
    intro,
    facts: [
      { label: 'Order', value: `#${d.order_id}` },
      { label: 'Requester', value: requesterOf(d) },
      { label: 'Asset type', value: d.asset_type_name },
      { label: extension ? 'Current start' : 'From', value: when(d.requested_from) },
      { label: extension ? 'Extend until' : 'Until', value: when(d.requested_until) },
      { label: 'Reason', value: d.reason },
      { label: 'Cost', value: costOf(d.cost) },
      ...(reminder && reminder.sent > 1 ? [{ label: 'Reminders sent', value: String(reminder.sent) }] : []),
    ],
    buttons,
    outro: d.links
      ? ['Each button opens a confirmation page; nothing is decided until you confirm there. The links work once and expire.']
      : ['Decide in provisio (Approvals).'],
  };
}

type Renderer<T extends MailTemplate> = { subject(d: MailTemplateData[T]): string; body(d: MailTemplateData[T], ctx: RenderContext): Body };

const OUTCOME = { approved: 'approved', declined: 'declined', expired: 'expired without a decision' } as const;

const RENDERERS: { [T in MailTemplate]: Renderer<T> } = {
  approval_request: {
    subject: (d) => `Approval needed: ${d.kind === 'extension' ? 'extension of ' : ''}${d.asset_type_name} for ${d.requester_name || d.requester_email} (order #${d.order_id})`,
    body: (d, ctx) => approvalBody(d, ctx, undefined),
  },
  approval_reminder: {
    subject: (d) => `Reminder: approval needed: ${d.kind === 'extension' ? 'extension of ' : ''}${d.asset_type_name} for ${d.requester_name || d.requester_email} (order #${d.order_id})`,
    body: (d, ctx) => approvalBody(d, ctx, { sent: d.reminders_sent ?? 1 }),
  },
  decision: {
    subject: (d) => `Your ${d.kind === 'extension' ? 'extension of' : 'request for'} ${d.asset_type_name} was ${OUTCOME[d.decision] ?? d.decision} (order #${d.order_id})`,
    body: (d) => ({
      intro: [
        `${d.requester_name ? `Hello ${d.requester_name}, y` : 'Y'}our ${d.kind === 'extension' ? `extension of ${d.asset_type_name}${d.requested_until ? ` until ${day(d.requested_until)}` : ''}` : `request for ${d.asset_type_name}`} (order #${d.order_id}) was ${OUTCOME[d.decision] ?? d.decision}.`,
        d.decision === 'approved'
          ? d.kind === 'extension' ? 'Your access continues until the new date.' : 'It is being provisioned now; you will be able to use it shortly.'
          : d.kind === 'extension' ? 'Your access ends at its current date.' : 'Nothing was provisioned.',
      ],
      facts: [
        { label: 'Order', value: `#${d.order_id}` },
        { label: 'Decision', value: d.decision },
        { label: 'Decided by', value: d.decided_by },
        { label: 'Reason', value: d.reason },
      ],
    }),
  },
  expiry_warning: {
    subject: (d) => `${d.asset_type_name} ends ${d.days_left <= 0 ? 'today' : `in ${plural(d.days_left, 'day')}`} (order #${d.order_id})`,
    body: (d) => ({
      intro: [
        `${d.requester_name ? `Hello ${d.requester_name}, y` : 'Y'}our ${d.asset_type_name} (order #${d.order_id}) ends on ${when(d.requested_until)}${d.days_left > 0 ? `, in ${plural(d.days_left, 'day')}` : ''}.`,
        'If you still need it, request an extension before then; otherwise it is taken back at that time.',
      ],
      facts: [
        { label: 'Order', value: `#${d.order_id}` },
        { label: 'Ends', value: when(d.requested_until) },
      ],
    }),
  },
  leaver_notice: {
    subject: (d) => `Leaver ${d.leaver_emails[0] ?? ''}: ${plural(d.revoked.length, 'access', 'accesses')} revoked, ${plural(d.cancelled.length, 'request')} cancelled`,
    body: (d) => {
      const line = (o: LeaverNoticeOrder) => `${o.asset_type_name}${o.asset_name ? ` (${o.asset_name})` : ''}, order #${o.order_id}`;
      return {
        intro: [`${d.leaver_emails.join(', ')} left the organisation, and you are recorded as their manager. What they held was taken back:`],
        lists: [
          ...(d.revoked.length ? [{ heading: 'Revoked', items: d.revoked.map(line) }] : []),
          ...(d.cancelled.length ? [{ heading: 'Cancelled (not yet provisioned)', items: d.cancelled.map(line) }] : []),
        ],
        outro: ['Nothing is needed from you unless something here should have been handed over to someone else.'],
      };
    },
  },
  health_alert: {
    subject: (d) => `Integration ${d.integration_name} is ${d.status}`,
    body: (d) => ({
      intro: [`The health check of integration ${d.integration_name} found it ${d.status}${d.previous_status ? ` (it was ${d.previous_status})` : ''}.`],
      facts: [
        { label: 'Integration', value: `${d.integration_name} (id ${d.integration_id})` },
        { label: 'State', value: d.status },
        { label: 'Previous state', value: d.previous_status },
        { label: 'HTTP status', value: d.http_status === null || d.http_status === undefined ? null : String(d.http_status) },
        { label: 'Error', value: d.detail },
      ],
      outro: ['Orders whose runbooks call it may fail until it is back.'],
    }),
  },
};

export function isMailTemplate(name: string): name is MailTemplate {
  return (MAIL_TEMPLATES as readonly string[]).includes(name);
}

/** The subject alone (it never holds a link): what the enqueue checks before the row is written. */
export function renderSubject<T extends MailTemplate>(template: T, data: MailTemplateData[T]): string {
  return RENDERERS[template].subject(data);
}

/**
 * Renders a mail. Throws for an unknown template, and when `ctx.linkUrl` gives something other than an http(s) URL.
 */
export function renderMail<T extends MailTemplate>(template: T, data: MailTemplateData[T], ctx: RenderContext): RenderedMail {
  const r = RENDERERS[template] as Renderer<T> | undefined;
  if (!r) throw new Error(`unknown mail template '${template}'`);
  const body = r.body(data, ctx);
  return { subject: r.subject(data), text: renderText(body, ctx), html: renderHtml(body, ctx) };
}
