/**
 * The SPNEGO (RFC 4178, MS-SPNG) tokens of a GSS-SPNEGO bind carrying NTLMSSP: the client's NegTokenInit (in
 * GSS-API framing), the server's NegTokenResp, and the client's NegTokenResp with the AUTHENTICATE and mechListMIC.
 */
import { malformed } from './ntlmssp';

const SPNEGO_OID = Buffer.from([0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02]);
/** 1.3.6.1.4.1.311.2.2.10 (NTLMSSP). */
export const NTLMSSP_OID = Buffer.from([0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a]);

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

/** The DER of MechTypeList (what the mechListMIC covers). */
export function mechTypeList(): Buffer {
  return tlv(0x30, NTLMSSP_OID);
}

export function encodeNegTokenInit(mechToken: Buffer): Buffer {
  return tlv(0x60, SPNEGO_OID, tlv(0xa0, tlv(0x30, tlv(0xa0, mechTypeList()), tlv(0xa2, tlv(0x04, mechToken)))));
}

export function encodeNegTokenResp(r: { negState?: number; supportedMech?: Buffer; responseToken?: Buffer; mechListMIC?: Buffer }): Buffer {
  const parts: Buffer[] = [];
  if (r.negState !== undefined) parts.push(tlv(0xa0, tlv(0x0a, Buffer.from([r.negState]))));
  if (r.supportedMech) parts.push(tlv(0xa1, r.supportedMech));
  if (r.responseToken) parts.push(tlv(0xa2, tlv(0x04, r.responseToken)));
  if (r.mechListMIC) parts.push(tlv(0xa3, tlv(0x04, r.mechListMIC)));
  return tlv(0xa1, tlv(0x30, ...parts));
}

interface Tlv { tag: number; value: Buffer; next: number }

function readTlv(buf: Buffer, off: number): Tlv {
  if (off + 2 > buf.length) throw malformed('SPNEGO token is truncated');
  const tag = buf[off]!;
  let l = buf[off + 1]!;
  let p = off + 2;
  if (l & 0x80) {
    const n = l & 0x7f;
    if (n === 0 || n > 4 || p + n > buf.length) throw malformed('SPNEGO token has a bad length');
    l = 0;
    for (let k = 0; k < n; k++) l = l * 256 + buf[p + k]!;
    p += n;
  }
  if (p + l > buf.length) throw malformed('SPNEGO token overruns');
  return { tag, value: buf.subarray(p, p + l), next: p + l };
}

function children(buf: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let off = 0; off < buf.length;) {
    const t = readTlv(buf, off);
    out.push(t);
    off = t.next;
  }
  return out;
}

export interface NegTokenResp { negState?: number; supportedMech?: Buffer; responseToken?: Buffer; mechListMIC?: Buffer }

export function decodeNegTokenResp(token: Buffer): NegTokenResp {
  const outer = readTlv(token, 0);
  if (outer.tag !== 0xa1) throw malformed(`expected a SPNEGO NegTokenResp, got tag 0x${outer.tag.toString(16)}`);
  const seq = readTlv(outer.value, 0);
  if (seq.tag !== 0x30) throw malformed('NegTokenResp is not a SEQUENCE');
  const r: NegTokenResp = {};
  for (const f of children(seq.value)) {
    const inner = readTlv(f.value, 0);
    switch (f.tag) {
      case 0xa0:
        if (inner.tag !== 0x0a || inner.value.length !== 1) throw malformed('bad negState');
        r.negState = inner.value[0]!;
        break;
      case 0xa1:
        if (inner.tag !== 0x06) throw malformed('bad supportedMech');
        r.supportedMech = f.value.subarray(0, inner.next);
        break;
      case 0xa2:
        if (inner.tag !== 0x04) throw malformed('bad responseToken');
        r.responseToken = inner.value;
        break;
      case 0xa3:
        if (inner.tag !== 0x04) throw malformed('bad mechListMIC');
        r.mechListMIC = inner.value;
        break;
      default:
        throw malformed(`unknown NegTokenResp field 0x${f.tag.toString(16)}`);
    }
  }
  return r;
}

/** For tests: decodes the client's NegTokenInit into its mech list DER and mechToken. */
export function decodeNegTokenInit(token: Buffer): { mechTypes: Buffer; mechToken?: Buffer } {
  const app = readTlv(token, 0);
  if (app.tag !== 0x60) throw malformed('not a GSS-API InitialContextToken');
  const oid = readTlv(app.value, 0);
  if (!app.value.subarray(0, oid.next).equals(SPNEGO_OID)) throw malformed('not SPNEGO');
  const init = readTlv(app.value, oid.next);
  const seq = readTlv(init.value, 0);
  const out: { mechTypes: Buffer; mechToken?: Buffer } = { mechTypes: Buffer.alloc(0) };
  for (const f of children(seq.value)) {
    if (f.tag === 0xa0) out.mechTypes = f.value;
    if (f.tag === 0xa2) out.mechToken = readTlv(f.value, 0).value;
  }
  return out;
}

export const NegState = { acceptCompleted: 0, acceptIncomplete: 1, reject: 2, requestMic: 3 } as const;
