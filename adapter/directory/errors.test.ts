import { DirectoryError, DirectoryErrorCode, toDirectoryError } from './errors';

function ldapError(code: number, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('toDirectoryError', () => {
  it.each([
    ['52e', 'wrong password'],
    ['525', 'user not found'],
    ['532', 'password expired'],
    ['533', 'account disabled'],
    ['701', 'account expired'],
    ['773', 'password must be reset'],
    ['775', 'account locked out'],
  ])('maps AD bind sub-code %s to INVALID_CREDENTIALS (%s)', (data, reason) => {
    const e = toDirectoryError(ldapError(49, `80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data ${data}, v4563`), 'bind');
    expect(e.code).toBe(DirectoryErrorCode.INVALID_CREDENTIALS);
    expect(e.details).toEqual({ ldapCode: 49, adDataCode: data, adReason: reason });
    expect(e.message).toContain(`${reason} (AD data ${data})`);
    expect(e.retryable).toBe(false);
  });

  it('maps LDAP result codes', () => {
    expect(toDirectoryError(ldapError(32, 'no such object'), 'x').code).toBe(DirectoryErrorCode.NOT_FOUND);
    expect(toDirectoryError(ldapError(50, 'no'), 'x').code).toBe(DirectoryErrorCode.INSUFFICIENT_ACCESS);
    expect(toDirectoryError(ldapError(8, 'strong'), 'x').code).toBe(DirectoryErrorCode.STRONG_AUTH_REQUIRED);
    expect(toDirectoryError(ldapError(13, 'confidentiality'), 'x').code).toBe(DirectoryErrorCode.STRONG_AUTH_REQUIRED);
    expect(toDirectoryError(ldapError(53, 'unwilling'), 'x').code).toBe(DirectoryErrorCode.REJECTED);
    expect(toDirectoryError(ldapError(19, 'constraint'), 'x').code).toBe(DirectoryErrorCode.REJECTED);
    expect(toDirectoryError(ldapError(112, 'tls'), 'x').code).toBe(DirectoryErrorCode.TLS);
    const busy = toDirectoryError(ldapError(51, 'busy'), 'x');
    expect([busy.code, busy.retryable, busy.details.ldapCode]).toEqual([DirectoryErrorCode.UNAVAILABLE, true, 51]);
    expect(toDirectoryError(ldapError(80, 'other'), 'x')).toMatchObject({ code: DirectoryErrorCode.LDAP_ERROR, details: { ldapCode: 80 } });
  });

  it('maps network and TLS failures', () => {
    const refused = toDirectoryError(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:636'), { code: 'ECONNREFUSED' }), 'bind');
    expect([refused.code, refused.retryable]).toEqual([DirectoryErrorCode.UNAVAILABLE, true]);
    expect(toDirectoryError(new Error('SearchRequest: Operation timed out'), 'x').code).toBe(DirectoryErrorCode.UNAVAILABLE);
    const tls = toDirectoryError(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 'x');
    expect([tls.code, tls.retryable]).toEqual([DirectoryErrorCode.TLS, false]);
  });

  it('passes DirectoryErrors through and scrubs secrets from foreign messages', () => {
    const own = new DirectoryError(DirectoryErrorCode.NOT_FOUND, 'no user');
    expect(toDirectoryError(own, 'x')).toBe(own);
    const e = toDirectoryError(new Error('failed with password Secr3t!Pw in it'), 'bind', ['Secr3t!Pw']);
    expect(e.message).toBe('bind: failed with password [redacted] in it');
  });
});
