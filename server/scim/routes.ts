import type { Request } from 'express';
import { isRecord as isObj } from '../../adapter';
import type { RouteDeps, RouteModule } from '../routes/route-module';
import type { HandlerTable } from '../api/handler';
import { attribution, type Principal } from '../auth/principal';
import { processLeaverEvent } from '../domain/identity/leaver';
import { listOf, RESOURCE_TYPES, SCHEMAS, serviceProviderConfig } from './discovery';
import { notFound } from '../errors';
import { normalizeUser, project } from './model';
import { applyPatch, readOperations } from './patch';
import {
  createGroup, createUser, deleteGroup, deleteUser, getGroup, leaverBeforeDelete, getUser, listGroups, listResponse, listUsers, patchGroup, replaceGroup, saveUser,
  type Actor, type UserWrite,
} from './store';
import { listScimLogs } from './log';

const SCIM_JSON = { 'Content-Type': 'application/scim+json' };
type Obj = Record<string, unknown>;

const actor = (p: Principal | undefined, requestId: string | undefined, req?: Request): Actor => ({
  triggeredBy: p ? attribution('scim', p) : 'scim:anonymous',
  requestId,
  ifMatch: req?.header('if-match'),
});

/** The resource's headers: SCIM JSON and its version as the ETag (RFC 7644 §3.14). */
const resourceHeaders = (r: Obj): Record<string, string> => ({ ...SCIM_JSON, ETag: String((r['meta'] as Obj)['version']) });


/** True when the request body itself says active false (boolean or Entra's "False"), whatever else it changes. */
function saysInactive(value: unknown): boolean {
  return value === false || (typeof value === 'string' && value.trim().toLowerCase() === 'false');
}
function patchSetsInactive(ops: ReturnType<typeof readOperations>): boolean {
  let inactive = false;
  for (const op of ops) {
    if (op.op === 'remove') continue;
    if (op.path && /^(urn:ietf:params:scim:schemas:core:2\.0:User:)?active$/i.test(op.path)) inactive = saysInactive(op.value);
    else if (!op.path && isObj(op.value)) {
      for (const [k, v] of Object.entries(op.value)) if (/^(urn:ietf:params:scim:schemas:core:2\.0:User:)?active$/i.test(k)) inactive = saysInactive(v);
    }
  }
  return inactive;
}

/** Runs the leaver flow after the SCIM change is committed; the dedupe key makes retries and repeats harmless. */
async function leave(deps: RouteDeps, w: UserWrite['leaver'], a: Actor): Promise<void> {
  if (!w) return;
  await processLeaverEvent(
    deps.leaver,
    {
      source: 'scim',
      identity: w.identity,
      triggeredBy: a.triggeredBy,
      dedupeKey: w.dedupeKey,
      reason: 'SCIM deactivation',
      ...(a.requestId ? { requestId: a.requestId } : {}),
    },
  );
}

export const scimHandlers: RouteModule = (deps): HandlerTable => ({
  scimGetServiceProviderConfig: async () => ({ status: 200, body: serviceProviderConfig(), headers: SCIM_JSON }),
  scimListResourceTypes: async () => ({ status: 200, body: listOf(RESOURCE_TYPES), headers: SCIM_JSON }),
  scimGetResourceType: async ({ path }) => {
    const rt = RESOURCE_TYPES.find((r) => String(r['id']).toLowerCase() === path.name.toLowerCase());
    if (!rt) throw notFound(`resource type ${path.name} not found`);
    return { status: 200, body: rt, headers: SCIM_JSON };
  },
  scimListSchemas: async () => ({ status: 200, body: listOf(SCHEMAS), headers: SCIM_JSON }),
  scimGetSchema: async ({ path }) => {
    const s = SCHEMAS.find((r) => String(r['id']).toLowerCase() === path.uri.toLowerCase());
    if (!s) throw notFound(`schema ${path.uri} not found`);
    return { status: 200, body: s, headers: SCIM_JSON };
  },

  scimListUsers: async ({ query }) => {
    const r = await listUsers(deps.db, query);
    const resources = r.resources.map((u) => project(u, query.attributes, query.excludedAttributes));
    return { status: 200, body: listResponse(resources, r.total, r.startIndex), headers: SCIM_JSON };
  },
  scimCreateUser: async ({ body, principal, requestId }) => {
    const a = actor(principal, requestId);
    // One statement (the user, its audit row, the resource read back): no transaction around it needed.
    const created = await createUser(deps.db, body, a);
    return { status: 201, body: created, headers: { ...resourceHeaders(created), Location: String((created['meta'] as Obj)['location']) } };
  },
  scimGetUser: async ({ path, query }) => {
    const u = await getUser(deps.db, path.id);
    return { status: 200, body: project(u, query.attributes, query.excludedAttributes), headers: resourceHeaders(u) };
  },
  scimReplaceUser: async ({ path, body, principal, requestId, req }) => {
    const a = actor(principal, requestId, req);
    const w = await deps.db.transaction((tx) =>
      saveUser(
        tx,
        path.id,
        // PUT keeps `active` when the body leaves it out, so a partial echo never reactivates a leaver
        (cur) => normalizeUser(body, { defaultActive: cur.active }),
        () => isObj(body) && saysInactive(Object.entries(body).find(([k]) => k.toLowerCase() === 'active')?.[1]),
        a,
      ),
    );
    await leave(deps, w.leaver, a);
    return { status: 200, body: w.resource, headers: resourceHeaders(w.resource) };
  },
  scimPatchUser: async ({ path, body, principal, requestId, req }) => {
    const a = actor(principal, requestId, req);
    const ops = readOperations(body);
    const inactive = patchSetsInactive(ops);
    const w = await deps.db.transaction((tx) =>
      saveUser(tx, path.id, (cur) => normalizeUser(applyPatch(cur, ops), { defaultActive: cur.active }), () => inactive, a),
    );
    await leave(deps, w.leaver, a);
    return { status: 200, body: w.resource, headers: resourceHeaders(w.resource) };
  },
  scimDeleteUser: async ({ path, principal, requestId, req }) => {
    const a = actor(principal, requestId, req);
    await leave(deps, await leaverBeforeDelete(deps.db, path.id, a.ifMatch), a);
    await deps.db.transaction((tx) => deleteUser(tx, path.id, a));
    return { status: 204, body: undefined as never };
  },

  scimListGroups: async ({ query }) => {
    const withMembers = !(query.excludedAttributes ?? '').split(',').some((s) => s.trim().toLowerCase() === 'members');
    const r = await listGroups(deps.db, { ...query, withMembers });
    const resources = r.resources.map((g) => project(g, query.attributes, query.excludedAttributes));
    return { status: 200, body: listResponse(resources, r.total, r.startIndex), headers: SCIM_JSON };
  },
  scimCreateGroup: async ({ body, principal, requestId }) => {
    const created = await deps.db.transaction((tx) => createGroup(tx, body, actor(principal, requestId)));
    return { status: 201, body: created, headers: { ...resourceHeaders(created), Location: String((created['meta'] as Obj)['location']) } };
  },
  scimGetGroup: async ({ path, query }) => {
    const g = await getGroup(deps.db, path.id);
    return { status: 200, body: project(g, query.attributes, query.excludedAttributes), headers: resourceHeaders(g) };
  },
  scimReplaceGroup: async ({ path, body, principal, requestId, req }) => {
    const g = await deps.db.transaction((tx) => replaceGroup(tx, path.id, body, actor(principal, requestId, req)));
    return { status: 200, body: g, headers: resourceHeaders(g) };
  },
  scimPatchGroup: async ({ path, body, principal, requestId, req }) => {
    const ops = readOperations(body);
    const { version } = await deps.db.transaction((tx) => patchGroup(tx, path.id, ops, actor(principal, requestId, req)));
    return { status: 204, body: undefined as never, headers: { ETag: `W/"${version}"` } };
  },
  scimDeleteGroup: async ({ path, principal, requestId, req }) => {
    await deps.db.transaction((tx) => deleteGroup(tx, path.id, actor(principal, requestId, req)));
    return { status: 204, body: undefined as never };
  },

  listScimLogs: async ({ query }) => ({ status: 200, body: await listScimLogs(deps.db, query) }),
});
