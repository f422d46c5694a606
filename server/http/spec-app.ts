import { randomUUID } from 'node:crypto';
import express, { type RequestHandler, type Router } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { withLogContext, type Logger } from '../../adapter';
import { toExpress, type SpecHandler, type SpecHandlerTable } from '../api/handler';
import { AppError, ErrorCode } from '../errors';
import type { OpenApiDocument, SpecOperation } from '../spec';
import { cacheRouteRegexps } from './route-regexp-cache';

// The pieces every spec-routed app (the service in server/app.ts, the AD gateway in server/gateway/) is built
// from, so both answer with the same request ids, logs, validation and problem documents.

/** Gives each request an id (the caller's `X-Request-Id` or a new one) and logs it when it finishes. */
export function requestContext(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const requestId = req.header('x-request-id')?.slice(0, 128) || randomUUID();
    res.locals['requestId'] = requestId;
    res.setHeader('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      if (!logger.isLevelEnabled('http')) return;
      withLogContext({ requestId }, () =>
        logger.http('request', {
          method: req.method,
          path: req.path,
          status: res.statusCode,
          duration_ms: Number(process.hrtime.bigint() - started) / 1e6,
        }),
      );
    });
    withLogContext({ requestId }, next);
  };
}

/** Request validation against `spec` (always), response validation when asked (tests). Compiled once. */
export function specValidator(spec: OpenApiDocument, opts: { validateResponses: boolean }): RequestHandler[] {
  cacheRouteRegexps();
  return OpenApiValidator.middleware({
    apiSpec: spec as never,
    // Bodies are never coerced (a JSON 5 is not the string "5"); parameters are always coerced by the validator.
    validateRequests: { allowUnknownQueryParameters: false, coerceTypes: false },
    validateResponses: opts.validateResponses ? { onError: undefined } : false,
    validateSecurity: false,
    validateFormats: true,
    ignoreUndocumented: false,
    ignorePaths: /^\/(docs|openapi\.json)(\/|$)/,
  }) as RequestHandler[];
}

/** One route per operation, to its handler by operationId; an operation without a handler answers 501. */
export function routeOperations<T>(operations: readonly SpecOperation[], handlers: SpecHandlerTable<T>): Router {
  const router = express.Router();
  const table = handlers as Record<string, SpecHandler<T, keyof T> | undefined>;
  for (const op of operations) {
    const handler = table[op.operationId];
    router[op.method](
      op.routePath,
      handler
        ? toExpress(handler)
        : (_req, _res, next) => next(new AppError(ErrorCode.NOT_IMPLEMENTED, 501, `${op.operationId} is not implemented`)),
    );
  }
  return router;
}

/** The last route: nothing matched. */
export const noRoute: RequestHandler = (req, _res, next) => next(new AppError(ErrorCode.NOT_FOUND, 404, `no route for ${req.method} ${req.path}`));
