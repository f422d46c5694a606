// Observability: Prometheus metrics (prom-client, on registries of our own) and OpenTelemetry traces (off unless
// an OTLP endpoint is configured). Every hook here is cheap when its side is off: one boolean test.
export {
  countLeaverEvent,
  countScimRequest,
  eventMetricsRegistry,
  metricsRecording,
  observeHttpRequest,
  observeIntegrationCall,
  observeRun,
  observeStep,
  setMetricsRecording,
  statusClass,
} from './metrics';
export { createMetricsExposition } from './scrape-gauges';
export type { MetricsExposition } from './scrape-gauges';
export {
  activeSpanIds,
  currentTraceparent,
  deferSpan,
  endDeferredSpan,
  endSpan,
  failSpan,
  flushTraces,
  inSpan,
  SpanKind,
  startClientSpan,
  startServerSpan,
  startTracing,
  stopTracing,
  tracingEnabled,
  tracingOptionsFromEnv,
  withOpenSpan,
} from './tracing';
export type { DeferredSpan, OpenSpan, Span, SpanOptions, TracingOptions } from './tracing';
