import type { Database, JobQueue, Logger } from '../../adapter';
import type { IntegrationRuntime } from '../../integration-model';
import type { WorkflowEngine } from '../../workflows';
import type { HandlerTable } from '../api/handler';
import type { AuthThrottle } from '../auth/auth-throttle';
import type { VerifiedTokenCache } from '../auth/token-cache';
import type { ScimRequestLog } from '../scim/log';
import type { Config } from '../config';
import type { LinkSigner } from '../domain/approvals/link-signer';
import type { LeaverDeps } from '../domain/identity/leaver';
import type { RequesterDirectory } from '../domain/identity/requester-directory';

/*
 * What the app hands its route modules. It sits apart from app.ts, which imports every route module, so that the
 * route modules can name it without importing the app back.
 */

/** Everything the HTTP app needs from outside; `main.ts` builds these once per process, tests pass their own. */
export interface AppDeps {
  db: Database;
  queue: JobQueue;
  logger: Logger;
  /** SHA-256 (hex) of the admin key, when one is configured. */
  adminKeyHash: () => Promise<string | undefined>;
  /** Fills the requester snapshot of new orders (department, cost center, …) and names managers; none by default. */
  requesterDirectory?: RequesterDirectory | undefined;
  /** The workflow engine, when this process runs one: manual schedule triggers start runs through it. */
  workflowEngine?: WorkflowEngine | undefined;
  /** The process's one integration runtime (built with the database in main.ts), shared with the workflow engine. */
  integrations: IntegrationRuntime;
  /**
   * The process's one leaver dependency set (the flow's database, queue and approver hooks), shared with the
   * `leaver.effective` worker. Built by the app from the deps above when not given.
   */
  leaver?: LeaverDeps | undefined;
  /**
   * The process's approval link signer (built in main.ts over APPROVAL_LINK_KEY or the key file, shared with the
   * outbox worker that renders the links); when absent, the link pages sign with the configuration's key.
   */
  linkSigner?: LinkSigner | undefined;
  /** The brute-force throttle of authentication; built by the app from the configuration when not given. */
  authThrottle?: AuthThrottle | undefined;
  /** The verified-token cache (auth/token-cache.ts); the app builds its own when not given. main.ts closes its own on shutdown. */
  tokenCache?: VerifiedTokenCache | undefined;
  /** The SCIM request log's batch writer; the app builds its own when not given. main.ts closes its own on shutdown (writing what is buffered). */
  scimRequestLog?: ScimRequestLog | undefined;
}

/** What a route module receives: the app's deps with every service built. */
export type RouteDeps = AppDeps & { leaver: LeaverDeps };

/** The route modules, one per API tag; each maps operationIds to handlers. */
export type RouteModule = (deps: RouteDeps, config: Readonly<Config>) => HandlerTable;
