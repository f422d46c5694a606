import { badRequest, conflict, integrationCallFailed, isEnvelope, writeAudit, type IntegrationCallResult } from '../../adapter';
import {
  cloneIntegration,
  consumeOAuthState,
  createIntegration,
  createIntegrationModel,
  createOAuthState,
  deleteIntegration,
  deleteIntegrationModel,
  grantIntegrationRole,
  integrationTasks,
  listIntegrationModels,
  listIntegrationRoles,
  listIntegrations,
  loadIntegration,
  parseModelUpload,
  readIntegration,
  readIntegrationModel,
  redactedConfig,
  replaceIntegrationConfig,
  revokeIntegrationRole,
  setIntegrationLogLevel,
  storeHealthResult,
  storeOAuthTokens,
  updateIntegration,
  type TaskInput,
} from '../../integration-model';
import type { RouteModule } from './route-module';
import { assertMayInvoke } from '../auth/integration-roles';
import { adminActorOf } from './asset-types';
import { loadSampleWorkflows, SAMPLE_WORKFLOWS_DIR } from '../domain/runbooks/workflow-runtime';

/**
 * `/admin/integration-models` and `/admin/integrations`, on the process's one integration runtime (it caches loaded
 * models and one client per integration, shared with the workflow engine).
 */
export const integrationHandlers: RouteModule = ({ db, logger, integrations: runtime, workflowEngine }, config) => {
  // DEMO=1: a sample runbook that waited for the integrations it calls loads as soon as they exist (by create,
  // rename or clone), not at the next start. Awaited, so the workflows are there when the 201/200 arrives; a sample
  // that fails to load is logged and never fails the integration change itself.
  const loadWaitingSamples = async (): Promise<void> => {
    if (!config.demo || !workflowEngine) return;
    await loadSampleWorkflows(workflowEngine, SAMPLE_WORKFLOWS_DIR, logger, { integrationExists: async (n) => (await runtime.resolve(n)) !== undefined }).catch((e: unknown) => {
      logger.error('sample workflows could not be loaded', { error: e instanceof Error ? e.message : String(e) });
    });
  };

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
      await loadWaitingSamples();
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
      if (input.body.name !== undefined && input.body.name !== current.name) await loadWaitingSamples();
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
      await loadWaitingSamples();
      return { status: 201, body: view };
    },

    getIntegrationConfig: async ({ path }) => ({ status: 200, body: redactedConfig(await loadIntegration(db, Number(path.id))) }),

    putIntegrationConfig: async (input) => {
      const actor = adminActorOf(input);
      const current = await loadIntegration(db, Number(input.path.id));
      const model = await runtime.models.get(db, current.model_id);
      const after = await db.transaction(async (tx) => {
        await replaceIntegrationConfig(tx, Number(input.path.id), input.body, actor, model);
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
      const model = await runtime.modelOf(integration);
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
      const model = await runtime.modelOf(integration);
      const op = model.operations.find((o) => o.operationId === input.path.operationId);
      // Authorisation needs the verb; an unknown operation falls through to the runtime's 404.
      if (op) await assertMayInvoke(db, input.principal, integration, op.method);
      const result = await runtime.invoke(integration, input.path.operationId, input.body as TaskInput);
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
      if (!isEnvelope(result)) throw integrationCallFailed(result);
      return { status: 200, body: result };
    },

    checkIntegrationHealth: async ({ path }) => {
      const integration = await loadIntegration(db, Number(path.id));
      const result = await runtime.checkHealth(integration);
      return { status: 200, body: await storeHealthResult(db, integration, result, runtime.onHealthWorsened) };
    },

    authorizeIntegrationOAuth: async (input) => {
      const actor = adminActorOf(input);
      const integration = await loadIntegration(db, Number(input.path.id));
      if ((integration.config['authentication'] as { type?: unknown } | undefined)?.type !== 'oauth2_authorization_code') {
        throw conflict(`integration '${integration.name}' does not use the OAuth 2.0 authorization-code flow`);
      }
      const state = await db.transaction((tx) => createOAuthState(tx, integration.id, actor));
      const url = await runtime.authorizationUrl(integration, state);
      if (url === undefined) throw conflict(`integration '${integration.name}' does not use the OAuth 2.0 authorization-code flow`);
      // Swagger UI cannot follow a redirect to another site, so it gets the URL to open instead.
      if (input.req.accepts(['text/html', 'application/json']) === 'application/json') return { status: 200, body: { authorization_url: url } };
      return { status: 302, text: '', contentType: 'text/plain', headers: { Location: url } };
    },

    completeIntegrationOAuth: async (input) => {
      const { state, code, error, error_description: errorDescription } = input.query;
      // Consumed first and committed at once: whatever follows, this state cannot be replayed.
      const consumed = await consumeOAuthState(db, state);
      if (error !== undefined && error !== '') {
        throw badRequest(`the provider refused the authorization with error '${error}'${errorDescription ? `: ${errorDescription}` : ''}`);
      }
      if (code === undefined) throw badRequest('the callback carries neither a code nor an error');
      const integration = await loadIntegration(db, consumed.integration_id);
      const outcome = await runtime.completeAuthorization(integration, code);
      if ('failed' in outcome) throw badRequest(`the code exchange failed: ${exchangeFailure(outcome.failed)}`);
      const { tokens } = outcome;
      const expiresAt = tokens.expires_at === undefined ? null : new Date(tokens.expires_at).toISOString();
      await db.transaction(async (tx) => {
        await storeOAuthTokens(tx, integration.id, tokens);
        await writeAudit(tx, {
          entity: 'integration',
          entityId: integration.id,
          action: 'oauth_authorized',
          after: { expires_at: expiresAt, refreshable: tokens.refresh_token !== undefined },
          // The callback is public; the operator who started the flow is who authorized it.
          triggeredBy: consumed.created_by,
          requestId: input.requestId,
        });
      });
      return { status: 200, body: { integration_id: integration.id, integration_name: integration.name, authorized: true, expires_at: expiresAt } };
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

/** Why a code exchange failed, in words that carry no token or secret (the token endpoint's error code only). */
function exchangeFailure(failed: IntegrationCallResult): string {
  if (!isEnvelope(failed)) return failed;
  const body = failed.body as { error?: unknown } | null | undefined;
  const code = typeof body?.error === 'string' ? ` (${body.error})` : '';
  return `${failed.method} ${failed.url} answered ${failed.status}${code}`;
}
