/**
 * The client side of one SASL mechanism used for an LDAP bind (RFC 4513 §5.2.2), and the security layer it
 * may install on the connection afterwards (RFC 4422 §3.7). Two implementations: GSSAPI (Kerberos V5,
 * RFC 4752) over the `kerberos` addon, and GSS-SPNEGO carrying NTLMSSP (MS-NLMP, MS-SPNG) in TypeScript.
 *
 * Tokens are credentials: never log them, never put them in errors.
 */
export interface SaslMechanism {
  /** The SASL mechanism name sent in the BindRequest: `GSSAPI` or `GSS-SPNEGO`. */
  readonly name: string;
  /**
   * The client's next credentials, given the server's credentials from the previous BindResponse
   * (`undefined` on the first call, and when a response carried none). `done` is true when the server's
   * BindResponse said success (0): the mechanism verifies the server's final token (mutual auth, SPNEGO
   * mechListMIC) and returns `undefined`; a bad final token throws.
   * @returns the credentials for the next BindRequest, or `undefined` when the client has nothing to send
   */
  step(serverCredentials: Buffer | undefined, done: boolean): Promise<Buffer | undefined>;
  /**
   * After a successful bind: the security layer every later LDAP PDU goes through, or `null` when the
   * exchange negotiated none (over TLS, the layer is TLS itself).
   */
  securityLayer(): SaslSecurityLayer | null;
}

/**
 * A negotiated SASL security layer. Each LDAP PDU becomes one SASL buffer on the wire: a 4-octet big-endian
 * length, then `wrap(pdu)`. Calls are strictly ordered per direction (sequence numbers, RC4 state), so the
 * transport never runs two wraps or two unwraps at once.
 */
export interface SaslSecurityLayer {
  /** `sign` (integrity only) or `seal` (integrity and confidentiality). */
  readonly protection: 'sign' | 'seal';
  /** The largest wrapped buffer the peer accepts (from the negotiation; 0 = no limit stated). */
  readonly maxOutgoing: number;
  wrap(plain: Buffer): Promise<Buffer>;
  unwrap(wrapped: Buffer): Promise<Buffer>;
}
