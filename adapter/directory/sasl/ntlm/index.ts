/**
 * GSS-SPNEGO carrying NTLMSSP (MS-NLMP, MS-SPNG, RFC 4178) as the client side of an LDAP SASL bind, with
 * NTLMv2 only, the AUTHENTICATE MIC, the SPNEGO mechListMIC in both directions, and the NTLM security layer
 * Samba and Windows lay out as `signature(16) || sealed data` in each SASL buffer. On LDAP, NTLM "sign"
 * seals too (see securityLayer), as Windows and Samba do.
 *
 * Nothing secret (password, hashes, keys, tokens) ever goes into an error message.
 */
import { DirectoryError, DirectoryErrorCode } from '../../errors';
import type { SaslMechanism, SaslSecurityLayer } from '../mechanism';
import { buildAuthenticate, buildNegotiate, Flag, malformed, negotiateFlags, NtlmSession, parseChallenge } from './ntlmssp';
import { decodeNegTokenResp, encodeNegTokenInit, encodeNegTokenResp, mechTypeList, NegState, NTLMSSP_OID } from './spnego';

export interface NtlmMechanismOptions {
  domain: string;
  username: string;
  password: string;
  workstation?: string;
  protection: 'sign' | 'seal' | 'none';
  /** Test hooks: fixed randomness. */
  random?: { clientChallenge: Buffer; exportedSessionKey: Buffer };
}

export function createNtlmMechanism(options: NtlmMechanismOptions): SaslMechanism {
  const clientFlags = negotiateFlags(options.protection);
  const negotiate = buildNegotiate(clientFlags);
  let state: 'start' | 'challenge' | 'final' | 'done' = 'start';
  let session: NtlmSession | undefined;

  const fail = (msg: string) => new DirectoryError(DirectoryErrorCode.LDAP_ERROR, `NTLM bind: ${msg}`);

  const verifyServerMic = (mic: Buffer) => {
    session!.verify(mechTypeList(), mic, "the server's SPNEGO mechListMIC");
    session!.in.resetHandle();
  };

  return {
    name: 'GSS-SPNEGO',
    async step(serverCredentials, done) {
      if (state === 'start') {
        if (done) throw fail('the server reported success before any exchange');
        state = 'challenge';
        return encodeNegTokenInit(negotiate);
      }
      if (state === 'challenge') {
        if (done) throw fail('the server reported success before the client authenticated');
        if (!serverCredentials || serverCredentials.length === 0) throw malformed('no SPNEGO answer to the NegTokenInit');
        const resp = decodeNegTokenResp(serverCredentials);
        if (resp.negState === NegState.reject) throw fail('the server rejected the NTLMSSP mechanism');
        if (resp.supportedMech && !resp.supportedMech.equals(NTLMSSP_OID)) throw malformed('the server chose a mechanism other than NTLMSSP');
        if (!resp.responseToken) throw malformed('the NegTokenResp carries no CHALLENGE');
        const challenge = parseChallenge(resp.responseToken);
        if (options.protection !== 'none') {
          if (!(challenge.flags & Flag.SIGN)) throw fail(`the server does not offer NTLM signing, which protection "${options.protection}" requires`);
          if (options.protection === 'seal' && !(challenge.flags & Flag.SEAL)) throw fail('the server does not offer NTLM sealing, which protection "seal" requires');
        }
        if (!(challenge.flags & Flag.EXTENDED_SESSIONSECURITY)) throw fail('the server does not offer NTLM extended session security');
        if (!(challenge.flags & Flag.UNICODE)) throw fail('the server does not offer Unicode NTLM');
        const auth = buildAuthenticate({
          negotiate, challengeMessage: resp.responseToken, challenge, clientFlags,
          domain: options.domain, username: options.username, password: options.password, workstation: options.workstation ?? '',
          ...(options.random ? { clientChallenge: options.random.clientChallenge, exportedSessionKey: options.random.exportedSessionKey } : {}),
        });
        session = new NtlmSession(auth.exportedSessionKey, auth.flags);
        const mic = session.sign(mechTypeList());
        session.out.resetHandle();
        state = 'final';
        return encodeNegTokenResp({ responseToken: auth.message, mechListMIC: mic });
      }
      if (state === 'final') {
        if (!done) {
          // A server may answer with a NegTokenResp still incomplete only to carry its mechListMIC.
          throw fail('the server asked for another round after the AUTHENTICATE message');
        }
        state = 'done';
        if (serverCredentials && serverCredentials.length > 0) {
          const resp = decodeNegTokenResp(serverCredentials);
          if (resp.negState !== undefined && resp.negState !== NegState.acceptCompleted) throw fail(`the server ended with SPNEGO state ${resp.negState}`);
          if (resp.mechListMIC) verifyServerMic(resp.mechListMIC);
        }
        return undefined;
      }
      throw fail('step called after the exchange finished');
    },
    securityLayer(): SaslSecurityLayer | null {
      if (state !== 'done' || !session || options.protection === 'none') return null;
      const s = session;
      // LDAP style (Samba's GENSEC_FEATURE_LDAP_STYLE, Windows' LDAP): when only NTLMSSP_NEGOTIATE_SIGN was
      // negotiated, the SASL buffers are still sealed. A signed-only buffer makes Samba drop the connection.
      // So `sign` differs from `seal` only in the negotiated flags; the wire is RC4-sealed either way.
      const seal = true;
      return {
        protection: options.protection,
        maxOutgoing: 0,
        async wrap(plain) {
          if (seal) {
            const { sealed, signature } = s.seal(plain);
            return Buffer.concat([signature, sealed]);
          }
          return Buffer.concat([s.sign(plain), plain]);
        },
        async unwrap(wrapped) {
          if (wrapped.length < 16) throw malformed('a SASL buffer shorter than an NTLM signature');
          const sig = wrapped.subarray(0, 16);
          const data = wrapped.subarray(16);
          if (seal) return s.unseal(data, sig, 'an incoming sealed LDAP message');
          s.verify(data, sig, 'an incoming signed LDAP message');
          return Buffer.from(data);
        },
      };
    },
  };
}
