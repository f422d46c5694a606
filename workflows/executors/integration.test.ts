import { InvocationError, type IntegrationInvoker, type InvokeContext, type TaskInput } from '../../integration-model';
import type { IntegrationCallResult, IntegrationEnvelope } from '../../adapter';
import { compiledTask, stepContext } from '../../tests/support/executors';
import type { IntegrationTask } from '../document';
import { createIntegrationExecutor, parseOperationRef } from './integration';

// The executor only classifies what the runtime's `invoke` gives it; the runtime itself (lookup, validation, the
// request on the wire) is tested against real servers in tests/integration/integration-invoke.test.ts.
interface Call {
  integration: string;
  operationId: string;
  input: TaskInput;
  context: InvokeContext;
}

function envelope(status: number, body: unknown = {}): IntegrationEnvelope {
  return { ok: status >= 200 && status < 300, method: 'POST', url: 'https://vc.example.test/api/vcenter/vm/vm-1/power', status, statusText: '', headers: {}, body };
}

function fakeRuntime(answer: (call: Call) => Promise<IntegrationCallResult>): IntegrationInvoker & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    invoke: async (integration, operationId, input, context = {}) => {
      const call = { integration: integration as string, operationId, input, context };
      calls.push(call);
      return answer(call);
    },
  };
}

function task(operationId: string, over: Partial<IntegrationTask> = {}): IntegrationTask {
  return { kind: 'integration', operation: `vcenter/${operationId}`, ...over };
}

describe('integration executor', () => {
  test('2xx: one invoke by name with the input, the step signal and its idempotency key; the output is the envelope', async () => {
    const runtime = fakeRuntime(async () => envelope(200, { value: 'ok' }));
    const ctx = stepContext({ attempt: 3 });
    const input = { path: { vm: 'vm-1' }, query: { action: 'start' } };
    const result = await createIntegrationExecutor({ integrations: runtime })(compiledTask(task('power_start')), input, ctx);
    expect(result).toEqual({ ok: true, output: envelope(200, { value: 'ok' }) });
    expect(runtime.calls).toEqual([{ integration: 'vcenter', operationId: 'power_start', input, context: { signal: ctx.signal, idempotencyKey: 'run-1:t1:3' } }]);
  });

  test('a non-accepted 404 is HTTP_4XX with the envelope as output; listed in acceptStatuses it is success', async () => {
    const executor = createIntegrationExecutor({ integrations: fakeRuntime(async () => envelope(404, { error_type: 'NOT_FOUND' })) });
    expect(await executor(compiledTask(task('vm_delete')), {}, stepContext())).toMatchObject({
      ok: false,
      error: { code: 'HTTP_4XX', message: expect.stringContaining('answered 404: {"error_type":"NOT_FOUND"}'), output: { ok: false, status: 404 } },
    });
    expect(await executor(compiledTask(task('vm_delete', { acceptStatuses: [404] })), {}, stepContext())).toMatchObject({ ok: true, output: { ok: false, status: 404 } });
  });

  test('5xx is HTTP_5XX, 429 is HTTP_429 and a 3xx is HTTP_4XX (the retry policy decides)', async () => {
    for (const [status, code] of [
      [503, 'HTTP_5XX'],
      [429, 'HTTP_429'],
      [302, 'HTTP_4XX'],
    ] as const) {
      const executor = createIntegrationExecutor({ integrations: fakeRuntime(async () => envelope(status)) });
      const result = await executor(compiledTask(task('power_start')), {}, stepContext());
      expect(result).toMatchObject({ ok: false, error: { code, output: { status } } });
      expect((result as { error: { retryable?: boolean } }).error.retryable).toBeUndefined();
    }
  });

  test('a 2xx JSON-RPC answer with an error is RPC_ERROR naming it (XenAPI code and parameters); SESSION_INVALID hides its reference', async () => {
    const run = async (body: unknown) => createIntegrationExecutor({ integrations: fakeRuntime(async () => envelope(200, body)) })(compiledTask(task('rpc')), {}, stepContext());
    expect(await run({ jsonrpc: '2.0', error: { code: 1, message: 'VM_BAD_POWER_STATE', data: ['OpaqueRef:vm', 'running', 'halted'] }, id: 1 })).toMatchObject({
      ok: false,
      error: { code: 'RPC_ERROR', message: expect.stringMatching(/answered VM_BAD_POWER_STATE \[OpaqueRef:vm, running, halted\]$/), output: { status: 200 } },
    });
    expect(await run({ result: null, error: ['HANDLE_INVALID', 'VM', 'OpaqueRef:x'], id: 1 })).toMatchObject({ ok: false, error: { code: 'RPC_ERROR', message: expect.stringContaining('HANDLE_INVALID VM OpaqueRef:x') } });
    const secret = await run({ jsonrpc: '2.0', error: { code: 1, message: 'SESSION_INVALID', data: ['OpaqueRef:session-secret'] }, id: 1 });
    expect(secret).toMatchObject({ ok: false, error: { code: 'RPC_ERROR' } });
    expect(JSON.stringify(secret)).not.toContain('session-secret');
    // Not JSON-RPC responses: a body that merely has an `error` field, or a JSON-RPC success, stays a success.
    expect(await run({ error: 'none', value: 1 })).toMatchObject({ ok: true });
    expect(await run({ jsonrpc: '2.0', result: 'OpaqueRef:vm', id: 1 })).toMatchObject({ ok: true });
    expect(await run({ jsonrpc: '2.0', result: 'x', error: null, id: 1 })).toMatchObject({ ok: true });
  });

  test('a string result is NETWORK; one that says "timed out", or any after the step was aborted, is TIMEOUT', async () => {
    const refused = createIntegrationExecutor({ integrations: fakeRuntime(async () => 'The API call could not be made: GET x: the server refused the connection') });
    expect(await refused(compiledTask(task('vm_list')), {}, stepContext())).toMatchObject({ ok: false, error: { code: 'NETWORK', message: expect.stringContaining('refused') } });
    const slow = createIntegrationExecutor({ integrations: fakeRuntime(async () => 'The API call could not be made: GET x timed out after 200 ms without a response') });
    expect(await slow(compiledTask(task('vm_list')), {}, stepContext())).toMatchObject({ ok: false, error: { code: 'TIMEOUT' } });
    const ctx = stepContext();
    const aborted = createIntegrationExecutor({
      integrations: fakeRuntime(async ({ context }) => {
        ctx.controller.abort();
        return context.signal?.aborted ? 'The API call could not be made: canceled' : 'not aborted';
      }),
    });
    expect(await aborted(compiledTask(task('vm_list')), {}, ctx)).toMatchObject({ ok: false, error: { code: 'TIMEOUT', message: expect.stringContaining('canceled') } });
  });

  test("the runtime's InvocationError (no such integration or operation, input refused) is INVALID_INPUT, never retried", async () => {
    const executor = createIntegrationExecutor({
      integrations: fakeRuntime(async ({ operationId }) => {
        if (operationId === 'nope') throw InvocationError.operationNotFound("model 'vCenter:8' has no operation 'nope'");
        throw InvocationError.invalidInput([{ path: '/path/vm', message: 'is required' }]);
      }),
    });
    expect(await executor(compiledTask(task('nope')), {}, stepContext())).toEqual({
      ok: false,
      error: { code: 'INVALID_INPUT', retryable: false, message: "vcenter/nope: model 'vCenter:8' has no operation 'nope'" },
    });
    expect(await executor(compiledTask(task('power_start')), { path: {} }, stepContext())).toEqual({
      ok: false,
      error: { code: 'INVALID_INPUT', retryable: false, message: 'vcenter/power_start: path/vm is required' },
    });
  });

  test('any other failure of the runtime is not the step input: it propagates for the engine to handle', async () => {
    const executor = createIntegrationExecutor({ integrations: fakeRuntime(async () => Promise.reject(new Error('connection to the database lost'))) });
    await expect(executor(compiledTask(task('vm_list')), {}, stepContext())).rejects.toThrow('connection to the database lost');
  });

  test('an operation that is not <integration>/<operationId> is INVALID_INPUT without an invoke', async () => {
    const runtime = fakeRuntime(async () => envelope(200));
    const executor = createIntegrationExecutor({ integrations: runtime });
    expect(await executor(compiledTask({ kind: 'integration', operation: 'vcenter' }), {}, stepContext())).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', retryable: false } });
    expect(runtime.calls).toHaveLength(0);
    expect(parseOperationRef('sn/table/get')).toEqual({ integration: 'sn', operationId: 'table/get' });
    expect(parseOperationRef('/x')).toBeUndefined();
  });
});
