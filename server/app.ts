import express, { type Express } from 'express';
import swaggerUi from 'swagger-ui-express';
import type { Database } from '../adapter';
import type { HandlerTable } from './api/handler';
import { operationIds } from './api/operations.gen';
import { authenticate } from './auth/authenticate';
import { VerifiedTokenCache } from './auth/token-cache';
import { createAuthThrottle, throttleSettings } from './auth/auth-throttle';
import type { Config } from './config';
import { guardBody, guardParameters } from './http/input-guard';
import { problemHandler } from './http/problem';
import { requestTelemetry } from './http/telemetry';
import { noRoute, requestContext, resolveOperation, routeOperations, specValidator } from './http/spec-app';
import { listOperations, loadSpec, type OpenApiDocument } from './spec';
import { healthHandlers } from './routes/health';
import { metricsHandlers } from './routes/metrics';
import { assetTypeHandlers } from './routes/asset-types';
import { assetHandlers } from './routes/assets';
import { catalogueHandlers } from './routes/catalogue';
import { apiTokenHandlers } from './routes/api-tokens';
import { auditHandlers } from './routes/audit';
import { settingsHandlers } from './routes/settings';
import { orderHandlers } from './routes/orders';
import { webhookHandlers } from './routes/webhooks';
import { hrHandlers } from './routes/hr';
import { integrationHandlers } from './routes/integrations';
import { scriptModuleHandlers } from './routes/script-modules';
import { scheduleHandlers } from './routes/schedules';
import { workflowHandlers } from './routes/workflows';
import { approvalHandlers } from './routes/approvals';
import { notificationHandlers } from './routes/notifications';
import { secretHandlers } from './routes/secrets';
import { APPROVAL_LINK_OPERATIONS, approvalLinkEdge, approvalLinkErrors, approvalLinkHandlers } from './routes/approval-links';
import { scimHandlers } from './scim/routes';
import { scimEdge } from './scim/log';
import type { AppDeps, RouteModule } from './routes/route-module';
import { createLeaverDeps } from './domain/identity/leaver-service';
import { readSetting } from './domain/settings/settings';
import { narrowToClosestAlternative } from './http/closest-alternative';
import { graphClientStateMatches } from './routes/hr-payloads';

export type { AppDeps, RouteDeps, RouteModule } from './routes/route-module';

/** The route modules, one per API tag; each maps operationIds to handlers. */
const ROUTE_MODULES: RouteModule[] = [
  healthHandlers,
  metricsHandlers,
  apiTokenHandlers,
  settingsHandlers,
  auditHandlers,
  assetTypeHandlers,
  assetHandlers,
  catalogueHandlers,
  orderHandlers,
  webhookHandlers,
  hrHandlers,
  integrationHandlers,
  scriptModuleHandlers,
  scheduleHandlers,
  workflowHandlers,
  approvalHandlers,
  approvalLinkHandlers,
  notificationHandlers,
  secretHandlers,
  scimHandlers,
];

/**
 * Builds the Express app from the spec: every operation of `openapi/provisio.yaml` is routed to its
 * handler by operationId, after authentication and request validation. Never listens.
 */
export function buildApp(deps: AppDeps, config: Readonly<Config>, spec: OpenApiDocument = loadSpec()): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  // Paths mean exactly what the spec writes: `/ADMIN/AUDIT` and `/admin/audit/` are not `/admin/audit`.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  const operations = listOperations(spec);

  // First: the request's duration metric and server span cover everything after it, log lines included.
  app.use(requestTelemetry());
  app.use(requestContext(deps.logger));
  // SCIM: trailing-slash tolerance and the SCIM request log.
  app.use(scimEdge(deps.db, deps.logger, deps.scimRequestLog));

  app.get('/openapi.json', (_req, res) => res.json(spec));
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(undefined, { swaggerOptions: { url: '/openapi.json', persistAuthorization: true } }));

  // From here on every request addresses exactly one operation of the spec, or has been answered 404/405.
  app.use(resolveOperation(operations));
  // Addresses with repeated failed authentications are delayed, then refused, before any credential is checked.
  const throttle =
    deps.authThrottle ?? createAuthThrottle(throttleSettings(config), { db: deps.db, logger: deps.logger, credentialInPath: APPROVAL_LINK_OPERATIONS });
  app.use(throttle.guard);
  // The signed approval link pages: their security headers, and their HTML form bodies (only theirs).
  app.use(approvalLinkEdge(config));
  // Parse JSON bodies ourselves (keeping the raw bytes for HMAC verification); the validator then checks them.
  app.use(
    express.json({
      limit: config.bodyLimitBytes,
      // Any JSON value parses (`null`, `"x"`, `5`): what the operation accepts is the schema's to say, as a 422
      // naming the body, not a 400 that calls valid JSON invalid.
      strict: false,
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
      adminKeyHash: deps.adminKeyHash,
      tokenCache: deps.tokenCache ?? new VerifiedTokenCache(deps.db, deps.logger),
      webhookSecret: async () => config.webhookSecretToken ?? (await readWebhookSecret(deps.db)),
      graphClientStateMatches: (notifications) => graphClientStateMatches(deps.db, notifications),
    }),
  );
  // Input no handler should see (integers past the database's range, NUL, lone surrogates, deep nesting) is refused
  // after authentication, so a caller without credentials learns nothing about an operation's inputs.
  app.use(guardParameters(operations), guardBody);
  app.use(specValidator(spec, { validateResponses: config.validateResponses }), narrowToClosestAlternative(spec));

  // One leaver dependency set for every edge of the flow: the process's own when main.ts built one.
  const routeDeps = { ...deps, leaver: deps.leaver ?? createLeaverDeps(deps, deps.requesterDirectory) };
  const handlers: HandlerTable = Object.assign({}, ...ROUTE_MODULES.map((m) => m(routeDeps, config)));
  app.use(routeOperations(operations, handlers));
  app.use(noRoute);
  app.use(throttle.countFailures);
  // Refusals of the approval link pages are pages too (problem documents for JSON clients).
  app.use(approvalLinkErrors(deps.logger));
  app.use(problemHandler(deps.logger));

  const unknown = Object.keys(handlers).filter((id) => !operationIds.includes(id as never));
  if (unknown.length) throw new Error(`handlers for operations not in the spec: ${unknown.join(', ')}`);
  return app;
}

/** The webhook secret kept in the ServiceNow settings section, when the environment does not set one. */
async function readWebhookSecret(db: Database): Promise<string | undefined> {
  const v = await readSetting(db, 'servicenow', 'webhook_secret');
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}
