/**
 * A loopback HTTP server that authenticates with NTLM as IIS does for Windows integrated authentication: an
 * unauthenticated request gets `401` with `WWW-Authenticate: Negotiate` and `NTLM`; a NEGOTIATE message gets a
 * CHALLENGE (server challenge and target info) bound to that TCP connection; an AUTHENTICATE message is accepted
 * only on the same connection and only if its NTLMv2 proof verifies against the account's password (NTLMv1 is
 * refused, as LmCompatibilityLevel 5 does). Verification is written here from MS-NLMP, not taken from the client.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import type { Socket } from 'node:net';
import { create_NT_hashed_password } from 'httpntlm/ntlm';
import { startLoopbackServer, type LoopbackServer, type RecordedRequest } from './loopback-server';

const SIGNATURE = Buffer.from('NTLMSSP\0', 'ascii');
const FLAGS =
  0x00000001 | // NEGOTIATE_UNICODE
  0x00000004 | // REQUEST_TARGET
  0x00000200 | // NEGOTIATE_NTLM
  0x00008000 | // NEGOTIATE_ALWAYS_SIGN
  0x00010000 | // TARGET_TYPE_DOMAIN
  0x00080000 | // NEGOTIATE_EXTENDED_SESSIONSECURITY
  0x00800000 | // NEGOTIATE_TARGET_INFO
  0x02000000 | // NEGOTIATE_VERSION
  0x20000000; // NEGOTIATE_128

export interface NtlmEvent {
  kind: 'negotiate' | 'authenticate' | 'anonymous';
  remotePort: number;
  user?: string;
  domain?: string;
  /** NTLMv2 proof verified against the account's password. */
  ok?: boolean;
  reason?: string;
  hadBody: boolean;
}

export interface NtlmServer extends LoopbackServer {
  events: NtlmEvent[];
}

const hmacMd5 = (key: Buffer, data: Buffer): Buffer => createHmac('md5', key).update(data).digest();
const utf16 = (s: string): Buffer => Buffer.from(s, 'utf16le');

function avPair(id: number, value: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16LE(id, 0);
  head.writeUInt16LE(value.length, 2);
  return Buffer.concat([head, value]);
}

function challengeMessage(serverChallenge: Buffer, domain: string, targetInfo: Buffer): Buffer {
  const targetName = utf16(domain);
  const header = Buffer.alloc(56);
  SIGNATURE.copy(header, 0);
  header.writeUInt32LE(2, 8);
  header.writeUInt16LE(targetName.length, 12);
  header.writeUInt16LE(targetName.length, 14);
  header.writeUInt32LE(56, 16);
  header.writeUInt32LE(FLAGS >>> 0, 20);
  serverChallenge.copy(header, 24);
  header.writeUInt16LE(targetInfo.length, 40);
  header.writeUInt16LE(targetInfo.length, 42);
  header.writeUInt32LE(56 + targetName.length, 44);
  header.writeUInt8(10, 48); // version 10.0.17763 (Windows Server 2019)
  header.writeUInt16LE(17763, 50);
  header.writeUInt8(15, 55);
  return Buffer.concat([header, targetName, targetInfo]);
}

function field(msg: Buffer, at: number): Buffer {
  const len = msg.readUInt16LE(at);
  const off = msg.readUInt32LE(at + 4);
  return msg.subarray(off, off + len);
}

/**
 * Starts the server. `accounts` maps `DOMAIN\user` (upper-case domain) to the password; `handler` answers requests
 * that authenticated. With `offer: 'negotiate-only'` it offers Kerberos only (no NTLM), as a hardened server would.
 */
export async function startNtlmServer(opts: {
  domain: string;
  accounts: Record<string, string>;
  handler: (req: RecordedRequest, res: http.ServerResponse) => void;
  offer?: 'ntlm' | 'negotiate-only';
}): Promise<NtlmServer> {
  const challenges = new WeakMap<Socket, { serverChallenge: Buffer; targetInfo: Buffer }>();
  const events: NtlmEvent[] = [];
  const deny = (res: http.ServerResponse, challenge?: string): void => {
    const offer = challenge ? [challenge] : opts.offer === 'negotiate-only' ? ['Negotiate'] : ['Negotiate', 'NTLM'];
    res.writeHead(401, { 'www-authenticate': offer, 'content-type': 'text/html', connection: 'keep-alive', 'content-length': '12' });
    res.end('Unauthorized');
  };
  const server = await startLoopbackServer((req, res, raw) => {
    const socket = raw.socket;
    const hadBody = req.body.length > 0;
    const header = req.headers.authorization ?? '';
    if (!/^NTLM /i.test(header) || opts.offer === 'negotiate-only') {
      events.push({ kind: 'anonymous', remotePort: req.remotePort, hadBody });
      return deny(res);
    }
    const msg = Buffer.from(header.slice(5).trim(), 'base64');
    if (msg.length < 12 || !msg.subarray(0, 8).equals(SIGNATURE)) return deny(res);
    const type = msg.readUInt32LE(8);
    if (type === 1) {
      const serverChallenge = randomBytes(8);
      const timestamp = Buffer.alloc(8);
      timestamp.writeBigUInt64LE((BigInt(Date.now()) + 11644473600000n) * 10000n);
      const targetInfo = Buffer.concat([
        avPair(2, utf16(opts.domain)), // MsvAvNbDomainName
        avPair(1, utf16('SCCM01')), // MsvAvNbComputerName
        avPair(7, timestamp), // MsvAvTimestamp
        avPair(0, Buffer.alloc(0)), // MsvAvEOL
      ]);
      challenges.set(socket, { serverChallenge, targetInfo });
      events.push({ kind: 'negotiate', remotePort: req.remotePort, hadBody });
      return deny(res, `NTLM ${challengeMessage(serverChallenge, opts.domain, targetInfo).toString('base64')}`);
    }
    if (type !== 3) return deny(res);
    const ev: NtlmEvent = { kind: 'authenticate', remotePort: req.remotePort, hadBody, ok: false };
    events.push(ev);
    const pending = challenges.get(socket);
    challenges.delete(socket);
    if (!pending) {
      ev.reason = 'no challenge was issued on this connection';
      return deny(res);
    }
    const nt = field(msg, 20);
    ev.domain = field(msg, 28).toString('utf16le');
    ev.user = field(msg, 36).toString('utf16le');
    if (nt.length <= 24) {
      ev.reason = 'NTLMv1 refused';
      return deny(res);
    }
    const password = opts.accounts[`${ev.domain.toUpperCase()}\\${ev.user.toLowerCase()}`];
    if (password === undefined) {
      ev.reason = 'unknown account';
      return deny(res);
    }
    // MS-NLMP 3.3.2: NTOWFv2 = HMAC_MD5(MD4(UNICODE(password)), UNICODE(Uppercase(user) + domain));
    // NTProofStr = HMAC_MD5(NTOWFv2, serverChallenge + blob), the blob carrying the server's target info.
    const ntowfv2 = hmacMd5(create_NT_hashed_password(password), utf16(ev.user.toUpperCase() + ev.domain));
    const proof = nt.subarray(0, 16);
    const blob = nt.subarray(16);
    const expected = hmacMd5(ntowfv2, Buffer.concat([pending.serverChallenge, blob]));
    if (!timingSafeEqual(proof, expected)) {
      ev.reason = 'wrong password';
      return deny(res);
    }
    if (!blob.includes(pending.targetInfo)) {
      ev.reason = 'the response does not carry the challenge target info';
      return deny(res);
    }
    ev.ok = true;
    opts.handler(req, res);
  });
  return Object.assign(server, { events });
}
