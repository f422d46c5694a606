import { writeAudit, type Database } from '../../../adapter';
import type * as Api from '../../api/gen/types.gen';
import { CodedError, ErrorCode } from '../../errors';
import { normalEmail } from './store';

/*
 * Separation of duties, for approving (a decline grants nothing, so it is never refused by these rules): nobody
 * approves their own order, and whoever last configured an asset type does not approve its orders (they could
 * have made themselves, or a friend, its approver, or loosened what it grants).
 *
 * Who is who. An approval is made as a person, by email: an approver token's binding, the `approver_email` an admin
 * names, a signed link's approver. That email is compared with the order's requester (`own_order`). A configurer is
 * an admin credential, recorded on the asset type as its audit attribution (`admin:token:<name>`, `admin:key`); an
 * admin credential carries no email (token names cannot hold one, and `approver_email` binds approver tokens only),
 * so it is compared as a credential: the named token that configured the type may not approve its orders, whatever
 * approver it names (`configured_asset_type`). The legacy admin key is one shared break-glass credential that names
 * no person: it is not barred as a configurer. Linking an admin token to the person's approver email would need a
 * person binding on every token; until then the same human holding an admin token and an approver token is two
 * credentials to this service.
 */

export type SodRule = NonNullable<Api.Problem['rule']>;
export const SOD_RULES = ['own_order', 'configured_asset_type'] as const satisfies readonly SodRule[];

/** The named token of an attribution (`<channel>:token:<name>` → `token:<name>`); undefined for anything else. */
export function credentialOf(attribution: string | null | undefined): string | undefined {
  const m = /^[^:]+:(token:.+)$/.exec(attribution ?? '');
  return m ? m[1] : undefined;
}

/** The people an approval may not be routed to, with the rule that bars each: the requester. */
export function barredApprovers(requester: string): Map<string, SodRule> {
  return new Map([[requester.toLowerCase(), 'own_order']]);
}

/** Who approves: the credential's attribution and the approver email the approval is made as, if any. */
export interface SodDecider {
  triggeredBy: string;
  actingAs?: string | undefined;
}

/**
 * The rule an approval of an order of `requester`, of a type last configured by `lastConfiguredBy`, would break;
 * undefined when none. `own_order` is checked first.
 */
export function sodViolation(d: SodDecider, order: { requester: string; lastConfiguredBy: string | null }): SodRule | undefined {
  const person = normalEmail(d.actingAs);
  if (person && person === order.requester.toLowerCase()) return 'own_order';
  const configurer = credentialOf(order.lastConfiguredBy);
  if (configurer && configurer === credentialOf(d.triggeredBy)) return 'configured_asset_type';
  return undefined;
}

/** An approval refused by separation of duties: 403 SEPARATION_OF_DUTIES naming the rule (`rule`). */
export class SeparationOfDutiesError extends CodedError<typeof ErrorCode.SEPARATION_OF_DUTIES> {
  readonly rule: SodRule;
  constructor(rule: SodRule, detail: string) {
    super(ErrorCode.SEPARATION_OF_DUTIES, detail, { extra: { rule } });
    this.rule = rule;
  }
}

export function separationOfDuties(rule: SodRule, orderId: number, who: string): SeparationOfDutiesError {
  const why =
    rule === 'own_order'
      ? `${who} requested order ${orderId}; nobody approves their own order`
      : `${who} last configured the asset type of order ${orderId}; its orders need someone else's approval`;
  return new SeparationOfDutiesError(rule, `separation of duties (${rule}): ${why}`);
}

/**
 * Audits a refusal in a transaction of its own: the decision's transaction is rolled back with the refusal, and the
 * record of the attempt must outlive it. Entity `order`, action `approval_refused`.
 */
export async function auditRefusal(
  db: Database,
  r: { orderId: number; approvalId: number | null; rule: SodRule; decision: string; actingAs: string | undefined; triggeredBy: string; requestId?: string | undefined },
): Promise<void> {
  await db.transaction((tx) =>
    writeAudit(tx, {
      entity: 'order',
      entityId: r.orderId,
      action: 'approval_refused',
      after: { rule: r.rule, decision: r.decision, approval_id: r.approvalId, acting_as: r.actingAs ?? null },
      triggeredBy: r.triggeredBy,
      requestId: r.requestId,
    }),
  );
}
