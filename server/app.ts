import { randomUUID } from 'node:crypto';
import express, { type Express } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import swaggerUi from 'swagger-ui-express';
import { withLogContext, type Database, type JobQueue, type Logger } from '../adapter';
import { toExpress, type HandlerTable } from './api/handler';
import { operationIds } from './api/operations.gen';
import { authenticate } from './auth/authenticate';
import type { Config } from './config';
import { AppError, ErrorCode } from './errors';
import { problemHandler } from './http/problem';
import { listOperations, loadSpec, type OpenApiDocument } from './spec';
import { healthHandlers } from './routes/health';

/** Everything the HTTP app needs from outside; `main.ts` builds these, tests pass their own. */
export interface AppDeps {
  db: Database;
  queue: JobQueue;
  logger: Logger;
  /** SHA-256 (hex) of the admin key, when one is configured. */
  adminKeyHash: () => Promise<string | undefined>;
}

/** The route modules, one per API tag; each maps operationIds to handlers. */
export type RouteModule = (deps: AppDeps, config: Readonly<Config>) => HandlerTable;
const ROUTE_MODULES: RouteModule[] = [
  healthHandlers,
  // --- route modules: api-tokens, settings, audit ---
  // --- route modules: asset-types, assets ---
  // --- route modules: orders, webhooks ---
];

/**
 * Builds the Express app from the spec: every operation of `openapi/provisio.yaml` is routed to its
 * handler by operationId, after authentication and request validation. Never listens.
 */
export function buildApp(deps: AppDeps, config: Readonly<Config>, spec: OpenApiDocument = loadSpec()): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  const operations = listOperations(spec);

  app.use((req, res, next) => {
    const requestId = req.header('x-request-id')?.slice(0, 128) || randomUUID();
    res.locals['requestId'] = requestId;
    res.setHeader('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      withLogContext({ requestId }, () =>
        deps.logger.http('request', {
          method: req.method,
          path: req.path,
          status: res.statusCode,
          duration_ms: Number(process.hrtime.bigint() - started) / 1e6,
        }),
      );
    });
    withLogContext({ requestId }, next);
  });

  app.get('/openapi.json', (_req, res) => res.json(spec));
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(undefined, { swaggerOptions: { url: '/openapi.json', persistAuthorization: true } }));

  // Parse JSON bodies ourselves (keeping the raw bytes for HMAC verification); the validator then checks them.
  app.use(
    express.json({
      limit: config.bodyLimitBytes,
      type: ['application/json', 'application/*+json'],
      verify: (req, _res, buf) => {
        (req as express.Request).rawBody = buf;
      },
    }),
  );
  app.use(
    authenticate({
      db: deps.db,
      logger: deps.logger,
      operations,
      adminKeyHash: deps.adminKeyHash,
      webhookSecret: async () => config.webhookSecretToken ?? (await readWebhookSecret(deps.db)),
    }),
  );
  app.use(
    OpenApiValidator.middleware({
      apiSpec: spec as never,
      validateRequests: { allowUnknownQueryParameters: false, coerceTypes: true },
      validateResponses: config.validateResponses ? { onError: undefined } : false,
      validateSecurity: false,
      validateFormats: true,
      ignoreUndocumented: false,
      ignorePaths: /^\/(docs|openapi\.json)(\/|$)/,
    }),
  );

  const handlers: HandlerTable = Object.assign({}, ...ROUTE_MODULES.map((m) => m(deps, config)));
  const router = express.Router();
  for (const op of operations) {
    const handler = handlers[op.operationId as keyof HandlerTable];
    router[op.method](
      op.routePath,
      handler
        ? toExpress(handler as never)
        : (_req, _res, next) => next(new AppError(ErrorCode.NOT_IMPLEMENTED, 501, `${op.operationId} is not implemented`)),
    );
  }
  app.use(router);
  app.use((req, _res, next) => next(new AppError(ErrorCode.NOT_FOUND, 404, `no route for ${req.method} ${req.path}`)));
  app.use(problemHandler(deps.logger));

  const unknown = Object.keys(handlers).filter((id) => !operationIds.includes(id as never));
  if (unknown.length) throw new Error(`handlers for operations not in the spec: ${unknown.join(', ')}`);
  return app;
}

/** The webhook secret kept in the ServiceNow settings section, when the environment does not set one. */
async function readWebhookSecret(db: Database): Promise<string | undefined> {
  const { rows } = await db.query<{ value: unknown }>(`SELECT value FROM app_config WHERE key = 'servicenow.webhook_secret'`);
  const v = rows[0]?.value;
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}
