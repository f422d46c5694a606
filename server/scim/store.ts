import { randomUUID } from 'node:crypto';
import { AUDIT_COLUMNS, auditValues, PgErrorCode, sqlState, writeAudit, type Actor as AuditActor, type Queryable, type Transaction } from '../../adapter';
import { preconditionFailed, ScimError, scimNotFound } from './errors';
import { parseFilter, type AttrPath } from './filter';
import {
  CORE_GROUP, CORE_USER, ENTERPRISE_USER, LIST_RESPONSE, SCIM_BASE, normalizeGroup, normalizeUser, type GroupDoc, type UserDoc,
} from './model';
import { loadMembers, writeMembership, type MembershipWrite } from './group-members-store';
import { applyMemberSteps, MembershipChange, planGroupPatch, type Member } from './members';
import { applyPatch, type PatchOperation } from './patch';
import { filterToSql, SqlParams, type Column } from './sql-filter';

type Obj = Record<string, unknown>;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const MAX_RESULTS = 200;

interface UserRow {
  id: string;
  user_name: string;
  external_id: string | null;
  name: Obj | null;
  display_name: string | null;
  emails: Obj[];
  active: boolean;
  department: string | null;
  cost_center: string | null;
  employee_number: string | null;
  manager: Obj | null;
  raw: Obj;
  version: number;
  deactivated_at: Date | null;
  created: Date;
  last_modified: Date;
  groups?: Obj[];
}

const USER_COLS = `u.id, u.user_name, u.external_id, u.name, u.display_name, u.emails, u.active, u.department, u.cost_center,
  u.employee_number, u.manager, u.raw, u.version, u.deactivated_at, u.created, u.last_modified,
  (SELECT coalesce(jsonb_agg(jsonb_build_object('value', g.id, 'display', g.display_name, '$ref', '${SCIM_BASE}/Groups/' || g.id) ORDER BY g.display_name), '[]'::jsonb)
     FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id WHERE m.value = u.id::text) AS groups`;

const meta = (type: string, id: string, created: Date, modified: Date, version: number) => ({
  resourceType: type,
  created: new Date(created).toISOString(),
  lastModified: new Date(modified).toISOString(),
  location: `${SCIM_BASE}/${type}s/${id}`,
  version: `W/"${version}"`,
});

/** The stored shape of a user (what PATCH edits), without id/meta/groups. */
function userDoc(r: UserRow): UserDoc {
  const raw = { ...r.raw };
  const ent: Obj = { ...((raw[ENTERPRISE_USER] as Obj | undefined) ?? {}) };
  delete raw[ENTERPRISE_USER];
  if (r.department !== null) ent['department'] = r.department;
  if (r.cost_center !== null) ent['costCenter'] = r.cost_center;
  if (r.employee_number !== null) ent['employeeNumber'] = r.employee_number;
  if (r.manager !== null) ent['manager'] = r.manager;
  return {
    userName: r.user_name,
    ...(r.external_id !== null ? { externalId: r.external_id } : {}),
    ...(r.name ? { name: r.name } : {}),
    ...(r.display_name !== null ? { displayName: r.display_name } : {}),
    ...(r.emails.length ? { emails: r.emails } : {}),
    active: r.active,
    ...raw,
    ...(Object.keys(ent).length ? { [ENTERPRISE_USER]: ent } : {}),
  };
}

export function userResource(r: UserRow): Obj {
  const doc = userDoc(r);
  const schemas = [CORE_USER, ...(doc[ENTERPRISE_USER] ? [ENTERPRISE_USER] : [])];
  return { schemas, id: r.id, ...doc, ...(r.groups && r.groups.length ? { groups: r.groups } : {}), meta: meta('User', r.id, r.created, r.last_modified, r.version) };
}

function userColumns(d: UserDoc): unknown[] {
  const raw: Obj = { ...d };
  const ent: Obj = { ...((raw[ENTERPRISE_USER] as Obj | undefined) ?? {}) };
  for (const k of ['userName', 'externalId', 'name', 'displayName', 'emails', 'active', ENTERPRISE_USER]) delete raw[k];
  const pick = (k: string) => {
    const v = ent[k];
    delete ent[k];
    return v === undefined ? null : v;
  };
  const department = pick('department');
  const costCenter = pick('costCenter');
  const employeeNumber = pick('employeeNumber');
  const manager = pick('manager');
  if (Object.keys(ent).length) raw[ENTERPRISE_USER] = ent;
  const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return [
    d.userName, str(d['externalId']), d['name'] ? JSON.stringify(d['name']) : null, str(d['displayName']),
    JSON.stringify(d['emails'] ?? []), d.active, str(department), str(costCenter), str(employeeNumber),
    manager ? JSON.stringify(manager) : null, JSON.stringify(raw),
  ];
}

const uniqueness = (err: unknown, what: string): never => {
  if (sqlState(err) === PgErrorCode.UNIQUE_VIOLATION) throw new ScimError('uniqueness', what);
  throw err;
};

/** Columns a user filter may name (attribute names compare case-insensitively). */
function userColumn(path: AttrPath, sql: SqlParams): Column {
  const ent = path.uri?.toLowerCase() === ENTERPRISE_USER.toLowerCase();
  if (path.uri && !ent && path.uri.toLowerCase() !== CORE_USER.toLowerCase()) throw new ScimError('invalidFilter', `invalid filter: unknown schema ${path.uri}`);
  const a = path.attr.toLowerCase();
  const s = path.sub?.toLowerCase();
  if (ent) {
    if (a === 'department') return { kind: 'text', expr: 'u.department' };
    if (a === 'costcenter') return { kind: 'text', expr: 'u.cost_center' };
    if (a === 'employeenumber') return { kind: 'text', expr: 'u.employee_number', caseExact: true };
    if (a === 'manager' && (!s || s === 'value')) return { kind: 'text', expr: `(u.manager->>'value')`, caseExact: true };
  } else {
    if (a === 'id' && !s) return { kind: 'text', expr: 'u.id::text', caseExact: true };
    if (a === 'username' && !s) return { kind: 'text', expr: 'u.user_name' };
    if (a === 'externalid' && !s) return { kind: 'text', expr: 'u.external_id', caseExact: true };
    if (a === 'displayname' && !s) return { kind: 'text', expr: 'u.display_name' };
    if (a === 'active' && !s) return { kind: 'bool', expr: 'u.active' };
    if (a === 'meta' && s === 'created') return { kind: 'ts', expr: 'u.created' };
    if (a === 'meta' && s === 'lastmodified') return { kind: 'ts', expr: 'u.last_modified' };
    if (a === 'name' && s) return { kind: 'text', expr: `(u.name->>${sql.p(canonName(path.sub!))})` };
    if (a === 'emails' && !s) return { kind: 'multi', from: `jsonb_array_elements(u.emails) AS e(v)`, elem: (sub, q) => elemText(sub, q) };
    for (const [attr, key] of [['phonenumbers', 'phoneNumbers'], ['addresses', 'addresses'], ['roles', 'roles'], ['entitlements', 'entitlements']] as const) {
      if (a === attr && !s) return { kind: 'multi', from: `jsonb_array_elements(CASE WHEN jsonb_typeof(u.raw->'${key}') = 'array' THEN u.raw->'${key}' ELSE '[]'::jsonb END) AS e(v)`, elem: (sub, q) => elemText(sub, q) };
    }
    for (const key of ['title', 'nickName', 'userType', 'locale', 'timezone', 'preferredLanguage', 'profileUrl']) {
      if (a === key.toLowerCase() && !s) return { kind: 'text', expr: `(u.raw->>'${key}')` };
    }
  }
  throw new ScimError('invalidFilter', `invalid filter: cannot filter on ${path.attr}${path.sub ? `.${path.sub}` : ''}`);
}

const NAME_PARTS = ['givenName', 'familyName', 'formatted', 'middleName', 'honorificPrefix', 'honorificSuffix'];
const canonName = (s: string) => NAME_PARTS.find((n) => n.toLowerCase() === s.toLowerCase()) ?? s;
const ELEM_PARTS = ['value', 'type', 'primary', 'display', 'streetAddress', 'locality', 'region', 'postalCode', 'country', 'formatted'];
const elemText = (sub: string, q: SqlParams): Column => ({
  kind: 'text',
  expr: `(e.v->>${q.p(ELEM_PARTS.find((n) => n.toLowerCase() === sub.toLowerCase()) ?? sub)})`,
});

function groupColumn(path: AttrPath, _sql: SqlParams): Column {
  const a = path.attr.toLowerCase();
  const s = path.sub?.toLowerCase();
  if (path.uri && path.uri.toLowerCase() !== CORE_GROUP.toLowerCase()) throw new ScimError('invalidFilter', `invalid filter: unknown schema ${path.uri}`);
  if (a === 'id' && !s) return { kind: 'text', expr: 'g.id::text', caseExact: true };
  if (a === 'displayname' && !s) return { kind: 'text', expr: 'g.display_name' };
  if (a === 'externalid' && !s) return { kind: 'text', expr: 'g.external_id', caseExact: true };
  if (a === 'meta' && s === 'created') return { kind: 'ts', expr: 'g.created' };
  if (a === 'meta' && s === 'lastmodified') return { kind: 'ts', expr: 'g.last_modified' };
  if (a === 'members' && !s) {
    return {
      kind: 'multi',
      from: 'scim_group_members mm',
      link: 'mm.group_id = g.id',
      elem: (sub) => {
        const col = { value: 'mm.value', display: 'mm.display', type: 'mm.type' }[sub.toLowerCase()];
        if (!col) throw new ScimError('invalidFilter', `members.${sub} is not filterable`);
        return { kind: 'text', expr: col, caseExact: sub.toLowerCase() === 'value' };
      },
    };
  }
  throw new ScimError('invalidFilter', `invalid filter: cannot filter on ${path.attr}${path.sub ? `.${path.sub}` : ''}`);
}

export interface ListQuery {
  filter?: string | undefined;
  startIndex?: number | undefined;
  count?: number | undefined;
}

function page(q: ListQuery) {
  const startIndex = Math.max(1, Math.trunc(q.startIndex ?? 1));
  const count = Math.min(MAX_RESULTS, Math.max(0, Math.trunc(q.count ?? MAX_RESULTS)));
  return { startIndex, count };
}

export async function listUsers(db: Queryable, q: ListQuery): Promise<{ resources: Obj[]; total: number; startIndex: number }> {
  const { startIndex, count } = page(q);
  const sql = new SqlParams();
  const where = q.filter ? filterToSql(parseFilter(q.filter), userColumn, sql) : 'TRUE';
  if (count === 0) {
    const total = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM scim_users u WHERE ${where}`, sql.values)).rows[0]!.n);
    return { resources: [], total, startIndex };
  }
  const lim = sql.p(count);
  const off = sql.p(startIndex - 1);
  // The total and the page in one statement (one round trip, one snapshot): the same two plans as two statements,
  // the count beside the page rather than a window over every match. The LEFT JOIN keeps one row (the total, the
  // user columns null) when the page is empty.
  const { rows } = await db.query<UserRow & { total: string }>(
    `SELECT (SELECT count(*) FROM scim_users u WHERE ${where}) AS total, p.*
       FROM (SELECT 1) one LEFT JOIN (SELECT ${USER_COLS} FROM scim_users u WHERE ${where} ORDER BY u.created, u.id LIMIT ${lim} OFFSET ${off}) p ON true`,
    sql.values,
  );
  const total = Number(rows[0]!.total);
  return { resources: rows.filter((r) => r.id !== null).map(userResource), total, startIndex };
}

export const listResponse = (resources: Obj[], total: number, startIndex: number) => ({
  schemas: [LIST_RESPONSE],
  totalResults: total,
  startIndex,
  itemsPerPage: resources.length,
  Resources: resources,
});

/**
 * `lock`: FOR NO KEY UPDATE for an update (it never changes the id, so group writes that hold the user FOR KEY
 * SHARE while adding it as a member do not wait for it), FOR UPDATE for a delete (which must wait for them).
 */
async function loadUser(q: Queryable, id: string, lock?: 'FOR UPDATE' | 'FOR NO KEY UPDATE'): Promise<UserRow> {
  if (!UUID.test(id)) throw scimNotFound('User', id);
  const { rows } = await q.query<UserRow>(`SELECT ${USER_COLS} FROM scim_users u WHERE u.id = $1${lock ? ` ${lock}` : ''}`, [id]);
  if (!rows[0]) throw scimNotFound('User', id);
  return rows[0];
}

export const getUser = async (db: Queryable, id: string) => userResource(await loadUser(db, id));

/** Who writes (the audit log's actor), and the version the request expects. */
export interface Actor extends AuditActor {
  /** The request's If-Match header: the write only happens when it names the current version (RFC 7644 §3.14). */
  ifMatch?: string | undefined;
}

/** 412 unless `ifMatch` is absent, `*`, or lists the current version (weak or strong form). */
function checkVersion(what: string, version: number, ifMatch: string | undefined): void {
  if (ifMatch === undefined || ifMatch.trim() === '*') return;
  const tags = ifMatch.split(',').map((s) => s.trim().replace(/^W\//, ''));
  if (!tags.includes(`"${version}"`)) {
    throw preconditionFailed(`${what} has changed: the current version is W/"${version}", If-Match sent ${ifMatch}`);
  }
}

/**
 * One statement: the user's INSERT, its audit row and the resource read back (RETURNING, with the groups a new id
 * can only be in when a group already named it as a member). A statement is a transaction of its own, so the audit
 * row exists exactly when the user does, as with writeAudit, without BEGIN/COMMIT and three more round trips.
 */
export async function createUser(q: Queryable, body: unknown, actor: Actor): Promise<Obj> {
  const doc = normalizeUser(body, { defaultActive: true });
  const id = randomUUID();
  const audit = auditValues({ entity: 'scim_user', entityId: id, action: 'create', after: { userName: doc.userName, active: doc.active }, triggeredBy: actor.triggeredBy, requestId: actor.requestId });
  let row: UserRow | undefined;
  try {
    const { rows } = await q.query<UserRow>(
      `WITH u AS (
         INSERT INTO scim_users (id, user_name, external_id, name, display_name, emails, active, department, cost_center, employee_number, manager, raw, deactivated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, CASE WHEN $7 THEN NULL ELSE now() END) RETURNING *),
       a AS (INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES ($13, $14, $15, $16, $17, $18))
       SELECT ${USER_COLS} FROM u`,
      [id, ...userColumns(doc), ...audit],
    );
    row = rows[0];
  } catch (err) {
    uniqueness(err, `userName ${doc.userName} is already taken`);
  }
  return userResource(row!);
}

/** What a write did to `active`, so the caller can run the leaver flow once the change is committed. */
export interface UserWrite {
  resource: Obj;
  deactivated: boolean;
  /** The leaver identity and dedupe key when the user is (now or still) inactive after a request that set active false. */
  leaver?: { dedupeKey: string; identity: { userName: string; externalId: string | null; email: string | null; employeeId: string | null } } | undefined;
}

function leaverOf(r: UserRow): NonNullable<UserWrite['leaver']> {
  const emails = r.emails ?? [];
  const email = (emails.find((e) => e['primary'] === true) ?? emails.find((e) => String(e['type'] ?? '').toLowerCase() === 'work') ?? emails[0])?.['value'];
  return {
    dedupeKey: `scim:${r.id}:deactivate:${new Date(r.deactivated_at ?? Date.now()).getTime()}`,
    identity: { userName: r.user_name, externalId: r.external_id, email: typeof email === 'string' ? email : null, employeeId: r.employee_number },
  };
}

/** Saves a replaced or patched user; `setsInactive` is true when the request itself asked for active false. */
export async function saveUser(tx: Transaction, id: string, next: (current: UserDoc) => UserDoc, setsInactive: (d: UserDoc) => boolean, actor: Actor): Promise<UserWrite> {
  const before = await loadUser(tx, id, 'FOR NO KEY UPDATE');
  checkVersion(`User ${id}`, before.version, actor.ifMatch);
  const doc = next(userDoc(before));
  try {
    await tx.query(
      `UPDATE scim_users SET user_name = $2, external_id = $3, name = $4, display_name = $5, emails = $6, active = $7, department = $8,
              cost_center = $9, employee_number = $10, manager = $11, raw = $12, version = version + 1, last_modified = now(),
              deactivated_at = CASE WHEN $7 THEN NULL ELSE coalesce(deactivated_at, now()) END
        WHERE id = $1`,
      [id, ...userColumns(doc)],
    );
  } catch (err) {
    uniqueness(err, `userName ${doc.userName} is already taken`);
  }
  const after = await loadUser(tx, id);
  const action = before.active && !after.active ? 'deactivate' : !before.active && after.active ? 'reactivate' : 'update';
  await writeAudit(tx, {
    entity: 'scim_user', entityId: id, action,
    before: { userName: before.user_name, active: before.active, version: before.version },
    after: { userName: after.user_name, active: after.active, version: after.version },
    triggeredBy: actor.triggeredBy, requestId: actor.requestId,
  });
  return {
    resource: userResource(after),
    deactivated: before.active && !after.active,
    leaver: !after.active && setsInactive(doc) ? leaverOf(after) : undefined,
  };
}

/**
 * The leaver identity of a user about to be deleted (404 and 412 as the delete itself would answer). DELETE runs
 * the leaver flow before removing the record, so a failure leaves the user in place for the IdP's retry.
 */
export async function leaverBeforeDelete(db: Queryable, id: string, ifMatch: string | undefined): Promise<NonNullable<UserWrite['leaver']>> {
  const row = await loadUser(db, id);
  checkVersion(`User ${id}`, row.version, ifMatch);
  return leaverOf(row);
}

export async function deleteUser(tx: Transaction, id: string, actor: Actor): Promise<void> {
  const row = await loadUser(tx, id, 'FOR UPDATE');
  checkVersion(`User ${id}`, row.version, actor.ifMatch);
  await tx.query(`DELETE FROM scim_group_members WHERE value = $1`, [id]);
  await tx.query(`DELETE FROM scim_users WHERE id = $1`, [id]);
  await writeAudit(tx, { entity: 'scim_user', entityId: id, action: 'delete', before: { userName: row.user_name, active: row.active }, triggeredBy: actor.triggeredBy, requestId: actor.requestId });
}

// --- groups ---

interface GroupRow {
  id: string;
  display_name: string;
  external_id: string | null;
  version: number;
  created: Date;
  last_modified: Date;
  members: { value: string; display: string | null; type: string | null }[];
}

const GROUP_COLS = `g.id, g.display_name, g.external_id, g.version, g.created, g.last_modified,
  (SELECT coalesce(jsonb_agg(jsonb_build_object('value', m.value, 'display', m.display, 'type', m.type) ORDER BY m.value), '[]'::jsonb)
     FROM scim_group_members m WHERE m.group_id = g.id) AS members`;

function groupDoc(r: GroupRow): GroupDoc {
  return {
    displayName: r.display_name,
    ...(r.external_id !== null ? { externalId: r.external_id } : {}),
    members: r.members.map((m) => ({ value: m.value, ...(m.display !== null ? { display: m.display } : {}), ...(m.type !== null ? { type: m.type } : {}) })),
  };
}

export function groupResource(r: GroupRow): Obj {
  const d = groupDoc(r);
  return {
    schemas: [CORE_GROUP],
    id: r.id,
    ...d,
    members: d.members.map((m) => (UUID.test(m.value) ? { ...m, $ref: `${SCIM_BASE}/Users/${m.value}` } : m)),
    meta: meta('Group', r.id, r.created, r.last_modified, r.version),
  };
}

async function loadGroup(q: Queryable, id: string): Promise<GroupRow> {
  if (!UUID.test(id)) throw scimNotFound('Group', id);
  const { rows } = await q.query<GroupRow>(`SELECT ${GROUP_COLS} FROM scim_groups g WHERE g.id = $1`, [id]);
  if (!rows[0]) throw scimNotFound('Group', id);
  return rows[0];
}

export const getGroup = async (db: Queryable, id: string) => groupResource(await loadGroup(db, id));

export async function listGroups(db: Queryable, q: ListQuery & { withMembers: boolean }): Promise<{ resources: Obj[]; total: number; startIndex: number }> {
  const { startIndex, count } = page(q);
  const sql = new SqlParams();
  const where = q.filter ? filterToSql(parseFilter(q.filter), groupColumn, sql) : 'TRUE';
  const total = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM scim_groups g WHERE ${where}`, sql.values)).rows[0]!.n);
  if (count === 0) return { resources: [], total, startIndex };
  const lim = sql.p(count);
  const off = sql.p(startIndex - 1);
  // excludedAttributes=members (Entra's match query) skips reading members at all
  const cols = q.withMembers ? GROUP_COLS : `g.id, g.display_name, g.external_id, g.version, g.created, g.last_modified, '[]'::jsonb AS members`;
  const { rows } = await db.query<GroupRow>(`SELECT ${cols} FROM scim_groups g WHERE ${where} ORDER BY g.created, g.id LIMIT ${lim} OFFSET ${off}`, sql.values);
  return { resources: rows.map(groupResource), total, startIndex };
}

async function displayNameFree(tx: Transaction, name: string, except: string | null): Promise<void> {
  const { rows } = await tx.query(`SELECT 1 FROM scim_groups WHERE lower(display_name) = lower($1) AND ($2::uuid IS NULL OR id <> $2::uuid)`, [name, except]);
  if (rows.length) throw new ScimError('uniqueness', `a group named ${name} already exists`);
}

/** The group's own row, locked, without its members (a membership change never needs to read them all). */
async function lockGroup(tx: Transaction, id: string): Promise<Omit<GroupRow, 'members'>> {
  if (!UUID.test(id)) throw scimNotFound('Group', id);
  const { rows } = await tx.query<Omit<GroupRow, 'members'>>(
    `SELECT g.id, g.display_name, g.external_id, g.version, g.created, g.last_modified FROM scim_groups g WHERE g.id = $1 FOR UPDATE`,
    [id],
  );
  if (!rows[0]) throw scimNotFound('Group', id);
  return rows[0];
}

const externalIdOf = (doc: GroupDoc) => (doc['externalId'] === undefined ? null : String(doc['externalId']));

/** The membership part of an audit row: who was added and removed, so access grants can be traced. */
const memberAudit = (w: MembershipWrite) => ({
  ...(w.added.length ? { membersAdded: w.added } : {}),
  ...(w.removed.length ? { membersRemoved: w.removed } : {}),
});

/**
 * POST: 409 uniqueness for a taken displayName, 400 invalidValue for a member that is not an existing User,
 * 413 tooMany beyond MAX_MEMBER_VALUES members.
 */
export async function createGroup(tx: Transaction, body: unknown, actor: Actor): Promise<Obj> {
  const doc = normalizeGroup(body);
  await displayNameFree(tx, doc.displayName, null);
  const id = randomUUID();
  await tx.query(`INSERT INTO scim_groups (id, display_name, external_id) VALUES ($1, $2, $3)`, [id, doc.displayName, externalIdOf(doc)]);
  const change = new MembershipChange();
  change.add(doc.members);
  const w = await writeMembership(tx, id, change);
  await writeAudit(tx, { entity: 'scim_group', entityId: id, action: 'create', after: { displayName: doc.displayName, ...memberAudit(w) }, triggeredBy: actor.triggeredBy, requestId: actor.requestId });
  return groupResource({ ...(await lockGroup(tx, id)), members: rowsOf(doc.members) });
}

/**
 * The members of a POST or PUT as GROUP_COLS reads them, in value order: the request's list is what is stored
 * now, so the response needs no read of the whole group.
 */
const rowsOf = (members: Member[]): GroupRow['members'] =>
  members
    .map((m) => ({ value: m.value, display: m.display ?? null, type: m.type ?? null }))
    .sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));

/** Renames and writes the membership change of a PUT or PATCH, bumps the version, audits; answers the new version. */
async function updateGroup(tx: Transaction, before: Omit<GroupRow, 'members'>, doc: GroupDoc, change: MembershipChange, actor: Actor): Promise<number> {
  if (doc.displayName.toLowerCase() !== before.display_name.toLowerCase()) await displayNameFree(tx, doc.displayName, before.id);
  const w = await writeMembership(tx, before.id, change);
  const { rows } = await tx.query<{ version: number }>(
    `UPDATE scim_groups SET display_name = $2, external_id = $3, version = version + 1, last_modified = now() WHERE id = $1 RETURNING version`,
    [before.id, doc.displayName, externalIdOf(doc)],
  );
  await writeAudit(tx, {
    entity: 'scim_group', entityId: before.id, action: 'update',
    before: { displayName: before.display_name, externalId: before.external_id, version: before.version },
    after: { displayName: doc.displayName, externalId: externalIdOf(doc), version: rows[0]!.version, ...memberAudit(w) },
    triggeredBy: actor.triggeredBy, requestId: actor.requestId,
  });
  return rows[0]!.version;
}

/**
 * PUT: the body's members become the whole membership; rows that do not change are not touched. Errors as
 * createGroup, plus 404 and 412.
 */
export async function replaceGroup(tx: Transaction, id: string, body: unknown, actor: Actor): Promise<Obj> {
  const before = await lockGroup(tx, id);
  checkVersion(`Group ${id}`, before.version, actor.ifMatch);
  const doc = normalizeGroup(body);
  const change = new MembershipChange();
  change.replace(doc.members);
  await updateGroup(tx, before, doc, change, actor);
  return groupResource({ ...(await lockGroup(tx, id)), members: rowsOf(doc.members) });
}

/**
 * PATCH: the operations on members become one change set (planned by members.ts, written by
 * group-members-store.ts), the rest is applied to the group's own attributes. Answers the new version (PATCH
 * answers 204). 413 tooMany beyond the limits of limits.ts, 400 invalidValue for a member that is not an existing
 * User, and the PATCH errors of patch.ts.
 */
export async function patchGroup(tx: Transaction, id: string, ops: PatchOperation[], actor: Actor): Promise<{ version: number }> {
  const plan = planGroupPatch(ops);
  const before = await lockGroup(tx, id);
  checkVersion(`Group ${id}`, before.version, actor.ifMatch);
  const doc = normalizeGroup(applyPatch({ displayName: before.display_name, ...(before.external_id !== null ? { externalId: before.external_id } : {}) }, plan.others));
  const change = new MembershipChange();
  await applyMemberSteps(change, plan.steps, () => loadMembers(tx, id));
  return { version: await updateGroup(tx, before, doc, change, actor) };
}

export async function deleteGroup(tx: Transaction, id: string, actor: Actor): Promise<void> {
  const row = await lockGroup(tx, id);
  checkVersion(`Group ${id}`, row.version, actor.ifMatch);
  await tx.query(`DELETE FROM scim_groups WHERE id = $1`, [id]);
  await writeAudit(tx, { entity: 'scim_group', entityId: id, action: 'delete', before: { displayName: row.display_name }, triggeredBy: actor.triggeredBy, requestId: actor.requestId });
}
