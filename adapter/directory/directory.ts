import { Attribute, Change, type Client, type Entry } from 'ldapts';
import type { Logger } from '../log';
import { DirectoryError, DirectoryErrorCode, toDirectoryError } from './errors';
import { escapeFilterValue, isAttributeName, isDnWithin, normalizeDn, parseDn } from './ldap-text';
import { BoundClientPool, openBoundClient } from './pool';
import { createSaslBinder, type SaslDeps } from './sasl/index';
import {
  CONSUMER_ATTRIBUTES,
  directorySecrets,
  PROTECTED_ATTRIBUTES,
  resolveDirectorySettings,
  type ConsumerAttribute,
  type DirectorySettings,
  type ResolvedDirectorySettings,
} from './settings';

/** What a user can be looked up by. `employeeId` uses the configured employee-id attribute. */
export type UserKeyKind = 'sAMAccountName' | 'userPrincipalName' | 'mail' | 'employeeId' | 'dn';
export interface UserKey {
  by: UserKeyKind;
  value: string;
}

export type GroupKeyKind = 'sAMAccountName' | 'dn';
export interface GroupKey {
  by: GroupKeyKind;
  value: string;
}

export interface DirectoryUser {
  dn: string;
  sAMAccountName: string;
  userPrincipalName: string | null;
  mail: string | null;
  displayName: string | null;
  /** False when userAccountControl has ACCOUNTDISABLE (0x2). */
  enabled: boolean;
  managerDn: string | null;
  /** The consumer attributes under their product names; the first value of a multi-valued attribute. */
  attributes: Record<ConsumerAttribute, string | null>;
}

export interface DirectoryGroup {
  dn: string;
  sAMAccountName: string;
  name: string;
  /** True when the user is in `member` of this group itself, false when only through another group. */
  direct: boolean;
}

export interface MembershipChange {
  /** False when nothing had to change: already a member (add) or not a direct member (remove). */
  changed: boolean;
  reason: 'added' | 'removed' | 'already-member' | 'not-a-member';
  groupDn: string;
  memberDn: string;
}

export interface EnabledChange {
  changed: boolean;
  enabled: boolean;
  dn: string;
}

export interface AttributeChange {
  dn: string;
  /** The attributes whose values actually changed (unchanged ones are not written). */
  changed: string[];
}

export interface Membership {
  member: boolean;
  /** True when the user is a direct member; false when only nested (or not a member). */
  direct: boolean;
}

export interface Eligibility {
  eligible: boolean;
  reason: 'direct-member' | 'nested-member' | 'not-a-member' | 'account-disabled';
  userDn: string;
  groupDn: string;
}

/** Values for setAttributes: a string or strings to set, null (or []) to clear. */
export type AttributeValues = Record<string, string | string[] | null>;

/** The directory operations the rest of the product uses (approval routing, entitlements, runbook steps). */
export interface Directory {
  /**
   * @throws DirectoryError NOT_FOUND (details.key says what was looked for), AMBIGUOUS, INVALID_INPUT
   *   (empty value, DN outside the base DN), plus the connection errors.
   */
  findUser(key: UserKey): Promise<DirectoryUser>;
  /** The user's manager, or null when `manager` is empty. @throws NOT_FOUND when the user or the manager entry is missing. */
  findManager(key: UserKey): Promise<DirectoryUser | null>;
  /** Groups under the base DN the user is in; nested via AD's LDAP_MATCHING_RULE_IN_CHAIN. The primary group (Domain Users) is not listed. */
  listGroups(key: UserKey, opts?: { nested?: boolean }): Promise<DirectoryGroup[]>;
  /**
   * The users in the group, directly or (with nested, the default) through other groups, disabled ones included
   * (callers decide what a disabled member means); ordered by DN. @throws NOT_FOUND for an unknown group.
   */
  listGroupMembers(group: GroupKey, opts?: { nested?: boolean }): Promise<DirectoryUser[]>;
  /** Whether the user is in the group, directly or (with nested, the default) through other groups. */
  checkMembership(user: UserKey, group: GroupKey, opts?: { nested?: boolean }): Promise<Membership>;
  /** Adds the user to the group's `member`; already a direct member is `changed: false`, not an error. */
  addGroupMember(group: GroupKey, user: UserKey): Promise<MembershipChange>;
  /** Removes the user from the group's `member`; not a direct member is `changed: false`, not an error. */
  removeGroupMember(group: GroupKey, user: UserKey): Promise<MembershipChange>;
  /** Sets or clears ACCOUNTDISABLE in userAccountControl, leaving the other flags as they are. */
  setAccountEnabled(user: UserKey, enabled: boolean): Promise<EnabledChange>;
  /** @throws ATTRIBUTE_NOT_ALLOWED for protected attributes or ones not on the allow-list; INVALID_INPUT for bad values. */
  setAttributes(user: UserKey, values: AttributeValues): Promise<AttributeChange>;
  /** An enabled account that is a member (direct or nested) of the restricted group. */
  checkEligibleRequestor(user: UserKey, restrictedGroup: GroupKey): Promise<Eligibility>;
  /** Connects and binds on a fresh connection (a "test connection" button); returns the server's naming context. */
  testConnection(): Promise<{ defaultNamingContext: string | null }>;
  close(): Promise<void>;
}

export interface DirectoryDeps {
  logger?: Logger;
  /** Kerberos binds: tuning of the ticket store (kinit timeout, test hooks); never secrets. */
  kerberos?: SaslDeps['kerberos'];
}

const IN_CHAIN = '1.2.840.113556.1.4.1941';
const ACCOUNTDISABLE = 0x2;
const USER_CLASS = '(objectCategory=person)(objectClass=user)';
const MAX_VALUE_LENGTH = 4096;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function str(entry: Entry, name: string): string | null {
  const lower = name.toLowerCase();
  // Servers return attribute names in their schema's spelling; match them case-insensitively.
  const key = Object.keys(entry).find((k) => k.toLowerCase() === lower);
  if (!key) return null;
  const v = entry[key];
  const first = Array.isArray(v) ? v[0] : v;
  if (first === undefined) return null;
  return Buffer.isBuffer(first) ? first.toString('utf8') : first;
}

function invalid(message: string, key?: { kind: string; value: string }): DirectoryError {
  return new DirectoryError(DirectoryErrorCode.INVALID_INPUT, message, key ? { key } : {});
}

/**
 * The directory adapter over ldapts. Settings are validated once here (CONFIG errors are thrown
 * synchronously); connections are opened lazily and pooled.
 */
export function createDirectory(input: DirectorySettings, deps: DirectoryDeps = {}): Directory {
  const s: ResolvedDirectorySettings = resolveDirectorySettings(input);
  const pool = new BoundClientPool(s, deps.kerberos ? { kerberos: deps.kerberos } : {});
  const sasl = s.authType === 'simple' ? undefined : createSaslBinder(s, deps.kerberos ? { kerberos: deps.kerberos } : {});
  const consumerNames = CONSUMER_ATTRIBUTES.map((c) => s.consumerAttributes[c]);
  const userAttributes = ['sAMAccountName', 'userPrincipalName', 'mail', 'displayName', 'userAccountControl', 'manager', ...consumerNames];

  async function timed<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      const r = await fn();
      deps.logger?.debug('directory operation', { op, ms: Date.now() - started, outcome: 'ok' });
      return r;
    } catch (e) {
      const err = toDirectoryError(e, op, directorySecrets(s));
      deps.logger?.debug('directory operation', { op, ms: Date.now() - started, outcome: err.code });
      throw err;
    }
  }

  function toUser(e: Entry): DirectoryUser {
    const uac = Number(str(e, 'userAccountControl') ?? '0');
    const attributes = {} as Record<ConsumerAttribute, string | null>;
    for (const c of CONSUMER_ATTRIBUTES) attributes[c] = str(e, s.consumerAttributes[c]);
    return {
      dn: e.dn,
      sAMAccountName: str(e, 'sAMAccountName') ?? '',
      userPrincipalName: str(e, 'userPrincipalName'),
      mail: str(e, 'mail'),
      displayName: str(e, 'displayName'),
      enabled: (uac & ACCOUNTDISABLE) === 0,
      managerDn: str(e, 'manager'),
      attributes,
    };
  }

  function checkKeyValue(value: string, what: string, k: { kind: string; value: string }): void {
    if (!value) throw invalid(`${what} must not be empty`, k);
    if (value.length > 1024) throw invalid(`${what} is too long`, k);
    // Escaped or not, Samba ends an assertion value at NUL: "jdoe\0x" would find jdoe. No real key has
    // control characters, so refuse them all.
    if (CONTROL_CHARS.test(value)) throw invalid(`${what} contains control characters`, k);
  }

  function checkDnInput(dn: string, kind: string): void {
    if (!parseDn(dn)) throw invalid(`${kind} "${dn}" is not a valid DN`, { kind, value: dn });
    if (!isDnWithin(dn, s.baseDn)) throw invalid(`${kind} "${dn}" is outside the base DN ${s.baseDn}`, { kind, value: dn });
  }

  /** Reads one entry by DN; null when it does not exist or does not match `filter`. */
  async function readEntry(c: Client, dn: string, filter: string, attributes: string[]): Promise<Entry | null> {
    try {
      const r = await c.search(dn, { scope: 'base', filter, attributes });
      return r.searchEntries[0] ?? null;
    } catch (e) {
      if ((e as { code?: unknown }).code === 32) return null;
      throw e;
    }
  }

  async function lookupUser(c: Client, key: UserKey, attributes: string[] = userAttributes): Promise<Entry> {
    const value = typeof key.value === 'string' ? key.value.trim() : '';
    const k = { kind: key.by, value };
    checkKeyValue(value, key.by, k);
    const notFound = () => new DirectoryError(DirectoryErrorCode.NOT_FOUND, `no user with ${key.by} "${value}"`, { key: k });
    if (key.by === 'dn') {
      checkDnInput(value, 'dn');
      const e = await readEntry(c, value, `(&${USER_CLASS})`, attributes);
      if (!e) throw notFound();
      return e;
    }
    const attr = {
      sAMAccountName: 'sAMAccountName',
      userPrincipalName: 'userPrincipalName',
      mail: 'mail',
      employeeId: s.consumerAttributes.employee_id,
    }[key.by];
    if (!attr) throw invalid(`unknown lookup key ${String(key.by)}`);
    let entries: Entry[];
    try {
      // sizeLimit 2: enough to tell "unique" from "ambiguous" without reading a whole directory.
      ({ searchEntries: entries } = await c.search(s.baseDn, {
        scope: 'sub',
        filter: `(&${USER_CLASS}(${attr}=${escapeFilterValue(value)}))`,
        attributes,
        sizeLimit: 2,
      }));
    } catch (e) {
      if ((e as { code?: unknown }).code === 4) {
        throw new DirectoryError(DirectoryErrorCode.AMBIGUOUS, `more than one user has ${key.by} "${value}"`, { key: k });
      }
      throw e;
    }
    if (entries.length > 1) throw new DirectoryError(DirectoryErrorCode.AMBIGUOUS, `more than one user has ${key.by} "${value}"`, { key: k });
    const entry = entries[0];
    if (!entry) throw notFound();
    return entry;
  }

  async function lookupGroup(c: Client, key: GroupKey): Promise<Entry> {
    const value = typeof key.value === 'string' ? key.value.trim() : '';
    const k = { kind: `group ${key.by}`, value };
    checkKeyValue(value, `group ${key.by}`, k);
    const notFound = () => new DirectoryError(DirectoryErrorCode.NOT_FOUND, `no group with ${key.by} "${value}"`, { key: k });
    if (key.by === 'dn') {
      checkDnInput(value, 'group dn');
      const e = await readEntry(c, value, '(objectClass=group)', ['sAMAccountName', 'cn']);
      if (!e) throw notFound();
      return e;
    }
    if (key.by !== 'sAMAccountName') throw invalid(`unknown group key ${String(key.by)}`);
    const { searchEntries } = await c.search(s.baseDn, {
      scope: 'sub',
      filter: `(&(objectClass=group)(sAMAccountName=${escapeFilterValue(value)}))`,
      attributes: ['sAMAccountName', 'cn'],
      sizeLimit: 2,
    });
    const e = searchEntries[0];
    if (!e) throw notFound();
    return e;
  }

  /** Whether `userDn` is in `groupDn`: directly (`member`), or through nested groups (in-chain rule). */
  async function memberOf(c: Client, userDn: string, groupDn: string, nested: boolean): Promise<Membership> {
    const g = escapeFilterValue(groupDn);
    const direct = await readEntry(c, userDn, `(memberOf=${g})`, ['1.1']);
    if (direct) return { member: true, direct: true };
    if (!nested) return { member: false, direct: false };
    const chained = await readEntry(c, userDn, `(memberOf:${IN_CHAIN}:=${g})`, ['1.1']);
    return { member: chained !== null, direct: false };
  }

  async function changeMembership(group: GroupKey, user: UserKey, op: 'add' | 'delete'): Promise<MembershipChange> {
    return pool.use(`${op === 'add' ? 'add' : 'remove'} group member`, async (c) => {
      const g = await lookupGroup(c, group);
      const u = await lookupUser(c, user, ['1.1']);
      const isMember = (await readEntry(c, g.dn, `(member=${escapeFilterValue(u.dn)})`, ['1.1'])) !== null;
      const base = { groupDn: g.dn, memberDn: u.dn };
      if (op === 'add' && isMember) return { ...base, changed: false, reason: 'already-member' };
      if (op === 'delete' && !isMember) return { ...base, changed: false, reason: 'not-a-member' };
      try {
        await c.modify(g.dn, new Change({ operation: op, modification: new Attribute({ type: 'member', values: [u.dn] }) }));
      } catch (e) {
        // A concurrent change won the race: AD answers "already exists" (68) / "value exists" (20) to a
        // second add, and "unwilling" (53) / "no such attribute" (16) to removing a non-member.
        const code = (e as { code?: unknown }).code;
        if (op === 'add' && (code === 68 || code === 20)) return { ...base, changed: false, reason: 'already-member' };
        if (op === 'delete' && (code === 53 || code === 16)) return { ...base, changed: false, reason: 'not-a-member' };
        throw e;
      }
      return { ...base, changed: true, reason: op === 'add' ? 'added' : 'removed' };
    });
  }

  function checkAttributeValues(values: AttributeValues): [string, string[]][] {
    if (values === null || typeof values !== 'object' || Array.isArray(values)) throw invalid('attributes must be an object');
    const entries = Object.entries(values);
    if (entries.length === 0) throw invalid('no attributes to set');
    return entries.map(([name, v]) => {
      if (!isAttributeName(name)) throw invalid(`"${name}" is not an attribute name`, { kind: 'attribute', value: name });
      const lower = name.toLowerCase();
      if (PROTECTED_ATTRIBUTES.has(lower)) {
        throw new DirectoryError(DirectoryErrorCode.ATTRIBUTE_NOT_ALLOWED, `attribute ${name} is protected`, { attribute: name });
      }
      if (!s.writableAttributes.has(lower)) {
        throw new DirectoryError(DirectoryErrorCode.ATTRIBUTE_NOT_ALLOWED, `attribute ${name} is not on the writable allow-list`, { attribute: name });
      }
      const list = v === null ? [] : Array.isArray(v) ? v : [v];
      for (const x of list) {
        if (typeof x !== 'string' || x === '' || x.length > MAX_VALUE_LENGTH || x.includes('\u0000')) {
          throw invalid(`values of ${name} must be non-empty strings of at most ${MAX_VALUE_LENGTH} characters`, { kind: 'attribute', value: name });
        }
        if (lower === 'manager') checkDnInput(x, 'manager');
      }
      return [name, list];
    });
  }

  return {
    findUser: (key) => timed('find user', () => pool.use('find user', async (c) => toUser(await lookupUser(c, key)))),

    findManager: (key) =>
      timed('find manager', () =>
        pool.use('find manager', async (c) => {
          const user = toUser(await lookupUser(c, key));
          if (!user.managerDn) return null;
          // The DN comes from the directory itself, so it is read even when it lies outside the base DN.
          const m = await readEntry(c, user.managerDn, `(&${USER_CLASS})`, userAttributes);
          if (!m) {
            throw new DirectoryError(DirectoryErrorCode.NOT_FOUND, `manager ${user.managerDn} of ${user.dn} does not exist`, {
              key: { kind: 'dn', value: user.managerDn },
            });
          }
          return toUser(m);
        }),
      ),

    listGroups: (key, opts = {}) =>
      timed('list groups', () =>
        pool.use('list groups', async (c) => {
          const u = await lookupUser(c, key, ['1.1']);
          const dn = escapeFilterValue(u.dn);
          const search = (filter: string) =>
            c.search(s.baseDn, { scope: 'sub', filter, attributes: ['sAMAccountName', 'cn'], paged: { pageSize: 500 } });
          const [direct, chained] = await Promise.all([
            search(`(&(objectClass=group)(member=${dn}))`),
            opts.nested === false ? Promise.resolve(undefined) : search(`(&(objectClass=group)(member:${IN_CHAIN}:=${dn}))`),
          ]);
          const directDns = new Set(direct.searchEntries.map((e) => normalizeDn(e.dn)));
          const entries = chained?.searchEntries ?? direct.searchEntries;
          return entries
            .map((e) => ({ dn: e.dn, sAMAccountName: str(e, 'sAMAccountName') ?? '', name: str(e, 'cn') ?? '', direct: directDns.has(normalizeDn(e.dn)) }))
            .sort((a, b) => a.name.localeCompare(b.name));
        }),
      ),

    listGroupMembers: (group, opts = {}) =>
      timed('list group members', () =>
        pool.use('list group members', async (c) => {
          const g = escapeFilterValue((await lookupGroup(c, group)).dn);
          // The in-chain rule on memberOf walks nested groups on the server, in one search (as listGroups does the other way).
          const filter = opts.nested === false ? `(&${USER_CLASS}(memberOf=${g}))` : `(&${USER_CLASS}(memberOf:${IN_CHAIN}:=${g}))`;
          const { searchEntries } = await c.search(s.baseDn, { scope: 'sub', filter, attributes: userAttributes, paged: { pageSize: 500 } });
          return searchEntries.map(toUser).sort((a, b) => a.dn.localeCompare(b.dn));
        }),
      ),

    checkMembership: (user, group, opts = {}) =>
      timed('check membership', () =>
        pool.use('check membership', async (c) => {
          const g = await lookupGroup(c, group);
          const u = await lookupUser(c, user, ['1.1']);
          return memberOf(c, u.dn, g.dn, opts.nested !== false);
        }),
      ),

    addGroupMember: (group, user) => timed('add group member', () => changeMembership(group, user, 'add')),
    removeGroupMember: (group, user) => timed('remove group member', () => changeMembership(group, user, 'delete')),

    setAccountEnabled: (user, enabled) =>
      timed('set account enabled', () =>
        pool.use('set account enabled', async (c) => {
          for (let attempt = 0; ; attempt++) {
            const e = await lookupUser(c, user, ['userAccountControl']);
            const raw = str(e, 'userAccountControl');
            const uac = Number(raw ?? '512');
            const next = enabled ? uac & ~ACCOUNTDISABLE : uac | ACCOUNTDISABLE;
            if (next === uac) return { changed: false, enabled, dn: e.dn };
            try {
              // Delete-old-value + add-new-value in one modify is a compare-and-swap: if another writer changed
              // the flags since we read them, the delete fails (16) and we re-read instead of clobbering.
              await c.modify(e.dn, [
                new Change({ operation: 'delete', modification: new Attribute({ type: 'userAccountControl', values: [String(uac)] }) }),
                new Change({ operation: 'add', modification: new Attribute({ type: 'userAccountControl', values: [String(next)] }) }),
              ]);
              return { changed: true, enabled, dn: e.dn };
            } catch (err) {
              if ((err as { code?: unknown }).code === 16 && attempt < 2) continue;
              throw err;
            }
          }
        }),
      ),

    setAttributes: (user, values) =>
      timed('set attributes', () => {
        const wanted = checkAttributeValues(values);
        return pool.use('set attributes', async (c) => {
          const e = await lookupUser(c, user, wanted.map(([n]) => n));
          const changes: Change[] = [];
          const changed: string[] = [];
          for (const [name, list] of wanted) {
            const lower = name.toLowerCase();
            const key = Object.keys(e).find((k) => k.toLowerCase() === lower);
            const cur = key === undefined ? [] : ([] as unknown[]).concat(e[key]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
            const same = cur.length === list.length && (lower === 'manager'
              ? cur.every((x, i) => normalizeDn(x) === normalizeDn(list[i] as string))
              : cur.every((x, i) => x === list[i]));
            if (same) continue;
            changed.push(name);
            changes.push(new Change({ operation: 'replace', modification: new Attribute({ type: name, values: list }) }));
          }
          if (changes.length > 0) await c.modify(e.dn, changes);
          return { dn: e.dn, changed };
        });
      }),

    checkEligibleRequestor: (user, restrictedGroup) =>
      timed('check eligible requestor', () =>
        pool.use('check eligible requestor', async (c) => {
          const g = await lookupGroup(c, restrictedGroup);
          const u = toUser(await lookupUser(c, user));
          const m = await memberOf(c, u.dn, g.dn, true);
          const base = { userDn: u.dn, groupDn: g.dn };
          if (!m.member) return { ...base, eligible: false, reason: 'not-a-member' };
          if (!u.enabled) return { ...base, eligible: false, reason: 'account-disabled' };
          return { ...base, eligible: true, reason: m.direct ? 'direct-member' : 'nested-member' };
        }),
      ),

    testConnection: () =>
      timed('test connection', async () => {
        const c = await openBoundClient(s, sasl);
        try {
          const r = await c.search('', { scope: 'base', attributes: ['defaultNamingContext'] });
          const e = r.searchEntries[0];
          return { defaultNamingContext: e ? str(e, 'defaultNamingContext') : null };
        } catch (e) {
          throw toDirectoryError(e, 'test connection', directorySecrets(s));
        } finally {
          await c.unbind().catch(() => undefined);
        }
      }),

    close: () => pool.close(),
  };
}
