/**
 * The built-in task kinds: for each, what its input must be once rendered (`inputSchema`) and what its output is
 * (`outputSchema`). The canvas palette lists these; the document schema derives its templatable form from them.
 * Output schemas are closed (`additionalProperties: false`) where the shape is ours, so a reference such as
 * `{{steps.t.output.bdy}}` can be rejected on save.
 */
import { responseEnvelopeSchema } from '../../integration-model';
import { DURATION_PATTERN } from './duration';
import { STATIC_MARK, type JsonSchema } from './templatable';
import { CONDITION_OPERATORS, DIRECTORY_OPERATIONS, WINRM_ACTIONS, type DirectoryOperation, type TaskKind, type WinrmAction } from './types';

const nonEmpty = { type: 'string', minLength: 1 } as const;
const anyJson = {} as const;

export const DURATION_SCHEMA = {
  description: 'milliseconds, or a string such as 500ms, 30s, 5m, 2h, 1d',
  anyOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: DURATION_PATTERN },
  ],
} as const;

/** The standard response envelope of an integration call: integration-model's one schema of it, any body. */
export const ENVELOPE_SCHEMA = responseEnvelopeSchema();

const CONDITION_SCHEMA = {
  type: 'object',
  properties: {
    left: anyJson,
    operator: { $comment: STATIC_MARK, enum: [...CONDITION_OPERATORS] },
    right: anyJson,
  },
  required: ['left', 'operator'],
  additionalProperties: false,
} as const;

export const CONDITION_SET_SCHEMA = {
  type: 'object',
  properties: {
    match: { $comment: STATIC_MARK, enum: ['all', 'any'] },
    conditions: { type: 'array', minItems: 1, items: CONDITION_SCHEMA },
  },
  required: ['conditions'],
  additionalProperties: false,
} as const;

const DIRECTORY_ENTRY = {
  type: ['object', 'null'],
  description: 'the entry found: dn, the usual identity attributes, and any attributes asked for',
  properties: {
    dn: { type: 'string' },
    sAMAccountName: { type: 'string' },
    userPrincipalName: { type: 'string' },
    mail: { type: 'string' },
    displayName: { type: 'string' },
    attributes: { type: 'object' },
  },
  required: ['dn'],
} as const;

const principal = { ...nonEmpty, description: 'sAMAccountName, userPrincipalName or distinguished name' };
const changed = {
  type: 'object',
  properties: { changed: { type: 'boolean', description: 'false when the directory already was in the wanted state' } },
  required: ['changed'],
  additionalProperties: false,
} as const;

/** Each directory operation: its input and output. The directory adapter implements exactly these. */
export const DIRECTORY_OPERATION_SCHEMAS: Record<DirectoryOperation, { description: string; inputSchema: JsonSchema; outputSchema: JsonSchema }> = {
  addGroupMember: {
    description: 'Add a user to a group (no change when already a member).',
    inputSchema: { type: 'object', properties: { user: principal, group: { ...nonEmpty, description: 'group name or distinguished name' } }, required: ['user', 'group'], additionalProperties: false },
    outputSchema: changed,
  },
  removeGroupMember: {
    description: 'Remove a user from a group (no change when not a member).',
    inputSchema: { type: 'object', properties: { user: principal, group: { ...nonEmpty, description: 'group name or distinguished name' } }, required: ['user', 'group'], additionalProperties: false },
    outputSchema: changed,
  },
  setAttribute: {
    description: 'Replace one attribute of a user; null clears it.',
    inputSchema: {
      type: 'object',
      properties: {
        user: principal,
        attribute: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9-]*$' },
        value: { anyOf: [{ type: ['string', 'number', 'boolean', 'null'] }, { type: 'array', items: { type: 'string' } }] },
      },
      required: ['user', 'attribute', 'value'],
      additionalProperties: false,
    },
    outputSchema: changed,
  },
  findUser: {
    description: 'Look a user up; not found is a success with found: false.',
    inputSchema: {
      type: 'object',
      properties: { user: principal, attributes: { type: 'array', items: nonEmpty } },
      required: ['user'],
      additionalProperties: false,
    },
    outputSchema: { type: 'object', properties: { found: { type: 'boolean' }, user: DIRECTORY_ENTRY }, required: ['found', 'user'], additionalProperties: false },
  },
  findManager: {
    description: "Resolve a user's manager live; no manager is a success with found: false.",
    inputSchema: {
      type: 'object',
      properties: { user: principal, attributes: { type: 'array', items: nonEmpty } },
      required: ['user'],
      additionalProperties: false,
    },
    outputSchema: { type: 'object', properties: { found: { type: 'boolean' }, manager: DIRECTORY_ENTRY }, required: ['found', 'manager'], additionalProperties: false },
  },
};

/** Where a `winrm` task reaches the device; the credentials come from the task's `connection`, never from here. */
const WINRM_DEVICE_PROPERTIES = {
  host: { ...nonEmpty, description: 'the device as its WinRM listener and SPN know it (FQDN, or an address with `spn` set)' },
  port: { type: 'integer', minimum: 1, maximum: 65535, description: 'default 5986 with https, 5985 without' },
  https: { type: 'boolean', description: 'default true (WinRM over HTTPS, 5986)' },
  spn: {
    type: 'string',
    pattern: '^[^/@\\s]+/[^/@\\s]+$',
    description: 'Kerberos connections: the SPN to ask a ticket for; default HTTP/<host>',
  },
} as const;
const WINRM_OUTPUT = {
  type: 'object',
  properties: {
    device: { type: 'string', description: 'the host the call went to' },
    method: { type: 'string', description: 'the WMI method invoked' },
    resourceUri: { type: 'string' },
    messageId: { type: 'string', description: 'the WS-Addressing MessageID of the request' },
    returnValue: { type: 'integer', description: 'the method\'s ReturnValue: always 0 here (non-zero fails the task)' },
    output: { type: 'object', additionalProperties: { type: 'string' }, description: 'every out-parameter by name' },
  },
  required: ['device', 'method', 'resourceUri', 'messageId', 'returnValue', 'output'],
  additionalProperties: false,
} as const;

/** Each `winrm` action: its input (device and parameters) and output. adapter/wsman implements the calls. */
export const WINRM_ACTION_SCHEMAS: Record<WinrmAction, { description: string; inputSchema: JsonSchema; outputSchema: JsonSchema }> = {
  triggerSchedule: {
    description: 'SMS_Client.TriggerSchedule on the device: run a client schedule (default machine policy retrieval, {00000000-0000-0000-0000-000000000021}).',
    inputSchema: {
      type: 'object',
      properties: {
        ...WINRM_DEVICE_PROPERTIES,
        scheduleId: { type: 'string', pattern: '^\\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\\}$' },
      },
      required: ['host'],
      additionalProperties: false,
    },
    outputSchema: WINRM_OUTPUT,
  },
  executeProgram: {
    description: 'CCM_ProgramsManager.ExecuteProgram on the device: run an available deployment now (a task sequence: its PackageID, program id *).',
    inputSchema: {
      type: 'object',
      properties: {
        ...WINRM_DEVICE_PROPERTIES,
        packageId: { type: 'string', pattern: '^[A-Za-z0-9]{3}[0-9A-Fa-f]{5}$', description: 'the package (task sequence) id, e.g. PS100123' },
        programId: { ...nonEmpty, description: 'default * (a task sequence)' },
      },
      required: ['host', 'packageId'],
      additionalProperties: false,
    },
    outputSchema: WINRM_OUTPUT,
  },
};

/** The Lumos provisioning-webhook payload (../shared/seeds/lumos-provisioning-webhooks.txt). */
export const WEBHOOK_PAYLOAD_SCHEMA = {
  type: 'object',
  properties: {
    application: {
      type: 'object',
      properties: { app_id: nonEmpty, instance_id: { type: 'string' }, user_friendly_label: { type: 'string' } },
      required: ['app_id'],
      additionalProperties: false,
    },
    permissions: {
      type: 'array',
      items: {
        type: 'object',
        properties: { label: { type: 'string' }, value: nonEmpty, type: { type: 'string' }, source: { type: 'string' } },
        required: ['value'],
        additionalProperties: false,
      },
    },
    target_user: {
      type: 'object',
      properties: { email: nonEmpty, given_name: { type: 'string' }, family_name: { type: 'string' } },
      required: ['email'],
      additionalProperties: false,
    },
    access_length: { type: ['integer', 'null'], minimum: 0, description: 'seconds of access granted; null: no end' },
    request_comment: { type: 'string' },
    request_task_url: { type: 'string' },
    custom_fields: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean', 'null'] } },
  },
  required: ['application', 'target_user'],
  additionalProperties: false,
} as const;

const childRun = {
  type: 'object',
  properties: {
    index: { type: 'integer', minimum: 0 },
    runId: { type: 'string' },
    status: { enum: ['succeeded', 'failed', 'cancelled'] },
    output: anyJson,
  },
  required: ['index', 'runId', 'status'],
  additionalProperties: false,
} as const;

export interface TaskKindSpec {
  description: string;
  /** The rendered `incoming` the kind's executor receives. */
  inputSchema: JsonSchema;
  outputSchema: JsonSchema;
}

export const TASK_KIND_SPECS: Record<TaskKind, TaskKindSpec> = {
  integration: {
    description:
      'Call one operation of an integration model (`operation: <integration>/<operationId>`) through the integration runtime. ' +
      'The output is the standard envelope; a non-2xx status fails the task unless it is in `acceptStatuses`.',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'object' }, query: { type: 'object' }, headers: { type: 'object' }, cookies: { type: 'object' }, body: anyJson },
      additionalProperties: false,
    },
    outputSchema: ENVELOPE_SCHEMA,
  },
  directory: {
    description: 'An AD/LDAP operation through the directory adapter: ' + DIRECTORY_OPERATIONS.join(', ') + '.',
    inputSchema: { type: 'object' },
    outputSchema: { anyOf: DIRECTORY_OPERATIONS.map((op) => DIRECTORY_OPERATION_SCHEMAS[op].outputSchema) },
  },
  winrm: {
    description:
      'Call the ConfigMgr client on a device through WS-Management (WinRM): ' +
      WINRM_ACTIONS.join(', ') +
      '. `connection` names the integration whose credentials (NTLM, or Negotiate/Kerberos), TLS trust, proxy and timeout apply; ' +
      'a non-zero ReturnValue fails with WINRM_RETURN_VALUE, a SOAP fault with WINRM_FAULT, refused credentials with WINRM_AUTH.',
    inputSchema: { type: 'object' },
    outputSchema: WINRM_OUTPUT,
  },
  webhook: {
    description:
      'POST a Lumos-style provisioning webhook (the payload below) to `url`, HMAC-SHA256 signed with the secret at `secretRef`. ' +
      'Success on {"response":"PROVISIONED_USER"} or HTTP 204; NO_PROVISIONING_ACTION and anything else fail with WEBHOOK_REJECTED.',
    inputSchema: WEBHOOK_PAYLOAD_SCHEMA,
    outputSchema: {
      type: 'object',
      properties: {
        status: { type: 'integer' },
        response: { type: ['string', 'null'], description: 'the `response` field of the reply, null when absent (e.g. 204)' },
        body: anyJson,
      },
      required: ['status', 'response'],
      additionalProperties: false,
    },
  },
  script: {
    description:
      'Run a stored script module (`script: {module, version}`) in a subprocess; each incoming variable is an environment ' +
      'variable (non-strings as JSON); the JSON the script prints on stdout is the output.',
    inputSchema: { type: 'object', propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' } },
    outputSchema: { description: 'whatever JSON the script printed' },
  },
  poll: {
    description:
      'Repeat `task` every `interval` until `until` holds on its output (`{{output...}}`), failing when `failWhen` holds or ' +
      '`maxDuration` passes. Re-enqueued with a delay between probes, so it never holds a worker. The loop construct: ' +
      'transitions may not form cycles.',
    inputSchema: { type: 'object', maxProperties: 0 },
    outputSchema: {
      type: 'object',
      properties: {
        attempts: { type: 'integer', minimum: 1 },
        elapsedMs: { type: 'integer', minimum: 0 },
        result: { description: "the last probe's output" },
      },
      required: ['attempts', 'elapsedMs', 'result'],
      additionalProperties: false,
    },
  },
  evaluate: {
    description: `Compare values (operators: ${CONDITION_OPERATORS.join(' ')}) and branch: true takes the success transition, false the error transition (CONDITION_FALSE).`,
    inputSchema: CONDITION_SET_SCHEMA,
    outputSchema: {
      type: 'object',
      properties: {
        result: { type: 'boolean' },
        conditions: {
          type: 'array',
          items: {
            type: 'object',
            properties: { left: anyJson, operator: { type: 'string' }, right: anyJson, result: { type: 'boolean' } },
            required: ['operator', 'result'],
            additionalProperties: false,
          },
        },
      },
      required: ['result', 'conditions'],
      additionalProperties: false,
    },
  },
  transform: {
    description: 'Build a value with a JSONata `expression` evaluated over the rendered incoming variables.',
    inputSchema: { type: 'object' },
    outputSchema: { type: 'object', properties: { result: anyJson }, required: ['result'], additionalProperties: false },
  },
  child: {
    description: 'Run another workflow once, or once per element of `items` (sequential or parallel); `{{item}}` and `{{index}}` name the element.',
    inputSchema: { type: 'object', properties: { items: { type: 'array' }, inputs: { type: 'object' } }, additionalProperties: false },
    outputSchema: { type: 'object', properties: { runs: { type: 'array', items: childRun } }, required: ['runs'], additionalProperties: false },
  },
  wait: {
    description: 'Pause for `incoming.duration`, or until resumed through the API (bounded by the task timeout). A waiting run keeps its asset lock.',
    inputSchema: { type: 'object', properties: { duration: DURATION_SCHEMA }, additionalProperties: false },
    outputSchema: {
      type: 'object',
      properties: { waitedMs: { type: 'integer', minimum: 0 }, resumed: { type: 'boolean' }, data: { description: 'what the resume call sent' } },
      required: ['waitedMs', 'resumed'],
      additionalProperties: false,
    },
  },
};
