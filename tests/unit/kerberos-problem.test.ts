/**
 * How the one error mapper (server/http/problem.ts) answers every KerberosError code through the error table
 * (server/errors.ts, KERBEROS_CODES): an unreachable KDC is 503 (retry later), everything else a 502 an admin must
 * act on; `kerberos_code` always says which, `krb_error` the Kerberos error where one was named.
 */
import { KerberosError, KerberosErrorCode } from '../../adapter/kerberos';
import { KERBEROS_CODES } from '../../server/errors';
import { toProblem } from '../../server/http/problem';

describe('KerberosError as a problem document', () => {
  test.each(Object.values(KerberosErrorCode))('%s is answered through the table', (code) => {
    const p = toProblem(new KerberosError(code, `kinit for svc@TEST.LOCAL: failed`));
    const expected = code === 'KERBEROS_KDC_UNREACHABLE' ? [503, 'INTEGRATION_UNAVAILABLE'] : [502, 'INTEGRATION_CALL_FAILED'];
    expect([p.status, p.code]).toEqual(expected);
    expect(p.code).toBe(KERBEROS_CODES[code]);
    expect(p.extra).toEqual({ kerberos_code: code });
  });

  test('the Kerberos error name travels as krb_error', () => {
    const p = toProblem(new KerberosError('KERBEROS_CLOCK_SKEW', 'kinit for svc@TEST.LOCAL: clock skew', 'KRB_AP_ERR_SKEW'));
    expect(p).toMatchObject({ status: 502, code: 'INTEGRATION_CALL_FAILED', extra: { kerberos_code: 'KERBEROS_CLOCK_SKEW', krb_error: 'KRB_AP_ERR_SKEW' } });
    expect(p.detail).toContain('KRB_AP_ERR_SKEW');
  });
});
