import { checkMtlsMaterial } from './mtls';
import {
  SECRET_CONFIG_PATHS,
  redactConfig,
  validateIntegrationConfig,
  type IntegrationConfigInput,
} from './config';

function errorsOf(input: unknown): { path: string; message: string }[] {
  const r = validateIntegrationConfig(input);
  if (r.ok) throw new Error('expected the configuration to be rejected');
  return r.errors;
}

describe('integration configuration schema', () => {
  test('a minimal configuration gets every default of the seed', () => {
    const r = validateIntegrationConfig({ server: { host: 'api.example.com' } });
    expect(r).toEqual({
      ok: true,
      config: {
        server: { protocol: 'http', host: 'api.example.com' },
        authentication: { type: 'none' },
        tls: { enabled: false, reject_unauthorized: true },
        cluster: { override: false },
        proxy: { override: false, mode: 'direct', auth: { mode: 'none' } },
        logging: { level: 'info' },
      },
    });
  });

  test('does not modify its input', () => {
    const input = { server: { host: 'h' } };
    validateIntegrationConfig(input);
    expect(input).toEqual({ server: { host: 'h' } });
  });

  test('typed samples of every auth type validate, with auth_method and api key placement defaulted', () => {
    const common = { server: { protocol: 'https', host: 'h', port: 8443, base_path: '/api', version: 'v2' } } as const;
    const samples: IntegrationConfigInput[] = [
      { ...common, authentication: { type: 'api_key', name: 'X-API-Key', value: 'k' } },
      {
        ...common,
        authentication: {
          type: 'api_key',
          name: 'token',
          in: 'query',
          dynamic: { method: 'POST', url: 'https://h/login', response_pointer: '/data/key', body: { u: 1 }, headers: { a: 'b' } },
        },
      },
      { ...common, authentication: { type: 'basic', username: 'u', password: 'p' } },
      { ...common, authentication: { type: 'bearer', token: 't' } },
      {
        ...common,
        authentication: { type: 'aws_sigv4', access_key_id: 'AK', secret_access_key: 'S', session_token: 'T', region: 'eu-west-1', service: 'execute-api' },
      },
      { ...common, authentication: { type: 'oauth2_client_credentials', client_id: 'c', client_secret: 's', token_url: 'https://h/token', scope: 'a b' } },
      { ...common, authentication: { type: 'oauth2_password', client_id: 'c', token_url: 'https://h/token', username: 'u', password: 'p', auth_method: 'client_secret_basic' } },
      {
        ...common,
        authentication: {
          type: 'oauth2_authorization_code',
          client_id: 'c',
          token_url: 'https://h/token',
          authorization_url: 'https://h/auth',
          redirect_uri: 'https://me/callback',
          access_token: 'at',
          refresh_token: 'rt',
        },
      },
      { ...common, authentication: { type: 'openid_connect', client_id: 'c', client_secret: 's', issuer: 'https://idp' } },
      {
        ...common,
        authentication: { type: 'none' },
        mtls: { cert: 'data:application/x-pem-file;base64,AA==', key: 'data:,x', ca: 'data:,y' },
        tls: { enabled: true, reject_unauthorized: false },
        timeout: 5000,
        cluster: { override: true, cluster_id: 'dmz' },
        proxy: { override: true, mode: 'proxy', host: 'proxy', port: 3128, auth: { mode: 'basic', username: 'u', password: 'p' } },
        logging: { level: 'debug', syslog: { host: 'syslog', port: 514 } },
      },
    ];
    for (const s of samples) {
      const r = validateIntegrationConfig(s);
      expect(r).toMatchObject({ ok: true });
      if (!r.ok) continue;
      const auth = r.config.authentication;
      if ('client_id' in auth) expect(auth.auth_method).toBe(s.authentication && 'auth_method' in s.authentication ? s.authentication.auth_method : 'client_secret_post');
      if (auth.type === 'api_key') expect(['header', 'query']).toContain(auth.in);
    }
  });

  test.each([
    [{ server: { host: 'h', port: 70000 } }, '/server/port', 'must be <= 65535'],
    [{ server: { host: 'h', port: 0 } }, '/server/port', 'must be >= 1'],
    [{ server: {} }, '/server/host', 'is required'],
    [{}, '/server', 'is required'],
    [{ server: { host: 'h', protocol: 'ftp' } }, '/server/protocol', 'must be one of http, https'],
    [{ server: { host: 'h' }, authentication: { type: 'kerberos' } }, '/authentication/type', 'must be one of none, api_key'],
    [{ server: { host: 'h' }, proxy: { override: true, mode: 'proxy' } }, '/proxy/host', 'is required when proxy mode is "proxy"'],
    [{ server: { host: 'h' }, proxy: { override: true, mode: 'proxy', host: 'p' } }, '/proxy/port', 'is required when proxy mode is "proxy"'],
    [{ server: { host: 'h' }, proxy: { mode: 'proxy', host: 'p', port: 1, auth: { mode: 'basic' } } }, '/proxy/auth/username', 'is required when proxy auth mode'],
    [{ server: { host: 'h' }, cluster: { override: true } }, '/cluster/cluster_id', 'is required when override is true'],
    [{ server: { host: 'h' }, authentication: { type: 'basic', username: 'u' } }, '/authentication/password', 'is required'],
    [{ server: { host: 'h' }, authentication: { type: 'api_key', name: 'k' } }, '/authentication/value', 'is required unless'],
    [{ server: { host: 'h' }, authentication: { type: 'openid_connect', client_id: 'c' } }, '/authentication/issuer', 'is required unless discovery_url'],
    [{ server: { host: 'h' }, authentication: { type: 'oauth2_client_credentials', client_id: 'c', token_url: 'ftp://x' } }, '/authentication/token_url', 'must be an http(s) URL'],
    [{ server: { host: 'h' }, mtls: { cert: '-----BEGIN CERTIFICATE-----' , key: 'data:,k' } }, '/mtls/cert', 'must be a PEM data URL'],
    [{ server: { host: 'h' }, mtls: { cert: 'data:,c' } }, '/mtls/key', 'is required together with cert'],
    [{ server: { host: 'h', hostname: 'x' } }, '/server/hostname', 'is not a known field'],
    [{ server: { host: 'h' }, timeout: -1 }, '/timeout', 'must be >= 1'],
    [{ server: { host: 'h' }, logging: { level: 'loud' } }, '/logging/level', 'must be one of error, warn'],
    [{ server: { host: 'h' }, logging: { syslog: { host: 's', facility: 'local9' } } }, '/logging/syslog/facility', 'must be one of kern'],
    [{ server: { host: 'h' }, authentication: { type: 'api_key', name: 'k', dynamic: { method: 'DELETE', url: 'http://k' } } }, '/authentication/dynamic/method', 'must be one of GET, POST, HEAD, PUT, PATCH'],
    [{ server: { host: 'h' }, authentication: { type: 'api_key', name: 'k', dynamic: { method: 'GET', url: 'http://k', response_pointer: 'data' } } }, '/authentication/dynamic/response_pointer', 'must be a JSON pointer'],
  ])('rejects %j naming %s', (input, path, message) => {
    const errors = errorsOf(input);
    expect(errors).toContainEqual({ path, message: expect.stringContaining(message) });
  });

  test('reports every problem, not just the first', () => {
    const errors = errorsOf({ server: { host: 'h', port: 70000 }, authentication: { type: 'bogus' }, proxy: { mode: 'proxy' } });
    expect(errors.map((e) => e.path).sort()).toEqual(['/authentication/type', '/proxy/host', '/proxy/port', '/server/port']);
  });
});

describe('secrets in a configuration', () => {
  const config: IntegrationConfigInput = {
    server: { host: 'h' },
    authentication: { type: 'oauth2_password', client_id: 'c', client_secret: 'cs', token_url: 'http://h/t', username: 'u', password: 'pw', access_token: 'at' },
    mtls: { cert: 'data:,cert', key: 'data:,key' },
    proxy: { override: true, mode: 'proxy', host: 'p', port: 1, auth: { mode: 'basic', username: 'pu', password: 'pp' } },
  };

  test('redactConfig replaces exactly the secret fields and leaves the input alone', () => {
    const out = redactConfig(config);
    expect(out.authentication).toEqual({
      type: 'oauth2_password',
      client_id: 'c',
      client_secret: '[redacted]',
      token_url: 'http://h/t',
      username: 'u',
      password: '[redacted]',
      access_token: '[redacted]',
    });
    expect(out.mtls).toEqual({ cert: 'data:,cert', key: '[redacted]' });
    expect(out.proxy?.auth).toEqual({ mode: 'basic', username: 'pu', password: '[redacted]' });
    expect(JSON.stringify(out)).not.toMatch(/"(cs|pw|at|pp)"/);
    expect((config.authentication as { password: string }).password).toBe('pw');
  });

  test('SECRET_CONFIG_PATHS covers every secret-bearing field of the schema', () => {
    expect(SECRET_CONFIG_PATHS).toEqual(
      expect.arrayContaining([
        '/authentication/value',
        '/authentication/password',
        '/authentication/token',
        '/authentication/secret_access_key',
        '/authentication/session_token',
        '/authentication/client_secret',
        '/authentication/access_token',
        '/authentication/refresh_token',
        '/mtls/key',
        '/proxy/auth/password',
      ]),
    );
  });
});

describe('mTLS material checks', () => {
  test('text that is not PEM is named per field', () => {
    expect(checkMtlsMaterial('data:,nope', 'data:,nope', 'data:,nope')).toEqual([
      { path: '/mtls/cert', message: expect.stringContaining('is not a PEM certificate') },
      { path: '/mtls/key', message: expect.stringContaining('is not an unencrypted PEM private key') },
      { path: '/mtls/ca', message: expect.stringContaining('is not a PEM certificate bundle') },
    ]);
  });
});
