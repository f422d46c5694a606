import { PgErrorCode, sqlState, writeAudit, type Actor, type Queryable } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import type { Assert, Same } from '../../api/spec-types';
import { conflict, invalidField, notFound } from '../../errors';
import { assetTypesWithTeamsWebhook } from '../notifications';
import type { Page } from '../paging';
import {
  countAssetTypeReferences,
  deleteAssetTypeRow,
  insertAssetType,
  lockAssetType,
  normaliseApprovalPolicy,
  normaliseAttributes,
  normaliseEntitlements,
  selectAssetTypeById,
  selectAssetTypeByName,
  selectAssetTypes,
  selectPoolStateCounts,
  updateAssetTypeValues,
  type AssetTypeFilter,
  type AssetTypeRow,
  type AssetTypeValues,
  type AttributeDef,
} from './store';

// The catalogue's types are the API's (openapi/provisio.yaml, generated into server/api/gen); where the domain
// holds a value differently (a row with Date timestamps, attributes with `required` explicit) the type is derived
// from the API's, so a spec change reaches the code that must follow it as a type error.

/**
 * The value types an asset type's `attributes` may declare; an order's `config` value must match:
 * - `string`: any JSON string
 * - `integer`: a JSON number without fraction
 * - `number`: any finite JSON number
 * - `boolean`: `true` / `false`
 * - `date`: an ISO 8601 calendar date `YYYY-MM-DD` that exists (2026-02-30 does not)
 * - `date-time`: an RFC 3339 timestamp with offset, e.g. `2026-11-24T09:30:00Z`
 * - `email`: a single address `local@domain.tld`
 */
export const ATTRIBUTE_TYPES = ['string', 'integer', 'number', 'boolean', 'date', 'date-time', 'email'] as const;
export type AttributeType = Api.AttributeType;

// The row, its attribute definitions, its entitlements and the list filter are the store's; callers take them from here.
export type { AssetTypeFilter, AssetTypeRow, AttributeDef, AttributeDefInput, Entitlements } from './store';

export const ASSIGNMENT_MODELS = ['capacity_pooled', 'personal'] as const;
export type AssignmentModel = Api.AssignmentModel;

export const DEPROVISION_POLICIES = ['access_only', 'return_to_pool', 'reinstall'] as const;
export type DeprovisionPolicy = Api.DeprovisionPolicy;

export type DataClassification = Api.DataClassification;

// The value lists above are what validation checks at run time; each must name exactly the spec's enum.
type CatalogueEnumsMatchSpec = [
  Assert<Same<(typeof ATTRIBUTE_TYPES)[number], AttributeType>>,
  Assert<Same<(typeof ASSIGNMENT_MODELS)[number], AssignmentModel>>,
  Assert<Same<(typeof DEPROVISION_POLICIES)[number], DeprovisionPolicy>>,
];

/** The asset type named `name` (exact, case-sensitive), or undefined. */
export async function getAssetTypeByName(q: Queryable, name: string): Promise<AssetTypeRow | undefined> {
  return selectAssetTypeByName(q, name);
}

/** The asset type with id `id`, or undefined. */
export async function getAssetTypeById(q: Queryable, id: number): Promise<AssetTypeRow | undefined> {
  return selectAssetTypeById(q, id);
}

// ---------------------------------------------------------------------------------------------------------------
// Order config validation

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO_DATE_TIME = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
// Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is the directory's business.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function isCalendarDate(s: string): boolean {
  const m = ISO_DATE.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const dt = new Date(Date.UTC(y, mo - 1, d));
  return dt.getUTCFullYear() === y && dt.getUTCMonth() === mo - 1 && dt.getUTCDate() === d;
}

function isDateTime(s: string): boolean {
  const m = ISO_DATE_TIME.exec(s);
  if (!m || !isCalendarDate(m[1]!)) return false;
  return Number(m[2]) < 24 && Number(m[3]) < 60 && Number(m[4]) < 61;
}

/** Why `value` is not of `type`, or undefined when it is. */
function typeMismatch(type: AttributeType, value: unknown): string | undefined {
  switch (type) {
    case 'string':
      return typeof value === 'string' ? undefined : 'must be a string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value) ? undefined : 'must be an integer';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : 'must be a number';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be a boolean';
    case 'date':
      return typeof value === 'string' && isCalendarDate(value) ? undefined : 'must be an ISO 8601 date (YYYY-MM-DD)';
    case 'date-time':
      return typeof value === 'string' && isDateTime(value)
        ? undefined
        : 'must be an ISO 8601 date-time with offset (e.g. 2026-11-24T09:30:00Z)';
    case 'email':
      return typeof value === 'string' && EMAIL.test(value) ? undefined : 'must be an email address';
  }
}

/**
 * Checks an order's `config` against the asset type's attribute definitions.
 * Order of checks, so the error is deterministic: the config's keys in the order given (an unknown key, then an
 * ill-typed value), then the definitions in their order (a required key missing). A `null` value counts as absent.
 * Throws VALIDATION_FAILED (422) naming `/body/config/<key>` at the first offence.
 */
export function validateOrderConfig(attributes: readonly AttributeDef[], config: Record<string, unknown>): void {
  const byKey = new Map(attributes.map((a) => [a.key, a]));
  for (const [key, value] of Object.entries(config)) {
    const def = byKey.get(key);
    if (!def) throw invalidField(`/body/config/${key}`, 'is not an attribute of this asset type');
    if (value === null) continue;
    const why = typeMismatch(def.type, value);
    if (why) throw invalidField(`/body/config/${key}`, why);
  }
  for (const def of attributes) {
    const value = config[def.key];
    if (def.required && (value === undefined || value === null)) {
      throw invalidField(`/body/config/${def.key}`, `is required (${def.type})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Catalogue commands: create, update, delete, and the read model with pool counts

/**
 * The writable fields (the update body); on create `name` and `assignment_model` are required, the rest
 * defaulted. Missing `data_classification` flags are false on create and unchanged on update; an attribute's
 * `required` defaults to false.
 */
export type AssetTypeFields = Api.AssetTypeUpdate;

export type AssetTypeCreateInput = Api.AssetTypeCreate;

// What a create can set an update can change: the two bodies name the same fields, only their required ones differ.
type AssetTypeCreateMatchesUpdate = Assert<
  Same<Required<AssetTypeCreateInput>, Required<AssetTypeFields & Pick<AssetTypeCreateInput, 'name' | 'assignment_model'>>>
>;

/** Pool instances of a type by state, with the dashboard's fill level (see the spec's AssetPoolCounts). */
export type AssetPoolCounts = Api.AssetPoolCounts;

/** What the API shows for an asset type: the row with ISO timestamps and its pool counts. */
export type AssetTypeView = Api.AssetType;

export const FILL_WARNING_PERCENT = 80;
export const FILL_CRITICAL_PERCENT = 95;

/** Fill level of a pool from its per-state counts. */
export function poolCounts(c: { free: number; in_use: number; reinstall: number; failed: number }): AssetPoolCounts {
  const total = c.free + c.in_use + c.reinstall + c.failed;
  const serviceable = total - c.failed;
  const fill = total === 0 ? null : serviceable === 0 ? 100 : Math.floor((100 * (c.in_use + c.reinstall)) / serviceable);
  const alert = fill === null ? 'none' : fill >= FILL_CRITICAL_PERCENT ? 'critical' : fill >= FILL_WARNING_PERCENT ? 'warning' : 'none';
  return { ...c, total, fill_percent: fill, alert };
}

const ATTRIBUTE_KEY = /^[a-z][a-z0-9_]{0,62}$/;
const CURRENCY = /^[A-Z]{3}$/;

/**
 * Checks the rules the spec cannot express (and repeats the ones it can, for callers that are not HTTP, like the
 * demo loader): attribute keys well-formed and unique, a currency whenever there is a cost.
 * Throws VALIDATION_FAILED naming the first offending field.
 */
export function validateAssetTypeValues(v: AssetTypeValues): void {
  if (!v.name.trim()) throw invalidField('/body/name', 'must not be blank');
  if (!ASSIGNMENT_MODELS.includes(v.assignment_model)) {
    throw invalidField('/body/assignment_model', `must be one of ${ASSIGNMENT_MODELS.join(', ')}`);
  }
  if (!DEPROVISION_POLICIES.includes(v.deprovision_policy)) {
    throw invalidField('/body/deprovision_policy', `must be one of ${DEPROVISION_POLICIES.join(', ')}`);
  }
  if (v.pool_size !== null && !(Number.isInteger(v.pool_size) && v.pool_size >= 0)) {
    throw invalidField('/body/pool_size', 'must be an integer >= 0');
  }
  if (v.max_per_user !== null && !(Number.isInteger(v.max_per_user) && v.max_per_user >= 1)) {
    throw invalidField('/body/max_per_user', 'must be an integer >= 1');
  }
  if (v.monthly_cost !== null && !(Number.isFinite(v.monthly_cost) && v.monthly_cost >= 0)) {
    throw invalidField('/body/monthly_cost', 'must be a number >= 0');
  }
  if (v.currency !== null && !CURRENCY.test(v.currency)) {
    throw invalidField('/body/currency', 'must be an ISO 4217 code of three capital letters, e.g. EUR');
  }
  if (v.fallback_approver !== null && !EMAIL.test(v.fallback_approver)) throw invalidField('/body/fallback_approver', 'must be an email address');
  if (v.default_duration_days !== null && !(Number.isInteger(v.default_duration_days) && v.default_duration_days >= 1 && v.default_duration_days <= 3650)) {
    throw invalidField('/body/default_duration_days', 'must be an integer from 1 to 3650');
  }
  if (v.max_duration_days !== null && !(Number.isInteger(v.max_duration_days) && v.max_duration_days >= 1 && v.max_duration_days <= 3650)) {
    throw invalidField('/body/max_duration_days', 'must be an integer from 1 to 3650');
  }
  if (v.expiry_warning_days !== null && !(Number.isInteger(v.expiry_warning_days) && v.expiry_warning_days >= 1 && v.expiry_warning_days <= 365)) {
    throw invalidField('/body/expiry_warning_days', 'must be an integer from 1 to 365');
  }
  // The lists are normalised (trimmed) before this check: an entry of blanks would match nobody, silently.
  for (const list of ['groups', 'departments', 'users'] as const) {
    v.entitlements[list].forEach((entry, i) => {
      if (!entry) throw invalidField(`/body/entitlements/${list}/${i}`, 'must not be blank');
    });
  }
  v.entitlements.users.forEach((u, i) => {
    if (!EMAIL.test(u)) throw invalidField(`/body/entitlements/users/${i}`, 'must be an email address');
  });
  if (v.approval !== null) validateApprovalPolicy(v.approval);
  // A cost without a currency cannot be summed in a cost report.
  if (v.monthly_cost !== null && v.currency === null) throw invalidField('/body/currency', 'is required when monthly_cost is set');
  const seen = new Map<string, number>();
  v.attributes.forEach((a, i) => {
    if (!ATTRIBUTE_KEY.test(a.key)) throw invalidField(`/body/attributes/${i}/key`, `must match ${ATTRIBUTE_KEY.source}`);
    if (!ATTRIBUTE_TYPES.includes(a.type)) {
      throw invalidField(`/body/attributes/${i}/type`, `must be one of ${ATTRIBUTE_TYPES.join(', ')}`);
    }
    const first = seen.get(a.key);
    if (first !== undefined) {
      throw invalidField(`/body/attributes/${i}/key`, `duplicate key '${a.key}' (already at attributes/${first})`);
    }
    seen.set(a.key, i);
  });
}

/**
 * Checks a stored-shape approval policy (approvers normalised): a quorum of 1 to 100, someone to ask, and, without a
 * group (whose size is only known when an order is placed), no more approvals needed than distinct approvers
 * listed. Throws VALIDATION_FAILED naming `/body/approval/...`.
 */
function validateApprovalPolicy(p: NonNullable<AssetTypeValues['approval']>): void {
  if (!(Number.isInteger(p.quorum) && p.quorum >= 1 && p.quorum <= 100)) throw invalidField('/body/approval/quorum', 'must be an integer from 1 to 100');
  p.approvers.forEach((e, i) => {
    if (!EMAIL.test(e)) throw invalidField(`/body/approval/approvers/${i}`, 'must be an email address');
  });
  if (p.approvers.length === 0 && p.approver_group === null) {
    throw invalidField('/body/approval/approvers', 'must name at least one approver when there is no approver_group');
  }
  if (p.approver_group === null && p.quorum > p.approvers.length) {
    throw invalidField('/body/approval/quorum', `must not exceed the ${p.approvers.length} distinct approver(s) listed (got ${p.quorum})`);
  }
}

/** Checks an approval policy's approvers as sent, so an error names the entry by its index in the request. */
function checkApprovalInput(a: AssetTypeFields['approval']): void {
  a?.approvers?.forEach((e, i) => {
    if (!EMAIL.test(e.trim())) throw invalidField(`/body/approval/approvers/${i}`, 'must be an email address');
  });
  if (a && a.approver_group !== undefined && a.approver_group !== null && !a.approver_group.trim()) {
    throw invalidField('/body/approval/approver_group', 'must not be blank');
  }
}

/**
 * Checks entitlement lists as sent, so an error names the entry by its index in the request (normalising drops
 * duplicates and would shift it). Throws VALIDATION_FAILED naming `/body/entitlements/<list>/<i>`.
 */
function checkEntitlementsInput(e: AssetTypeFields['entitlements']): void {
  for (const list of ['groups', 'departments', 'users'] as const) {
    e?.[list]?.forEach((entry, i) => {
      if (!entry.trim()) throw invalidField(`/body/entitlements/${list}/${i}`, 'must not be blank');
      if (list === 'users' && !EMAIL.test(entry.trim())) throw invalidField(`/body/entitlements/users/${i}`, 'must be an email address');
    });
  }
}

function withDefaults(input: AssetTypeCreateInput): AssetTypeValues {
  return {
    name: input.name,
    description: input.description ?? '',
    assignment_model: input.assignment_model,
    pool_size: input.pool_size ?? null,
    max_per_user: input.max_per_user ?? null,
    requires_approval: input.requires_approval ?? false,
    monthly_cost: input.monthly_cost ?? null,
    currency: input.currency ?? null,
    cost_center: input.cost_center ?? null,
    data_classification: { pii: false, phi: false, pci: false, ...input.data_classification },
    attributes: normaliseAttributes(input.attributes ?? []),
    allow_user_lists: input.allow_user_lists ?? false,
    provision_runbook: input.provision_runbook ?? null,
    deprovision_runbook: input.deprovision_runbook ?? null,
    reinstall_runbook: input.reinstall_runbook ?? null,
    deprovision_policy: input.deprovision_policy ?? 'access_only',
    fallback_approver: input.fallback_approver?.trim().toLowerCase() || null,
    entitlements: normaliseEntitlements(input.entitlements),
    default_duration_days: input.default_duration_days ?? null,
    max_duration_days: input.max_duration_days ?? null,
    expiry_warning_days: input.expiry_warning_days ?? null,
    approval: normaliseApprovalPolicy(input.approval),
  };
}

/**
 * JSON merge of a change onto the current values: sent fields replace, `data_classification` merges per flag and
 * `entitlements` per list (a list sent replaces that list, one not sent is kept).
 */
function merged(current: AssetTypeRow, change: AssetTypeFields): AssetTypeValues {
  const { id: _id, created_at: _c, updated_at: _u, last_configured_by: _l, ...values } = current;
  const next: AssetTypeValues = { ...values };
  for (const [k, v] of Object.entries(change) as [keyof AssetTypeFields, unknown][]) {
    if (v === undefined) continue;
    if (k === 'data_classification') next.data_classification = { ...current.data_classification, ...change.data_classification };
    else if (k === 'attributes') next.attributes = normaliseAttributes(change.attributes ?? []);
    else if (k === 'entitlements') next.entitlements = normaliseEntitlements({ ...current.entitlements, ...change.entitlements });
    else if (k === 'fallback_approver') next.fallback_approver = change.fallback_approver?.trim().toLowerCase() || null;
    else if (k === 'approval') next.approval = normaliseApprovalPolicy(change.approval);
    else (next as unknown as Record<string, unknown>)[k] = v;
  }
  return next;
}

function nameTaken(err: unknown, name: string): unknown {
  return sqlState(err) === PgErrorCode.UNIQUE_VIOLATION ? conflict(`an asset type named '${name}' already exists`) : err;
}

const audited = (a: Actor) => ({ triggeredBy: a.triggeredBy, requestId: a.requestId });

/** The audited shape of a row: its values, no timestamps. */
const auditShape = (r: AssetTypeRow): Record<string, unknown> => {
  const { created_at: _c, updated_at: _u, ...rest } = r;
  return rest;
};

/**
 * Creates an asset type and audits it (`asset_type` / `create`); the actor is recorded as `last_configured_by`.
 * An `approval` policy is checked as validateApprovalPolicy says.
 * Throws VALIDATION_FAILED for a rule the spec cannot check (duplicate attribute key, cost without currency),
 * CONFLICT when the name is taken.
 */
export async function createAssetType(tx: Queryable, input: AssetTypeCreateInput, actor: Actor): Promise<AssetTypeRow> {
  checkEntitlementsInput(input.entitlements);
  checkApprovalInput(input.approval);
  const values = withDefaults(input);
  validateAssetTypeValues(values);
  let row: AssetTypeRow;
  try {
    row = await insertAssetType(tx, values, actor.triggeredBy);
  } catch (err) {
    throw nameTaken(err, values.name);
  }
  await writeAudit(tx, { entity: 'asset_type', entityId: row.id, action: 'create', after: auditShape(row), ...audited(actor) });
  return row;
}

/**
 * Applies `change` with merge semantics and audits the changed fields (`asset_type` / `update`), recording the actor
 * as `last_configured_by` (entitlement and approval changes included); a change that changes nothing writes nothing
 * (and leaves `last_configured_by` as it was). Throws NOT_FOUND, VALIDATION_FAILED, or CONFLICT when renaming onto a taken name.
 */
export async function updateAssetType(tx: Queryable, id: number, change: AssetTypeFields, actor: Actor): Promise<AssetTypeRow> {
  const current = await lockAssetType(tx, id);
  if (!current) throw notFound(`asset type ${id} does not exist`);
  checkEntitlementsInput(change.entitlements);
  checkApprovalInput(change.approval);
  const values = merged(current, change);
  validateAssetTypeValues(values);
  const before = auditShape(current);
  if (JSON.stringify({ ...before, ...values }) === JSON.stringify(before)) return current;
  let row: AssetTypeRow;
  try {
    row = await updateAssetTypeValues(tx, id, values, actor.triggeredBy);
  } catch (err) {
    throw nameTaken(err, values.name);
  }
  await writeAudit(tx, { entity: 'asset_type', entityId: id, action: 'update', before, after: auditShape(row), ...audited(actor) });
  return row;
}

/**
 * Deletes an asset type and audits it (`asset_type` / `delete`). Throws NOT_FOUND, or CONFLICT while orders or
 * pool assets reference it (orders are history; assets must be removed first).
 */
export async function deleteAssetType(tx: Queryable, id: number, actor: Actor): Promise<void> {
  // The row lock makes a concurrent order or asset insert for this type wait (its FK check takes KEY SHARE),
  // so the counts below cannot miss one that commits first.
  const current = await lockAssetType(tx, id);
  if (!current) throw notFound(`asset type ${id} does not exist`);
  const { orders, assets } = await countAssetTypeReferences(tx, id);
  if (orders > 0 || assets > 0) {
    const what = [orders > 0 ? `${orders} order(s)` : '', assets > 0 ? `${assets} pool asset(s)` : ''].filter(Boolean).join(' and ');
    throw conflict(`asset type '${current.name}' is still referenced by ${what}`, { orders, assets });
  }
  try {
    await deleteAssetTypeRow(tx, id);
  } catch (err) {
    if (sqlState(err) === PgErrorCode.FOREIGN_KEY_VIOLATION) throw conflict(`asset type '${current.name}' is still referenced`);
    throw err;
  }
  await writeAudit(tx, { entity: 'asset_type', entityId: id, action: 'delete', before: auditShape(current), ...audited(actor) });
}

/** Adds ISO timestamps and pool counts to rows, with one query for all of them. */
export async function toAssetTypeViews(q: Queryable, rows: readonly AssetTypeRow[]): Promise<AssetTypeView[]> {
  if (rows.length === 0) return [];
  const counts = await selectPoolStateCounts(q, rows.map((r) => r.id));
  const byType = new Map(counts.map((c) => [Number(c.asset_type_id), c]));
  // Whether each type has a Teams webhook of its own; the URL itself is write-only and never read here.
  const teams = await assetTypesWithTeamsWebhook(q, rows.map((r) => r.id));
  return rows.map((r) => {
    const c = byType.get(r.id);
    return {
      ...r,
      teams_webhook: { configured: teams.has(r.id) },
      pool: poolCounts({ free: c?.free ?? 0, in_use: c?.in_use ?? 0, reinstall: c?.reinstall ?? 0, failed: c?.failed ?? 0 }),
      created_at: new Date(r.created_at).toISOString(),
      updated_at: new Date(r.updated_at).toISOString(),
    };
  });
}

/** One asset type for the API, or NOT_FOUND. */
export async function readAssetType(q: Queryable, id: number): Promise<AssetTypeView> {
  const row = await getAssetTypeById(q, id);
  if (!row) throw notFound(`asset type ${id} does not exist`);
  return (await toAssetTypeViews(q, [row]))[0]!;
}

/** A page of asset types ordered by name, and how many match the filter in all. */
export async function listAssetTypes(q: Queryable, f: AssetTypeFilter): Promise<Page<AssetTypeView>> {
  const page = await selectAssetTypes(q, f);
  return { items: await toAssetTypeViews(q, page.items), total: page.total };
}
