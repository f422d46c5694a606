import type { RouteModule } from './route-module';
import type { ApiToken } from '../api/gen/types.gen';
import type { HandlerInput } from '../api/handler';
import type { OperationId } from '../api/operations.gen';
import { attribution } from '../auth/principal';
import { tokensChanged } from '../auth/token-cache';
import { getToken, listTokens, mintToken, revokeToken, type ApiTokenView } from '../domain/tokens/api-tokens';
import { unauthenticated } from '../errors';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The API form of a token: never the hash, never the raw token. */
export function toApiToken(t: ApiTokenView): ApiToken {
  return {
    id: t.id,
    name: t.name,
    token_prefix: t.token_prefix,
    scopes: t.scopes,
    role: t.role,
    approver_email: t.approver_email,
    status: t.status,
    created_by: t.created_by,
    created_at: t.created_at.toISOString(),
    expires_at: iso(t.expires_at),
    revoked_at: iso(t.revoked_at),
    last_used_at: iso(t.last_used_at),
  };
}

/** The caller of an authenticated admin operation, as audit rows and the mint guard (role and scopes) see it. */
export function adminActor<O extends OperationId>(input: HandlerInput<O>) {
  const p = input.principal;
  if (!p) throw unauthenticated('credentials required');
  return { role: p.role, scopes: p.scopes, triggeredBy: attribution('admin', p), requestId: input.requestId };
}

export const apiTokenHandlers: RouteModule = ({ db }) => ({
  listApiTokens: async ({ query }) => {
    const limit = query.limit ?? 50;
    const offset = query.offset ?? 0;
    const page = await listTokens(db, { status: query.status, limit, offset });
    return { status: 200, body: { items: page.items.map(toApiToken), total: page.total, limit, offset } };
  },

  createApiToken: async (input) => {
    const actor = adminActor(input);
    const { body } = input;
    const { row, token } = await db.transaction((tx) =>
      mintToken(
        tx,
        {
          name: body.name,
          scopes: body.scopes,
          role: body.role ?? null,
          expiresAt: body.expires_at ? new Date(body.expires_at) : null,
          approverEmail: body.approver_email,
        },
        actor,
      ),
    );
    return { status: 201, body: { ...toApiToken({ ...row, status: 'active' }), token } };
  },

  getApiToken: async ({ path }) => ({ status: 200, body: toApiToken(await getToken(db, Number(path.id))) }),

  revokeApiToken: async (input) => {
    const actor = adminActor(input);
    const revoked = await db.transaction((tx) => revokeToken(tx, Number(input.path.id), actor));
    // Committed: this process's token caches stop trusting the token now, before the response, not when the
    // database's notification arrives.
    tokensChanged();
    return { status: 200, body: toApiToken(revoked) };
  },
});
