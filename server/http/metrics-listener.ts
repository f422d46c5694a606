import { createServer, type Server } from 'node:http';
import { createMetricsExposition, type Database, type Logger } from '../../adapter';

/**
 * The optional metrics listener (METRICS_HOST:METRICS_PORT): `GET /metrics` only, without authentication, for
 * a scraper that reaches a bind address nobody else does. Kept off the API's stack so scrapes cost no token
 * lookup and the API's port need not be open to the scraper. Resolves once listening.
 */
export function listenForMetrics(opts: { db: Database; logger: Logger; host: string; port: number }): Promise<Server> {
  const exposition = createMetricsExposition(opts.db);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: only GET /metrics is served here\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    exposition.render().then(
      (text) => res.writeHead(200, { 'content-type': exposition.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (e: unknown) => {
        opts.logger.error('metrics exposition failed', { err: e instanceof Error ? e.message : String(e) });
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n');
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      const a = server.address();
      opts.logger.info('metrics listening', { url: `http://${opts.host}:${typeof a === 'object' && a ? a.port : opts.port}/metrics` });
      resolve(server);
    });
  });
}
