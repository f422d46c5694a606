// The telemetry room on its own: what the hooks cost and do with each side off and on, the deferred run span's
// ids, traceparent parsing, and the event instruments' exposition.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../log';
import {
  activeSpanIds,
  currentTraceparent,
  deferSpan,
  endDeferredSpan,
  eventMetricsRegistry,
  flushTraces,
  inSpan,
  observeIntegrationCall,
  setMetricsRecording,
  startClientSpan,
  startServerSpan,
  startTracing,
  statusClass,
  stopTracing,
  tracingEnabled,
  tracingOptionsFromEnv,
} from './index';

interface Exported {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string;
}

describe('telemetry', () => {
  let collector: Server;
  let endpoint = '';
  const received: Exported[] = [];

  beforeAll(async () => {
    collector = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const parsed = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: Exported[] }[] }[] };
        for (const rs of parsed.resourceSpans) for (const ss of rs.scopeSpans) received.push(...ss.spans);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
  });
  afterAll(async () => {
    await stopTracing();
    await new Promise((r) => collector.close(r));
  });

  test('tracing options come from the standard variables, off when neither endpoint is set', () => {
    expect(tracingOptionsFromEnv({})).toBeUndefined();
    expect(tracingOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' })).toEqual({ endpoint: 'http://c:4318/v1/traces', serviceName: 'provisio' });
    expect(tracingOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/x', OTEL_SERVICE_NAME: 'p2' })).toEqual({
      endpoint: 'http://t:1/x',
      serviceName: 'p2',
    });
    expect(tracingOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
  });

  test('off: no span, no context, no traceparent', async () => {
    expect(tracingEnabled()).toBe(false);
    const headers: Record<string, unknown> = {};
    expect(startClientSpan('GET x', headers, {})).toBeUndefined();
    expect(headers).toEqual({});
    expect(startServerSpan('GET', { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }, {})).toBeUndefined();
    expect(deferSpan()).toBeUndefined();
    expect(await inSpan('x', {}, async (span) => [span, currentTraceparent(), activeSpanIds()])).toEqual([undefined, undefined, undefined]);
  });

  test('on: spans nest, a client span writes its traceparent, a log line names the active span', async () => {
    startTracing({ endpoint, serviceName: 'unit' });
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ stream: new Writable({ write: (c: Buffer, _e, next) => (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), next()) }) });
    const headers: Record<string, unknown> = {};
    let outer = '';
    await inSpan('outer', {}, async () => {
      outer = currentTraceparent()!;
      logger.info('inside');
      const client = startClientSpan('GET thing', headers, { a: 1 });
      client!.span.end();
    });
    logger.info('outside');
    const [, traceId, spanId] = /^00-(\w{32})-(\w{16})-01$/.exec(outer)!;
    expect(headers['traceparent']).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(headers['traceparent']).not.toContain(spanId);
    expect(lines[0]).toMatchObject({ message: 'inside', trace_id: traceId, span_id: spanId });
    expect(lines[1]!['trace_id']).toBeUndefined();
  });

  test('a deferred span is recorded later with the ids its children already point at, and its real start', async () => {
    let deferred: ReturnType<typeof deferSpan>;
    await inSpan('parent', {}, async () => {
      deferred = deferSpan();
    });
    const [, traceId, runSpanId] = /^00-(\w{32})-(\w{16})-01$/.exec(deferred!.traceparent)!;
    // A child started elsewhere, from the stored traceparent only.
    await inSpan('child', { parent: deferred!.traceparent }, async () => undefined);
    await new Promise((r) => setTimeout(r, 20));
    endDeferredSpan(deferred, 'deferred', { k: 'v' });
    await flushTraces();
    const run = received.find((s) => s.name === 'deferred')!;
    const parent = received.find((s) => s.name === 'parent')!;
    const child = received.find((s) => s.name === 'child')!;
    expect(run).toMatchObject({ traceId, spanId: runSpanId, parentSpanId: parent.spanId });
    expect(child).toMatchObject({ traceId, parentSpanId: runSpanId });
    expect(BigInt(run.startTimeUnixNano) / 1_000_000n).toBe(BigInt(deferred!.startedAtMs));
    // Ids are drawn at random again afterwards.
    const next = deferSpan();
    expect(next!.traceparent).not.toContain(runSpanId);
  });

  test('a deferred span outside any trace starts one; a malformed parent starts a new trace', async () => {
    const root = deferSpan()!;
    expect(root.parent).toBeUndefined();
    endDeferredSpan(root, 'root run', {});
    await inSpan('orphan', { parent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' }, async () => undefined);
    await flushTraces();
    const r = received.find((s) => s.name === 'root run')!;
    expect(`00-${r.traceId}-${r.spanId}-01`).toBe(root.traceparent);
    expect(r.parentSpanId ?? '').toBe('');
    expect(received.find((s) => s.name === 'orphan')!.parentSpanId ?? '').toBe('');
  });

  test('status classes are a bounded set; recording can be turned off', async () => {
    expect([100, 204, 302, 404, 503, 700].map(statusClass)).toEqual(['1xx', '2xx', '3xx', '4xx', '5xx', 'other']);
    const count = async () => {
      const m = await eventMetricsRegistry().getSingleMetricAsString('provisio_integration_call_duration_seconds');
      return Number(/_count\{integration="unit",status_class="not_made"\} (\d+)/.exec(m)?.[1] ?? 0);
    };
    observeIntegrationCall('unit', undefined, 0.01);
    expect(await count()).toBe(1);
    setMetricsRecording(false);
    observeIntegrationCall('unit', undefined, 0.01);
    setMetricsRecording(true);
    expect(await count()).toBe(1);
  });
});
