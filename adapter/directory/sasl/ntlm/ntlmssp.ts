/**
 * NTLMSSP (MS-NLMP): NEGOTIATE, CHALLENGE parsing, NTLMv2 AUTHENTICATE with MIC, and the session security of
 * extended session security (sign/seal keys, MAC, RC4 seal). Only NTLMv2 is spoken; LM and NTLMv1 never.
 */
import { randomBytes } from 'node:crypto';
import { DirectoryError, DirectoryErrorCode } from '../../errors';
import { hmacMd5, md4, md5, Rc4, rc4 } from './crypto';

export const Flag = {
  UNICODE: 0x00000001,
  REQUEST_TARGET: 0x00000004,
  SIGN: 0x00000010,
  SEAL: 0x00000020,
  NTLM: 0x00000200,
  ALWAYS_SIGN: 0x00008000,
  EXTENDED_SESSIONSECURITY: 0x00080000,
  TARGET_INFO: 0x00800000,
  VERSION: 0x02000000,
  N128: 0x20000000,
  KEY_EXCH: 0x40000000,
  N56: 0x80000000,
} as const;

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');
/** Windows 10.0 build 19041, NTLM revision 15 (the VERSION field is informational). */
const VERSION = Buffer.from([10, 0, 0x61, 0x4a, 0, 0, 0, 15]);

export const AvId = { EOL: 0, NbComputerName: 1, NbDomainName: 2, DnsComputerName: 3, DnsDomainName: 4, Flags: 6, Timestamp: 7, TargetName: 9 } as const;

export function malformed(what: string): DirectoryError {
  return new DirectoryError(DirectoryErrorCode.LDAP_ERROR, `NTLM bind: malformed server token: ${what}`);
}

export function negotiateFlags(protection: 'sign' | 'seal' | 'none'): number {
  let f = Flag.UNICODE | Flag.REQUEST_TARGET | Flag.NTLM | Flag.ALWAYS_SIGN | Flag.EXTENDED_SESSIONSECURITY |
    Flag.TARGET_INFO | Flag.VERSION | Flag.N128 | Flag.KEY_EXCH | Flag.N56;
  if (protection === 'sign' || protection === 'seal') f |= Flag.SIGN;
  if (protection === 'seal') f |= Flag.SEAL;
  return f >>> 0;
}

export function buildNegotiate(flags: number): Buffer {
  const b = Buffer.alloc(40);
  SIGNATURE.copy(b, 0);
  b.writeUInt32LE(1, 8);
  b.writeUInt32LE(flags >>> 0, 12);
  // DomainNameFields and WorkstationFields empty (offsets point past the header).
  b.writeUInt32LE(40, 20);
  b.writeUInt32LE(40, 28);
  VERSION.copy(b, 32);
  return b;
}

export interface Challenge {
  flags: number;
  serverChallenge: Buffer;
  targetInfo: Buffer;
  avPairs: Map<number, Buffer>;
}

export function parseAvPairs(info: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  for (;;) {
    if (off + 4 > info.length) throw malformed('target info is truncated');
    const id = info.readUInt16LE(off);
    const len = info.readUInt16LE(off + 2);
    if (off + 4 + len > info.length) throw malformed('a target info pair overruns');
    if (id === AvId.EOL) return out;
    out.set(id, info.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
}

export function parseChallenge(msg: Buffer): Challenge {
  if (msg.length < 48 || !msg.subarray(0, 8).equals(SIGNATURE) || msg.readUInt32LE(8) !== 2) throw malformed('not an NTLMSSP CHALLENGE message');
  const flags = msg.readUInt32LE(20);
  const serverChallenge = Buffer.from(msg.subarray(24, 32));
  const tiLen = msg.readUInt16LE(40);
  const tiOff = msg.readUInt32LE(44);
  if (!(flags & Flag.TARGET_INFO) || tiLen === 0) throw malformed('the CHALLENGE carries no target info (NTLMv2 needs it)');
  if (tiOff + tiLen > msg.length) throw malformed('the target info overruns the CHALLENGE');
  const targetInfo = Buffer.from(msg.subarray(tiOff, tiOff + tiLen));
  return { flags, serverChallenge, targetInfo, avPairs: parseAvPairs(targetInfo) };
}

export function ntowfv2(password: string, user: string, domain: string): Buffer {
  return hmacMd5(md4(Buffer.from(password, 'utf16le')), Buffer.from(user.toUpperCase() + domain, 'utf16le'));
}

/** The NTLMv2 client blob ("temp" of MS-NLMP 3.3.2) without the server challenge. */
export function clientBlob(timestamp: Buffer, clientChallenge: Buffer, avPairs: Buffer): Buffer {
  return Buffer.concat([Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]), timestamp, clientChallenge, Buffer.alloc(4), avPairs, Buffer.alloc(4)]);
}

/** NTProofStr and SessionBaseKey of NTLMv2 (MS-NLMP 3.3.2). */
export function ntlmv2(responseKeyNT: Buffer, serverChallenge: Buffer, blob: Buffer): { ntProofStr: Buffer; sessionBaseKey: Buffer } {
  const ntProofStr = hmacMd5(responseKeyNT, serverChallenge, blob);
  return { ntProofStr, sessionBaseKey: hmacMd5(responseKeyNT, ntProofStr) };
}

function encodeAvPairs(pairs: Array<[number, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [id, v] of pairs) {
    const h = Buffer.alloc(4);
    h.writeUInt16LE(id, 0);
    h.writeUInt16LE(v.length, 2);
    parts.push(h, v);
  }
  parts.push(Buffer.alloc(4));
  return Buffer.concat(parts);
}

export interface AuthenticateResult {
  message: Buffer;
  flags: number;
  exportedSessionKey: Buffer;
}

export interface AuthenticateInput {
  negotiate: Buffer;
  challengeMessage: Buffer;
  challenge: Challenge;
  clientFlags: number;
  domain: string;
  username: string;
  password: string;
  workstation: string;
  /** Test hooks: fixed randomness and time. */
  clientChallenge?: Buffer;
  exportedSessionKey?: Buffer;
  timestamp?: Buffer;
}

/** The AUTHENTICATE message (NTLMv2, MsvAvFlags=0x2 and the MIC). */
export function buildAuthenticate(i: AuthenticateInput): AuthenticateResult {
  const flags = (i.clientFlags & i.challenge.flags) >>> 0;
  const pairs = [...i.challenge.avPairs.entries()].filter(([id]) => id !== AvId.Flags);
  const serverTime = i.challenge.avPairs.get(AvId.Timestamp);
  const timestamp = serverTime ?? i.timestamp ?? filetimeNow();
  const avFlags = Buffer.alloc(4);
  avFlags.writeUInt32LE(0x2, 0); // the MIC field is present
  pairs.push([AvId.Flags, avFlags]);
  const blob = clientBlob(timestamp, i.clientChallenge ?? randomBytes(8), encodeAvPairs(pairs));
  const key = ntowfv2(i.password, i.username, i.domain);
  const { ntProofStr, sessionBaseKey } = ntlmv2(key, i.challenge.serverChallenge, blob);
  const ntResponse = Buffer.concat([ntProofStr, blob]);
  // With MsvAvTimestamp the LMv2 response is Z(24) (MS-NLMP 3.1.5.1.2).
  const lmResponse = serverTime ? Buffer.alloc(24) : Buffer.concat([hmacMd5(key, i.challenge.serverChallenge, blob.subarray(16, 24)), blob.subarray(16, 24)]);
  let exportedSessionKey: Buffer = sessionBaseKey; // KeyExchangeKey = SessionBaseKey for NTLMv2
  let encryptedKey: Buffer = Buffer.alloc(0);
  if (flags & Flag.KEY_EXCH) {
    exportedSessionKey = i.exportedSessionKey ?? randomBytes(16);
    encryptedKey = rc4(sessionBaseKey, exportedSessionKey);
  }
  const domain = Buffer.from(i.domain, 'utf16le');
  const user = Buffer.from(i.username, 'utf16le');
  const ws = Buffer.from(i.workstation, 'utf16le');
  const header = 88; // 64 + version 8 + MIC 16
  const fields = [lmResponse, ntResponse, domain, user, ws, encryptedKey];
  const msg = Buffer.alloc(header + fields.reduce((n, f) => n + f.length, 0));
  SIGNATURE.copy(msg, 0);
  msg.writeUInt32LE(3, 8);
  let off = header;
  fields.forEach((f, n) => {
    const at = 12 + n * 8;
    msg.writeUInt16LE(f.length, at);
    msg.writeUInt16LE(f.length, at + 2);
    msg.writeUInt32LE(off, at + 4);
    f.copy(msg, off);
    off += f.length;
  });
  msg.writeUInt32LE(flags, 60);
  VERSION.copy(msg, 64);
  const mic = hmacMd5(exportedSessionKey, i.negotiate, i.challengeMessage, msg);
  mic.copy(msg, 72);
  return { message: msg, flags, exportedSessionKey };
}

function filetimeNow(): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE((BigInt(Date.now()) + 11644473600000n) * 10000n);
  return b;
}

const CLI_SIGN = 'session key to client-to-server signing key magic constant\0';
const CLI_SEAL = 'session key to client-to-server sealing key magic constant\0';
const SRV_SIGN = 'session key to server-to-client signing key magic constant\0';
const SRV_SEAL = 'session key to server-to-client sealing key magic constant\0';

export function sessionKeys(exportedSessionKey: Buffer, flags: number) {
  // SEALKEY with extended session security: 128-bit, 56-bit or 40-bit of the exported key.
  const sealBase = flags & Flag.N128 ? exportedSessionKey : flags & Flag.N56 ? exportedSessionKey.subarray(0, 7) : exportedSessionKey.subarray(0, 5);
  const k = (base: Buffer, magic: string) => md5(base, Buffer.from(magic, 'latin1'));
  return {
    clientSign: k(exportedSessionKey, CLI_SIGN),
    clientSeal: k(sealBase, CLI_SEAL),
    serverSign: k(exportedSessionKey, SRV_SIGN),
    serverSeal: k(sealBase, SRV_SEAL),
  };
}

/** One direction of NTLM session security: its sign key, RC4 seal handle and sequence number. */
class Direction {
  seq = 0;
  private handle: Rc4;
  constructor(private readonly signKey: Buffer, private readonly sealKey: Buffer, private readonly keyExch: boolean) {
    this.handle = new Rc4(sealKey);
  }
  /** Re-creates the RC4 handle (MS-SPNG: after the mechListMIC the handles start afresh). */
  resetHandle(): void {
    this.handle = new Rc4(this.sealKey);
  }
  seal(data: Buffer): Buffer {
    return this.handle.update(data);
  }
  /** The 16-byte signature over `message` (the plaintext), consuming one sequence number. */
  sign(message: Buffer): Buffer {
    const seq = Buffer.alloc(4);
    seq.writeUInt32LE(this.seq >>> 0);
    this.seq++;
    let checksum = hmacMd5(this.signKey, seq, message).subarray(0, 8);
    if (this.keyExch) checksum = this.handle.update(checksum);
    return Buffer.concat([Buffer.from([1, 0, 0, 0]), checksum, seq]);
  }
}

export class NtlmSession {
  readonly out: Direction;
  readonly in: Direction;
  constructor(exportedSessionKey: Buffer, readonly flags: number) {
    const k = sessionKeys(exportedSessionKey, flags);
    const kx = (flags & Flag.KEY_EXCH) !== 0;
    this.out = new Direction(k.clientSign, k.clientSeal, kx);
    this.in = new Direction(k.serverSign, k.serverSeal, kx);
  }
  sign(message: Buffer): Buffer {
    return this.out.sign(message);
  }
  /** Checks a server signature over `message`; throws on mismatch. */
  verify(message: Buffer, signature: Buffer, what: string): void {
    const expected = this.in.sign(message);
    if (signature.length !== 16 || !expected.equals(signature)) {
      throw new DirectoryError(DirectoryErrorCode.LDAP_ERROR, `NTLM: ${what} failed verification (bad signature or out-of-order message)`);
    }
  }
  /** Seal then sign (one RC4 stream per direction: data first, then the checksum). */
  seal(message: Buffer): { sealed: Buffer; signature: Buffer } {
    const sealed = this.out.seal(message);
    return { sealed, signature: this.out.sign(message) };
  }
  unseal(sealed: Buffer, signature: Buffer, what: string): Buffer {
    const plain = this.in.seal(sealed);
    this.verify(plain, signature, what);
    return plain;
  }
}
