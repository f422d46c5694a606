import express, { type ErrorRequestHandler, type Request, type RequestHandler } from 'express';
import type { Logger } from '../../adapter';
import type { ApprovalLinkOutcome, ApprovalLinkView as ApiLinkView } from '../api/gen/types.gen';
import type { RawResult } from '../api/handler';
import type { Config } from '../config';
import { createLinkSigner, loadLinkKey, type LinkSigner } from '../domain/approvals/link-signer';
import { decideByApprovalLink, openApprovalLink, type ApprovalLinkView } from '../domain/approvals/link-use';
import { sendProblem, toProblem } from '../http/problem';
import { confirmationPage, LINK_PAGE_HEADERS, outcomePage, refusalPage } from './approval-link-pages';
import type { RouteModule } from './route-module';

/*
 * The signed approval links' pages (no login: the token in the path is the credential). GET shows what the link
 * decides and decides nothing; POST decides (domain/approvals/link-use.ts). Browsers get HTML pages, refusals
 * included; other clients get JSON and problem documents with the same statuses.
 */

/** The link operations: no `security` in the spec, the token in the path is their credential (throttled as one). */
export const APPROVAL_LINK_OPERATIONS: ReadonlySet<string> = new Set(['getApprovalLink', 'decideApprovalLink']);
const isLinkOperation = (req: Request): boolean => req.operation !== undefined && APPROVAL_LINK_OPERATIONS.has(req.operation.operationId);

/** The path as it may be logged or echoed: never the token, which decides an approval until it is used. */
export const LINK_PATH_TEMPLATE = '/approvals/links/{token}';

/**
 * True when the client prefers a page: a browser, whose Accept names `text/html` above its `*\/*`. Anything else (no
 * Accept, `*\/*`, `application/json`) gets JSON and problem documents, as from every other operation.
 */
function wantsHtml(req: Request): boolean {
  return req.accepts(['application/json', 'application/problem+json', 'text/html']) === 'text/html';
}

const html = (status: number, text: string): RawResult => ({ status, text, contentType: 'text/html; charset=utf-8', headers: { ...LINK_PAGE_HEADERS } });

function viewBody(v: ApprovalLinkView): ApiLinkView {
  const s = v.subject;
  return {
    order_id: s.orderId,
    approval_id: s.approvalId,
    kind: s.kind,
    decision: v.decision,
    approver_email: v.approverEmail,
    on_behalf_of: s.onBehalfOf,
    requester_email: s.requesterEmail,
    requester_name: s.requesterName,
    asset_type_name: s.assetTypeName,
    requested_from: s.requestedFrom?.toISOString() ?? null,
    requested_until: (s.kind === 'extension' ? (s.approvalRequestedUntil ?? s.extensionRequestedUntil) : s.requestedUntil)?.toISOString() ?? null,
    justification: v.justification,
    expires_at: v.expiresAt.toISOString(),
  };
}

/**
 * What the link operations need before the spec's validator and after the operation is resolved: their security
 * headers on every answer, and their form bodies parsed (the confirmation page posts a plain HTML form; no other
 * operation accepts form bodies).
 */
export function approvalLinkEdge(config: Readonly<Config>): RequestHandler {
  const form = express.urlencoded({ extended: false, limit: Math.min(config.bodyLimitBytes, 16 * 1024), parameterLimit: 10, type: 'application/x-www-form-urlencoded' });
  return (req, res, next) => {
    if (!isLinkOperation(req)) return next();
    res.set(LINK_PAGE_HEADERS);
    return form(req, res, next);
  };
}

/**
 * The link operations' errors, before the one problem handler: a page for a browser, a problem document (whose
 * `instance` names the path template, not the token) for a JSON client. Anything unexpected is a 500 page that
 * names nothing internal, logged without the token.
 */
export function approvalLinkErrors(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (!isLinkOperation(req) || res.headersSent) return next(err);
    const problem = toProblem(err);
    if (problem.status >= 500) {
      logger.error('approval link request failed', { method: req.method, path: LINK_PATH_TEMPLATE, err: err instanceof Error ? err.stack : String(err) });
    }
    res.set(LINK_PAGE_HEADERS);
    if (!wantsHtml(req)) return sendProblem(res, problem, LINK_PATH_TEMPLATE);
    res.status(problem.status).type('text/html; charset=utf-8').send(refusalPage(problem));
  };
}

export const approvalLinkHandlers: RouteModule = (deps, config) => {
  // main.ts hands the process's signer in; an app built without one (tests that build their own) signs with the key
  // of the configuration, loaded when a MAC is first checked (only a token naming a known link gets that far).
  const signer: LinkSigner =
    deps.linkSigner ??
    createLinkSigner({ key: () => loadLinkKey({ envKey: config.approvalLinkKey, dataDir: config.dataDir }).key, publicUrl: config.publicUrl ?? '' });
  const linkDeps = () => ({ db: deps.db, queue: deps.queue, logger: deps.logger, directory: deps.requesterDirectory, signer });

  return {
    getApprovalLink: async ({ path, req }) => {
      const view = await openApprovalLink(linkDeps(), path.token);
      if (wantsHtml(req)) return html(200, confirmationPage(view));
      return { status: 200, body: viewBody(view), headers: { ...LINK_PAGE_HEADERS } };
    },
    decideApprovalLink: async ({ path, body, req, requestId }) => {
      const decided = await decideByApprovalLink(linkDeps(), path.token, { reason: body?.reason, requestId });
      if (!wantsHtml(req)) {
        const round = decided.result.round;
        const out: ApprovalLinkOutcome = {
          order_id: decided.view.subject.orderId,
          approval_id: decided.view.subject.approvalId,
          kind: decided.view.subject.kind,
          decision: decided.view.decision,
          outcome: decided.outcome,
          order_status: decided.result.order.status,
          quorum: round && round.round.mode === 'quorum' ? { required: round.round.quorum, approved: round.count.approved } : null,
        };
        return { status: 200, body: out, headers: { ...LINK_PAGE_HEADERS } };
      }
      return html(200, outcomePage(decided));
    },
  };
};
