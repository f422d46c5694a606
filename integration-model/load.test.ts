import { readFileSync } from 'node:fs';
import { projectPath } from '../adapter';
import { IntegrationModelError, loadIntegrationModel, loadIntegrationModelFile } from './index';

const fixturePath = (name: string) => projectPath('tests', 'fixtures', 'integration-models', name);
const fixture = (name: string) => readFileSync(fixturePath(name), 'utf8');

/** The issues of the IntegrationModelError a load throws (fails the test when it loads). */
async function issuesOf(source: string | object) {
  const error = await loadIntegrationModel(source).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IntegrationModelError);
  expect((error as IntegrationModelError).code).toBe('INVALID_MODEL');
  return (error as IntegrationModelError).issues;
}

describe('loading models', () => {
  it('loads an OpenAPI 3.0 YAML document and names it <title>:<version>', async () => {
    const model = await loadIntegrationModel(fixture('petstore-3.0.yaml'));
    expect(model).toMatchObject({ id: 'Petstore:1.2.0', title: 'Petstore', version: '1.2.0', sourceVersion: '3.0.3', description: 'Pets, for testing integration models.' });
    expect(model.servers).toEqual([{ url: 'https://pets.example.test/api/v1' }]);
    expect(model.operations.map((o) => o.operationId)).toEqual(['listPets', 'createPet', 'getPet', 'deletePet', 'putCategory']);
    expect(model.dropped).toEqual([]);
    expect(model.verbs).toEqual(['GET', 'PUT', 'POST', 'DELETE']);
  });

  it('loads an OpenAPI 3.1 JSON document, as text and as a parsed object, without changing the object', async () => {
    const text = fixture('inventory-3.1.json');
    const object = JSON.parse(text) as Record<string, unknown>;
    const before = structuredClone(object);
    const fromText = await loadIntegrationModel(text);
    const fromObject = await loadIntegrationModel(object);
    expect(object).toEqual(before);
    expect(fromObject.operations).toEqual(fromText.operations);
    expect(fromText).toMatchObject({ id: 'Inventory:2.0.0', sourceVersion: '3.1.0', verbs: ['HEAD', 'PATCH'], dropped: [], warnings: [] });
    expect(fromText.servers).toEqual([{ url: 'https://{host}/inventory', variables: { host: { default: 'inv.example.test' } } }]);
  });

  it('converts Swagger 2.0 to OpenAPI 3 on import', async () => {
    const model = await loadIntegrationModel(fixture('legacy-swagger-2.0.json'));
    expect(model).toMatchObject({ id: 'Legacy Tickets:0.9', sourceVersion: '2.0', verbs: ['GET', 'POST', 'DELETE'], dropped: [], warnings: [] });
    expect(model.document.openapi).toBe('3.0.3');
    expect(model.document.swagger).toBeUndefined();
    expect(model.servers).toEqual([{ url: 'https://tickets.example.test:8443/rest' }]);
    const create = model.operations.find((o) => o.operationId === 'createTicket');
    expect(create?.requestBody).toMatchObject({ required: true, contentType: 'application/json' });
    expect(create?.requestBody?.schema).toMatchObject({ type: 'object', required: ['title'] });
    expect(create?.security).toEqual([{ token: [] }, { oauthApp: ['tickets'] }]);
    expect(model.operations.find((o) => o.operationId === 'deleteTicket')?.parameters).toEqual([{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }]);
  });

  it('keeps the document with its $refs for storage and client generation', async () => {
    const model = await loadIntegrationModel(fixture('petstore-3.0.yaml'));
    expect(JSON.stringify(model.document)).toContain('"$ref":"#/components/schemas/Pet"');
  });

  it('loads from a file and names the file in errors', async () => {
    await expect(loadIntegrationModelFile(fixturePath('dynamic-key.yaml'))).resolves.toMatchObject({ id: 'Dynamic Key:1.0.0' });
    await expect(loadIntegrationModelFile(fixturePath('invalid-model.yaml'))).rejects.toThrow(/invalid-model\.yaml: invalid integration model: \/paths/);
  });

  it('refuses text that is not YAML or JSON, saying where', async () => {
    expect(await issuesOf('openapi: 3.0.3\ninfo:\n  title: T\n  title: U\n')).toEqual([
      { path: '', message: 'not valid YAML or JSON: Map keys must be unique', line: 4, column: 3 },
    ]);
    const [issue] = await issuesOf('{"openapi": "3.0.3", "info": {');
    expect(issue).toMatchObject({ path: '', line: 1 });
    expect(issue?.message).toMatch(/^not valid YAML or JSON: /);
  });

  it('refuses documents that are not OpenAPI 2.0, 3.0 or 3.1', async () => {
    expect(await issuesOf('just a string')).toEqual([{ path: '', message: 'a model must be an object (an OpenAPI document)' }]);
    expect(await issuesOf([])).toEqual([{ path: '', message: 'a model must be an object (an OpenAPI document)' }]);
    expect(await issuesOf({ info: { title: 'T', version: '1' }, paths: {} })).toEqual([
      { path: '', message: "not an OpenAPI document: neither 'openapi' nor 'swagger' is present" },
    ]);
    expect(await issuesOf({ openapi: '3.2.0', info: { title: 'T', version: '1' }, paths: {} })).toEqual([
      { path: '/openapi', message: 'unsupported OpenAPI version "3.2.0": expected a string 3.0.x or 3.1.x' },
    ]);
    expect(await issuesOf({ openapi: 3.0, info: { title: 'T', version: '1' }, paths: {} })).toEqual([
      { path: '/openapi', message: 'unsupported OpenAPI version 3: expected a string 3.0.x or 3.1.x' },
    ]);
    expect(await issuesOf({ swagger: '1.2', info: { title: 'T', version: '1' } })).toEqual([
      { path: '/swagger', message: 'unsupported Swagger version "1.2": only "2.0" is converted' },
    ]);
  });

  it('refuses YAML whose aliases would expand without bound', async () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 12 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`)].join('\n');
    const [issue] = await issuesOf(bomb);
    expect(issue?.message).toMatch(/^not valid YAML or JSON: .*alias/i);
  });

  it('warns (without failing) about what Itential would not accept: several servers, 3.0.4, unused schemes', async () => {
    const model = await loadIntegrationModel({
      openapi: '3.0.4',
      info: { title: 'W', version: '1' },
      servers: [{ url: 'https://a.test' }, { url: 'https://b.test' }],
      paths: { '/x': { get: { operationId: 'x', responses: { '200': { description: 'ok' } } } } },
      components: { securitySchemes: { basic: { type: 'http', scheme: 'basic' } } },
    });
    expect(model.warnings).toEqual([
      { path: '/servers', message: 'an integration model should have exactly one server entry; this one has 2' },
      { path: '/openapi', message: 'Itential rejects OpenAPI 3.0.4; declare 3.0.3' },
      { path: '/components/securitySchemes/basic', message: "security scheme 'basic' is declared but applied to no operation" },
    ]);
  });
});
