// Kerberos for service identities: tickets from a keytab or password (MIT kinit into a process-wide DIR ccache
// collection), renewed before expiry, and GSS (SPNEGO or krb5) initiator contexts through the `kerberos` addon.
export { createKerberosCredentials, kerberosProcessConfig } from './credentials';
export type { GssClientOptions, KerberosConfig, KerberosCredentials, KerberosSecret, TicketInfo } from './credentials';
export { loadKerberosAddon } from './gss';
export type { GssClientContext, GssMechanism } from './gss';
export { KerberosError, KerberosErrorCode, toKerberosError } from './errors';
