/**
 * Gateway clusters: calls of an integration whose configuration routes them to a cluster are made by that cluster's
 * workers (`provisio worker --cluster <id>`), which take them from the queue `integration.call.<id>`.
 */
import {
  NOT_MADE,
  DEFAULT_TIMEOUT_MS,
  SecretBackendError,
  type Database,
  type IntegrationCallRequest,
  type IntegrationCallResult,
  type IntegrationClient,
  type Job,
  type JobQueue,
  type Logger,
} from '../../adapter';
import { loadIntegration, type IntegrationRecord } from './integrations';

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
  await queue.createQueue(name);
  seen.add(name);
}

function timeoutOf(integration: Pick<IntegrationRecord, 'config'>): number {
  const t = (integration.config as { timeout?: unknown }).timeout;
  return typeof t === 'number' && t > 0 ? t : DEFAULT_TIMEOUT_MS;
}

/**
 * Sends the call to `integration.call.<cluster>` and polls the job (its `output` carries the result, so no table of
 * our own is needed) until the integration's timeout. A job nobody took in time is deleted, so a worker that starts
 * later never makes a call its caller has given up on; a finished job is deleted too, so responses are not kept in
 * the queue's tables. Every outcome is a result (the envelope, or a string saying why there is none).
 */
export async function callViaCluster(
  deps: { db: Database; queue: JobQueue },
  cluster: string,
  integration: IntegrationRecord,
  request: IntegrationCallRequest,
): Promise<IntegrationCallResult> {
  const { db, queue } = deps;
  const name = clusterQueueName(cluster);
  const timeout = timeoutOf(integration);
  await ensureClusterQueue(queue, name);
  let id: string;
  try {
    id = await queue.send(db, name, toJob(integration, request), { retryLimit: 0, expireInSeconds: Math.max(1, Math.ceil(timeout / 1000) + 5) });
  } catch {
    return `${NOT_MADE}: the queue of gateway cluster '${cluster}' refused the call`;
  }
  const deadline = Date.now() + timeout;
  try {
    for (;;) {
      const job = await queue.getJobById<ClusterCallJob>(name, id);
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
    await queue.deleteJob(name, id).catch(() => undefined);
  }
}

/** What a cluster worker needs of the process's integration runtime: its cached client of an integration. */
export interface ClusterCallClients {
  clientFor(integration: IntegrationRecord): Promise<Pick<IntegrationClient, 'call'>>;
}

/**
 * `provisio worker --cluster <id>`: consumes `integration.call.<id>`, making each call with this process's own
 * client of the integration (loaded with its secrets from the database, cached per integration and revision by the
 * runtime, so proxy, TLS and auth settings apply here). Every outcome completes the job: the envelope, or the string
 * error.
 */
export async function registerClusterWorker(deps: {
  db: Database;
  queue: JobQueue;
  logger: Logger;
  integrations: ClusterCallClients;
  cluster: string;
  teamSize?: number;
}): Promise<void> {
  const { db, queue, logger, cluster, integrations } = deps;
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
    let client: Pick<IntegrationClient, 'call'>;
    try {
      client = await integrations.clientFor(integration);
    } catch (e) {
      // A secret reference this worker cannot resolve fails the call with a string naming it, as a direct call does.
      if (e instanceof SecretBackendError) return `${NOT_MADE}: a secret of integration '${integration.name}' could not be resolved: ${e.message}`;
      throw e;
    }
    return client.call(fromJob(data));
  };
  const work = async (jobs: Job<ClusterCallJob>[]): Promise<ClusterCallOutput | undefined> => {
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
  for (let i = 0; i < (deps.teamSize ?? 4); i += 1) await queue.work<ClusterCallJob>(name, work, { batchSize: 1, pollingIntervalSeconds: 0.5 });
  logger.info('cluster worker started', { cluster, queue: name });
}
