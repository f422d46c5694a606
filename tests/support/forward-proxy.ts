import { startChildService } from './child-service';

export interface ProxyLogEntry {
  kind: 'request' | 'connect';
  method: string;
  /** Absolute URI for plain HTTP, `host:port` for CONNECT. */
  url: string;
  proxy_authorization: boolean;
}

export interface ForwardProxy {
  host: string;
  port: number;
  log(): Promise<ProxyLogEntry[]>;
  stop(): Promise<void>;
}

/** Starts a real forward proxy (`proxy` package) on 127.0.0.1, optionally demanding Basic proxy credentials. */
export async function startForwardProxy(auth?: { username: string; password: string }): Promise<ForwardProxy> {
  const child = await startChildService('forward-proxy-server.mjs', auth ? { PROXY_USER: auth.username, PROXY_PASS: auth.password } : {});
  const controlPort = Number(child.info['controlPort']);
  return {
    host: '127.0.0.1',
    port: child.info.port,
    log: async () => (await (await fetch(`http://127.0.0.1:${controlPort}/log`)).json()) as ProxyLogEntry[],
    stop: () => child.stop(),
  };
}
