import { isEnvelope } from '../../adapter';
import { integrationTasks, type TaskInput } from '../../integration-model';
import type { RouteModule } from '../app';
import { AppError, ErrorCode } from '../errors';
import { writeAudit } from '../domain/audit';
import {
  createIntegrationModel,
  deleteIntegrationModel,
  listIntegrationModels,
  parseModelUpload,
  readIntegrationModel,
} from '../domain/integration-models';
import { IntegrationRuntime } from '../domain/integration-runtime';
import {
  assertMayInvoke,
  cloneIntegration,
  createIntegration,
  deleteIntegration,
  grantIntegrationRole,
  listIntegrationRoles,
  listIntegrations,
  loadIntegration,
  readIntegration,
  recordHealth,
  redactedConfig,
  replaceIntegrationConfig,
  revokeIntegrationRole,
  setIntegrationLogLevel,
  updateIntegration,
} from '../domain/integrations';
import { adminActorOf } from './asset-types';

/**
 * `/admin/integration-models` and `/admin/integrations`. One runtime per app: it caches loaded models and one
 * client per integration.
 */
export const integrationHandlers: RouteModule = ({ db, logger }) => {
  const runtime = new IntegrationRuntime({ logger });

  return {
    listIntegrationModels: async () => ({ status: 200, body: { items: await listIntegrationModels(db) } }),

    createIntegrationModel: async (input) => {
      const actor = adminActorOf(input);
      const model = await parseModelUpload(input.body as Record<string, unknown>);
      await db.transaction((tx) => createIntegrationModel(tx, model, actor));
      return { status: 201, body: await readIntegrationModel(db, runtime.models, model.id) };
    },

    getIntegrationModel: async ({ path }) => ({ status: 200, body: await readIntegrationModel(db, runtime.models, path.modelId) }),

    deleteIntegrationModel: async (input) => {
      const actor = adminActorOf(input);
      await db.transaction((tx) => deleteIntegrationModel(tx, input.path.modelId, actor));
      return { status: 204, body: undefined };
    },

    listIntegrations: async () => ({ status: 200, body: { items: await listIntegrations(db) } }),

    createIntegration: async (input) => {
      const actor = adminActorOf(input);
      const model = await runtime.models.get(db, input.body.model_id);
      const view = await db.transaction(async (tx) => readIntegration(tx, await createIntegration(tx, model, input.body, actor)));
      return { status: 201, body: view };
    },

    getIntegration: async ({ path }) => ({ status: 200, body: await readIntegration(db, Number(path.id)) }),

    updateIntegration: async (input) => {
      const actor = adminActorOf(input);
      const current = await loadIntegration(db, Number(input.path.id));
      const model = await runtime.models.get(db, current.model_id);
      const view = await db.transaction(async (tx) => {
        await updateIntegration(tx, model, Number(input.path.id), input.body, actor);
        return readIntegration(tx, Number(input.path.id));
      });
      runtime.setLogLevel(view.id, view.log_level);
      return { status: 200, body: view };
    },

    deleteIntegration: async (input) => {
      const actor = adminActorOf(input);
      await db.transaction((tx) => deleteIntegration(tx, Number(input.path.id), actor));
      runtime.forget(Number(input.path.id));
      return { status: 204, body: undefined };
    },

    cloneIntegration: async (input) => {
      const actor = adminActorOf(input);
      const source = await loadIntegration(db, Number(input.path.id));
      const model = await runtime.models.get(db, source.model_id);
      const view = await db.transaction(async (tx) => readIntegration(tx, await cloneIntegration(tx, model, Number(input.path.id), input.body.name, actor)));
      return { status: 201, body: view };
    },

    getIntegrationConfig: async ({ path }) => ({ status: 200, body: redactedConfig(await loadIntegration(db, Number(path.id))) }),

    putIntegrationConfig: async (input) => {
      const actor = adminActorOf(input);
      const after = await db.transaction(async (tx) => {
        await replaceIntegrationConfig(tx, Number(input.path.id), input.body, actor);
        return loadIntegration(tx, Number(input.path.id));
      });
      runtime.setLogLevel(after.id, after.log_level);
      return { status: 200, body: redactedConfig(after) };
    },

    setIntegrationLogLevel: async (input) => {
      const actor = adminActorOf(input);
      await db.transaction((tx) => setIntegrationLogLevel(tx, Number(input.path.id), input.body.level, actor));
      runtime.setLogLevel(Number(input.path.id), input.body.level);
      return { status: 200, body: { level: input.body.level } };
    },

    listIntegrationTasks: async ({ path }) => {
      const integration = await loadIntegration(db, Number(path.id));
      const model = await runtime.modelOf(db, integration);
      // Task schemas are always objects (integration-model builds them so); the spec types them as such.
      const items = integrationTasks(model, integration.name).map((task) => ({
        ...task,
        inputSchema: task.inputSchema as Record<string, unknown>,
        outputSchema: task.outputSchema as Record<string, unknown>,
      }));
      return { status: 200, body: { items } };
    },

    invokeIntegrationTask: async (input) => {
      const actor = adminActorOf(input);
      const integration = await loadIntegration(db, Number(input.path.id));
      const model = await runtime.modelOf(db, integration);
      const op = model.operations.find((o) => o.operationId === input.path.operationId);
      // Authorisation needs the verb; an unknown operation falls through to the runtime's 404.
      if (op) await assertMayInvoke(db, input.principal, integration, op.method);
      const result = await runtime.invoke(db, integration, input.path.operationId, input.body as TaskInput);
      await db.transaction((tx) =>
        writeAudit(tx, {
          entity: 'integration',
          entityId: integration.id,
          action: 'invoke',
          after: {
            operation_id: input.path.operationId,
            stub: integration.stub_mode,
            ...(isEnvelope(result) ? { status: result.status, ok: result.ok } : { ok: false, call_made: false }),
          },
          triggeredBy: actor.triggeredBy,
          requestId: actor.requestId,
        }),
      );
      if (!isEnvelope(result)) throw new AppError(ErrorCode.INTEGRATION_CALL_FAILED, 502, result);
      return { status: 200, body: result };
    },

    checkIntegrationHealth: async ({ path }) => {
      const integration = await loadIntegration(db, Number(path.id));
      const result = await runtime.checkHealth(db, integration);
      return { status: 200, body: await recordHealth(db, integration.id, result) };
    },

    listIntegrationRoles: async ({ path }) => ({ status: 200, body: { items: await listIntegrationRoles(db, Number(path.id)) } }),

    grantIntegrationRole: async (input) => {
      const actor = adminActorOf(input);
      const role = await db.transaction((tx) => grantIntegrationRole(tx, Number(input.path.id), input.path.role, Number(input.path.tokenId), actor));
      return { status: 200, body: role };
    },

    revokeIntegrationRole: async (input) => {
      const actor = adminActorOf(input);
      await db.transaction((tx) => revokeIntegrationRole(tx, Number(input.path.id), input.path.role, Number(input.path.tokenId), actor));
      return { status: 204, body: undefined };
    },
  };
};
