/**
 * SASL binds for the directory: which mechanism a connection uses (GSSAPI for `kerberos`, GSS-SPNEGO/NTLMSSP for
 * `ntlm`), with the Kerberos ticket held per pool, and the mapping of Kerberos failures onto DirectoryError codes.
 */
import { createKerberosCredentials, KerberosError, type KerberosConfig, type KerberosCredentials, type KerberosSecret } from '../../kerberos';
import { DirectoryError, DirectoryErrorCode, type DirectoryErrorDetails } from '../errors';
import type { ResolvedDirectorySettings } from '../settings';
import { createGssapiMechanism } from './gssapi';
import type { SaslMechanism } from './mechanism';
import { createNtlmMechanism } from './ntlm';

export type { SaslMechanism, SaslSecurityLayer } from './mechanism';

/** Options that are not settings: the Kerberos store's tuning (and test hooks such as kinitEnv). */
export interface SaslDeps {
  kerberos?: Omit<KerberosConfig, 'krb5Conf'>;
}

/** Makes one fresh mechanism per connection. */
export interface SaslBinder {
  /** `GSSAPI as svc@CORP for ldap/dc1.corp` / `GSS-SPNEGO (NTLM) as CORP\svc`: for messages. */
  readonly describe: string;
  /** Gets what the mechanism needs (a Kerberos TGT) and returns a new mechanism for one bind. */
  mechanism(): Promise<SaslMechanism>;
}

/**
 * A KerberosError as a DirectoryError: the KDC refusing the account is INVALID_CREDENTIALS, a missing SPN is a
 * CONFIG error (the SPN host setting), an unreachable KDC is UNAVAILABLE. The Kerberos error name stays in the
 * message and in `details.krbError`.
 */
export function fromKerberosError(e: KerberosError, context: string): DirectoryError {
  const details: DirectoryErrorDetails = e.krbError ? { krbError: e.krbError } : {};
  const code = ((): DirectoryErrorCode => {
    switch (e.code) {
      case 'KERBEROS_BAD_CREDENTIALS':
      case 'KERBEROS_UNKNOWN_PRINCIPAL':
      case 'KERBEROS_ACCOUNT_DISABLED':
        return DirectoryErrorCode.INVALID_CREDENTIALS;
      case 'KERBEROS_UNKNOWN_SERVICE':
      case 'KERBEROS_CONFIG':
        return DirectoryErrorCode.CONFIG;
      case 'KERBEROS_KDC_UNREACHABLE':
      case 'KERBEROS_TICKET_EXPIRED':
        return DirectoryErrorCode.UNAVAILABLE;
      default:
        return DirectoryErrorCode.LDAP_ERROR;
    }
  })();
  return new DirectoryError(code, `${context}: ${e.message}`, details, { cause: e });
}

async function mapKerberos<T>(context: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw e instanceof KerberosError ? fromKerberosError(e, context) : e;
  }
}

/** The binder for `kerberos` or `ntlm` settings. The Kerberos ticket store is per binder (per pool). */
export function createSaslBinder(s: ResolvedDirectorySettings, deps: SaslDeps = {}): SaslBinder {
  if (s.authType === 'kerberos' && s.kerberos) {
    const k = s.kerberos;
    const service = `ldap@${k.spnHost}`;
    const describe = `GSSAPI bind as ${k.principal} for ldap/${k.spnHost}`;
    const secret: KerberosSecret = k.keytabBase64 !== undefined ? { keytabBase64: k.keytabBase64 } : { password: s.bindPassword };
    let creds: KerberosCredentials | undefined;
    return {
      describe,
      async mechanism() {
        await mapKerberos(describe, async () => {
          creds ??= createKerberosCredentials({ kinitTimeoutMs: s.connectTimeoutMs + s.timeoutMs, ...deps.kerberos, ...(k.krb5Conf ? { krb5Conf: k.krb5Conf } : {}) });
          await creds.ensureTicket(k.principal, secret);
        });
        const c = creds!;
        const inner = createGssapiMechanism({
          what: describe,
          ccacheFile: () => {
            const t = c.ticket(k.principal);
            if (!t) throw new Error(`no ticket held for ${k.principal}`);
            return t.ccache.replace(/^DIR::/, '');
          },
          protection: s.saslProtection,
          context: () => c.initClient(service, {
            principal: k.principal,
            mechanism: 'krb5',
            flags: { mutual: true, integrity: s.saslProtection !== 'none', confidentiality: s.saslProtection === 'seal' },
          }),
        });
        return {
          name: inner.name,
          step: (server, done) => mapKerberos(describe, () => inner.step(server, done)),
          securityLayer: () => inner.securityLayer(),
        };
      },
    };
  }
  if (s.authType === 'ntlm') {
    const m = /^([^\\]+)\\(.+)$/.exec(s.bindDn);
    // DOMAIN\user, or a UPN as the user name with an empty domain (NTLM accepts a UPN that way).
    const domain = m ? m[1]! : '';
    const username = m ? m[2]! : s.bindDn;
    const describe = `GSS-SPNEGO (NTLM) bind as ${s.bindDn}`;
    return {
      describe,
      mechanism: async () => createNtlmMechanism({ domain, username, password: s.bindPassword, protection: s.saslProtection }),
    };
  }
  throw new DirectoryError(DirectoryErrorCode.CONFIG, `directory settings: auth type ${s.authType} does not bind with SASL`);
}
