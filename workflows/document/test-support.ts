// Shared by this folder's unit tests: a small valid document and a context that knows its integrations.
import { staticCompileContext } from './context';
import type { GraphWorkflowDocument } from './types';

export function sampleDocument(): GraphWorkflowDocument {
  return {
    name: 'Sample',
    version: 3,
    description: 'find a VM, power it on, grant access',
    inputSchema: { type: 'object', properties: { group: { type: 'string' } }, additionalProperties: false },
    tasks: {
      find_vm: {
        kind: 'integration',
        operation: 'vcenter/api_vcenter_vm_list',
        incoming: { query: { names: ['{{asset.name}}'] } },
        outgoing: { vmId: { from: 'body.0.vm', job: 'vm' } },
        retry: { maxAttempts: 4, initialInterval: '2s', maximumInterval: '1m', retryableErrors: ['HTTP_5XX'] },
        timeout: '30s',
        nodeLocation: { x: 0, y: 100 },
      },
      power_on: {
        kind: 'integration',
        operation: 'vcenter/api_vcenter_vm_power_action',
        incoming: { path: { vm: '$var.find_vm.vmId' }, query: { action: 'start' } },
        nodeLocation: { x: 0, y: 200 },
      },
      grant: {
        kind: 'directory',
        operation: 'addGroupMember',
        incoming: { user: '{{order.username}}', group: '{{inputs.group}}' },
        critical: false,
        nodeLocation: { x: 0, y: 300 },
      },
      report: {
        kind: 'transform',
        expression: '{"vm": vm, "user": user}',
        incoming: { vm: '$var.job.vm', user: '{{order.username}}' },
        nodeLocation: { x: 200, y: 300 },
      },
    },
    transitions: {
      workflow_start: { find_vm: { type: 'standard', state: 'success' } },
      find_vm: { power_on: { type: 'standard', state: 'success' } },
      power_on: { grant: { type: 'standard', state: 'success' }, report: { type: 'standard', state: 'error' } },
      grant: { workflow_end: { type: 'standard', state: 'success' } },
      report: { workflow_end: { type: 'standard', state: 'success' } },
    },
  };
}

export const sampleContext = staticCompileContext({
  integrations: {
    vcenter: {
      api_vcenter_vm_list: {},
      // Shaped like the operation of openapi/integrations/vcenter.yaml (one power operation, the action in the query);
      // the `^vm-` pattern is this context's own, so pattern checks have something to reject.
      api_vcenter_vm_power_action: {
        inputSchema: {
          type: 'object',
          properties: {
            path: { type: 'object', properties: { vm: { type: 'string', pattern: '^vm-' } }, required: ['vm'], additionalProperties: false },
            query: { type: 'object', properties: { action: { type: 'string', enum: ['start', 'stop', 'reset', 'suspend'] } }, required: ['action'], additionalProperties: false },
          },
          required: ['path', 'query'],
          additionalProperties: false,
        },
      },
    },
  },
  workflows: {
    Notify: [
      { version: 1 },
      { version: 2, inputSchema: { type: 'object', properties: { vm: { type: 'string' }, to: { type: 'string' } }, required: ['vm'], additionalProperties: false } },
    ],
  },
  scriptModules: { 'Reset-Profile': [1, 2] },
});

/** A deep copy to mutate in one test. */
export function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
