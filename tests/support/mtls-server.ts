import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createCa, issueServerCert, type Issued } from './pki';

/** An HTTPS server on 127.0.0.1 that demands a client certificate issued by `clientCa`. */
export interface MtlsServer {
  url: string;
  port: number;
  /** The CA that issued the server's certificate (what a client must trust). */
  serverCa: Issued;
  /** Common names of the client certificates of requests that got through. */
  seen: string[];
  close(): Promise<void>;
}

export async function startMtlsServer(clientCa: Issued, opts: { requireClientCert?: boolean } = {}): Promise<MtlsServer> {
  const serverCa = createCa('Test Server CA');
  const serverCert = issueServerCert(serverCa);
  const seen: string[] = [];
  const require = opts.requireClientCert ?? true;
  const server = https.createServer(
    { key: serverCert.keyPem, cert: serverCert.certPem, ca: [clientCa.certPem], requestCert: require, rejectUnauthorized: require },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      const cn = peer && 'subject' in peer && peer.subject ? String(peer.subject.CN) : '';
      seen.push(cn);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ client_cn: cn || null, path: req.url }));
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    serverCa,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
