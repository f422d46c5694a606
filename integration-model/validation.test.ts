import { readFileSync } from 'node:fs';
import { projectPath } from '../adapter';
import { IntegrationModelError, loadIntegrationModel, type ModelIssue } from './index';

const fixture = (name: string) => readFileSync(projectPath('tests', 'fixtures', 'integration-models', name), 'utf8');

async function issuesOf(source: string | object): Promise<readonly ModelIssue[]> {
  const error = await loadIntegrationModel(source).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IntegrationModelError);
  return (error as IntegrationModelError).issues;
}

const doc30 = (paths: object, extra: object = {}) => ({ openapi: '3.0.3', info: { title: 'T', version: '1' }, servers: [{ url: 'https://t.test' }], paths, ...extra });
const ok = { '200': { description: 'ok' } };

describe('validation says where a model is wrong', () => {
  it('reports a wrong type and a dangling $ref together, with pointers and lines', async () => {
    const issues = await issuesOf(fixture('invalid-model.yaml'));
    expect(issues).toEqual([
      { path: '/paths/~1things/get/parameters/0/required', message: 'must be boolean', line: 12, column: 11 },
      {
        path: '/paths/~1things/get/responses/200/content/application~1json/schema/$ref',
        message: "$ref '#/components/schemas/Thing' points to nothing in this document",
        line: 19,
        column: 25,
      },
    ]);
  });

  it('puts the pointer and line in the error message', async () => {
    await expect(loadIntegrationModel(fixture('invalid-model.yaml'))).rejects.toThrow(
      "invalid integration model: /paths/~1things/get/parameters/0/required (line 12:11): must be boolean; /paths/~1things/get/responses/200/content/application~1json/schema/$ref (line 19:25): $ref '#/components/schemas/Thing' points to nothing in this document",
    );
  });

  it('gives line numbers for JSON text too (pointing at the key)', async () => {
    expect(await issuesOf('{"openapi": "3.0.3",\n "info": {"title": "T", "version": 1},\n "paths": {}}')).toEqual([
      { path: '/info/version', message: 'must be string', line: 2, column: 25 },
    ]);
  });

  it('condenses the official schema\'s oneOf cascades to the specific complaint', async () => {
    expect(await issuesOf(doc30({ '/a': { get: { operationId: 'a', responses: { '200': { description: 'ok', content: { 'application/json': { schema: { type: 'strin' } } } } } } } }))).toEqual([
      { path: '/paths/~1a/get/responses/200/content/application~1json/schema/type', message: 'must be one of "array", "boolean", "integer", "number", "object", "string"' },
    ]);
    expect(await issuesOf(doc30({ '/a': { get: { operationId: 'a', responses: { '200': { content: {} } } } } }))).toEqual([
      { path: '/paths/~1a/get/responses/200', message: "missing required property 'description'" },
    ]);
    expect(await issuesOf(doc30({ '/a': { get: { operationId: 'a', sumary: 'typo', responses: ok } } }))).toEqual([
      { path: '/paths/~1a/get/sumary', message: "unknown property 'sumary' (extensions must start with 'x-')" },
    ]);
    expect(await issuesOf({ openapi: '3.0.3', info: { title: 'T' }, paths: {} })).toEqual([{ path: '/info', message: "missing required property 'version'" }]);
  });

  it('names the allowed values when a parameter location is wrong', async () => {
    const issues = await issuesOf(doc30({ '/a': { get: { operationId: 'a', parameters: [{ name: 'x', in: 'body', schema: {} }], responses: ok } } }));
    expect(issues).toContainEqual({ path: '/paths/~1a/get/parameters/0/in', message: 'must be one of "path", "query", "header", "cookie"' });
  });

  it('validates OpenAPI 3.1 Schema Objects as JSON Schema 2020-12', async () => {
    const base = { openapi: '3.1.0', info: { title: 'T', version: '1' } };
    expect(await issuesOf({ ...base, paths: { '/a': { get: { operationId: 'a', responses: { '200': { description: 'ok', content: { 'application/json': { schema: { type: 'strin' } } } } } } } } })).toEqual([
      { path: '/paths/~1a/get/responses/200/content/application~1json/schema/type', message: 'must be one of "array", "boolean", "integer", "null", "number", "object", "string"' },
    ]);
    expect(await issuesOf({ ...base, components: { schemas: { A: { type: 'object', required: 'x' } } } })).toEqual([
      { path: '/components/schemas/A/required', message: 'must be array' },
    ]);
    expect(await issuesOf({ ...base, paths: { '/a': { get: { operationId: 'a', sumary: 'typo', responses: ok } } } })).toEqual([
      { path: '/paths/~1a/get/sumary', message: "unknown property 'sumary' (extensions must start with 'x-')" },
    ]);
    // 3.1 needs paths, components or webhooks.
    expect(await issuesOf(base)).toContainEqual({ path: '', message: "missing required property 'paths'" });
  });

  it('validates Swagger 2.0 before converting it, with pointers into the 2.0 document', async () => {
    const swagger = (paths: object) => ({ swagger: '2.0', info: { title: 'T', version: '1' }, paths });
    expect(await issuesOf(swagger({ '/a': { get: { responses: { '200': { description: 'ok', schema: { $ref: '#/definitions/Nope' } } } } } }))).toEqual([
      { path: '/paths/~1a/get/responses/200/schema/$ref', message: "$ref '#/definitions/Nope' points to nothing in this document" },
    ]);
    const issues = await issuesOf(swagger({ '/a': { get: { parameters: [{ name: 'q', in: 'query', type: 'strin' }], responses: ok } } }));
    expect(issues).toContainEqual({ path: '/paths/~1a/get/parameters/0/type', message: 'must be one of "string", "number", "boolean", "integer", "array", "file"' });
  });

  it('refuses external and non-pointer $refs: a model is one self-contained document', async () => {
    expect(await issuesOf(doc30({ '/a': { get: { operationId: 'a', responses: { '200': { $ref: 'common.yaml#/responses/Ok' } } } } }))).toEqual([
      { path: '/paths/~1a/get/responses/200/$ref', message: "external $ref 'common.yaml#/responses/Ok' is not supported: bundle the model into one document" },
    ]);
    expect(
      await issuesOf({
        openapi: '3.1.0',
        info: { title: 'T', version: '1' },
        paths: { '/a': { get: { operationId: 'a', responses: { '200': { description: 'ok', content: { 'application/json': { schema: { $ref: '#thing' } } } } } } } },
      }),
    ).toEqual([{ path: '/paths/~1a/get/responses/200/content/application~1json/schema/$ref', message: "$ref '#thing' is not a JSON Pointer (anchors are not supported)" }]);
  });

  it('lists at most 100 problems, then says how many more there are', async () => {
    const paths = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`/p${i}`, { get: { operationId: `p${i}`, responses: { '200': { $ref: `#/nope/${i}` } } } }]));
    const issues = await issuesOf(doc30(paths));
    expect(issues).toHaveLength(101);
    expect(issues[100]).toEqual({ path: '', message: '20 more problems not listed' });
  });

  it('does not mistake a "$ref" key inside an example for a reference', async () => {
    const model = await loadIntegrationModel(
      doc30({
        '/a': { get: { operationId: 'a', responses: { '200': { description: 'ok', content: { 'application/json': { schema: { type: 'object' }, example: { $ref: 'not-a-ref' } } } } } } },
      }),
    );
    expect(model.operations).toHaveLength(1);
  });

  it('resolves percent-encoded and escaped pointers in $refs', async () => {
    const model = await loadIntegrationModel(
      doc30(
        { '/a': { get: { operationId: 'a', responses: { '200': { description: 'ok', content: { 'application/json': { schema: { $ref: '#/components/schemas/Big%20Thing~1v2' } } } } } } } },
        { components: { schemas: { 'Big Thing/v2': { type: 'integer' } } } },
      ),
    );
    expect(model.operations[0]?.responses[0]?.schema).toEqual({ type: 'integer' });
  });
});
