import type { RequestHandler } from 'express';
import { endSpan, observeHttpRequest, startServerSpan, withOpenSpan } from '../../adapter';

/**
 * The request's metrics and server span. Comes first, so every later middleware, the handler and their log lines
 * run inside the span (continuing the caller's W3C `traceparent`). The duration is recorded under the operationId
 * that `resolveOperation` found (`unknown` for requests that matched none: 404, 405), never the raw path, so
 * the label set stays bounded whatever callers send.
 */
export function requestTelemetry(): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const open = startServerSpan(`${req.method} request`, req.headers, { 'http.request.method': req.method });
    res.on('finish', () => {
      const op = req.operation;
      const operationId = op?.operationId ?? 'unknown';
      observeHttpRequest(operationId, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
      if (open) {
        if (op) open.span.updateName(`${req.method} ${op.path}`);
        endSpan(open, {
          'http.response.status_code': res.statusCode,
          'provisio.operation_id': operationId,
          ...(op ? { 'http.route': op.path } : {}),
        }, res.statusCode >= 500 ? `status ${res.statusCode}` : undefined);
      }
    });
    withOpenSpan(open, next);
  };
}
