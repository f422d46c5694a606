import type { Queryable } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import type { RequesterDirectory } from '../identity/requester-directory';
import { ACTIVE_STATUSES } from '../orders/order-status';
import { checkRequester, decideEntitlement } from './entitlements';
import { selectCatalogueRows, type CatalogueRow } from './store';

/*
 * The catalogue: the asset types a person may order, each as a request form needs it. The same entitlement
 * decision as order placement (entitlements.ts), so what the catalogue offers is what an order is accepted for.
 */

export type CatalogueItem = Api.CatalogueItem;
export type CatalogueList = Api.CatalogueList;

/** Days per month in the projected cost: monthly_cost × default_duration_days / 30, as the spec says. */
export const DAYS_PER_MONTH = 30;

/** The cost of one default-length assignment, rounded to cents; null without a cost or a default length. */
export function projectedCost(monthlyCost: number | null, defaultDurationDays: number | null): number | null {
  if (monthlyCost === null || defaultDurationDays === null) return null;
  // Cents as integers first: 85 × 45 / 30 must print 127.5, not 127.49999999999999.
  return Math.round((monthlyCost * 100 * defaultDurationDays) / DAYS_PER_MONTH) / 100;
}

function availabilityOf(r: CatalogueRow): Api.CatalogueAvailability {
  if (r.assignment_model !== 'capacity_pooled') return null;
  return {
    capacity: r.pool_size,
    taken: r.taken,
    available: r.pool_size === null ? null : Math.max(0, r.pool_size - r.taken),
    free_instances: r.free_instances,
  };
}

function itemOf(r: CatalogueRow, entitledBy: Api.CatalogueEntitlement): CatalogueItem {
  return {
    asset_type_id: r.id,
    name: r.name,
    description: r.description,
    assignment_model: r.assignment_model,
    requires_approval: r.requires_approval,
    attributes: r.attributes,
    data_classification: r.data_classification,
    monthly_cost: r.monthly_cost,
    currency: r.currency,
    default_duration_days: r.default_duration_days,
    projected_cost: projectedCost(r.monthly_cost, r.default_duration_days),
    availability: availabilityOf(r),
    entitlements: r.entitlements,
    entitled_by: entitledBy,
  };
}

/**
 * The catalogue for `userEmail`: every asset type its entitlements admit them to, ordered by name. Without
 * `userEmail`, every asset type (the admin view, `entitled_by` null).
 * Throws REQUESTER_NOT_FOUND / REQUESTER_DISABLED (422, naming `/query/user_email`) when a configured directory does
 * not know the person or has them disabled, as order placement does; DIRECTORY_UNAVAILABLE (503) when it does not
 * answer.
 */
export async function listCatalogue(q: Queryable, directory: RequesterDirectory | undefined, userEmail?: string): Promise<CatalogueList> {
  if (userEmail === undefined) {
    const rows = await selectCatalogueRows(q, ACTIVE_STATUSES);
    return { user_email: null, items: rows.map((r) => itemOf(r, null)) };
  }
  const requester = await checkRequester(directory, userEmail, '/query/user_email');
  const rows = await selectCatalogueRows(q, ACTIVE_STATUSES);
  const items: CatalogueItem[] = [];
  // One after the other: the person's groups are searched once, on the first type that needs them.
  for (const r of rows) {
    const decision = await decideEntitlement(r.entitlements, requester);
    if (decision.entitled) items.push(itemOf(r, decision.by));
  }
  return { user_email: requester.email, items };
}
