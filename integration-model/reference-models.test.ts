import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { projectPath } from '../adapter';
import { rejectedTaskSchemas } from '../tests/support/strict-task-schemas';
import { HTTP_METHODS, loadIntegrationModel, loadIntegrationModelFile, operationInputSchema, operationOutputSchema, type IntegrationModel } from './index';

/**
 * Our own API must import into an Itential-style platform as an integration model (design: "The service is
 * itself an integration model"): OpenAPI 3.0.3, one server, a unique operationId everywhere, every declared
 * security scheme applied. A failure here names what to fix in openapi/provisio.yaml.
 */
describe('openapi/provisio.yaml as an integration model', () => {
  const specPath = projectPath('openapi', 'provisio.yaml');
  let model: IntegrationModel;
  let raw: Record<string, unknown>;
  beforeAll(async () => {
    raw = parse(readFileSync(specPath, 'utf8')) as Record<string, unknown>;
    model = await loadIntegrationModelFile(specPath);
  });

  it('is OpenAPI 3.0.3 (Itential rejects 3.0.4) and loads without warnings', () => {
    expect(model.sourceVersion).toBe('3.0.3');
    expect(model.id).toBe(`provisio:${String((raw.info as { version: string }).version)}`);
    expect(model.warnings).toEqual([]);
  });

  it('has exactly one server entry', () => {
    expect(raw.servers).toHaveLength(1);
    expect(model.servers).toHaveLength(1);
  });

  it('gives every operation an operationId, unique, so no task is dropped', () => {
    const missing: string[] = [];
    for (const [path, item] of Object.entries(raw.paths as Record<string, Record<string, { operationId?: string }>>)) {
      for (const method of HTTP_METHODS) {
        const op = item[method.toLowerCase()];
        if (op && !op.operationId) missing.push(`${method} ${path}`);
      }
    }
    expect(missing).toEqual([]);
    expect(model.dropped).toEqual([]);
    expect(model.operations.length).toBeGreaterThan(0);
  });

  it('applies every declared security scheme to some operation', () => {
    const declared = model.securitySchemes.map((s) => s.name).sort();
    const applied = [...new Set(model.operations.flatMap((op) => op.security.flatMap((alt) => Object.keys(alt))))].sort();
    expect(declared.filter((name) => !applied.includes(name))).toEqual([]);
    expect(model.securitySchemes.filter((s) => s.kind === 'unsupported')).toEqual([]);
  });

  it('yields task schemas a strict JSON Schema validator accepts, for every operation', () => {
    expect(rejectedTaskSchemas(model)).toEqual([]);
  });
});

// Itential's own ServiceNow Table model, read from the shared reference when this checkout has it (never copied in).
const serviceNowPath = '/work/shared/reference/itential-integration-model-servicenow-table.json';
(existsSync(serviceNowPath) ? describe : describe.skip)('the Itential reference model (ServiceNow Table)', () => {
  it('loads, and reports its operations without operationId as dropped rather than losing them silently', async () => {
    const model = await loadIntegrationModel(readFileSync(serviceNowPath, 'utf8'));
    expect(model).toMatchObject({ id: 'ServiceNow Table:latest', sourceVersion: '3.0.1', servers: [{ url: 'https://example.service-now.com:443' }] });
    expect(model.securitySchemes).toEqual([{ name: 'Basic', kind: 'httpBasic', parameters: [], extensions: {} }]);
    expect(model.dropped).toEqual([
      { method: 'GET', path: '/api/now/table/{tableName}', reason: 'missing operationId' },
      { method: 'POST', path: '/api/now/table/{tableName}', reason: 'missing operationId' },
      { method: 'GET', path: '/api/now/table/{tableName}/{sys_id}', reason: 'missing operationId' },
      { method: 'PUT', path: '/api/now/table/{tableName}/{sys_id}', reason: 'missing operationId' },
      { method: 'DELETE', path: '/api/now/table/{tableName}/{sys_id}', reason: 'missing operationId' },
      { method: 'PATCH', path: '/api/now/table/{tableName}/{sys_id}', reason: 'missing operationId' },
    ]);
    expect(model.operations).toEqual([]);
    expect(model.verbs).toEqual([]);
  });

  it('once given operationIds, its empty schemas ({}) become open task inputs and outputs', async () => {
    const doc = JSON.parse(readFileSync(serviceNowPath, 'utf8')) as { paths: Record<string, Record<string, { operationId?: string }>> };
    let n = 0;
    for (const item of Object.values(doc.paths)) for (const [method, op] of Object.entries(item)) op.operationId = `${method}${++n}`;
    const model = await loadIntegrationModel(doc);
    expect(model.dropped).toEqual([]);
    expect(model.verbs).toEqual(['GET', 'PUT', 'POST', 'DELETE', 'PATCH']);
    const post = model.operations.find((o) => o.method === 'POST');
    expect(post?.requestBody).toEqual({ required: false, contentTypes: ['application/json', 'application/xml', 'text/xml'], contentType: 'application/json', schema: {} });
    expect(post?.security).toEqual([{ Basic: [] }]);
    expect(operationInputSchema(post!)).toMatchObject({ properties: { path: { required: ['tableName'] }, body: {} }, required: ['path'] });
    expect((operationOutputSchema(post!) as { properties: { body: unknown } }).properties.body).toEqual({ description: 'ok' });
    expect(model.warnings).toEqual([]);
  });
});
