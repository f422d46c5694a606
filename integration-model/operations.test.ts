import { readFileSync } from 'node:fs';
import { projectPath } from '../adapter';
import { getOperation, IntegrationModelError, loadIntegrationModel, type IntegrationModel } from './index';

const fixture = (name: string) => readFileSync(projectPath('tests', 'fixtures', 'integration-models', name), 'utf8');

describe('operations', () => {
  let petstore: IntegrationModel;
  beforeAll(async () => {
    petstore = await loadIntegrationModel(fixture('petstore-3.0.yaml'));
  });

  it('reads method, path, summary, tags and merged parameters; drops the headers OpenAPI says to ignore', () => {
    const list = getOperation(petstore, 'listPets');
    expect(list).toMatchObject({ operationId: 'listPets', method: 'GET', path: '/pets', summary: 'List pets', tags: ['pets'], deprecated: false });
    expect(list.parameters).toEqual([
      { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
      { name: 'status', in: 'query', required: false, schema: { type: 'string', enum: ['available', 'sold'] } },
      { name: 'X-Request-Id', in: 'header', required: true, schema: { type: 'string' } },
    ]);
    expect(list.requestBody).toBeUndefined();
  });

  it('takes path-item parameters into every operation of the path, always required for path parameters', () => {
    const get = getOperation(petstore, 'getPet');
    expect(get.parameters).toEqual([
      // OpenAPI 3.0's boolean exclusiveMinimum becomes JSON Schema's numeric one.
      { name: 'petId', in: 'path', required: true, description: 'The pet.', schema: { type: 'integer', exclusiveMinimum: 0 } },
      { name: 'session', in: 'cookie', required: false, schema: { type: 'string' } },
    ]);
    expect(getOperation(petstore, 'deletePet').parameters.map((p) => p.name)).toEqual(['petId']);
  });

  it('reads $ref request bodies and responses, preferring JSON media types', () => {
    const create = getOperation(petstore, 'createPet');
    expect(create.requestBody).toMatchObject({ required: true, description: 'The pet to create.', contentTypes: ['application/json'], contentType: 'application/json' });
    expect(create.requestBody?.schema).toMatchObject({
      type: 'object',
      required: ['name'],
      properties: {
        name: { type: 'string', minLength: 1, examples: ['Rex'] },
        tag: { type: ['string', 'null'] },
        mood: { type: ['string', 'null'], enum: ['calm', 'wild', null] },
      },
    });
    expect(create.responses.map((r) => [r.status, r.contentTypes])).toEqual([
      ['201', ['application/json']],
      ['202', ['application/json']],
    ]);
    const get = getOperation(petstore, 'getPet');
    expect(get.responses[0]).toMatchObject({ status: '200', contentTypes: ['application/xml', 'application/json'] });
    expect(get.responses[0]?.schema).toMatchObject({ allOf: [{ type: 'object' }, { required: ['id'] }] });
    const put = getOperation(petstore, 'putCategory');
    expect(put.requestBody).toMatchObject({ required: false, contentTypes: ['application/vnd.pets+json', 'text/plain'], contentType: 'application/vnd.pets+json' });
    const list = getOperation(petstore, 'listPets');
    expect(list.responses.find((r) => r.status === 'default')).toMatchObject({ description: 'An error.', contentTypes: ['application/problem+json'] });
    expect(getOperation(petstore, 'deletePet').responses).toEqual([{ status: '204', description: 'Deleted.', contentTypes: [] }]);
  });

  it('resolves per-operation security, falling back to the document default', () => {
    expect(getOperation(petstore, 'listPets').security).toEqual([{ bearer: [] }]);
    expect(getOperation(petstore, 'createPet').security).toEqual([{ oauth: ['pets:write'] }, { apiKey: [] }]);
    expect(getOperation(petstore, 'getPet').security).toEqual([{ basic: [] }]);
    expect(getOperation(petstore, 'deletePet').security).toEqual([{ oidc: ['openid'] }]);
  });

  it('drops operations without an operationId, with a shared one, or with undeclared path parameters, and says why', async () => {
    const model = await loadIntegrationModel(fixture('operation-ids.yaml'));
    expect(model.operations.map((o) => o.operationId)).toEqual(['getA']);
    expect(model.dropped).toEqual([
      { method: 'POST', path: '/a', reason: 'missing operationId' },
      { method: 'GET', path: '/b', operationId: 'sameName', reason: "duplicate operationId 'sameName' (also DELETE /c)" },
      { method: 'DELETE', path: '/c', operationId: 'sameName', reason: "duplicate operationId 'sameName' (also GET /b)" },
      { method: 'GET', path: '/d/{id}', operationId: 'getD', reason: "path parameter 'id' not declared" },
      { method: 'PUT', path: '/e', reason: 'missing operationId' },
    ]);
    // Roles follow the tasks that exist.
    expect(model.verbs).toEqual(['GET']);
  });

  it('drops an operation declaring a path parameter its path does not have', async () => {
    const model = await loadIntegrationModel({
      openapi: '3.0.3',
      info: { title: 'P', version: '1' },
      paths: { '/x': { get: { operationId: 'x', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'ok' } } } } },
    });
    expect(model.dropped).toEqual([{ method: 'GET', path: '/x', operationId: 'x', reason: "path parameter 'id' not in the path template" }]);
  });

  it('keeps $ref path items, extensions and deprecation', async () => {
    const model = await loadIntegrationModel({
      openapi: '3.1.0',
      info: { title: 'R', version: '1' },
      paths: { '/x': { $ref: '#/components/pathItems/X' } },
      components: {
        pathItems: { X: { get: { operationId: 'getX', deprecated: true, 'x-task-group': 'misc', responses: { '200': { description: 'ok' } } } } },
      },
    });
    expect(getOperation(model, 'getX')).toMatchObject({ method: 'GET', path: '/x', deprecated: true, extensions: { 'x-task-group': 'misc' }, security: [] });
  });

  it('getOperation throws UNKNOWN_OPERATION, naming a dropped operation\'s reason', async () => {
    const model = await loadIntegrationModel(fixture('operation-ids.yaml'));
    expect(() => getOperation(model, 'nope')).toThrow(new IntegrationModelError('UNKNOWN_OPERATION', [], "model 'Ids:1' has no operation 'nope'"));
    try {
      getOperation(model, 'sameName');
      throw new Error('expected a throw');
    } catch (e) {
      expect(e).toBeInstanceOf(IntegrationModelError);
      expect((e as IntegrationModelError).code).toBe('UNKNOWN_OPERATION');
      expect((e as IntegrationModelError).message).toBe("operation 'sameName' was dropped: duplicate operationId 'sameName' (also DELETE /c)");
    }
  });
});
