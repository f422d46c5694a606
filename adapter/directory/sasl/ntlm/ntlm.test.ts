import { md4, rc4 } from './crypto';
import { clientBlob, Flag, ntlmv2, ntowfv2, NtlmSession, parseAvPairs, parseChallenge, buildAuthenticate, buildNegotiate, negotiateFlags, sessionKeys } from './ntlmssp';
import { decodeNegTokenInit, decodeNegTokenResp, encodeNegTokenInit, encodeNegTokenResp, mechTypeList, NTLMSSP_OID, tlv } from './spnego';
import { createNtlmMechanism } from './index';
import { hmacMd5 } from './crypto';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// MS-NLMP 4.2.4 (NTLMv2 authentication) published values.
const V = {
  user: 'User', domain: 'Domain', password: 'Password',
  serverChallenge: hex('0123456789abcdef'), clientChallenge: hex('aaaaaaaaaaaaaaaa'), time: Buffer.alloc(8),
  randomSessionKey: Buffer.alloc(16, 0x55),
  targetInfo: hex('02000c0044006f006d00610069006e0001000c005300650072007600650072000000 0000'),
};

describe('NTLM crypto primitives', () => {
  it('MD4 matches RFC 1320 test suite', () => {
    expect(md4(Buffer.from('')).toString('hex')).toBe('31d6cfe0d16ae931b73c59d7e0c089c0');
    expect(md4(Buffer.from('abc')).toString('hex')).toBe('a448017aaf21d8525fc10ae87aa6729d');
    expect(md4(Buffer.from('12345678901234567890123456789012345678901234567890123456789012345678901234567890')).toString('hex'))
      .toBe('e33b4ddc9c38f2199c3e7b164fcc0536');
  });
  it('RC4 matches a known vector', () => {
    expect(rc4(Buffer.from('Key'), Buffer.from('Plaintext')).toString('hex')).toBe('bbf316e8d940af0ad3');
  });
});

describe('MS-NLMP 4.2.4 NTLMv2 test vectors', () => {
  const key = ntowfv2(V.password, V.user, V.domain);
  const blob = clientBlob(V.time, V.clientChallenge, V.targetInfo);
  const { ntProofStr, sessionBaseKey } = ntlmv2(key, V.serverChallenge, blob);

  it('NTOWFv2, NTProofStr and SessionBaseKey', () => {
    expect(key.toString('hex')).toBe('0c868a403bfd7a93a3001ef22ef02e3f');
    expect(ntProofStr.toString('hex')).toBe('68cd0ab851e51c96aabc927bebef6a1c');
    expect(sessionBaseKey.toString('hex')).toBe('8de40ccadbc14a82f15cb0ad0de95ca3');
  });
  it('LMv2 response and encrypted session key', () => {
    expect(hmacMd5(key, V.serverChallenge, V.clientChallenge).toString('hex')).toBe('86c35097ac9cec102554764a57cccc19');
    expect(rc4(sessionBaseKey, V.randomSessionKey).toString('hex')).toBe('c5dad2544fc9799094ce1ce90bc9d03e');
  });
  it('seals "Plaintext" into the published data and signature', () => {
    const flags = Flag.KEY_EXCH | Flag.N128 | Flag.EXTENDED_SESSIONSECURITY | Flag.SIGN | Flag.SEAL;
    const s = new NtlmSession(V.randomSessionKey, flags);
    const { sealed, signature } = s.seal(Buffer.from('Plaintext', 'utf16le'));
    expect(sealed.toString('hex')).toBe('54e50165bf1936dc996020c1811b0f06fb5f');
    expect(signature.toString('hex')).toBe('010000007fb38ec5c55d497600000000');
  });
  it('parses the target info pairs', () => {
    const p = parseAvPairs(V.targetInfo);
    expect(p.get(2)?.toString('utf16le')).toBe('Domain');
    expect(p.get(1)?.toString('utf16le')).toBe('Server');
  });
});

/** A test-side NTLM server: builds a CHALLENGE, checks the AUTHENTICATE like a DC would. */
function fakeChallenge(flags: number, withTimestamp = true): Buffer {
  const pairs: Buffer[] = [];
  const av = (id: number, v: Buffer) => { const h = Buffer.alloc(4); h.writeUInt16LE(id); h.writeUInt16LE(v.length, 2); pairs.push(h, v); };
  av(2, Buffer.from('TEST', 'utf16le'));
  av(3, Buffer.from('dc1.test.local', 'utf16le'));
  if (withTimestamp) av(7, hex('0090d336b734c301'));
  pairs.push(Buffer.alloc(4));
  const ti = Buffer.concat(pairs);
  const m = Buffer.alloc(56 + ti.length);
  m.write('NTLMSSP\0', 0, 'latin1');
  m.writeUInt32LE(2, 8);
  m.writeUInt32LE(flags >>> 0, 20);
  hex('0123456789abcdef').copy(m, 24);
  m.writeUInt16LE(ti.length, 40); m.writeUInt16LE(ti.length, 42); m.writeUInt32LE(56, 44);
  ti.copy(m, 56);
  return m;
}

function field(msg: Buffer, n: number): Buffer {
  const at = 12 + n * 8;
  return msg.subarray(msg.readUInt32LE(at + 4), msg.readUInt32LE(at + 4) + msg.readUInt16LE(at));
}

/** Verifies an AUTHENTICATE message as the server would and returns the exported session key. */
function serverAccept(negotiate: Buffer, challenge: Buffer, auth: Buffer, password: string): Buffer {
  const user = field(auth, 3).toString('utf16le');
  const domain = field(auth, 2).toString('utf16le');
  const key = ntowfv2(password, user, domain);
  const nt = field(auth, 1);
  const { ntProofStr, sessionBaseKey } = ntlmv2(key, hex('0123456789abcdef'), nt.subarray(16));
  if (!ntProofStr.equals(nt.subarray(0, 16))) throw new Error('bad NTProofStr');
  const esk = rc4(sessionBaseKey, field(auth, 5));
  const zeroed = Buffer.from(auth); zeroed.fill(0, 72, 88);
  if (!hmacMd5(esk, negotiate, challenge, zeroed).equals(auth.subarray(72, 88))) throw new Error('bad MIC');
  return esk;
}

describe('SPNEGO encoding', () => {
  it('NegTokenInit round-trips and lists only NTLMSSP', () => {
    const neg = buildNegotiate(negotiateFlags('seal'));
    const d = decodeNegTokenInit(encodeNegTokenInit(neg));
    expect(d.mechTypes.equals(mechTypeList())).toBe(true);
    expect(d.mechToken?.equals(neg)).toBe(true);
  });
  it('NegTokenResp round-trips, long lengths included', () => {
    const big = Buffer.alloc(300, 7);
    const r = decodeNegTokenResp(encodeNegTokenResp({ negState: 1, responseToken: big, mechListMIC: Buffer.alloc(16, 1) }));
    expect(r.negState).toBe(1);
    expect(r.responseToken?.equals(big)).toBe(true);
    expect(r.mechListMIC?.equals(Buffer.alloc(16, 1))).toBe(true);
  });
  it('decodes supportedMech and refuses a server that picks another mechanism', async () => {
    expect(decodeNegTokenResp(encodeNegTokenResp({ negState: 1, supportedMech: NTLMSSP_OID })).supportedMech?.equals(NTLMSSP_OID)).toBe(true);
    const mech = createNtlmMechanism({ domain: 'D', username: 'u', password: 'p', protection: 'seal' });
    await mech.step(undefined, false);
    const krb5 = tlv(0x06, Buffer.from([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02]));
    await expect(mech.step(encodeNegTokenResp({ negState: 1, supportedMech: krb5, responseToken: Buffer.alloc(60) }), false)).rejects.toThrow(/other than NTLMSSP/);
  });
  it('rejects garbage and truncated tokens', () => {
    expect(() => decodeNegTokenResp(Buffer.from([0x30, 0x00]))).toThrow(/malformed server token/);
    expect(() => decodeNegTokenResp(Buffer.from([0xa1, 0x10, 0x30]))).toThrow(/malformed/);
    expect(() => parseChallenge(Buffer.alloc(60))).toThrow(/CHALLENGE/);
  });
});

describe('createNtlmMechanism against a simulated server', () => {
  const serverFlags = (negotiateFlags('seal') | Flag.TARGET_INFO) >>> 0;

  async function handshake(protection: 'sign' | 'seal' | 'none', opts: { tamperMic?: boolean; chFlags?: number } = {}) {
    const mech = createNtlmMechanism({ domain: 'TEST', username: 'svc', password: 'Secret-pw1', protection });
    expect(mech.name).toBe('GSS-SPNEGO');
    const init = (await mech.step(undefined, false))!;
    const negotiate = decodeNegTokenInit(init).mechToken!;
    const challenge = fakeChallenge(opts.chFlags ?? serverFlags);
    const cResp = encodeNegTokenResp({ negState: 1, supportedMech: NTLMSSP_OID, responseToken: challenge });
    const out = decodeNegTokenResp((await mech.step(cResp, false))!);
    const esk = serverAccept(negotiate, challenge, out.responseToken!, 'Secret-pw1');
    const flags = (negotiateFlags(protection) & (opts.chFlags ?? serverFlags)) >>> 0;
    const server = new NtlmSession(esk, flags);
    // the server's view: its "in" is the client's out. Swap directions for the simulation.
    const srv = { out: server.in, in: server.out };
    const expectMic = srv.in.sign(mechTypeList());
    expect(out.mechListMIC?.equals(expectMic)).toBe(true);
    srv.in.resetHandle();
    let mic = srv.out.sign(mechTypeList());
    srv.out.resetHandle();
    if (opts.tamperMic) mic = Buffer.from(mic.map((b, i) => (i === 5 ? b ^ 1 : b)));
    await mech.step(encodeNegTokenResp({ negState: 0, mechListMIC: mic }), true);
    return { mech, srv };
  }

  it('seals in both directions and rejects a tampered signature', async () => {
    const { mech, srv } = await handshake('seal');
    const layer = mech.securityLayer()!;
    expect(layer.protection).toBe('seal');
    const pdu = Buffer.from('30 0c 02 01 02 63 07 distinctive-value');
    const w = await layer.wrap(pdu);
    expect(w.includes(Buffer.from('distinctive'))).toBe(false);
    const plain = srv.in.seal(w.subarray(16));
    expect(plain.equals(pdu)).toBe(true);
    expect(srv.in.sign(plain).equals(w.subarray(0, 16))).toBe(true);
    // server -> client
    const reply = Buffer.from('reply one');
    const sealed = srv.out.seal(reply);
    const sig = srv.out.sign(reply);
    expect((await layer.unwrap(Buffer.concat([sig, sealed]))).equals(reply)).toBe(true);
    const r2 = Buffer.from('reply two');
    const s2 = srv.out.seal(r2);
    const sig2 = Buffer.from(srv.out.sign(r2)); sig2[6]! ^= 0xff;
    await expect(layer.unwrap(Buffer.concat([sig2, s2]))).rejects.toThrow(/failed verification/);
  });

  it('sign negotiates SIGN without SEAL but wraps LDAP-style (sealed), and rejects a replay', async () => {
    const { mech, srv } = await handshake('sign');
    const layer = mech.securityLayer()!;
    expect(layer.protection).toBe('sign');
    const w = await layer.wrap(Buffer.from('hello'));
    expect(w.subarray(16).toString()).not.toBe('hello');
    const plain = srv.in.seal(w.subarray(16));
    expect(plain.toString()).toBe('hello');
    expect(srv.in.sign(plain).equals(w.subarray(0, 16))).toBe(true);
    const back = srv.out.seal(Buffer.from('back'));
    const sig = srv.out.sign(Buffer.from('back'));
    expect((await layer.unwrap(Buffer.concat([sig, back]))).toString()).toBe('back');
    await expect(layer.unwrap(Buffer.concat([sig, back]))).rejects.toThrow(/failed verification/); // replay
  });

  it('protection none installs no layer', async () => {
    const { mech } = await handshake('none');
    expect(mech.securityLayer()).toBeNull();
  });

  it('refuses a success before the AUTHENTICATE was sent', async () => {
    const mech = createNtlmMechanism({ domain: 'D', username: 'u', password: 'p', protection: 'seal' });
    await mech.step(undefined, false);
    await expect(mech.step(undefined, true)).rejects.toThrow(/before the client authenticated/);
    expect(mech.securityLayer()).toBeNull();
  });

  it('rejects a bad server mechListMIC', async () => {
    await expect(handshake('seal', { tamperMic: true })).rejects.toThrow(/mechListMIC failed verification/);
  });

  it('refuses a server without sealing when seal is required, without leaking the password', async () => {
    const err = await handshake('seal', { chFlags: (serverFlags & ~Flag.SEAL) >>> 0 }).catch((e: Error) => e);
    expect(String((err as Error).message)).toMatch(/does not offer NTLM sealing/);
    expect(JSON.stringify(err) + (err as Error).message).not.toContain('Secret-pw1');
  });

  it('uses a zero LMv2 response when the challenge has a timestamp, and NTLMv2 with MsvAvFlags', () => {
    const neg = buildNegotiate(negotiateFlags('sign'));
    const ch = fakeChallenge(serverFlags);
    const a = buildAuthenticate({ negotiate: neg, challengeMessage: ch, challenge: parseChallenge(ch), clientFlags: negotiateFlags('sign'), domain: 'TEST', username: 'u', password: 'p', workstation: 'WS' });
    expect(field(a.message, 0).equals(Buffer.alloc(24))).toBe(true);
    const blob = field(a.message, 1).subarray(16);
    const pairs = parseAvPairs(blob.subarray(28));
    expect(pairs.get(6)?.readUInt32LE(0)).toBe(2);
    expect(pairs.get(7)?.equals(hex('0090d336b734c301'))).toBe(true);
    expect(blob.subarray(8, 16).equals(hex('0090d336b734c301'))).toBe(true);
    expect(a.flags & Flag.SEAL).toBe(0);
    void sessionKeys;
  });
});
