/**
 * openapi/integrations/ad-gateway.yaml as an integration model: it must import into an orchestration platform
 * with every operation as a task (none dropped), each behind the bearer scheme, and name exactly the operations
 * the gateway serves. No directory needed; the gateway itself is tested in tests/integration/ad-gateway.test.ts.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { loadIntegrationModelFile } from '../../integration-model';
import { GATEWAY_SPEC_PATH, gatewayOperationIds } from '../../server/gateway';

interface MediaType {
  schema?: { $ref?: string };
  example?: unknown;
  examples?: unknown;
}
interface Operation {
  operationId: string;
  tags?: string[];
  summary?: string;
  responses: Record<string, { $ref?: string; content?: Record<string, MediaType> }>;
  requestBody?: { content: Record<string, MediaType> };
}

describe('the AD gateway integration model', () => {
  test('loads with every operation, none dropped, each behind bearerAuth, matching the handler table', async () => {
    const model = await loadIntegrationModelFile(GATEWAY_SPEC_PATH);
    expect(model.dropped).toEqual([]);
    expect(model.servers).toHaveLength(1);
    expect(model.operations.map((o) => o.operationId).sort()).toEqual([...gatewayOperationIds].sort());
    for (const op of model.operations) {
      expect({ id: op.operationId, security: op.security }).toEqual({ id: op.operationId, security: [{ bearerAuth: [] }] });
      expect(op.tags.length).toBeGreaterThan(0);
      const scopes = op.extensions['x-required-scopes'] as string[];
      // Reads need admin:read, changes admin:* — the service's own scopes, no new ones.
      expect(scopes).toEqual([op.method === 'GET' ? 'admin:read' : 'admin:*']);
    }
  });

  test('is OpenAPI 3.0.3 with unique operationIds, named schemas and an example for every success, problem responses by reference', () => {
    const doc = parse(readFileSync(GATEWAY_SPEC_PATH, 'utf8')) as { openapi: string; paths: Record<string, Record<string, Operation>> };
    expect(doc.openapi).toBe('3.0.3');
    const ops = Object.values(doc.paths).flatMap((item) => Object.values(item));
    const ids = ops.map((o) => o.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const op of ops) {
      const ok = op.responses['200']?.content?.['application/json'];
      expect({ id: op.operationId, named: ok?.schema?.$ref?.startsWith('#/components/schemas/'), example: Boolean(ok?.example ?? ok?.examples), summary: Boolean(op.summary) })
        .toEqual({ id: op.operationId, named: true, example: true, summary: true });
      if (op.requestBody) expect(op.requestBody.content['application/json']?.schema?.$ref).toMatch(/^#\/components\/schemas\//);
      for (const [status, r] of Object.entries(op.responses)) {
        if (status !== '200') expect(r.$ref).toBe(`#/components/responses/Problem${status}`);
      }
    }
  });
});
