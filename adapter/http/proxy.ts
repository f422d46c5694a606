import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { CallNotMadeCode, CallNotMadeError, NOT_REACHED } from './envelope';

/*
 * Forward-proxy agents. The npm `http-proxy-agent`/`https-proxy-agent` packages are ESM-only in the versions we have,
 * and this code base (and jest here) is CommonJS, so the two small pieces they do are done here on Node's own Agent:
 * plain HTTP goes to the proxy with an absolute request URI, HTTPS is tunnelled with CONNECT and TLS is negotiated
 * with the target through the tunnel (so mTLS and certificate checks still apply end to end).
 */

export interface ProxyTarget {
  host: string;
  port: number;
  /**
   * Credentials sent as `Proxy-Authorization: Basic`, read at each request (or tunnel): the transport may set them
   * after the agents are built (credentials resolved from a secret backend before each call).
   */
  username?: string;
  password?: string;
}

function proxyAuthorization(p: ProxyTarget): string | undefined {
  if (p.username === undefined) return undefined;
  return `Basic ${Buffer.from(`${p.username}:${p.password ?? ''}`, 'utf8').toString('base64')}`;
}

// Node's ClientRequest internals the HTTP proxy agent rewrites before the header is rendered.
interface MutableRequest extends http.ClientRequest {
  _header: string | null;
}

/** Sends plain-HTTP requests to the proxy with absolute URIs (RFC 9112 §3.2.2); keeps proxy connections alive. */
export class HttpForwardProxyAgent extends http.Agent {
  readonly #proxy: ProxyTarget;

  constructor(proxy: ProxyTarget, options: http.AgentOptions) {
    super(options);
    this.#proxy = proxy;
  }

  // `addRequest` is public in Node but missing from @types/node; it runs before the request header is rendered.
  addRequest(req: MutableRequest, options: http.RequestOptions): void {
    req._header = null;
    const host = options.host ?? options.hostname ?? 'localhost';
    const port = options.port !== undefined && Number(options.port) !== 80 ? `:${options.port}` : '';
    if (!req.path.includes('://')) req.path = `http://${host.includes(':') ? `[${host}]` : host}${port}${req.path}`;
    const auth = proxyAuthorization(this.#proxy);
    if (auth) req.setHeader('proxy-authorization', auth);
    (http.Agent.prototype as unknown as { addRequest(r: http.ClientRequest, o: http.RequestOptions): void }).addRequest.call(
      this,
      req,
      options,
    );
  }

  override createConnection(_options: net.NetConnectOpts, callback?: (err: Error | null, socket: Duplex) => void): Duplex {
    void callback;
    return net.connect({ host: this.#proxy.host, port: this.#proxy.port });
  }
}

/** Tunnels HTTPS through the proxy with CONNECT, then runs TLS to the target over the tunnel. */
export class HttpsTunnelProxyAgent extends https.Agent {
  readonly #proxy: ProxyTarget;

  constructor(proxy: ProxyTarget, options: https.AgentOptions) {
    super(options);
    this.#proxy = proxy;
  }

  // Node's Agent accepts an asynchronous createConnection: return nothing and call back with the socket.
  override createConnection(requestOptions: http.RequestOptions, callback?: (err: Error | null, socket: Duplex) => void): undefined {
    const options = requestOptions as tls.ConnectionOptions;
    const done = callback ?? (() => undefined);
    const cb = (err: Error | null, socket?: Duplex): void => done(err, socket as Duplex);
    const host = options.host ?? 'localhost';
    const port = options.port ?? 443;
    const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const headers: Record<string, string> = { host: authority };
    const auth = proxyAuthorization(this.#proxy);
    if (auth) headers['proxy-authorization'] = auth;
    const connect = http.request({
      host: this.#proxy.host,
      port: this.#proxy.port,
      method: 'CONNECT',
      path: authority,
      headers,
      agent: false,
    });
    connect.once('connect', (res: http.IncomingMessage, socket: net.Socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        cb(
          new CallNotMadeError(
            CallNotMadeCode.PROXY_FAILURE,
            `${NOT_REACHED}: the proxy ${this.#proxy.host}:${this.#proxy.port} refused to tunnel to ${authority} (${res.statusCode} ${res.statusMessage ?? ''})`.trim(),
          ),
        );
        return;
      }
      const servername = options.servername ?? (net.isIP(host) === 0 ? host : undefined);
      cb(null, tls.connect({ ...options, socket, ...(servername !== undefined ? { servername } : {}) }));
    });
    connect.once('error', (err) => cb(err));
    connect.end();
    return undefined;
  }
}
