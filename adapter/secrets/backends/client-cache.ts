import { createHash } from 'node:crypto';
import { createIntegrationClient, type IntegrationClient, type IntegrationConfigInput } from '../../http';
import { createLogger, type Logger } from '../../log';
import { SECRET_BACKEND_TIMEOUT_MS } from './http';

/** What a backend needs besides the settings: where its HTTP log lines go. */
export interface BackendHttpDeps {
  /** The outbound request/response lines (secrets redacted by the transport); silent when absent. */
  logger?: Logger | undefined;
}

// Enough for a few configurations in turn (a changed section, a refreshed AWS session) without growing unbounded.
const MAX_CLIENTS = 8;

/**
 * Kept clients of the one outbound HTTP path (adapter/http: TLS/CA, client certificate, timeout, logging, redaction,
 * SigV4) kept by the configuration they were built from, so connections are reused between reads and a changed
 * setting (or a new set of temporary credentials) builds a new client at the next read. The key is a digest: the
 * credentials inside a configuration never serve as a map key in clear. (http.ts builds a client per request; AWS
 * needs the transport's SigV4 signing and CCP a client certificate, which its requests do not carry, and a kept
 * client spares a TLS handshake with a client certificate on every read.)
 */
export class BackendClients {
  readonly #clients = new Map<string, IntegrationClient>();
  readonly #logger: Logger;

  constructor(
    readonly name: string,
    deps: BackendHttpDeps,
  ) {
    this.#logger = deps.logger ?? createLogger({ silent: true });
  }

  clientFor(config: IntegrationConfigInput): IntegrationClient {
    const key = createHash('sha256').update(JSON.stringify(config)).digest('hex');
    const hit = this.#clients.get(key);
    if (hit) return hit;
    if (this.#clients.size >= MAX_CLIENTS) this.close();
    const client = createIntegrationClient({ timeout: SECRET_BACKEND_TIMEOUT_MS, ...config }, { logger: this.#logger, name: this.name });
    this.#clients.set(key, client);
    return client;
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}

/** The `server` part of an integration configuration for an http(s) base URL (its path becomes the base path). */
export function serverOf(url: URL): IntegrationConfigInput['server'] {
  return {
    protocol: url.protocol === 'http:' ? 'http' : 'https',
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    ...(url.port !== '' ? { port: Number(url.port) } : {}),
    ...(url.pathname !== '/' && url.pathname !== '' ? { base_path: url.pathname.replace(/\/$/, '') } : {}),
  };
}
