/**
 * One operation of a SCIM PATCH request (RFC 7644 §3.5.2), as `readOperations` (patch.ts) parses it. It has a module
 * of its own because both patch.ts and members.ts (which plans group member changes) speak it, and patch.ts depends
 * on the model that depends on members.ts.
 */
export interface PatchOperation {
  op: 'add' | 'replace' | 'remove';
  path?: string;
  value?: unknown;
}
