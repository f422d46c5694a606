/**
 * A loopback HTTPS server that accepts only SPNEGO tokens (HTTP Negotiate), verified with a service keytab from the
 * suite's Samba KDC (tests/support/samba-kerberos.ts), serving a few ConfigMgr AdminService routes.
 *
 * It runs as a child process (spnego-server-child.mjs): the GSS acceptor finds its keys through KRB5_KTNAME and its
 * realm through KRB5_CONFIG, both read by libkrb5 from the real process environment. A jest test file only has a
 * copy of process.env, so it cannot point its own libkrb5 at a keytab; and an acceptor keytab in the process that
 * also initiates (the client under test) would blur which side's keys made a test pass. A child gets exactly its
 * own environment.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { pemToDataUrl } from '../../adapter';
import { startChildService, type ChildService } from './child-service';
import { createCa, issueServerCert, type Issued } from './pki';
import type { SambaKerberos } from './samba-kerberos';

export interface SpnegoEvent {
  kind: 'accepted' | 'refused';
  /** accepted: the client principal the token proved. */
  user?: string;
  /** accepted: the token's mechanism (spnego or krb5). */
  mech?: string;
  method?: string;
  url?: string;
  remotePort?: number;
  hadBody?: boolean;
  /** accepted and relayed upstream: the upstream's status. */
  status?: number;
  /** refused: why (no authorization, not negotiate, mechanism ... not accepted, token not accepted). */
  reason?: string;
  /** refused: the GSS acceptor's error text. */
  detail?: string;
}

export interface SpnegoServerOptions {
  /** Keytab the acceptor uses; default the KDC's HTTP service keytab. */
  keytab?: string;
  /** Token mechanisms accepted; default SPNEGO only (what IIS and WinRM expect). */
  mechs?: ('spnego' | 'krb5')[];
  /** The mutual-authentication token sent back: as produced (default), one byte changed, or none. */
  mutual?: 'valid' | 'tampered' | 'omit';
  /**
   * A loopback HTTP server (`http://127.0.0.1:<port>`) that answers requests under `upstreamPaths` (default `/wsman`)
   * once their token verified: the child relays them with `x-authenticated-user`/`x-authenticated-mech`. So a handler
   * written in the test process (the WS-Man listener of wsman-server.ts) sits behind the same Kerberos acceptor.
   */
  upstream?: string;
  upstreamPaths?: string[];
  /** The CA that issues the server's certificate; a fresh one by default. Share one to stand for an organisation's CA. */
  ca?: Issued;
}

export interface SpnegoServer {
  port: number;
  /** The CA of the server's certificate (SAN 127.0.0.1), as a PEM data URL for an integration's `mtls.ca`. */
  caDataUrl: string;
  ca: Issued;
  /** What the server saw, in order. */
  events(): Promise<SpnegoEvent[]>;
  stop(): Promise<void>;
}

export async function startSpnegoServer(k: SambaKerberos, opts: SpnegoServerOptions = {}): Promise<SpnegoServer> {
  const ca = opts.ca ?? createCa('SPNEGO test server CA');
  // The KDC's service host is in the certificate too, for clients that reach the server by that name.
  const cert = issueServerCert(ca, 'localhost', [k.httpServiceHost]);
  const child: ChildService = await startChildService('spnego-server-child.mjs', {
    SPNEGO_SERVICE: `HTTP@${k.httpServiceHost}`,
    SPNEGO_MECHS: (opts.mechs ?? ['spnego']).join(','),
    SPNEGO_MUTUAL: opts.mutual ?? 'valid',
    KRB5_KTNAME: `FILE:${opts.keytab ?? k.httpServiceKeytab}`,
    KRB5_CONFIG: k.krb5Conf,
    // The acceptor needs no ticket cache; keep it off the test run's collection.
    KRB5CCNAME: 'MEMORY:spnego-server',
    TLS_CERT: cert.certPem,
    TLS_KEY: cert.keyPem,
    ...(opts.upstream ? { SPNEGO_UPSTREAM: opts.upstream, SPNEGO_UPSTREAM_PATHS: (opts.upstreamPaths ?? ['/wsman']).join(',') } : {}),
  });
  const port = child.info.port;
  return {
    port,
    ca,
    caDataUrl: pemToDataUrl(ca.certPem),
    events: () =>
      new Promise<SpnegoEvent[]>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, path: '/__events', ca: ca.certPem }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as SpnegoEvent[]));
          })
          .on('error', reject);
      }),
    stop: () => child.stop(),
  };
}

/**
 * Writes a copy of the MIT keytab `from` (format 0x0502) to `to` with every key replaced by random bytes of the
 * same length: the same principals, key versions and encryption types, keys that decrypt nothing. What a server
 * holds after its service account's password was reset without a new keytab.
 */
export function writeStaleKeytab(from: string, to: string): void {
  const b = Buffer.from(readFileSync(from));
  if (b.readUInt16BE(0) !== 0x0502) throw new Error(`${from} is not an MIT keytab (version 0x0502)`);
  let at = 2;
  while (at + 4 <= b.length) {
    const size = b.readInt32BE(at);
    at += 4;
    if (size < 0) {
      at += -size; // a hole left by a removed entry
      continue;
    }
    const end = at + size;
    let p = at;
    const components = b.readUInt16BE(p);
    p += 2;
    // realm, then each component: counted octet strings
    for (let i = 0; i <= components; i++) p += 2 + b.readUInt16BE(p);
    p += 4 + 4 + 1 + 2; // name type, timestamp, 8-bit kvno, key type
    const keyLength = b.readUInt16BE(p);
    p += 2;
    randomBytes(keyLength).copy(b, p);
    at = end;
  }
  writeFileSync(to, b, { mode: 0o600 });
}
