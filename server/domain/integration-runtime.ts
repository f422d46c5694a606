import {
  NOT_MADE,
  QueueName,
  buildEnvelope,
  createIntegrationClient,
  isEnvelope,
  type Database,
  type IntegrationCallResult,
  type IntegrationClient,
  type JobQueue,
  type Logger,
  type OAuthTokens,
  type Queryable,
} from '../../adapter';
import {
  buildTaskRequest,
  responseExample,
  validateTaskInput,
  type IntegrationModel,
  type ModelOperation,
  type TaskInput,
} from '../../integration-model';
import { AppError, ErrorCode, notFound, validationFailed } from '../errors';
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
  /** Token sets a caller takes over itself (the OAuth callback stores them with its audit row). */
  readonly #captures = new Map<number, (tokens: OAuthTokens) => void>();
  readonly #persisting = new Set<Promise<void>>();

  /** With `db`, tokens a client obtains (refreshes) are persisted so other processes and restarts keep them. */
  constructor(deps: { logger: Logger; db?: Database }) {
    this.#logger = deps.logger;
    this.#db = deps.db;
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
    const cluster = clusterOf(integration);
    // Calls routed to a gateway cluster are executed by that cluster's workers; this process cannot reach their
    // network segment, so calling directly instead would be a silent fallback to the wrong place.
    if (cluster !== undefined) return `${NOT_MADE}: this integration's calls are routed to gateway cluster '${cluster}', and this server does not execute cluster-routed calls`;
    return this.clientFor(integration).call(request);
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

/** The cluster an integration's calls must run on, if its configuration routes them to one. */
function clusterOf(integration: IntegrationRecord): string | undefined {
  const c = integration.config as { cluster?: { override?: boolean; cluster_id?: string }; proxy?: { override?: boolean; mode?: string } };
  if (c.cluster?.override === true) return c.cluster.cluster_id ?? '';
  if (c.proxy?.override === true && c.proxy.mode === 'cluster_no_proxy') return c.cluster?.cluster_id ?? 'default';
  return undefined;
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
  await queue.boss.schedule(QueueName.INTEGRATION_HEALTH, '* * * * *', {});
  await queue.boss.work(QueueName.INTEGRATION_HEALTH, async () => {
    await runDueHealthChecks(db, runtime, logger);
  });
}
