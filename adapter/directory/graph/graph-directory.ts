import { AsyncLocalStorage } from 'node:async_hooks';
import { Client, AuthenticationHandler, GraphError, type Middleware } from '@microsoft/microsoft-graph-client';
import type { Logger } from '../../log';
import type {
  AttributeValues,
  Directory,
  DirectoryGroup,
  DirectoryUser,
  GroupKey,
  Membership,
  MembershipChange,
  UserKey,
} from '../directory';
import { DirectoryError, DirectoryErrorCode } from '../errors';
import { CONSUMER_ATTRIBUTES, type ConsumerAttribute } from '../settings';
import { ClientCredentialsProvider } from './token';
import { graphTransport } from './transport';

/** Entra ID as the directory: an app registration with client credentials (Graph application permissions). */
export interface GraphDirectorySettings {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** Default https://login.microsoftonline.com. */
  authorityHost?: string;
  /** Default https://graph.microsoft.com/v1.0 (the last path segment is the API version). */
  graphBaseUrl?: string;
  /** PEM of CA(s) to trust for the authority and Graph instead of the system store. */
  caCertPem?: string;
  /** Graph user property per consumer attribute; a dotted path reaches into an object (employeeOrgData.costCenter). */
  consumerAttributes?: Partial<Record<ConsumerAttribute, string>>;
  /** Properties setAttributes may write (default: the consumer attribute properties). */
  writableAttributes?: string[];
  /** Retries of a 429/503 answer (default 3). */
  maxRetries?: number;
  /** Longest Retry-After waited for, in ms (default 30 000); a longer one fails as UNAVAILABLE at once. */
  maxRetryDelayMs?: number;
  /** Per request, in ms (default 15 000). */
  timeoutMs?: number;
}

export const DEFAULT_GRAPH_CONSUMER_ATTRIBUTES: Readonly<Record<ConsumerAttribute, string>> = Object.freeze({
  department: 'department',
  cost_center: 'employeeOrgData.costCenter',
  company: 'companyName',
  employee_id: 'employeeId',
  title: 'jobTitle',
});

/** Properties no runbook may write through setAttributes: identity, sign-in and the account switch. */
const PROTECTED = new Set(['id', 'userprincipalname', 'mail', 'mailnickname', 'accountenabled', 'passwordprofile', 'identities', 'onpremisesimmutableid', 'usertype']);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PROPERTY_PATH = /^[A-Za-z][A-Za-z0-9_]{0,119}(\.[A-Za-z][A-Za-z0-9_]{0,119})?$/;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

interface GraphUser {
  id: string;
  userPrincipalName?: string | null;
  mail?: string | null;
  mailNickname?: string | null;
  displayName?: string | null;
  accountEnabled?: boolean | null;
  [k: string]: unknown;
}
interface GraphGroup {
  id: string;
  displayName?: string | null;
  mailNickname?: string | null;
}
interface Page<T> {
  value: T[];
  '@odata.nextLink'?: string;
}

/** A Graph directory with its token provider exposed (token fetch count, for tests and the bench). */
export interface GraphDirectory extends Directory {
  readonly tokens: ClientCredentialsProvider;
  /** The Graph client itself, already authenticated (subscriptions go through it too). */
  readonly client: Client;
}

function config(message: string): DirectoryError {
  return new DirectoryError(DirectoryErrorCode.CONFIG, message);
}
function invalid(message: string, key?: { kind: string; value: string }): DirectoryError {
  return new DirectoryError(DirectoryErrorCode.INVALID_INPUT, message, key ? { key } : {});
}
const odataQuote = (v: string) => `'${v.replace(/'/g, "''")}'`;

/**
 * Graph's answer to a DirectoryError: the Graph code (Authorization_RequestDenied, Request_ResourceNotFound ...)
 * and HTTP status kept in details; the message names what was asked, never a token or secret.
 */
export function graphToDirectoryError(e: unknown, op: string): DirectoryError {
  if (e instanceof DirectoryError) return e;
  if (e instanceof GraphError) {
    const details = { httpStatus: e.statusCode, ...(e.code ? { graphCode: e.code } : {}) };
    const what = `${op}: Graph answered ${e.statusCode}${e.code ? ` ${e.code}` : ''}`;
    if (e.statusCode === 403) {
      return new DirectoryError(DirectoryErrorCode.INSUFFICIENT_ACCESS, `${what} (the app registration lacks a Graph permission, e.g. User.Read.All, GroupMember.ReadWrite.All or User.EnableDisableAccount.All)`, details);
    }
    if (e.statusCode === 401) return new DirectoryError(DirectoryErrorCode.INVALID_CREDENTIALS, `${what} (the access token was refused)`, details);
    if (e.statusCode === 404) return new DirectoryError(DirectoryErrorCode.NOT_FOUND, what, details);
    if (e.statusCode === 429 || e.statusCode >= 500 || e.statusCode <= 0) return new DirectoryError(DirectoryErrorCode.UNAVAILABLE, `${what} (throttled or unavailable; retry later)`, details);
    return new DirectoryError(DirectoryErrorCode.REJECTED, `${what}: ${e.message}`.slice(0, 500), details);
  }
  return new DirectoryError(DirectoryErrorCode.UNAVAILABLE, `${op}: ${e instanceof Error ? e.message : String(e)}`, {}, { cause: e });
}

/**
 * The Directory over Microsoft Graph v1.0 (Entra ID), through `@microsoft/microsoft-graph-client`. A user's `dn` is
 * their object id, `sAMAccountName` their mailNickname; a group's `dn` is its object id, `sAMAccountName` its
 * mailNickname (or display name), `name` its display name. So the callers written for AD (entitlements naming
 * groups, quorum groups, runbook `directory` tasks keyed by dn) work unchanged on a cloud-only tenant.
 * @throws DirectoryError CONFIG synchronously for settings that cannot work.
 */
export function createGraphDirectory(s: GraphDirectorySettings, deps: { logger?: Logger } = {}): GraphDirectory {
  for (const [name, v] of [['tenant_id', s.tenantId], ['client_id', s.clientId], ['client_secret', s.clientSecret]] as const) {
    if (typeof v !== 'string' || v.trim() === '') throw config(`entra_id.${name} is not set`);
  }
  const authorityHost = s.authorityHost ?? 'https://login.microsoftonline.com';
  const base = new URL(s.graphBaseUrl ?? 'https://graph.microsoft.com/v1.0');
  if (base.protocol !== 'https:' || new URL(authorityHost).protocol !== 'https:') throw config('entra_id: authority_host and graph_base_url must be https URLs');
  const segments = base.pathname.split('/').filter(Boolean);
  const version = segments.pop() ?? 'v1.0';
  const origin = `${base.origin}${segments.length ? `/${segments.join('/')}` : ''}`;
  const consumer: Record<ConsumerAttribute, string> = { ...DEFAULT_GRAPH_CONSUMER_ATTRIBUTES, ...(s.consumerAttributes ?? {}) };
  for (const p of Object.values(consumer)) if (!PROPERTY_PATH.test(p)) throw config(`entra_id: "${p}" is not a Graph property name`);
  const writable = new Set((s.writableAttributes ?? Object.values(consumer)).map((a) => a.toLowerCase()));
  const httpsOpts = { caCertPem: s.caCertPem, timeoutMs: s.timeoutMs ?? 15_000 };
  const tokens = new ClientCredentialsProvider(
    { authorityHost, tenantId: s.tenantId, clientId: s.clientId, clientSecret: s.clientSecret, scope: `${base.origin}/.default` },
    httpsOpts,
  );
  // The Graph client wraps whatever a middleware throws in a GraphError of status -1 and drops the original; the
  // operation's own store keeps our DirectoryError (TLS, refused credentials ...) so its code survives.
  const failures = new AsyncLocalStorage<{ error?: DirectoryError }>();
  const keep = (e: unknown): never => {
    const store = failures.getStore();
    if (store && e instanceof DirectoryError) store.error = e;
    throw e;
  };
  const auth = new AuthenticationHandler({ getAccessToken: () => tokens.getAccessToken().catch(keep) });
  const inner: Middleware = graphTransport(httpsOpts, { maxRetries: s.maxRetries ?? 3, maxDelayMs: s.maxRetryDelayMs ?? 30_000 }, (status, delayMs) =>
    deps.logger?.info('graph: throttled, retrying as asked', { status, delayMs }),
  );
  const transport: Middleware = { execute: (context) => inner.execute(context).catch(keep) };
  auth.setNext(transport);
  const client = Client.initWithMiddleware({
    middleware: auth,
    baseUrl: origin,
    defaultVersion: version,
    customHosts: new Set([base.hostname]),
  });
  const topLevel = [...new Set(Object.values(consumer).map((p) => p.split('.')[0]!))];
  const userSelect = ['id', 'userPrincipalName', 'mail', 'mailNickname', 'displayName', 'accountEnabled', ...topLevel].join(',');

  async function timed<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    const store: { error?: DirectoryError } = {};
    try {
      const r = await failures.run(store, fn);
      deps.logger?.debug('directory operation', { op, backend: 'graph', ms: Date.now() - started, outcome: 'ok' });
      return r;
    } catch (e) {
      const err = e instanceof GraphError && store.error ? store.error : graphToDirectoryError(e, op);
      deps.logger?.debug('directory operation', { op, backend: 'graph', ms: Date.now() - started, outcome: err.code, graphCode: err.details.graphCode });
      throw err;
    }
  }

  const readPath = (u: GraphUser, path: string): string | null => {
    let v: unknown = u;
    for (const part of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
    if (Array.isArray(v)) v = v[0];
    return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : null;
  };

  function toUser(u: GraphUser): DirectoryUser {
    const attributes = {} as Record<ConsumerAttribute, string | null>;
    for (const c of CONSUMER_ATTRIBUTES) attributes[c] = readPath(u, consumer[c]);
    return {
      dn: u.id,
      sAMAccountName: u.mailNickname ?? u.userPrincipalName?.split('@')[0] ?? '',
      userPrincipalName: u.userPrincipalName ?? null,
      mail: u.mail ?? null,
      displayName: u.displayName ?? null,
      enabled: u.accountEnabled !== false,
      managerDn: null,
      attributes,
    };
  }
  const toGroup = (g: GraphGroup, direct: boolean): DirectoryGroup => ({
    dn: g.id,
    sAMAccountName: g.mailNickname ?? g.displayName ?? g.id,
    name: g.displayName ?? g.mailNickname ?? g.id,
    direct,
  });

  /** Every item of a collection, following @odata.nextLink (bounded: a runaway server cannot loop us forever). */
  async function all<T>(path: string, select?: string): Promise<T[]> {
    const out: T[] = [];
    let req = client.api(path).top(999);
    if (select) req = req.select(select);
    let page = (await req.get()) as Page<T>;
    for (let i = 0; ; i++) {
      out.push(...page.value);
      const next = page['@odata.nextLink'];
      if (!next) return out;
      if (i > 10_000) throw new DirectoryError(DirectoryErrorCode.UNAVAILABLE, `${path}: more than 10000 pages; giving up`);
      page = (await client.api(next).get()) as Page<T>;
    }
  }

  function keyValue(value: unknown, kind: string): { value: string; k: { kind: string; value: string } } {
    const v = typeof value === 'string' ? value.trim() : '';
    const k = { kind, value: v };
    if (!v) throw invalid(`${kind} must not be empty`, k);
    if (v.length > 1024) throw invalid(`${kind} is too long`, k);
    if (CONTROL_CHARS.test(v)) throw invalid(`${kind} contains control characters`, k);
    return { value: v, k };
  }

  async function lookupUser(key: UserKey): Promise<GraphUser> {
    const { value, k } = keyValue(key.value, key.by);
    const notFound = () => new DirectoryError(DirectoryErrorCode.NOT_FOUND, `no user with ${key.by} "${value}"`, { key: k });
    // An object id is looked up as one whatever key it came as, as groups are: a runbook that passes a found user's
    // `dn` on as `user` reaches the executor as a sAMAccountName (it is not DN-shaped), and AD names are never GUIDs.
    if (key.by === 'dn' || GUID.test(value) || (key.by === 'userPrincipalName' && !value.includes('/'))) {
      if (key.by === 'dn' && !GUID.test(value)) throw invalid(`"${value}" is not an Entra object id`, k);
      try {
        return (await client.api(`/users/${encodeURIComponent(value)}`).select(userSelect).get()) as GraphUser;
      } catch (e) {
        if (e instanceof GraphError && e.statusCode === 404) throw notFound();
        throw e;
      }
    }
    const property = { sAMAccountName: 'mailNickname', mail: 'mail', employeeId: consumer.employee_id, userPrincipalName: 'userPrincipalName' }[key.by];
    if (!property) throw invalid(`unknown lookup key ${String(key.by)}`);
    const page = (await client.api('/users').filter(`${property} eq ${odataQuote(value)}`).select(userSelect).top(2).get()) as Page<GraphUser>;
    if (page.value.length > 1) throw new DirectoryError(DirectoryErrorCode.AMBIGUOUS, `more than one user has ${key.by} "${value}"`, { key: k });
    const u = page.value[0];
    if (!u) throw notFound();
    return u;
  }

  async function lookupGroup(key: GroupKey): Promise<GraphGroup> {
    const { value, k } = keyValue(key.value, `group ${key.by}`);
    const notFound = () => new DirectoryError(DirectoryErrorCode.NOT_FOUND, `no group with ${key.by} "${value}"`, { key: k });
    if (GUID.test(value)) {
      try {
        return (await client.api(`/groups/${value}`).select('id,displayName,mailNickname').get()) as GraphGroup;
      } catch (e) {
        if (e instanceof GraphError && e.statusCode === 404) throw notFound();
        throw e;
      }
    }
    if (key.by === 'dn') throw invalid(`"${value}" is not an Entra object id`, k);
    const q = odataQuote(value);
    const page = (await client.api('/groups').filter(`mailNickname eq ${q} or displayName eq ${q}`).select('id,displayName,mailNickname').top(2).get()) as Page<GraphGroup>;
    if (page.value.length > 1) throw new DirectoryError(DirectoryErrorCode.AMBIGUOUS, `more than one group is named "${value}"`, { key: k });
    const g = page.value[0];
    if (!g) throw notFound();
    return g;
  }

  const directGroups = (userId: string) => all<GraphGroup>(`/users/${userId}/memberOf/microsoft.graph.group`, 'id,displayName,mailNickname');
  const transitiveGroups = (userId: string) => all<GraphGroup>(`/users/${userId}/transitiveMemberOf/microsoft.graph.group`, 'id,displayName,mailNickname');

  async function membership(userId: string, groupId: string, nested: boolean): Promise<Membership> {
    if ((await directGroups(userId)).some((g) => g.id === groupId)) return { member: true, direct: true };
    if (!nested) return { member: false, direct: false };
    return { member: (await transitiveGroups(userId)).some((g) => g.id === groupId), direct: false };
  }

  async function changeMembership(group: GroupKey, user: UserKey, op: 'add' | 'remove'): Promise<MembershipChange> {
    const g = await lookupGroup(group);
    const u = await lookupUser(user);
    const base = { groupDn: g.id, memberDn: u.id };
    const isMember = (await membership(u.id, g.id, false)).member;
    if (op === 'add' && isMember) return { ...base, changed: false, reason: 'already-member' };
    if (op === 'remove' && !isMember) return { ...base, changed: false, reason: 'not-a-member' };
    try {
      if (op === 'add') await client.api(`/groups/${g.id}/members/$ref`).post({ '@odata.id': `${base0()}/directoryObjects/${u.id}` });
      else await client.api(`/groups/${g.id}/members/${u.id}/$ref`).delete();
    } catch (e) {
      // A concurrent change won the race: Graph answers 400 "added object references already exist" to a second
      // add, and 404 to removing a non-member.
      if (op === 'add' && e instanceof GraphError && e.statusCode === 400 && /already exist/i.test(e.message)) return { ...base, changed: false, reason: 'already-member' };
      if (op === 'remove' && e instanceof GraphError && e.statusCode === 404) return { ...base, changed: false, reason: 'not-a-member' };
      throw e;
    }
    return { ...base, changed: true, reason: op === 'add' ? 'added' : 'removed' };
  }
  const base0 = () => `${origin}/${version}`;

  function patchBody(values: AttributeValues, current: GraphUser): { body: Record<string, unknown>; changed: string[] } {
    if (values === null || typeof values !== 'object' || Array.isArray(values)) throw invalid('attributes must be an object');
    const entries = Object.entries(values);
    if (entries.length === 0) throw invalid('no attributes to set');
    const body: Record<string, unknown> = {};
    const changed: string[] = [];
    for (const [name, v] of entries) {
      if (!PROPERTY_PATH.test(name)) throw invalid(`"${name}" is not a Graph property name`, { kind: 'attribute', value: name });
      const lower = name.toLowerCase();
      if (PROTECTED.has(lower.split('.')[0]!)) throw new DirectoryError(DirectoryErrorCode.ATTRIBUTE_NOT_ALLOWED, `attribute ${name} is protected`, { attribute: name });
      if (!writable.has(lower)) throw new DirectoryError(DirectoryErrorCode.ATTRIBUTE_NOT_ALLOWED, `attribute ${name} is not on the writable allow-list`, { attribute: name });
      const list = v === null ? [] : Array.isArray(v) ? v : [v];
      if (list.length > 1) throw invalid(`attribute ${name} takes one value in Entra ID`, { kind: 'attribute', value: name });
      const next = list[0] ?? null;
      if (next !== null && (typeof next !== 'string' || next === '' || next.length > 4096 || next.includes('\u0000'))) throw invalid(`bad value for ${name}`, { kind: 'attribute', value: name });
      if (readPath(current, name) === next) continue;
      const [head, tail] = name.split('.') as [string, string | undefined];
      if (tail) body[head] = { ...((body[head] as Record<string, unknown>) ?? {}), [tail]: next };
      else body[head] = next;
      changed.push(name);
    }
    return { body, changed };
  }

  const directory: GraphDirectory = {
    tokens,
    client,
    findUser: (key) => timed('find user', async () => toUser(await lookupUser(key))),
    findManager: (key) =>
      timed('find manager', async () => {
        const u = await lookupUser(key);
        try {
          return toUser((await client.api(`/users/${u.id}/manager`).select(userSelect).get()) as GraphUser);
        } catch (e) {
          // Graph answers 404 Request_ResourceNotFound for "no manager set".
          if (e instanceof GraphError && e.statusCode === 404) return null;
          throw e;
        }
      }),
    listGroups: (key, opts = {}) =>
      timed('list groups', async () => {
        const u = await lookupUser(key);
        const direct = await directGroups(u.id);
        const directIds = new Set(direct.map((g) => g.id));
        const groups = opts.nested === false ? direct : await transitiveGroups(u.id);
        return groups.map((g) => toGroup(g, directIds.has(g.id))).sort((a, b) => a.dn.localeCompare(b.dn));
      }),
    listGroupMembers: (group, opts = {}) =>
      timed('list group members', async () => {
        const g = await lookupGroup(group);
        const path = opts.nested === false ? `/groups/${g.id}/members/microsoft.graph.user` : `/groups/${g.id}/transitiveMembers/microsoft.graph.user`;
        const users = await all<GraphUser>(path, userSelect);
        return users.map(toUser).sort((a, b) => a.dn.localeCompare(b.dn));
      }),
    checkMembership: (user, group, opts = {}) =>
      timed('check membership', async () => {
        const g = await lookupGroup(group);
        const u = await lookupUser(user);
        return membership(u.id, g.id, opts.nested !== false);
      }),
    addGroupMember: (group, user) => timed('add group member', () => changeMembership(group, user, 'add')),
    removeGroupMember: (group, user) => timed('remove group member', () => changeMembership(group, user, 'remove')),
    setAccountEnabled: (user, enabled) =>
      timed('set account enabled', async () => {
        if (typeof enabled !== 'boolean') throw invalid('enabled must be true or false');
        const u = await lookupUser(user);
        if ((u.accountEnabled !== false) === enabled) return { changed: false, enabled, dn: u.id };
        await client.api(`/users/${u.id}`).patch({ accountEnabled: enabled });
        return { changed: true, enabled, dn: u.id };
      }),
    setAttributes: (user, values) =>
      timed('set attributes', async () => {
        const u = await lookupUser(user);
        const { body, changed } = patchBody(values, u);
        if (changed.length > 0) await client.api(`/users/${u.id}`).patch(body);
        return { dn: u.id, changed };
      }),
    checkEligibleRequestor: (user, restrictedGroup) =>
      timed('check eligible requestor', async () => {
        const g = await lookupGroup(restrictedGroup);
        const u = await lookupUser(user);
        const m = await membership(u.id, g.id, true);
        const b = { userDn: u.id, groupDn: g.id };
        if (!m.member) return { ...b, eligible: false, reason: 'not-a-member' };
        if (u.accountEnabled === false) return { ...b, eligible: false, reason: 'account-disabled' };
        return { ...b, eligible: true, reason: m.direct ? 'direct-member' : 'nested-member' };
      }),
    testConnection: () =>
      timed('test connection', async () => {
        // A fresh token proves the credentials; /organization proves the Graph permission to read the tenant.
        tokens.invalidate();
        const page = (await client.api('/organization').select('id,displayName').get()) as Page<{ id: string; displayName?: string }>;
        return { defaultNamingContext: page.value[0]?.displayName ?? page.value[0]?.id ?? null };
      }),
    close: async () => undefined,
  };
  return directory;
}
