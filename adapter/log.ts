import { AsyncLocalStorage } from 'node:async_hooks';
import winston from 'winston';
import { activeSpanIds } from './telemetry';

/** Per-request (or per-job) context; every log line written inside it carries its ids. */
export interface LogContext {
  requestId?: string;
  jobId?: string;
}
const context = new AsyncLocalStorage<LogContext>();

/** Runs `fn` with `ctx` attached to every log line written inside it, across awaits. */
export function withLogContext<T>(ctx: LogContext, fn: () => T): T {
  return context.run(ctx, fn);
}

export function currentLogContext(): LogContext | undefined {
  return context.getStore();
}

// Keys whose values never reach a log line, whatever object they sit in.
const SECRET_KEY = /pass(word)?|secret|token|authorization|api[-_]?key|private[-_]?key|cookie|x-admin-key|signature/i;

/** A deep copy of `value` with every secret-looking key's value replaced by "[redacted]". */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = SECRET_KEY.test(k) && v !== null && v !== undefined && v !== '' ? '[redacted]' : redact(v, depth + 1);
  }
  return out;
}

const addContext = winston.format((info) => {
  const ctx = context.getStore();
  if (ctx?.requestId) info['request_id'] = ctx.requestId;
  if (ctx?.jobId) info['job_id'] = ctx.jobId;
  // Inside a span (tracing on), the line names it, so logs and traces can be joined on trace_id.
  const span = activeSpanIds();
  if (span) {
    info['trace_id'] = span.traceId;
    info['span_id'] = span.spanId;
  }
  return info;
});

// winston keeps the level and the rendered message under symbol keys; they must survive redaction.
const redactSecrets = winston.format((info) => {
  const clean = redact(info) as winston.Logform.TransformableInfo;
  for (const sym of Object.getOwnPropertySymbols(info)) {
    (clean as unknown as Record<symbol, unknown>)[sym] = (info as unknown as Record<symbol, unknown>)[sym];
  }
  return clean;
});

export type Logger = winston.Logger;

/** A JSON-lines logger; `silent` is for tests that do not want output; `stream` replaces stdout (tests read it). */
export function createLogger(opts: { level?: string; silent?: boolean; stream?: NodeJS.WritableStream } = {}): Logger {
  return winston.createLogger({
    level: opts.level ?? 'info',
    silent: opts.silent ?? false,
    format: winston.format.combine(addContext(), redactSecrets(), winston.format.timestamp(), winston.format.json()),
    transports: [opts.stream ? new winston.transports.Stream({ stream: opts.stream }) : new winston.transports.Console()],
  });
}
