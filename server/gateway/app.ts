import express, { type Express } from 'express';
import swaggerUi from 'swagger-ui-express';
import { projectPath } from '../../adapter';
import { authenticate } from '../auth/authenticate';
import type { Config } from '../config';
import { guardBody, guardParameters } from '../http/input-guard';
import { problemHandler } from '../http/problem';
import { noRoute, requestContext, resolveOperation, routeOperations, specValidator } from '../http/spec-app';
import { listOperations, loadSpec, type OpenApiDocument } from '../spec';
import { gatewayHandlers, type GatewayDeps } from './handlers';
import { gatewayOperationIds } from './operations';

export const GATEWAY_SPEC_PATH = projectPath('openapi', 'integrations', 'ad-gateway.yaml');

/**
 * How long (ms) the gateway trusts a verified API token before asking the database again. A runbook step makes
 * several small calls; without it the token query was the largest cost of each (see bench/directory.ts). A
 * revoked token therefore keeps working on a running gateway for up to this long.
 */
export const GATEWAY_TOKEN_CACHE_MS = 5_000;

export interface GatewayConfig extends Pick<Config, 'bodyLimitBytes' | 'validateResponses'> {
  /** Default GATEWAY_TOKEN_CACHE_MS; 0 asks the database on every request. */
  tokenCacheMs?: number;
}

/**
 * The AD gateway: every operation of `openapi/integrations/ad-gateway.yaml` routed by operationId to the
 * directory module, behind the service's API tokens (bearer only: the legacy admin key and webhook signatures
 * are not accepted here) and request validation. Never listens; `server/gateway/main.ts` does.
 * @throws Error when the spec and the handler table name different operations (a stale build).
 */
export function buildGatewayApp(
  deps: GatewayDeps,
  config: Readonly<GatewayConfig>,
  spec: OpenApiDocument = loadSpec(GATEWAY_SPEC_PATH),
): Express {
  const operations = listOperations(spec);
  const inSpec = operations.map((o) => o.operationId).sort();
  const handled = [...gatewayOperationIds].sort();
  if (inSpec.join() !== handled.join()) {
    throw new Error(`ad-gateway spec and handlers disagree: spec has ${inSpec.join(', ')}; handlers ${handled.join(', ')}`);
  }

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  // Paths mean exactly what the spec writes: `/ADMIN/AUDIT` and `/admin/audit/` are not `/admin/audit`.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  app.use(requestContext(deps.logger));
  app.get('/openapi.json', (_req, res) => res.json(spec));
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(undefined, { swaggerOptions: { url: '/openapi.json', persistAuthorization: true } }));
  app.use(resolveOperation(operations));
  app.use(express.json({ limit: config.bodyLimitBytes, type: ['application/json', 'application/*+json'] }));
  app.use(
    authenticate({
      db: deps.db,
      logger: deps.logger,
      // The spec accepts bearer tokens only, so these are never asked for.
      adminKeyHash: async () => undefined,
      webhookSecret: async () => undefined,
      tokenCacheMs: config.tokenCacheMs ?? GATEWAY_TOKEN_CACHE_MS,
    }),
  );
  // Input no handler should see (integers past the database's range, NUL, lone surrogates, deep nesting) is refused
  // after authentication, so a caller without credentials learns nothing about an operation's inputs.
  app.use(guardParameters(operations), guardBody);
  app.use(specValidator(spec, { validateResponses: config.validateResponses }));
  app.use(routeOperations(operations, gatewayHandlers(deps)));
  app.use(noRoute);
  app.use(problemHandler(deps.logger));
  return app;
}
