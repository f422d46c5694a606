import { isRecord as isObj } from '../../adapter';
import { getCI, parsePath, valuesAt } from './filter';
import { invalidValue } from './errors';
import { readMembers, type Member } from './members';

export const CORE_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const CORE_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE_USER = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const LIST_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const SCIM_BASE = '/scim/v2';

type Obj = Record<string, unknown>;

/** Core User attributes (RFC 7643 §4.1) in their canonical spelling; anything else is not stored. */
const USER_ATTRS = [
  'userName', 'name', 'displayName', 'nickName', 'profileUrl', 'title', 'userType', 'preferredLanguage', 'locale',
  'timezone', 'active', 'emails', 'phoneNumbers', 'ims', 'photos', 'addresses', 'entitlements', 'roles',
  'x509Certificates', 'externalId',
];
const GROUP_ATTRS = ['displayName', 'members', 'externalId'];
const ENTERPRISE_ATTRS = ['employeeNumber', 'costCenter', 'organization', 'division', 'department', 'manager'];
const SUB_ATTRS = [
  'value', 'display', 'type', 'primary', '$ref', 'givenName', 'familyName', 'formatted', 'middleName',
  'honorificPrefix', 'honorificSuffix', 'streetAddress', 'locality', 'region', 'postalCode', 'country', 'displayName',
];
export const MULTI_VALUED = new Set(['emails', 'phonenumbers', 'ims', 'photos', 'addresses', 'entitlements', 'roles', 'x509certificates', 'members', 'groups']);
/** Attributes a client may send back but never sets (RFC 7644 §3.5.1: ignored). `password` is write-only and never kept. */
export const READ_ONLY = new Set(['id', 'meta', 'schemas', 'groups', 'password']);

const canon = (names: string[]) => new Map(names.map((n) => [n.toLowerCase(), n]));
const USER_CANON = canon(USER_ATTRS);
const GROUP_CANON = canon(GROUP_ATTRS);
const ENT_CANON = canon(ENTERPRISE_ATTRS);
const SUB_CANON = canon(SUB_ATTRS);

function canonSub(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonSub);
  if (!isObj(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === null || x === undefined) continue;
    const name = SUB_CANON.get(k.toLowerCase()) ?? k;
    out[name] = name === 'primary' && typeof x === 'string' && /^(true|false)$/i.test(x) ? x.toLowerCase() === 'true' : x;
  }
  return out;
}

/** `true`/`false`, or Entra's `"True"`/`"False"` strings. */
export function toBool(v: unknown, what: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true';
  throw invalidValue(`${what} must be a boolean, got ${JSON.stringify(v)}`);
}

function multi(v: unknown, what: string): Obj[] {
  const list = Array.isArray(v) ? v : [v];
  return list.filter((x) => x !== null && x !== undefined).map((x) => {
    if (isObj(x)) return canonSub(x) as Obj;
    if (typeof x === 'string') return { value: x };
    throw invalidValue(`${what} elements must be objects`);
  });
}

/** The manager as `{value, $ref?, displayName?}`: Entra sends an array, some IdPs a bare id; empty clears it. */
function manager(v: unknown): Obj | undefined {
  const first = Array.isArray(v) ? v[0] : v;
  if (first === undefined || first === null || first === '') return undefined;
  if (typeof first === 'string') return { value: first };
  if (isObj(first)) {
    const m = canonSub(first) as Obj;
    return m['value'] === undefined || m['value'] === null || m['value'] === '' ? undefined : m;
  }
  throw invalidValue('manager must be an object with value');
}

/** A User in stored (canonical) shape: known attributes only, canonical names, enterprise under its URN. */
export interface UserDoc extends Obj {
  userName: string;
  active: boolean;
}

export function normalizeUser(input: unknown, opts: { defaultActive: boolean }): UserDoc {
  if (!isObj(input)) throw invalidValue('the body must be a User object');
  const out: Obj = {};
  const ent: Obj = {};
  const put = (k: string, v: unknown) => {
    if (v === null || v === undefined) return;
    const lk = k.toLowerCase();
    if (lk === CORE_USER.toLowerCase() && isObj(v)) {
      for (const [a, b] of Object.entries(v)) put(a, b);
      return;
    }
    if (lk === ENTERPRISE_USER.toLowerCase()) {
      if (!isObj(v)) throw invalidValue(`${ENTERPRISE_USER} must be an object`);
      for (const [a, b] of Object.entries(v)) putEnt(a, b);
      return;
    }
    if (lk.startsWith(`${ENTERPRISE_USER.toLowerCase()}:`)) return putEnt(k.slice(ENTERPRISE_USER.length + 1), v);
    if (lk.startsWith('urn:')) {
      if (isObj(v)) out[k] = v; // other extensions are kept as sent
      return;
    }
    if (READ_ONLY.has(lk)) return;
    const name = USER_CANON.get(lk);
    if (!name) return; // not a User attribute: dropped, as RFC 7644 §3.3 allows
    if (MULTI_VALUED.has(lk)) out[name] = multi(v, name);
    else if (name === 'name') {
      if (!isObj(v)) throw invalidValue('name must be an object');
      out[name] = canonSub(v);
    } else out[name] = v;
  };
  const putEnt = (k: string, v: unknown) => {
    const name = ENT_CANON.get(k.toLowerCase());
    if (!name || v === null || v === undefined) return;
    if (name === 'manager') {
      const m = manager(v);
      if (m) ent['manager'] = m;
    } else ent[name] = v;
  };
  for (const [k, v] of Object.entries(input)) put(k, v);
  if (Object.keys(ent).length) out[ENTERPRISE_USER] = ent;

  const userName = out['userName'];
  if (typeof userName !== 'string' || userName.trim() === '') throw invalidValue('userName is required and must be a non-empty string');
  out['active'] = out['active'] === undefined ? opts.defaultActive : toBool(out['active'], 'active');
  for (const s of ['displayName', 'externalId', 'nickName', 'title', 'userType', 'locale', 'timezone', 'preferredLanguage', 'profileUrl']) {
    if (out[s] !== undefined && typeof out[s] !== 'string') throw invalidValue(`${s} must be a string`);
  }
  return out as UserDoc;
}

export interface GroupDoc extends Obj {
  displayName: string;
  /** Each value once (the last element sent for a value wins), as readMember reads them. */
  members: Member[];
}

/**
 * A Group in stored shape. 400 invalidValue without a displayName or with a member that is not a member object
 * or id string; 413 tooMany beyond MAX_MEMBER_VALUES members. Whether members exist is the store's check.
 */
export function normalizeGroup(input: unknown): GroupDoc {
  if (!isObj(input)) throw invalidValue('the body must be a Group object');
  const out: Obj = { members: [] };
  for (const [k, v] of Object.entries(input)) {
    if (v === null || v === undefined) continue;
    const lk = k.toLowerCase();
    if (lk.startsWith('urn:') || READ_ONLY.has(lk)) continue;
    const name = GROUP_CANON.get(lk);
    if (!name) continue;
    out[name] = name === 'members' ? readMembers(v) : v;
  }
  if (typeof out['displayName'] !== 'string' || (out['displayName'] as string).trim() === '') {
    throw invalidValue('displayName is required and must be a non-empty string');
  }
  const seen = new Map<string, Member>();
  for (const m of out['members'] as Member[]) seen.set(m.value, m);
  out['members'] = [...seen.values()];
  return out as GroupDoc;
}

/**
 * `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5): `id`, `schemas` and `meta` always stay; a sub-attribute
 * or value path (`emails[type eq "work"]`) keeps that part of its attribute.
 */
export function project(resource: Obj, attributes?: string, excluded?: string): Obj {
  const list = (s?: string) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  const want = list(attributes);
  const drop = list(excluded);
  if (want.length === 0 && drop.length === 0) return resource;
  const always = new Set(['id', 'schemas', 'meta']);
  if (want.length > 0) {
    const out: Obj = {};
    for (const k of Object.keys(resource)) if (always.has(k)) out[k] = resource[k];
    for (const w of want) {
      const path = parsePath(w);
      const top = path.uri && path.uri.toLowerCase() !== CORE_USER.toLowerCase() && path.uri.toLowerCase() !== CORE_GROUP.toLowerCase() ? path.uri : path.attr;
      const key = Object.keys(resource).find((k) => k.toLowerCase() === top.toLowerCase());
      if (!key) continue;
      if (!path.sub && !path.filter && top === path.attr) {
        out[key] = resource[key];
      } else if (top !== path.attr) {
        const ext = resource[key] as Obj;
        const v = getCI(ext, path.attr);
        if (v !== undefined) out[key] = { ...((out[key] as Obj | undefined) ?? {}), [path.attr]: v };
      } else if (MULTI_VALUED.has(path.attr.toLowerCase())) {
        out[key] = valuesAt(resource, { attr: path.attr, ...(path.filter ? { filter: path.filter } : {}) }).map((e) =>
          path.sub && isObj(e) ? { [path.sub]: getCI(e, path.sub) } : e,
        );
      } else if (isObj(resource[key]) && path.sub) {
        const v = getCI(resource[key], path.sub);
        if (v !== undefined) out[key] = { ...((out[key] as Obj | undefined) ?? {}), [path.sub]: v };
      }
    }
    return out;
  }
  const out: Obj = { ...resource };
  for (const d of drop) {
    const path = parsePath(d);
    const key = Object.keys(out).find((k) => k.toLowerCase() === path.attr.toLowerCase());
    if (!key || always.has(key)) continue;
    if (path.sub && isObj(out[key])) {
      const copy = { ...(out[key] as Obj) };
      for (const k of Object.keys(copy)) if (k.toLowerCase() === path.sub.toLowerCase()) delete copy[k];
      out[key] = copy;
    } else delete out[key];
  }
  return out;
}
