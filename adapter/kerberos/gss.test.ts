/**
 * The `kerberos` package wraps its native methods in promises each time it is evaluated. A host that evaluates it
 * more than once in a process (jest: once per test file in a worker; here: jest.isolateModules) must not wrap the
 * wrappers, or a step never settles (promisify of an async function that never calls back): gss.ts puts the native
 * methods back first. No KDC is needed: the step only has to settle, with a token or a Kerberos error.
 */
type Gss = typeof import('./gss');

test('a GSS step settles after the addon was evaluated three times in one process', async () => {
  let addon: ReturnType<Gss['loadKerberosAddon']> | undefined;
  for (let i = 0; i < 3; i++) {
    jest.isolateModules(() => {
      addon = (require('./gss') as Gss).loadKerberosAddon();
    });
  }
  const client = await addon!.initializeClient('ldap@nowhere.invalid', { mechOID: addon!.GSS_MECH_OID_KRB5 });
  const settled = await Promise.race([
    Promise.resolve().then(() => client.step('')).then(() => 'settled', () => 'settled'),
    new Promise((r) => setTimeout(() => r('hung'), 10_000).unref()),
  ]);
  expect(settled).toBe('settled');
}, 30_000);
