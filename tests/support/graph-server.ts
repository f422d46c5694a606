import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { startHttpsLoopbackServer, type HttpsLoopbackServer } from './https-loopback';
import { sendJson, type RecordedRequest } from './loopback-server';

/** A user as the fake tenant keeps it (Graph's property names). */
export interface GraphUserSeed {
  id?: string;
  userPrincipalName: string;
  mail?: string | null;
  mailNickname?: string;
  displayName?: string;
  accountEnabled?: boolean;
  department?: string | null;
  companyName?: string | null;
  employeeId?: string | null;
  jobTitle?: string | null;
  employeeOrgData?: { costCenter?: string | null; division?: string | null } | null;
  /** The manager's userPrincipalName. */
  manager?: string;
}

export interface GraphGroupSeed {
  id?: string;
  displayName: string;
  mailNickname?: string;
  /** Members by userPrincipalName (users) or displayName (groups, for nesting). */
  members: string[];
}

export interface GraphSubscription {
  id: string;
  resource: string;
  changeType: string;
  notificationUrl: string;
  clientState: string;
  expirationDateTime: string;
}

export interface GraphServer {
  /** https://127.0.0.1:<port>: the authority host. */
  url: string;
  /** `${url}/v1.0`: graph_base_url. */
  graphBaseUrl: string;
  caPem: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  requests: RecordedRequest[];
  users: Map<string, Record<string, unknown>>;
  groups: Map<string, { id: string; displayName: string; mailNickname: string; members: Set<string> }>;
  subscriptions: Map<string, GraphSubscription>;
  /** Token endpoint hits. */
  tokenRequests: number;
  /** Lifetime of tokens issued from now on (seconds). */
  tokenLifetimeSeconds: number;
  /** The next N Graph calls answer 429 with this Retry-After (seconds). */
  throttle: { remaining: number; retryAfter: string; status: 429 | 503 };
  /** Graph calls answer 403 Authorization_RequestDenied: every call, writes only, or none. */
  deny: 'all' | 'writes' | null;
  /** Items per page of a collection (forces @odata.nextLink). */
  pageSize: number;
  /** Forgets a subscription, as Graph does when it expired or was deleted elsewhere. */
  dropSubscription(id: string): void;
  /** Posts a change notification for a user to every subscription (as Graph: basic notification, id only). */
  notify(userId: string, changeType: 'updated' | 'deleted', opts?: { clientState?: string }): Promise<{ status: number; body: string }[]>;
  idOf(upn: string): string;
  close(): Promise<void>;
}

const seg = (p: string) => p.split('/').filter(Boolean).map(decodeURIComponent);

function readPath(o: Record<string, unknown>, path: string): unknown {
  let v: unknown = o;
  for (const p of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
  return v;
}

/** `a eq 'x' or b eq 'y'`: the only filter shape the directory sends. Graph compares strings case-insensitively. */
function matcher(filter: string | null): (o: Record<string, unknown>) => boolean {
  if (!filter) return () => true;
  const clauses: { prop: string; value: string }[] = [];
  const clause = /\s*([A-Za-z0-9_/.]+)\s+eq\s+'((?:[^']|'')*)'\s*(or\b|$)/y;
  for (let m = clause.exec(filter); m; m = clause.exec(filter)) {
    clauses.push({ prop: m[1]!.replace(/\//g, '.'), value: m[2]!.replace(/''/g, "'").toLowerCase() });
    if (!m[3]) break;
  }
  if (clauses.length === 0 || clause.lastIndex !== filter.length) throw new Error(`unsupported filter ${filter}`);
  return (o) => clauses.some((c) => String(readPath(o, c.prop) ?? '').toLowerCase() === c.value);
}

function graphError(res: http.ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message, innerError: { 'request-id': randomUUID(), date: new Date().toISOString() } } }, headers);
}

/**
 * A loopback HTTPS Microsoft Graph v1.0 (the endpoints the Entra directory and the subscription keeper use) with
 * state, plus the identity platform's client-credentials token endpoint. Collections page by `pageSize` with
 * `@odata.nextLink`; switches make it throttle (429 + Retry-After) or refuse a permission (403).
 */
export async function startGraphServer(seed: { users: GraphUserSeed[]; groups: GraphGroupSeed[] }): Promise<GraphServer> {
  const tenantId = randomUUID();
  const clientId = randomUUID();
  const clientSecret = `graph-secret-${randomUUID()}`;
  const tokens = new Map<string, number>(); // token -> expiry (ms)
  let srv!: HttpsLoopbackServer;

  const users = new Map<string, Record<string, unknown>>();
  const upnToId = new Map<string, string>();
  for (const u of seed.users) {
    const id = u.id ?? randomUUID();
    const { manager: _m, ...rest } = u;
    users.set(id, { accountEnabled: true, mail: null, department: null, companyName: null, employeeId: null, jobTitle: null, employeeOrgData: null, mailNickname: u.userPrincipalName.split('@')[0], displayName: u.userPrincipalName, ...rest, id });
    upnToId.set(u.userPrincipalName.toLowerCase(), id);
  }
  const managers = new Map<string, string>();
  for (const u of seed.users) if (u.manager) managers.set(upnToId.get(u.userPrincipalName.toLowerCase())!, upnToId.get(u.manager.toLowerCase())!);
  const groups: GraphServer['groups'] = new Map();
  const nameToGroup = new Map<string, string>();
  for (const g of seed.groups) {
    const id = g.id ?? randomUUID();
    groups.set(id, { id, displayName: g.displayName, mailNickname: g.mailNickname ?? g.displayName, members: new Set() });
    nameToGroup.set(g.displayName.toLowerCase(), id);
  }
  for (const g of seed.groups) {
    const group = groups.get(nameToGroup.get(g.displayName.toLowerCase())!)!;
    for (const m of g.members) group.members.add(upnToId.get(m.toLowerCase()) ?? nameToGroup.get(m.toLowerCase()) ?? m);
  }
  const subscriptions = new Map<string, GraphSubscription>();

  const directGroupsOf = (id: string) => [...groups.values()].filter((g) => g.members.has(id));
  const transitiveGroupsOf = (id: string) => {
    const out = new Map<string, GraphServer['groups'] extends Map<string, infer G> ? G : never>();
    const queue = [id];
    while (queue.length) {
      const cur = queue.shift()!;
      for (const g of directGroupsOf(cur)) if (!out.has(g.id)) (out.set(g.id, g), queue.push(g.id));
    }
    return [...out.values()];
  };
  const transitiveUsersOf = (gid: string): string[] => {
    const seen = new Set<string>();
    const out = new Set<string>();
    const walk = (g: string) => {
      if (seen.has(g)) return;
      seen.add(g);
      for (const m of groups.get(g)?.members ?? []) (users.has(m) ? out.add(m) : walk(m));
    };
    walk(gid);
    return [...out];
  };
  const findUser = (key: string) => users.get(key) ?? users.get(upnToId.get(key.toLowerCase()) ?? '');
  const groupView = (g: { id: string; displayName: string; mailNickname: string }) => ({ '@odata.type': '#microsoft.graph.group', id: g.id, displayName: g.displayName, mailNickname: g.mailNickname });
  const project = (o: Record<string, unknown>, select: string | null) => {
    if (!select) return o;
    const keep = select.split(',');
    return Object.fromEntries(Object.entries(o).filter(([k]) => keep.includes(k) || k.startsWith('@odata')));
  };

  function page(res: http.ServerResponse, u: URL, items: Record<string, unknown>[]): void {
    const skip = Number(u.searchParams.get('$skiptoken') ?? '0');
    const top = Math.min(Number(u.searchParams.get('$top') ?? '100'), s.pageSize);
    const filtered = items.filter(matcher(u.searchParams.get('$filter')));
    const slice = filtered.slice(skip, skip + top).map((o) => project(o, u.searchParams.get('$select')));
    const body: Record<string, unknown> = { '@odata.context': `${srv.url}/v1.0/$metadata`, value: slice };
    if (skip + top < filtered.length) {
      const next = new URL(u.toString());
      next.searchParams.set('$skiptoken', String(skip + top));
      body['@odata.nextLink'] = next.toString();
    }
    sendJson(res, 200, body);
  }

  async function validate(url: string): Promise<boolean> {
    const token = `Validation: Testing client application reachability ${randomUUID()}`;
    try {
      const r = await fetch(`${url}${url.includes('?') ? '&' : '?'}validationToken=${encodeURIComponent(token)}`, { method: 'POST', signal: AbortSignal.timeout(10_000) });
      return r.status === 200 && (r.headers.get('content-type') ?? '').startsWith('text/plain') && (await r.text()) === token;
    } catch {
      return false;
    }
  }

  async function graph(req: RecordedRequest, res: http.ServerResponse, u: URL, parts: string[]): Promise<void> {
    const auth = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''));
    const exp = auth ? tokens.get(auth[1]!) : undefined;
    if (!exp || exp < Date.now()) return graphError(res, 401, 'InvalidAuthenticationToken', 'Access token is empty, invalid or expired.');
    if (s.throttle.remaining > 0) {
      s.throttle.remaining--;
      return graphError(res, s.throttle.status, s.throttle.status === 429 ? 'TooManyRequests' : 'ServiceUnavailable', 'Too many requests', { 'retry-after': s.throttle.retryAfter });
    }
    if (s.deny === 'all' || (s.deny === 'writes' && req.method !== 'GET')) {
      return graphError(res, 403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
    }
    const [root, id, rel, cast, ref] = parts;
    const body = () => (req.body ? (JSON.parse(req.body) as Record<string, unknown>) : {});
    if (root === 'organization') return page(res, u, [{ id: tenantId, displayName: 'Provisio Test Tenant' }]);
    if (root === 'users') {
      if (!id) return page(res, u, [...users.values()]);
      const user = findUser(id);
      if (!user) return graphError(res, 404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
      const uid = String(user['id']);
      if (!rel && req.method === 'GET') return sendJson(res, 200, project(user, u.searchParams.get('$select')));
      if (!rel && req.method === 'PATCH') {
        for (const [k, v] of Object.entries(body())) user[k] = v && typeof v === 'object' && !Array.isArray(v) ? { ...((user[k] as object) ?? {}), ...v } : v;
        res.writeHead(204).end();
        return;
      }
      if (rel === 'manager') {
        const m = managers.get(uid);
        if (!m) return graphError(res, 404, 'Request_ResourceNotFound', `Resource 'manager' does not exist or one of its queried reference-property objects are not present.`);
        return sendJson(res, 200, project(users.get(m)!, u.searchParams.get('$select')));
      }
      if (rel === 'memberOf' && cast === 'microsoft.graph.group') return page(res, u, directGroupsOf(uid).map(groupView));
      if (rel === 'transitiveMemberOf' && cast === 'microsoft.graph.group') return page(res, u, transitiveGroupsOf(uid).map(groupView));
    }
    if (root === 'groups') {
      if (!id) return page(res, u, [...groups.values()].map(groupView));
      const g = groups.get(id);
      if (!g) return graphError(res, 404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
      if (!rel) return sendJson(res, 200, groupView(g));
      if (rel === 'members' && cast === 'microsoft.graph.user') return page(res, u, [...g.members].filter((m) => users.has(m)).map((m) => users.get(m)!));
      if (rel === 'transitiveMembers' && cast === 'microsoft.graph.user') return page(res, u, transitiveUsersOf(g.id).map((m) => users.get(m)!));
      if (rel === 'members' && cast === '$ref' && req.method === 'POST') {
        const ref = String(body()['@odata.id'] ?? '');
        const mid = ref.split('/').pop() ?? '';
        if (!users.has(mid)) return graphError(res, 404, 'Request_ResourceNotFound', `Resource '${mid}' does not exist.`);
        if (g.members.has(mid)) return graphError(res, 400, 'Request_BadRequest', 'One or more added object references already exist for the following modified properties: \'members\'.');
        g.members.add(mid);
        res.writeHead(204).end();
        return;
      }
      if (rel === 'members' && ref === '$ref' && req.method === 'DELETE') {
        if (!g.members.delete(cast!)) return graphError(res, 404, 'Request_ResourceNotFound', `Resource '${cast}' does not exist or one of its queried reference-property objects are not present.`);
        res.writeHead(204).end();
        return;
      }
    }
    if (root === 'subscriptions') {
      if (!id && req.method === 'POST') {
        const b = body();
        const exp = Date.parse(String(b['expirationDateTime']));
        if (Number.isNaN(exp) || exp > Date.now() + 41_760 * 60_000) return graphError(res, 400, 'InvalidRequest', 'Subscription expiration can only be 41760 minutes in the future.');
        if (!(await validate(String(b['notificationUrl'])))) return graphError(res, 400, 'InvalidRequest', 'Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.');
        const sub: GraphSubscription = {
          id: randomUUID(),
          resource: String(b['resource']),
          changeType: String(b['changeType']),
          notificationUrl: String(b['notificationUrl']),
          clientState: String(b['clientState'] ?? ''),
          expirationDateTime: new Date(exp).toISOString(),
        };
        subscriptions.set(sub.id, sub);
        const { clientState: _c, ...view } = sub;
        return sendJson(res, 201, view);
      }
      const sub = id ? subscriptions.get(id) : undefined;
      if (!sub) return graphError(res, 404, 'ResourceNotFound', 'The object was not found.');
      if (req.method === 'PATCH') {
        const exp = Date.parse(String(body()['expirationDateTime']));
        if (Number.isNaN(exp)) return graphError(res, 400, 'InvalidRequest', 'expirationDateTime is required');
        sub.expirationDateTime = new Date(exp).toISOString();
        const { clientState: _c, ...view } = sub;
        return sendJson(res, 200, view);
      }
      if (req.method === 'DELETE') {
        subscriptions.delete(sub.id);
        res.writeHead(204).end();
        return;
      }
      const { clientState: _c, ...view } = sub;
      return sendJson(res, 200, view);
    }
    graphError(res, 400, 'BadRequest', `Resource not found for the segment '${parts.join('/')}'.`);
  }

  srv = await startHttpsLoopbackServer(async (req, res) => {
    const u = new URL(req.url, srv.url);
    const parts = seg(u.pathname);
    if (parts[1] === 'oauth2' && parts[2] === 'v2.0' && parts[3] === 'token' && req.method === 'POST') {
      s.tokenRequests++;
      const form = new URLSearchParams(req.body);
      if (parts[0] !== tenantId) return sendJson(res, 400, { error: 'invalid_request', error_codes: [90002], error_description: `Tenant '${parts[0]}' not found.` });
      if (form.get('grant_type') !== 'client_credentials' || form.get('scope') !== `${srv.url}/.default`) {
        return sendJson(res, 400, { error: 'invalid_scope', error_codes: [1002012], error_description: 'The provided value for scope is not valid.' });
      }
      if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) {
        return sendJson(res, 401, { error: 'invalid_client', error_codes: [7000215], error_description: 'Invalid client secret provided.' });
      }
      const token = `eyJ0eXAiOiJKV1Qi.${randomUUID()}`;
      tokens.set(token, Date.now() + s.tokenLifetimeSeconds * 1000);
      return sendJson(res, 200, { token_type: 'Bearer', expires_in: s.tokenLifetimeSeconds, ext_expires_in: s.tokenLifetimeSeconds, access_token: token });
    }
    if (parts[0] === 'v1.0') return graph(req, res, u, parts.slice(1));
    sendJson(res, 404, { error: 'not found' });
  });

  const s: GraphServer = {
    url: srv.url,
    graphBaseUrl: `${srv.url}/v1.0`,
    caPem: srv.serverCa.certPem,
    tenantId,
    clientId,
    clientSecret,
    requests: srv.requests,
    users,
    groups,
    subscriptions,
    tokenRequests: 0,
    tokenLifetimeSeconds: 3600,
    throttle: { remaining: 0, retryAfter: '1', status: 429 },
    deny: null,
    pageSize: 2,
    dropSubscription: (id) => void subscriptions.delete(id),
    idOf: (upn) => upnToId.get(upn.toLowerCase())!,
    async notify(userId, changeType, opts = {}) {
      const out: { status: number; body: string }[] = [];
      for (const sub of subscriptions.values()) {
        const r = await fetch(sub.notificationUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            value: [
              {
                subscriptionId: sub.id,
                subscriptionExpirationDateTime: sub.expirationDateTime,
                changeType,
                resource: `Users/${userId}`,
                resourceData: { '@odata.type': '#Microsoft.Graph.User', '@odata.id': `Users/${userId}`, id: userId, organizationId: tenantId },
                clientState: opts.clientState ?? sub.clientState,
                tenantId,
              },
            ],
          }),
        });
        out.push({ status: r.status, body: await r.text() });
      }
      return out;
    },
    close: () => srv.close(),
  };
  return s;
}
