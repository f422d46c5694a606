import Ajv2020 from 'ajv/dist/2020';
import { createIntegrationClient, type IntegrationCallResult, type IntegrationClient } from '../../adapter';
import { TASK_KIND_SPECS } from '../../workflows';
import { createMemoryLogger } from '../support/memory-logger';
import { startLoopbackServer, type LoopbackServer } from '../support/loopback-server';
import { responseEnvelopeSchema } from '../../integration-model';

// The one schema of the response envelope, held against envelopes adapter/http really builds from a real server's
// answers: JSON, text that is not JSON, an empty body, repeated headers, an error status.
describe('the response envelope schema matches what a call returns', () => {
  let server: LoopbackServer;
  let client: IntegrationClient;
  const validate = new Ajv2020({ strict: false, allErrors: true }).compile(responseEnvelopeSchema() as object);

  beforeAll(async () => {
    server = await startLoopbackServer((req, res) => {
      if (req.url === '/json') {
        res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
        res.end('{"id":7,"tags":["x"]}');
      } else if (req.url === '/html') {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html>bad gateway</html>');
      } else {
        res.writeHead(204);
        res.end();
      }
    });
    client = createIntegrationClient({ server: { protocol: 'http', host: '127.0.0.1', port: server.port } }, { logger: createMemoryLogger().logger, name: 'envelope' });
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });

  async function call(path: string): Promise<IntegrationCallResult> {
    const result = await client.call({ method: 'GET', path });
    expect(typeof result).toBe('object');
    return result;
  }

  test.each(['/json', '/html', '/empty'])('GET %s: the envelope validates', async (path) => {
    const envelope = await call(path);
    expect(validate(envelope) ? [] : validate.errors).toEqual([]);
  });

  test('every field the envelope carries is one the schema names, and the ones it always carries are required', async () => {
    const json = (await call('/json')) as unknown as Record<string, unknown>;
    const html = (await call('/html')) as unknown as Record<string, unknown>;
    const schema = responseEnvelopeSchema() as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(schema.properties).sort()).toEqual([...new Set([...Object.keys(json), ...Object.keys(html)])].sort());
    expect(schema.required.sort()).toEqual(Object.keys(json).filter((k) => k in html).sort());
    // Closed: a reference to a field no envelope has is refused.
    expect(validate({ ...json, bdy: {} })).toBe(false);
  });

  test('the runbook integration kind outputs exactly this envelope', () => {
    expect(TASK_KIND_SPECS.integration.outputSchema).toEqual(responseEnvelopeSchema());
  });
});
