import { isRecord as isObj } from '../../adapter';
import { invalidValue, ScimError } from './errors';
import { matches, parsePath, type AttrPath, type Filter } from './filter';
import { MAX_MEMBER_FILTER_OPERATIONS, MAX_MEMBER_VALUES } from './limits';
import { unstorableText } from '../http/text';
// a type-only import: patch.ts imports model.ts, which imports this module
import type { PatchOperation } from './patch-operation';

// Group membership planning: members read strictly from a request and PATCH operations on `members` turned into
// one change set, without touching the database (group-members-store.ts writes the change set). Every step is
// linear in the number of members the request names; the stored members are read only by operations that need them.

type Obj = Record<string, unknown>;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CORE_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:group';

/** One member as stored: `value` is a User id (lower case), `display` and `type` as the IdP sent them. */
export interface Member {
  value: string;
  display?: string;
  type?: string;
}

const show = (v: unknown): string => {
  const s = v === undefined ? 'nothing' : JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

function storable(s: string, where: () => string): string {
  const bad = unstorableText(s);
  if (bad) throw invalidValue(`${where()} contains ${bad}`);
  return s;
}

/** A member value as stored: ids compare in lower case, other text (old rows may hold any) as sent. */
function canonicalValue(v: string, where: () => string): string {
  if (v === '') throw invalidValue(`${where()} needs a value`);
  storable(v, where);
  return UUID.test(v) ? v.toLowerCase() : v;
}

/**
 * One element of `members`: `{value, display?, type?}` (`displayName` read as `display`, `$ref` and unknown keys
 * dropped) or a bare id string, as Microsoft's collection sends. 400 invalidValue for anything else: a number,
 * an object whose `value` is not a string, text PostgreSQL cannot store. `where` names the element in errors
 * (a function: a request may hold 10,000 elements, and only a bad one needs its name).
 */
export function readMember(x: unknown, where: () => string): Member {
  if (typeof x === 'string') return { value: canonicalValue(x, where) };
  if (!isObj(x)) throw invalidValue(`${where()} must be a member object or a User id string, got ${show(x)}`);
  // one pass over the keys, case-insensitively (SCIM attribute names are)
  let value: unknown;
  let display: unknown;
  let displayName: unknown;
  let type: unknown;
  for (const k of Object.keys(x)) {
    const lk = k === 'value' || k === 'display' || k === 'type' ? k : k.toLowerCase();
    if (lk === 'value') value = x[k];
    else if (lk === 'display') display = x[k];
    else if (lk === 'displayname') displayName = x[k];
    else if (lk === 'type') type = x[k];
  }
  if (typeof value !== 'string') throw invalidValue(`${where()}.value must be a User id string, got ${show(value)}`);
  const shown = display ?? displayName;
  const m: Member = { value: canonicalValue(value, () => `${where()}.value`) };
  if (typeof shown === 'string') m.display = storable(shown, () => `${where()}.display`);
  if (typeof type === 'string') m.type = storable(type, () => `${where()}.type`);
  return m;
}

/** How many member values `value` names (an array's elements, else one), for the per-request limit. */
export const memberValueCount = (value: unknown): number => (Array.isArray(value) ? value.length : value === undefined || value === null ? 0 : 1);

export function tooManyMembers(n: number): ScimError {
  return new ScimError('tooMany', `the request names ${n} member values; at most ${MAX_MEMBER_VALUES} are accepted per request (send the rest in further requests)`);
}

/** The members `value` lists (an array, one element, or nothing); null elements are skipped, as IdPs send them. */
export function readMembers(value: unknown, where = 'members'): Member[] {
  const n = memberValueCount(value);
  if (n > MAX_MEMBER_VALUES) throw tooManyMembers(n);
  const list = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  const out: Member[] = [];
  list.forEach((x, i) => {
    if (x !== null && x !== undefined) out.push(readMember(x, () => (Array.isArray(value) ? `${where}[${i}]` : where)));
  });
  return out;
}

/** Later attributes win; a member re-sent without `display` keeps the one it had (RFC 7644 §3.5.2.1 add). */
export const mergeMember = (a: Member, b: Member): Member => ({ ...a, ...b });

/**
 * A group's membership change. Until an operation needs the stored members it is a delta: `removes`, then `adds`
 * merged onto stored members of the same value. After a replace (`cleared`) `adds` is the complete new list. An
 * operation that selects members by filter loads the stored ones (`loaded`): `adds` is then the complete list
 * and `stored` what was there. The delta needs no read of the group, so adding one member to a group of
 * 100,000 costs what adding one member costs.
 */
export class MembershipChange {
  cleared = false;
  /** The stored members, once an operation had to read them (`adds` then holds the complete membership). */
  stored: Map<string, Member> | undefined;
  readonly removes = new Set<string>();
  adds = new Map<string, Member>();

  /** `adds` is the whole membership after the change, not a delta on the stored one. */
  get complete(): boolean {
    return this.cleared || this.stored !== undefined;
  }

  get empty(): boolean {
    return !this.complete && this.removes.size === 0 && this.adds.size === 0;
  }

  add(members: Member[]): void {
    for (const m of members) {
      const cur = this.adds.get(m.value);
      this.adds.set(m.value, cur ? mergeMember(cur, m) : m);
    }
  }

  replace(members: Member[]): void {
    this.cleared = true;
    this.removes.clear();
    this.adds = new Map();
    this.add(members);
  }

  remove(values: Iterable<string>): void {
    for (const v of values) {
      this.adds.delete(v);
      if (!this.complete) this.removes.add(v);
    }
  }

  /** Folds the stored members in, so `adds` is the complete membership from here on. */
  load(stored: Member[]): void {
    this.stored = new Map(stored.map((m) => [m.value, m]));
    const all = new Map<string, Member>();
    for (const m of stored) if (!this.removes.has(m.value)) all.set(m.value, m);
    for (const [v, m] of this.adds) {
      const cur = all.get(v);
      all.set(v, cur ? mergeMember(cur, m) : m);
    }
    this.adds = all;
    this.removes.clear();
  }
}

const isMembers = (p: AttrPath): boolean => p.attr.toLowerCase() === 'members' && (!p.uri || p.uri.toLowerCase() === CORE_GROUP);

/** The id of a `members[value eq "id"]` filter, which needs no scan. */
function valueEq(f: Filter | undefined): string | undefined {
  if (!f || f.kind !== 'cmp' || f.op !== 'eq' || typeof f.value !== 'string') return undefined;
  const p = f.path;
  if (p.uri || p.sub || p.filter || p.attr.toLowerCase() !== 'value') return undefined;
  return UUID.test(f.value) ? f.value.toLowerCase() : f.value;
}

/** One step on `members` from a PATCH, in the order the operations came. */
type Step =
  | { kind: 'add' | 'replace'; members: Member[] }
  | { kind: 'remove'; values: string[] }
  | { kind: 'clear' }
  /** Anything addressing members by filter or sub-attribute, other than removing by `value eq`: needs the stored list. */
  | { kind: 'select'; op: PatchOperation['op']; path: AttrPath; value: unknown; raw: string };

export interface GroupPatchPlan {
  /** The operations on the group's other attributes (displayName, externalId), for applyPatch. */
  others: PatchOperation[];
  steps: Step[];
}

/**
 * Splits a group PatchOp into operations on `members` and on everything else, and reads every member it names.
 * 413 tooMany when the operations name more than MAX_MEMBER_VALUES members or more than
 * MAX_MEMBER_FILTER_OPERATIONS select members by a filter that needs a scan; 400 invalidValue for a bad member.
 */
export function planGroupPatch(ops: PatchOperation[]): GroupPatchPlan {
  const others: PatchOperation[] = [];
  const named: { op: PatchOperation['op']; path: AttrPath; value: unknown; raw: string }[] = [];
  ops.forEach((op) => {
    if (op.path) {
      const path = parsePath(op.path);
      if (isMembers(path)) named.push({ op: op.op, path, value: op.value, raw: op.path });
      else others.push(op);
      return;
    }
    // a path-less add/replace: its value's `members` key is a members operation, the rest stays as it was
    const rest: Obj = {};
    const take = (k: string, v: unknown) => {
      if (/^(urn:ietf:params:scim:schemas:core:2\.0:group:)?members$/i.test(k)) named.push({ op: op.op, path: parsePath(k), value: v, raw: k });
      else rest[k] = v;
    };
    for (const [k, v] of Object.entries((op.value ?? {}) as Obj)) {
      // `{"urn:…:core:2.0:Group": {"members": […]}}`: the schema's attributes one by one
      if (k.toLowerCase() === CORE_GROUP && isObj(v)) for (const [a, b] of Object.entries(v)) take(a, b);
      else take(k, v);
    }
    if (Object.keys(rest).length > 0 || op.op === 'remove') others.push({ ...op, value: rest });
  });

  let values = 0;
  let scans = 0;
  for (const n of named) {
    const byValue = n.path.filter ? valueEq(n.path.filter) : undefined;
    if (!n.path.filter && !n.path.sub) values += memberValueCount(n.value);
    else if (byValue === undefined) scans++;
  }
  if (values > MAX_MEMBER_VALUES) throw tooManyMembers(values);
  if (scans > MAX_MEMBER_FILTER_OPERATIONS) {
    throw new ScimError('tooMany', `${scans} operations select members by a filter other than value eq or by a sub-attribute; at most ${MAX_MEMBER_FILTER_OPERATIONS} are accepted per request`);
  }

  const steps: Step[] = named.map(({ op, path, value, raw }): Step => {
    if (!path.filter && !path.sub) {
      if (op === 'remove') {
        // Entra's default job removes with a value list, which the RFC does not define: honour it
        if (value === undefined || value === null) return { kind: 'clear' };
        return { kind: 'remove', values: readMembers(value, `${raw} value`).map((m) => m.value) };
      }
      return { kind: op, members: readMembers(value, `${raw} value`) };
    }
    const id = path.filter ? valueEq(path.filter) : undefined;
    if (op === 'remove' && id !== undefined && !path.sub) return { kind: 'remove', values: [storable(id, () => raw)] };
    return { kind: 'select', op, path, value, raw };
  });
  return { others, steps };
}

const SUBS: Record<string, 'display' | 'type' | 'value' | undefined> = { display: 'display', displayname: 'display', type: 'type', value: 'value' };

/** An operation that selects members (by filter or sub-attribute) applied to the complete membership in `change.adds`. */
function applySelect(change: MembershipChange, s: Extract<Step, { kind: 'select' }>): void {
  const all = change.adds;
  const id = s.path.filter ? valueEq(s.path.filter) : undefined;
  const targets: Member[] = id !== undefined
    ? [all.get(id)].filter((m): m is Member => m !== undefined)
    : [...all.values()].filter((m) => !s.path.filter || matches(s.path.filter, m as unknown as Obj));
  const sub = s.path.sub === undefined ? undefined : SUBS[s.path.sub.toLowerCase()];
  if (s.path.sub !== undefined && sub === undefined) return; // `$ref` and unknown sub-attributes are not stored
  if (sub === 'value') throw new ScimError('invalidPath', `${s.raw}: a member's value cannot be changed or removed; remove the member and add the new one`);
  if (s.op === 'remove') {
    for (const m of targets) {
      if (!sub) all.delete(m.value);
      else {
        const { [sub]: _gone, ...kept } = m;
        all.set(m.value, kept as Member);
      }
    }
    return;
  }
  if (targets.length === 0 && s.path.filter) throw new ScimError('noTarget', `no members element matches ${s.raw}`);
  if (sub) {
    if (s.value !== null && typeof s.value !== 'string') throw invalidValue(`${s.raw} must be a string, got ${show(s.value)}`);
    for (const m of targets) {
      const { [sub]: _old, ...kept } = m;
      all.set(m.value, s.value === null ? (kept as Member) : { ...kept, [sub]: storable(s.value, () => s.raw) });
    }
    return;
  }
  if (!isObj(s.value)) throw invalidValue(`${s.raw} needs an object value`);
  for (const m of targets) {
    const next = mergeMember(m, readMember({ value: m.value, ...s.value }, () => s.raw));
    if (next.value !== m.value) all.delete(m.value);
    all.set(next.value, next);
  }
}

/**
 * Applies a plan's member steps in order. `loadStored` is called at most once, and only when a step selects
 * members by filter or sub-attribute.
 */
export async function applyMemberSteps(change: MembershipChange, steps: Step[], loadStored: () => Promise<Member[]>): Promise<void> {
  for (const s of steps) {
    switch (s.kind) {
      case 'add': change.add(s.members); break;
      case 'replace': change.replace(s.members); break;
      case 'remove': change.remove(s.values); break;
      case 'clear': change.replace([]); break;
      case 'select':
        if (!change.complete) change.load(await loadStored());
        applySelect(change, s);
        break;
    }
  }
}
