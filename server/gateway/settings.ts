import { readFileSync } from 'node:fs';
import type { ConsumerAttribute, DirectorySecurity, DirectorySettings, Queryable } from '../../adapter';
import { ConfigError } from '../config';
import { readSettings } from '../domain/settings/settings';

/**
 * The environment variables that override the `active_directory` settings section, key by key (handy for a
 * gateway deployed apart from the admin UI, and for secrets kept out of the database).
 */
export const DIRECTORY_ENV = {
  AD_SERVER: 'domain controller host name or IP',
  AD_PORT: '389 or 636',
  AD_SECURITY: 'ldaps | starttls | none',
  AD_BIND_DN: 'service account (DN, UPN or DOMAIN\\user)',
  AD_BIND_PASSWORD: 'service account password',
  AD_BASE_DN: 'search root for users and groups',
  AD_CA_CERT_FILE: 'PEM file of the CA that issued the DC certificate',
  AD_TLS_SERVER_NAME: 'name to verify the certificate against, when it differs from the server',
  AD_AUTH_TYPE: 'simple | ntlm | kerberos',
  AD_KERBEROS_PRINCIPAL: 'kerberos: service account principal (svc@CORP.EXAMPLE)',
  AD_KERBEROS_KEYTAB_FILE: "kerberos: keytab file of the principal (else AD_BIND_PASSWORD is the principal's password)",
  AD_KERBEROS_SPN_HOST: 'kerberos: host in the SPN ldap/<host>, when it differs from the server',
  AD_KRB5_CONF: 'kerberos: krb5.conf path',
  AD_SASL_PROTECTION: 'ntlm/kerberos: seal | sign | none (none only over LDAPS/StartTLS)',
} as const;

const CONSUMER_KEYS: Record<ConsumerAttribute, string> = {
  department: 'department_attribute',
  cost_center: 'cost_center_attribute',
  company: 'company_attribute',
  employee_id: 'employee_id_attribute',
  title: 'title_attribute',
};

/**
 * Directory settings from the `active_directory` settings section (secrets included: for the service's own
 * use), each key overridden by its environment variable when set. Shape is checked here; values are checked
 * by the directory module (`createDirectory` throws DirectoryError CONFIG).
 * @throws ConfigError when no server, bind DN, password or base DN is configured anywhere, or a value has the wrong form.
 */
export async function readDirectorySettings(q: Queryable, env: NodeJS.ProcessEnv = process.env): Promise<DirectorySettings> {
  const stored = new Map(Object.entries(await readSettings(q, 'active_directory')));
  const text = (name: string): string | undefined => {
    const v = stored.get(name);
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const envText = (name: keyof typeof DIRECTORY_ENV): string | undefined => (env[name] ? env[name] : undefined);

  const missing: string[] = [];
  const required = (setting: string, envName: keyof typeof DIRECTORY_ENV): string => {
    const v = envText(envName) ?? text(setting);
    if (v === undefined) missing.push(`${setting} (${envName})`);
    return v ?? '';
  };
  const authType = envText('AD_AUTH_TYPE') ?? text('auth_type');
  const server = required('server', 'AD_SERVER');
  const account: Partial<DirectorySettings> = {};
  if (authType === 'kerberos') {
    // Kerberos: the principal names the account; its keytab (sealed like bind_password) or its password.
    const principal = required('kerberos_principal', 'AD_KERBEROS_PRINCIPAL');
    if (principal) account.kerberosPrincipal = principal;
    const keytabFile = envText('AD_KERBEROS_KEYTAB_FILE');
    if (keytabFile !== undefined) {
      try {
        account.kerberosKeytab = readFileSync(keytabFile).toString('base64');
      } catch (e) {
        throw new ConfigError(`AD gateway: cannot read AD_KERBEROS_KEYTAB_FILE ${keytabFile}: ${(e as Error).message}`);
      }
    } else if (text('kerberos_keytab')) {
      account.kerberosKeytab = text('kerberos_keytab');
    }
    const password = envText('AD_BIND_PASSWORD') ?? text('bind_password');
    if (password !== undefined) account.bindPassword = password;
    if (account.kerberosKeytab === undefined && password === undefined) missing.push('kerberos_keytab (AD_KERBEROS_KEYTAB_FILE) or bind_password (AD_BIND_PASSWORD)');
    const spnHost = envText('AD_KERBEROS_SPN_HOST') ?? text('kerberos_spn_host');
    if (spnHost) account.kerberosSpnHost = spnHost;
    const krb5Conf = envText('AD_KRB5_CONF') ?? text('krb5_conf_path');
    if (krb5Conf) account.krb5ConfPath = krb5Conf;
  } else {
    account.bindDn = required('bind_dn', 'AD_BIND_DN');
    account.bindPassword = required('bind_password', 'AD_BIND_PASSWORD');
  }
  const baseDn = required('base_dn', 'AD_BASE_DN');
  if (missing.length > 0) {
    throw new ConfigError(`AD gateway: the directory is not configured: set ${missing.join(', ')} in Admin → Settings → active_directory or the environment`);
  }
  const settings: DirectorySettings = { server, ...account, baseDn };
  const saslProtection = envText('AD_SASL_PROTECTION') ?? text('sasl_protection');
  if (saslProtection !== undefined) {
    if (!['seal', 'sign', 'none'].includes(saslProtection)) throw new ConfigError(`AD gateway: AD_SASL_PROTECTION must be seal, sign or none, got '${saslProtection}'`);
    settings.saslProtection = saslProtection as DirectorySettings['saslProtection'];
  }

  const portRaw = envText('AD_PORT') ?? stored.get('port');
  if (portRaw !== undefined) {
    const port = Number(portRaw);
    if (!Number.isInteger(port)) throw new ConfigError(`AD gateway: AD_PORT must be an integer, got '${String(portRaw)}'`);
    settings.port = port;
  }

  const security = envText('AD_SECURITY');
  if (security !== undefined) {
    if (!['ldaps', 'starttls', 'none'].includes(security)) throw new ConfigError(`AD gateway: AD_SECURITY must be ldaps, starttls or none, got '${security}'`);
    settings.security = security as DirectorySecurity;
  } else if (stored.get('use_tls') === true) {
    settings.security = 'ldaps';
  } else if (stored.get('start_tls') === true) {
    settings.security = 'starttls';
  } else if (stored.get('use_tls') === false && stored.get('start_tls') === false) {
    // Both switched off on purpose: plain LDAP. Neither set leaves the module's default (LDAPS on 636, else StartTLS).
    settings.security = 'none';
  }

  const caFile = envText('AD_CA_CERT_FILE');
  if (caFile !== undefined) {
    try {
      settings.caCertPem = readFileSync(caFile, 'utf8');
    } catch (e) {
      throw new ConfigError(`AD gateway: cannot read AD_CA_CERT_FILE ${caFile}: ${(e as Error).message}`);
    }
  } else if (text('ca_cert_pem')) {
    settings.caCertPem = text('ca_cert_pem');
  }
  const tlsServerName = envText('AD_TLS_SERVER_NAME');
  if (tlsServerName) settings.tlsServerName = tlsServerName;

  // Unknown values reach the module, which refuses them with a precise CONFIG error.
  if (authType !== undefined) settings.authType = authType as DirectorySettings['authType'];

  const consumerAttributes: Partial<Record<ConsumerAttribute, string>> = {};
  for (const [attr, key] of Object.entries(CONSUMER_KEYS) as [ConsumerAttribute, string][]) {
    const v = text(key);
    if (v) consumerAttributes[attr] = v;
  }
  if (Object.keys(consumerAttributes).length > 0) settings.consumerAttributes = consumerAttributes;
  return settings;
}
