/**
 * The one workflow engine of a process, bound to the real outside world: integration operations through the
 * integration runtime, webhook secrets from the settings, script modules from the database, and the directory from
 * the `active_directory` settings when they are configured. The order domain's hooks are handed to it here, so
 * `serve` and `provisio worker` build exactly the same engine.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createDirectory, type Database, type Directory, type JobQueue, type Logger, type Queryable } from '../../../adapter';
import { integrationTasks, validateTaskInput, type IntegrationModel, type IntegrationTask } from '../../../integration-model';
import { SECRET_REF_PATTERN, type CompileContext, type IntegrationInfo, type JsonSchema } from '../../../workflows/document';
import { createWorkflowEngine, WorkflowNotFoundError, type EngineConfig, type WorkflowEngine } from '../../../workflows/engine';
import { createDirectoryExecutor, createIntegrationExecutor, createScriptExecutor, createWebhookExecutor, scriptModuleExists } from '../../../workflows/executors';
import { readDirectorySettings } from '../../gateway/settings';
import { IntegrationRuntime, stubResult } from '../../../integration-model/runtime/integration-runtime';
import { loadIntegration, type IntegrationRecord } from '../../../integration-model/runtime/integrations';
import { createOrderRuns, type OrderRuns } from '../orders/order-runs';

export interface WorkflowRuntimeDeps {
  db: Database;
  queue: JobQueue;
  logger: Logger;
  /** Shared with the HTTP routes when given (one client per integration per process). */
  integrations?: IntegrationRuntime;
  config?: Partial<EngineConfig>;
}

export interface WorkflowRuntime {
  engine: WorkflowEngine;
  orderRuns: OrderRuns;
  integrations: IntegrationRuntime;
  /** Starts the engine's step workers and the order consumers in this process. */
  startWorkers(opts?: { teamSize?: number }): Promise<void>;
  /** Stops the step workers and closes the directory connection, if one was opened. */
  stop(): Promise<void>;
}

async function integrationByName(q: Queryable, name: string): Promise<IntegrationRecord | undefined> {
  const { rows } = await q.query<{ id: number }>('SELECT id FROM integrations WHERE name = $1', [name]);
  const id = rows[0]?.id;
  if (id === undefined) return undefined;
  return loadIntegration(q, Number(id));
}

async function modelByName(db: Queryable, runtime: IntegrationRuntime, name: string): Promise<{ integration: IntegrationRecord; model: IntegrationModel } | undefined> {
  const integration = await integrationByName(db, name);
  if (!integration) return undefined;
  return { integration, model: await runtime.modelOf(db, integration) };
}

/**
 * Every operation of every configured integration as a canvas task `<integration>/<operationId>`, ordered by
 * integration name (the integrations task catalogue, for all integrations at once).
 */
export async function listAllIntegrationTasks(db: Queryable, runtime: IntegrationRuntime): Promise<IntegrationTask[]> {
  const { rows } = await db.query<{ name: string }>('SELECT name FROM integrations ORDER BY name');
  const out: IntegrationTask[] = [];
  for (const r of rows) {
    const found = await modelByName(db, runtime, r.name);
    if (found) out.push(...integrationTasks(found.model, r.name));
  }
  return out;
}

/** What saving a workflow checks against: the configured integrations' operations and the stored script modules. */
export function workflowCompileContext(db: Database, runtime: IntegrationRuntime): CompileContext {
  return {
    async lookupIntegration(name): Promise<IntegrationInfo | undefined> {
      const found = await modelByName(db, runtime, name);
      if (!found) return undefined;
      const tasks = new Map(integrationTasks(found.model, name).map((t) => [t.operationId, t]));
      return {
        operation(operationId) {
          const t = tasks.get(operationId);
          return t ? { inputSchema: t.inputSchema as JsonSchema, outputSchema: t.outputSchema as JsonSchema } : undefined;
        },
      };
    },
    lookupScriptModule: (module, version) => scriptModuleExists(db, module, version),
  };
}

export function createWorkflowRuntime(deps: WorkflowRuntimeDeps): WorkflowRuntime {
  const { db, queue, logger } = deps;
  const integrations = deps.integrations ?? new IntegrationRuntime({ logger, queue });
  const orderRuns = createOrderRuns({ db, queue, logger });
  // Opened on first use and kept: the directory pools its LDAP connections.
  let directory: Promise<Directory | undefined> | undefined;
  const getDirectory = (): Promise<Directory | undefined> => {
    directory ??= readDirectorySettings(db).then(
      (s) => createDirectory(s),
      (e: unknown) => {
        logger.info('directory tasks unavailable: the active_directory settings are not configured', { reason: e instanceof Error ? e.message : String(e) });
        directory = undefined;
        return undefined;
      },
    );
    return directory;
  };

  const engine = createWorkflowEngine({
    db,
    queue,
    logger,
    hooks: orderRuns.hooks,
    compileContext: workflowCompileContext(db, integrations),
    ...(deps.config ? { config: deps.config } : {}),
    executors: {
      integration: createIntegrationExecutor({
        async resolveOperation(name, operationId) {
          const found = await modelByName(db, integrations, name);
          const op = found?.model.operations.find((o) => o.operationId === operationId);
          if (!op) return undefined;
          return {
            method: op.method,
            path: op.path,
            parameters: op.parameters.map((p) => ({ name: p.name, in: p.in, required: p.required })),
            ...(op.requestBody ? { requestBody: { contentType: op.requestBody.contentType } } : {}),
          };
        },
        async getClient(name, operationId) {
          const integration = await integrationByName(db, name);
          if (!integration) return undefined;
          // Routed as the configuration says: from here, or by a worker of the integration's gateway cluster.
          if (!integration.stub_mode) return { call: (request) => integrations.call(integration, request) };
          // Stub mode: no request at all; the answer is the operation's example, exactly as the invoke API gives it.
          const model = await integrations.modelOf(db, integration);
          const op = model.operations.find((o) => o.operationId === operationId);
          if (!op) return undefined;
          return { call: async (request) => stubResult(model, op, integration, request.path, request.query) };
        },
        async validateInput(name, operationId, input) {
          const found = await modelByName(db, integrations, name);
          const op = found?.model.operations.find((o) => o.operationId === operationId);
          return op ? validateTaskInput(op, input).map((i) => `${i.path || '/'} ${i.message}`) : [];
        },
      }),
      webhook: createWebhookExecutor({
        logger,
        // `<section>.<name>` is the app_config key; re-read each call so a rotated secret applies at once.
        async resolveSecret(ref) {
          // The document schema admits only `webhooks.<name>`; documents stored before that rule are held to it here.
          if (!new RegExp(SECRET_REF_PATTERN).test(ref)) return undefined;
          const { rows } = await db.query<{ value: unknown }>('SELECT value FROM app_config WHERE key = $1', [ref]);
          const v = rows[0]?.value;
          return typeof v === 'string' && v !== '' ? v : undefined;
        },
      }),
      script: createScriptExecutor({ db }),
      directory: createDirectoryExecutor({ getDirectory }),
    },
  });
  orderRuns.bind(engine);

  return {
    engine,
    orderRuns,
    integrations,
    async startWorkers(opts) {
      await engine.startWorkers(opts);
      await orderRuns.registerWorkers();
    },
    async stop() {
      await engine.stop();
      const d = await directory;
      await d?.close();
    },
  };
}

/**
 * Loads the sample runbooks (`workflows/definitions/*.json`) into the engine: each is saved as a new version only
 * when it is not stored yet, so restarts do not pile up versions. A sample that does not compile here (an
 * integration it calls is not configured) is skipped with a warning.
 */
export async function loadSampleWorkflows(engine: WorkflowEngine, dir: string, logger: Logger): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  const docs = await Promise.all(files.map(async (f) => ({ file: f, doc: JSON.parse(await readFile(path.join(dir, f), 'utf8')) as { name?: unknown } })));
  // Children first: a parent that runs a child workflow compiles only once the child exists.
  const pending = [...docs];
  const reasons = new Map<string, string>();
  const loaded: string[] = [];
  for (let round = 0; round < docs.length && pending.length > 0; round += 1) {
    for (const item of [...pending]) {
      const name = typeof item.doc.name === 'string' ? item.doc.name : item.file;
      try {
        await engine.getWorkflow(name);
        pending.splice(pending.indexOf(item), 1);
        continue;
      } catch (e) {
        if (!(e instanceof WorkflowNotFoundError)) throw e;
      }
      try {
        await engine.saveWorkflow(item.doc, 'system:demo');
        loaded.push(name);
        pending.splice(pending.indexOf(item), 1);
      } catch (e) {
        // Retried next round (its child may now exist); reported below if it never compiles.
        reasons.set(item.file, e instanceof Error ? e.message : String(e));
      }
    }
  }
  for (const item of pending) logger.warn('sample workflow not loaded: it does not compile here', { file: item.file, reason: reasons.get(item.file) });
  return loaded;
}
