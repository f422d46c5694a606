import {
  context as otelContext,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
// Only types from the SDK here: its modules (exporter, provider, propagator) took about a tenth of the service's
// start-up to load, and tracing is off unless asked for. startTracing requires them when it turns tracing on.
import type { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { IdGenerator } from '@opentelemetry/sdk-trace-base';
import type { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

/*
 * Traces, off by default. While off, every helper here returns after one boolean test: no context is read or
 * propagated, no span object is made and no `traceparent` is sent. (`trace.getTracer()` without a provider would
 * still hand out a NonRecordingSpan per call and keep reading the active context; the flag avoids even that.)
 */

export interface TracingOptions {
  /** OTLP/HTTP traces endpoint, e.g. `http://collector:4318/v1/traces`. */
  endpoint: string;
  /** `service.name` of every span. */
  serviceName: string;
  /** Extra headers for the exporter (OTEL_EXPORTER_OTLP_HEADERS is also read by the exporter itself). */
  headers?: Record<string, string>;
}

/** A span begun in one process and recorded, with its real start and end, in whichever process ends it. */
export interface DeferredSpan {
  /** W3C traceparent naming the span itself: children started before it ends point at it. */
  traceparent: string;
  /** W3C traceparent of its parent; absent for a span that starts a trace. */
  parent?: string;
  /** ms since the epoch. */
  startedAtMs: number;
}

export type { Span };
export { SpanKind };

/**
 * The SDK draws span and trace ids from here. A deferred span (see {@link deferSpan}) picks its span id when it
 * begins, long before its Span object exists; when it is recorded, the next ids are taken from `next` instead.
 * startSpan asks for them synchronously, so nothing else can take them in between.
 */
class PresetIdGenerator implements IdGenerator {
  readonly #random: IdGenerator;
  constructor(random: IdGenerator) {
    this.#random = random;
  }
  next: { traceId: string; spanId: string } | undefined;
  generateTraceId(): string {
    return this.next?.traceId ?? this.#random.generateTraceId();
  }
  generateSpanId(): string {
    return this.next?.spanId ?? this.#random.generateSpanId();
  }
}

let enabled = false;
let tracer: Tracer | undefined;
let provider: NodeTracerProvider | undefined;
// Made by the first startTracing; every user of them runs only while tracing is on.
let ids: PresetIdGenerator | undefined;
let w3c: W3CTraceContextPropagator | undefined;

/** True while traces are exported; every instrumented path checks this first. */
export function tracingEnabled(): boolean {
  return enabled;
}

/**
 * The tracing options the standard OpenTelemetry variables ask for, or undefined (tracing off) when neither
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT nor OTEL_EXPORTER_OTLP_ENDPOINT is set. The generic endpoint gets
 * `/v1/traces` appended, as the OTLP specification says; the traces one is used as given.
 */
export function tracingOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): TracingOptions | undefined {
  const traces = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'];
  const base = env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  if (env['OTEL_SDK_DISABLED'] === 'true') return undefined;
  const endpoint = traces || (base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined);
  if (!endpoint) return undefined;
  return { endpoint, serviceName: env['OTEL_SERVICE_NAME'] || 'provisio' };
}

/**
 * Turns tracing on for this process: an OTLP/HTTP (JSON) exporter behind a batch span processor, the
 * AsyncLocalStorage context manager and the W3C trace context propagator, registered globally.
 */
export function startTracing(opts: TracingOptions): void {
  if (enabled) return;
  const { W3CTraceContextPropagator } = require('@opentelemetry/core') as typeof import('@opentelemetry/core');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
  const { resourceFromAttributes } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  const { BatchSpanProcessor, RandomIdGenerator } = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node') as typeof import('@opentelemetry/sdk-trace-node');
  ids ??= new PresetIdGenerator(new RandomIdGenerator());
  w3c ??= new W3CTraceContextPropagator();
  const exporter = new OTLPTraceExporter({ url: opts.endpoint, ...(opts.headers ? { headers: opts.headers } : {}) });
  provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': opts.serviceName }),
    idGenerator: ids,
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register();
  tracer = provider.getTracer('provisio');
  enabled = true;
}

/** Sends what is buffered and turns tracing off again (shutdown; tests). */
export async function stopTracing(): Promise<void> {
  if (!provider) return;
  const p = provider;
  enabled = false;
  tracer = undefined;
  provider = undefined;
  await p.forceFlush();
  await p.shutdown();
  trace.disable();
  otelContext.disable();
  propagation.disable();
}

/** Sends the spans buffered so far (tests, shutdown). */
export async function flushTraces(): Promise<void> {
  await provider?.forceFlush();
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

function spanContextOf(traceparent: string | undefined): SpanContext | undefined {
  const m = traceparent ? TRACEPARENT.exec(traceparent) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16) & TraceFlags.SAMPLED, isRemote: true };
}

const traceparentOf = (sc: SpanContext): string => `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & TraceFlags.SAMPLED}`;

/** The W3C traceparent of the active span, to carry across a queue; undefined when off or outside a trace. */
export function currentTraceparent(): string | undefined {
  if (!enabled) return undefined;
  const sc = trace.getSpanContext(otelContext.active());
  return sc && trace.isSpanContextValid(sc) ? traceparentOf(sc) : undefined;
}

/** The trace and span id of the active span (log lines carry them); undefined when off or outside a trace. */
export function activeSpanIds(): { traceId: string; spanId: string } | undefined {
  if (!enabled) return undefined;
  const sc = trace.getSpanContext(otelContext.active());
  return sc && trace.isSpanContextValid(sc) ? { traceId: sc.traceId, spanId: sc.spanId } : undefined;
}

function finish(span: Span, error: unknown): void {
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  }
  span.end();
}

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** Continue the trace named by this W3C traceparent (a job's) instead of the active context. */
  parent?: string | undefined;
}

/**
 * Runs `fn` inside a new span (child of the active span, or of `opts.parent`), ended when `fn` settles; a
 * rejection marks it as an error. When tracing is off `fn` runs as is and receives undefined.
 */
export function inSpan<T>(name: string, opts: SpanOptions, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!enabled || !tracer) return fn(undefined);
  const parentCtx = opts.parent !== undefined ? contextOf(opts.parent) : otelContext.active();
  const span = tracer.startSpan(name, { kind: opts.kind ?? SpanKind.INTERNAL, ...(opts.attributes ? { attributes: opts.attributes } : {}) }, parentCtx);
  return otelContext.with(trace.setSpan(parentCtx, span), async () => {
    try {
      const out = await fn(span);
      span.end();
      return out;
    } catch (e) {
      finish(span, e);
      throw e;
    }
  });
}

function contextOf(traceparent: string | undefined): Context {
  const sc = spanContextOf(traceparent);
  return sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT;
}

/** A span kept open by the caller (an inbound request, ended when its response is sent). */
export interface OpenSpan {
  span: Span;
  /** The context with this span active: run the rest of the request in it. */
  context: Context;
}

/**
 * Starts a server span for an inbound request, continuing the caller's trace when `headers` carry a valid W3C
 * `traceparent`. Undefined when tracing is off.
 */
export function startServerSpan(name: string, headers: Record<string, string | string[] | undefined>, attributes: Attributes): OpenSpan | undefined {
  if (!enabled || !tracer) return undefined;
  const parent = propagation.extract(ROOT_CONTEXT, headers);
  const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  return { span, context: trace.setSpan(parent, span) };
}

/** Runs `fn` with `open`'s span active (no-op wrapper when tracing is off). */
export function withOpenSpan<T>(open: OpenSpan | undefined, fn: () => T): T {
  return open ? otelContext.with(open.context, fn) : fn();
}

/** Ends a span started with {@link startServerSpan} or {@link startClientSpan}; `error` marks it failed. */
export function endSpan(open: OpenSpan | undefined, attributes?: Attributes, error?: unknown): void {
  if (!open) return;
  if (attributes) open.span.setAttributes(attributes);
  finish(open.span, error);
}

/**
 * Starts a client span for an outbound call and writes its W3C `traceparent` (and `tracestate`) into `headers`,
 * so the server called continues the same trace. Undefined, and `headers` untouched, when tracing is off.
 */
export function startClientSpan(name: string, headers: Record<string, unknown>, attributes: Attributes): OpenSpan | undefined {
  if (!enabled || !tracer || !w3c) return undefined;
  const active = otelContext.active();
  const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, active);
  const ctx = trace.setSpan(active, span);
  w3c.inject(ctx, headers, { set: (carrier, key, value) => ((carrier as Record<string, unknown>)[key] = value) });
  return { span, context: ctx };
}

/**
 * Begins a span that may end in another process (a workflow run: started in a request or a job, finished by
 * whichever worker runs its last step). Only ids and the start time are kept, as plain data to store with the
 * work; {@link endDeferredSpan} records the span with them. Continues the active trace, or starts one.
 * Undefined when tracing is off.
 */
export function deferSpan(): DeferredSpan | undefined {
  if (!enabled || !ids) return undefined;
  const parent = trace.getSpanContext(otelContext.active());
  const valid = parent !== undefined && trace.isSpanContextValid(parent);
  const self: SpanContext = {
    traceId: valid ? parent.traceId : ids.generateTraceId(),
    spanId: ids.generateSpanId(),
    traceFlags: valid ? parent.traceFlags : TraceFlags.SAMPLED,
  };
  return { traceparent: traceparentOf(self), ...(valid ? { parent: traceparentOf(parent) } : {}), startedAtMs: Date.now() };
}

/** Records a span begun with {@link deferSpan}, ending now. Nothing when tracing is off or `deferred` is absent. */
export function endDeferredSpan(deferred: DeferredSpan | undefined, name: string, attributes: Attributes, error?: string): void {
  if (!enabled || !tracer || !deferred || !ids) return;
  const self = spanContextOf(deferred.traceparent);
  if (!self) return;
  ids.next = { traceId: self.traceId, spanId: self.spanId };
  let span: Span;
  try {
    span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes, startTime: deferred.startedAtMs }, contextOf(deferred.parent));
  } finally {
    ids.next = undefined;
  }
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  span.end();
}

/** Marks `span` failed without ending it (a step whose executor answered an error rather than throwing). */
export function failSpan(span: Span | undefined, message: string): void {
  span?.setStatus({ code: SpanStatusCode.ERROR, message });
}
