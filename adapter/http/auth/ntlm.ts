import http from 'node:http';
import https from 'node:https';
import { createType1Message, createType3Message, parseType2Message, type Type2Message } from 'httpntlm/ntlm';
import type { AuthenticationConfig } from '../config';
import { CallNotMadeCode, explainNetworkError, missingInformation } from '../envelope';
import type { AuthContext, AuthProvider } from './types';

export interface NtlmTransport {
  /** TLS options of the integration (CA, client certificate, certificate checking), for the handshake's own agent. */
  tls: https.AgentOptions;
  /** Milliseconds the negotiation request may take. */
  timeout: number;
  /** NTLM authenticates a connection; a forward proxy in between would break that, so it is refused. */
  proxied: boolean;
}

/** How long an authenticated connection is kept for its one request before it is closed. */
const IDLE_MS = 5_000;

/**
 * Windows NTLM (the form of HTTP Negotiate a Linux client can speak without a Kerberos ticket), with the NTLM
 * messages of httpntlm (NTLMv2 when the server's challenge carries target info, as Windows servers' do).
 *
 * NTLM authenticates a TCP connection, not a request: the NEGOTIATE message, the server's CHALLENGE (a 401) and the
 * AUTHENTICATE message must travel on one connection. So every call gets its own single-socket keep-alive agent: the
 * handshake request (same method and URL, no body) goes out on it, then the real request, carrying the AUTHENTICATE
 * message, reuses that socket. Concurrent calls never share a half-authenticated connection. The cost is one extra
 * round trip and a fresh connection per call. A 401 to the AUTHENTICATE message means the credentials were refused;
 * it is returned as the call's answer (there is nothing to refresh).
 */
export function createNtlmAuth(auth: Extract<AuthenticationConfig, { type: 'ntlm' }>, ctx: AuthContext, transport: NtlmTransport): AuthProvider {
  ctx.addSecret(auth.password);
  // `DOMAIN\user` (the form Windows tools take) names the domain when `domain` does not.
  const slash = auth.username.indexOf('\\');
  const username = auth.domain === undefined && slash > 0 ? auth.username.slice(slash + 1) : auth.username;
  const domain = auth.domain ?? (slash > 0 ? auth.username.slice(0, slash) : '');
  const identity = { username, password: auth.password, domain, workstation: auth.workstation ?? '' };

  return {
    apply: async (config) => {
      const url = ctx.fullUrl(config);
      if (transport.proxied) {
        throw missingInformation(`NTLM authentication cannot pass through the configured proxy (it authenticates a connection); call ${url} directly`);
      }
      const secure = url.startsWith('https:');
      const agent = secure
        ? new https.Agent({ ...transport.tls, keepAlive: true, maxSockets: 1, timeout: IDLE_MS })
        : new http.Agent({ keepAlive: true, maxSockets: 1, timeout: IDLE_MS });
      const method = (config.method ?? 'get').toUpperCase();
      const challenge = await negotiate(agent, secure, method, url, createType1Message(identity), transport.timeout);
      let failure: Error | undefined;
      const type2: Type2Message | null = parseType2Message(challenge, (e) => (failure = e));
      if (!type2) {
        agent.destroy();
        throw missingInformation(`the NTLM challenge from ${method} ${url} could not be read: ${failure?.message ?? 'not a CHALLENGE message'}`, CallNotMadeCode.KEY_RETRIEVAL);
      }
      config.headers.set('authorization', createType3Message(type2, identity));
      config.headers.set('connection', 'keep-alive');
      config.httpAgent = agent;
      config.httpsAgent = agent;
    },
  };
}

/** Sends the NEGOTIATE message on `agent` and returns the server's `WWW-Authenticate: NTLM <challenge>` value. */
function negotiate(agent: http.Agent, secure: boolean, method: string, url: string, type1: string, timeout: number): Promise<string> {
  const target = `${method} ${url}`;
  return new Promise<string>((resolve, reject) => {
    const req = (secure ? https : http).request(url, { method, agent, headers: { authorization: type1, connection: 'keep-alive', 'content-length': '0' }, timeout }, (res) => {
      // Drained so the socket goes back to the agent for the real request.
      res.resume();
      res.on('end', () => {
        const offered = ([] as string[]).concat(res.headers['www-authenticate'] ?? []);
        const ntlm = offered.flatMap((h) => h.split(/,\s*(?=[A-Za-z]+(?:\s|$))/)).find((h) => /^NTLM\s+\S+/i.test(h.trim()));
        if (res.statusCode === 401 && ntlm) return resolve(ntlm.trim());
        agent.destroy();
        const schemes = offered.length > 0 ? offered.join(', ') : 'none';
        reject(
          missingInformation(
            res.statusCode === 401
              ? `the server at ${target} offers no NTLM challenge (WWW-Authenticate: ${schemes}); it may accept Kerberos only`
              : `the server at ${target} answered the NTLM negotiation with ${String(res.statusCode)} instead of a 401 challenge; it does not use NTLM`,
            CallNotMadeCode.KEY_RETRIEVAL,
          ),
        );
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`timeout of ${timeout}ms exceeded`), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => {
      agent.destroy();
      reject(explainNetworkError(e, target, timeout));
    });
    req.end();
  });
}
