import type { AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import type { IntegrationEnvelope } from '../envelope';

/** A request made on behalf of an auth scheme (token, key or discovery endpoint), outside the auth pipeline. */
export interface SideRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON. */
  data?: unknown;
}

/** What an auth provider may use: an unauthenticated sender through the integration's agents, a clock, a secret sink. */
export interface AuthContext {
  /**
   * Sends `req` through the integration's agents (TLS, mTLS, proxy, timeout) and returns its envelope whatever the
   * status. Throws CallNotMadeError when no response arrived.
   */
  send(req: SideRequest): Promise<IntegrationEnvelope>;
  /** Milliseconds since the epoch. */
  now(): number;
  /** The absolute URL `config` will be sent to, query included. */
  fullUrl(config: InternalAxiosRequestConfig): string;
  /** Registers a secret obtained at run time (a token, a key) so logs scrub it. */
  addSecret(value: string): void;
}

/** Applies one authentication scheme to outgoing requests. */
export interface AuthProvider {
  /**
   * Adds credentials to `config`, fetching them first if needed. Throws CallNotMadeError when it lacks what it needs,
   * TokenRequestError when a token or key endpoint answered with a failure.
   */
  apply(config: InternalAxiosRequestConfig): Promise<void>;
  /**
   * Called after a 401 to the request `failed`: obtains new credentials, unless those `failed` carried were already
   * replaced (concurrent calls that all hit the 401 share one refresh). Resolves true when a retry may succeed.
   * Absent for schemes with nothing to refresh.
   */
  refresh?(failed: InternalAxiosRequestConfig): Promise<boolean>;
  /**
   * For schemes whose server rejects credentials without a 401 (XenAPI answers SESSION_INVALID inside a 200): true
   * when `res` says the credentials are no longer good, so the transport refreshes and retries once as after a 401.
   */
  credentialsRejected?(res: { status: number; data: unknown }): boolean;
  /**
   * Sees each response before it is retried, logged or returned. For schemes whose server answers with a token of
   * its own (HTTP Negotiate's mutual authentication): the token is verified here, and may be taken out of the
   * response headers so that logs and envelopes never carry it. Throws CallNotMadeError to make the call fail
   * instead (a server token that does not verify, a ticket the server refused).
   */
  inspectResponse?(res: AxiosResponse): Promise<void>;
  /** Query parameter names and header names that carry secrets, so logs and envelopes can redact them. */
  readonly secretQueryParams?: readonly string[];
  readonly secretHeaders?: readonly string[];
}
