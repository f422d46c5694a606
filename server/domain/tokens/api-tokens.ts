import { PgErrorCode, QueueName, sqlState, type Database, type JobQueue, type Logger, type Queryable } from '../../../adapter';
import { badRequest, conflict, forbidden, invalidField, notFound } from '../../errors';
import { mayBindRole, ROLES, SCOPES, scopesNotHeld, type Role, type Scope } from '../../auth/principal';
import { normalEmail } from '../approvals/store';
import { writeAudit } from '../../../adapter';
import { readSetting } from '../settings/settings';
import { queryPage, Where, type PageRequest } from '../paging';
import type * as Api from '../../api/gen/types.gen';
import type { Assert, Same, Stored } from '../../api/spec-types';
import { generateToken, hashSecret } from './token-hash';

export interface ApiTokenRow {
  id: number;
  name: string;
  token_prefix: string;
  scopes: Scope[];
  role: Role | null;
  /** The approver an `approver` token decides as (lower-cased); null for other roles and legacy approver tokens. */
  approver_email: string | null;
  created_by: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

/** What authenticating a request needs of a live token. */
export type LiveToken = Pick<ApiTokenRow, 'id' | 'name' | 'scopes' | 'role' | 'approver_email' | 'last_used_at' | 'expires_at'>;

/**
 * The token with this hash, when it is neither revoked nor expired, with `api_token_version` read by the same
 * statement (one snapshot): what the verified-token cache (server/auth/token-cache.ts) checks the answer against.
 */
export async function findLiveToken(q: Queryable, tokenHash: string): Promise<(LiveToken & { token_version: number }) | undefined> {
  const { rows } = await q.query<LiveToken & { token_version: number }>(
    `SELECT id, name, scopes, role, approver_email, last_used_at, expires_at, (SELECT version FROM api_token_version) AS token_version
       FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
    [tokenHash],
  );
  return rows[0];
}

/** Records that the token was just used (`last_used_at`, informational). */
export async function touchToken(q: Queryable, id: number): Promise<void> {
  await q.query('UPDATE api_tokens SET last_used_at = now() WHERE id = $1', [id]);
}

export interface MintTokenInput {
  name: string;
  scopes: Scope[];
  role: Role | null;
  expiresAt: Date | null;
  /** Required when `role` is `approver`, refused otherwise. */
  approverEmail?: string | null | undefined;
}

/**
 * Who mints. A caller of the API passes the role and the scopes its credential holds; the local operator (the
 * CLI, scripts, test fixtures) passes role `superadmin` alone and holds every scope. The type makes an API
 * caller with any other role name its scopes, so it cannot be checked on its role alone by mistake.
 */
export type Minter = { triggeredBy: string; requestId?: string | undefined } & (
  | { role: Role | null; scopes: readonly Scope[] }
  | { role: 'superadmin'; scopes?: undefined }
);

const TOKEN_COLUMNS = 'id, name, token_prefix, scopes, role, approver_email, created_by, created_at, expires_at, revoked_at, last_used_at';
const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const describeRole = (role: Role | null) => (role ? `a credential with role '${role}'` : 'a role-less credential');

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** The approver binding of a token of `role`: required of approver tokens, refused on any other. */
function approverBinding(role: Role | null, email: string | null | undefined): string | null {
  const bound = normalEmail(email);
  if (role === 'approver') {
    if (!bound) throw invalidField('/body/approver_email', "is required when role is 'approver'");
    if (!EMAIL.test(bound)) throw invalidField('/body/approver_email', 'must be an email address');
    return bound;
  }
  if (email !== undefined && email !== null) {
    throw invalidField('/body/approver_email', `may only be set when role is 'approver' (role is '${role ?? 'none'}')`);
  }
  return null;
}

/**
 * Mints a token and audits it; returns the row and the raw token, which exists nowhere else afterwards.
 * Throws FORBIDDEN when the minter may not bind `input.role` (the mint guard) or does not hold every scope in
 * `input.scopes` (the body lists them in `missing_scopes`); CONFLICT when a live token already has the name;
 * VALIDATION_FAILED for a name that is not one plain word, an expiry in the past, or an `approver_email` missing
 * on an approver token or present on any other.
 */
export async function mintToken(tx: Queryable, input: MintTokenInput, creator: Minter): Promise<{ row: ApiTokenRow; token: string }> {
  // The name is what audit rows attribute to (`webhook:token:<name>`): keep it one plain word.
  if (!TOKEN_NAME.test(input.name)) {
    throw invalidField('/body/name', 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
  const approverEmail = approverBinding(input.role, input.approverEmail);
  if (!mayBindRole(creator.role, input.role)) {
    throw forbidden(`${describeRole(creator.role)} may not mint a token with role '${input.role ?? 'none'}'`);
  }
  // Nobody grants what they do not hold: without this an `admin:*` token mints itself `scim:write` or
  // `hr:leaver` and, through the new token, deactivates users it could not touch itself.
  const missing = creator.scopes ? scopesNotHeld(creator.scopes, input.scopes) : [];
  if (missing.length > 0) {
    throw forbidden(`the caller may not grant scopes it does not hold: ${missing.join(', ')}`, { missing_scopes: missing });
  }
  if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) {
    throw invalidField('/body/expires_at', 'must be in the future');
  }
  const token = generateToken();
  let row: ApiTokenRow | undefined;
  try {
    const res = await tx.query<ApiTokenRow>(
      `INSERT INTO api_tokens (name, token_hash, token_prefix, scopes, role, approver_email, created_by, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${TOKEN_COLUMNS}`,
      [input.name, hashSecret(token), token.slice(0, 12), input.scopes, input.role, approverEmail, creator.triggeredBy, input.expiresAt],
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

/** `provisio token create`: parses the CLI flags and mints as the local operator (a superadmin holding every scope). */
export async function mintTokenFromCli(
  db: Database,
  flags: {
    name?: string | undefined;
    scopes?: string | undefined;
    role?: string | undefined;
    expiresAt?: string | undefined;
    approverEmail?: string | undefined;
  },
): Promise<string> {
  if (!flags.name) throw badRequest('--name is required');
  const scopes = (flags.scopes ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (scopes.length === 0) throw badRequest(`--scopes is required (any of ${SCOPES.join(', ')})`);
  const bad = scopes.find((s) => !SCOPES.includes(s as Scope));
  if (bad) throw badRequest(`unknown scope '${bad}' (known: ${SCOPES.join(', ')})`);
  if (flags.role && !ROLES.includes(flags.role as Role)) throw badRequest(`unknown role '${flags.role}' (known: ${ROLES.join(', ')})`);
  const expiresAt = flags.expiresAt ? new Date(flags.expiresAt) : null;
  if (expiresAt && Number.isNaN(expiresAt.getTime())) throw badRequest(`--expires-at is not an ISO 8601 date: ${flags.expiresAt}`);
  const role = (flags.role as Role | undefined) ?? null;
  // The domain's 422 names the API field; say it in the CLI's words instead.
  if (role === 'approver' && !flags.approverEmail?.trim()) throw badRequest('--approver-email is required with --role approver');
  if (role !== 'approver' && flags.approverEmail !== undefined) throw badRequest('--approver-email is only for --role approver');
  const { token } = await db.transaction((tx) =>
    mintToken(tx, { name: flags.name!, scopes: scopes as Scope[], role, expiresAt, approverEmail: flags.approverEmail ?? null }, {
      role: 'superadmin',
      scopes: SCOPES,
      triggeredBy: 'system:cli',
    }),
  );
  return token;
}

export type ApiTokenStatus = Api.ApiTokenStatus;

/** A token row with its derived status, as the admin API lists it (no hash, no raw token). */
export interface ApiTokenView extends ApiTokenRow {
  status: ApiTokenStatus;
}
// The row is written out for its column comments; it must stay the spec's ApiToken with Date timestamps.
type ApiTokenViewMatchesSpec = Assert<
  Same<{ [K in keyof ApiTokenView]: ApiTokenView[K] }, Stored<Api.ApiToken, 'created_at' | 'expires_at' | 'revoked_at' | 'last_used_at'>>
>;

// Status is derived in SQL so that the filter and the answer use the same clock (the database's).
const STATUS_SQL = `CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
  WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired' ELSE 'active' END`;
const STATUS_FILTER: Record<ApiTokenStatus, string> = {
  active: 'revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())',
  revoked: 'revoked_at IS NOT NULL',
  expired: 'revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= now()',
};

/** One page of tokens, newest first, and how many match `status` in all. */
export async function listTokens(
  q: Queryable,
  opts: { status?: ApiTokenStatus | undefined } & PageRequest,
): Promise<{ items: ApiTokenView[]; total: number }> {
  const where = new Where();
  if (opts.status) where.and(STATUS_FILTER[opts.status]);
  return queryPage<ApiTokenView>(
    q,
    { select: `SELECT ${TOKEN_COLUMNS}, ${STATUS_SQL} AS status FROM api_tokens`, countFrom: 'api_tokens', where, orderBy: 'created_at DESC, id DESC' },
    opts,
  );
}

/** One token. Throws NOT_FOUND. */
export async function getToken(q: Queryable, id: number): Promise<ApiTokenView> {
  const { rows } = await q.query<ApiTokenView>(`SELECT ${TOKEN_COLUMNS}, ${STATUS_SQL} AS status FROM api_tokens WHERE id = $1`, [id]);
  if (!rows[0]) throw notFound(`no API token with id ${id}`);
  return rows[0];
}

/**
 * Revokes a token (it is refused from the next request on) and audits it.
 * Throws NOT_FOUND; FORBIDDEN when the caller could not have minted a token of that role (an admin
 * does not revoke a superadmin's token); CONFLICT when it is already revoked.
 */
export async function revokeToken(
  tx: Queryable,
  id: number,
  actor: { role: Role | null; triggeredBy: string; requestId?: string | undefined },
): Promise<ApiTokenView> {
  const found = await tx.query<ApiTokenRow>(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE id = $1 FOR UPDATE`, [id]);
  const before = found.rows[0];
  if (!before) throw notFound(`no API token with id ${id}`);
  if (!mayBindRole(actor.role, before.role)) {
    throw forbidden(`${describeRole(actor.role)} may not revoke a token with role '${before.role ?? 'none'}'`);
  }
  if (before.revoked_at) throw conflict(`API token ${id} was already revoked at ${before.revoked_at.toISOString()}`);
  const { rows } = await tx.query<ApiTokenView>(
    `UPDATE api_tokens SET revoked_at = now() WHERE id = $1 RETURNING ${TOKEN_COLUMNS}, ${STATUS_SQL} AS status`,
    [id],
  );
  const after = rows[0]!;
  await writeAudit(tx, {
    entity: 'api_token',
    entityId: id,
    action: 'revoke',
    before: { ...before },
    after: { ...after, status: undefined },
    triggeredBy: actor.triggeredBy,
    requestId: actor.requestId,
  });
  return after;
}

/** `triggered_by` of the daily purge's audit rows. */
export const TOKEN_PURGE_TRIGGER = `system:${QueueName.API_TOKEN_PURGE}`;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The opt-in retention purge: hard-deletes tokens revoked or expired more than
 * `api_tokens.purge_after_days` days before `now`, one audit row per token, all in one transaction.
 * With the setting 0 or unset nothing is deleted. Returns the ids deleted.
 */
export async function purgeRetiredTokens(db: Database, now: Date = new Date()): Promise<{ purged: number[]; cutoff: Date | null }> {
  return db.transaction(async (tx) => {
    const days = await readSetting(tx, 'api_tokens', 'purge_after_days');
    if (typeof days !== 'number' || !Number.isInteger(days) || days <= 0) return { purged: [], cutoff: null };
    const cutoff = new Date(now.getTime() - days * DAY_MS);
    const { rows } = await tx.query<ApiTokenRow>(
      `DELETE FROM api_tokens WHERE revoked_at < $1 OR (expires_at IS NOT NULL AND expires_at < $1)
       RETURNING ${TOKEN_COLUMNS}`,
      [cutoff],
    );
    for (const row of rows) {
      await writeAudit(tx, {
        entity: 'api_token',
        entityId: row.id,
        action: 'purge',
        before: { ...row },
        after: null,
        triggeredBy: TOKEN_PURGE_TRIGGER,
      });
    }
    return { purged: rows.map((r) => r.id).sort((a, b) => a - b), cutoff };
  });
}

/** When the purge runs: daily at 03:17 UTC (off the hour, away from other nightly jobs). */
export const TOKEN_PURGE_CRON = '17 3 * * *';
export const TOKEN_PURGE_TZ = 'UTC';

/** Schedules the daily purge on the queue and works its jobs in this process. */
export async function registerTokenPurge(queue: JobQueue, db: Database, logger: Logger): Promise<void> {
  await queue.recurring(
    QueueName.API_TOKEN_PURGE,
    TOKEN_PURGE_CRON,
    async () => {
      const { purged, cutoff } = await purgeRetiredTokens(db);
      if (purged.length) logger.info('retired API tokens purged', { count: purged.length, ids: purged, cutoff: cutoff?.toISOString() });
    },
    { tz: TOKEN_PURGE_TZ },
  );
}
