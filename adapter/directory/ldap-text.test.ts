import { escapeFilterValue, isDnWithin, normalizeDn, parseDn } from './ldap-text';

describe('escapeFilterValue (RFC 4515)', () => {
  it('escapes the filter metacharacters, NUL and control characters', () => {
    expect(escapeFilterValue('*)(objectClass=*')).toBe('\\2a\\29\\28objectClass=\\2a');
    expect(escapeFilterValue('a\\b')).toBe('a\\5cb');
    expect(escapeFilterValue('x\u0000y\n')).toBe('x\\00y\\0a');
  });

  it('leaves ordinary and non-ASCII text alone', () => {
    expect(escapeFilterValue('zoë.müller@test.local')).toBe('zoë.müller@test.local');
    expect(escapeFilterValue("O'Brien & Co = 1")).toBe("O'Brien & Co = 1");
  });
});

describe('DNs', () => {
  it('parses RDNs and decodes escapes', () => {
    expect(parseDn('CN=Doe\\, John,OU=Users,DC=test,DC=local')).toEqual([
      ['CN', 'Doe, John'], ['OU', 'Users'], ['DC', 'test'], ['DC', 'local'],
    ]);
    expect(parseDn('CN=a\\2Cb,DC=x')).toEqual([['CN', 'a,b'], ['DC', 'x']]);
  });

  it('rejects what is not a DN', () => {
    for (const bad of ['', 'jdoe', 'CN=,DC=x', '=x,DC=y', 'CN=x,,DC=y', 'C N=x', 'CN=x\\']) expect(parseDn(bad)).toBeUndefined();
  });

  it('compares case- and spacing-insensitively, whatever the escape style', () => {
    expect(normalizeDn('CN=John Doe, OU=X ,DC=Test,DC=local')).toBe(normalizeDn('cn=john doe,ou=x,dc=TEST,dc=LOCAL'));
    expect(normalizeDn('CN=a\\2cb,DC=x')).toBe(normalizeDn('cn=A\\,B,dc=x'));
  });

  it('tells whether a DN lies under a base DN', () => {
    const base = 'OU=Provisio,DC=test,DC=local';
    expect(isDnWithin('CN=x,ou=provisio,dc=test,dc=local', base)).toBe(true);
    expect(isDnWithin(base, base)).toBe(true);
    expect(isDnWithin('CN=x,OU=Other,DC=test,DC=local', base)).toBe(false);
    expect(isDnWithin('CN=x,OU=NotProvisio,DC=test,DC=local', base)).toBe(false);
    // One RDN whose value merely contains the base as text is not beneath it.
    expect(isDnWithin('CN=x\\,OU=Provisio\\,DC=test\\,DC=local', base)).toBe(false);
    expect(isDnWithin('not a dn', base)).toBe(false);
  });
});
