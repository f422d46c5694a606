import { DirectoryErrorCode } from './errors';
import { DEFAULT_CONSUMER_ATTRIBUTES, resolveDirectorySettings, type DirectorySettings } from './settings';

const base: DirectorySettings = { server: 'dc1.corp.example', bindDn: 'svc@corp.example', bindPassword: 'S3cret!pw', baseDn: 'DC=corp,DC=example' };

function configMessage(over: Record<string, unknown>): string {
  try {
    resolveDirectorySettings({ ...base, ...over } as DirectorySettings);
  } catch (e) {
    expect((e as { code?: string }).code).toBe(DirectoryErrorCode.CONFIG);
    return (e as Error).message;
  }
  throw new Error('expected a CONFIG error');
}

describe('resolveDirectorySettings', () => {
  it('defaults to StartTLS on 389, LDAPS on 636, simple bind and AD attribute names; result is frozen', () => {
    const s = resolveDirectorySettings(base);
    expect(s).toMatchObject({ security: 'starttls', port: 389, authType: 'simple', poolSize: 4, timeoutMs: 10_000 });
    expect(s.consumerAttributes).toEqual(DEFAULT_CONSUMER_ATTRIBUTES);
    expect(DEFAULT_CONSUMER_ATTRIBUTES).toEqual({
      department: 'department', cost_center: 'departmentNumber', company: 'company', employee_id: 'employeeID', title: 'title',
    });
    expect(Object.isFrozen(s)).toBe(true);
    expect(resolveDirectorySettings({ ...base, port: 636 })).toMatchObject({ security: 'ldaps', port: 636 });
    expect(resolveDirectorySettings({ ...base, security: 'ldaps' })).toMatchObject({ port: 636 });
    expect(resolveDirectorySettings({ ...base, security: 'none' })).toMatchObject({ port: 389 });
  });

  it('takes consumer attribute names and makes them writable', () => {
    const s = resolveDirectorySettings({ ...base, consumerAttributes: { cost_center: 'extensionAttribute1' } });
    expect(s.consumerAttributes.cost_center).toBe('extensionAttribute1');
    expect(s.writableAttributes.has('extensionattribute1')).toBe(true);
    expect(s.writableAttributes.has('departmentnumber')).toBe(false);
  });

  it('takes NTLM and Kerberos with their own fields, sealing by default on plain LDAP and none over TLS', () => {
    const keytab = Buffer.from([5, 2, 0, 0, 0, 1]).toString('base64');
    const krb = resolveDirectorySettings({ server: '10.0.0.5', security: 'none', authType: 'kerberos', kerberosPrincipal: 'svc@CORP.EXAMPLE',
      kerberosKeytab: keytab, kerberosSpnHost: 'dc1.corp.example', baseDn: 'DC=corp,DC=example' });
    expect(krb).toMatchObject({ authType: 'kerberos', saslProtection: 'seal', bindDn: 'svc@CORP.EXAMPLE', bindPassword: '',
      kerberos: { principal: 'svc@CORP.EXAMPLE', spnHost: 'dc1.corp.example', keytabBase64: keytab } });
    expect(resolveDirectorySettings({ ...base, authType: 'ntlm', bindDn: 'CORP\\svc' })).toMatchObject({ authType: 'ntlm', saslProtection: 'none' });
    expect(resolveDirectorySettings({ ...base, authType: 'ntlm', bindDn: 'CORP\\svc', security: 'none', saslProtection: 'sign' }).saslProtection).toBe('sign');
    expect(configMessage({ authType: 'ntlm', bindDn: 'CN=svc,DC=corp,DC=example' })).toMatch(/DOMAIN\\user or user@domain/);
    expect(configMessage({ authType: 'ntlm', security: 'none', saslProtection: 'none' })).toMatch(/in clear/);
    expect(configMessage({ authType: 'kerberos' })).toMatch(/principal is required/);
    expect(configMessage({ authType: 'kerberos', kerberosPrincipal: 'svc@CORP.EXAMPLE', server: '10.0.0.5' })).toMatch(/SPN host/);
    expect(configMessage({ saslProtection: 'seal' })).toMatch(/ntlm and kerberos binds only/);
    expect(configMessage({ authType: 'digest' as never })).toMatch(/use simple, ntlm or kerberos/);
  });

  it.each<[string, Record<string, unknown>]>([
    ['empty password (an anonymous bind in disguise)', { bindPassword: '' }],
    ['missing bind DN', { bindDn: ' ' }],
    ['bad base DN', { baseDn: 'corp.example' }],
    ['URL as server', { server: 'ldaps://dc1' }],
    ['bad port', { port: 70000 }],
    ['bad security', { security: 'ssl' }],
    ['non-PEM CA', { caCertPem: 'abc' }],
    ['unknown consumer attribute', { consumerAttributes: { shoe_size: 'x' } }],
    ['bad attribute name', { consumerAttributes: { title: 'ti tle' } }],
    ['protected attribute on the allow-list', { writableAttributes: ['title', 'unicodePwd'] }],
  ])('refuses %s with CONFIG, never echoing the password', (_label, over) => {
    expect(configMessage(over)).not.toContain('S3cret!pw');
  });
});
