import {
  NOT_MADE,
  CodedError,
  conflict,
  createIntegrationClient,
  isEnvelope,
  isRecord,
  modelDocumentDigest,
  notFound,
  looksLikeSecretReference,
  resolveSecretReference,
  resolveSecretValues,
  SecretBackendError,
  typedOperation,
  type Database,
  type IntegrationCallRequest,
  type IntegrationCallResult,
  type IntegrationClient,
  type JobQueue,
  type Logger,
  type OAuthTokens,
  type TypedOperation,
} from '../../adapter';
import { createHash } from 'node:crypto';
import { buildTaskRequest, integrationTasks, validateTaskInput, type IntegrationTask, type TaskInput } from '../tasks';
import type { IntegrationModel, ModelOperation } from '../types';
import { callViaCluster, clusterOf } from './cluster';
import { InvocationError } from './errors';
import type { HealthWorsenedHook } from './health';
import type { HealthResult, IntegrationRecord } from './integrations';
import { fullConfig, integrationNames, integrationVersionByName, loadIntegration, openIntegrationSecrets } from './integrations';
import { ModelCache } from './integration-models';
import { storeOAuthTokens } from './integration-oauth';
import { stubResult } from './stub';

/**
 * Where the runtime finds generated typed clients: the digest of a model document, and the SDK function generated
 * for an operation of the model with that digest (undefined when none was generated for exactly that document, as
 * for a model uploaded at run time: then the generic request path serves it).
 */
export interface TypedOperations {
  digest(document: Record<string, unknown>): string;
  operation(modelDigest: string, operationId: string): TypedOperation | undefined;
}

/** The typed clients `npm run generate` made from openapi/integrations/ (adapter/clients). */
const GENERATED_CLIENTS: TypedOperations = { digest: modelDocumentDigest, operation: typedOperation };

export interface IntegrationRuntimeDeps {
  /** Integrations and models are read from it, and OAuth tokens a client obtains are persisted to it. */
  db: Database;
  logger: Logger;
  /** Calls of cluster-routed integrations are sent to that cluster's workers through it; without it they fail, saying so. */
  queue?: JobQueue | undefined;
  /** Generated typed clients to dispatch to; the ones generated from openapi/integrations/ by default. */
  typedOperations?: TypedOperations | undefined;
  /** Told when a health check (the sweep's or an admin's) finds an integration worse than before (health.ts). */
  onHealthWorsened?: HealthWorsenedHook | undefined;
}

/** What a caller adds to one invocation. */
export interface InvokeContext {
  /** Aborts the call (a runbook step's attempt timeout, a cancelled run). */
  signal?: AbortSignal;
  /**
   * Sent as the `Idempotency-Key` header, replacing any spelling of it in the input: a retried runbook step must be
   * recognisable as a retry by the far side.
   */
  idempotencyKey?: string;
}

/** What runbook steps need of the runtime: one call per step. */
export type IntegrationInvoker = Pick<IntegrationRuntime, 'invoke'>;

/** An integration with the model it is built on, as one version of both. */
export interface ResolvedIntegration {
  integration: IntegrationRecord;
  model: IntegrationModel;
}

/** An operation ready to call: the model's operation and, when the model has a generated client, its SDK function. */
interface CompiledOperation {
  op: ModelOperation;
  typed: TypedOperation | undefined;
}

/**
 * The one integration runtime of a process (build it with {@link createIntegrationRuntime} and hand it to whoever
 * calls integrations). It keeps one client per integration (so tokens and connections are reused), rebuilt when the
 * integration's `config_revision` moves, so a change made through any process takes effect at the next call; the log
 * level is applied on every call from the row, so changing it needs no rebuild. Integrations looked up by name are
 * cached with their model and compiled operations, keyed by a version read in one round trip per invocation.
 */
export class IntegrationRuntime {
  readonly models = new ModelCache();
  /** Whoever stores a health check's result calls it (health.ts `storeHealthResult`). */
  readonly onHealthWorsened: HealthWorsenedHook | undefined;
  readonly #clients = new Map<number, CachedClient>();
  /** Clients of other endpoints with an integration's connection ({@link endpointClient}), least recently used first. */
  readonly #endpoints = new Map<string, BuiltClient>();
  /** Clients being built (their secrets being opened), so concurrent first calls build one client, not several. */
  readonly #building = new Map<number, { revision: number; client: Promise<BuiltClient> }>();
  readonly #byName = new Map<string, { version: string; resolved: Promise<ResolvedIntegration> }>();
  readonly #operations = new WeakMap<IntegrationModel, Map<string, CompiledOperation>>();
  readonly #digests = new WeakMap<IntegrationModel, string>();
  readonly #logger: Logger;
  readonly #db: Database;
  readonly #queue: JobQueue | undefined;
  readonly #typed: TypedOperations;
  /** Token sets a caller takes over itself (the OAuth callback stores them with its audit row). */
  readonly #captures = new Map<number, (tokens: OAuthTokens) => void>();
  readonly #persisting = new Set<Promise<void>>();

  constructor(deps: IntegrationRuntimeDeps) {
    this.#logger = deps.logger;
    this.#db = deps.db;
    this.#queue = deps.queue;
    this.#typed = deps.typedOperations ?? GENERATED_CLIENTS;
    this.onHealthWorsened = deps.onHealthWorsened;
  }

  /**
   * Runs one operation of an integration: the input is validated against the operation's task input schema, then the
   * call is made as the integration's configuration routes it (from here, or by a worker of its gateway cluster),
   * through the model's generated client when it has one; in stub mode it is answered from the model's examples
   * without any request. `integration` is a name (runbook steps: resolved with one round trip when cached) or a
   * record the caller has loaded.
   * Resolves the envelope (whatever its status), or a string saying why no response arrived.
   * @throws InvocationError NOT_FOUND for an integration or operation that does not exist, VALIDATION_FAILED for input.
   */
  async invoke(integration: string | IntegrationRecord, operationId: string, input: TaskInput, context: InvokeContext = {}): Promise<IntegrationCallResult> {
    const resolved = typeof integration === 'string' ? await this.resolve(integration) : { integration, model: await this.modelOf(integration) };
    if (!resolved) throw InvocationError.integrationNotFound(integration as string);
    const { integration: record, model } = resolved;
    const compiled = this.#compile(model, operationId);
    const issues = validateTaskInput(compiled.op, input);
    if (issues.length > 0) throw InvocationError.invalidInput(issues);
    const request = buildTaskRequest(compiled.op, input);
    if (record.stub_mode) return stubResult(model, compiled.op, record, request.path, request.query);
    const cluster = clusterOf(record);
    if (compiled.typed && cluster === undefined) {
      const headers = withIdempotencyKey(input.headers, context.idempotencyKey);
      const client = await this.#clientOrReason(record);
      if (typeof client === 'string') return client;
      return compiled.typed(client, headers === input.headers ? input : { ...input, headers }, context.signal);
    }
    const headers = withIdempotencyKey(request.headers, context.idempotencyKey);
    if (headers) request.headers = headers as Record<string, string>;
    if (context.signal) request.signal = context.signal;
    return this.call(record, request);
  }

  /**
   * The integration named `name` with its model, or undefined when there is none. One query reads the versions of
   * both; while they are those of the cached entry, nothing else is read.
   */
  async resolve(name: string): Promise<ResolvedIntegration | undefined> {
    const v = await integrationVersionByName(this.#db, name);
    if (!v) {
      this.#byName.delete(name);
      return undefined;
    }
    const version = `${v.id}/${v.config_revision}/${v.stamp}/${v.model_stamp}`;
    const hit = this.#byName.get(name);
    if (hit && hit.version === version) return hit.resolved;
    const resolved = (async () => {
      const [integration, model] = await Promise.all([loadIntegration(this.#db, v.id), this.models.at(this.#db, v.model_id, v.model_stamp)]);
      return { integration, model };
    })();
    const entry = { version, resolved };
    this.#byName.set(name, entry);
    resolved.catch(() => {
      if (this.#byName.get(name) === entry) this.#byName.delete(name);
    });
    return resolved;
  }

  /** The canvas tasks of the integration named `name`; undefined when there is no such integration. */
  async tasksOf(name: string): Promise<IntegrationTask[] | undefined> {
    const found = await this.resolve(name);
    return found && integrationTasks(found.model, name);
  }

  /** Every operation of every configured integration as a canvas task `<integration>/<operationId>`, by integration name. */
  async listTasks(): Promise<IntegrationTask[]> {
    const out: IntegrationTask[] = [];
    for (const name of await integrationNames(this.#db)) out.push(...((await this.tasksOf(name)) ?? []));
    return out;
  }

  /** The model an integration is built on. @throws CodedError NOT_FOUND when its row is gone. */
  async modelOf(integration: Pick<IntegrationRecord, 'model_id'>): Promise<IntegrationModel> {
    const model = await this.models.get(this.#db, integration.model_id);
    if (!model) throw notFound(`integration model '${integration.model_id}' does not exist`);
    return model;
  }

  #compile(model: IntegrationModel, operationId: string): CompiledOperation {
    let ops = this.#operations.get(model);
    if (!ops) this.#operations.set(model, (ops = new Map()));
    const hit = ops.get(operationId);
    if (hit) return hit;
    const op = model.operations.find((o) => o.operationId === operationId);
    if (!op) {
      const dropped = model.dropped.find((d) => d.operationId === operationId);
      throw InvocationError.operationNotFound(
        dropped ? `operation '${operationId}' was dropped from model '${model.id}': ${dropped.reason}` : `model '${model.id}' has no operation '${operationId}'`,
      );
    }
    const compiled = { op, typed: this.#typed.operation(this.#digestOf(model), operationId) };
    ops.set(operationId, compiled);
    return compiled;
  }

  #digestOf(model: IntegrationModel): string {
    let digest = this.#digests.get(model);
    if (digest === undefined) this.#digests.set(model, (digest = this.#typed.digest(model.document)));
    return digest;
  }

  /**
   * Makes one call the way the integration's configuration routes it: from this process (`direct`), or by a worker
   * of its gateway cluster through the queue. A cluster nobody answers for is a string error after the timeout,
   * never a call from here instead (this process may not be able to reach that network segment, or must not).
   */
  async call(integration: IntegrationRecord, request: IntegrationCallRequest): Promise<IntegrationCallResult> {
    const cluster = clusterOf(integration);
    if (cluster === undefined) {
      const client = await this.#clientOrReason(integration);
      return typeof client === 'string' ? client : client.call(request);
    }
    if (!this.#queue) return `${NOT_MADE}: this integration's calls are routed to gateway cluster '${cluster}', and this process has no queue to send them to`;
    return callViaCluster({ db: this.#db, queue: this.#queue }, cluster, integration, request);
  }

  /**
   * This process's client of the integration, built from the record's configuration and cached by its revision. The
   * record's secrets are opened (decrypted) here, only when a client is built, and live on only inside the client.
   */
  async clientFor(integration: IntegrationRecord): Promise<IntegrationClient> {
    const { id, config_revision: revision } = integration;
    const cached = this.#clients.get(id);
    // A client whose secrets hold references is current while what they name is unchanged (read through the
    // resolver's cache: no backend request within its TTL); a rotated value builds a new client.
    if (cached && cached.revision === revision && (cached.references === undefined || (await sameReferencedValues(this.#db, cached.references)))) {
      if (cached.client.getLogLevel() !== integration.log_level) cached.client.setLogLevel(integration.log_level);
      return cached.client;
    }
    const pending = this.#building.get(id);
    if (pending && pending.revision === revision) return (await pending.client).client;
    const entry = { revision, client: this.#buildClient(integration) };
    this.#building.set(id, entry);
    try {
      const built = await entry.client;
      const current = this.#clients.get(id);
      if (current && current !== cached && current.revision >= revision) {
        // Another build of this or a newer revision was cached meanwhile: keep that one.
        if (current.client !== built.client) built.client.close();
        return current.client;
      }
      current?.client.close();
      this.#clients.set(id, { revision, client: built.client, references: built.references });
      return built.client;
    } finally {
      if (this.#building.get(id) === entry) this.#building.delete(id);
    }
  }

  /**
   * A client with the connection of the integration named `name` (authentication, TLS trust, proxy, timeout, logging,
   * secrets opened and resolved as for its own calls) aimed at another server: a `winrm` step reaches each device
   * with the credentials of the integration it names (the SCCM one, say), so no credential is ever written into a
   * runbook. A Negotiate authentication's SPN is `spn` when given, else the default `HTTP/<device host>` (the
   * integration's own SPN names its server).
   * The runtime owns the client (callers never close it): the most recently used {@link MAX_ENDPOINT_CLIENTS} are
   * kept per integration revision, endpoint and SPN, checked against their referenced secrets as {@link clientFor}'s
   * are. Keeping them is not only about connections: a Kerberos or NTLM refusal is remembered by the client that got
   * it (negotiate.ts holds a refused password for minutes), so a retried step does not ask the KDC again and count
   * toward the service account's lockout.
   * Resolves undefined when there is no such integration; `{integration}` without a client when it is in stub mode
   * (nothing may be called); a string saying why no client could be built (a cluster-routed integration: its
   * network segment may not be reachable from here; a secret reference that does not resolve).
   */
  async endpointClient(
    name: string,
    server: { protocol: 'http' | 'https'; host: string; port: number },
    opts: { spn?: string | undefined } = {},
  ): Promise<{ integration: IntegrationRecord; client?: IntegrationClient } | string | undefined> {
    const resolved = await this.resolve(name);
    if (!resolved) return undefined;
    const record = resolved.integration;
    if (record.stub_mode) return { integration: record };
    if (clusterOf(record) !== undefined) {
      return `${NOT_MADE}: integration '${record.name}' is routed to gateway cluster '${String(clusterOf(record))}'; calls to other endpoints with its connection are made from this process only`;
    }
    const key = `${record.id}/${record.config_revision}/${server.protocol}://${server.host}:${server.port}/${opts.spn ?? ''}`;
    const hit = this.#endpoints.get(key);
    if (hit && (hit.references === undefined || (await sameReferencedValues(this.#db, hit.references)))) {
      // Most recently used last: the first entry is the one to evict.
      this.#endpoints.delete(key);
      this.#endpoints.set(key, hit);
      if (hit.client.getLogLevel() !== record.log_level) hit.client.setLogLevel(record.log_level);
      return { integration: record, client: hit.client };
    }
    let built: BuiltClient;
    try {
      const opened = await openIntegrationSecrets(this.#db, record);
      const secrets = await resolveSecretValues(this.#db, opened);
      const config = fullConfig(record, secrets);
      // The integration's base path and API version belong to its own server, not the endpoint's.
      config['server'] = { ...server };
      const auth = config['authentication'];
      if (isRecord(auth) && auth['type'] === 'negotiate') {
        if (opts.spn !== undefined) auth['spn'] = opts.spn;
        else delete auth['spn'];
      }
      built = { client: createIntegrationClient(config, { logger: this.#logger, name: record.name }), references: referencesOf(opened, secrets) };
    } catch (e) {
      if (e instanceof SecretBackendError) return `${NOT_MADE}: a secret of integration '${record.name}' could not be resolved: ${e.message}`;
      throw e;
    }
    if (hit) retireClient(hit.client);
    this.#endpoints.delete(key);
    this.#endpoints.set(key, built);
    for (const [k, old] of this.#endpoints) {
      if (this.#endpoints.size <= MAX_ENDPOINT_CLIENTS) break;
      this.#endpoints.delete(k);
      retireClient(old.client);
    }
    return { integration: record, client: built.client };
  }

  async #buildClient(integration: IntegrationRecord): Promise<BuiltClient> {
    const opened = await openIntegrationSecrets(this.#db, integration);
    const secrets = await resolveSecretValues(this.#db, opened);
    const client = createIntegrationClient(fullConfig(integration, secrets), {
      logger: this.#logger,
      name: integration.name,
      onTokens: (tokens) => this.#tokensReceived(integration.id, tokens),
      // The `secrets_manager` proxy auth mode's username (not a secret field, so not resolved above) is a reference.
      resolveSecret: (reference) => resolveSecretReference(this.#db, reference),
    });
    return { client, references: referencesOf(opened, secrets) };
  }

  /**
   * {@link clientFor} for a call: a secret reference that cannot be resolved (backend unreachable, secret missing)
   * is the call's string error, naming the reference and the cause (never a value).
   */
  async #clientOrReason(integration: IntegrationRecord): Promise<IntegrationClient | string> {
    try {
      return await this.clientFor(integration);
    } catch (e) {
      if (e instanceof SecretBackendError) return `${NOT_MADE}: a secret of integration '${integration.name}' could not be resolved: ${e.message}`;
      throw e;
    }
  }

  #tokensReceived(id: number, tokens: OAuthTokens): void {
    const capture = this.#captures.get(id);
    if (capture) return capture(tokens);
    const p = this.#db
      .transaction((tx) => storeOAuthTokens(tx, id, tokens))
      .then(({ before, after }) => {
        // The new revision holds exactly the tokens this client already has: keep the client (and its connections).
        const cached = this.#clients.get(id);
        if (cached && cached.revision === before) cached.revision = after;
      })
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
  async authorizationUrl(integration: IntegrationRecord, state: string): Promise<string | undefined> {
    return (await this.clientFor(integration)).authorizationUrl(state);
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
      const failed = await (await this.clientFor(integration)).completeAuthorizationCode(code);
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
    for (const { client } of this.#endpoints.values()) client.close();
    this.#endpoints.clear();
    this.#byName.clear();
  }

  /**
   * Runs the health operation: `online` for a 2xx within `slow_ms`, `degraded` for a slower 2xx or any other
   * status, `offline` when the call could not be made (or the operation cannot be invoked any more).
   * @throws CodedError CONFLICT when no health operation is configured.
   */
  async checkHealth(integration: IntegrationRecord): Promise<HealthResult> {
    const health = integration.health;
    if (!health) throw conflict(`integration '${integration.name}' has no health-check operation configured`);
    const slow = health.slow_ms ?? 2000;
    const started = Date.now();
    let result: IntegrationCallResult;
    try {
      result = await this.invoke(integration, health.operation_id, {});
    } catch (e) {
      if (e instanceof CodedError) return { status: 'offline', detail: e.message, http_status: null, latency_ms: Date.now() - started };
      throw e;
    }
    const latency = Date.now() - started;
    if (!isEnvelope(result)) return { status: 'offline', detail: result, http_status: null, latency_ms: latency };
    if (!result.ok) return { status: 'degraded', detail: `${health.operation_id} answered ${result.status} ${result.statusText}`.trim(), http_status: result.status, latency_ms: latency };
    if (latency > slow) return { status: 'degraded', detail: `${health.operation_id} took ${latency} ms (slower than ${slow} ms)`, http_status: result.status, latency_ms: latency };
    return { status: 'online', detail: null, http_status: result.status, latency_ms: latency };
  }
}

/** The references among an integration's secrets, and a digest of the values they named when its client was built. */
interface ReferencedSecrets {
  references: string[];
  digest: string;
}

/** Endpoint clients kept by {@link IntegrationRuntime.endpointClient} (devices a runbook reaches with a connection). */
export const MAX_ENDPOINT_CLIENTS = 64;
/** An evicted endpoint client may still be in a step's call: it is closed this long after. Milliseconds. */
const RETIRED_CLIENT_GRACE_MS = 5 * 60_000;

function retireClient(client: IntegrationClient): void {
  setTimeout(() => client.close(), RETIRED_CLIENT_GRACE_MS).unref();
}

interface BuiltClient {
  client: IntegrationClient;
  /** Undefined when no secret is a reference: such a client is current for as long as its revision. */
  references: ReferencedSecrets | undefined;
}

interface CachedClient extends BuiltClient {
  revision: number;
}

const digestOf = (values: readonly unknown[]): string => createHash('sha256').update(JSON.stringify(values)).digest('hex');

function referencesOf(opened: Record<string, unknown>, resolved: Record<string, unknown>): ReferencedSecrets | undefined {
  const pointers = Object.keys(opened).filter((p) => looksLikeSecretReference(opened[p]));
  if (pointers.length === 0) return undefined;
  return { references: pointers.map((p) => opened[p] as string), digest: digestOf(pointers.map((p) => resolved[p])) };
}

/** Whether the references still name the values the client was built with. @throws SecretBackendError */
async function sameReferencedValues(db: Database, refs: ReferencedSecrets): Promise<boolean> {
  const values = await Promise.all(refs.references.map((r) => resolveSecretReference(db, r)));
  return digestOf(values) === refs.digest;
}

/** The integration runtime of a process: build it once (with the database) and hand it to every user. */
export function createIntegrationRuntime(deps: IntegrationRuntimeDeps): IntegrationRuntime {
  return new IntegrationRuntime(deps);
}

/** `headers` with `Idempotency-Key` set to `key` (any other spelling dropped); the same object when there is no key. */
function withIdempotencyKey(headers: Record<string, unknown> | undefined, key: string | undefined): Record<string, unknown> | undefined {
  if (key === undefined) return headers;
  const rest = Object.fromEntries(Object.entries(headers ?? {}).filter(([k]) => k.toLowerCase() !== 'idempotency-key'));
  return { ...rest, 'Idempotency-Key': key };
}
