import { createHash } from 'node:crypto';
import type { ApprovalLinkDecision, ApprovalLinkView } from '../domain/approvals/link-use';
import { escapeHtml } from '../domain/notifications';
import type { Problem } from '../http/problem';

/*
 * The pages of the signed approval links: a confirmation page (GET), an outcome page (POST) and a page per refusal.
 * Self-contained: one constant inline stylesheet allowed by its hash, no script, no image, nothing fetched, so the
 * Content-Security-Policy can forbid everything else. Every value from the database or the request is escaped.
 */

const STYLE = `
body{margin:0;background:#f4f5f7;font:15px/1.45 "Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328}
main{max-width:34rem;margin:3rem auto;padding:1.5rem 1.75rem;background:#fff;border:1px solid #d8dbe0;border-radius:8px}
h1{font-size:1.35rem;margin:0 0 .75rem}
p{margin:0 0 .9rem}
table{border-collapse:collapse;margin:0 0 1.1rem;width:100%}
th{text-align:left;font-weight:normal;color:#59636e;padding:.2rem 1rem .2rem 0;vertical-align:top;white-space:nowrap}
td{padding:.2rem 0;overflow-wrap:anywhere}
form{margin:0 0 1.1rem}
label{display:block;margin:0 0 .3rem;color:#59636e}
textarea{box-sizing:border-box;width:100%;min-height:4.5rem;font:inherit;padding:.4rem;border:1px solid #b6bcc4;border-radius:4px}
button{margin-top:1rem;font:inherit;font-weight:600;color:#fff;border:0;border-radius:4px;padding:.6rem 1.4rem;cursor:pointer}
.approved button,.approved .badge{background:#1e7d32}
.declined button,.declined .badge{background:#b71c1c}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:0 .45rem;font-size:.85rem;font-weight:600}
.refused h1{color:#8a1c1c}
.note{color:#59636e;font-size:.9rem}
footer{margin-top:1.25rem;color:#8b949e;font-size:.8rem}
`;

/** The headers of every link page (and of the JSON answers of these operations). */
export const LINK_PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  // Nothing may load or run; the one stylesheet is allowed by its hash; the form posts only back here.
  'Content-Security-Policy': [
    "default-src 'none'",
    `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; '),
  // The token is in the address: it must not leave in a Referer header, nor stay in a cache.
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  // Keep link pages out of search engines, should a link ever be posted somewhere public.
  'X-Robots-Tag': 'noindex, nofollow',
});

/** `2026-12-01 14:00 UTC`. */
const when = (d: Date | null): string | null => (d ? `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC` : null);

function page(opts: { title: string; tone?: 'approved' | 'declined' | 'refused'; body: string }): string {
  return (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    '<meta name="robots" content="noindex, nofollow">' +
    `<title>${escapeHtml(opts.title)} · provisio</title><style>${STYLE}</style></head>` +
    `<body><main class="${opts.tone ?? ''}">${opts.body}<footer>provisio</footer></main></body></html>`
  );
}

const p = (text: string, cls?: string) => `<p${cls ? ` class="${cls}"` : ''}>${escapeHtml(text)}</p>`;

function facts(rows: [string, string | null | undefined][]): string {
  const shown = rows.filter(([, v]) => v !== null && v !== undefined && v !== '');
  return `<table>${shown.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>`;
}

const verb = (d: 'approved' | 'declined') => (d === 'approved' ? 'Approve' : 'Decline');

function what(v: ApprovalLinkView): string {
  const s = v.subject;
  return s.kind === 'extension' ? `the extension of order #${s.orderId}` : `order #${s.orderId}`;
}

function orderFacts(v: ApprovalLinkView, as: 'You decide as' | 'Decided as' = 'You decide as'): string {
  const s = v.subject;
  const extension = s.kind === 'extension';
  return facts([
    ['Order', `#${s.orderId}`],
    ['Requester', s.requesterName ? `${s.requesterName} <${s.requesterEmail}>` : s.requesterEmail],
    ['Asset type', s.assetTypeName],
    [extension ? 'Started' : 'From', when(s.requestedFrom)],
    [extension ? 'Currently until' : 'Until', when(s.requestedUntil)],
    ...(extension ? ([['Extend until', when(s.approvalRequestedUntil ?? s.extensionRequestedUntil)]] as [string, string | null][]) : []),
    ['Reason given', v.justification],
    [as, s.onBehalfOf ? `${v.approverEmail}, for ${s.onBehalfOf}` : v.approverEmail],
  ]);
}

/** The confirmation page: what the link decides, an optional reason and the button that posts the decision. */
export function confirmationPage(v: ApprovalLinkView): string {
  const title = `${verb(v.decision)} ${what(v)}?`;
  return page({
    title,
    tone: v.decision,
    body:
      `<h1>${escapeHtml(title)}</h1>` +
      p(`${v.subject.requesterName || v.subject.requesterEmail} asked for ${v.subject.assetTypeName}. Nothing is decided until you confirm below.`) +
      orderFacts(v) +
      // No action attribute: the form posts back to this very address, token included.
      '<form method="post">' +
      `<label for="reason">Reason (optional)</label><textarea id="reason" name="reason" maxlength="1000"></textarea>` +
      `<button type="submit">Confirm: ${escapeHtml(verb(v.decision).toLowerCase())}</button>` +
      '</form>' +
      p(`This link works once and expires ${when(v.expiresAt)}.`, 'note'),
  });
}

/** The page after the decision: what it did. */
export function outcomePage(d: ApprovalLinkDecision): string {
  const v = d.view;
  const round = d.result.round;
  const headline =
    d.outcome === 'counted'
      ? `Your approval of ${what(v)} is recorded`
      : `${what(v).replace(/^./, (c) => c.toUpperCase())} ${d.outcome === 'approved' ? 'is approved' : 'is declined'}`;
  const detail =
    d.outcome === 'counted' && round
      ? `It needs ${round.round.quorum} approvals; ${round.count.approved} so far. It proceeds when the others approve.`
      : d.outcome === 'approved'
        ? v.subject.kind === 'extension'
          ? 'The new end date applies. The requester is told.'
          : 'It proceeds to provisioning. The requester is told.'
        : v.subject.kind === 'extension'
          ? 'The order keeps its current end date. The requester is told.'
          : 'The order is cancelled. The requester is told.';
  return page({
    title: headline,
    tone: d.outcome === 'declined' ? 'declined' : 'approved',
    body: `<h1>${escapeHtml(headline)}</h1><p><span class="badge">${escapeHtml(d.outcome)}</span></p>` + p(detail) + orderFacts(v, 'Decided as') + p('You can close this page.', 'note'),
  });
}

/** What each refusal says, in plain words; the problem's own detail follows. */
const REFUSALS: Partial<Record<Problem['code'], { title: string; advice: string }>> = {
  LINK_INVALID: {
    title: 'This approval link is not valid',
    advice: 'It may have been altered or cut short when it was copied. Open it again from the mail, or decide in provisio.',
  },
  LINK_USED: { title: 'This approval link was already used', advice: 'Each link decides once. Nothing more is needed from you.' },
  LINK_EXPIRED: { title: 'This approval link has expired', advice: 'A reminder mail brings fresh links; you can also decide in provisio.' },
  APPROVAL_CLOSED: { title: 'This request no longer waits for your decision', advice: 'Nothing was changed. Nothing more is needed from you.' },
  SEPARATION_OF_DUTIES: { title: 'You may not approve this request', advice: 'Someone else has to decide it. Nothing was changed.' },
  BAD_REQUEST: { title: 'This approval link is not valid', advice: 'Open it again from the mail, or decide in provisio.' },
  VALIDATION_FAILED: { title: 'The form could not be accepted', advice: 'Go back, correct it and confirm again. Nothing was changed.' },
  PAYLOAD_TOO_LARGE: { title: 'The form is too large', advice: 'Go back, shorten the reason and confirm again. Nothing was changed.' },
  UNSUPPORTED_MEDIA_TYPE: { title: 'The form could not be read', advice: 'Go back and confirm again. Nothing was changed.' },
};

/** The page of a refusal (or of a failure on our side, which names no internals). */
export function refusalPage(pr: Problem): string {
  const r = REFUSALS[pr.code] ?? {
    title: pr.status >= 500 ? 'Something went wrong on our side' : 'This request could not be completed',
    advice: 'Try again in a moment, or decide in provisio.',
  };
  const detail = pr.status >= 500 ? null : pr.detail;
  return page({
    title: r.title,
    tone: 'refused',
    body: `<h1>${escapeHtml(r.title)}</h1>` + (detail ? p(detail) : '') + p(r.advice) + p(`${pr.status} ${pr.title} · ${pr.code}`, 'note'),
  });
}
