// A loopback HTTPS API with an OAuth 2.0 client-credentials token endpoint, in a child process of its own (so the
// process being measured does not also serve). `startOAuthHttpsApi()` forks this file; as the child it serves
//   POST /oauth/token          client credentials -> a bearer token (expires in an hour)
//   GET  /api/desktops/{id}    a small JSON document, for the current bearer token only (401 otherwise)
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:https';
import { createCa, issueServerCert } from '../../tests/support/pki';

export const BENCH_CLIENT = { id: 'bench', secret: 'bench-secret' } as const;
const TOKEN = 'bench-access-token-0123456789';

export interface OAuthHttpsApi {
  port: number;
  /** PEM of the CA that issued the server's certificate (trust it, as an integration's `mtls.ca` does). */
  caPem: string;
  /** The token the endpoint issues, for bare calls that skip the token request. */
  token: string;
  /** Token requests the endpoint has answered so far. */
  tokenRequests(): Promise<number>;
  stop(): void;
}

function serve(keyPem: string, certPem: string): void {
  let tokenRequests = 0;
  const server = createServer({ key: keyPem, cert: certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/oauth/token') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
        const ok = basic === `${BENCH_CLIENT.id}:${BENCH_CLIENT.secret}` || (form.get('client_id') === BENCH_CLIENT.id && form.get('client_secret') === BENCH_CLIENT.secret);
        if (ok) tokenRequests++;
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        res.end(JSON.stringify(ok ? { access_token: TOKEN, token_type: 'Bearer', expires_in: 3600 } : { error: 'invalid_client' }));
        return;
      }
      const ok = req.headers.authorization === `Bearer ${TOKEN}` && /^\/api\/desktops\/\d+$/.test(req.url ?? '');
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ok ? { id: 7, name: 'desktop-07', tags: ['vdi', 'pool-a'] } : { error: 'unauthorized' }));
    });
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as { port: number }).port }));
  process.on('message', (m) => {
    if (m === 'stats') process.send?.({ tokenRequests });
  });
}

/** Starts the API in a child process on a free loopback port, with a fresh CA and server certificate. */
export async function startOAuthHttpsApi(): Promise<OAuthHttpsApi> {
  const ca = createCa('bench-ca');
  const cert = issueServerCert(ca, '127.0.0.1');
  const child: ChildProcess = fork(__filename, ['--serve'], {
    env: { ...process.env, KEY_PEM: cert.keyPem, CERT_PEM: cert.certPem },
    execArgv: ['--import', 'tsx'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`the bench API exited with ${code}`)));
  });
  return {
    port,
    caPem: ca.certPem,
    token: TOKEN,
    tokenRequests: () =>
      new Promise<number>((resolve) => {
        child.once('message', (m) => resolve((m as { tokenRequests: number }).tokenRequests));
        child.send('stats');
      }),
    stop: () => {
      child.kill();
    },
  };
}

if (process.argv[2] === '--serve') serve(process.env['KEY_PEM'] as string, process.env['CERT_PEM'] as string);
