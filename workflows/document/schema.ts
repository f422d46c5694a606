/**
 * The JSON Schema (draft-07) of a workflow document. `/admin/workflows` validates with it on save (through
 * `compileWorkflow`, which adds the graph and reference checks a schema cannot express). Built once at load from
 * the kind specs in `kinds.ts`, frozen, and exported as a constant.
 */
import { CONDITION_SET_SCHEMA, DIRECTORY_OPERATION_SCHEMAS, DURATION_SCHEMA, TASK_KIND_SPECS, WEBHOOK_PAYLOAD_SCHEMA, WINRM_ACTION_SCHEMAS } from './kinds';
import { templatable, type JsonSchema } from './templatable';
import { DIRECTORY_OPERATIONS, RESERVED_TASK_IDS, STEP_ERROR_CODES, TASK_KINDS, WINRM_ACTIONS, type TaskKind } from './types';

export const TASK_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$';
const VARIABLE_NAME_PATTERN = '^[A-Za-z_$][A-Za-z0-9_$-]*$';
const DOT_PATH_PATTERN = '^[A-Za-z0-9_$-]+(\\.[A-Za-z0-9_$-]+)*$';
/** `<integration>/<operationId>`. */
export const OPERATION_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.\\-]+$';
/**
 * A signing secret of the `webhooks` settings section: `webhooks.<name>`. Only that section: any other key (an
 * inbound webhook secret, a directory password) would let whoever writes a workflow sign with it for a URL of
 * their choosing.
 */
export const SECRET_REF_PATTERN = '^webhooks\\.[A-Za-z0-9_-]+$';

type SchemaObject = { [keyword: string]: unknown };

const nodeLocation = {
  type: 'object',
  properties: { x: { type: 'number' }, y: { type: 'number' } },
  required: ['x', 'y'],
  additionalProperties: false,
};

const retry = {
  type: 'object',
  properties: {
    maxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
    initialInterval: DURATION_SCHEMA,
    backoffCoefficient: { type: 'number', minimum: 1, maximum: 10 },
    maximumInterval: DURATION_SCHEMA,
    maxDuration: DURATION_SCHEMA,
    retryableErrors: { type: 'array', uniqueItems: true, items: { enum: [...STEP_ERROR_CODES] } },
  },
  additionalProperties: false,
};

const outgoingVariable = {
  description: 'null, "$var.job.<name>", or {from: "<dot path in the output>", job: "<job variable>"}',
  anyOf: [
    { type: 'null' },
    { type: 'string', pattern: '^\\$var\\.job\\.[A-Za-z_$][A-Za-z0-9_$-]*$' },
    {
      type: 'object',
      properties: { from: { type: 'string', pattern: DOT_PATH_PATTERN }, job: { type: 'string', pattern: VARIABLE_NAME_PATTERN } },
      additionalProperties: false,
    },
  ],
};

const common: SchemaObject = {
  summary: { type: 'string', maxLength: 200 },
  description: { type: 'string', maxLength: 4000 },
  outgoing: { type: 'object', propertyNames: { pattern: VARIABLE_NAME_PATTERN }, additionalProperties: outgoingVariable },
  retry,
  timeout: DURATION_SCHEMA,
  critical: { type: 'boolean' },
  nodeLocation,
};

const integrationIncoming = templatable(TASK_KIND_SPECS.integration.inputSchema);
const scriptRef = {
  type: 'object',
  properties: { module: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$' }, version: { type: 'integer', minimum: 1 } },
  required: ['module', 'version'],
  additionalProperties: false,
};
const directoryIncomingByOperation = DIRECTORY_OPERATIONS.map((op) => ({
  if: { properties: { operation: { const: op } }, required: ['operation'] },
  then: { properties: { incoming: templatable(DIRECTORY_OPERATION_SCHEMAS[op].inputSchema) } },
}));
const winrmIncomingByAction = WINRM_ACTIONS.map((action) => ({
  if: { properties: { action: { const: action } }, required: ['action'] },
  then: { properties: { incoming: templatable(WINRM_ACTION_SCHEMAS[action].inputSchema) } },
}));
const conditionSet = templatable(CONDITION_SET_SCHEMA);

/** Kind-specific properties of a task (beyond `kind` and the common ones), required ones, and extra keywords. */
const KIND_PROPERTIES: Record<TaskKind, { properties: SchemaObject; required: string[]; extra?: SchemaObject }> = {
  integration: {
    properties: {
      operation: { type: 'string', pattern: OPERATION_PATTERN },
      acceptStatuses: { type: 'array', uniqueItems: true, items: { type: 'integer', minimum: 100, maximum: 599 } },
      incoming: integrationIncoming,
    },
    required: ['operation'],
  },
  directory: {
    properties: { operation: { enum: [...DIRECTORY_OPERATIONS] }, incoming: { type: 'object' } },
    required: ['operation', 'incoming'],
    extra: { allOf: directoryIncomingByOperation },
  },
  winrm: {
    properties: {
      // An integration name (as in `operation: <integration>/...`): its connection's credentials are used.
      connection: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
      action: { enum: [...WINRM_ACTIONS] },
      incoming: { type: 'object' },
    },
    required: ['connection', 'action', 'incoming'],
    extra: { allOf: winrmIncomingByAction },
  },
  webhook: {
    properties: {
      url: { type: 'string', pattern: '^(https?://|\\{\\{)' },
      secretRef: { type: 'string', pattern: SECRET_REF_PATTERN },
      incoming: templatable(WEBHOOK_PAYLOAD_SCHEMA),
    },
    required: ['url', 'incoming'],
  },
  script: {
    properties: { script: scriptRef, incoming: templatable(TASK_KIND_SPECS.script.inputSchema) },
    required: ['script'],
  },
  poll: {
    properties: {
      task: { $ref: '#/definitions/probe' },
      until: conditionSet,
      failWhen: conditionSet,
      interval: DURATION_SCHEMA,
      maxDuration: DURATION_SCHEMA,
    },
    required: ['task', 'until', 'interval', 'maxDuration'],
  },
  evaluate: { properties: { incoming: conditionSet }, required: ['incoming'] },
  transform: {
    properties: { expression: { type: 'string', minLength: 1, maxLength: 20000 }, incoming: { type: 'object' } },
    required: ['expression'],
  },
  child: {
    properties: {
      workflow: { type: 'string', minLength: 1, maxLength: 200 },
      version: { type: 'integer', minimum: 1 },
      mode: { enum: ['sequential', 'parallel'] },
      concurrency: { type: 'integer', minimum: 1, maximum: 100 },
      incoming: templatable(TASK_KIND_SPECS.child.inputSchema),
    },
    required: ['workflow'],
  },
  wait: {
    properties: { until: { enum: ['duration', 'resumed'] }, incoming: templatable(TASK_KIND_SPECS.wait.inputSchema) },
    required: ['until'],
    extra: {
      if: { properties: { until: { const: 'duration' } }, required: ['until'] },
      then: { required: ['incoming'], properties: { incoming: { required: ['duration'] } } },
    },
  },
};

function taskDefinition(kind: TaskKind, withId: boolean): SchemaObject {
  const spec = KIND_PROPERTIES[kind];
  return {
    type: 'object',
    properties: {
      ...(withId ? { id: { type: 'string', pattern: TASK_ID_PATTERN } } : {}),
      kind: { const: kind },
      ...common,
      ...spec.properties,
    },
    required: [...(withId ? ['id'] : []), 'kind', ...spec.required],
    additionalProperties: false,
    ...(spec.extra ?? {}),
  };
}

function probeDefinition(kind: 'integration' | 'directory' | 'script'): SchemaObject {
  const spec = KIND_PROPERTIES[kind];
  return {
    type: 'object',
    properties: { kind: { const: kind }, timeout: DURATION_SCHEMA, ...spec.properties },
    required: ['kind', ...spec.required],
    additionalProperties: false,
    ...(spec.extra ?? {}),
  };
}

const definitions: SchemaObject = {};
for (const kind of TASK_KINDS) {
  definitions[`task_${kind}`] = taskDefinition(kind, false);
  definitions[`step_${kind}`] = taskDefinition(kind, true);
}
for (const kind of ['integration', 'directory', 'script'] as const) definitions[`probe_${kind}`] = probeDefinition(kind);
definitions.task = {
  type: 'object',
  required: ['kind'],
  discriminator: { propertyName: 'kind' },
  oneOf: TASK_KINDS.map((k) => ({ $ref: `#/definitions/task_${k}` })),
};
definitions.step = {
  type: 'object',
  required: ['kind'],
  discriminator: { propertyName: 'kind' },
  oneOf: TASK_KINDS.map((k) => ({ $ref: `#/definitions/step_${k}` })),
};
definitions.probe = {
  type: 'object',
  required: ['kind'],
  discriminator: { propertyName: 'kind' },
  oneOf: (['integration', 'directory', 'script'] as const).map((k) => ({ $ref: `#/definitions/probe_${k}` })),
};

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export const WORKFLOW_DOCUMENT_SCHEMA: JsonSchema = deepFreeze({
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://provisio.invalid/schemas/workflow-document.json',
  title: 'Workflow document',
  description:
    'A runbook as an orchestration graph (tasks keyed by id, transitions by state, as in Itential) or as a linear list of steps.',
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200, pattern: '^\\S(.*\\S)?$' },
    version: { type: 'integer', minimum: 1 },
    description: { type: 'string', maxLength: 4000 },
    inputSchema: { type: 'object' },
    tasks: {
      type: 'object',
      propertyNames: {
        description: 'a task id: letters, digits, _ and -, at most 64, not workflow_start, workflow_end or job',
        pattern: TASK_ID_PATTERN,
        not: { enum: [...RESERVED_TASK_IDS] },
      },
      additionalProperties: { $ref: '#/definitions/task' },
    },
    transitions: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: {
          type: 'object',
          properties: { state: { enum: ['success', 'error'] }, type: { const: 'standard' } },
          required: ['state'],
          additionalProperties: false,
        },
      },
    },
    steps: { type: 'array', minItems: 1, items: { $ref: '#/definitions/step' } },
    canvas: {
      type: 'object',
      properties: { workflow_start: nodeLocation, workflow_end: nodeLocation },
      additionalProperties: false,
    },
  },
  required: ['name'],
  additionalProperties: false,
  if: { required: ['steps'] },
  then: {
    description: 'a document has either steps, or tasks with transitions, not both',
    not: { anyOf: [{ required: ['tasks'] }, { required: ['transitions'] }] },
  },
  else: { required: ['tasks'] },
  definitions,
});
