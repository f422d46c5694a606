import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/*
 * The process's event instruments, on a registry of our own (never prom-client's global one). They are
 * process-wide, as the events are: an HTTP request, a step, an outbound call happen once whichever app or engine
 * of the process saw them. Each app's exposition merges them with its own scrape-time gauges (scrape-gauges.ts),
 * so tests that build several apps in one process never register a name twice.
 *
 * Label values come from bounded sets only: operationIds of the spec, task kinds, integration names, status
 * classes, outcomes. Never a path, a user, an email or an id.
 */

const eventRegistry = new Registry();
// Node's own (CPU, memory, event loop lag, GC, handles), as provisio_process_* and provisio_nodejs_*.
collectDefaultMetrics({ register: eventRegistry, prefix: 'provisio_' });

// Request and step durations range from a millisecond to minutes.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const RUN_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

const httpDuration = new Histogram({
  name: 'provisio_http_request_duration_seconds',
  help: 'Inbound HTTP requests by operationId of the spec (`unknown` when none matched) and status.',
  labelNames: ['operation_id', 'status'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [eventRegistry],
});

const runs = new Counter({
  name: 'provisio_workflow_runs_total',
  help: 'Workflow runs that ended, by workflow and outcome (succeeded, failed, cancelled).',
  labelNames: ['workflow', 'outcome'] as const,
  registers: [eventRegistry],
});
const runDuration = new Histogram({
  name: 'provisio_workflow_run_duration_seconds',
  help: 'From a run being created to its end, by workflow and outcome.',
  labelNames: ['workflow', 'outcome'] as const,
  buckets: RUN_BUCKETS,
  registers: [eventRegistry],
});
const steps = new Counter({
  name: 'provisio_workflow_steps_total',
  help: 'Workflow step attempts that ended, by task kind and outcome (succeeded, failed, or the error code class).',
  labelNames: ['kind', 'outcome'] as const,
  registers: [eventRegistry],
});
const stepDuration = new Histogram({
  name: 'provisio_workflow_step_duration_seconds',
  help: 'Workflow step attempts by task kind and outcome.',
  labelNames: ['kind', 'outcome'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [eventRegistry],
});
const integrationDuration = new Histogram({
  name: 'provisio_integration_call_duration_seconds',
  help: 'Outbound integration calls by integration and status class (2xx..5xx, or not_made when no response came).',
  labelNames: ['integration', 'status_class'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [eventRegistry],
});
const scimRequests = new Counter({
  name: 'provisio_scim_requests_total',
  help: 'SCIM requests by operation and status.',
  labelNames: ['operation', 'status'] as const,
  registers: [eventRegistry],
});
const leaverEvents = new Counter({
  name: 'provisio_leaver_events_total',
  help: 'Leaver events by source (hr, scim, graph, …) and outcome.',
  labelNames: ['source', 'outcome'] as const,
  registers: [eventRegistry],
});

let recording = true;

/**
 * Turns the recording of events on or off for this process (METRICS_ENABLED=false). Off, each hook returns after
 * one test; the exposition still answers, with the scrape-time gauges and process metrics.
 */
export function setMetricsRecording(on: boolean): void {
  recording = on;
}

export function metricsRecording(): boolean {
  return recording;
}

/** The registry of the process-wide instruments (merged into each app's exposition). */
export function eventMetricsRegistry(): Registry {
  return eventRegistry;
}

const STATUS_CLASSES = ['1xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** `2xx`..`5xx` for an HTTP status, else `other`: a bounded label whatever a server answers. */
export function statusClass(status: number): string {
  return STATUS_CLASSES[Math.floor(status / 100)] ?? 'other';
}

/** Records one inbound request. `seconds` from process.hrtime. */
export function observeHttpRequest(operationId: string, status: number, seconds: number): void {
  if (!recording) return;
  httpDuration.observe({ operation_id: operationId, status: String(status) }, seconds);
}

export function observeRun(workflow: string, outcome: string, seconds: number): void {
  if (!recording) return;
  runs.inc({ workflow, outcome });
  runDuration.observe({ workflow, outcome }, seconds);
}

export function observeStep(kind: string, outcome: string, seconds: number): void {
  if (!recording) return;
  steps.inc({ kind, outcome });
  stepDuration.observe({ kind, outcome }, seconds);
}

/** `status` of the response, or undefined when none came (not made, timed out, refused). */
export function observeIntegrationCall(integration: string, status: number | undefined, seconds: number): void {
  if (!recording) return;
  integrationDuration.observe({ integration, status_class: status === undefined ? 'not_made' : statusClass(status) }, seconds);
}

export function countScimRequest(operation: string, status: number): void {
  if (!recording) return;
  scimRequests.inc({ operation, status: String(status) });
}

export function countLeaverEvent(source: string, outcome: string): void {
  if (!recording) return;
  leaverEvents.inc({ source, outcome });
}
