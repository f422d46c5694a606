import type { Queryable } from '../../adapter';
import { badRequest, conflict, forbidden, invalidField } from '../errors';
import { mayBindRole, ROLES, SCOPES, type Role, type Scope } from '../auth/principal';
import { writeAudit } from './audit';
import { generateToken, hashSecret } from './token-hash';
import { PgErrorCode, sqlState, type Database } from '../../adapter';

export interface ApiTokenRow {
  id: number;
  name: string;
  token_prefix: string;
  scopes: Scope[];
  role: Role | null;
  created_by: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

export interface MintTokenInput {
  name: string;
  scopes: Scope[];
  role: Role | null;
  expiresAt: Date | null;
}

const TOKEN_COLUMNS = 'id, name, token_prefix, scopes, role, created_by, created_at, expires_at, revoked_at, last_used_at';

/**
 * Mints a token and audits it; returns the row and the raw token, which exists nowhere else afterwards.
 * Throws FORBIDDEN when `creatorRole` may not bind `input.role` (the mint guard), CONFLICT when a live
 * token already has the name, VALIDATION_FAILED for an expiry in the past.
 */
export async function mintToken(
  tx: Queryable,
  input: MintTokenInput,
  creator: { role: Role | null; triggeredBy: string; requestId?: string | undefined },
): Promise<{ row: ApiTokenRow; token: string }> {
  if (!mayBindRole(creator.role, input.role)) {
    throw forbidden(`a ${creator.role ?? 'role-less'} credential may not mint a token with role '${input.role ?? 'none'}'`);
  }
  if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) {
    throw invalidField('/body/expires_at', 'must be in the future');
  }
  const token = generateToken();
  let row: ApiTokenRow | undefined;
  try {
    const res = await tx.query<ApiTokenRow>(
      `INSERT INTO api_tokens (name, token_hash, token_prefix, scopes, role, created_by, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${TOKEN_COLUMNS}`,
      [input.name, hashSecret(token), token.slice(0, 12), input.scopes, input.role, creator.triggeredBy, input.expiresAt],
    );
    row = res.rows[0];
  } catch (err) {
    if (sqlState(err) === PgErrorCode.UNIQUE_VIOLATION) throw conflict(`an active API token named '${input.name}' already exists`);
    throw err;
  }
  if (!row) throw new Error('token insert returned no row');
  await writeAudit(tx, {
    entity: 'api_token',
    entityId: row.id,
    action: 'create',
    after: { ...row },
    triggeredBy: creator.triggeredBy,
    requestId: creator.requestId,
  });
  return { row, token };
}

/** `provisio token create`: parses the CLI flags and mints as the local operator (a superadmin). */
export async function mintTokenFromCli(
  db: Database,
  flags: { name?: string | undefined; scopes?: string | undefined; role?: string | undefined; expiresAt?: string | undefined },
): Promise<string> {
  if (!flags.name) throw badRequest('--name is required');
  const scopes = (flags.scopes ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (scopes.length === 0) throw badRequest(`--scopes is required (any of ${SCOPES.join(', ')})`);
  const bad = scopes.find((s) => !SCOPES.includes(s as Scope));
  if (bad) throw badRequest(`unknown scope '${bad}' (known: ${SCOPES.join(', ')})`);
  if (flags.role && !ROLES.includes(flags.role as Role)) throw badRequest(`unknown role '${flags.role}' (known: ${ROLES.join(', ')})`);
  const expiresAt = flags.expiresAt ? new Date(flags.expiresAt) : null;
  if (expiresAt && Number.isNaN(expiresAt.getTime())) throw badRequest(`--expires-at is not an ISO 8601 date: ${flags.expiresAt}`);
  const { token } = await db.transaction((tx) =>
    mintToken(tx, { name: flags.name!, scopes: scopes as Scope[], role: (flags.role as Role) ?? null, expiresAt }, {
      role: 'superadmin',
      triggeredBy: 'system:cli',
    }),
  );
  return token;
}
