// A loopback SMTP server for benches, in a child process of its own (so the process being measured does not also
// receive): STARTTLS required for AUTH (PLAIN/LOGIN), a certificate from a fresh test CA, and every mail counted by
// the domain of its first recipient and its Message-ID (read from the headers, the body is not parsed), so a bench
// can tell when a phase's mails have all arrived and whether any arrived twice.
import { fork, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerError } from 'smtp-server';
import { createCa, issueServerCert } from '../../tests/support/pki';

export const SINK_CREDENTIALS = { user: 'bench', pass: 'bench-smtp-password' } as const;

export interface SinkCount {
  /** Mails taken for the domain. */
  mails: number;
  /** Distinct Message-IDs among them. */
  distinct: number;
}

export interface SmtpSink {
  port: number;
  /** PEM of the CA that issued the server certificate. */
  caPem: string;
  /** Resolves when `count` mails to recipients at `domain` have been taken (the child tells at once). */
  waitFor(domain: string, count: number): Promise<SinkCount>;
  count(domain: string): Promise<SinkCount>;
  stop(): void;
}

type ToChild = { kind: 'wait'; domain: string; count: number } | { kind: 'count'; domain: string };
type ToParent = { kind: 'port'; port: number } | { kind: 'count'; domain: string; result: SinkCount };

function serve(keyPem: string, certPem: string): void {
  const byDomain = new Map<string, { mails: number; ids: Set<string> }>();
  const waits = new Map<string, number>();
  const countOf = (domain: string): SinkCount => {
    const d = byDomain.get(domain);
    return { mails: d?.mails ?? 0, distinct: d?.ids.size ?? 0 };
  };
  const tell = (m: ToParent) => process.send?.(m);
  const server = new SMTPServer({
    key: keyPem,
    cert: certPem,
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: false,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === SINK_CREDENTIALS.user && auth.password === SINK_CREDENTIALS.pass) return callback(null, { user: auth.username });
      const e: SMTPServerError = new Error('5.7.8 Authentication credentials invalid');
      e.responseCode = 535;
      return callback(e);
    },
    onData(stream, session, callback) {
      let head = '';
      stream.on('data', (c: Buffer) => {
        if (head.length < 16_384 && !head.includes('\r\n\r\n')) head += c.toString('latin1');
      });
      stream.on('end', () => {
        const rcpt = session.envelope.rcptTo[0]?.address ?? '';
        const domain = rcpt.slice(rcpt.lastIndexOf('@') + 1);
        const id = /^Message-ID:\s*(\S+)/im.exec(head)?.[1] ?? `none-${Math.random()}`;
        let d = byDomain.get(domain);
        if (!d) byDomain.set(domain, (d = { mails: 0, ids: new Set() }));
        d.mails++;
        d.ids.add(id);
        const want = waits.get(domain);
        if (want !== undefined && d.mails >= want) {
          waits.delete(domain);
          tell({ kind: 'count', domain, result: countOf(domain) });
        }
        callback(null, `2.0.0 Ok: queued as B${d.mails}`);
      });
    },
  });
  server.on('error', () => undefined);
  server.listen(0, '127.0.0.1', () => tell({ kind: 'port', port: (server.server.address() as AddressInfo).port }));
  process.on('message', (m: ToChild) => {
    if (m.kind === 'count') return tell({ kind: 'count', domain: m.domain, result: countOf(m.domain) });
    if (countOf(m.domain).mails >= m.count) return tell({ kind: 'count', domain: m.domain, result: countOf(m.domain) });
    waits.set(m.domain, m.count);
  });
}

/** Starts the sink in a child process on a free loopback port. */
export async function startSmtpSink(): Promise<SmtpSink> {
  const ca = createCa('bench mail CA');
  const cert = issueServerCert(ca);
  const child: ChildProcess = fork(__filename, ['--serve'], {
    env: { ...process.env, KEY_PEM: cert.keyPem, CERT_PEM: cert.certPem },
    execArgv: ['--import', 'tsx'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: ToParent) => (m.kind === 'port' ? resolve(m.port) : reject(new Error('unexpected message'))));
    child.once('exit', (code) => reject(new Error(`the SMTP sink exited with ${code}`)));
  });
  const ask = (m: ToChild) =>
    new Promise<SinkCount>((resolve) => {
      const on = (r: ToParent) => {
        if (r.kind === 'count' && r.domain === m.domain) {
          child.off('message', on);
          resolve(r.result);
        }
      };
      child.on('message', on);
      child.send(m);
    });
  return {
    port,
    caPem: ca.certPem,
    waitFor: (domain, count) => ask({ kind: 'wait', domain, count }),
    count: (domain) => ask({ kind: 'count', domain }),
    stop: () => child.kill(),
  };
}

if (process.argv[2] === '--serve') serve(process.env['KEY_PEM']!, process.env['CERT_PEM']!);
