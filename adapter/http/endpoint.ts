import type { IntegrationConfigInput } from './config';
import { createIntegrationClient, type IntegrationClient, type IntegrationClientDeps } from './transport';

/**
 * How calls to an endpoint outside any integration model reach it: the transport settings of an integration's
 * configuration (proxy, TLS, mTLS, logging and syslog), without a server (the URL says it) or authentication (the
 * caller signs or authenticates the request itself).
 */
export type EndpointConnection = Pick<IntegrationConfigInput, 'proxy' | 'tls' | 'mtls' | 'logging'>;

export interface EndpointClientOptions {
  /** Milliseconds to wait for the response, as an integration's `timeout`. */
  timeoutMs: number;
  connection?: EndpointConnection;
}

/**
 * A client for the origin of `url` (a provisioning webhook's receiver, say) on the integration transport, so the
 * call gets the proxy, TLS, timeout, logging, syslog and redaction every integration call gets. Send with
 * `path: pathOf(url)`. The URL's query parameters are redacted in logs (a receiver's URL may carry a token);
 * `deps.redact` adds what else the caller knows to be secret. An unusable `connection` does not throw: every
 * call then says why, as for an integration.
 * @throws TypeError when `url` is not http(s) or carries credentials (user information is never sent).
 */
export function createEndpointClient(url: URL, options: EndpointClientOptions, deps: IntegrationClientDeps): IntegrationClient {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`url must be http or https, not ${url.protocol}`);
  if (url.username !== '' || url.password !== '') throw new TypeError('url must not carry credentials');
  // URL keeps an IPv6 host in brackets; the transport adds them back itself.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const config: IntegrationConfigInput = {
    ...options.connection,
    server: { protocol: url.protocol === 'https:' ? 'https' : 'http', host, ...(url.port !== '' ? { port: Number(url.port) } : {}) },
    authentication: { type: 'none' },
    timeout: options.timeoutMs,
  };
  return createIntegrationClient(config, {
    ...deps,
    redact: { ...deps.redact, queryParams: [...new Set([...url.searchParams.keys(), ...(deps.redact?.queryParams ?? [])])] },
  });
}

/** The path and query of `url`, as {@link createEndpointClient}'s client takes them. */
export function pathOf(url: URL): string {
  return `${url.pathname}${url.search}`;
}
