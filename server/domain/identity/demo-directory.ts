/**
 * The demo directory: the `Directory` interface (adapter/directory) in memory over a small fixture
 * (demo-directory-fixture.ts), so DEMO=1 works without an Active Directory or Samba — runbook directory steps add to
 * and remove from groups, approvals go to the requester's manager, orders snapshot department and cost center, and a
 * disabled account is refused as a requester. It answers as the LDAP adapter does: the same lookups (by
 * sAMAccountName, userPrincipalName, mail, employee id or DN, case-insensitively), NOT_FOUND/INVALID_INPUT errors,
 * `changed: false` for a membership that is already as asked, nested groups followed.
 *
 * State is per instance, in memory: group changes made by runbooks are visible to every later lookup of the process
 * (listGroups, checkMembership, the directory task `findUser`) and start again from the fixture at the next start.
 * That is the right life span for a demo's stand-in for an external system (the database is not its store, so no
 * table or migration exists for it); a real deployment configures `active_directory` and this is never used.
 */
import {
  DirectoryError,
  DirectoryErrorCode,
  normalizeDn,
  type AttributeChange,
  type AttributeValues,
  type ConsumerAttribute,
  type Directory,
  type DirectoryGroup,
  type DirectoryUser,
  type EnabledChange,
  type Eligibility,
  type GroupKey,
  type Membership,
  type MembershipChange,
  type UserKey,
} from '../../../adapter';
import { DEMO_DIRECTORY_BASE_DN, DEMO_GROUPS, DEMO_GROUPS_OU, DEMO_PEOPLE, DEMO_USERS_OU, type DemoGroup, type DemoPerson } from './demo-directory-fixture';

/** Attributes a runbook may set here (the consumer attributes); others are refused as by the adapter's allow-list. */
const WRITABLE: readonly ConsumerAttribute[] = ['department', 'cost_center', 'company', 'employee_id', 'title'];

interface PersonEntry extends Omit<DemoPerson, 'manager'> {
  dn: string;
  managerDn: string | null;
}

interface GroupEntry {
  dn: string;
  sAMAccountName: string;
  /** Member DNs, normalised. */
  members: Set<string>;
}

const userDn = (p: Pick<DemoPerson, 'displayName'>) => `CN=${p.displayName},${DEMO_USERS_OU}`;
const groupDn = (g: Pick<DemoGroup, 'sAMAccountName'>) => `CN=${g.sAMAccountName},${DEMO_GROUPS_OU}`;
const norm = (dn: string) => normalizeDn(dn) ?? dn.toLowerCase();

function invalid(message: string, key?: { kind: string; value: string }): DirectoryError {
  return new DirectoryError(DirectoryErrorCode.INVALID_INPUT, message, key ? { key } : {});
}

export interface DemoDirectoryOptions {
  people?: readonly DemoPerson[];
  groups?: readonly DemoGroup[];
}

/**
 * A fresh demo directory over the fixture (or the given people and groups).
 * @throws Error when the fixture names a manager or member that does not exist (a broken fixture, not bad input).
 */
export function createDemoDirectory(opts: DemoDirectoryOptions = {}): Directory {
  const peopleIn = opts.people ?? DEMO_PEOPLE;
  const groupsIn = opts.groups ?? DEMO_GROUPS;
  const people = new Map<string, PersonEntry>();
  const bySam = new Map<string, string>();
  for (const p of peopleIn) {
    const dn = userDn(p);
    bySam.set(p.sAMAccountName.toLowerCase(), norm(dn));
    people.set(norm(dn), { ...p, dn, managerDn: null });
  }
  for (const p of peopleIn) {
    if (p.manager === undefined) continue;
    const m = bySam.get(p.manager.toLowerCase());
    if (!m) throw new Error(`demo directory fixture: manager '${p.manager}' of '${p.sAMAccountName}' does not exist`);
    people.get(norm(userDn(p)))!.managerDn = people.get(m)!.dn;
  }
  const groups = new Map<string, GroupEntry>();
  for (const g of groupsIn) {
    const dn = groupDn(g);
    bySam.set(g.sAMAccountName.toLowerCase(), norm(dn));
    groups.set(norm(dn), { dn, sAMAccountName: g.sAMAccountName, members: new Set() });
  }
  for (const g of groupsIn) {
    for (const m of g.members) {
      const dn = bySam.get(m.toLowerCase());
      if (!dn) throw new Error(`demo directory fixture: member '${m}' of '${g.sAMAccountName}' does not exist`);
      groups.get(norm(groupDn(g)))!.members.add(dn);
    }
  }

  function checkValue(value: unknown, kind: string): string {
    const v = typeof value === 'string' ? value.trim() : '';
    if (!v) throw invalid(`${kind} must not be empty`, { kind, value: v });
    if (v.length > 1024) throw invalid(`${kind} is too long`, { kind, value: v.slice(0, 64) });
    return v;
  }

  function person(key: UserKey): PersonEntry {
    const value = checkValue(key.value, key.by);
    const notFound = () => new DirectoryError(DirectoryErrorCode.NOT_FOUND, `no user with ${key.by} "${value}"`, { key: { kind: key.by, value } });
    if (key.by === 'dn') {
      const n = normalizeDn(value);
      if (n === undefined) throw invalid(`dn "${value}" is not a valid DN`, { kind: 'dn', value });
      if (!n.endsWith(norm(DEMO_DIRECTORY_BASE_DN))) throw invalid(`dn "${value}" is outside the base DN ${DEMO_DIRECTORY_BASE_DN}`, { kind: 'dn', value });
      const p = people.get(n);
      if (!p) throw notFound();
      return p;
    }
    const v = value.toLowerCase();
    const of: Record<Exclude<UserKey['by'], 'dn'>, (p: PersonEntry) => string> = {
      sAMAccountName: (p) => p.sAMAccountName,
      // The demo domain's UPN suffix is the mail domain, as is common.
      userPrincipalName: (p) => p.mail,
      mail: (p) => p.mail,
      employeeId: (p) => p.employee_id,
    };
    const pick = of[key.by as Exclude<UserKey['by'], 'dn'>];
    if (!pick) throw invalid(`unknown lookup key ${String(key.by)}`);
    const hits = [...people.values()].filter((p) => pick(p).toLowerCase() === v);
    if (hits.length > 1) throw new DirectoryError(DirectoryErrorCode.AMBIGUOUS, `more than one user has ${key.by} "${value}"`, { key: { kind: key.by, value } });
    if (!hits[0]) throw notFound();
    return hits[0];
  }

  function group(key: GroupKey): GroupEntry {
    const value = checkValue(key.value, `group ${key.by}`);
    const notFound = () => new DirectoryError(DirectoryErrorCode.NOT_FOUND, `no group with ${key.by} "${value}"`, { key: { kind: `group ${key.by}`, value } });
    if (key.by === 'dn') {
      const n = normalizeDn(value);
      if (n === undefined) throw invalid(`group dn "${value}" is not a valid DN`, { kind: 'group dn', value });
      const g = groups.get(n);
      if (!g) throw notFound();
      return g;
    }
    if (key.by !== 'sAMAccountName') throw invalid(`unknown group key ${String(key.by)}`);
    const g = [...groups.values()].find((x) => x.sAMAccountName.toLowerCase() === value.toLowerCase());
    if (!g) throw notFound();
    return g;
  }

  function toUser(p: PersonEntry): DirectoryUser {
    return {
      dn: p.dn,
      sAMAccountName: p.sAMAccountName,
      userPrincipalName: p.mail,
      mail: p.mail,
      displayName: p.displayName,
      enabled: p.enabled,
      managerDn: p.managerDn,
      attributes: { department: p.department, cost_center: p.cost_center, company: p.company, employee_id: p.employee_id, title: p.title },
    };
  }

  /** Every group `dn` (a user's or a group's) is in: direct ones first, then through nesting (cycles are cut). */
  function groupsOf(dn: string, nested: boolean): Map<string, boolean> {
    const found = new Map<string, boolean>();
    const direct = [...groups.entries()].filter(([, g]) => g.members.has(dn)).map(([k]) => k);
    for (const k of direct) found.set(k, true);
    if (!nested) return found;
    const queue = [...direct];
    while (queue.length > 0) {
      const k = queue.shift()!;
      for (const [outer, g] of groups) {
        if (g.members.has(k) && !found.has(outer)) {
          found.set(outer, false);
          queue.push(outer);
        }
      }
    }
    return found;
  }

  function membership(u: PersonEntry, g: GroupEntry, nested: boolean): Membership {
    const of = groupsOf(norm(u.dn), nested);
    const hit = of.get(norm(g.dn));
    return { member: hit !== undefined, direct: hit === true };
  }

  function change(groupKey: GroupKey, userKey: UserKey, op: 'add' | 'remove'): MembershipChange {
    const g = group(groupKey);
    const u = person(userKey);
    const base = { groupDn: g.dn, memberDn: u.dn };
    const n = norm(u.dn);
    if (op === 'add') {
      if (g.members.has(n)) return { ...base, changed: false, reason: 'already-member' };
      g.members.add(n);
      return { ...base, changed: true, reason: 'added' };
    }
    if (!g.members.has(n)) return { ...base, changed: false, reason: 'not-a-member' };
    g.members.delete(n);
    return { ...base, changed: true, reason: 'removed' };
  }

  // Async like the LDAP adapter: callers await either, and a synchronous throw must surface as a rejection.
  const async =
    <A extends unknown[], R>(fn: (...args: A) => R) =>
    async (...args: A): Promise<R> =>
      fn(...args);

  return {
    findUser: async((key: UserKey) => toUser(person(key))),
    findManager: async((key: UserKey) => {
      const u = person(key);
      if (!u.managerDn) return null;
      const m = people.get(norm(u.managerDn));
      if (!m) throw new DirectoryError(DirectoryErrorCode.NOT_FOUND, `manager ${u.managerDn} of ${u.dn} does not exist`, { key: { kind: 'dn', value: u.managerDn } });
      return toUser(m);
    }),
    listGroups: async((key: UserKey, opts: { nested?: boolean } = {}): DirectoryGroup[] => {
      const u = person(key);
      return [...groupsOf(norm(u.dn), opts.nested !== false)]
        .map(([k, direct]) => {
          const g = groups.get(k)!;
          return { dn: g.dn, sAMAccountName: g.sAMAccountName, name: g.sAMAccountName, direct };
        })
        .sort((a, b) => a.name.localeCompare(b.name));
    }),
    listGroupMembers: async((g: GroupKey, opts: { nested?: boolean } = {}): DirectoryUser[] => {
      const grp = norm(group(g).dn);
      return [...people.values()]
        .filter((p) => groupsOf(norm(p.dn), opts.nested !== false).has(grp))
        .map(toUser)
        .sort((a, b) => a.dn.localeCompare(b.dn));
    }),
    checkMembership: async((user: UserKey, g: GroupKey, opts: { nested?: boolean } = {}) => {
      const grp = group(g);
      return membership(person(user), grp, opts.nested !== false);
    }),
    addGroupMember: async((g: GroupKey, user: UserKey) => change(g, user, 'add')),
    removeGroupMember: async((g: GroupKey, user: UserKey) => change(g, user, 'remove')),
    setAccountEnabled: async((user: UserKey, enabled: boolean): EnabledChange => {
      const u = person(user);
      if (u.enabled === enabled) return { changed: false, enabled, dn: u.dn };
      u.enabled = enabled;
      return { changed: true, enabled, dn: u.dn };
    }),
    setAttributes: async((user: UserKey, values: AttributeValues): AttributeChange => {
      if (values === null || typeof values !== 'object' || Array.isArray(values)) throw invalid('attributes must be an object');
      const entries = Object.entries(values);
      if (entries.length === 0) throw invalid('no attributes to set');
      for (const [name, v] of entries) {
        if (!(WRITABLE as readonly string[]).includes(name)) {
          throw new DirectoryError(DirectoryErrorCode.ATTRIBUTE_NOT_ALLOWED, `attribute ${name} is not on the writable allow-list`, { attribute: name });
        }
        if (Array.isArray(v) && v.length > 1) throw invalid(`${name} takes one value in the demo directory`, { kind: 'attribute', value: name });
      }
      const u = person(user);
      const changed: string[] = [];
      for (const [name, v] of entries) {
        const next = v === null ? '' : Array.isArray(v) ? (v[0] ?? '') : v;
        const attr = name as ConsumerAttribute;
        if (u[attr] === next) continue;
        u[attr] = next;
        changed.push(name);
      }
      return { dn: u.dn, changed };
    }),
    checkEligibleRequestor: async((user: UserKey, restricted: GroupKey): Eligibility => {
      const g = group(restricted);
      const u = person(user);
      const m = membership(u, g, true);
      const base = { userDn: u.dn, groupDn: g.dn };
      if (!m.member) return { ...base, eligible: false, reason: 'not-a-member' };
      if (!u.enabled) return { ...base, eligible: false, reason: 'account-disabled' };
      return { ...base, eligible: true, reason: m.direct ? 'direct-member' : 'nested-member' };
    }),
    testConnection: async () => ({ defaultNamingContext: DEMO_DIRECTORY_BASE_DN }),
    close: async () => undefined,
  };
}
