import { formatSecretReference, looksLikeSecretReference, parseSecretReference } from './references';

describe('parseSecretReference', () => {
  test.each([
    ['vault://provisio/smtp', { scheme: 'vault', path: 'provisio/smtp' }],
    ['vault://provisio/smtp#password', { scheme: 'vault', path: 'provisio/smtp', field: 'password' }],
    ['vault://team%20a%2Fb'.replace('%20', '-').replace('%2F', 'x'), { scheme: 'vault', path: 'team-axb' }],
    ['vault://a%23b/c#f%23g', { scheme: 'vault', path: 'a#b/c', field: 'f#g' }],
    ['ccp://Safe1/db-admin', { scheme: 'ccp', path: 'Safe1/db-admin' }],
    ['ccp://db-admin', { scheme: 'ccp', path: 'db-admin' }],
    ['azurekv://corp-kv-01/smtp-password', { scheme: 'azurekv', path: 'corp-kv-01/smtp-password' }],
    ['awssm://prod/provisio/ldap#password', { scheme: 'awssm', path: 'prod/provisio/ldap', field: 'password' }],
    ['awssm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf', { scheme: 'awssm', path: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf' }],
    ['conjur://prod/db/password', { scheme: 'conjur', path: 'prod/db/password' }],
    ['conjur://prod/db#user', { scheme: 'conjur', path: 'prod/db', field: 'user' }],
  ])('%s parses', (raw, expected) => {
    const parsed = parseSecretReference(raw);
    expect(parsed).toEqual({ ok: true, ref: { raw, ...expected } });
  });

  test.each([
    ['vault://', 'the path is empty'],
    ['vault:///a', "empty segment"],
    ['vault://a//b', 'empty segment'],
    ['vault://a/', 'empty segment'],
    ['vault://a/../b', "'..' segment"],
    ['vault://a/%2E%2E/b', "'..' segment"],
    ['vault://a/./b', "'.' segment"],
    ['vault://a b', 'whitespace or a control character'],
    ['vault://a%20b', 'whitespace or a control character'],
    ['vault://a%0Ab', 'whitespace or a control character'],
    ['vault://a%zz', 'malformed percent-encoding'],
    ['vault://a%2Fb', "encoded '/'"],
    ['vault://a#', 'the #field after \'#\' is empty'],
    ['vault://a#b#c', "more than one '#'"],
    ['vault://a?x=1', "has a '?'"],
    ['Vault://a', 'lower case'],
    ['ccp://safe/obj#f', 'takes no #field'],
    ['ccp://a/b/c', 'at most one'],
    ['ccp://a-safe-name-longer-than-28-chars/obj', 'safe name'],
    ['azurekv://corp-kv', 'two segments'],
    ['azurekv://kv/secret', 'vault name must be 3-24'],
    ['azurekv://1corp/secret', 'vault name'],
    ['azurekv://corp--kv/secret', 'vault name'],
    ['azurekv://corp-kv-/secret', 'vault name'],
    ['azurekv://a-vault-name-that-is-too-long/s', 'vault name'],
    ['azurekv://corp-kv/smtp_password', 'secret name must be 1-127'],
    [`azurekv://corp-kv/${'a'.repeat(128)}`, 'secret name'],
    ['azurekv://corp-kv/s#f', 'takes no #field'],
    ['awssm://prod/db%21', 'secret name must be 1-512'],
    ['awssm://arn:aws:s3:::bucket', 'not a Secrets Manager secret ARN'],
    ['awssm://arn:aws:secretsmanager:eu-west-1:1234:secret:x', 'not a Secrets Manager secret ARN'],
    ['conjur://', 'the identifier is empty'],
    ['conjur://prod//db', 'empty segment'],
  ])('%s is refused: %s', (raw, what) => {
    const parsed = parseSecretReference(raw);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toContain(what);
  });

  test('a message never repeats the reference (the caller names the field)', () => {
    const parsed = parseSecretReference('vault://secret-path-xyz//oops');
    expect(parsed.ok || parsed.message.includes('secret-path-xyz')).toBe(false);
  });

  test('formatSecretReference writes what parses back to the same path and field', () => {
    for (const [scheme, path, field] of [
      ['vault', 'provisio/settings/smtp/password', 'value'],
      ['conjur', 'provisio/integrations/7/authentication/password', undefined],
      ['vault', 'a#b/c d', 'f#g'],
    ] as const) {
      const raw = formatSecretReference(scheme, path, field);
      const parsed = parseSecretReference(raw);
      if (path.includes(' ')) {
        expect(parsed.ok).toBe(false);
        continue;
      }
      expect(parsed).toEqual({ ok: true, ref: { scheme, raw, path, ...(field ? { field } : {}) } });
    }
  });
});

describe('looksLikeSecretReference', () => {
  test.each([
    ['vault://x', true],
    ['VAULT://x', true],
    ['conjur://x', true],
    ['azurekv://a/b', true],
    ['awssm://x', true],
    ['ccp://x', true],
    ['https://x', false],
    ['vault:/x', false],
    ['plain-password', false],
    ['', false],
  ])('%s → %s', (s, expected) => expect(looksLikeSecretReference(s)).toBe(expected));

  test('non-strings are never references', () => {
    for (const v of [undefined, null, 42, { a: 'vault://x' }, ['vault://x']]) expect(looksLikeSecretReference(v)).toBe(false);
  });
});
