/**
 * The one workflow engine of a process, bound to the real outside world: integration operations through the
 * integration runtime, webhook secrets from the settings, script modules from the database, and the directory from
 * the `active_directory` settings when they are configured. The order domain's hooks are handed to it here, so
 * `serve` and `provisio worker` build exactly the same engine.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { projectPath, type Database, type JobQueue, type Logger } from '../../../adapter';
import type { IntegrationRuntime, IntegrationTask } from '../../../integration-model';
import { SECRET_REF_PATTERN, type CompileContext, type IntegrationInfo, type JsonSchema } from '../../../workflows';
import { createWorkflowEngine, WorkflowNotFoundError, type EngineConfig, type WorkflowEngine } from '../../../workflows';
import { createDirectoryExecutor, createIntegrationExecutor, createScriptExecutor, createWebhookExecutor, createWinrmExecutor, scriptModuleExists } from '../../../workflows';
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
        resolveStubMode: async () => (await readSetting(db, 'webhooks', 'stub_mode')) === true,
      }),
      script: createScriptExecutor({ db }),
      directory: createDirectoryExecutor({ getDirectory: () => directories.get() }),
      winrm: createWinrmExecutor({ connections: integrations }),
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

/** Where the sample runbooks live (workflows/definitions/). */
export const SAMPLE_WORKFLOWS_DIR = projectPath('workflows', 'definitions');

/** What one load of the samples did: the ones saved now, and the ones still waiting with what they wait for. */
export interface SampleLoadResult {
  loaded: string[];
  waiting: { workflow: string; file: string; waiting_for: string[]; reason: string }[];
}

/** The integrations (`integration:<name>`) and child workflows (`workflow:<name>`) a sample document calls. */
function dependenciesOf(doc: unknown): string[] {
  const out = new Set<string>();
  const visit = (task: unknown): void => {
    if (task === null || typeof task !== 'object') return;
    const t = task as { kind?: unknown; operation?: unknown; workflow?: unknown; task?: unknown };
    if (t.kind === 'integration' && typeof t.operation === 'string' && t.operation.includes('/')) out.add(`integration:${t.operation.split('/')[0]}`);
    if (t.kind === 'child' && typeof t.workflow === 'string') out.add(`workflow:${t.workflow}`);
    if (t.kind === 'winrm' && typeof (t as { connection?: unknown }).connection === 'string') out.add(`integration:${(t as { connection: string }).connection}`);
    if (t.kind === 'poll') visit(t.task);
  };
  const d = doc as { tasks?: unknown; steps?: unknown };
  const tasks = Array.isArray(d.steps) ? d.steps : d.tasks !== null && typeof d.tasks === 'object' ? Object.values(d.tasks as object) : [];
  for (const task of tasks) visit(task);
  return [...out].sort();
}

// One load at a time per engine in this process: two integrations created at once must not both save a sample (a
// second version of it). Across processes a duplicate costs one extra version, nothing else.
const sampleLoads = new WeakMap<WorkflowEngine, Promise<unknown>>();

/**
 * Loads the sample runbooks (`workflows/definitions/*.json`) into the engine: each is saved as a new version only
 * when it is not stored yet, so restarts (and repeated calls) do not pile up versions. A sample that does not
 * compile yet (an integration it calls is not configured, or the child it runs is waiting itself) waits: the log
 * names the ones loaded now and, for each one waiting, what it waits for. Call it again when integrations change.
 * @param opts.integrationExists tells which of a waiting sample's integrations are missing (else all are listed).
 */
export function loadSampleWorkflows(
  engine: WorkflowEngine,
  dir: string,
  logger: Logger,
  opts: { integrationExists?(name: string): Promise<boolean> } = {},
): Promise<SampleLoadResult> {
  const previous = sampleLoads.get(engine) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => loadSamplesNow(engine, dir, logger, opts));
  sampleLoads.set(engine, run);
  return run;
}

async function loadSamplesNow(
  engine: WorkflowEngine,
  dir: string,
  logger: Logger,
  opts: { integrationExists?(name: string): Promise<boolean> },
): Promise<SampleLoadResult> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  const docs = await Promise.all(files.map(async (f) => ({ file: f, doc: JSON.parse(await readFile(path.join(dir, f), 'utf8')) as { name?: unknown } })));
  // Children first: a parent that runs a child workflow compiles only once the child exists.
  const pending = [...docs];
  const reasons = new Map<string, string>();
  const loaded: string[] = [];
  const nameOf = (item: (typeof docs)[number]) => (typeof item.doc.name === 'string' ? item.doc.name : item.file);
  for (let round = 0; round < docs.length && pending.length > 0; round += 1) {
    for (const item of [...pending]) {
      const name = nameOf(item);
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
  const waiting: SampleLoadResult['waiting'] = [];
  const waitingNames = new Set(pending.map(nameOf));
  for (const item of pending) {
    const missing: string[] = [];
    for (const dep of dependenciesOf(item.doc)) {
      const [kind, name] = [dep.slice(0, dep.indexOf(':')), dep.slice(dep.indexOf(':') + 1)];
      if (kind === 'workflow' && !waitingNames.has(name)) continue;
      if (kind === 'integration' && opts.integrationExists && (await opts.integrationExists(name))) continue;
      missing.push(dep);
    }
    waiting.push({ workflow: nameOf(item), file: item.file, waiting_for: missing, reason: reasons.get(item.file) ?? '' });
  }
  if (loaded.length > 0) logger.info('sample workflows loaded', { workflows: loaded });
  for (const w of waiting) {
    logger.info('sample workflow waiting: it does not compile yet', { workflow: w.workflow, file: w.file, waiting_for: w.waiting_for, reason: w.reason });
  }
  return { loaded, waiting };
}
