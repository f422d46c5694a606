/**
 * The `directory` task: one AD/LDAP operation through the directory adapter (adapter/directory), with the inputs
 * and outputs of DIRECTORY_OPERATION_SCHEMAS (workflows/document/kinds.ts).
 *
 * A user is named by sAMAccountName, userPrincipalName (contains `@`) or distinguished name (looks like
 * `CN=...,DC=...`); a group by sAMAccountName or distinguished name. "Not found" is a success with
 * `found: false` for findUser/findManager, and an error for the writes. Every adapter failure is DIRECTORY; it is
 * retryable exactly when the adapter says so (connection trouble), never for a refusal such as a protected attribute.
 */
import { DirectoryError, DirectoryErrorCode, isRecord, type AttributeValues, type Directory, type DirectoryUser, type GroupKey, type UserKey } from '../../adapter';
import { DIRECTORY_OPERATIONS, type DirectoryOperation, type DirectoryTask } from '../document';
import type { StepResult, TaskExecutor } from '../engine/executor';
import { failed, succeeded } from './results';

type MaybePromise<T> = T | Promise<T>;

export interface DirectoryExecutorDeps {
  /** The configured directory, or undefined when none is configured. */
  getDirectory(): MaybePromise<Directory | undefined>;
}

// `CN=x,...`, `OU=x,...`: an attribute type, `=`, and at least one more RDN.
const DN_LIKE = /^[A-Za-z][A-Za-z0-9-]*=.+,\s*[A-Za-z][A-Za-z0-9-]*=/;

export function userKey(principal: string): UserKey {
  if (DN_LIKE.test(principal)) return { by: 'dn', value: principal };
  if (principal.includes('@')) return { by: 'userPrincipalName', value: principal };
  return { by: 'sAMAccountName', value: principal };
}

export function groupKey(name: string): GroupKey {
  return DN_LIKE.test(name) ? { by: 'dn', value: name } : { by: 'sAMAccountName', value: name };
}

/** The output entry: dn, the identity attributes that are set, and the adapter's attributes (plus enabled/managerDn). */
function entry(u: DirectoryUser, wanted: string[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { dn: u.dn, sAMAccountName: u.sAMAccountName };
  if (u.userPrincipalName !== null) out['userPrincipalName'] = u.userPrincipalName;
  if (u.mail !== null) out['mail'] = u.mail;
  if (u.displayName !== null) out['displayName'] = u.displayName;
  const all: Record<string, unknown> = { ...u.attributes, enabled: u.enabled, managerDn: u.managerDn };
  // Asked-for names the adapter does not read are listed as null, so `{{...attributes.x}}` never silently vanishes.
  out['attributes'] = wanted ? Object.fromEntries(wanted.map((k) => [k, Object.prototype.hasOwnProperty.call(all, k) ? all[k] : null])) : all;
  return out;
}

function str(input: Record<string, unknown>, key: string): string {
  const v = input[key];
  if (typeof v !== 'string' || v === '') throw new DirectoryError(DirectoryErrorCode.INVALID_INPUT, `${key} must be a non-empty string`);
  return v;
}

function strings(input: Record<string, unknown>, key: string): string[] | undefined {
  const v = input[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new DirectoryError(DirectoryErrorCode.INVALID_INPUT, `${key} must be an array of strings`);
  return v as string[];
}

function attributeValue(v: unknown): string | string[] | null {
  if (v === null) return null;
  if (typeof v === 'string') return v;
  // LDAP booleans are the strings TRUE and FALSE.
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw new DirectoryError(DirectoryErrorCode.INVALID_INPUT, 'value must be a string, number, boolean, null or an array of strings');
}

async function run(dir: Directory, op: DirectoryOperation, input: Record<string, unknown>): Promise<unknown> {
  switch (op) {
    case 'addGroupMember':
      return { changed: (await dir.addGroupMember(groupKey(str(input, 'group')), userKey(str(input, 'user')))).changed };
    case 'removeGroupMember':
      return { changed: (await dir.removeGroupMember(groupKey(str(input, 'group')), userKey(str(input, 'user')))).changed };
    case 'setAttribute': {
      if (!Object.prototype.hasOwnProperty.call(input, 'value')) throw new DirectoryError(DirectoryErrorCode.INVALID_INPUT, 'value is required (null clears the attribute)');
      const values: AttributeValues = { [str(input, 'attribute')]: attributeValue(input['value']) };
      return { changed: (await dir.setAttributes(userKey(str(input, 'user')), values)).changed.length > 0 };
    }
    case 'findUser': {
      const wanted = strings(input, 'attributes');
      try {
        return { found: true, user: entry(await dir.findUser(userKey(str(input, 'user'))), wanted) };
      } catch (e) {
        if (e instanceof DirectoryError && e.code === DirectoryErrorCode.NOT_FOUND) return { found: false, user: null };
        throw e;
      }
    }
    case 'findManager': {
      const wanted = strings(input, 'attributes');
      // A missing user is an error (the run names someone who is not there); no manager is an answer.
      const manager = await dir.findManager(userKey(str(input, 'user')));
      return manager ? { found: true, manager: entry(manager, wanted) } : { found: false, manager: null };
    }
  }
}

export function createDirectoryExecutor(deps: DirectoryExecutorDeps): TaskExecutor {
  return async (compiled, input): Promise<StepResult> => {
    const task = compiled.task as Pick<DirectoryTask, 'kind' | 'operation'>;
    if (task.kind !== 'directory' || !(DIRECTORY_OPERATIONS as readonly string[]).includes(task.operation)) {
      return failed('INVALID_INPUT', `task '${compiled.id}' is not a directory operation`, { retryable: false });
    }
    if (!isRecord(input)) return failed('INVALID_INPUT', 'directory input must be an object', { retryable: false });
    const dir = await deps.getDirectory();
    if (!dir) return failed('DIRECTORY', 'no directory is configured (settings section active_directory: PUT /admin/settings/active_directory)', { retryable: false });
    try {
      return succeeded(await run(dir, task.operation, input));
    } catch (e) {
      if (e instanceof DirectoryError) {
        return failed('DIRECTORY', `${task.operation}: ${e.code}: ${e.message}`, { retryable: e.retryable });
      }
      return failed('DIRECTORY', `${task.operation}: ${(e as Error).message}`, { retryable: false });
    }
  };
}
