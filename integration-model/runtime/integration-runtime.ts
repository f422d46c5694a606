import {
  NOT_MADE,
  QueueName,
  DEFAULT_TIMEOUT_MS,
  buildEnvelope,
  createIntegrationClient,
  isEnvelope,
  type Database,
  type IntegrationCallRequest,
  type IntegrationCallResult,
  type IntegrationClient,
  type JobQueue,
  type Logger,
  type OAuthTokens,
  type Queryable,
} from '../../adapter';
import type PgBoss from 'pg-boss';
import {
  buildTaskRequest,
  responseExample,
  validateTaskInput,
  type IntegrationModel,
  type ModelOperation,
  type TaskInput,
} from '..';
import { AppError, ErrorCode, notFound, validationFailed } from '../../server/errors';
import { fullConfig, loadIntegration, recordHealth, type HealthResult, type IntegrationRecord } from './integrations';
import { ModelCache } from './integration-models';
import { storeOAuthTokens } from './integration-oauth';

/**
 * The integrations' runtime in this process: one client per integration (kept so tokens and connections are
 * reused), rebuilt when the integration's `config_revision` moves, so a change made through any process takes
 * effect at the next call. The log level is applied on every call from the row, so changing it needs no rebuild.
 */
export class IntegrationRuntime {
  readonly models = new ModelCache();
  readonly #clients = new Map<number, { revision: number; client: IntegrationClient }>();
  readonly #logger: Logger;
  readonly #db: Database | undefined;
  readonly #queue: JobQueue | undefined;
  /** Token sets a caller takes over itself (the OAuth callback stores them with its audit row). */
  readonly #captures = new Map<number, (tokens: OAuthTokens) => void>();
  readonly #persisting = new Set<Promise<void>>();

  /**
   * With `db`, tokens a client obtains (refreshes) are persisted so other processes and restarts keep them. With
   * `queue`, calls of cluster-routed integrations are sent to that cluster's workers (without it they fail, saying so).
   */
  constructor(deps: { logger: Logger; db?: Database; queue?: JobQueue }) {
    this.#logger = deps.logger;
    this.#db = deps.db;
    this.#queue = deps.queue;
  }

  /**
   * Makes one call the way the integration's configuration routes it: from this process (`direct`), or by a worker
   * of its gateway cluster through the queue. A cluster nobody answers for is a string error after the timeout,
   * never a call from here instead (this process may not be able to reach that network segment, or must not).
   */
  async call(integration: IntegrationRecord, request: IntegrationCallRequest): Promise<IntegrationCallResult> {
    const cluster = clusterOf(integration);
    if (cluster === undefined) return this.clientFor(integration).call(request);
    if (!this.#queue) return `${NOT_MADE}: this integration's calls are routed to gateway cluster '${cluster}', and this process has no queue to send them to`;
    return callViaCluster(this.#queue, cluster, integration, request);
  }

  /** The model an integration is built on. @throws AppError NOT_FOUND (404) when the row is gone. */
  async modelOf(q: Queryable, integration: Pick<IntegrationRecord, 'model_id'>): Promise<IntegrationModel> {
    const model = await this.models.get(q, integration.model_id);
    if (!model) throw notFound(`integration model '${integration.model_id}' does not exist`);
    return model;
  }

  clientFor(integration: IntegrationRecord): IntegrationClient {
    const cached = this.#clients.get(integration.id);
    if (cached && cached.revision === integration.config_revision) {
      if (cached.client.getLogLevel() !== integration.log_level) cached.client.setLogLevel(integration.log_level);
      return cached.client;
    }
    cached?.client.close();
    const client = createIntegrationClient(fullConfig(integration), {
      logger: this.#logger,
      name: integration.name,
      onTokens: (tokens) => this.#tokensReceived(integration.id, tokens),
    });
    this.#clients.set(integration.id, { revision: integration.config_revision, client });
    return client;
  }

  #tokensReceived(id: number, tokens: OAuthTokens): void {
    const capture = this.#captures.get(id);
    if (capture) return capture(tokens);
    const db = this.#db;
    if (!db) return;
    const p = db
      .transaction((tx) => storeOAuthTokens(tx, id, tokens))
      .catch((e: unknown) => {
        // Deleted meanwhile, or the database is away: the tokens still serve this process until they expire.
        this.#logger.error('integration tokens could not be persisted', { integration_id: id, error: e instanceof Error ? e.message : String(e) });
      })
      .finally(() => this.#persisting.delete(p));
    this.#persisting.add(p);
  }

  /** Resolves when every token set received so far has been persisted (or failed to be). */
  async tokensPersisted(): Promise<void> {
    await Promise.all([...this.#persisting]);
  }

  /** The provider URL an operator is sent to; undefined when the integration does not use the authorization-code flow. */
  authorizationUrl(integration: IntegrationRecord, state: string): string | undefined {
    return this.clientFor(integration).authorizationUrl(state);
  }

  /**
   * Exchanges an authorization code through the integration's client. Resolves the tokens for the caller to store,
   * or the failed token call (its envelope, or a string when it could not be made).
   */
  async completeAuthorization(integration: IntegrationRecord, code: string): Promise<{ tokens: OAuthTokens } | { failed: IntegrationCallResult }> {
    let tokens: OAuthTokens | undefined;
    this.#captures.set(integration.id, (t) => {
      tokens = t;
    });
    try {
      const failed = await this.clientFor(integration).completeAuthorizationCode(code);
      if (failed !== undefined) return { failed };
      if (!tokens) throw new Error('unreachable: the code exchange succeeded without tokens');
      return { tokens };
    } finally {
      this.#captures.delete(integration.id);
    }
  }

  /** Applies a new log level to the cached client at once (other processes pick it up on their next call). */
  setLogLevel(id: number, level: IntegrationRecord['log_level']): void {
    this.#clients.get(id)?.client.setLogLevel(level);
  }

  /** Drops (and closes) the cached client of a deleted integration. */
  forget(id: number): void {
    this.#clients.get(id)?.client.close();
    this.#clients.delete(id);
  }

  close(): void {
    for (const { client } of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  /**
   * Runs one task: the input is validated against the task's input schema, then the call is made (or, in stub
   * mode, answered from the model's examples without any request).
   * @throws AppError NOT_FOUND (404) for an operation the model does not have; VALIDATION_FAILED (422) for input.
   */
  async invoke(q: Queryable, integration: IntegrationRecord, operationId: string, input: TaskInput): Promise<IntegrationCallResult> {
    const model = await this.modelOf(q, integration);
    const op = findOperation(model, operationId);
    const issues = validateTaskInput(op, input);
    if (issues.length > 0) {
      const errors = issues.map((i) => ({ path: `/body${i.path}`, message: i.message }));
      throw validationFailed(errors.map((e) => `${e.path.replace(/^\/body\//, '')} ${e.message}`).join('; '), errors);
    }
    const request = buildTaskRequest(op, input);
    if (integration.stub_mode) return stubResult(model, op, integration, request.path, request.query);
    return this.call(integration, request);
  }

  /**
   * Runs the health operation: `online` for a 2xx within `slow_ms`, `degraded` for a slower 2xx or any other
   * status, `offline` when the call could not be made.
   * @throws AppError CONFLICT (409) when no health operation is configured.
   */
  async checkHealth(q: Queryable, integration: IntegrationRecord): Promise<HealthResult> {
    const health = integration.health;
    if (!health) throw new AppError(ErrorCode.CONFLICT, 409, `integration '${integration.name}' has no health-check operation configured`);
    const slow = health.slow_ms ?? 2000;
    const started = Date.now();
    let result: IntegrationCallResult;
    try {
      result = await this.invoke(q, integration, health.operation_id, {});
    } catch (e) {
      if (e instanceof AppError && e.status !== 500) return { status: 'offline', detail: e.message, http_status: null, latency_ms: Date.now() - started };
      throw e;
    }
    const latency = Date.now() - started;
    if (!isEnvelope(result)) return { status: 'offline', detail: result, http_status: null, latency_ms: latency };
    if (!result.ok) return { status: 'degraded', detail: `${health.operation_id} answered ${result.status} ${result.statusText}`.trim(), http_status: result.status, latency_ms: latency };
    if (latency > slow) return { status: 'degraded', detail: `${health.operation_id} took ${latency} ms (slower than ${slow} ms)`, http_status: result.status, latency_ms: latency };
    return { status: 'online', detail: null, http_status: result.status, latency_ms: latency };
  }
}

/**
 * The cluster an integration's calls must run on, if its configuration routes them to one: the cluster override,
 * or a proxy override whose mode executes through the gateway (`cluster_no_proxy`, `proxy`; its cluster is the
 * override's id when one is set, else `default`).
 */
export function clusterOf(integration: Pick<IntegrationRecord, 'config'>): string | undefined {
  const c = integration.config as { cluster?: { override?: boolean; cluster_id?: string }; proxy?: { override?: boolean; mode?: string } };
  if (c.cluster?.override === true) return c.cluster.cluster_id ?? '';
  if (c.proxy?.override === true && (c.proxy.mode === 'cluster_no_proxy' || c.proxy.mode === 'proxy')) return c.cluster?.cluster_id ?? 'default';
  return undefined;
}

/** The queue a cluster's workers consume calls from. */
export function clusterQueueName(cluster: string): string {
  return `integration.call.${cluster}`;
}

/**
 * One call for a cluster's worker: the request is built here; auth, TLS and proxy are applied by the worker. It is
 * JSON in the queue, so the abort signal stays with the caller and a Buffer body travels as base64.
 */
interface ClusterCallJob {
  integrationId: number;
  revision: number;
  request: Omit<IntegrationCallRequest, 'signal'>;
  bodyBase64?: string;
}

function toJob(integration: IntegrationRecord, request: IntegrationCallRequest): ClusterCallJob {
  const { signal: _signal, body, ...rest } = request;
  void _signal;
  if (Buffer.isBuffer(body)) return { integrationId: integration.id, revision: integration.config_revision, request: rest, bodyBase64: body.toString('base64') };
  return { integrationId: integration.id, revision: integration.config_revision, request: body === undefined ? rest : { ...rest, body } };
}

function fromJob(job: ClusterCallJob): IntegrationCallRequest {
  return job.bodyBase64 !== undefined ? { ...job.request, body: Buffer.from(job.bodyBase64, 'base64') } : job.request;
}

/** What a worker completes a call job with (pg-boss keeps objects only, so the result is wrapped). */
interface ClusterCallOutput {
  result: IntegrationCallResult;
}

const CLUSTER_POLL_MS = 50;
// Queues are created once per process; createQueue is idempotent, this only saves the round trip.
const createdQueues = new WeakMap<JobQueue, Set<string>>();

async function ensureClusterQueue(queue: JobQueue, name: string): Promise<void> {
  let seen = createdQueues.get(queue);
  if (!seen) createdQueues.set(queue, (seen = new Set()));
  if (seen.has(name)) return;
  await queue.boss.createQueue(name);
  seen.add(name);
}

function timeoutOf(integration: Pick<IntegrationRecord, 'config'>): number {
  const t = (integration.config as { timeout?: unknown }).timeout;
  return typeof t === 'number' && t > 0 ? t : DEFAULT_TIMEOUT_MS;
}

/**
 * Sends the call to `integration.call.<cluster>` and polls the job (pg-boss `getJobById`; its `output` carries the
 * result, so no table of our own is needed) until the integration's timeout. A job nobody took in time is deleted,
 * so a worker that starts later never makes a call its caller has given up on; a finished job is deleted too, so
 * responses are not kept in the queue's tables.
 */
async function callViaCluster(queue: JobQueue, cluster: string, integration: IntegrationRecord, request: IntegrationCallRequest): Promise<IntegrationCallResult> {
  const name = clusterQueueName(cluster);
  const timeout = timeoutOf(integration);
  await ensureClusterQueue(queue, name);
  const data = toJob(integration, request);
  const id = await queue.boss.send(name, data, { retryLimit: 0, expireInSeconds: Math.max(1, Math.ceil(timeout / 1000) + 5) });
  if (!id) return `${NOT_MADE}: the queue of gateway cluster '${cluster}' refused the call`;
  const deadline = Date.now() + timeout;
  try {
    for (;;) {
      const job = await queue.boss.getJobById<ClusterCallJob>(name, id);
      if (job?.state === 'completed') {
        const out = job.output as Partial<ClusterCallOutput> | undefined;
        if (out && out.result !== undefined) return out.result;
        return `${NOT_MADE}: a worker of cluster '${cluster}' answered without a result`;
      }
      if (job?.state === 'failed') return `${NOT_MADE}: a worker of cluster '${cluster}' failed to make the call`;
      if (!job || job.state === 'cancelled') return `${NOT_MADE}: the call for cluster '${cluster}' was withdrawn from its queue`;
      if (Date.now() >= deadline) return `no worker of cluster '${cluster}' answered within ${timeout} ms`;
      if (request.signal?.aborted) return `${NOT_MADE}: the call was aborted before a worker of cluster '${cluster}' answered`;
      await new Promise((r) => setTimeout(r, CLUSTER_POLL_MS));
    }
  } finally {
    await queue.boss.deleteJob(name, id).catch(() => undefined);
  }
}

/**
 * `provisio worker --cluster <id>`: consumes `integration.call.<id>`, making each call with this process's own
 * client of the integration (loaded with its secrets from the database, cached per integration and revision, so
 * proxy, TLS and auth settings apply here). Every outcome completes the job: the envelope, or the string error.
 */
export async function registerClusterWorker(deps: { db: Database; queue: JobQueue; logger: Logger; cluster: string; teamSize?: number }): Promise<IntegrationRuntime> {
  const { db, queue, logger, cluster } = deps;
  const runtime = new IntegrationRuntime({ logger, db });
  const name = clusterQueueName(cluster);
  await ensureClusterQueue(queue, name);
  const handle = async (data: ClusterCallJob): Promise<IntegrationCallResult> => {
    let integration: IntegrationRecord;
    try {
      integration = await loadIntegration(db, data.integrationId);
    } catch (e) {
      return `${NOT_MADE}: ${e instanceof Error ? e.message : String(e)}`;
    }
    // Re-routed since the call was sent: this cluster is no longer where its calls belong.
    if (clusterOf(integration) !== cluster) return `${NOT_MADE}: integration '${integration.name}' is no longer routed to gateway cluster '${cluster}'`;
    return runtime.clientFor(integration).call(fromJob(data));
  };
  const work = async (jobs: PgBoss.Job<ClusterCallJob>[]): Promise<ClusterCallOutput | undefined> => {
    const job = jobs[0];
    if (!job) return undefined;
    try {
      return { result: await handle(job.data) };
    } catch (e) {
      logger.error('cluster call failed', { cluster, integration_id: job.data.integrationId, error: e instanceof Error ? e.message : String(e) });
      return { result: `${NOT_MADE}: the worker of cluster '${cluster}' could not make the call` };
    }
  };
  // Several calls in flight at once; the minimum polling interval keeps the pick-up well inside short timeouts.
  for (let i = 0; i < (deps.teamSize ?? 4); i += 1) await queue.boss.work<ClusterCallJob>(name, { batchSize: 1, pollingIntervalSeconds: 0.5 }, work);
  logger.info('cluster worker started', { cluster, queue: name });
  return runtime;
}

function findOperation(model: IntegrationModel, operationId: string): ModelOperation {
  const op = model.operations.find((o) => o.operationId === operationId);
  if (op) return op;
  const dropped = model.dropped.find((d) => d.operationId === operationId);
  throw notFound(dropped ? `operation '${operationId}' was dropped from model '${model.id}': ${dropped.reason}` : `model '${model.id}' has no operation '${operationId}'`);
}

/**
 * The envelope stub mode answers: the model's example for the first 2xx that has one, or a string when none.
 * Used by {@link IntegrationRuntime.invoke} and by the stub client workflow runs get, so both answer alike.
 */
export function stubResult(
  model: IntegrationModel,
  op: ModelOperation,
  integration: IntegrationRecord,
  path: string,
  query: Record<string, unknown> | undefined,
): IntegrationCallResult {
  const example = responseExample(model, op);
  if (!example) return `stub mode: operation '${op.operationId}' documents no 2xx response to answer with`;
  const json = example.contentType === undefined || /[/+]json\b/i.test(example.contentType);
  const raw = example.example === undefined ? '' : !json && typeof example.example === 'string' ? example.example : JSON.stringify(example.example);
  return buildEnvelope({
    method: op.method,
    url: stubUrl(integration, path, query),
    status: example.status,
    statusText: '',
    headers: { ...(example.contentType ? { 'content-type': example.contentType } : {}), 'x-provisio-stub': 'true' },
    raw,
  });
}

/** The URL the call would have gone to; built from the (secret-free) stored server settings. */
function stubUrl(integration: IntegrationRecord, path: string, query: Record<string, unknown> | undefined): string {
  const s = (integration.config.server ?? {}) as { protocol?: string; host?: string; port?: number; base_path?: string };
  const base = `${s.protocol ?? 'http'}://${s.host ?? ''}${s.port !== undefined ? `:${s.port}` : ''}${(s.base_path ?? '').replace(/\/$/, '')}`;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    for (const x of Array.isArray(v) ? v : [v]) params.append(k, String(x));
  }
  const qs = params.toString();
  return `${base}${path}${qs ? `?${qs}` : ''}`;
}


/**
 * Checks every integration whose health `interval_s` has passed since its last check, one after the other, and
 * stores the results. A failing check is a result (offline), never an error of the sweep.
 */
export async function runDueHealthChecks(db: Database, runtime: IntegrationRuntime, logger: Logger): Promise<number[]> {
  const { rows } = await db.query<{ id: number }>(
    `SELECT id::int AS id FROM integrations
      WHERE health->>'interval_s' IS NOT NULL
        AND (health_checked_at IS NULL OR health_checked_at <= now() - make_interval(secs => (health->>'interval_s')::int))
      ORDER BY id`,
  );
  const checked: number[] = [];
  for (const { id } of rows) {
    try {
      const integration = await loadIntegration(db, id);
      const result = await runtime.checkHealth(db, integration);
      await recordHealth(db, id, result);
      if (result.status !== 'online') logger.warn('integration health check', { integration: integration.name, status: result.status, detail: result.detail });
      checked.push(id);
    } catch (e) {
      // Deleted meanwhile, or its model is gone: the next sweep will not see it, or will say so again.
      logger.error('integration health check failed to run', { integration_id: id, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return checked;
}

/** Schedules {@link runDueHealthChecks} once a minute across all processes (pg-boss cron), worked here. */
export async function registerIntegrationHealthChecks(queue: JobQueue, db: Database, logger: Logger): Promise<void> {
  const runtime = new IntegrationRuntime({ logger, db });
  await queue.recurring(QueueName.INTEGRATION_HEALTH, '* * * * *', async () => {
    await runDueHealthChecks(db, runtime, logger);
  });
}
