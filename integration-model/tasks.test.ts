import { readFileSync } from 'node:fs';
import { projectPath } from '../adapter';
import {
  buildTaskRequest,
  getOperation,
  integrationRoleKinds,
  integrationTasks,
  loadIntegrationModel,
  responseExample,
  validateTaskInput,
  type IntegrationModel,
} from './index';

const fixture = (name: string) => readFileSync(projectPath('tests', 'fixtures', 'integration-models', name), 'utf8');

describe('canvas tasks of a model', () => {
  let hello: IntegrationModel;
  let petstore: IntegrationModel;
  beforeAll(async () => {
    hello = await loadIntegrationModel(fixture('hello-inventory.yaml'));
    petstore = await loadIntegrationModel(fixture('petstore-3.0.yaml'));
  });

  it('names tasks <integration>/<operationId> and the role of their verb; roles are admin plus one per verb', () => {
    const tasks = integrationTasks(hello, 'inv');
    expect(tasks.map((t) => [t.name, t.requiredRole])).toEqual([
      ['inv/ping', 'inv:GET'],
      ['inv/listItems', 'inv:GET'],
      ['inv/createItem', 'inv:POST'],
      ['inv/getItem', 'inv:GET'],
      ['inv/deleteItem', 'inv:DELETE'],
    ]);
    expect(integrationRoleKinds(hello)).toEqual(['admin', 'GET', 'POST', 'DELETE']);
  });

  it('validates input against the task schema, naming the place', () => {
    const getItem = getOperation(hello, 'getItem');
    expect(validateTaskInput(getItem, { path: { id: 3 } })).toEqual([]);
    expect(validateTaskInput(getItem, {})).toEqual([{ path: '/path', message: 'is required' }]);
    expect(validateTaskInput(getItem, { path: { id: 0 } })[0]!.path).toBe('/path/id');
    expect(validateTaskInput(getItem, { path: { id: 1 }, query: {} })).toEqual([{ path: '/query', message: 'is not a parameter of this operation' }]);
  });

  it('builds the request: path parameters encoded, query kept typed, cookies joined, body with its media type', () => {
    const getPet = getOperation(petstore, 'getPet');
    expect(buildTaskRequest(getPet, { path: { petId: 5 }, cookies: { session: 'a b' } })).toEqual({
      method: 'GET',
      path: '/pets/5',
      headers: { Cookie: 'session=a%20b' },
    });
    const putCategory = getOperation(petstore, 'putCategory');
    expect(buildTaskRequest(putCategory, { path: { id: 'x/y' }, body: { name: 'c' } })).toEqual({
      method: 'PUT',
      path: '/categories/x%2Fy',
      headers: { 'Content-Type': 'application/vnd.pets+json' },
      body: { name: 'c' },
    });
    const list = getOperation(hello, 'listItems');
    expect(buildTaskRequest(list, { query: { limit: 3, q: 'w' } })).toMatchObject({ query: { limit: 3, q: 'w' } });
    // A JSON string body must reach the wire as a JSON string, not bare text.
    const create = getOperation(hello, 'createItem');
    expect(buildTaskRequest(create, { body: 'plain' }).body).toBe('"plain"');
  });

  it('finds the example stub mode answers with: media example, named examples, none (first 2xx), none at all', () => {
    expect(responseExample(hello, getOperation(hello, 'getItem'))).toEqual({ status: 200, contentType: 'application/json', example: { id: 7, name: 'lotus' } });
    expect(responseExample(hello, getOperation(hello, 'listItems'))?.example).toEqual([
      { id: 1, name: 'widget' },
      { id: 2, name: 'gadget' },
    ]);
    expect(responseExample(hello, getOperation(hello, 'createItem'))).toMatchObject({ status: 201, example: { id: 42, name: 'stubbed' } });
    expect(responseExample(hello, getOperation(hello, 'deleteItem'))).toEqual({ status: 204, contentType: undefined });
    // listPets declares only 200 without an example and a default.
    expect(responseExample(petstore, getOperation(petstore, 'listPets'))).toEqual({ status: 200, contentType: 'application/json' });
  });
});
