import { isRecord as isObj } from '../../adapter';
import { getCI, keyOf, matches, parsePath, type AttrPath, type Filter } from './filter';
import { ScimError } from './errors';
import { MAX_PATCH_OPERATIONS } from './limits';
import { CORE_GROUP, CORE_USER, ENTERPRISE_USER, MULTI_VALUED, READ_ONLY } from './model';
import type { PatchOperation } from './patch-operation';

// RFC 7644 §3.5.2 PATCH, applied in memory to a resource in its stored (canonical) shape; the caller then
// normalises and saves the result, so a failing operation leaves nothing half-applied.

export const PATCH_OP_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

type Obj = Record<string, unknown>;
export type { PatchOperation } from './patch-operation';

const syntax = (m: string) => new ScimError('invalidSyntax', m);

/**
 * The operations of a PatchOp body, validated (`op` is case-insensitive, `Operations` too): 400 invalidSyntax for a
 * malformed body, 413 tooMany beyond MAX_PATCH_OPERATIONS operations.
 */
export function readOperations(body: unknown): PatchOperation[] {
  if (!isObj(body)) throw syntax('the body must be a PatchOp object');
  const schemas = getCI(body, 'schemas');
  if (schemas !== undefined && (!Array.isArray(schemas) || !schemas.some((s) => String(s).toLowerCase() === PATCH_OP_SCHEMA.toLowerCase()))) {
    throw syntax(`schemas must contain ${PATCH_OP_SCHEMA}`);
  }
  const ops = getCI(body, 'Operations');
  if (!Array.isArray(ops) || ops.length === 0) throw syntax('Operations must be a non-empty array');
  if (ops.length > MAX_PATCH_OPERATIONS) {
    throw new ScimError('tooMany', `the PATCH has ${ops.length} operations; at most ${MAX_PATCH_OPERATIONS} are accepted per request`);
  }
  return ops.map((raw, i) => {
    if (!isObj(raw)) throw syntax(`Operations[${i}] must be an object`);
    const op = String(getCI(raw, 'op') ?? '').toLowerCase();
    if (op !== 'add' && op !== 'replace' && op !== 'remove') throw syntax(`Operations[${i}].op must be add, replace or remove`);
    const path = getCI(raw, 'path');
    if (path !== undefined && path !== null && typeof path !== 'string') throw new ScimError('invalidPath', `Operations[${i}].path must be a string`);
    const value = getCI(raw, 'value');
    if (op !== 'remove' && (path === undefined || path === null || path === '') && !isObj(value)) {
      throw new ScimError('invalidValue', `Operations[${i}]: without a path the value must be an object of attributes`);
    }
    return { op, ...(typeof path === 'string' && path !== '' ? { path } : {}), ...(value !== undefined ? { value } : {}) } as PatchOperation;
  });
}

/** The object that holds `path`'s attribute: the resource itself, or an extension's object. */
function container(doc: Obj, path: AttrPath, create: boolean): Obj | undefined {
  if (!path.uri) return doc;
  const uri = path.uri.toLowerCase();
  if (uri === CORE_USER.toLowerCase() || uri === CORE_GROUP.toLowerCase()) return doc;
  const k = keyOf(doc, path.uri) ?? (uri === ENTERPRISE_USER.toLowerCase() ? ENTERPRISE_USER : path.uri);
  const cur = doc[k];
  if (isObj(cur)) return cur;
  if (!create) return undefined;
  const fresh: Obj = {};
  doc[k] = fresh;
  return fresh;
}

const isMulti = (name: string) => MULTI_VALUED.has(name.toLowerCase());

/** A multi-valued attribute's new elements as objects (`"id"` -> `{value: "id"}`, as Microsoft's tests send). */
function elements(value: unknown): Obj[] {
  const list = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  return list.filter((v) => v !== null && v !== undefined).map((v) => (isObj(v) ? { ...v } : { value: v }));
}

/** The key elements of a multi-valued attribute are matched by: their `value`, when they have one. */
function valueKey(e: unknown): string | undefined {
  const v = isObj(e) ? getCI(e, 'value') : undefined;
  return v === undefined || v === null ? undefined : String(v);
}

function setAttr(target: Obj, name: string, value: unknown): void {
  const k = keyOf(target, name) ?? name;
  if (value === null) delete target[k];
  else target[k] = value;
}

/**
 * The element a replace with an unmatched `[type eq "work"]` filter creates: Entra sets a first work email that
 * way (IdP checklist §9). Only a `type` filter seeds; any other unmatched filter is noTarget (RFC 7644 §3.5.2.3).
 */
function seedFromFilter(f: Filter): Obj | undefined {
  if (f.kind === 'cmp' && f.op === 'eq' && !f.path.sub && !f.path.filter && f.path.attr.toLowerCase() === 'type' && typeof f.value === 'string') {
    return { type: f.value };
  }
  return undefined;
}

// Enterprise attributes IdPs address without their URN (Entra's `"path": "manager"`).
const ENTERPRISE_ONLY = new Set(['manager', 'department', 'employeenumber', 'costcenter', 'organization', 'division']);

function applyAtPath(doc: Obj, op: PatchOperation['op'], unqualified: AttrPath, value: unknown, rawPath: string): void {
  const path = !unqualified.uri && ENTERPRISE_ONLY.has(unqualified.attr.toLowerCase()) && !keyOf(doc, unqualified.attr)
    ? { ...unqualified, uri: ENTERPRISE_USER }
    : unqualified;
  if (!path.uri && READ_ONLY.has(path.attr.toLowerCase())) {
    if (op === 'add' || op === 'replace') return; // read-only attributes the IdP echoes back are ignored (RFC 7644 §3.5.2)
    throw new ScimError('mutability', `${path.attr} is read-only`);
  }
  const target = container(doc, path, op !== 'remove');
  if (!target) {
    if (op === 'remove') return;
    throw new ScimError('invalidPath', `no such attribute: ${rawPath}`);
  }
  const key = keyOf(target, path.attr) ?? path.attr;
  const current = target[key];

  if (path.filter) {
    if (!isMulti(path.attr)) throw new ScimError('invalidPath', `${path.attr} is not multi-valued: ${rawPath}`);
    const list = Array.isArray(current) ? (current as unknown[]) : [];
    const hit = (e: unknown) => isObj(e) && matches(path.filter!, e);
    if (op === 'remove') {
      if (path.sub) {
        for (const e of list) if (hit(e)) delete (e as Obj)[keyOf(e as Obj, path.sub) ?? path.sub];
      } else {
        target[key] = list.filter((e) => !hit(e));
      }
      return;
    }
    const matched = list.filter(hit) as Obj[];
    if (matched.length === 0) {
      const seed = seedFromFilter(path.filter);
      if (!seed) throw new ScimError('noTarget', `no ${path.attr} element matches ${rawPath}`);
      const fresh: Obj = { ...seed, ...(path.sub ? { [path.sub]: value } : isObj(value) ? value : { value }) };
      target[key] = [...list, fresh];
      return;
    }
    for (const e of matched) {
      if (path.sub) setAttr(e, path.sub, value);
      else if (isObj(value)) Object.assign(e, value);
      else throw new ScimError('invalidValue', `${rawPath} needs an object value`);
    }
    return;
  }

  if (path.sub) {
    if (isMulti(path.attr)) {
      // `emails.value` without a filter addresses every element (RFC 7644 §3.5.2.3)
      const list = Array.isArray(current) ? (current as Obj[]) : [];
      for (const e of list) {
        if (!isObj(e)) continue;
        if (op === 'remove') delete e[keyOf(e, path.sub) ?? path.sub];
        else setAttr(e, path.sub, value);
      }
      return;
    }
    const sub: Obj = isObj(current) ? current : {};
    if (op === 'remove') delete sub[keyOf(sub, path.sub) ?? path.sub];
    else setAttr(sub, path.sub, value);
    target[key] = sub;
    return;
  }

  if (op === 'remove') {
    if (isMulti(path.attr) && value !== undefined && value !== null) {
      // Entra's default job removes members with a value list, which the RFC does not define: honour it.
      const gone = new Set(elements(value).map(valueKey).filter((k) => k !== undefined));
      const list = Array.isArray(current) ? (current as unknown[]) : [];
      target[key] = list.filter((e) => {
        const k = valueKey(e);
        return k === undefined || !gone.has(k);
      });
      return;
    }
    delete target[key];
    return;
  }
  if (isMulti(path.attr)) {
    const incoming = elements(value);
    if (op === 'replace') {
      target[key] = incoming;
      return;
    }
    const list = (Array.isArray(current) ? [...(current as unknown[])] : []) as Obj[];
    // an element with the value of one already there is merged into it (the first such), found by key, not by scan
    const at = new Map<string, number>();
    list.forEach((x, i) => {
      const k = valueKey(x);
      if (k !== undefined && !at.has(k)) at.set(k, i);
    });
    for (const e of incoming) {
      const k = valueKey(e);
      const i = k === undefined ? undefined : at.get(k);
      if (i !== undefined) list[i] = { ...list[i], ...e };
      else {
        if (k !== undefined) at.set(k, list.length);
        list.push(e);
      }
    }
    target[key] = list;
    return;
  }
  if (op === 'add' && isObj(value) && isObj(current)) {
    target[key] = { ...current, ...value };
    return;
  }
  setAttr(target, path.attr, value);
}

/** Applies the operations in order to a copy of `doc` and answers the copy. */
export function applyPatch(doc: Obj, ops: PatchOperation[]): Obj {
  const out = structuredClone(doc);
  for (const op of ops) {
    if (op.path) {
      applyAtPath(out, op.op, parsePath(op.path), op.value, op.path);
      continue;
    }
    if (op.op === 'remove') throw new ScimError('noTarget', 'remove needs a path');
    for (const [k, v] of Object.entries(op.value as Obj)) {
      const lk = k.toLowerCase();
      if (lk === CORE_USER.toLowerCase() || lk === CORE_GROUP.toLowerCase() || lk === ENTERPRISE_USER.toLowerCase()) {
        // `{"urn:…:enterprise:2.0:User": {"department": "x"}}`: each attribute of the schema's object
        if (!isObj(v)) throw new ScimError('invalidValue', `${k} must be an object`);
        for (const [ak, av] of Object.entries(v)) {
          applyAtPath(out, op.op, { ...(lk === ENTERPRISE_USER.toLowerCase() ? { uri: ENTERPRISE_USER } : {}), ...parsePath(ak) }, av, `${k}:${ak}`);
        }
        continue;
      }
      // Keys may be dotted or URN-qualified paths (Entra's SCIM-compliant job): `name.givenName`, `urn:…:User:employeeNumber`.
      applyAtPath(out, op.op, parsePath(k), v, k);
    }
  }
  return out;
}
