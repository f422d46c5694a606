import type { Logger } from '../../adapter';
import type { RouteModule } from './route-module';
import type { GraphChangeNotification, GraphChangeNotificationCollection, HrLeaverResult, LeaverEvent } from '../api/gen/types.gen';
import type { RequesterDirectory } from '../domain/identity/requester-directory';
import type { Principal } from '../auth/principal';
import { badRequest, unauthenticated } from '../errors';
import { listLeaverEvents, processLeaverEvent, type LeaverDeps, type LeaverEventView } from '../domain/identity/leaver';
import { graphClientStateMatches, graphItems, hrLeaverItems, isGraphCollection, type HrLeaverItem } from './hr-payloads';

/** How the edge authenticated, for the leaver event's audit row (never the credential itself). */
function credentialOf(p: Principal | undefined): string {
  if (!p || p.kind === 'graph_client_state') return 'client_state';
  return p.kind === 'token' ? `token:${p.name}` : p.kind === 'hmac' ? 'hmac' : 'admin_key';
}

/** Graph's subscription handshake: it waits for its token back, as text/plain, within 10 seconds. */
const handshake = (token: string) => ({
  status: 200,
  text: token,
  contentType: 'text/plain; charset=utf-8',
  headers: { 'X-Content-Type-Options': 'nosniff' },
});

/** No payload: nothing sent, or the empty object the JSON parser leaves for a bodiless request. */
const isEmpty = (body: unknown): boolean =>
  body === undefined || body === null || body === '' || (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0);

function messageOf(r: { status: string; revokedOrders: number[]; cancelledOrders: number[] }): string {
  switch (r.status) {
    case 'no_matching_user':
      return 'no matching user';
    case 'duplicate':
      return 'duplicate delivery: nothing changed';
    case 'scheduled':
      return 'scheduled for its effective time';
    default:
      return `${r.revokedOrders.length} order(s) revoked, ${r.cancelledOrders.length} cancelled`;
  }
}

/** Runs each leaver event of a delivery in turn (each its own transaction); ignored items are only answered. */
async function runItems(deps: LeaverDeps, items: HrLeaverItem[], credential: string, requestId: string | undefined): Promise<HrLeaverResult[]> {
  const results: HrLeaverResult[] = [];
  for (const item of items) {
    if (item.kind === 'ignored') {
      results.push({ status: 'ignored', event_id: null, source: item.source, revoked_orders: [], cancelled_orders: [], message: item.message });
      continue;
    }
    const r = await processLeaverEvent(deps, { ...item.input, triggeredBy: item.triggeredBy, credential, ...(requestId ? { requestId } : {}) });
    results.push({
      status: r.status,
      event_id: r.eventId,
      source: item.input.source,
      revoked_orders: r.revokedOrders,
      cancelled_orders: r.cancelledOrders,
      message: messageOf(r),
    });
  }
  return results;
}

/** Refuses (401) a Graph delivery whose clientState is not ours, and logs it without the values sent. */
async function checkGraph(deps: LeaverDeps, logger: Logger, notifications: readonly GraphChangeNotification[], ip: string | undefined) {
  if (await graphClientStateMatches(deps.db, notifications)) return;
  logger.warn('graph notification refused: clientState does not match hr.graph_client_state', {
    subscriptionIds: [...new Set(notifications.map((n) => n.subscriptionId ?? null))],
    notifications: notifications.length,
    ip,
  });
  throw unauthenticated('clientState does not match this subscription');
}

const toLeaverEvent = (e: LeaverEventView): LeaverEvent => ({
  ...e,
  identity: {
    email: e.identity.email ?? null,
    userName: e.identity.userName ?? null,
    externalId: e.identity.externalId ?? null,
    employeeId: e.identity.employeeId ?? null,
  },
  effective_at: e.effective_at ? e.effective_at.toISOString() : null,
  created_at: e.created_at.toISOString(),
  processed_at: e.processed_at ? e.processed_at.toISOString() : null,
});

/**
 * The HR edge of the leaver flow. `POST /hr/leaver` is authenticated before the handler (bearer `hr:leaver`, HMAC,
 * or, for Microsoft Graph's notifications and handshake only, the subscription's clientState: server/auth);
 * `POST /hr/leaver/graph` is public and authenticated here by the clientState.
 */
/**
 * Graph's basic change notifications for users carry the object id only: an `updated` one cannot say whether the
 * account was disabled. With a directory that knows object ids (Entra ID), the account is read to find out; a
 * disabled one becomes the leaver signal (accountEnabled false) with its UPN and mail for matching.
 */
async function withAccountState(body: GraphChangeNotificationCollection, directory: RequesterDirectory | undefined): Promise<GraphChangeNotificationCollection> {
  if (!directory?.accountById) return body;
  const value = await Promise.all(
    body.value.map(async (n) => {
      const d = n.resourceData;
      if (n.changeType !== 'updated' || d.accountEnabled !== undefined || typeof d.id !== 'string') return n;
      const account = await directory.accountById!(d.id);
      if (!account) return n;
      return { ...n, resourceData: { ...d, accountEnabled: account.enabled, ...(account.mail ? { mail: account.mail } : {}), ...(account.userPrincipalName ? { userPrincipalName: account.userPrincipalName } : {}) } };
    }),
  );
  return { ...body, value };
}

export const hrHandlers: RouteModule = ({ db, logger, leaver: deps, requesterDirectory }) => {
  return {
    receiveHrLeaver: async ({ body, query, principal, requestId, req }) => {
      if (!principal) throw unauthenticated('credentials required');
      if (query.validationToken !== undefined && isEmpty(body)) return handshake(query.validationToken);
      if (body === undefined || isEmpty(body)) throw badRequest('expected a leaver payload (JSON), or a Graph validationToken handshake without a body');
      // The clientState scheme admits Graph notifications only (server/auth checked their clientState); this keeps
      // it so should the body's shape and the check ever disagree. A token or signature relaying Graph is checked too.
      if (principal.kind === 'graph_client_state' && !isGraphCollection(body)) throw unauthenticated('credentials required');
      if (isGraphCollection(body) && principal.kind !== 'graph_client_state') await checkGraph(deps, logger, body.value, req.ip);
      const results = await runItems(deps, hrLeaverItems(body), credentialOf(principal), requestId);
      return { status: 202, body: { results } };
    },

    receiveGraphLeaverNotification: async ({ body, query, requestId, req }) => {
      if (query.validationToken !== undefined) return handshake(query.validationToken);
      if (!body || !Array.isArray(body.value)) throw badRequest('expected Graph change notifications (a JSON object with `value`)');
      await checkGraph(deps, logger, body.value, req.ip);
      const results = await runItems(deps, graphItems(await withAccountState(body, requesterDirectory)), credentialOf(undefined), requestId);
      return { status: 202, body: { results } };
    },

    listLeaverEvents: async ({ query }) => {
      const limit = query.limit ?? 50;
      const offset = query.offset ?? 0;
      const page = await listLeaverEvents(db, { source: query.source, status: query.status, person: query.person }, { limit, offset });
      return { status: 200, body: { items: page.items.map(toLeaverEvent), total: page.total, limit, offset } };
    },
  };
};
