import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a loopback test server received. */
export interface RecordedRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The client's port: equal across requests that reused one kept-alive connection. */
  remotePort: number;
}

export interface LoopbackServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export type LoopbackHandler = (req: RecordedRequest, res: http.ServerResponse, raw: http.IncomingMessage) => void | Promise<void>;

/**
 * A request listener that records every request, body read, into `requests` before `handler` runs (a handler that
 * throws answers 500): what the HTTP and HTTPS loopback servers share.
 */
export function recordingListener(
  handler: LoopbackHandler,
  requests: RecordedRequest[],
): (raw: http.IncomingMessage, res: http.ServerResponse) => void {
  return (raw, res) => {
    const chunks: Buffer[] = [];
    raw.on('data', (c: Buffer) => chunks.push(c));
    raw.on('end', () => {
      const rec: RecordedRequest = {
        method: raw.method ?? 'GET',
        url: raw.url ?? '/',
        headers: raw.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        remotePort: raw.socket.remotePort ?? 0,
      };
      requests.push(rec);
      Promise.resolve(handler(rec, res, raw)).catch((e: unknown) => {
        res.statusCode = 500;
        res.end(String(e));
      });
    });
  };
}

/** Starts an HTTP server on 127.0.0.1 (a free port) that records every request, body read, before `handler` runs. */
export async function startLoopbackServer(handler: LoopbackHandler): Promise<LoopbackServer> {
  const requests: RecordedRequest[] = [];
  return listen(http.createServer(recordingListener(handler, requests)), requests);
}

export async function listen(server: http.Server, requests: RecordedRequest[] = []): Promise<LoopbackServer & { server: http.Server }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
