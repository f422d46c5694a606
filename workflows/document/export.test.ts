import { exportWorkflow, parseWorkflowFile, WorkflowFileError, type GraphWorkflowDocument, type StepsWorkflowDocument } from './index';
import { sampleDocument } from './test-support';

describe('exportWorkflow', () => {
  it('orders document, task and retry keys the same way whatever the input order', () => {
    const doc = sampleDocument();
    const shuffled = JSON.parse(JSON.stringify({ transitions: doc.transitions, tasks: doc.tasks, name: doc.name, version: doc.version, inputSchema: doc.inputSchema, description: doc.description })) as GraphWorkflowDocument;
    const findVm = shuffled.tasks.find_vm as unknown as Record<string, unknown>;
    shuffled.tasks.find_vm = Object.fromEntries(Object.entries(findVm).reverse()) as unknown as GraphWorkflowDocument['tasks'][string];
    expect(exportWorkflow(shuffled)).toBe(exportWorkflow(doc));
    const parsed = JSON.parse(exportWorkflow(doc)) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(['name', 'version', 'description', 'inputSchema', 'tasks', 'transitions']);
    expect(Object.keys((parsed.tasks as Record<string, object>).find_vm ?? {})).toEqual(['kind', 'operation', 'incoming', 'outgoing', 'retry', 'timeout', 'nodeLocation']);
    expect(Object.keys((parsed.tasks as Record<string, { retry: object }>).find_vm?.retry ?? {})).toEqual(['maxAttempts', 'initialInterval', 'maximumInterval', 'retryableErrors']);
  });

  it('lists tasks in canvas order (top to bottom, left to right), transitions likewise with the pseudo-tasks at the ends', () => {
    const parsed = JSON.parse(exportWorkflow(sampleDocument())) as { tasks: object; transitions: Record<string, object> };
    expect(Object.keys(parsed.tasks)).toEqual(['find_vm', 'power_on', 'grant', 'report']);
    expect(Object.keys(parsed.transitions)).toEqual(['workflow_start', 'find_vm', 'power_on', 'grant', 'report']);
    expect(Object.keys(parsed.transitions.power_on as object)).toEqual(['grant', 'report']);
  });

  it('keeps authored order inside free-form objects and ends with a newline', () => {
    const doc = sampleDocument();
    doc.inputSchema = { type: 'object', properties: { zeta: { type: 'string' }, alpha: { type: 'string' } } };
    const text = exportWorkflow(doc);
    expect(text.endsWith('}\n')).toBe(true);
    expect(Object.keys((JSON.parse(text) as { inputSchema: { properties: object } }).inputSchema.properties)).toEqual(['zeta', 'alpha']);
  });

  it('round-trips: export, parse, export gives the same bytes (graph and steps)', () => {
    const steps: StepsWorkflowDocument = { name: 'S', steps: [{ kind: 'wait', until: 'resumed', id: 'w', summary: 'hold' }] };
    for (const doc of [sampleDocument(), steps]) {
      const text = exportWorkflow(doc);
      expect(exportWorkflow(parseWorkflowFile(text) as typeof doc)).toBe(text);
    }
    expect(Object.keys((JSON.parse(exportWorkflow(steps)) as { steps: object[] }).steps[0] as object)).toEqual(['id', 'kind', 'summary', 'until']);
  });
});

describe('parseWorkflowFile', () => {
  it('rejects text that is not a JSON object', () => {
    expect(() => parseWorkflowFile('{"name": ')).toThrow(WorkflowFileError);
    expect(() => parseWorkflowFile('[1]')).toThrow('workflow file must hold a JSON object');
  });
});
