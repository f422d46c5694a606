// An OTLP/HTTP trace receiver for benches, run as its own process (forked) so decoding exports costs neither the
// load generator nor the service measured: accepts `POST /v1/traces` (JSON), counts the spans, answers 200.
// Sends `{ ready: port }` over IPC when listening and `{ spans: n }` when asked with `'count'`.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

let spans = 0;
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'POST' && req.url === '/v1/traces') {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[] };
        for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0;
      } catch {
        res.writeHead(400).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } else res.writeHead(404).end();
  });
});
server.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1', () => process.send?.({ ready: (server.address() as AddressInfo).port }));
process.on('message', (m) => {
  if (m === 'count') process.send?.({ spans });
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
