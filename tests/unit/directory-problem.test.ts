/**
 * How the one error mapper (server/http/problem.ts) turns every DirectoryError code into HTTP: the caller's
 * input problems keep the directory's message, failures between the service and the directory get a fixed,
 * safe detail (the server's own text may name hosts and accounts), and `directory_code` always says which.
 */
import { DirectoryError, DirectoryErrorCode } from '../../adapter/directory';
import { toProblem } from '../../server/http/problem';

const RAW = 'bind as CN=svc,DC=corp to ldaps://dc1.corp.example:636: server said something internal';

describe('DirectoryError as a problem document', () => {
  test.each([
    [DirectoryErrorCode.NOT_FOUND, 404, 'NOT_FOUND', true],
    [DirectoryErrorCode.AMBIGUOUS, 409, 'CONFLICT', true],
    [DirectoryErrorCode.INVALID_INPUT, 422, 'VALIDATION_FAILED', true],
    [DirectoryErrorCode.ATTRIBUTE_NOT_ALLOWED, 422, 'VALIDATION_FAILED', true],
    [DirectoryErrorCode.REJECTED, 422, 'VALIDATION_FAILED', true],
    [DirectoryErrorCode.UNAVAILABLE, 503, 'INTEGRATION_UNAVAILABLE', false],
    [DirectoryErrorCode.INVALID_CREDENTIALS, 502, 'INTEGRATION_CALL_FAILED', false],
    [DirectoryErrorCode.INSUFFICIENT_ACCESS, 502, 'INTEGRATION_CALL_FAILED', false],
    [DirectoryErrorCode.STRONG_AUTH_REQUIRED, 502, 'INTEGRATION_CALL_FAILED', false],
    [DirectoryErrorCode.TLS, 502, 'INTEGRATION_CALL_FAILED', false],
    [DirectoryErrorCode.CONFIG, 502, 'INTEGRATION_CALL_FAILED', false],
    [DirectoryErrorCode.LDAP_ERROR, 502, 'INTEGRATION_CALL_FAILED', false],
  ] as const)('%s is %i %s', (code, status, appCode, keepsMessage) => {
    const e = toProblem(new DirectoryError(code, RAW, { ldapCode: 80 }));
    expect({ status: e.status, code: e.code, extra: e.extra }).toEqual({ status, code: appCode, extra: { directory_code: code } });
    if (keepsMessage) expect(e.detail).toBe(RAW);
    else expect(e.detail).not.toContain('dc1.corp.example');
  });

  test('NOT_FOUND carries the key; ATTRIBUTE_NOT_ALLOWED names the body field; a refused bind says why in AD words', () => {
    const nf = toProblem(new DirectoryError(DirectoryErrorCode.NOT_FOUND, 'no user with mail "x@y"', { key: { kind: 'mail', value: 'x@y' } }));
    expect(nf.extra).toEqual({ directory_code: 'NOT_FOUND', key: { kind: 'mail', value: 'x@y' } });
    const attr = toProblem(new DirectoryError(DirectoryErrorCode.ATTRIBUTE_NOT_ALLOWED, 'attribute unicodePwd is protected', { attribute: 'unicodePwd' }));
    expect(attr.errors).toEqual([{ path: '/body/attributes/unicodePwd', message: 'attribute unicodePwd is protected' }]);
    const bind = toProblem(new DirectoryError(DirectoryErrorCode.INVALID_CREDENTIALS, RAW, { ldapCode: 49, adDataCode: '533', adReason: 'account disabled' }));
    expect(bind.detail).toBe('the directory refused the service account: account disabled (AD data 533)');
    expect(toProblem(new DirectoryError(DirectoryErrorCode.LDAP_ERROR, RAW, { ldapCode: 80 })).detail).toBe('the directory answered with an error (LDAP result 80)');
  });
});
