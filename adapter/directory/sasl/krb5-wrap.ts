/**
 * GSS krb5 Wrap tokens (RFC 4121 §4.2.6.2) for the initiator, computed here rather than by the `kerberos` addon.
 *
 * Why: the addon's `wrap` (kerberos 7.0.0, src/unix/kerberos_unix.cc) always passes `user.c_str()` — never NULL,
 * "" when no user is given — to `authenticate_gss_client_wrap`, which then takes its "SASL user hack" branch:
 * it throws the message away and wraps a 4-octet "security layer none" reply built from the message's first
 * octets. So no message can be wrapped through it. Its `unwrap` is a plain `gss_unwrap` and works, so
 * incoming tokens still go through the addon; only the client→server direction is done here.
 *
 * The keys: the AP-REQ the addon produced names the service ticket; that ticket's session key is in the
 * principal's ccache (MIT stores service tickets there). With it we decrypt the AP-REQ authenticator (key
 * usage 11: the initiator's subkey and initial sequence number) and the server's AP-REP (usage 12: the
 * acceptor subkey). RFC 4121: with an acceptor subkey, Wrap tokens use it and carry the AcceptorSubkey flag.
 *
 * Crypto: RFC 3961/3962 aes128/aes256-cts-hmac-sha1-96 (n-fold, DK, CBC with ciphertext stealing, HMAC-SHA1-96).
 * RC4-HMAC (RFC 4757) keys are refused with a clear error: AD and Samba use AES unless configured otherwise.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

const AES128 = 17;
const AES256 = 18;
const USAGE_AP_REQ_AUTH = 11;
const USAGE_AP_REP_ENCPART = 12;
const USAGE_INITIATOR_SEAL = 24;
const FLAG_SEALED = 0x02;
const FLAG_ACCEPTOR_SUBKEY = 0x04;

export interface Krb5Key { etype: number; key: Buffer }

// ---- DER (only what AP-REQ / AP-REP / Authenticator need: single-octet tags, definite lengths) ----

interface Tlv { tag: number; off: number; start: number; end: number }

function tlv(buf: Buffer, off: number): Tlv {
  const tag = buf[off]!;
  let len = buf[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('krb5: bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  if (start + len > buf.length) throw new Error('krb5: truncated DER');
  return { tag, off, start, end: start + len };
}

/** The context-tagged fields [n] of a SEQUENCE whose TLV is `seq`, each as its inner element. */
function fields(buf: Buffer, seq: Tlv): Map<number, Tlv> {
  const out = new Map<number, Tlv>();
  for (let off = seq.start; off < seq.end;) {
    const f = tlv(buf, off);
    if ((f.tag & 0xe0) === 0xa0) out.set(f.tag & 0x1f, tlv(buf, f.start));
    off = f.end;
  }
  return out;
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`krb5: ${what} missing`);
  return v;
}

function derInt(buf: Buffer, t: Tlv): number {
  let v = 0;
  const neg = buf[t.start]! & 0x80;
  for (let i = t.start; i < t.end; i++) v = v * 256 + buf[i]!;
  return neg ? v - 2 ** (8 * (t.end - t.start)) : v;
}

/** The body of an RFC 1964 §1.1 initial-context token (0x60, mech OID, 2-octet TOK_ID), with its TOK_ID. */
function innerToken(token: Buffer): { tokId: number; body: Buffer } {
  const outer = tlv(token, 0);
  if (outer.tag !== 0x60) throw new Error('krb5: not a GSS initial context token');
  const oid = tlv(token, outer.start);
  if (oid.tag !== 0x06) throw new Error('krb5: GSS token without a mechanism OID');
  return { tokId: token.readUInt16BE(oid.end), body: token.subarray(oid.end + 2, outer.end) };
}

// ---- RFC 3961 / 3962 ----

/** RFC 3961 §5.1 n-fold. */
export function nfold(input: Buffer, outBytes: number): Buffer {
  const inBytes = input.length;
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const lcm = (inBytes * outBytes) / gcd(inBytes, outBytes);
  const out = new Array<number>(outBytes).fill(0);
  let carry = 0;
  for (let i = lcm - 1; i >= 0; i--) {
    // The bit offset of this byte within the rotated copies of the input (MIT's n-fold, rotation by 13 bits).
    const msbit = (((inBytes << 3) - 1) + (((inBytes << 3) + 13) * Math.floor(i / inBytes)) + ((inBytes - (i % inBytes)) << 3)) % (inBytes << 3);
    const hi = input[((inBytes - 1) - (msbit >>> 3)) % inBytes]!;
    const lo = input[(inBytes - (msbit >>> 3)) % inBytes]!;
    const byte = (((hi << 8) | lo) >>> ((msbit & 7) + 1)) & 0xff;
    carry += byte + out[i % outBytes]!;
    out[i % outBytes] = carry & 0xff;
    carry >>>= 8;
  }
  if (carry) {
    for (let i = outBytes - 1; i >= 0; i--) {
      carry += out[i]!;
      out[i] = carry & 0xff;
      carry >>>= 8;
    }
  }
  return Buffer.from(out);
}

function aesName(key: Buffer, mode: 'cbc' | 'ecb'): string {
  return `aes-${key.length * 8}-${mode}`;
}

function aesBlock(key: Buffer, block: Buffer): Buffer {
  const c = createCipheriv(aesName(key, 'ecb'), key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(block), c.final()]);
}

/** RFC 3961 §5.1 DK(key, constant) for AES (random-to-key is the identity). */
function dk(key: Buffer, constant: Buffer): Buffer {
  const parts: Buffer[] = [];
  let block = nfold(constant, 16);
  let have = 0;
  while (have < key.length) {
    block = aesBlock(key, block);
    parts.push(block);
    have += 16;
  }
  return Buffer.concat(parts).subarray(0, key.length);
}

function usageConstant(usage: number, kind: number): Buffer {
  const b = Buffer.alloc(5);
  b.writeUInt32BE(usage, 0);
  b[4] = kind;
  return b;
}

/** AES-CBC with ciphertext stealing, IV zero (RFC 3962 §5). */
export function ctsEncrypt(key: Buffer, plain: Buffer): Buffer {
  if (plain.length < 16) throw new Error('krb5: CTS input shorter than one block');
  const padded = Buffer.concat([plain, Buffer.alloc((16 - (plain.length % 16)) % 16)]);
  const c = createCipheriv(aesName(key, 'cbc'), key, Buffer.alloc(16));
  c.setAutoPadding(false);
  const cbc = Buffer.concat([c.update(padded), c.final()]);
  if (cbc.length === 16) return cbc;
  const n = cbc.length / 16;
  const r = plain.length - 16 * (n - 1);
  return Buffer.concat([cbc.subarray(0, 16 * (n - 2)), cbc.subarray(16 * (n - 1)), cbc.subarray(16 * (n - 2), 16 * (n - 2) + r)]);
}

export function ctsDecrypt(key: Buffer, cipher: Buffer): Buffer {
  if (cipher.length < 16) throw new Error('krb5: CTS input shorter than one block');
  const cbcDecrypt = (b: Buffer): Buffer => {
    const d = createDecipheriv(aesName(key, 'cbc'), key, Buffer.alloc(16));
    d.setAutoPadding(false);
    return Buffer.concat([d.update(b), d.final()]);
  };
  if (cipher.length === 16) return cbcDecrypt(cipher);
  const n = Math.ceil(cipher.length / 16);
  const r = cipher.length - 16 * (n - 1);
  const head = cipher.subarray(0, 16 * (n - 2));
  const x = cipher.subarray(16 * (n - 2), 16 * (n - 1)); // the last CBC block, moved forward
  const y = cipher.subarray(16 * (n - 1)); // the first r octets of the second-to-last CBC block
  const d = (() => {
    const e = createDecipheriv(aesName(key, 'ecb'), key, null);
    e.setAutoPadding(false);
    return Buffer.concat([e.update(x), e.final()]);
  })();
  const prev = Buffer.concat([y, d.subarray(r)]);
  return cbcDecrypt(Buffer.concat([head, prev, x])).subarray(0, cipher.length);
}

function checkEtype(k: Krb5Key): void {
  if (k.etype !== AES128 && k.etype !== AES256) {
    throw new Error(`krb5: encryption type ${k.etype} is not supported for the SASL security layer (only aes128/aes256-cts-hmac-sha1-96)`);
  }
}

/** RFC 3961 simplified-profile encrypt: confounder, CTS, HMAC-SHA1-96 over confounder|plaintext. */
function encrypt(k: Krb5Key, usage: number, plain: Buffer): Buffer {
  checkEtype(k);
  const ke = dk(k.key, usageConstant(usage, 0xaa));
  const ki = dk(k.key, usageConstant(usage, 0x55));
  const data = Buffer.concat([randomBytes(16), plain]);
  const mac = createHmac('sha1', ki).update(data).digest().subarray(0, 12);
  return Buffer.concat([ctsEncrypt(ke, data), mac]);
}

function decrypt(k: Krb5Key, usage: number, cipher: Buffer): Buffer {
  checkEtype(k);
  const ke = dk(k.key, usageConstant(usage, 0xaa));
  const ki = dk(k.key, usageConstant(usage, 0x55));
  const body = cipher.subarray(0, cipher.length - 12);
  const data = ctsDecrypt(ke, body);
  const mac = createHmac('sha1', ki).update(data).digest().subarray(0, 12);
  if (!mac.equals(cipher.subarray(cipher.length - 12))) throw new Error('krb5: integrity check failed decrypting with the session key');
  return data.subarray(16);
}

function checksum(k: Krb5Key, usage: number, data: Buffer): Buffer {
  checkEtype(k);
  const kc = dk(k.key, usageConstant(usage, 0x99));
  return createHmac('sha1', kc).update(data).digest().subarray(0, 12);
}

// ---- ccache (MIT FILE format version 4: 0x0504) ----

/** The session key of the credential in `ccacheFile` whose ticket is exactly `ticketDer`. */
export function sessionKeyFor(ccacheFile: string, ticketDer: Buffer): Krb5Key {
  const b = readFileSync(ccacheFile);
  let o = 0;
  const u8 = (): number => b[o++]!;
  const u16 = (): number => { const v = b.readUInt16BE(o); o += 2; return v; };
  const u32 = (): number => { const v = b.readUInt32BE(o); o += 4; return v; };
  const data = (): Buffer => { const n = u32(); const v = b.subarray(o, o + n); o += n; return v; };
  const principal = (): void => { u32(); const n = u32(); data(); for (let i = 0; i < n; i++) data(); };
  if (u16() !== 0x0504) throw new Error('krb5: ccache is not MIT format 0x0504');
  const headerLength = u16();
  o += headerLength; // header tags
  principal(); // default principal
  while (o < b.length) {
    principal(); // client
    principal(); // server
    const etype = u16();
    const key = data();
    o += 16 + 1 + 4; // authtime, starttime, endtime, renew_till; is_skey; ticket_flags
    const addrs = u32();
    for (let i = 0; i < addrs; i++) { u16(); data(); }
    const ad = u32();
    for (let i = 0; i < ad; i++) { u16(); data(); }
    const ticket = data();
    data(); // second ticket
    if (ticket.equals(ticketDer)) return { etype, key: Buffer.from(key) };
  }
  throw new Error('krb5: the service ticket used for the bind is not in the credential cache');
}

// ---- the initiator's wrap state ----

export interface Krb5InitiatorState {
  /** The key Wrap tokens use (the acceptor subkey when the server sent one, else the initiator subkey). */
  key: Krb5Key;
  acceptorSubkey: boolean;
  /** The next SND_SEQ. */
  seq: bigint;
}

/**
 * Derives the wrap state from the exchange: the first token the client sent (AP-REQ), the server's AP-REP
 * token, and the ccache holding the service ticket.
 */
export function initiatorState(apReqToken: Buffer, apRepToken: Buffer | undefined, ccacheFile: string): Krb5InitiatorState {
  const req = innerToken(apReqToken);
  if (req.tokId !== 0x0100) throw new Error('krb5: first token is not an AP-REQ');
  const reqTlv = tlv(req.body, 0);
  const reqSeq = tlv(req.body, reqTlv.start);
  const rf = fields(req.body, reqSeq);
  const ticketT = need(rf.get(3), 'AP-REQ ticket');
  const ticketDer = req.body.subarray(ticketT.off, ticketT.end);
  const session = sessionKeyFor(ccacheFile, ticketDer);
  const authEnc = encryptedData(req.body, need(rf.get(4), 'AP-REQ authenticator'));
  const auth = decrypt(session, USAGE_AP_REQ_AUTH, authEnc);
  const authApp = tlv(auth, 0);
  const af = fields(auth, tlv(auth, authApp.start));
  const initiatorSubkey = af.get(6) ? encryptionKey(auth, af.get(6)!) : session;
  const seqT = af.get(7);
  const seq = seqT ? BigInt(derInt(auth, seqT) >>> 0) : 0n;
  let key = initiatorSubkey;
  let acceptorSubkey = false;
  if (apRepToken && apRepToken.length) {
    const rep = innerToken(apRepToken);
    if (rep.tokId !== 0x0200) throw new Error('krb5: the server\'s token is not an AP-REP');
    const repApp = tlv(rep.body, 0);
    const pf = fields(rep.body, tlv(rep.body, repApp.start));
    const enc = decrypt(session, USAGE_AP_REP_ENCPART, encryptedData(rep.body, need(pf.get(2), 'AP-REP enc-part')));
    const encApp = tlv(enc, 0);
    const ef = fields(enc, tlv(enc, encApp.start));
    if (ef.get(2)) {
      key = encryptionKey(enc, ef.get(2)!);
      acceptorSubkey = true;
    }
  }
  checkEtype(key);
  return { key, acceptorSubkey, seq };
}

function encryptedData(buf: Buffer, seq: Tlv): Buffer {
  const f = fields(buf, seq);
  const cipher = need(f.get(2), 'EncryptedData cipher');
  return buf.subarray(cipher.start, cipher.end);
}

function encryptionKey(buf: Buffer, seq: Tlv): Krb5Key {
  const f = fields(buf, seq);
  return { etype: derInt(buf, need(f.get(0), 'keytype')), key: Buffer.from(buf.subarray(need(f.get(1), 'keyvalue').start, f.get(1)!.end)) };
}

/** One RFC 4121 Wrap token from the initiator; advances `st.seq`. RRC is 0 (the acceptor must accept any). */
export function wrapToken(st: Krb5InitiatorState, plain: Buffer, seal: boolean): Buffer {
  const header = Buffer.alloc(16);
  header[0] = 0x05;
  header[1] = 0x04;
  header[2] = (seal ? FLAG_SEALED : 0) | (st.acceptorSubkey ? FLAG_ACCEPTOR_SUBKEY : 0);
  header[3] = 0xff;
  header.writeBigUInt64BE(st.seq, 8);
  st.seq += 1n;
  if (seal) {
    // EC = 0 filler octets (AES-CTS needs no padding); header copy inside the encryption, RRC 0.
    return Buffer.concat([header, encrypt(st.key, USAGE_INITIATOR_SEAL, Buffer.concat([plain, header]))]);
  }
  // Integrity only: checksum over plaintext | header with EC and RRC zero; then EC = checksum length. Wrap
  // tokens use the SEAL usage (24) with or without confidentiality (RFC 4121 §2; measured against MIT's gss_wrap:
  // usage 25, INITIATOR_SIGN, is for MIC tokens only).
  const mac = checksum(st.key, USAGE_INITIATOR_SEAL, Buffer.concat([plain, header]));
  header.writeUInt16BE(mac.length, 4);
  return Buffer.concat([header, plain, mac]);
}
