import { randomUUID } from 'node:crypto';
import express, { type RequestHandler, type Router } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { withLogContext, type Logger } from '../../adapter';
import { toExpress, type SpecHandler, type SpecHandlerTable } from '../api/handler';
import { CodedError, ErrorCode } from '../errors';
import { matchOperation, type OpenApiDocument, type SpecOperation } from '../spec';
import { pathForLog } from './log-path';
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
          path: pathForLog(req.path),
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
    // The spec is checked against the official OpenAPI schema by its tests (integration-model/reference-models.test.ts,
    // tests/unit/ad-gateway-model.test.ts), by the same rules an orchestration platform imports it with; checking it
    // again at every start cost about a tenth of the start-up.
    validateApiSpec: false,
    // Bodies are never coerced (a JSON 5 is not the string "5"); parameters are always coerced by the validator.
    validateRequests: { allowUnknownQueryParameters: false, coerceTypes: false },
    validateResponses: opts.validateResponses ? { onError: undefined } : false,
    validateSecurity: false,
    validateFormats: true,
    ignoreUndocumented: false,
    ignorePaths: /^\/(docs|openapi\.json)(\/|$)/,
  }) as RequestHandler[];
}

/**
 * Resolves the operation a request addresses, once, before its body is read and before authentication: an exact,
 * case-sensitive match of the raw path (see `matchOperation`). A path the spec does not have answers 404 and a
 * method it does not declare there 405 with `Allow`, so nothing unmatched ever reaches authentication or a
 * handler. Authentication checks `req.operation`; `routeOperations` runs only that operation's handler.
 */
export function resolveOperation(operations: readonly SpecOperation[]): RequestHandler {
  return (req, res, next) => {
    const match = matchOperation(operations, req.method, req.path);
    switch (match.kind) {
      case 'operation':
        req.operation = match.operation;
        return next();
      case 'method_not_allowed':
        res.setHeader('Allow', match.allow.join(', '));
        return next(new CodedError(ErrorCode.METHOD_NOT_ALLOWED, `${req.method} is not allowed on ${req.path}; allowed: ${match.allow.join(', ')}`));
      case 'no_route':
        return next(noRouteError(req.method, req.path));
    }
  };
}

/**
 * One route per operation, to its handler by operationId; an operation without a handler answers 501. Routing is
 * case-sensitive and strict about trailing slashes, as `resolveOperation` is; on top of that each route runs only
 * for the operation resolved (and authenticated) for this request, so the two can never disagree.
 */
export function routeOperations<T>(operations: readonly SpecOperation[], handlers: SpecHandlerTable<T>): Router {
  const router = express.Router({ caseSensitive: true, strict: true });
  const table = handlers as Record<string, SpecHandler<T, keyof T> | undefined>;
  for (const op of operations) {
    const handler = table[op.operationId];
    const run: RequestHandler = handler
      ? toExpress(handler)
      : (_req, _res, next) => next(new CodedError(ErrorCode.NOT_IMPLEMENTED, `${op.operationId} is not implemented`));
    router[op.method](op.routePath, (req, res, next) => (req.operation === op ? run(req, res, next) : next()));
  }
  return router;
}

const noRouteError = (method: string, path: string) => new CodedError(ErrorCode.NOT_FOUND, `no route for ${method} ${path}`);

/** The last route: nothing matched. */
export const noRoute: RequestHandler = (req, _res, next) => next(noRouteError(req.method, req.path));
