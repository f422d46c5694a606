import { buildEnvelope, explainNetworkError } from './envelope';

describe('response envelope', () => {
  const base = { method: 'get', url: 'http://h/x', status: 200, statusText: 'OK', headers: { 'Content-Type': 'application/json', 'Set-Cookie': ['a', 'b'] } };

  test('JSON parses into body; header names are lower-cased; multi-valued headers stay arrays', () => {
    expect(buildEnvelope({ ...base, raw: Buffer.from('{"a":1}') })).toEqual({
      ok: true,
      method: 'GET',
      url: 'http://h/x',
      status: 200,
      statusText: 'OK',
      headers: { 'content-type': 'application/json', 'set-cookie': ['a', 'b'] },
      body: { a: 1 },
    });
  });

  test('a body that is not JSON is text plus parseError; a JSON string body is a body', () => {
    expect(buildEnvelope({ ...base, status: 502, statusText: '', raw: 'oops' })).toMatchObject({
      ok: false,
      statusText: 'Bad Gateway',
      text: 'oops',
      parseError: { name: 'SyntaxError' },
    });
    expect(buildEnvelope({ ...base, raw: '"just a string"' }).body).toBe('just a string');
  });

  test('ok is true for 2xx only', () => {
    expect(buildEnvelope({ ...base, status: 204, raw: undefined })).toMatchObject({ ok: true, body: null });
    expect(buildEnvelope({ ...base, status: 302, raw: '' }).ok).toBe(false);
  });

  test('network errors become plain-language strings by code', () => {
    const t = 'GET http://h/x';
    expect(explainNetworkError({ code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND h' }, t, 10).message).toBe(
      'The API call could not be made: GET http://h/x: the host name does not resolve (getaddrinfo ENOTFOUND h)',
    );
    expect(explainNetworkError({ code: 'ECONNABORTED', message: 'timeout of 10ms exceeded' }, t, 10).code).toBe('TIMEOUT');
    expect(explainNetworkError({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT', message: 'self-signed certificate' }, t, 10).code).toBe('TLS_FAILURE');
    expect(explainNetworkError({ code: 'ECONNRESET', message: 'socket hang up' }, t, 10).code).toBe('CONNECTION_RESET');
    expect(explainNetworkError({ code: 'ECONNRESET', message: 'socket hang up' }, 'GET https://h/x', 10, { clientCertificate: true }).code).toBe('TLS_FAILURE');
  });
});
