/**
 * SASL GSSAPI (RFC 4752) with Kerberos V5, over adapter/kerberos (tickets in its ccache collection, GSS contexts
 * through the `kerberos` addon). The exchange:
 *
 * 1. GSS init_sec_context for `ldap@<dc host>` until the context is complete (AP-REQ, then the server's AP-REP
 *    for mutual authentication); an empty response once the client has nothing more to send;
 * 2. the server's wrapped 4 octets: the security layers it offers (bitmask: 1 none, 2 integrity, 4
 *    confidentiality) and its largest buffer; we answer with the wrapped choice, our largest buffer and an
 *    empty authorization identity;
 * 3. afterwards, every PDU is GSS-wrapped, with confidentiality when the layer is `seal`.
 *
 * `none` is only allowed over TLS (the caller decides); on plain LDAP an unprotected session would carry every
 * query and answer in clear, and AD ("ldap server require strong auth") refuses it anyway.
 */
import type { GssClientContext } from '../../kerberos/gss';
import { DirectoryError, DirectoryErrorCode } from '../errors';
import type { SaslMechanism, SaslSecurityLayer } from './mechanism';
import { initiatorState, wrapToken, type Krb5InitiatorState } from './krb5-wrap';
import { MAX_SASL_BUFFER } from './transport';

const LAYER_NONE = 1;
const LAYER_INTEGRITY = 2;
const LAYER_CONFIDENTIALITY = 4;

export interface GssapiMechanismOptions {
  /** Creates the GSS krb5 initiator context (e.g. `credentials.initClient(service, {mechanism: 'krb5', ...})`). */
  context: () => Promise<GssClientContext>;
  /** `seal` (confidentiality), `sign` (integrity only), or `none` (only over TLS). */
  protection: 'seal' | 'sign' | 'none';
  /** For messages: "GSSAPI bind as svc@CORP to ldap/dc1.corp". */
  what: string;
  /** The FILE ccache holding the principal's tickets (for the session key; see krb5-wrap.ts). */
  ccacheFile: () => string;
}

function layerNames(mask: number): string {
  const n: string[] = [];
  if (mask & LAYER_NONE) n.push('none');
  if (mask & LAYER_INTEGRITY) n.push('sign');
  if (mask & LAYER_CONFIDENTIALITY) n.push('seal');
  return n.length ? n.join(', ') : 'nothing';
}

export function createGssapiMechanism(o: GssapiMechanismOptions): SaslMechanism {
  let ctx: GssClientContext | undefined;
  let phase: 'start' | 'context' | 'negotiate' | 'sent' | 'done' = 'start';
  let layer: SaslSecurityLayer | null = null;
  let apReq: Buffer | undefined;
  let apRep: Buffer | undefined;
  let st: Krb5InitiatorState | undefined;
  // Client->server tokens are made by krb5-wrap.ts (the addon's wrap cannot wrap arbitrary data); the addon
  // unwraps what the server sends.
  const loadState = async (): Promise<Krb5InitiatorState> => {
    // Another connection's GSS step may be writing the same ccache right now: a torn read is retried briefly.
    let last: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        return initiatorState(apReq!, apRep, o.ccacheFile());
      } catch (e) {
        last = e;
        await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
      }
    }
    throw new DirectoryError(DirectoryErrorCode.LDAP_ERROR, `${o.what}: cannot set up the Kerberos security layer: ${(last as Error).message}`);
  };
  const wrapOut = (plain: Buffer, seal: boolean): Buffer => wrapToken(st!, plain, seal);
  const b64 = (b: Buffer | undefined): string => (b && b.length ? b.toString('base64') : '');

  return {
    name: 'GSSAPI',
    async step(server, done) {
      if (done) {
        if (phase !== 'sent') {
          // A server that says success before the security-layer negotiation finished: no layer was agreed.
          if (o.protection !== 'none') {
            throw new DirectoryError(DirectoryErrorCode.STRONG_AUTH_REQUIRED,
              `${o.what}: the server completed the bind without negotiating the ${o.protection} layer asked for`);
          }
        }
        phase = 'done';
        return undefined;
      }
      if (phase === 'start') {
        ctx = await o.context();
        phase = 'context';
        apReq = Buffer.from(await ctx.step(''), 'base64');
        return apReq;
      }
      if (!ctx) throw new Error('GSSAPI: no context');
      if (phase === 'context') {
        if (!ctx.complete) {
          if (server && server.length) apRep = server;
          const out = Buffer.from(await ctx.step(b64(server)), 'base64');
          if (ctx.complete) phase = 'negotiate';
          return out;
        }
        phase = 'negotiate';
      }
      if (phase === 'negotiate') {
        if (!server || server.length === 0) return Buffer.alloc(0);
        const offer = Buffer.from((await ctx.unwrap(server.toString('base64'))) ?? '', 'base64');
        if (offer.length !== 4) {
          throw new DirectoryError(DirectoryErrorCode.LDAP_ERROR, `${o.what}: the server's security-layer offer is ${offer.length} octets, not 4`);
        }
        const mask = offer[0]!;
        const serverMax = offer.readUIntBE(1, 3);
        const want = o.protection === 'seal' ? LAYER_CONFIDENTIALITY : o.protection === 'sign' ? LAYER_INTEGRITY : LAYER_NONE;
        if (!(mask & want)) {
          throw new DirectoryError(DirectoryErrorCode.STRONG_AUTH_REQUIRED,
            `${o.what}: the server offers the SASL security layers ${layerNames(mask)}, not ${o.protection} as configured`);
        }
        const reply = Buffer.alloc(4);
        reply[0] = want;
        reply.writeUIntBE(want === LAYER_NONE ? 0 : MAX_SASL_BUFFER, 1, 3);
        // RFC 4752 §3.1: wrapped with conf_flag FALSE; no authorization identity (act as the authenticated one).
        st ??= await loadState();
        const wrapped = wrapOut(reply, false);
        if (want !== LAYER_NONE) {
          const c = ctx;
          const seal = want === LAYER_CONFIDENTIALITY;
          layer = {
            protection: seal ? 'seal' : 'sign',
            maxOutgoing: serverMax,
            wrap: async (plain) => wrapOut(plain, seal),
            unwrap: async (w) => {
              // RFC 4121 Wrap token: 05 04, flags (0x02 Sealed). On a sealed session an unsealed message is refused:
              // the addon's unwrap does not report the confidentiality state.
              if (seal && !(w.length >= 16 && w[0] === 0x05 && w[1] === 0x04 && (w[2]! & 0x02))) {
                throw new Error('the server sent a message that is not sealed on a sealed session');
              }
              return Buffer.from((await c.unwrap(w.toString('base64'))) ?? '', 'base64');
            },
          };
        }
        phase = 'sent';
        return wrapped;
      }
      throw new DirectoryError(DirectoryErrorCode.LDAP_ERROR, `${o.what}: the server asked for more after the security layer was agreed`);
    },
    securityLayer: () => layer,
  };
}
