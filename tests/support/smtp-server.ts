/**
 * A real SMTP server on loopback for tests (the `smtp-server` package), with STARTTLS or implicit TLS under a
 * certificate from a test CA, AUTH (PLAIN/LOGIN, required when credentials are given, refused before TLS), and every
 * mail it takes parsed with `mailparser`. One per test file (beforeAll); reused by every test that sends mail:
 *
 *   const smtp = await startSmtpServer({ tls: 'starttls', auth: { user: 'provisio', pass: 's3cret' } });
 *   await t.http().put('/admin/settings/smtp').set(t.admin).send(smtp.settings());
 *   ... something that mails ...
 *   const mail = await smtp.waitForMail((m) => m.envelope.to.includes('boss@example.com'));
 *   mail.subject, mail.text, mail.html, mail.headers.get('message-id'), mail.raw
 *
 * `setDown(true)` drops every connection and stops listening (connections are refused), `setDown(false)` listens
 * again on the same port. `setCredentials` changes what AUTH accepts and drops open sessions (a refused password, then the right one),
 * `refuseRecipients` makes RCPT TO answer an error for matching addresses.
 */
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerError, type SMTPServerOptions } from 'smtp-server';
import { createCa, issueServerCert, type Issued } from './pki';

/** A mail the server took: the parsed message, its envelope, its raw source, and how it came. */
export type ReceivedMail = ParsedMail & {
  envelope: { from: string; to: string[] };
  /** The source as received (headers and body, CRLF line ends). */
  raw: string;
  /** The AUTH user the client logged in as; undefined without AUTH. */
  user: string | undefined;
  /** True when the session was encrypted (STARTTLS done or implicit TLS). */
  secure: boolean;
};

export interface SmtpServerOptions {
  /** `starttls` (default): plain port that offers STARTTLS; `implicit`: TLS from the first byte. */
  tls?: 'starttls' | 'implicit';
  /** Credentials AUTH accepts; AUTH is then required. None: no AUTH (mail is accepted without logging in). */
  auth?: { user: string; pass: string } | undefined;
  /** The CA whose server certificate the server presents (default: a fresh one per server). */
  ca?: Issued;
  /** false: the server neither offers nor accepts STARTTLS (a client that requires it must fail). */
  offerStartTls?: boolean;
}

export interface TestSmtpServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** PEM of the CA that issued the server certificate (for `ca_cert_pem`). */
  readonly ca: string;
  readonly tls: 'starttls' | 'implicit';
  /** Every mail taken so far, in order. */
  readonly mails: ReceivedMail[];
  /** Resolves with the first mail (already taken or still to come) that matches; rejects after `timeoutMs` (default 10 s). */
  waitForMail(predicate?: (m: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>;
  /** Resolves when `count` matching mails have been taken, with them. */
  waitForMails(count: number, predicate?: (m: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail[]>;
  /** true: drop every connection and stop listening (connect refused); false: listen again on the same port. */
  setDown(down: boolean): Promise<void>;
  /** What AUTH accepts from now on; open connections are dropped, so every client logs in again. */
  setCredentials(auth: { user: string; pass: string }): void;
  /** RCPT TO answers `code` (default 550) for addresses that match; `undefined` accepts all again. */
  refuseRecipients(match: ((address: string) => boolean) | undefined, code?: number): void;
  /** The `smtp` settings section that reaches this server (PUT /admin/settings/smtp), with `extra` merged in. */
  settings(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Forgets the mails taken so far. */
  clear(): void;
  stop(): Promise<void>;
}

const FROM_ADDRESS = 'provisio@example.com';

/** Starts a server on 127.0.0.1 on a free port. */
export async function startSmtpServer(opts: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const mode = opts.tls ?? 'starttls';
  const ca = opts.ca ?? createCa('provisio test mail CA');
  const cert = issueServerCert(ca);
  let credentials = opts.auth;
  let refuse: { match: (a: string) => boolean; code: number } | undefined;
  const mails: ReceivedMail[] = [];
  const waiters = new Set<() => void>();

  const serverOptions: SMTPServerOptions = {
    secure: mode === 'implicit',
    key: cert.keyPem,
    cert: cert.certPem,
    minVersion: 'TLSv1.2',
    // Not offered and not accepted either (hidden alone, a client that insists still gets it).
    hideSTARTTLS: opts.offerStartTls === false,
    ...(opts.offerStartTls === false ? { disabledCommands: ['STARTTLS'] } : {}),
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: credentials === undefined,
    // AUTH only over TLS, as a real submission server: a client that skipped STARTTLS cannot log in.
    allowInsecureAuth: false,
    closeTimeout: 100,
    logger: false,
    onAuth(auth, _session, callback) {
      if (credentials && auth.username === credentials.user && auth.password === credentials.pass) return callback(null, { user: auth.username });
      const e: SMTPServerError = new Error('5.7.8 Authentication credentials invalid');
      e.responseCode = 535;
      return callback(e);
    },
    onRcptTo(address, _session, callback) {
      if (refuse?.match(address.address)) {
        const e: SMTPServerError = new Error(`${refuse.code >= 500 ? '5' : '4'}.1.1 <${address.address}>: recipient refused`);
        e.responseCode = refuse.code;
        return callback(e);
      }
      return callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', (e) => callback(e));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        simpleParser(raw).then(
          (parsed) => {
            const envelope = {
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((r) => r.address),
            };
            mails.push(Object.assign(parsed, { envelope, raw: raw.toString('utf8'), user: session.user as string | undefined, secure: session.secure === true }));
            for (const w of [...waiters]) w();
            callback(null, `2.0.0 Ok: queued as T${mails.length}`);
          },
          (e: Error) => callback(e),
        );
      });
    },
  };

  let server = new SMTPServer(serverOptions);
  const listen = (s: SMTPServer, port: number) =>
    new Promise<number>((resolve, reject) => {
      s.on('error', () => undefined);
      s.server.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve((s.server.address() as AddressInfo).port));
    });
  const close = (s: SMTPServer) =>
    new Promise<void>((resolve) => {
      // Drop the clients' pooled connections now, as a server going down would, instead of waiting for them.
      for (const c of s.connections) c.close();
      s.close(() => resolve());
    });
  const port = await listen(server, 0);
  let down = false;

  const matching = (predicate?: (m: ReceivedMail) => boolean) => mails.filter((m) => !predicate || predicate(m));
  const waitForMails = (count: number, predicate?: (m: ReceivedMail) => boolean, timeoutMs = 10_000) =>
    new Promise<ReceivedMail[]>((resolve, reject) => {
      const check = () => {
        const found = matching(predicate);
        if (found.length < count) return false;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found.slice(0, count));
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`smtp test server: ${matching(predicate).length} of ${count} matching mail(s) after ${timeoutMs} ms (${mails.length} taken in all)`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  return {
    host: '127.0.0.1',
    port,
    ca: ca.certPem,
    tls: mode,
    mails,
    waitForMails,
    async waitForMail(predicate, timeoutMs) {
      return (await waitForMails(1, predicate, timeoutMs))[0]!;
    },
    async setDown(wantDown) {
      if (wantDown === down) return;
      down = wantDown;
      if (wantDown) await close(server);
      else {
        server = new SMTPServer(serverOptions);
        await listen(server, port);
      }
    },
    setCredentials(auth) {
      credentials = auth;
      // Clients logged in with the old credentials would keep their sessions: drop them, so the next mail logs in.
      for (const c of server.connections) c.close();
    },
    refuseRecipients(match, code = 550) {
      refuse = match ? { match, code } : undefined;
    },
    settings(extra = {}) {
      return {
        host: '127.0.0.1',
        port,
        tls_mode: mode === 'implicit' ? 'tls' : 'starttls',
        from_address: FROM_ADDRESS,
        ca_cert_pem: ca.certPem,
        ...(credentials ? { username: credentials.user, password: credentials.pass } : {}),
        ...extra,
      };
    },
    clear() {
      mails.length = 0;
    },
    async stop() {
      waiters.clear();
      if (!down) await close(server);
      down = true;
    },
  };
}
