import { readFileSync } from 'node:fs';
import { strictSchemaValidator } from '../tests/support/strict-task-schemas';
import { projectPath } from '../adapter';
import { getOperation, loadIntegrationModel, operationInputSchema, operationOutputSchema, responseEnvelopeSchema, type IntegrationModel, type JsonSchema } from './index';

const fixture = (name: string) => readFileSync(projectPath('tests', 'fixtures', 'integration-models', name), 'utf8');

// Strict mode (less its style lints for types, required and tuples) proves the schemas carry no OpenAPI-only keywords (nullable, discriminator, example, …).
const ajv = strictSchemaValidator({ allErrors: true });
const compile = (schema: JsonSchema) => ajv.compile(schema as object);

describe('task input and output schemas', () => {
  let petstore: IntegrationModel;
  let inventory: IntegrationModel;
  beforeAll(async () => {
    petstore = await loadIntegrationModel(fixture('petstore-3.0.yaml'));
    inventory = await loadIntegrationModel(fixture('inventory-3.1.json'));
  });

  it('every operation of every fixture model has strict-compilable, JSON-serialisable schemas', async () => {
    for (const name of ['petstore-3.0.yaml', 'inventory-3.1.json', 'legacy-swagger-2.0.json', 'dynamic-key.yaml', 'operation-ids.yaml']) {
      const model = await loadIntegrationModel(fixture(name));
      for (const op of model.operations) {
        for (const schema of [operationInputSchema(op), operationOutputSchema(op)]) {
          expect(() => compile(schema)).not.toThrow();
          expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
        }
      }
    }
  });

  it('input: sections by location, required where a parameter or the body is', () => {
    const list = operationInputSchema(getOperation(petstore, 'listPets'));
    expect(list).toEqual({
      title: 'listPets input',
      type: 'object',
      properties: {
        query: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 }, status: { type: 'string', enum: ['available', 'sold'] } },
          additionalProperties: false,
        },
        headers: { type: 'object', properties: { 'X-Request-Id': { type: 'string' } }, required: ['X-Request-Id'], additionalProperties: false },
      },
      required: ['headers'],
      additionalProperties: false,
    });
    const validate = compile(list);
    expect(validate({ headers: { 'X-Request-Id': 'r1' }, query: { limit: 5 } })).toBe(true);
    expect(validate({ query: { limit: 5 } })).toBe(false);
    expect(validate({ headers: { 'X-Request-Id': 'r1' }, query: { limit: 500 } })).toBe(false);
    expect(validate({ headers: { 'X-Request-Id': 'r1' }, body: {} })).toBe(false);
  });

  it('input: path and cookie parameters with their descriptions, and a typed body', () => {
    const get = operationInputSchema(getOperation(petstore, 'getPet'));
    expect(get).toMatchObject({
      properties: {
        path: { properties: { petId: { type: 'integer', exclusiveMinimum: 0, description: 'The pet.' } }, required: ['petId'] },
        cookies: { properties: { session: { type: 'string' } } },
      },
      required: ['path'],
    });
    expect(compile(get)({ path: { petId: 0 } })).toBe(false);
    expect(compile(get)({ path: { petId: 1 } })).toBe(true);

    const create = compile(operationInputSchema(getOperation(petstore, 'createPet')));
    expect(create({ body: { name: 'Rex', tag: null, mood: null } })).toBe(true);
    expect(create({ body: { name: 'Rex', mood: 'angry' } })).toBe(false);
    expect(create({ body: { name: '' } })).toBe(false);
    expect(create({})).toBe(false);
  });

  it('input: a recursive schema goes to $defs and still validates at depth', () => {
    const schema = operationInputSchema(getOperation(petstore, 'putCategory')) as Record<string, unknown>;
    expect(schema.$defs).toEqual({
      Category: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#/$defs/Category' } } } },
    });
    expect(schema.required).toEqual(['path']); // the body is optional here
    const validate = compile(schema);
    expect(validate({ path: { id: 'c1' }, body: { name: 'root', children: [{ name: 'a', children: [{ name: 'b' }] }] } })).toBe(true);
    expect(validate({ path: { id: 'c1' }, body: { name: 'root', children: [{ name: 'a', children: [{ nom: 'b' }] }] } })).toBe(false);
  });

  it('input: OpenAPI 3.1 schemas pass through as JSON Schema 2020-12', () => {
    const validate = compile(operationInputSchema(getOperation(inventory, 'patchItem')));
    expect(validate({ path: { sku: 'AB-1' }, body: { note: null } })).toBe(true);
    expect(validate({ path: { sku: 'ab 1' }, body: { note: null } })).toBe(false);
    expect(validate({ path: { sku: 'AB-1' }, body: {} })).toBe(false);
  });

  it('output: the response envelope with body typed from the 2xx responses', () => {
    const output = operationOutputSchema(getOperation(petstore, 'getPet')) as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(output.properties)).toEqual(['ok', 'method', 'url', 'status', 'statusText', 'headers', 'body', 'text', 'parseError']);
    expect(output.required).toEqual(['ok', 'method', 'url', 'status', 'statusText', 'headers']);
    expect(output.properties.body).toMatchObject({ description: 'The pet.', allOf: [{ type: 'object' }, { required: ['id'] }] });

    const validate = compile(output);
    const envelope = { ok: true, method: 'GET', url: 'https://pets.example.test/api/v1/pets/7', status: 200, statusText: 'OK', headers: { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] } };
    expect(validate({ ...envelope, body: { id: 7, name: 'Rex' } })).toBe(true);
    expect(validate({ ...envelope, body: { name: 'Rex' } })).toBe(false);
    expect(validate({ ...envelope, body: { id: 7, name: 'Rex' }, method: 'FETCH' })).toBe(false);
    // A body that did not parse: text and parseError instead.
    expect(validate({ ...envelope, text: '<html/>', parseError: { name: 'SyntaxError', message: 'Unexpected token <' } })).toBe(true);
  });

  it('output: several 2xx bodies become anyOf; no content leaves body open; non-2xx responses do not count', () => {
    const create = operationOutputSchema(getOperation(petstore, 'createPet')) as { properties: { body: { anyOf: unknown[]; description: string } } };
    expect(create.properties.body.anyOf).toHaveLength(2);
    expect(create.properties.body.description).toBe('Created. / Accepted for later.');
    const validate = compile(create);
    const envelope = { ok: true, method: 'POST', url: 'u', status: 202, statusText: 'Accepted', headers: {} };
    expect(validate({ ...envelope, body: { jobId: 'j1' } })).toBe(true);
    expect(validate({ ...envelope, body: { other: 1 } })).toBe(false);

    expect((operationOutputSchema(getOperation(petstore, 'deletePet')) as { properties: { body: unknown } }).properties.body).toEqual({ description: 'Deleted.' });
    // listPets has a default (error) response; only its 200 types the body.
    expect((operationOutputSchema(getOperation(petstore, 'listPets')) as { properties: { body: { type: string } } }).properties.body.type).toBe('array');
  });

  it('responseEnvelopeSchema() describes any call, with an open body', () => {
    const validate = compile(responseEnvelopeSchema());
    expect(validate({ ok: false, method: 'GET', url: 'u', status: 404, statusText: 'Not Found', headers: {}, body: { detail: 'x' } })).toBe(true);
    expect(validate({ ok: false, method: 'GET', url: 'u', status: 404, headers: {} })).toBe(false);
  });
});
