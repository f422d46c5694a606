import Ajv from 'ajv';
import { compileWorkflow, templatable, validateWorkflowDocument, WORKFLOW_DOCUMENT_SCHEMA, type WorkflowIssue } from './index';
import { clone, sampleDocument } from './test-support';

function withTask(task: unknown): unknown {
  const doc = clone(sampleDocument()) as unknown as { tasks: Record<string, unknown> };
  doc.tasks.grant = task;
  return doc;
}

describe('WORKFLOW_DOCUMENT_SCHEMA', () => {
  it('is a draft-07 schema any ajv can compile (with the discriminator keyword on)', () => {
    const ajv = new Ajv({ discriminator: true, strict: false });
    const validate = ajv.compile(WORKFLOW_DOCUMENT_SCHEMA as object);
    expect(validate(sampleDocument())).toBe(true);
    expect(validate({ name: 'x' })).toBe(false);
    expect((WORKFLOW_DOCUMENT_SCHEMA as { $schema: string }).$schema).toBe('http://json-schema.org/draft-07/schema#');
  });

  it('is frozen', () => {
    expect(Object.isFrozen(WORKFLOW_DOCUMENT_SCHEMA)).toBe(true);
  });
});

describe('validateWorkflowDocument', () => {
  it('accepts the sample', () => {
    expect(validateWorkflowDocument(sampleDocument())).toEqual([]);
  });

  it.each<[string, unknown, Partial<WorkflowIssue>[]]>([
    ['an unknown kind', { kind: 'ansible', incoming: {} }, [{ code: 'UNKNOWN_KIND', path: '/tasks/grant/kind', message: expect.stringContaining('unknown task kind "ansible"') }]],
    ['a task without a kind', { incoming: {} }, [{ code: 'SCHEMA', path: '/tasks/grant', message: "must have required property 'kind'" }]],
    // Before: ajv's "tag must be string" error was filtered as noise and the document reached the compiler (a 500).
    ['a kind that is not a string', { kind: 123, incoming: {} }, [{ code: 'UNKNOWN_KIND', path: '/tasks/grant/kind', message: expect.stringContaining('task kind must be a string, not 123') }]],
    ['a null kind', { kind: null }, [{ code: 'UNKNOWN_KIND', path: '/tasks/grant/kind', message: expect.stringContaining('not null') }]],
    ['a missing required field', { kind: 'integration' }, [{ path: '/tasks/grant', message: "must have required property 'operation'" }]],
    ['an unknown property', { kind: 'wait', until: 'resumed', colour: 'red' }, [{ path: '/tasks/grant/colour', message: 'is not a known property here' }]],
    ['a malformed operation', { kind: 'integration', operation: 'vcenter' }, [{ path: '/tasks/grant/operation' }]],
    ['a bad duration', { kind: 'wait', until: 'resumed', timeout: '5 minutes' }, [{ path: '/tasks/grant/timeout' }]],
    ['a bad retry policy', { kind: 'wait', until: 'resumed', retry: { maxAttempts: 0, retryableErrors: ['SOMETIMES'] } }, [{ path: '/tasks/grant/retry/maxAttempts' }, { path: '/tasks/grant/retry/retryableErrors/0' }]],
    ['a wait for a duration without one', { kind: 'wait', until: 'duration' }, [{ path: '/tasks/grant', message: "must have required property 'incoming'" }]],
    ['directory input missing the group', { kind: 'directory', operation: 'addGroupMember', incoming: { user: 'u' } }, [{ path: '/tasks/grant/incoming', message: "must have required property 'group'" }]],
    ['an unknown directory operation', { kind: 'directory', operation: 'deleteUser', incoming: {} }, [{ path: '/tasks/grant/operation', message: expect.stringContaining('must be one of "addGroupMember"') }]],
    ['winrm executeProgram without a packageId', { kind: 'winrm', connection: 'sccm', action: 'executeProgram', incoming: { host: 'pc01' } }, [{ path: '/tasks/grant/incoming', message: "must have required property 'packageId'" }]],
    ['an unknown winrm action', { kind: 'winrm', connection: 'sccm', action: 'reboot', incoming: { host: 'pc01' } }, [{ path: '/tasks/grant/action', message: expect.stringContaining('must be one of "triggerSchedule"') }]],
    // Credentials are the connection's: a runbook cannot carry a password, nor choose the connection from order data.
    ['a winrm password', { kind: 'winrm', connection: 'sccm', action: 'triggerSchedule', incoming: { host: 'pc01', password: 'x' } }, [{ path: '/tasks/grant/incoming/password', message: 'is not a known property here' }]],
    ['a templated winrm connection', { kind: 'winrm', connection: '{{order.x}}', action: 'triggerSchedule', incoming: { host: 'pc01' } }, [{ path: '/tasks/grant/connection' }]],
    ['a winrm schedule id that is no GUID', { kind: 'winrm', connection: 'sccm', action: 'triggerSchedule', incoming: { host: 'pc01', scheduleId: 'policy' } }, [{ path: '/tasks/grant/incoming/scheduleId' }]],
    ['a webhook payload without target_user', { kind: 'webhook', url: 'https://h.example/x', incoming: { application: { app_id: 'a' } } }, [{ path: '/tasks/grant/incoming', message: "must have required property 'target_user'" }]],
    // A workflow author must not sign with an inbound credential or a password: only the webhooks section.
    ['a webhook signed with a secret outside the webhooks section', { kind: 'webhook', url: 'https://h.example/x', secretRef: 'servicenow.webhook_secret', incoming: { application: { app_id: 'a' }, target_user: { email: 'e' } } }, [{ path: '/tasks/grant/secretRef' }]],
    ['a webhook with a templated secretRef', { kind: 'webhook', url: 'https://h.example/x', secretRef: '{{order.x}}', incoming: { application: { app_id: 'a' }, target_user: { email: 'e' } } }, [{ path: '/tasks/grant/secretRef' }]],
    ['text where a number belongs', { kind: 'webhook', url: 'https://h.example', incoming: { application: { app_id: 'a' }, target_user: { email: 'e' }, access_length: 'a day' } }, [{ path: '/tasks/grant/incoming/access_length', message: 'must be integer,null' }]],
    ['a templated operator', { kind: 'evaluate', incoming: { conditions: [{ left: 1, operator: '{{inputs.op}}', right: 2 }] } }, [{ path: '/tasks/grant/incoming/conditions/0/operator' }]],
    ['an operator outside the closed set', { kind: 'evaluate', incoming: { conditions: [{ left: 1, operator: '===', right: 2 }] } }, [{ path: '/tasks/grant/incoming/conditions/0/operator' }]],
    ['a poll of a poll', { kind: 'poll', task: { kind: 'poll' }, until: { conditions: [{ left: 1, operator: 'exists' }] }, interval: '1m', maxDuration: '1h' }, [{ code: 'UNKNOWN_KIND', path: '/tasks/grant/task/kind' }]],
    ['a script without a version', { kind: 'script', script: { module: 'm' } }, [{ path: '/tasks/grant/script', message: "must have required property 'version'" }]],
    ['a bad script parameter name', { kind: 'script', script: { module: 'm', version: 1 }, incoming: { 'not-env': 1 } }, [{ path: '/tasks/grant/incoming/not-env' }]],
    ['an outgoing variable of the wrong shape', { kind: 'wait', until: 'resumed', outgoing: { x: 5 } }, [{ path: '/tasks/grant/outgoing/x', message: expect.stringContaining('must be null, "$var.job.<name>"') }]],
  ])('rejects %s, pointing at the task', (_name, task, expected) => {
    const issues = validateWorkflowDocument(withTask(task));
    expect(issues).toEqual(expected.map((e) => expect.objectContaining({ taskId: 'grant', code: 'SCHEMA', ...e })));
  });

  it('accepts whole-string templates where numbers, arrays and objects belong', () => {
    const task = {
      kind: 'webhook',
      url: 'https://h.example',
      incoming: { application: '{{inputs.app}}', target_user: { email: '{{order.user_email}}' }, access_length: '{{params.attr_seconds}}', permissions: '$var.find_vm.vmId' },
    };
    expect(validateWorkflowDocument(withTask(task))).toEqual([]);
  });

  it('rejects reserved and malformed task ids', () => {
    const doc = clone(sampleDocument()) as unknown as { tasks: Record<string, unknown> };
    doc.tasks.job = { kind: 'wait', until: 'resumed' };
    doc.tasks['bad id'] = { kind: 'wait', until: 'resumed' };
    expect(validateWorkflowDocument(doc).map((i) => [i.taskId, i.path])).toEqual([
      ['job', '/tasks/job'],
      ['bad id', '/tasks/bad id'],
    ]);
  });

  it('rejects a document with both steps and tasks, and one with neither', () => {
    const both = { ...sampleDocument(), steps: [{ id: 'a', kind: 'wait', until: 'resumed' }] };
    expect(validateWorkflowDocument(both)).toEqual([
      { code: 'SCHEMA', taskId: null, path: '', message: 'must be a document has either steps, or tasks with transitions, not both' },
    ]);
    expect(validateWorkflowDocument({ name: 'n' })).toEqual([{ code: 'SCHEMA', taskId: null, path: '', message: "must have required property 'tasks'" }]);
  });

  it('points a steps document at the step by its id', () => {
    const doc = { name: 'n', steps: [{ id: 'a', kind: 'wait', until: 'resumed' }, { id: 'b', kind: 'integration' }] };
    expect(validateWorkflowDocument(doc)).toEqual([{ code: 'SCHEMA', taskId: 'b', path: '/steps/1', message: "must have required property 'operation'" }]);
  });

  it('rejects document-level problems without a task', () => {
    expect(validateWorkflowDocument({ name: ' padded', tasks: {}, version: 0 }).map((i) => [i.taskId, i.path])).toEqual([
      [null, '/name'],
      [null, '/version'],
    ]);
  });

  it('compileWorkflow reports schema problems alone', async () => {
    const r = await compileWorkflow(withTask({ kind: 'ansible' }));
    expect(r).toEqual({ ok: false, errors: [expect.objectContaining({ code: 'UNKNOWN_KIND', taskId: 'grant' })] });
  });
});

describe('templatable', () => {
  const ajv = new Ajv({ strict: false });
  it('lets templates stand in for typed values and keeps $ref/$defs working', () => {
    const schema = templatable({
      type: 'object',
      properties: { n: { type: 'integer' }, mode: { enum: ['a', 'b'] }, tags: { type: 'array', items: { $ref: '#/$defs/tag' } }, free: { type: 'string' } },
      required: ['n'],
      additionalProperties: false,
      $defs: { tag: { type: 'string', pattern: '^t-' } },
    });
    const validate = ajv.compile(schema as object);
    expect(validate({ n: 1, mode: 'a', tags: ['t-1'], free: 'x' })).toBe(true);
    expect(validate({ n: '{{inputs.n}}', mode: 'x-{{inputs.m}}', tags: ['{{item}}'] })).toBe(true);
    expect(validate({ n: '$var.t.n', tags: '{{steps.a.output.tags}}' })).toBe(true);
    expect(validate({ n: 'one' })).toBe(false);
    expect(validate({ n: 1, mode: 'c' })).toBe(false);
    expect(validate({ n: 1, tags: ['x'] })).toBe(false);
    expect(validate({ n: 1, other: 1 })).toBe(false);
    // A number cannot be text with a placeholder in it: only a whole-string template.
    expect(validate({ n: 'n={{inputs.n}}' })).toBe(false);
  });
});
