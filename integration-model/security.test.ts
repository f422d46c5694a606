import { readFileSync } from 'node:fs';
import { projectPath } from '../adapter';
import { IntegrationModelError, loadIntegrationModel, type SecurityScheme } from './index';

const fixture = (name: string) => readFileSync(projectPath('tests', 'fixtures', 'integration-models', name), 'utf8');

/** A minimal valid 3.x document with these schemes, each applied to one operation. */
function withSchemes(schemes: Record<string, unknown>, openapi = '3.0.3') {
  return {
    openapi,
    info: { title: 'S', version: '1' },
    servers: [{ url: 'https://s.test' }],
    paths: Object.fromEntries(
      Object.keys(schemes).map((name, i) => [`/op${i}`, { get: { operationId: `op${i}`, security: [{ [name]: [] }], responses: { '200': { description: 'ok' } } } }]),
    ),
    components: { securitySchemes: schemes },
  };
}

describe('security schemes', () => {
  it('reads http basic and bearer, apiKey in header/query/cookie, oauth2 flows and OpenID Connect', async () => {
    const model = await loadIntegrationModel(fixture('petstore-3.0.yaml'));
    const byName = Object.fromEntries(model.securitySchemes.map((s) => [s.name, s]));
    expect(byName.bearer).toEqual({ name: 'bearer', kind: 'httpBearer', bearerFormat: 'JWT', parameters: [], extensions: {} });
    expect(byName.basic).toEqual({ name: 'basic', kind: 'httpBasic', parameters: [], extensions: {} });
    expect(byName.apiKey).toEqual({ name: 'apiKey', kind: 'apiKey', in: 'query', parameterName: 'api_key', parameters: [], extensions: {} });
    expect(byName.oauth).toEqual({
      name: 'oauth',
      kind: 'oauth2',
      description: 'Pet store OAuth.',
      parameters: [],
      extensions: {},
      flows: {
        clientCredentials: { tokenUrl: 'https://auth.example.test/token', refreshUrl: 'https://auth.example.test/refresh', scopes: { 'pets:write': 'Change pets' } },
        password: { tokenUrl: 'https://auth.example.test/token', scopes: {} },
        authorizationCode: { authorizationUrl: 'https://auth.example.test/authorize', tokenUrl: 'https://auth.example.test/token', scopes: { 'pets:read': 'Read pets' } },
      },
    });
    expect(byName.oidc).toEqual({ name: 'oidc', kind: 'openIdConnect', openIdConnectUrl: 'https://auth.example.test/.well-known/openid-configuration', parameters: [], extensions: {} });
    // A scheme the runtime cannot apply is listed as such, and the model says so.
    expect(byName.unused).toEqual({ name: 'unused', kind: 'unsupported', type: 'http', scheme: 'digest', parameters: [], extensions: {} });
    expect(model.warnings.map((w) => w.path)).toEqual(['/components/securitySchemes/unused/scheme', '/components/securitySchemes/unused']);
    expect(model.warnings[0]).toMatchObject({ message: "HTTP authentication scheme 'digest' is not supported (basic, bearer, negotiate and ntlm are)", line: expect.any(Number) });
  });

  it('reads http negotiate and ntlm (IIS offers both) as the negotiate and ntlm authentication types', async () => {
    const model = await loadIntegrationModel(withSchemes({ kerberos: { type: 'http', scheme: 'Negotiate' }, windows: { type: 'http', scheme: 'ntlm' } }));
    expect(model.securitySchemes.map((s) => [s.name, s.kind])).toEqual([['kerberos', 'httpNegotiate'], ['windows', 'httpNtlm']]);
    expect(model.warnings).toEqual([]);
  });

  it('reads an apiKey scheme in a cookie', async () => {
    const model = await loadIntegrationModel(withSchemes({ c: { type: 'apiKey', in: 'cookie', name: 'SESSION' } }));
    expect(model.securitySchemes).toEqual([{ name: 'c', kind: 'apiKey', in: 'cookie', parameterName: 'SESSION', parameters: [], extensions: {} }]);
  });

  it('reads mutualTLS (OpenAPI 3.1)', async () => {
    const model = await loadIntegrationModel(fixture('inventory-3.1.json'));
    expect(model.securitySchemes).toEqual([{ name: 'mtls', kind: 'mutualTLS', description: 'Client certificate.', parameters: [], extensions: {} }]);
  });

  it('reads x-itential-dynamic-retrieval and x-itential-parameters as Itential places them on an apiKey scheme', async () => {
    const model = await loadIntegrationModel(fixture('dynamic-key.yaml'));
    const [scheme] = model.securitySchemes;
    expect(scheme).toMatchObject({
      name: 'dynamicKey',
      kind: 'apiKey',
      in: 'header',
      parameterName: 'my_auth',
      dynamicRetrieval: { method: 'POST', url: 'https://keyed.example.test/api/v2/key', responsePointer: '/credentials/key' },
      parameters: [{ name: 'password', in: 'query', useIn: ['key'], variable: 'keyPassword', schema: { type: 'string' } }],
    });
    expect(model.warnings).toEqual([]);
  });

  it('keeps x-itential-dynamic-retrieval through the Swagger 2.0 conversion', async () => {
    const model = await loadIntegrationModel({
      swagger: '2.0',
      info: { title: 'K', version: '1' },
      host: 'k.test',
      securityDefinitions: { k: { type: 'apiKey', in: 'header', name: 'K', 'x-itential-dynamic-retrieval': { method: 'GET', url: 'https://k.test/key', responsePointer: '/key' } } },
      security: [{ k: [] }],
      paths: { '/a': { get: { operationId: 'a', responses: { '200': { description: 'ok' } } } } },
    });
    expect(model.securitySchemes[0]).toMatchObject({ kind: 'apiKey', parameterName: 'K', dynamicRetrieval: { method: 'GET', url: 'https://k.test/key', responsePointer: '/key' } });
    expect(model.warnings).toEqual([]);
  });

  it('an empty response pointer means the whole body is the key', async () => {
    const model = await loadIntegrationModel(
      withSchemes({ k: { type: 'apiKey', in: 'header', name: 'K', 'x-itential-dynamic-retrieval': { method: 'GET', url: 'https://s.test/key', responsePointer: '' } } }),
    );
    const [scheme] = model.securitySchemes as [Extract<SecurityScheme, { kind: 'apiKey' }>];
    expect(scheme.dynamicRetrieval).toEqual({ method: 'GET', url: 'https://s.test/key' });
  });

  it('refuses a malformed x-itential-dynamic-retrieval, naming each field', async () => {
    const error = await loadIntegrationModel(
      withSchemes({ k: { type: 'apiKey', in: 'header', name: 'K', 'x-itential-dynamic-retrieval': { method: 'DELETE', responsePointer: 'credentials', extra: 1 } } }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrationModelError);
    expect((error as IntegrationModelError).issues).toEqual([
      { path: '/components/securitySchemes/k/x-itential-dynamic-retrieval/method', message: 'must be one of GET, POST, HEAD, PUT, PATCH' },
      { path: '/components/securitySchemes/k/x-itential-dynamic-retrieval/url', message: 'must be a non-empty string' },
      { path: '/components/securitySchemes/k/x-itential-dynamic-retrieval/responsePointer', message: "must be a JSON Pointer ('' or starting with '/')" },
      { path: '/components/securitySchemes/k/x-itential-dynamic-retrieval/extra', message: "unknown property 'extra'" },
    ]);
  });

  it('warns that dynamic retrieval on a non-apiKey scheme is ignored', async () => {
    const model = await loadIntegrationModel(withSchemes({ b: { type: 'http', scheme: 'bearer', 'x-itential-dynamic-retrieval': { method: 'GET', url: 'https://s.test/key' } } }));
    expect(model.securitySchemes[0]?.kind).toBe('httpBearer');
    expect(model.warnings).toEqual([{ path: '/components/securitySchemes/b/x-itential-dynamic-retrieval', message: "ignored: dynamic retrieval applies to apiKey schemes only, this one is 'http'" }]);
  });

  it('reads AWS Signature v4 the Itential way: an apiKey scheme marked x-amazon-apigateway-authtype', async () => {
    const model = await loadIntegrationModel(
      withSchemes({ Authorization: { type: 'apiKey', in: 'header', name: 'Authorization', 'x-amazon-apigateway-authtype': 'awsSigv4' } }),
    );
    expect(model.securitySchemes).toEqual([
      { name: 'Authorization', kind: 'awsSigV4', in: 'header', parameterName: 'Authorization', parameters: [], extensions: { 'x-amazon-apigateway-authtype': 'awsSigv4' } },
    ]);
  });

  it('keeps x-itential-parameters of oauth2 (token and refresh requests) and treats empty URLs as "from configuration"', async () => {
    const model = await loadIntegrationModel(
      withSchemes({
        oauth2: {
          type: 'oauth2',
          flows: { clientCredentials: { tokenUrl: '', refreshUrl: '', scopes: {} } },
          'x-itential-parameters': [
            { name: 'client_assertion', in: 'header', 'x-itential-use-in': ['refresh', 'token'], 'x-itential-variable': 'clientAssertion' },
            { name: 'nice_one', in: 'query', 'x-itential-use-in': ['refresh'], schema: { type: 'number' } },
          ],
        },
      }),
    );
    expect(model.securitySchemes[0]).toMatchObject({
      kind: 'oauth2',
      flows: { clientCredentials: { scopes: {} } },
      parameters: [
        { name: 'client_assertion', in: 'header', useIn: ['refresh', 'token'], variable: 'clientAssertion' },
        { name: 'nice_one', in: 'query', useIn: ['refresh'], schema: { type: 'number' } },
      ],
    });
  });

  it('refuses a security requirement naming an undeclared scheme', async () => {
    const doc = withSchemes({ basic: { type: 'http', scheme: 'basic' } });
    (doc as Record<string, unknown>).security = [{ basic: [] }, { missing: [] }];
    const error = (await loadIntegrationModel(doc).catch((e: unknown) => e)) as IntegrationModelError;
    expect(error.issues).toEqual([{ path: '/security/1/missing', message: "security scheme 'missing' is not declared" }]);
  });
});
