import { PgErrorCode, sqlState, stripSecrets, writeAudit, type Actor, type Queryable } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import type { Assert, Same } from '../../api/spec-types';
import { conflict, invalidField, notFound } from '../../errors';
import type { Page } from '../paging';
import {
  countOrdersOfAsset,
  deleteAssetRow,
  insertAsset,
  insertAssetIfNameFree,
  lockAssetRow,
  lockFirstFreeAsset,
  lockFreeAssetFor,
  selectAsset,
  selectAssets,
  selectAssetTypeNameForShare,
  setAssetAssigned,
  setAssetState,
  setAssetUnassigned,
  updateAssetValues,
  type AssetFilter,
  type AssetRow,
} from './store';

export const ASSET_STATES = ['free', 'in_use', 'reinstall', 'failed'] as const;
export type AssetState = Api.AssetState;
type AssetStatesMatchSpec = Assert<Same<(typeof ASSET_STATES)[number], AssetState>>;

// The row and the list filter are the store's; callers take them from here.
export type { AssetFilter, AssetRow } from './store';

/** What the API shows: the row with ISO timestamps. */
export type AssetView = Api.Asset;

/**
 * State changes an admin may make by hand. `in_use` is entered and left only through an order (it carries
 * `assigned_order_id`), so a hand edit can never hand out or take back an instance someone holds.
 * `reinstall` is entered by the deprovision flow; an admin may close it when the wipe was done by hand, or
 * give up on it.
 */
export const ADMIN_STATE_CHANGES: Readonly<Record<AssetState, readonly AssetState[]>> = {
  free: ['failed'],
  failed: ['free'],
  reinstall: ['free', 'failed'],
  in_use: [],
};

const toView = (r: AssetRow): AssetView => ({
  ...r,
  created_at: new Date(r.created_at).toISOString(),
  updated_at: new Date(r.updated_at).toISOString(),
});

const auditShape = (r: AssetRow): Record<string, unknown> => {
  const { created_at: _c, updated_at: _u, asset_type_name: _n, ...rest } = r;
  return rest;
};
const audited = (a: Actor) => ({ triggeredBy: a.triggeredBy, requestId: a.requestId });

/** The asset, locked; NOT_FOUND for an unknown one. */
async function lockAsset(tx: Queryable, id: number): Promise<AssetRow> {
  const row = await lockAssetRow(tx, id);
  if (!row) throw notFound(`asset ${id} does not exist`);
  return row;
}

function nameTaken(err: unknown, typeName: string, name: string): unknown {
  return sqlState(err) === PgErrorCode.UNIQUE_VIOLATION ? conflict(`asset type '${typeName}' already has an asset named '${name}'`) : err;
}

/**
 * Asset attributes are shown to every reader and passed to runbooks, so a secret must not live there (the audit
 * log would drop it anyway, leaving a change nobody can trace). Throws VALIDATION_FAILED naming the key.
 */
function rejectSecrets(attributes: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(attributes)) {
    const one = { [key]: value };
    if (JSON.stringify(stripSecrets(one)) !== JSON.stringify(one)) {
      throw invalidField(`/body/attributes/${key}`, 'holds a secret-named field; keep secrets in the settings, not on assets');
    }
  }
}

/** Owners are compared as orders store their users: trimmed and lower-cased. */
const normaliseOwner = (email: string | null | undefined): string | null => (email ? email.trim().toLowerCase() : null);

/** Only state `free` (default) or `failed`: an instance can start out of service, never assigned. */
export type AssetCreateInput = Api.AssetCreate;

/**
 * Adds an instance to a type's pool and audits it (`asset` / `create`). Throws VALIDATION_FAILED naming
 * `asset_type_id` when the type does not exist, CONFLICT when the type already has an asset of that name.
 */
export async function createAsset(tx: Queryable, input: AssetCreateInput, actor: Actor): Promise<AssetView> {
  if (!input.name.trim()) throw invalidField('/body/name', 'must not be blank');
  const state = input.state ?? 'free';
  if (state !== 'free' && state !== 'failed') throw invalidField('/body/state', 'must be free or failed');
  rejectSecrets(input.attributes ?? {});
  // KEY SHARE: the type cannot be deleted between this check and the insert.
  const typeName = await selectAssetTypeNameForShare(tx, input.asset_type_id);
  if (typeName === undefined) throw invalidField('/body/asset_type_id', `asset type ${input.asset_type_id} does not exist`);
  let id: number;
  try {
    id = await insertAsset(tx, {
      assetTypeId: input.asset_type_id,
      name: input.name,
      state,
      attributes: input.attributes ?? {},
      ownerEmail: normaliseOwner(input.owner_email),
    });
  } catch (err) {
    throw nameTaken(err, typeName, input.name);
  }
  const row = (await selectAsset(tx, id))!;
  await writeAudit(tx, { entity: 'asset', entityId: id, action: 'create', after: auditShape(row), ...audited(actor) });
  return toView(row);
}

/** The fields to change; `attributes` replaces the whole object. */
export type AssetChange = Api.AssetUpdate;

/**
 * Renames an asset, replaces its attributes or changes its state (only along `ADMIN_STATE_CHANGES`), and
 * audits the changed fields (`asset` / `update`); a change that changes nothing writes nothing.
 * Throws NOT_FOUND; CONFLICT for a state change an admin may not make, or a name the type already has.
 */
export async function updateAsset(tx: Queryable, id: number, change: AssetChange, actor: Actor): Promise<AssetView> {
  const current = await lockAsset(tx, id);
  const next = {
    name: change.name ?? current.name,
    attributes: change.attributes ?? current.attributes,
    state: change.state ?? current.state,
    owner_email: change.owner_email === undefined ? current.owner_email : normaliseOwner(change.owner_email),
    // The reason a failed instance is out of service goes when it comes back.
    error_message: (change.state ?? current.state) === 'failed' ? current.error_message : null,
  };
  if (!next.name.trim()) throw invalidField('/body/name', 'must not be blank');
  rejectSecrets(next.attributes);
  if (next.state !== current.state && !ADMIN_STATE_CHANGES[current.state].includes(next.state)) {
    const why =
      next.state === 'in_use'
        ? 'an asset becomes in_use only by being assigned to an order'
        : current.state === 'in_use'
          ? `it is assigned to order ${current.assigned_order_id ?? '(unknown)'}; it is released through that order`
          : `allowed from ${current.state}: ${ADMIN_STATE_CHANGES[current.state].join(', ') || 'none'}`;
    throw conflict(`asset '${current.name}' may not change from ${current.state} to ${next.state}: ${why}`, {
      current_state: current.state,
    });
  }
  // The binding of an instance someone holds is the order's to keep: rebinding it would hand it to another person.
  if (next.owner_email !== current.owner_email && current.state === 'in_use') {
    throw conflict(`asset '${current.name}' is in use by order ${current.assigned_order_id ?? '(unknown)'}; its owner changes only while it is not`, {
      current_state: current.state,
    });
  }
  if (
    next.name === current.name &&
    next.state === current.state &&
    next.owner_email === current.owner_email &&
    JSON.stringify(next.attributes) === JSON.stringify(current.attributes)
  ) {
    return toView(current);
  }
  try {
    await updateAssetValues(tx, id, next);
  } catch (err) {
    throw nameTaken(err, current.asset_type_name, next.name);
  }
  const row = (await selectAsset(tx, id))!;
  await writeAudit(tx, {
    entity: 'asset',
    entityId: id,
    action: 'update',
    before: auditShape(current),
    after: auditShape(row),
    ...audited(actor),
  });
  return toView(row);
}

/**
 * Removes an asset from its pool and audits it (`asset` / `delete`). Throws NOT_FOUND; CONFLICT while it is
 * `in_use` or `reinstall`, or while an order still references it (orders keep their history).
 */
export async function deleteAsset(tx: Queryable, id: number, actor: Actor): Promise<void> {
  const current = await lockAsset(tx, id);
  if (current.state === 'in_use' || current.state === 'reinstall') {
    throw conflict(`asset '${current.name}' is ${current.state}; only free or failed assets can be removed`, {
      current_state: current.state,
    });
  }
  const n = await countOrdersOfAsset(tx, id);
  if (n > 0) throw conflict(`asset '${current.name}' is referenced by ${n} order(s); mark it failed instead`, { orders: n });
  try {
    await deleteAssetRow(tx, id);
  } catch (err) {
    if (sqlState(err) === PgErrorCode.FOREIGN_KEY_VIOLATION) throw conflict(`asset '${current.name}' is referenced by an order`);
    throw err;
  }
  await writeAudit(tx, { entity: 'asset', entityId: id, action: 'delete', before: auditShape(current), ...audited(actor) });
}

/** One asset for the API, or NOT_FOUND. */
export async function readAsset(q: Queryable, id: number): Promise<AssetView> {
  const row = await selectAsset(q, id);
  if (!row) throw notFound(`asset ${id} does not exist`);
  return toView(row);
}

/** A page of assets ordered by type name and asset name, and how many match the filter in all. */
export async function listAssets(q: Queryable, f: AssetFilter): Promise<Page<AssetView>> {
  const page = await selectAssets(q, f);
  return { items: page.items.map(toView), total: page.total };
}

// ---------------------------------------------------------------------------------------------------------------
// Order-flow commands: how an order takes an instance from the pool and gives it back. They are the only way
// into and out of `in_use`, so the pool counts stay true to who holds what.

/**
 * Takes the first free instance of a type (by name) for `orderId`: `free` → `in_use`, audited as
 * `asset` / `assign`. Returns undefined when none is free. Concurrent callers never get the same instance
 * (SKIP LOCKED: a row another transaction is claiming is passed over rather than waited for).
 * The caller records the asset on its order (`orders.assigned_asset_id`) in the same transaction.
 */
export async function claimFreeAsset(tx: Queryable, assetTypeId: number, orderId: number, actor: Actor): Promise<AssetView | undefined> {
  const id = await lockFirstFreeAsset(tx, assetTypeId);
  if (id === undefined) return undefined;
  const before = await lockAsset(tx, id);
  const row = await assign(tx, id, orderId);
  await writeAudit(tx, { entity: 'asset', entityId: id, action: 'assign', before: auditShape(before), after: auditShape(row), ...audited(actor) });
  return toView(row);
}

/** Assigns locked asset `id` to `orderId` (bound to `owner` when given) and answers the row as it now is. */
async function assign(tx: Queryable, id: number, orderId: number, owner?: string): Promise<AssetRow> {
  const row = await setAssetAssigned(tx, id, orderId, owner);
  if (!row) throw notFound(`asset ${id} does not exist`);
  return row;
}

/**
 * Gives back the instance an order held, as the type's deprovision policy says: `reinstall` → `reinstall`
 * (the reinstall runbook then calls `finishReinstall`); `return_to_pool` and `access_only` → `free` (only the
 * user's access was taken away; the instance itself is fine). A personal instance stays bound to its person under
 * `access_only` (their next order of the type reuses it); `return_to_pool` and `reinstall` drop the binding, so
 * anyone's next order may take it. Audited as `asset` / `release`.
 * Throws NOT_FOUND, or CONFLICT when the asset is not `in_use` for `orderId`.
 */
export async function releaseAsset(
  tx: Queryable,
  assetId: number,
  orderId: number,
  policy: Api.DeprovisionPolicy,
  actor: Actor,
): Promise<AssetView> {
  const current = await lockAsset(tx, assetId);
  if (current.state !== 'in_use' || current.assigned_order_id !== orderId) {
    throw conflict(`asset '${current.name}' is not in use by order ${orderId}`, { current_state: current.state });
  }
  const next: AssetState = policy === 'reinstall' ? 'reinstall' : 'free';
  await setAssetUnassigned(tx, assetId, next, { keepOwner: policy === 'access_only' });
  const row = await lockAsset(tx, assetId);
  await writeAudit(tx, { entity: 'asset', entityId: assetId, action: 'release', before: auditShape(current), after: auditShape(row), ...audited(actor) });
  return toView(row);
}

/**
 * Ends a reinstall: `reinstall` → `free` when the wipe succeeded, → `failed` (with `error` as why) when it did not.
 * Audited as `asset` / `reinstall_succeeded` or `reinstall_failed`. Throws NOT_FOUND, or CONFLICT when the
 * asset is not in `reinstall`.
 */
export async function finishReinstall(tx: Queryable, assetId: number, succeeded: boolean, actor: Actor, error?: string): Promise<AssetView> {
  const current = await lockAsset(tx, assetId);
  if (current.state !== 'reinstall') throw conflict(`asset '${current.name}' is not being reinstalled`, { current_state: current.state });
  await setAssetState(tx, assetId, succeeded ? 'free' : 'failed', succeeded ? null : (error ?? 'the reinstall runbook failed'));
  const row = await lockAsset(tx, assetId);
  await writeAudit(tx, {
    entity: 'asset',
    entityId: assetId,
    action: succeeded ? 'reinstall_succeeded' : 'reinstall_failed',
    before: auditShape(current),
    after: auditShape(row),
    ...audited(actor),
  });
  return toView(row);
}

/**
 * Takes an instance out of service when the runbook that was to take it back from `orderId` failed: `in_use` →
 * `failed`, with `error` as why, no longer assigned (the order keeps no pointer to it either: the caller clears
 * it). Whatever the runbook left behind (the user's access, half a wipe) is unknown, so the instance must not go
 * to anyone until an admin has looked at it and marked it `free`. Audited as `asset` / `deprovision_failed`.
 * Returns undefined, changing nothing, when the asset is not `in_use` by `orderId` (a redelivery, or an earlier
 * failure already marked it). Throws NOT_FOUND.
 */
export async function failAsset(tx: Queryable, assetId: number, orderId: number, error: string, actor: Actor): Promise<AssetView | undefined> {
  const current = await lockAsset(tx, assetId);
  if (current.state !== 'in_use' || current.assigned_order_id !== orderId) return undefined;
  await setAssetUnassigned(tx, assetId, 'failed', { keepOwner: false, error });
  const row = await lockAsset(tx, assetId);
  await writeAudit(tx, { entity: 'asset', entityId: assetId, action: 'deprovision_failed', before: auditShape(current), after: auditShape(row), ...audited(actor) });
  return toView(row);
}

/** A name safe to show and to pass to runbooks: lower-case letters, digits, `.`, `_` and `-`. */
const slug = (s: string): string =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '') || 'asset';

/** How many names `<type>-<local part>-<n>` a personal instance tries before giving up (one person, many seats). */
const PERSONAL_NAME_TRIES = 50;

/**
 * The instance a personal order of `userEmail` gets, `in_use` by `orderId` and bound to them: their own free one
 * of the type first (kept for them by `access_only`), else one bound to nobody (returned to the pool, or stocked by
 * an admin), else a new one named `<type>-<local part>` (`-2`, `-3`, … when the name is taken, e.g. by a namesake at
 * another domain or the same person's second seat). Audited as `asset` / `create` (a new one) and `asset` /
 * `assign`. The caller records the asset on its order in the same transaction.
 */
export async function claimPersonalAsset(
  tx: Queryable,
  type: { id: number; name: string },
  orderId: number,
  userEmail: string,
  actor: Actor,
): Promise<AssetView> {
  const owner = userEmail.trim().toLowerCase();
  let id = await lockFreeAssetFor(tx, type.id, owner);
  // A new instance's row, as its INSERT answers it: both its create audit and the assign audit's `before`.
  let created: AssetRow | undefined;
  if (id === undefined) {
    const base = `${slug(type.name)}-${slug(owner.split('@')[0] ?? owner)}`;
    for (let n = 1; created === undefined && n <= PERSONAL_NAME_TRIES; n++) {
      created = await insertAssetIfNameFree(tx, { assetTypeId: type.id, name: n === 1 ? base : `${base}-${n}`, state: 'free', ownerEmail: owner });
    }
    if (created === undefined) throw conflict(`asset type '${type.name}' has no free name left for a personal instance of ${owner} (tried ${base} to ${base}-${PERSONAL_NAME_TRIES})`);
    id = Number(created.id);
    await writeAudit(tx, { entity: 'asset', entityId: id, action: 'create', after: auditShape(created), ...audited(actor) });
  }
  const before = created ?? (await lockAsset(tx, id));
  const row = await assign(tx, id, orderId, owner);
  await writeAudit(tx, { entity: 'asset', entityId: id, action: 'assign', before: auditShape(before), after: auditShape(row), ...audited(actor) });
  return toView(row);
}
