import { createHash } from 'node:crypto';
import {
  createScriptModuleVersion,
  getScriptModule,
  listScriptModules,
  listScriptModuleVersions,
  type ScriptModule,
} from '../../workflows';
import type { RouteModule } from './route-module';
import { writeAudit } from '../../adapter';
import { notFound } from '../errors';
import { adminActorOf } from './asset-types';

type VersionInfo = Omit<ScriptModule, 'body'>;

/** The API's snake_case shape of a version's metadata. */
function info(m: VersionInfo) {
  return {
    name: m.name,
    version: m.version,
    category: m.category,
    platform: m.platform,
    runtime: m.runtime,
    description: m.description,
    created_at: m.createdAt,
    created_by: m.createdBy,
  };
}

const withBody = (m: ScriptModule) => ({ ...info(m), body: m.body });

export const scriptModuleHandlers: RouteModule = ({ db }) => ({
  listScriptModules: async ({ query }) => {
    const items = await listScriptModules(db, query.category !== undefined ? { category: query.category } : {});
    return { status: 200, body: { items: items.map((m) => ({ ...info(m), versions: m.versions })) } };
  },

  createScriptModuleVersion: async (input) => {
    const actor = adminActorOf(input);
    const b = input.body;
    const saved = await db.transaction(async (tx) => {
      const m = await createScriptModuleVersion(tx, {
        name: b.name,
        runtime: b.runtime,
        body: b.body,
        createdBy: actor.triggeredBy,
        ...(b.category !== undefined ? { category: b.category } : {}),
        ...(b.platform !== undefined ? { platform: b.platform } : {}),
        ...(b.description !== undefined ? { description: b.description } : {}),
      });
      // The body by digest: a script may be large, and the version row keeps it anyway.
      const after = { ...info(m), body_sha256: createHash('sha256').update(m.body).digest('hex'), body_bytes: Buffer.byteLength(m.body) };
      await writeAudit(tx, { entity: 'script_module', entityId: `${m.name}@${m.version}`, action: 'create_version', after, ...actor });
      return m;
    });
    return { status: 201, body: withBody(saved) };
  },

  getScriptModule: async ({ path }) => {
    const latest = await getScriptModule(db, path.name);
    if (!latest) throw notFound(`script module '${path.name}' does not exist`);
    const versions = await listScriptModuleVersions(db, path.name);
    return { status: 200, body: { ...withBody(latest), versions: versions.map(info) } };
  },

  getScriptModuleVersion: async ({ path }) => {
    const version = Number(path.version);
    const m = await getScriptModule(db, path.name, version);
    if (!m) throw notFound(`script module '${path.name}' has no version ${version}`);
    return { status: 200, body: withBody(m) };
  },
});
