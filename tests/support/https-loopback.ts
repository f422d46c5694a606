import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { recordingListener, type LoopbackHandler, type LoopbackServer, type RecordedRequest } from './loopback-server';
import { createCa, issueServerCert, type Issued } from './pki';

export interface HttpsLoopbackServer extends LoopbackServer {
  /** `https://127.0.0.1:<port>` */
  url: string;
  /** The CA that issued the server's certificate: what a client must trust. */
  serverCa: Issued;
}

export interface HttpsLoopbackOptions {
  /** Demand a client certificate issued by this CA: the TLS handshake refuses any other (and none). */
  clientCa?: Issued;
  /** Further DNS names (wildcards allowed) the server's certificate carries beside 127.0.0.1 and localhost. */
  dnsNames?: string[];
}

let caCount = 0;

/**
 * The HTTPS twin of `startLoopbackServer`: a server on 127.0.0.1 with a certificate from a fresh test CA, recording
 * every request (body read) before `handler` runs. With `clientCa`, a client certificate is demanded at the handshake.
 */
export async function startHttpsLoopbackServer(handler: LoopbackHandler, opts: HttpsLoopbackOptions = {}): Promise<HttpsLoopbackServer> {
  // A distinct subject per CA: a client trusting two of them (one bundle for two endpoints) picks the issuer by subject.
  const serverCa = createCa(`Test Backend Server CA ${++caCount}`);
  const cert = issueServerCert(serverCa, 'localhost', opts.dnsNames ?? []);
  const requests: RecordedRequest[] = [];
  const server = https.createServer(
    {
      key: cert.keyPem,
      cert: cert.certPem,
      ...(opts.clientCa ? { ca: [opts.clientCa.certPem], requestCert: true, rejectUnauthorized: true } : {}),
    },
    recordingListener(handler, requests),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    requests,
    serverCa,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The common name of the client certificate a request came with ('' without one). */
export function clientCertificateCn(raw: { socket: unknown }): string {
  const peer = (raw.socket as TLSSocket).getPeerCertificate();
  return peer && 'subject' in peer && peer.subject ? String(peer.subject.CN) : '';
}
