/**
 * libkrb5 reads KRB5_CONFIG and KRB5CCNAME process-wide: the first createKerberosCredentials fixes them, and a later
 * store that asks for a different krb5.conf (or cache directory) is refused with KERBEROS_CONFIG naming both, rather
 * than silently getting the first one's realm. A store that names none shares the process's. No KDC is asked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Credentials = typeof import('./credentials');
type Errors = typeof import('./errors');

let dir: string;
const saved = { conf: process.env['KRB5_CONFIG'], cc: process.env['KRB5CCNAME'] };

/** A fresh copy of the module (its process-wide record unset), with the environment as given. */
function fresh(env: { KRB5_CONFIG?: string }): Credentials & Errors {
  if (env.KRB5_CONFIG === undefined) delete process.env['KRB5_CONFIG'];
  else process.env['KRB5_CONFIG'] = env.KRB5_CONFIG;
  process.env['KRB5CCNAME'] = `DIR:${dir}`;
  let m: (Credentials & Errors) | undefined;
  jest.isolateModules(() => {
    m = { ...(require('./credentials') as Credentials), ...(require('./errors') as Errors) };
  });
  return m!;
}

function refusal(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('expected a refusal');
}

beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'krb5cc-unit-')); });
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  for (const [k, v] of [['KRB5_CONFIG', saved.conf], ['KRB5CCNAME', saved.cc]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

test('a store without a krb5.conf records the KRB5_CONFIG libkrb5 reads; the same path later is accepted, another refused', () => {
  const m = fresh({ KRB5_CONFIG: '/etc/a-krb5.conf' });
  m.createKerberosCredentials();
  expect(m.kerberosProcessConfig()).toEqual({ krb5Conf: '/etc/a-krb5.conf', collection: `DIR:${dir}` });
  expect(() => m.createKerberosCredentials({ krb5Conf: '/etc/a-krb5.conf' })).not.toThrow();
  const e = refusal(() => m.createKerberosCredentials({ krb5Conf: '/etc/b-krb5.conf' }));
  expect(e).toBeInstanceOf(m.KerberosError);
  expect(e.code).toBe('KERBEROS_CONFIG');
  expect(e.message).toContain('krb5.conf /etc/b-krb5.conf was asked for, but this process already uses /etc/a-krb5.conf');
  expect(e.message).toMatch(/process-wide/);
});

test('with no KRB5_CONFIG the first store uses the system default, and a later explicit krb5.conf is refused naming it', () => {
  const m = fresh({});
  m.createKerberosCredentials();
  expect(m.kerberosProcessConfig()?.krb5Conf).toBeUndefined();
  const e = refusal(() => m.createKerberosCredentials({ krb5Conf: '/etc/b-krb5.conf' }));
  expect(e.code).toBe('KERBEROS_CONFIG');
  expect(e.message).toContain('already uses the system default (/etc/krb5.conf; KRB5_CONFIG unset)');
});

test('an explicit first krb5.conf is shared by stores that name none; a different one or another cache directory is refused', () => {
  const m = fresh({ KRB5_CONFIG: '/etc/a-krb5.conf' });
  // The environment's KRB5_CONFIG differs and a DIR collection is inherited (a sandboxed env copy): refused at once.
  expect(refusal(() => m.createKerberosCredentials({ krb5Conf: '/etc/c-krb5.conf' })).message).toContain('KRB5_CONFIG is already /etc/a-krb5.conf');
  const n = fresh({ KRB5_CONFIG: '/etc/c-krb5.conf' });
  n.createKerberosCredentials({ krb5Conf: '/etc/c-krb5.conf' });
  expect(() => n.createKerberosCredentials()).not.toThrow();
  expect(refusal(() => n.createKerberosCredentials({ krb5Conf: '/etc/a-krb5.conf' })).code).toBe('KERBEROS_CONFIG');
  expect(refusal(() => n.createKerberosCredentials({ ccacheDir: join(dir, 'other') })).message).toContain(`already uses DIR:${dir}; KRB5CCNAME is process-wide`);
});
