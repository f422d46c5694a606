import type { Queryable } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import type { Stored } from '../../api/spec-types';
import { queryPage, Where, type Page, type PageRequest } from '../paging';

/*
 * The catalogue's SQL store: every statement on asset types and their pool instances (assets) sits here,
 * parameterised, so asset-types.ts, assets.ts and the demo loader read as decisions. Statements run in the caller's
 * transaction and throw the driver's errors as they come (a unique or foreign-key violation included): mapping them
 * onto domain errors is the caller's decision, since only it knows what the user was trying to do.
 */

// ---------------------------------------------------------------------------------------------------------------
// Asset types

/** An attribute definition as written: `required` may be left out (false). */
export type AttributeDefInput = Api.AssetTypeAttribute;

/** One attribute an order of this type may (or must) carry in its `config`, as stored: `required` explicit. */
export type AttributeDef = Omit<AttributeDefInput, 'required'> & { required: boolean };

/**
 * An `asset_types` row as the domain sees it: the API's asset type without its pool counts, timestamps as `Date`,
 * `monthly_cost` as a number (not numeric text), attributes in their stored shape. `fallback_approver` is the
 * lower-cased email an approval goes to when the requester (or a leaving approver) has no manager. The Teams webhook
 * is not a column (a secret, kept apart: notifications/teams.ts), so `teams_webhook` is only in the view.
 */
export type AssetTypeRow = Stored<Omit<Api.AssetType, 'pool' | 'attributes' | 'teams_webhook'>, 'created_at' | 'updated_at'> & {
  attributes: AttributeDef[];
};

/** Who may order a type, as stored: every list present, trimmed, emails lower-cased, no duplicates. */
export type Entitlements = Api.AssetTypeEntitlements;

/** The editable part of a row (no id, no timestamps, not who configured it), after defaults or a merge. */
export type AssetTypeValues = Omit<AssetTypeRow, 'id' | 'created_at' | 'updated_at' | 'last_configured_by'>;

/** A type's N-of-M approval policy as stored (see the spec's ApprovalPolicy). */
export type ApprovalPolicy = NonNullable<Api.ApprovalPolicy>;

// numeric comes back as text from pg; as float8 both engines return a JS number, and a numeric(12, 2) value
// survives the round trip to its printed form unchanged (12 significant digits are well within a double's 15).
const TYPE_COLUMNS = `id, name, description, assignment_model, pool_size, max_per_user, requires_approval,
  monthly_cost::float8 AS monthly_cost, currency, cost_center, data_classification, attributes, allow_user_lists,
  provision_runbook, deprovision_runbook, reinstall_runbook, deprovision_policy, fallback_approver, entitlements,
  default_duration_days, max_duration_days, expiry_warning_days, approval, last_configured_by, created_at, updated_at`;

/** Attribute definitions in their stored shape: `required` explicit, `help` only when given. */
export function normaliseAttributes(list: readonly AttributeDefInput[]): AttributeDef[] {
  return list.map((a) => ({
    key: a.key,
    type: a.type,
    required: a.required === true,
    ...(a.help !== undefined && a.help !== null ? { help: a.help } : {}),
  }));
}

/**
 * Entitlement lists in their stored shape: every list present, entries trimmed, emails lower-cased, duplicates
 * (case-insensitive, since every comparison is) dropped keeping the first spelling, so that an unchanged update
 * writes nothing and the audit diff shows only real changes.
 */
export function normaliseEntitlements(e: Partial<Entitlements> | null | undefined): Entitlements {
  const list = (values: readonly string[] | undefined, lower: boolean): string[] => {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const raw of values ?? []) {
      const v = lower ? raw.trim().toLowerCase() : raw.trim();
      const key = v.toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(v);
    }
    return out;
  };
  return { groups: list(e?.groups, false), departments: list(e?.departments, false), users: list(e?.users, true) };
}

/**
 * An approval policy in its stored shape: approvers trimmed, lower-cased, duplicates dropped; the group trimmed
 * (null when blank); the keys in a fixed order, so an unchanged update writes nothing.
 */
export function normaliseApprovalPolicy(p: { quorum: number; approvers?: readonly string[] | undefined; approver_group?: string | null | undefined } | null | undefined): ApprovalPolicy | null {
  if (!p) return null;
  const approvers = [...new Set((p.approvers ?? []).map((e) => e.trim().toLowerCase()))];
  return { quorum: p.quorum, approvers, approver_group: p.approver_group?.trim() || null };
}

// jsonb stores object keys in its own order (shortest first); rebuild the JSON columns in a fixed shape so
// that comparisons, audit diffs and responses do not depend on it.
function typeFromDb(r: AssetTypeRow): AssetTypeRow {
  const dc = r.data_classification ?? {};
  return {
    ...r,
    data_classification: { pii: dc.pii === true, phi: dc.phi === true, pci: dc.pci === true },
    attributes: normaliseAttributes(r.attributes ?? []),
    entitlements: normaliseEntitlements(r.entitlements),
    approval: normaliseApprovalPolicy(r.approval),
    last_configured_by: r.last_configured_by ?? null,
  };
}

/** Runs a statement that returns asset type rows (selected or RETURNING `TYPE_COLUMNS`), normalised. */
async function queryTypes(q: Queryable, sql: string, args: readonly unknown[]): Promise<AssetTypeRow[]> {
  const { rows } = await q.query<AssetTypeRow>(sql, args);
  return rows.map(typeFromDb);
}

// The column order of the INSERT and UPDATE statements below.
const VALUE_COLUMNS = [
  'name', 'description', 'assignment_model', 'pool_size', 'max_per_user', 'requires_approval', 'monthly_cost', 'currency',
  'cost_center', 'data_classification', 'attributes', 'allow_user_lists', 'provision_runbook', 'deprovision_runbook',
  'reinstall_runbook', 'deprovision_policy', 'fallback_approver', 'entitlements', 'default_duration_days',
  'max_duration_days', 'expiry_warning_days', 'approval',
] as const satisfies readonly (keyof AssetTypeValues)[];

const JSON_COLUMNS: ReadonlySet<string> = new Set(['data_classification', 'attributes', 'entitlements', 'approval']);

// A JSON column that is null is SQL NULL, not the JSON value null.
const valueParams = (v: AssetTypeValues): unknown[] =>
  VALUE_COLUMNS.map((c) => (JSON_COLUMNS.has(c) && v[c] !== null ? JSON.stringify(v[c]) : v[c]));

/** The asset type named `name` (exact, case-sensitive), or undefined. */
export async function selectAssetTypeByName(q: Queryable, name: string): Promise<AssetTypeRow | undefined> {
  return (await queryTypes(q, `SELECT ${TYPE_COLUMNS} FROM asset_types WHERE name = $1`, [name]))[0];
}

/** The asset type with id `id`, or undefined. */
export async function selectAssetTypeById(q: Queryable, id: number): Promise<AssetTypeRow | undefined> {
  return (await queryTypes(q, `SELECT ${TYPE_COLUMNS} FROM asset_types WHERE id = $1`, [id]))[0];
}

/**
 * The asset type with id `id`, locked for a change or a delete; undefined for an unknown one. The row lock makes a
 * concurrent order or asset insert for this type wait (its FK check takes KEY SHARE), so reference counts read
 * after it cannot miss one that commits first.
 */
export async function lockAssetType(tx: Queryable, id: number): Promise<AssetTypeRow | undefined> {
  return (await queryTypes(tx, `SELECT ${TYPE_COLUMNS} FROM asset_types WHERE id = $1 FOR UPDATE`, [id]))[0];
}

/**
 * Inserts an asset type, recording who configured it (`configuredBy`, an audit attribution: separation of duties
 * reads it); a taken name raises a unique violation.
 */
export async function insertAssetType(tx: Queryable, values: AssetTypeValues, configuredBy: string | null = null): Promise<AssetTypeRow> {
  const [row] = await queryTypes(
    tx,
    `INSERT INTO asset_types (${VALUE_COLUMNS.join(', ')}, last_configured_by)
     VALUES (${VALUE_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')}, $${VALUE_COLUMNS.length + 1}) RETURNING ${TYPE_COLUMNS}`,
    [...valueParams(values), configuredBy],
  );
  if (!row) throw new Error('asset type insert returned no row');
  return row;
}

/**
 * Writes every editable column of asset type `id` and, with `configuredBy`, who configured it last; renaming onto a
 * taken name raises a unique violation.
 */
export async function updateAssetTypeValues(tx: Queryable, id: number, values: AssetTypeValues, configuredBy?: string): Promise<AssetTypeRow> {
  const [row] = await queryTypes(
    tx,
    `UPDATE asset_types SET ${VALUE_COLUMNS.map((c, i) => `${c} = $${i + 2}`).join(', ')}, updated_at = now(),
       last_configured_by = COALESCE($${VALUE_COLUMNS.length + 2}, last_configured_by)
      WHERE id = $1 RETURNING ${TYPE_COLUMNS}`,
    [id, ...valueParams(values), configuredBy ?? null],
  );
  if (!row) throw new Error('asset type update returned no row');
  return row;
}

/** How many orders and pool assets reference asset type `id`. */
export async function countAssetTypeReferences(tx: Queryable, id: number): Promise<{ orders: number; assets: number }> {
  const refs = await tx.query<{ orders: number; assets: number }>(
    `SELECT (SELECT count(*)::int FROM orders WHERE asset_type_id = $1) AS orders,
            (SELECT count(*)::int FROM assets WHERE asset_type_id = $1) AS assets`,
    [id],
  );
  const { orders = 0, assets = 0 } = refs.rows[0] ?? {};
  return { orders, assets };
}

/** Deletes asset type `id`; a row still referenced raises a foreign-key violation. */
export async function deleteAssetTypeRow(tx: Queryable, id: number): Promise<void> {
  await tx.query('DELETE FROM asset_types WHERE id = $1', [id]);
}

/** How many asset types exist. */
export async function countAssetTypes(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ n: number }>('SELECT count(*)::int AS n FROM asset_types');
  return rows[0]?.n ?? 0;
}

/** Pool instances of one asset type by state. */
export interface PoolStateCounts {
  asset_type_id: number;
  free: number;
  in_use: number;
  reinstall: number;
  failed: number;
}

/** The pool counts of each of the asset types given that has any assets, in one statement. */
export async function selectPoolStateCounts(q: Queryable, assetTypeIds: readonly number[]): Promise<PoolStateCounts[]> {
  const { rows } = await q.query<PoolStateCounts>(
    `SELECT asset_type_id,
        count(*) FILTER (WHERE state = 'free')::int AS free,
        count(*) FILTER (WHERE state = 'in_use')::int AS in_use,
        count(*) FILTER (WHERE state = 'reinstall')::int AS reinstall,
        count(*) FILTER (WHERE state = 'failed')::int AS failed
      FROM assets WHERE asset_type_id = ANY($1::bigint[]) GROUP BY asset_type_id`,
    [assetTypeIds],
  );
  return rows;
}

export interface AssetTypeFilter extends PageRequest {
  /** Case-insensitive substring of the name. */
  name?: string | undefined;
  assignment_model?: Api.AssignmentModel | undefined;
}

/** A page of asset types ordered by name, and how many match the filter in all. */
export async function selectAssetTypes(q: Queryable, f: AssetTypeFilter): Promise<Page<AssetTypeRow>> {
  const where = new Where();
  if (f.name) where.and(`name ILIKE ? ESCAPE '\\'`, `%${f.name.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`);
  if (f.assignment_model) where.and('assignment_model = ?', f.assignment_model);
  const page = await queryPage<AssetTypeRow>(
    q,
    { select: `SELECT ${TYPE_COLUMNS} FROM asset_types`, countFrom: 'asset_types', where, orderBy: 'name, id' },
    f,
  );
  return { items: page.items.map(typeFromDb), total: page.total };
}

// ---------------------------------------------------------------------------------------------------------------
// Entitlements and the catalogue

/**
 * The entitlements of asset type `id` and the row's version (`xmin`, as order placement reads it), or undefined for
 * an unknown type. Placement caches the lists by version: any change to the row moves it on.
 */
export async function selectEntitlements(q: Queryable, id: number): Promise<{ version: string; entitlements: Entitlements } | undefined> {
  const { rows } = await q.query<{ version: string; entitlements: Entitlements }>(
    'SELECT xmin::text AS version, entitlements FROM asset_types WHERE id = $1',
    [id],
  );
  const r = rows[0];
  return r ? { version: r.version, entitlements: normaliseEntitlements(r.entitlements) } : undefined;
}

/** An asset type with what the catalogue shows of its pool: the places taken and the free instances. */
export type CatalogueRow = AssetTypeRow & { taken: number; free_instances: number };

/**
 * Every asset type ordered by name, with its pool's places taken counted as `provisio_place_order` counts them
 * (migration 014: active provision orders, and failed ones whose instance is still theirs) and its free instances.
 * The counts are read only for pooled types; a personal type shows zeros.
 */
export async function selectCatalogueRows(q: Queryable, activeStatuses: readonly string[]): Promise<CatalogueRow[]> {
  const { rows } = await q.query<CatalogueRow>(
    `SELECT ${TYPE_COLUMNS},
        CASE WHEN t.assignment_model = 'capacity_pooled' THEN
          (SELECT count(*) FROM orders o
            WHERE o.asset_type_id = t.id AND o.action = 'provision' AND o.status = ANY ($1::text[]))
          + (SELECT count(*) FROM assets a JOIN orders o ON o.id = a.assigned_order_id
              WHERE a.asset_type_id = t.id AND a.state = 'in_use' AND o.status = 'failed')
        ELSE 0 END::int AS taken,
        (SELECT count(*) FROM assets a WHERE a.asset_type_id = t.id AND a.state = 'free')::int AS free_instances
      FROM asset_types t ORDER BY t.name, t.id`,
    [activeStatuses],
  );
  return rows.map((r) => ({ ...typeFromDb(r), taken: r.taken, free_instances: r.free_instances }));
}

/**
 * Takes the demo loader's transaction-scoped lock: several processes may start with DEMO=1 against one database, and
 * the first to hold it loads while the others, waiting, then see its rows.
 */
export async function lockDemoLoad(tx: Queryable): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(hashtext('provisio:demo-data'))`);
}

// ---------------------------------------------------------------------------------------------------------------
// Assets (pool instances)

/** A pool instance, with its type's name for display: the API's asset with `Date` timestamps. */
export type AssetRow = Stored<Api.Asset, 'created_at' | 'updated_at'>;

const SELECT_ASSETS = `SELECT a.id, a.asset_type_id, t.name AS asset_type_name, a.name, a.state, a.attributes, a.assigned_order_id,
    a.owner_email, a.error_message, a.created_at, a.updated_at
  FROM assets a JOIN asset_types t ON t.id = a.asset_type_id`;

/** Asset `id` with its type's name; undefined for an unknown one. */
export async function selectAsset(q: Queryable, id: number): Promise<AssetRow | undefined> {
  const { rows } = await q.query<AssetRow>(`${SELECT_ASSETS} WHERE a.id = $1`, [id]);
  return rows[0];
}

/** Asset `id` with its type's name, locked (the asset's row only); undefined for an unknown one. */
export async function lockAssetRow(tx: Queryable, id: number): Promise<AssetRow | undefined> {
  const { rows } = await tx.query<AssetRow>(`${SELECT_ASSETS} WHERE a.id = $1 FOR UPDATE OF a`, [id]);
  return rows[0];
}

/**
 * The name of asset type `id`, held with KEY SHARE so the type cannot be deleted before the caller's insert of an
 * asset of it; undefined for an unknown type.
 */
export async function selectAssetTypeNameForShare(tx: Queryable, id: number): Promise<string | undefined> {
  const { rows } = await tx.query<{ name: string }>('SELECT name FROM asset_types WHERE id = $1 FOR KEY SHARE', [id]);
  return rows[0]?.name;
}

/** Inserts an asset and returns its id; a name its type already has raises a unique violation. */
export async function insertAsset(
  tx: Queryable,
  a: { assetTypeId: number; name: string; state: Api.AssetState; attributes: Record<string, unknown>; ownerEmail?: string | null },
): Promise<number> {
  const { rows } = await tx.query<{ id: number }>(
    'INSERT INTO assets (asset_type_id, name, state, attributes, owner_email) VALUES ($1, $2, $3, $4, $5) RETURNING id',
    [a.assetTypeId, a.name, a.state, JSON.stringify(a.attributes), a.ownerEmail ?? null],
  );
  const id = rows[0]?.id;
  if (id === undefined) throw new Error('asset insert returned no row');
  return id;
}

/** Writes an asset's name, attributes, state, owner and error; a name its type already has raises a unique violation. */
export async function updateAssetValues(
  tx: Queryable,
  id: number,
  v: { name: string; attributes: Record<string, unknown>; state: Api.AssetState; owner_email: string | null; error_message: string | null },
): Promise<void> {
  await tx.query('UPDATE assets SET name = $2, attributes = $3, state = $4, owner_email = $5, error_message = $6, updated_at = now() WHERE id = $1', [
    id,
    v.name,
    JSON.stringify(v.attributes),
    v.state,
    v.owner_email,
    v.error_message,
  ]);
}

/** How many orders name asset `id` as their assigned asset. */
export async function countOrdersOfAsset(tx: Queryable, id: number): Promise<number> {
  const { rows } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM orders WHERE assigned_asset_id = $1', [id]);
  return rows[0]?.n ?? 0;
}

/** Deletes asset `id`; one an order still references raises a foreign-key violation. */
export async function deleteAssetRow(tx: Queryable, id: number): Promise<void> {
  await tx.query('DELETE FROM assets WHERE id = $1', [id]);
}

/**
 * The id of the type's first free asset (by name), locked; undefined when none is free. SKIP LOCKED: a row another
 * transaction is claiming is passed over rather than waited for, so concurrent callers never get the same one.
 */
export async function lockFirstFreeAsset(tx: Queryable, assetTypeId: number): Promise<number | undefined> {
  const { rows } = await tx.query<{ id: number }>(
    `SELECT id FROM assets WHERE asset_type_id = $1 AND state = 'free' ORDER BY name, id LIMIT 1 FOR UPDATE SKIP LOCKED`,
    [assetTypeId],
  );
  return rows[0]?.id;
}

/** Marks asset `id` in use by order `orderId`; with `ownerEmail`, binds it to that person too (a personal instance). */
export async function setAssetAssigned(tx: Queryable, id: number, orderId: number, ownerEmail?: string): Promise<AssetRow | undefined> {
  // Answers the row as it now is (as selectAsset reads it): the caller audits it without reading it again.
  const { rows } = await tx.query<AssetRow>(
    `WITH a AS (
       UPDATE assets SET state = 'in_use', assigned_order_id = $2, owner_email = COALESCE($3, owner_email), error_message = NULL, updated_at = now()
        WHERE id = $1 RETURNING *
     )
     ${SELECT_ASSETS.replace('FROM assets a', 'FROM a')}`,
    [id, orderId, ownerEmail ?? null],
  );
  return rows[0];
}

/**
 * Takes asset `id` away from its order, into `state`, with `error` as why (for `failed`); `keepOwner` false also
 * drops its binding to a person.
 */
export async function setAssetUnassigned(tx: Queryable, id: number, state: Api.AssetState, o: { keepOwner?: boolean; error?: string | null } = {}): Promise<void> {
  await tx.query(
    `UPDATE assets SET state = $2, assigned_order_id = NULL, owner_email = CASE WHEN $3::boolean THEN owner_email END, error_message = $4,
            updated_at = now()
      WHERE id = $1`,
    [id, state, o.keepOwner ?? false, o.error ?? null],
  );
}

/** Moves asset `id` into `state`, its assignment untouched; `error` is kept as why (null clears it). */
export async function setAssetState(tx: Queryable, id: number, state: Api.AssetState, error: string | null = null): Promise<void> {
  await tx.query(`UPDATE assets SET state = $2, error_message = $3, updated_at = now() WHERE id = $1`, [id, state, error]);
}

/**
 * The id of a free asset of a personal type for `ownerEmail`, locked: one bound to them first, else one bound to
 * nobody; undefined when there is neither. SKIP LOCKED as `lockFirstFreeAsset`, so that two orders of one person
 * never share an instance (the second then gets another or a new one).
 */
export async function lockFreeAssetFor(tx: Queryable, assetTypeId: number, ownerEmail: string): Promise<number | undefined> {
  const { rows } = await tx.query<{ id: number }>(
    `SELECT id FROM assets
      WHERE asset_type_id = $1 AND state = 'free' AND (owner_email = $2 OR owner_email IS NULL)
      ORDER BY owner_email IS NULL, name, id LIMIT 1 FOR UPDATE SKIP LOCKED`,
    [assetTypeId, ownerEmail],
  );
  return rows[0]?.id;
}

/**
 * Inserts an asset unless its type already has one of that name; its id, or undefined when the name was taken
 * (ON CONFLICT: a racing insert of the same name waits for the other's commit instead of failing the transaction).
 */
export async function insertAssetIfNameFree(
  tx: Queryable,
  a: { assetTypeId: number; name: string; state: Api.AssetState; ownerEmail: string | null },
): Promise<AssetRow | undefined> {
  // Answers the new row as selectAsset reads it (a row this transaction inserted is its own until it commits, so
  // it needs no lock): its creation is audited without reading it again.
  const { rows } = await tx.query<AssetRow>(
    `WITH a AS (
       INSERT INTO assets (asset_type_id, name, state, owner_email) VALUES ($1, $2, $3, $4)
       ON CONFLICT (asset_type_id, name) DO NOTHING RETURNING *
     )
     ${SELECT_ASSETS.replace('FROM assets a', 'FROM a')}`,
    [a.assetTypeId, a.name, a.state, a.ownerEmail],
  );
  return rows[0];
}

export interface AssetFilter extends PageRequest {
  asset_type_id?: number | undefined;
  state?: Api.AssetState | undefined;
}

/** A page of assets ordered by type name and asset name, and how many match the filter in all. */
export async function selectAssets(q: Queryable, f: AssetFilter): Promise<Page<AssetRow>> {
  const where = new Where();
  if (f.asset_type_id !== undefined) where.and('a.asset_type_id = ?', f.asset_type_id);
  if (f.state) where.and('a.state = ?', f.state);
  return queryPage<AssetRow>(q, { select: SELECT_ASSETS, countFrom: 'assets a', where, orderBy: 't.name, a.name, a.id' }, f);
}
