/** Who is calling, once their credentials have been checked. */

export const ROLES = ['superadmin', 'admin', 'approver', 'auditor', 'helpdesk'] as const;
export type Role = (typeof ROLES)[number];

export const SCOPES = ['admin:*', 'admin:read', 'orders:write', 'webhook:in', 'hr:leaver', 'scim:read', 'scim:write', 'metrics:read'] as const;
export type Scope = (typeof SCOPES)[number];

export type Principal =
  | {
      kind: 'token';
      tokenId: number;
      name: string;
      scopes: Scope[];
      role: Role | null;
      /**
       * The one approver an `approver` token decides as, fixed at mint (lower-cased); null for every other role
       * and for approver tokens minted before the binding existed, which may then decide nothing.
       */
      approverEmail: string | null;
    }
  /** The legacy X-Admin-Key: a virtual superadmin holding every scope. */
  | { kind: 'admin_key'; scopes: Scope[]; role: 'superadmin' }
  /** A body signed with the shared webhook secret: may only deliver webhooks. */
  | { kind: 'hmac'; scopes: Scope[]; role: null }
  /** Microsoft Graph change notifications carrying the subscription's clientState: may only deliver them. */
  | { kind: 'graph_client_state'; scopes: Scope[]; role: null };

export const adminKeyPrincipal = (): Principal => ({ kind: 'admin_key', scopes: [...SCOPES], role: 'superadmin' });
export const hmacPrincipal = (scopes: Scope[]): Principal => ({ kind: 'hmac', scopes, role: null });
export const graphPrincipal = (scopes: Scope[]): Principal => ({ kind: 'graph_client_state', scopes, role: null });

/**
 * True when `held` grants `needed`. `admin:*` includes `admin:read` and nothing else: the webhook, HR, SCIM and
 * orders scopes are separate grants, so an admin token cannot mint itself a SCIM or HR credential.
 */
export function scopeGrants(held: readonly Scope[], needed: string): boolean {
  if (held.includes(needed as Scope)) return true;
  return needed === 'admin:read' && held.includes('admin:*');
}

/** The scopes of `wanted` that `held` does not grant, in the order asked: what a minter may not hand out. */
export function scopesNotHeld(held: readonly Scope[], wanted: readonly Scope[]): Scope[] {
  return wanted.filter((s) => !scopeGrants(held, s));
}

/**
 * The attribution written to audit rows, `<channel>:<credential>`:
 * `admin:token:<name>`, `admin:key`, `webhook:token:<name>`, `webhook:hmac`, …
 */
export function attribution(channel: string, p: Principal): string {
  switch (p.kind) {
    case 'token':
      return `${channel}:token:${p.name}`;
    case 'admin_key':
      return `${channel}:key`;
    case 'hmac':
      return `${channel}:hmac`;
    case 'graph_client_state':
      return `${channel}:client_state`;
  }
}

/**
 * Mint guard: superadmin may bind any role; admin any role but superadmin; the functional roles
 * (approver, auditor, helpdesk) only their own. A token without a role mints as an admin would.
 */
export function mayBindRole(creator: Role | null, wanted: Role | null): boolean {
  const effective: Role = creator ?? 'admin';
  if (wanted === null) return effective === 'superadmin' || effective === 'admin';
  if (effective === 'superadmin') return true;
  if (effective === 'admin') return wanted !== 'superadmin';
  return wanted === effective;
}
