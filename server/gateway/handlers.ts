import type { Database, Logger } from '../../adapter';
import type { Directory, DirectoryUser, GroupKey, UserKey, UserKeyKind } from '../../adapter';
import type { SpecHandlerInput, SpecHandlerTable } from '../api/handler';
import { attribution } from '../auth/principal';
import { writeAudit } from '../../adapter';
import type { GatewayGroupKeyKind, GatewayOperations, GatewayUser, GatewayUserKeyKind } from './operations';

export interface GatewayDeps {
  /** The API tokens live here; directory changes are audited here. */
  db: Database;
  logger: Logger;
  directory: Directory;
}

type Input<O extends keyof GatewayOperations> = SpecHandlerInput<GatewayOperations, O>;

// The API says `employeeID` (AD's spelling); the directory module calls the key kind `employeeId`.
const USER_KEY_KINDS: Record<GatewayUserKeyKind, UserKeyKind> = {
  sAMAccountName: 'sAMAccountName',
  userPrincipalName: 'userPrincipalName',
  mail: 'mail',
  employeeID: 'employeeId',
  dn: 'dn',
};

function userKey(value: string, by: GatewayUserKeyKind | undefined): UserKey {
  return { by: USER_KEY_KINDS[by ?? 'sAMAccountName'], value };
}

function groupKey(value: string, by: GatewayGroupKeyKind | undefined): GroupKey {
  return { by: by ?? 'sAMAccountName', value };
}

function toUser(u: DirectoryUser): GatewayUser {
  return {
    dn: u.dn,
    sam_account_name: u.sAMAccountName,
    user_principal_name: u.userPrincipalName,
    mail: u.mail,
    display_name: u.displayName,
    enabled: u.enabled,
    manager_dn: u.managerDn,
    attributes: { ...u.attributes },
  };
}

/** Audit rows for directory changes: who (the token) changed what, attributed `ad-gateway:token:<name>`. */
async function audit(
  deps: GatewayDeps,
  input: Input<keyof GatewayOperations>,
  entry: { entity: 'directory_user' | 'directory_group'; entityId: string; action: string; before?: Record<string, unknown>; after: Record<string, unknown> },
): Promise<void> {
  if (!input.principal) return;
  await writeAudit(deps.db, { ...entry, triggeredBy: attribution('ad-gateway', input.principal), requestId: input.requestId });
}

/** The gateway's operations: each one a call of the directory module, its result mapped to the spec's shape. */
export function gatewayHandlers(deps: GatewayDeps): SpecHandlerTable<GatewayOperations> {
  const d = deps.directory;

  const setEnabled = async (input: Input<'enableUser'> | Input<'disableUser'>, enabled: boolean) => {
    const r = await d.setAccountEnabled(userKey(input.path.key, input.query?.by), enabled);
    if (r.changed) {
      await audit(deps, input, { entity: 'directory_user', entityId: r.dn, action: enabled ? 'enable' : 'disable', before: { enabled: !enabled }, after: { enabled } });
    }
    return { status: 200 as const, body: { changed: r.changed, enabled: r.enabled, dn: r.dn } };
  };

  return {
    findUser: async ({ path, query }) => ({ status: 200, body: toUser(await d.findUser(userKey(path.key, query?.by))) }),

    findUserManager: async ({ path, query }) => {
      const m = await d.findManager(userKey(path.key, query?.by));
      return { status: 200, body: m ? { has_manager: true, manager: toUser(m) } : { has_manager: false } };
    },

    listUserGroups: async ({ path, query }) => {
      const nested = query?.nested !== false;
      const groups = await d.listGroups(userKey(path.key, query?.by), { nested });
      return {
        status: 200,
        body: { nested, groups: groups.map((g) => ({ dn: g.dn, sam_account_name: g.sAMAccountName, name: g.name, direct: g.direct })) },
      };
    },

    enableUser: (input) => setEnabled(input, true),
    disableUser: (input) => setEnabled(input, false),

    setUserAttributes: async (input) => {
      const values = input.body.attributes;
      const r = await d.setAttributes(userKey(input.path.key, input.query?.by), values);
      if (r.changed.length > 0) {
        const after = Object.fromEntries(r.changed.map((name) => [name, values[name] ?? null]));
        await audit(deps, input, { entity: 'directory_user', entityId: r.dn, action: 'set_attributes', after });
      }
      return { status: 200, body: { dn: r.dn, changed: r.changed } };
    },

    checkGroupMembership: async ({ path, query }) => {
      const m = await d.checkMembership(userKey(path.user, query?.by), groupKey(path.group, query?.group_by), { nested: query?.nested !== false });
      return { status: 200, body: { member: m.member, direct: m.direct } };
    },

    addGroupMember: async (input) => {
      const r = await d.addGroupMember(groupKey(input.path.group, input.query?.group_by), userKey(input.path.user, input.query?.by));
      if (r.changed) await audit(deps, input, { entity: 'directory_group', entityId: r.groupDn, action: 'add_member', after: { member_dn: r.memberDn } });
      return { status: 200, body: { changed: r.changed, reason: r.reason, group_dn: r.groupDn, member_dn: r.memberDn } };
    },

    removeGroupMember: async (input) => {
      const r = await d.removeGroupMember(groupKey(input.path.group, input.query?.group_by), userKey(input.path.user, input.query?.by));
      if (r.changed) await audit(deps, input, { entity: 'directory_group', entityId: r.groupDn, action: 'remove_member', before: { member_dn: r.memberDn }, after: { member_dn: null } });
      return { status: 200, body: { changed: r.changed, reason: r.reason, group_dn: r.groupDn, member_dn: r.memberDn } };
    },

    checkEligibleRequestor: async ({ path, query }) => {
      const e = await d.checkEligibleRequestor(userKey(path.user, query?.by), groupKey(path.group, query?.group_by));
      return { status: 200, body: { eligible: e.eligible, reason: e.reason, user_dn: e.userDn, group_dn: e.groupDn } };
    },

    testDirectoryConnection: async () => {
      const r = await d.testConnection();
      return { status: 200, body: { status: 'ok', default_naming_context: r.defaultNamingContext } };
    },
  };
}
