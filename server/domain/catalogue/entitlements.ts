import { normalizeDn, type Queryable } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import { CodedError, ErrorCode } from '../../errors';
import type { DirectoryPerson, RequesterDirectory } from '../identity/requester-directory';
import { selectEntitlements, type Entitlements } from './store';

/*
 * Who may order an asset type, and who is asking.
 *
 * A type's entitlements are three allow-lists; a person may order the type when any one of them admits them, and
 * when all three are empty everyone may. They are checked where an order is placed (`createOrder`: the Orders API,
 * the ServiceNow webhook's provision, the portal) and where the catalogue is listed, never where something is taken
 * back, revoked or approved: those act on orders that were placed under the rules of their day.
 *
 * Where each rule's facts come from, and what happens without them:
 * - `users`: the requester's email, case-insensitive. Needs nothing else.
 * - `departments`: the requester's department as the `active_directory` directory has it, never the `requester`
 *   snapshot a caller sends (a caller could claim any department). Without a configured directory the rule admits
 *   nobody, and the refusal says so.
 * - `groups`: membership in an AD group, direct or through nested groups, by `sAMAccountName`, `cn` or DN. Without a
 *   configured directory the rule admits nobody; with one that does not answer the check fails closed
 *   (DIRECTORY_UNAVAILABLE, 503) rather than guess.
 */

export type EntitlementRule = 'users' | 'departments' | 'groups';

/** Why a person may order a type: no lists at all (`everyone`), or the list and the entry that admits them. */
export type EntitlementGrant = NonNullable<Api.CatalogueEntitlement>;

export type EntitlementDecision =
  | { entitled: true; by: EntitlementGrant }
  | { entitled: false; failed: EntitlementRule[]; reasons: string[] };

/** The person an order or a catalogue is for. */
export interface Requester {
  /** Trimmed and lower-cased. */
  email: string;
  /** The directory's account of them; undefined when no directory is configured (or none is wired in). */
  person: DirectoryPerson | undefined;
}

const SECTION = 'active_directory';

/**
 * The requester check: with a directory configured, the person must have an account there (matched by `mail`) and
 * it must be enabled. Without one, anyone is who the caller says.
 * Throws REQUESTER_NOT_FOUND or REQUESTER_DISABLED (422) naming `field`; DIRECTORY_UNAVAILABLE (503) when the
 * configured directory cannot be asked.
 */
export async function checkRequester(directory: RequesterDirectory | undefined, email: string, field: string): Promise<Requester> {
  const normal = email.trim().toLowerCase();
  if (!directory?.verify) return { email: normal, person: undefined };
  const check = await directory.verify(normal);
  switch (check.status) {
    case 'unconfigured':
      return { email: normal, person: undefined };
    case 'not_found':
      throw new CodedError(ErrorCode.REQUESTER_NOT_FOUND, `${normal} has no account in the directory (settings section ${SECTION}, matched by mail)`, {
        errors: [{ path: field, message: 'has no account in the directory' }],
      });
    case 'found':
      if (!check.person.enabled) {
        throw new CodedError(ErrorCode.REQUESTER_DISABLED, `${normal}'s directory account is disabled (settings section ${SECTION})`, {
          errors: [{ path: field, message: 'is a disabled account in the directory' }],
        });
      }
      return { email: normal, person: check.person };
  }
}

/** Whether the type restricts who may order it at all. */
export function isRestricted(e: Entitlements): boolean {
  return e.users.length > 0 || e.departments.length > 0 || e.groups.length > 0;
}

/** A group as the rules name it, in the form `DirectoryPerson.groups()` answers: a normalised DN, or a lower-cased name. */
function groupKey(group: string): string {
  return group.includes('=') ? (normalizeDn(group) ?? group.toLowerCase()) : group.toLowerCase();
}

const listed = (values: readonly string[]): string => values.map((v) => `'${v}'`).join(', ');

/**
 * Decides whether `requester` may order a type with entitlements `e`. The cheap rules first and the first that
 * admits wins, so the directory's group search runs only when users and departments did not admit the person.
 * Throws DIRECTORY_UNAVAILABLE (503) when the group search is needed and the directory does not answer.
 */
export async function decideEntitlement(e: Entitlements, requester: Requester): Promise<EntitlementDecision> {
  if (!isRestricted(e)) return { entitled: true, by: { rule: 'everyone', value: null } };
  const failed: EntitlementRule[] = [];
  const reasons: string[] = [];

  if (e.users.length > 0) {
    if (e.users.includes(requester.email)) return { entitled: true, by: { rule: 'users', value: requester.email } };
    failed.push('users');
    reasons.push('not one of its users');
  }

  if (e.departments.length > 0) {
    failed.push('departments');
    const department = requester.person?.snapshot.department?.trim();
    const match = department ? e.departments.find((d) => d.toLowerCase() === department.toLowerCase()) : undefined;
    if (match !== undefined) return { entitled: true, by: { rule: 'departments', value: match } };
    if (!requester.person) reasons.push(`its departments (${listed(e.departments)}) need the directory, and ${SECTION} is not configured`);
    else if (!department) reasons.push(`has no department in the directory (its departments: ${listed(e.departments)})`);
    else reasons.push(`department '${department}' is not one of ${listed(e.departments)}`);
  }

  if (e.groups.length > 0) {
    failed.push('groups');
    if (!requester.person) {
      reasons.push(`its groups (${listed(e.groups)}) need the directory, and ${SECTION} is not configured`);
    } else {
      const memberOf = await requester.person.groups();
      const match = e.groups.find((g) => memberOf.has(groupKey(g)));
      if (match !== undefined) return { entitled: true, by: { rule: 'groups', value: match } };
      reasons.push(`not a member, directly or nested, of any of ${listed(e.groups)}`);
    }
  }
  return { entitled: false, failed, reasons };
}

/**
 * Entitlements as order placement reads them, kept per database and keyed by the row's version (`xmin`), which any
 * change to the row moves on. Placement's type (and so the version asked for) may itself come from a cache, so a
 * cached list can be older than the row; both directions stay correct without a round trip in the common case:
 * - an admission on an old list reaches `provisio_place_order`, which refuses (PV001) a type whose version moved
 *   since it was read; placement then reads the type afresh, and the list of its new version with it;
 * - a refusal never reaches that check, so `assertEntitled` re-reads the list before refusing (`fresh`), and
 *   decides again when the row has changed. Refusals are the rare path; they pay the round trip.
 */
class EntitlementCache {
  static readonly MAX_ENTRIES = 500;
  readonly #byVersion = new Map<string, Entitlements>();

  /** The list of the type at `version` (from the cache when held), or the row's current one with `fresh`. */
  async get(q: Queryable, typeId: number, version: string, fresh = false): Promise<{ version: string; entitlements: Entitlements } | undefined> {
    const cached = fresh ? undefined : this.#byVersion.get(`${typeId}:${version}`);
    if (cached) return { version, entitlements: cached };
    const found = await selectEntitlements(q, typeId);
    if (!found) return undefined;
    if (this.#byVersion.size >= EntitlementCache.MAX_ENTRIES) this.#byVersion.clear();
    this.#byVersion.set(`${typeId}:${found.version}`, found.entitlements);
    return found;
  }
}

const caches = new WeakMap<Queryable, EntitlementCache>();

/**
 * Refuses an order of asset type `type` (as order placement read it: id, version, name) that its entitlements do
 * not admit `requester` to. Throws NOT_ENTITLED (403) with the rules that failed and why, DIRECTORY_UNAVAILABLE (503)
 * when a group check needs a directory that does not answer.
 */
export async function assertEntitled(q: Queryable, type: { id: number; version: string; name: string }, requester: Requester): Promise<EntitlementGrant> {
  let cache = caches.get(q);
  if (!cache) caches.set(q, (cache = new EntitlementCache()));
  const id = Number(type.id);
  const held = await cache.get(q, id, type.version);
  // A type deleted since it was read: placement fails on the type itself (its version check), not here.
  if (!held) return { rule: 'everyone', value: null };
  let decision = await decideEntitlement(held.entitlements, requester);
  if (decision.entitled) return decision.by;
  const current = await cache.get(q, id, type.version, true);
  if (!current) return { rule: 'everyone', value: null };
  if (current.version !== held.version) decision = await decideEntitlement(current.entitlements, requester);
  if (decision.entitled) return decision.by;
  throw new CodedError(ErrorCode.NOT_ENTITLED, `${requester.email} may not order asset type '${type.name}': ${decision.reasons.join('; ')}`, {
    extra: { failed_rules: decision.failed },
  });
}
