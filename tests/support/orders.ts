import { createHmac } from 'node:crypto';
import type { Database } from '../../adapter';
import type { Scope } from '../../server/auth/principal';
import { mintToken } from '../../server/domain/tokens/api-tokens';

export interface AssetTypeSeed {
  name: string;
  assignment_model?: 'capacity_pooled' | 'personal';
  pool_size?: number | null;
  max_per_user?: number | null;
  requires_approval?: boolean;
  allow_user_lists?: boolean;
  attributes?: { key: string; type: string; required: boolean; help?: string }[];
}

/** Inserts an asset type straight into the table (the admin API has its own tests); returns its id. */
export async function seedAssetType(db: Database, s: AssetTypeSeed): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO asset_types (name, assignment_model, pool_size, max_per_user, requires_approval, allow_user_lists, attributes)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
    [
      s.name,
      s.assignment_model ?? 'personal',
      s.pool_size ?? null,
      s.max_per_user ?? null,
      s.requires_approval ?? false,
      s.allow_user_lists ?? false,
      JSON.stringify(s.attributes ?? []),
    ],
  );
  return rows[0]!.id;
}

/** Mints a bearer token the way the admin API does; returns the raw `xpat_` token. */
export async function mintTestToken(db: Database, name: string, scopes: Scope[]): Promise<string> {
  const { token } = await db.transaction((tx) =>
    mintToken(tx, { name, scopes, role: null, expiresAt: null }, { role: 'superadmin', triggeredBy: 'system:test' }),
  );
  return token;
}

/** `sha256=<hex>` of the raw body, as ServiceNow (and GitHub) send it. */
export function hubSignature(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

let refCounter = 1_000_000;
/** A fresh RITM number per call, unique within the test process. */
export function nextRitm(): string {
  refCounter += 1;
  return `RITM${refCounter}${process.pid}`;
}

/** A valid ServiceNow provision payload; fields overridden (or removed with `undefined`) by `over`. */
export function snowPayload(assetTypeName: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    servicenow_ref: nextRitm(),
    snow_req: 'REQ0009876',
    action: 'provision',
    user_email: 'jane.doe@example.com',
    user_name: 'Jane Doe',
    asset_type_name: assetTypeName,
    requested_from: '2026-06-13T00:00:00Z',
    requested_until: '2026-07-13T00:00:00Z',
  };
  const merged = { ...base, ...over };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  return merged;
}

/** Rows in a table matching a condition, for "nothing was written" assertions. */
export async function countRows(db: Database, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params);
  return rows[0]!.n;
}
