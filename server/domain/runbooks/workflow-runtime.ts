/**
 * The one workflow engine of a process, bound to the real outside world: integration operations through the
 * integration runtime, webhook secrets from the settings, script modules from the database, and the directory from
 * the `active_directory` settings when they are configured. The order domain's hooks are handed to it here, so
 * `serve` and `provisio worker` build exactly the same engine.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Database, JobQueue, Logger } from '../../../adapter';
import type { IntegrationRuntime, IntegrationTask } from '../../../integration-model';
import { SECRET_REF_PATTERN, type CompileContext, type IntegrationInfo, type JsonSchema } from '../../../workflows';
import { createWorkflowEngine, WorkflowNotFoundError, type EngineConfig, type WorkflowEngine } from '../../../workflows';
import { createDirectoryExecutor, createIntegrationExecutor, createScriptExecutor, createWebhookExecutor, scriptModuleExists } from '../../../workflows';
import { createDirectoryProvider, type DirectoryProvider } from '../identity/requester-directory';
import { readSetting, readSettings } from '../settings/settings';
import { webhookConnectionOf } from '../settings/webhook-connection';
import { createOrderRuns, type OrderRuns } from '../orders/order-runs';

export interface WorkflowRuntimeDeps {
  db: Database;
  queue: JobQueue;
  logger: Logger;
  /** The process's one integration runtime, shared with the HTTP routes (one client per integration per process). */
  integrations: IntegrationRuntime;
  config?: Partial<EngineConfig>;
  /** The process's directory connection (shared with the requester directory); opened from the settings when not given. */
  directories?: DirectoryProvider;
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

/** What saving a workflow checks against: the configured integrations' operations and the stored script modules. */
export function workflowCompileContext(db: Database, integrations: Pick<IntegrationRuntime, 'tasksOf'>): CompileContext {
  return {
    async lookupIntegration(name): Promise<IntegrationInfo | undefined> {
      const found = await integrations.tasksOf(name);
      if (!found) return undefined;
      const tasks = new Map<string, IntegrationTask>(found.map((t) => [t.operationId, t]));
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
  const { db, queue, logger, integrations } = deps;
  const orderRuns = createOrderRuns({ db, queue, logger });
  const directories = deps.directories ?? createDirectoryProvider(db, logger);

  const engine = createWorkflowEngine({
    db,
    queue,
    logger,
    hooks: orderRuns.hooks,
    compileContext: workflowCompileContext(db, integrations),
    ...(deps.config ? { config: deps.config } : {}),
    executors: {
      integration: createIntegrationExecutor({ integrations }),
      webhook: createWebhookExecutor({
        logger,
        // `<section>.<name>` is the app_config key; re-read each call so a rotated secret applies at once.
        async resolveSecret(ref) {
          // The document schema admits only `webhooks.<name>`; documents stored before that rule are held to it here.
          if (!new RegExp(SECRET_REF_PATTERN).test(ref)) return undefined;
          const v = await readSetting(db, 'webhooks', ref.slice('webhooks.'.length));
          return typeof v === 'string' && v !== '' ? v : undefined;
        },
        // Re-read each delivery too: a proxy or CA set through PUT /admin/settings/webhooks applies to the next one.
        resolveConnection: async () => webhookConnectionOf(await readSettings(db, 'webhooks')),
      }),
      script: createScriptExecutor({ db }),
      directory: createDirectoryExecutor({ getDirectory: () => directories.get() }),
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
      // A directory handed in belongs to whoever built it; one opened here is closed here.
      if (!deps.directories) await directories.close();
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
