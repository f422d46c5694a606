// A loopback OTLP/HTTP trace receiver: accepts `POST /v1/traces` with the JSON encoding of
// ExportTraceServiceRequest (what @opentelemetry/exporter-trace-otlp-http sends) and keeps the spans, flattened.
// Protobuf bodies are refused with 415, as a collector configured for JSON only would.
import { startLoopbackServer, sendJson, type LoopbackServer } from './loopback-server';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  /** 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Record<string, unknown>;
  status: { code?: number; message?: string };
  serviceName: string | undefined;
}

export interface OtlpReceiver extends LoopbackServer {
  /** `http://127.0.0.1:<port>/v1/traces` */
  endpoint: string;
  spans: ReceivedSpan[];
}

interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface KeyValue {
  key: string;
  value: AnyValue;
}

const valueOf = (v: AnyValue): unknown => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.boolValue ?? v.doubleValue));
const attrs = (kvs: KeyValue[] | undefined): Record<string, unknown> => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, valueOf(kv.value)]));
// OTLP/JSON writes ids as hex (the specification's choice for JSON); base64 is accepted too, from older encoders.
const hexId = (id: string | undefined, len: number): string => {
  if (!id) return '';
  if (new RegExp(`^[0-9a-f]{${len}}$`).test(id)) return id;
  return Buffer.from(id, 'base64').toString('hex');
};

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const server = await startLoopbackServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/traces') return sendJson(res, 404, { error: 'not found' });
    if (!/^application\/json/.test(req.headers['content-type'] ?? '')) return sendJson(res, 415, { error: 'JSON only' });
    const body = JSON.parse(req.body) as {
      resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[];
    };
    for (const rs of body.resourceSpans ?? []) {
      const serviceName = attrs(rs.resource?.attributes)['service.name'] as string | undefined;
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          spans.push({
            traceId: hexId(s['traceId'] as string, 32),
            spanId: hexId(s['spanId'] as string, 16),
            parentSpanId: hexId(s['parentSpanId'] as string | undefined, 16),
            name: String(s['name']),
            kind: Number(s['kind'] ?? 0),
            attributes: attrs(s['attributes'] as KeyValue[] | undefined),
            status: (s['status'] ?? {}) as { code?: number; message?: string },
            serviceName,
          });
        }
      }
    }
    sendJson(res, 200, {});
  });
  return Object.assign(server, { endpoint: `${server.url}/v1/traces`, spans });
}
