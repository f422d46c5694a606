// A real forward proxy (the `proxy` npm package, ESM-only, hence a child process started by forward-proxy.ts).
// Env: PROXY_USER / PROXY_PASS switch on Basic proxy authentication. Prints {"port": N, "controlPort": M} when ready.
// The control server answers GET /log with every request the proxy saw: plain HTTP (absolute URI) and CONNECT tunnels.
import http from 'node:http';
import { createProxy } from 'proxy';
import { exitWithParent } from './exit-with-parent.mjs';

const log = [];
const user = process.env.PROXY_USER;
const pass = process.env.PROXY_PASS;

const server = createProxy(http.createServer());
if (user !== undefined) {
  const expected = `Basic ${Buffer.from(`${user}:${pass ?? ''}`).toString('base64')}`;
  server.authenticate = (req) => req.headers['proxy-authorization'] === expected;
}
const record = (kind) => (req) => {
  log.push({ kind, method: req.method, url: req.url, proxy_authorization: req.headers['proxy-authorization'] !== undefined });
};
server.prependListener('request', record('request'));
server.prependListener('connect', record('connect'));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

const control = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(log));
});
await new Promise((resolve) => control.listen(0, '127.0.0.1', resolve));

process.stdout.write(`${JSON.stringify({ port: server.address().port, controlPort: control.address().port })}\n`);
// Exit with the test process even when it dies without stopping us.
exitWithParent();
process.on('SIGTERM', () => process.exit(0));
