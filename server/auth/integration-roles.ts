import { forbidden, type Queryable } from '../../adapter';
import { integrationRoleName, tokenHoldsIntegrationRole, type IntegrationRecord } from '../../integration-model';
import type { Principal } from './principal';

/**
 * Whether `principal` may invoke a task of the integration with HTTP verb `method`: the X-Admin-Key and the
 * superadmin role always may; a token needs the integration's admin role or the role for that verb.
 * @throws CodedError FORBIDDEN naming the roles that would do.
 */
export async function assertMayInvoke(
  q: Queryable,
  principal: Principal | undefined,
  integration: Pick<IntegrationRecord, 'id' | 'name'>,
  method: string,
): Promise<void> {
  if (principal?.kind === 'admin_key' || principal?.role === 'superadmin') return;
  if (principal?.kind === 'token' && (await tokenHoldsIntegrationRole(q, principal.tokenId, integration.id, [method]))) return;
  throw forbidden(
    `invoking this task requires role '${integrationRoleName(integration.name, method)}' or '${integrationRoleName(integration.name, 'admin')}'`,
  );
}
