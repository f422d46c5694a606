/**
 * The SASL transport against a scripted loopback LDAP server and a toy mechanism (its "security layer" XORs and
 * prefixes a tag), so framing, the saslBindInProgress loop, reassembly of SASL buffers split and merged across TCP
 * reads, the peer's maximum buffer, and the mapping of bind failures are checked without Kerberos or NTLM.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { BerReader, BerWriter } from 'ldapts';
import { DirectoryError, DirectoryErrorCode } from '../errors';
import { openBoundClient } from '../pool';
import { resolveDirectorySettings } from '../settings';
import type { SaslBinder } from './index';
import type { SaslMechanism } from './mechanism';
import { berElementLength } from './transport';

const TAG = Buffer.from('WRAP');
const xor = (b: Buffer): Buffer => Buffer.from(b.map((x) => x ^ 0x5a));
const wrap = (b: Buffer): Buffer => Buffer.concat([TAG, xor(b)]);
const unwrap = (b: Buffer): Buffer => {
  if (!b.subarray(0, 4).equals(TAG)) throw new Error('bad wrap');
  return xor(b.subarray(4));
};

function toyMechanism(seen: { rounds: Buffer[] }, maxOutgoing = 0): SaslMechanism {
  let done = false;
  return {
    name: 'TOY',
    async step(server, ok) {
      if (ok) {
        done = true;
        return undefined;
      }
      seen.rounds.push(server ?? Buffer.alloc(0));
      // Binary credentials, including bytes that are not valid utf8.
      return Buffer.from([0xff, 0x00, 0xfe, seen.rounds.length]);
    },
    securityLayer: () => (done ? { protection: 'seal', maxOutgoing, wrap: async (b) => wrap(b), unwrap: async (b) => unwrap(b) } : null),
  };
}

function result(messageId: number, tag: number, code: number, diag: string, saslCreds?: Buffer): Buffer {
  const w = new BerWriter();
  w.startSequence();
  w.writeInt(messageId);
  w.startSequence(tag);
  w.writeEnumeration(code);
  w.writeString('');
  w.writeString(diag);
  if (saslCreds) {
    // An optional element before serverSaslCreds (a referral [3]) must be skipped, not misread.
    w.startSequence(0xa3);
    w.writeString('ldap://elsewhere.example/');
    w.endSequence();
    w.writeBuffer(saslCreds, 0x87);
  }
  w.endSequence();
  w.endSequence();
  return w.buffer;
}

interface Script { bindCodes: { code: number; diag?: string }[]; credsSeen: Buffer[]; searches: number; largestIncoming: number }

/** A server speaking just enough LDAP: SASL binds by script, then every request answered with a SearchResultDone. */
function ldapServer(script: Script): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((sock) => {
    sockets.push(sock);
    let buf = Buffer.alloc(0);
    let layered = false;
    let round = 0;
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        let pdu: Buffer;
        if (layered) {
          if (buf.length < 4 || buf.length < 4 + buf.readUInt32BE(0)) return;
          const len = buf.readUInt32BE(0);
          script.largestIncoming = Math.max(script.largestIncoming, len);
          pdu = unwrap(buf.subarray(4, 4 + len));
          buf = buf.subarray(4 + len);
          // A PDU may span SASL buffers: keep plaintext until a whole element is there.
          plain = Buffer.concat([plain, pdu]);
          const n = berElementLength(plain);
          if (n === 0) continue;
          pdu = plain.subarray(0, n);
          plain = plain.subarray(n);
        } else {
          const n = berElementLength(buf);
          if (n === 0) return;
          pdu = buf.subarray(0, n);
          buf = buf.subarray(n);
        }
        const r = new BerReader(pdu);
        r.readSequence();
        const id = r.readInt()!;
        const op = r.readSequence()!;
        if (op === 0x60) {
          r.readInt();
          r.readString();
          r.readSequence(0xa3);
          r.readString();
          script.credsSeen.push(r.readString(0x04, true) ?? Buffer.alloc(0));
          const step = script.bindCodes[round++]!;
          sock.write(result(id, 0x61, step.code, step.diag ?? '', step.code === 14 ? Buffer.from([0x80, round]) : undefined));
          if (step.code === 0) layered = true;
        } else if (op === 0x42) {
          sock.end();
          return;
        } else {
          script.searches += 1;
          const answer = wrap(result(id, 0x65, 0, ''));
          const framed = Buffer.concat([Buffer.alloc(4), answer]);
          framed.writeUInt32BE(answer.length, 0);
          // Dribble it out one octet at a time, and glue two copies' worth of framing pressure on the reader.
          for (const b of framed) sock.write(Buffer.from([b]));
        }
      }
    });
    let plain = Buffer.alloc(0);
  });
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res({ server, port: (server.address() as { port: number }).port, sockets })));
}

function settings(port: number) {
  return resolveDirectorySettings({
    server: '127.0.0.1', port, security: 'none', authType: 'ntlm', bindDn: 'TEST\\svc', bindPassword: 'Sekr1t!pw', baseDn: 'DC=test,DC=local',
    saslProtection: 'seal', timeoutMs: 2000, connectTimeoutMs: 2000,
  });
}

describe('SASL transport', () => {
  let srv: { server: Server; port: number; sockets: Socket[] };
  let script: Script;
  afterEach(async () => {
    for (const s of srv.sockets) s.destroy();
    await new Promise((r) => srv.server.close(r));
  });

  test('loops on saslBindInProgress with binary credentials, then runs ldapts over the layer, reassembling split buffers', async () => {
    script = { bindCodes: [{ code: 14 }, { code: 14 }, { code: 0 }], credsSeen: [], searches: 0, largestIncoming: 0 };
    srv = await ldapServer(script);
    const seen = { rounds: [] as Buffer[] };
    const binder: SaslBinder = { describe: 'TOY bind', mechanism: async () => toyMechanism(seen, 64 + 128) };
    const client = await openBoundClient(settings(srv.port), binder);
    try {
      expect(script.credsSeen.map((b) => b.toString('hex'))).toEqual(['ff00fe01', 'ff00fe02', 'ff00fe03']);
      expect(seen.rounds.map((b) => b.toString('hex'))).toEqual(['', '8001', '8002']);
      for (let i = 0; i < 5; i++) await client.search('DC=test,DC=local', { scope: 'base', filter: `(description=${'x'.repeat(300)})` });
      // The root DSE read of openBoundClient, then five searches, each answered through the layer.
      expect(script.searches).toBe(6);
      // The peer said 192 octets at most: a 300+ octet search went out in several SASL buffers.
      expect(script.largestIncoming).toBeLessThanOrEqual(64 + 4);
    } finally {
      await client.unbind();
    }
  });

  test('a refused bind maps to INVALID_CREDENTIALS with AD\'s data code, and nothing is retried', async () => {
    script = { bindCodes: [{ code: 14 }, { code: 49, diag: '80090308: LdapErr: DSID-0C090569, comment: AcceptSecurityContext error, data 52e, v4563' }], credsSeen: [], searches: 0, largestIncoming: 0 };
    srv = await ldapServer(script);
    const binder: SaslBinder = { describe: 'TOY bind', mechanism: async () => toyMechanism({ rounds: [] }) };
    const e = (await openBoundClient(settings(srv.port), binder).catch((x: unknown) => x)) as DirectoryError;
    expect(e).toBeInstanceOf(DirectoryError);
    expect(e.code).toBe(DirectoryErrorCode.INVALID_CREDENTIALS);
    expect(e.details).toMatchObject({ ldapCode: 49, adDataCode: '52e', adReason: 'wrong password' });
    expect(e.message).toMatch(/^TOY bind to ldap:\/\/127\.0\.0\.1:\d+: invalid credentials/);
    expect(script.credsSeen).toHaveLength(2);
  });

  test('strongAuthRequired from the server is STRONG_AUTH_REQUIRED', async () => {
    script = { bindCodes: [{ code: 8, diag: '00002028: LdapErr: DSID-0C090259, comment: The server requires binds to turn on integrity checking' }], credsSeen: [], searches: 0, largestIncoming: 0 };
    srv = await ldapServer(script);
    const binder: SaslBinder = { describe: 'TOY bind', mechanism: async () => toyMechanism({ rounds: [] }) };
    const e = (await openBoundClient(settings(srv.port), binder).catch((x: unknown) => x)) as DirectoryError;
    expect(e.code).toBe(DirectoryErrorCode.STRONG_AUTH_REQUIRED);
  });
});
