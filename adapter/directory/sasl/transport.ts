/**
 * A SASL-bound LDAP connection that ldapts can use as its socket.
 *
 * ldapts (8.x) knows only PLAIN/EXTERNAL/DIGEST-MD5/SCRAM, writes SASL credentials as utf8 strings and decodes
 * `serverSaslCreds` as utf8, so binary GSS tokens cannot go through its `bind`. Instead ldapts's
 * `createConnection` / `createSecureConnection` hook returns a `SaslSocket`: it opens the real TCP (or TLS)
 * connection, performs StartTLS itself when asked, runs the SASL bind on the raw socket (BindRequest v3 with
 * binary credentials, looping while the server answers saslBindInProgress), installs the mechanism's security
 * layer (every LDAP PDU becomes a SASL buffer: 4-octet big-endian length + wrap(pdu); incoming buffers are
 * reassembled by that length and unwrapped in order) and only then tells ldapts it is connected. ldapts then
 * reads and writes plaintext LDAP as on any socket.
 *
 * BER: the BindRequest / ExtendedRequest are written with ldapts's exported `BerWriter` and the responses read
 * with its `BerReader`; only the outer framing (where one LDAPMessage ends in the stream) is decoded here.
 *
 * Every phase is bounded: the TCP/TLS connect by `connectTimeoutMs`, each request/answer round by
 * `timeoutMs`. Failures are `DirectoryError`s naming the cause; tokens never appear in a message.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { BerReader, BerWriter } from 'ldapts';
import { DirectoryError, DirectoryErrorCode, toDirectoryError } from '../errors';
import type { SaslMechanism, SaslSecurityLayer } from './mechanism';

const LDAP_VERSION = 3;
const TAG_BIND_REQUEST = 0x60; // [APPLICATION 0]
const TAG_BIND_RESPONSE = 0x61; // [APPLICATION 1]
const TAG_EXTENDED_REQUEST = 0x77; // [APPLICATION 23]
const TAG_EXTENDED_RESPONSE = 0x78; // [APPLICATION 24]
const TAG_SASL_AUTH = 0xa3; // AuthenticationChoice sasl [3] SaslCredentials
const TAG_SERVER_SASL_CREDS = 0x87; // BindResponse serverSaslCreds [7]
const TAG_EXT_REQUEST_NAME = 0x80; // ExtendedRequest requestName [0]
const STARTTLS_OID = '1.3.6.1.4.1.1466.20037';
const SASL_BIND_IN_PROGRESS = 14;
/** The largest SASL buffer we accept from the server (and advertise in GSSAPI negotiation): 16 MiB - 1. */
export const MAX_SASL_BUFFER = 0xffffff;
/** Bind rounds before we give up on a mechanism that never finishes. */
const MAX_BIND_ROUNDS = 10;

export interface SaslTransportOptions {
  host: string;
  port: number;
  /** `ldaps`: TLS from the first byte; `starttls`: the StartTLS extended operation, then TLS; `none`: plain TCP. */
  security: 'ldaps' | 'starttls' | 'none';
  tls: ConnectionOptions;
  mechanism: SaslMechanism;
  connectTimeoutMs: number;
  timeoutMs: number;
  /** What the bind is, for messages ("GSSAPI bind as svc@CORP to ldap://dc1:389"). */
  context: string;
  /** Secrets to scrub from any message that came from elsewhere. */
  secrets: readonly string[];
  /** Test hook: sees every byte read from the network (after TLS, before the SASL layer). */
  onWireData?: (chunk: Buffer) => void;
}

/** One LDAPResult-style answer. */
interface LdapResult {
  messageId: number;
  tag: number;
  resultCode: number;
  diagnosticMessage: string;
  serverSaslCreds: Buffer | undefined;
}

function writeBindRequest(messageId: number, mechanism: string, credentials: Buffer | undefined): Buffer {
  const w = new BerWriter();
  w.startSequence();
  w.writeInt(messageId);
  w.startSequence(TAG_BIND_REQUEST);
  w.writeInt(LDAP_VERSION);
  w.writeString('');
  w.startSequence(TAG_SASL_AUTH);
  w.writeString(mechanism);
  if (credentials) w.writeBuffer(credentials, 0x04);
  w.endSequence();
  w.endSequence();
  w.endSequence();
  return w.buffer;
}

function writeStartTls(messageId: number): Buffer {
  const w = new BerWriter();
  w.startSequence();
  w.writeInt(messageId);
  w.startSequence(TAG_EXTENDED_REQUEST);
  w.writeString(STARTTLS_OID, TAG_EXT_REQUEST_NAME);
  w.endSequence();
  w.endSequence();
  return w.buffer;
}

/** Length of the first complete BER element (tag + length + content) in `buf`, or 0 when it is not all there yet. */
export function berElementLength(buf: Buffer): number {
  if (buf.length < 2) return 0;
  const first = buf[1]!;
  if (first < 0x80) return buf.length >= 2 + first ? 2 + first : 0;
  const n = first & 0x7f;
  if (n === 0 || n > 4) throw new Error('malformed LDAP message (indefinite or oversized BER length)');
  if (buf.length < 2 + n) return 0;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + buf[2 + i]!;
  const total = 2 + n + len;
  return buf.length >= total ? total : 0;
}

function readResult(pdu: Buffer): LdapResult {
  const r = new BerReader(pdu);
  r.readSequence();
  const messageId = r.readInt() ?? -1;
  const tag = r.readSequence() ?? -1;
  const resultCode = r.readEnumeration() ?? -1;
  r.readString(); // matchedDN
  const diagnosticMessage = r.readString() ?? '';
  let serverSaslCreds: Buffer | undefined;
  const end = pdu.length;
  while (r.offset < end && r.remain > 0) {
    const t = r.peek();
    if (t === TAG_SERVER_SASL_CREDS) {
      serverSaslCreds = r.readString(TAG_SERVER_SASL_CREDS, true) ?? Buffer.alloc(0);
    } else {
      // referral [3], responseName [10], responseValue [11], controls: skip the element.
      r.readByte();
      const contentStart = r.readLength(); // the offset after the length octets; the length is in r.length
      if (contentStart === null) break;
      r.offset = contentStart + r.length;
    }
  }
  return { messageId, tag, resultCode, diagnosticMessage, serverSaslCreds };
}

function ldapFailure(res: LdapResult, what: string, context: string, secrets: readonly string[]): DirectoryError {
  // Samba (53, "Sign or Seal are not allowed if TLS is used") and Windows AD (00002029) refuse a SASL sign/seal
  // layer on a TLS connection: a settings problem, so say which setting.
  if (res.resultCode === 53 && /Sign or Seal are not allowed if TLS|00002029/i.test(res.diagnosticMessage)) {
    return new DirectoryError(DirectoryErrorCode.CONFIG,
      `${context}: the server refuses a SASL sign/seal layer over TLS; set SASL protection to none with LDAPS/StartTLS (server said: ${res.diagnosticMessage})`,
      { ldapCode: res.resultCode });
  }
  const err = Object.assign(new Error(res.diagnosticMessage || `${what} failed`), { code: res.resultCode });
  return toDirectoryError(err, context, secrets);
}

/**
 * Reads whole BER messages from a socket, one at a time, with a bound per read. Used before the security layer
 * is installed (bind, StartTLS); it detaches when `release` is called and hands back any bytes already read.
 */
class MessageReader {
  #buf: Buffer = Buffer.alloc(0);
  #waiter: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  #failed: Error | undefined;
  readonly #socket: Socket | TLSSocket;
  readonly #onData = (chunk: Buffer): void => {
    this.#tap?.(chunk);
    this.#buf = Buffer.concat([this.#buf, chunk]);
    this.#pump();
  };
  readonly #onEnd = (): void => this.#fail(new Error('connection closed by the server during the bind'));
  readonly #onError = (e: Error): void => this.#fail(e);
  readonly #tap: ((chunk: Buffer) => void) | undefined;

  constructor(socket: Socket | TLSSocket, tap?: (chunk: Buffer) => void) {
    this.#socket = socket;
    this.#tap = tap;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onError);
  }

  #fail(e: Error): void {
    this.#failed ??= e;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(e);
  }

  #pump(): void {
    if (!this.#waiter) return;
    let n: number;
    try {
      n = berElementLength(this.#buf);
    } catch (e) {
      this.#fail(e as Error);
      return;
    }
    if (n === 0) return;
    const pdu = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    const w = this.#waiter;
    this.#waiter = undefined;
    w.resolve(pdu);
  }

  next(timeoutMs: number, what: string): Promise<Buffer> {
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(Object.assign(new Error(`${what}: no answer within ${timeoutMs} ms (timed out)`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      this.#waiter = {
        resolve: (b) => { clearTimeout(timer); resolve(b); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      this.#pump();
    });
  }

  /** Stops listening; returns bytes read past the last message. */
  release(): Buffer {
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('close', this.#onEnd);
    this.#socket.off('error', this.#onError);
    const rest = this.#buf;
    this.#buf = Buffer.alloc(0);
    return rest;
  }
}

function connectRaw(o: SaslTransportOptions): Promise<Socket | TLSSocket> {
  return new Promise((resolve, reject) => {
    const tls = o.security === 'ldaps';
    const sock: Socket | TLSSocket = tls ? tlsConnect({ ...o.tls, port: o.port, host: o.host }) : netConnect(o.port, o.host);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(Object.assign(new Error(`connect to ${o.host}:${o.port} timed out after ${o.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, o.connectTimeoutMs);
    sock.once(tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    });
  });
}

async function startTls(sock: Socket, o: SaslTransportOptions): Promise<TLSSocket> {
  const reader = new MessageReader(sock);
  try {
    sock.write(writeStartTls(1));
    const res = readResult(await reader.next(o.timeoutMs, 'StartTLS'));
    if (res.tag !== TAG_EXTENDED_RESPONSE || res.resultCode !== 0) {
      const err = Object.assign(new Error(`StartTLS refused: ${res.diagnosticMessage || `result ${res.resultCode}`}`), { code: 'ERR_STARTTLS' });
      throw new DirectoryError(DirectoryErrorCode.TLS, `${o.context}: ${err.message}`, res.resultCode >= 0 ? { ldapCode: res.resultCode } : {}, { cause: err });
    }
  } finally {
    reader.release();
  }
  return new Promise((resolve, reject) => {
    const t = tlsConnect({ ...o.tls, socket: sock });
    const timer = setTimeout(() => {
      t.destroy();
      reject(Object.assign(new Error(`TLS handshake after StartTLS timed out after ${o.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, o.connectTimeoutMs);
    t.once('secureConnect', () => { clearTimeout(timer); t.removeAllListeners('error'); resolve(t); });
    t.once('error', (e) => { clearTimeout(timer); t.destroy(); reject(e); });
  });
}

/** Runs the SASL bind on `sock`; returns the negotiated layer and any bytes already read after the last answer. */
async function saslBind(sock: Socket | TLSSocket, o: SaslTransportOptions, firstMessageId: number): Promise<{ layer: SaslSecurityLayer | null; rest: Buffer }> {
  const reader = new MessageReader(sock, o.onWireData);
  try {
    let messageId = firstMessageId;
    let creds = await o.mechanism.step(undefined, false);
    for (let round = 0; ; round++) {
      if (round >= MAX_BIND_ROUNDS) throw new DirectoryError(DirectoryErrorCode.LDAP_ERROR, `${o.context}: the ${o.mechanism.name} exchange did not finish after ${MAX_BIND_ROUNDS} rounds`);
      sock.write(writeBindRequest(messageId, o.mechanism.name, creds));
      const res = readResult(await reader.next(o.timeoutMs, `${o.mechanism.name} bind`));
      if (res.messageId === 0) throw ldapFailure(res, 'notice of disconnection', `${o.context}: the server closed the session`, o.secrets);
      if (res.tag !== TAG_BIND_RESPONSE || res.messageId !== messageId) {
        throw new DirectoryError(DirectoryErrorCode.LDAP_ERROR, `${o.context}: unexpected answer to the bind (message ${res.messageId}, tag 0x${res.tag.toString(16)})`);
      }
      if (res.resultCode === 0) {
        await o.mechanism.step(res.serverSaslCreds, true);
        return { layer: o.mechanism.securityLayer(), rest: reader.release() };
      }
      if (res.resultCode !== SASL_BIND_IN_PROGRESS) throw ldapFailure(res, 'bind', o.context, o.secrets);
      creds = (await o.mechanism.step(res.serverSaslCreds, false)) ?? Buffer.alloc(0);
      messageId += 1;
    }
  } finally {
    reader.release();
  }
}

/**
 * The socket ldapts sees: plaintext LDAP in and out, a SASL security layer (or none) underneath. It says
 * `connect` (or `secureConnect` over TLS) only once the bind succeeded; a failed connect or bind is an `error`.
 */
export class SaslSocket extends Duplex {
  connecting = true;
  readyState: 'opening' | 'open' | 'closed' = 'opening';
  /** True once the SASL bind succeeded and the layer is installed. */
  bound = false;
  /** The negotiated layer's protection, once bound (`none` when TLS carries the session). */
  protection: 'sign' | 'seal' | 'none' | undefined;
  #raw: Socket | TLSSocket | undefined;
  #layer: SaslSecurityLayer | null = null;
  #inBuf: Buffer = Buffer.alloc(0);
  #unwrapping: Promise<void> = Promise.resolve();
  readonly #o: SaslTransportOptions;

  constructor(o: SaslTransportOptions) {
    super({ allowHalfOpen: false });
    this.#o = o;
    this.#open().catch((e: unknown) => {
      this.#raw?.destroy();
      this.destroy(toDirectoryError(e, o.context, o.secrets));
    });
  }

  async #open(): Promise<void> {
    const o = this.#o;
    let sock = await connectRaw(o);
    this.#raw = sock;
    if (o.security === 'starttls') {
      sock = await startTls(sock, o);
      this.#raw = sock;
    }
    if (this.destroyed) {
      sock.destroy();
      return;
    }
    const { layer, rest } = await saslBind(sock, o, o.security === 'starttls' ? 2 : 1);
    if (this.destroyed) {
      sock.destroy();
      return;
    }
    this.#layer = layer;
    this.protection = layer ? layer.protection : 'none';
    this.bound = true;
    sock.on('data', (chunk: Buffer) => this.#incoming(chunk));
    sock.on('end', () => this.#flushThenEnd());
    sock.on('error', (e) => this.destroy(e));
    sock.on('close', () => { if (!this.destroyed) this.#flushThenEnd(); });
    if (rest.length) this.#incoming(rest);
    this.connecting = false;
    this.readyState = 'open';
    this.emit(o.security === 'ldaps' ? 'secureConnect' : 'connect');
  }

  #flushThenEnd(): void {
    this.#unwrapping = this.#unwrapping.then(() => { this.push(null); });
  }

  #incoming(chunk: Buffer): void {
    this.#o.onWireData?.(chunk);
    if (!this.#layer) {
      this.push(chunk);
      return;
    }
    this.#inBuf = this.#inBuf.length ? Buffer.concat([this.#inBuf, chunk]) : chunk;
    const layer = this.#layer;
    while (this.#inBuf.length >= 4) {
      const len = this.#inBuf.readUInt32BE(0);
      if (len > MAX_SASL_BUFFER) {
        this.destroy(new DirectoryError(DirectoryErrorCode.UNAVAILABLE, `${this.#o.context}: the server sent a SASL buffer of ${len} octets (more than ${MAX_SASL_BUFFER})`));
        return;
      }
      if (this.#inBuf.length < 4 + len) break;
      const wrapped = Buffer.from(this.#inBuf.subarray(4, 4 + len));
      this.#inBuf = this.#inBuf.subarray(4 + len);
      // Strictly in order: each unwrap starts after the previous one's plaintext was pushed.
      this.#unwrapping = this.#unwrapping.then(async () => {
        if (this.destroyed) return;
        try {
          this.push(await layer.unwrap(wrapped));
        } catch (e) {
          this.destroy(new DirectoryError(DirectoryErrorCode.UNAVAILABLE,
            `${this.#o.context}: a message from the server failed the SASL ${layer.protection} check (${e instanceof Error ? e.message : String(e)})`));
        }
      });
    }
  }

  override _read(): void {
    // Data is pushed as it arrives and is unwrapped; nothing to pull.
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const raw = this.#raw;
    if (!raw || !this.bound) {
      cb(new DirectoryError(DirectoryErrorCode.UNAVAILABLE, `${this.#o.context}: not connected`));
      return;
    }
    const layer = this.#layer;
    if (!layer) {
      raw.write(chunk, cb);
      return;
    }
    // A SASL buffer need not hold a whole PDU: split to stay under the peer's stated maximum (GSS adds <= 64 octets).
    const limit = layer.maxOutgoing > 128 ? layer.maxOutgoing - 128 : chunk.length;
    const parts: Buffer[] = [];
    for (let i = 0; i < chunk.length; i += limit) parts.push(chunk.subarray(i, i + limit));
    (async () => {
      const out: Buffer[] = [];
      for (const p of parts) {
        const w = await layer.wrap(p);
        const head = Buffer.alloc(4);
        head.writeUInt32BE(w.length, 0);
        out.push(head, w);
      }
      return Buffer.concat(out);
    })().then((buf) => raw.write(buf, cb), (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))));
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.#raw && !this.#raw.destroyed) this.#raw.end(() => cb());
    else cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.readyState = 'closed';
    this.bound = false;
    this.#raw?.destroy();
    cb(err);
  }

  /** ldapts calls setTimeout/setKeepAlive on some paths; pass them down to the real socket. */
  setTimeout(ms: number, cb?: () => void): this {
    this.#raw?.setTimeout(ms, cb);
    return this;
  }
}

/** Opens a SASL-bound connection; resolves once bound (for callers that use it without ldapts). */
export function createSaslSocket(o: SaslTransportOptions): SaslSocket {
  return new SaslSocket(o);
}
