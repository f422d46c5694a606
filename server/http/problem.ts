import type { ErrorRequestHandler, Response } from 'express';
import { CallNotMadeError, CodedError, currentLogContext, DirectoryError, DirectoryErrorCode, KerberosError, SecretBackendError, TokenRequestError, type Logger } from '../../adapter';
import { IntegrationModelError } from '../../integration-model';
import {
  ConcurrencyLimitError,
  MissingVariableError,
  RunInputError,
  RunNotFoundError,
  RunStateError,
  ScheduleConflictError,
  ScheduleInputError,
  ScheduleNotFoundError,
  ScriptModuleInputError,
  TemplateSyntaxError,
  WorkflowFileError,
  WorkflowNotFoundError,
  WorkflowValidationError,
  type WorkflowIssue,
} from '../../workflows';
import {
  DIRECTORY_CODES,
  DOCUMENT_CODES,
  ENGINE_CODES,
  ERROR_STATUS,
  EXECUTOR_CODES,
  HTTP_CALL_CODES,
  KERBEROS_CODES,
  SECRET_BACKEND_CODES,
  INTEGRATION_MODEL_CODES,
  SCHEDULE_CODES,
  TEMPLATE_CODES,
  ErrorCode,
  statusOf,
  type ErrorStatus,
  type FieldError,
} from '../errors';
import { ScimError } from '../scim/errors';
import { pathForLog } from './log-path';

/** An error as the API answers it: a code of the table, its status and title, and the body's members. */
export interface Problem {
  code: ErrorCode;
  status: ErrorStatus;
  title: string;
  detail: string;
  errors?: FieldError[];
  /** Extra members of the body (never secrets). */
  extra?: Record<string, unknown>;
  /** A SCIM `scimType`, for the SCIM rendering. */
  scimType?: string;
}

function problem(code: ErrorCode, detail: string, more: { errors?: FieldError[] | undefined; extra?: Record<string, unknown> | undefined; scimType?: string } = {}): Problem {
  return {
    code,
    ...statusOf(code),
    detail,
    ...(more.errors ? { errors: more.errors } : {}),
    ...(more.extra ? { extra: more.extra } : {}),
    ...(more.scimType ? { scimType: more.scimType } : {}),
  };
}

const isTableCode = (code: string): code is ErrorCode => Object.hasOwn(ERROR_STATUS, code);

/** Writes an RFC 9457 problem document. */
export function sendProblem(res: Response, p: Problem, instance?: string): void {
  const requestId = currentLogContext()?.requestId;
  res
    .status(p.status)
    .type('application/problem+json')
    .json({
      type: 'about:blank',
      title: p.title,
      status: p.status,
      detail: p.detail,
      code: p.code,
      ...(instance ? { instance } : {}),
      ...(requestId ? { request_id: requestId } : {}),
      ...(p.errors ? { errors: p.errors } : {}),
      ...(p.extra ?? {}),
    });
}

interface ValidatorError {
  status: number;
  message: string;
  errors?: { path: string; message: string; errorCode?: string }[];
}
const isValidatorError = (e: unknown): e is ValidatorError =>
  typeof e === 'object' && e !== null && typeof (e as ValidatorError).status === 'number' && 'errors' in e;

interface BodyParserError {
  type: string;
  status: number;
  message: string;
  limit?: number;
}
const isBodyParserError = (e: unknown): e is BodyParserError =>
  typeof e === 'object' && e !== null && typeof (e as BodyParserError).type === 'string' && 'status' in e;

/** body-parser's error for a body stream that failed to decode: an http-errors 400 with no `type` of its own. */
const isUnreadableBody = (e: unknown): boolean =>
  typeof e === 'object' && e !== null && (e as { expose?: unknown }).expose === true && (e as { status?: unknown }).status === 400 && !('errors' in e);

/** A workflow document's compiler issues as field errors of the request body that carried it: `/body/tasks/<id>/...`. */
export function workflowIssueErrors(issues: readonly WorkflowIssue[]): FieldError[] {
  return issues.map((i) => ({ path: `/body${i.path === '/' ? '' : i.path}`, message: i.taskId ? `task ${i.taskId}: ${i.message}` : i.message }));
}

/** One field of a request body at fault, with the detail `invalidField` gives. */
const bodyField = (code: ErrorCode, field: string, message: string): Problem =>
  problem(code, `${field}: ${message}`, { errors: [{ path: `/body/${field}`, message }] });

/**
 * The rooms' own errors, each by its class: the table says the code, the class's typed fields say the body's
 * members. Undefined for anything that is not one of them.
 */
function fromRoomError(err: unknown): Problem | undefined {
  // The workflow engine.
  if (err instanceof WorkflowNotFoundError) {
    return problem(ENGINE_CODES[err.code], err.message, { extra: { workflow: err.workflow, ...(err.version !== undefined ? { version: err.version } : {}) } });
  }
  if (err instanceof RunNotFoundError) return problem(ENGINE_CODES[err.code], err.message, { extra: { run_id: err.runId } });
  if (err instanceof RunStateError) return problem(ENGINE_CODES[err.code], err.message, { extra: { run_status: err.runStatus } });
  if (err instanceof ConcurrencyLimitError) return problem(ENGINE_CODES[err.code], err.message, { extra: { workflow: err.workflow, limit: err.limit } });
  // The run's inputs (not the request body) fail the pinned version's inputSchema: the pointer goes into the inputs.
  if (err instanceof RunInputError) {
    return problem(ENGINE_CODES[err.code], err.message, {
      errors: [{ path: `/inputs${err.field}`, message: err.reason }],
      extra: { workflow: err.workflow, version: err.version },
    });
  }
  // Workflow documents.
  if (err instanceof WorkflowValidationError) {
    return problem(DOCUMENT_CODES[err.code], `the workflow does not compile: ${err.issues.length} problem(s)`, { errors: workflowIssueErrors(err.issues) });
  }
  if (err instanceof WorkflowFileError) return problem(DOCUMENT_CODES[err.code], err.message);
  // Schedules.
  if (err instanceof ScheduleInputError) return bodyField(SCHEDULE_CODES[err.code], err.field, err.message);
  if (err instanceof ScheduleNotFoundError) return problem(SCHEDULE_CODES[err.code], err.message, { extra: { schedule_id: err.scheduleId } });
  if (err instanceof ScheduleConflictError) return problem(SCHEDULE_CODES[err.code], err.message);
  // Executors and templating.
  if (err instanceof ScriptModuleInputError) return bodyField(EXECUTOR_CODES[err.code], err.field, err.message);
  if (err instanceof MissingVariableError || err instanceof TemplateSyntaxError) return problem(TEMPLATE_CODES[err.code], err.message);
  // Integration models: each issue points into the submitted document.
  if (err instanceof IntegrationModelError) {
    return problem(INTEGRATION_MODEL_CODES[err.code], err.message, { errors: err.issues.map((i) => ({ path: `/body${i.path}`, message: i.message })) });
  }
  // Outbound calls.
  if (err instanceof CallNotMadeError) return problem(HTTP_CALL_CODES[err.code], err.message);
  if (err instanceof TokenRequestError) return problem(HTTP_CALL_CODES[err.code], err.message);
  if (err instanceof DirectoryError) return fromDirectoryError(err);
  // A secret reference that could not be resolved: the message names the reference and the cause, never a value.
  if (err instanceof SecretBackendError) {
    return problem(SECRET_BACKEND_CODES[err.code], err.message, { extra: { secret_backend_code: err.code, ...(err.reference !== undefined ? { reference: err.reference } : {}) } });
  }
  // Kerberos: the message names the principal or service and the Kerberos error, never a password or keytab.
  if (err instanceof KerberosError) {
    return problem(KERBEROS_CODES[err.code], err.message, { extra: { kerberos_code: err.code, ...(err.krbError !== undefined ? { krb_error: err.krbError } : {}) } });
  }
  // SCIM, and every other coded error: its code is one of the table's.
  if (err instanceof ScimError) return problem(err.code, err.message, { scimType: err.scimType });
  if (err instanceof CodedError && isTableCode(err.code)) return problem(err.code, err.message, { errors: err.errors, extra: err.extra });
  return undefined;
}

/** Turns any error into a problem: the rooms', the spec validator's, the body parser's, or unexpected ones (500). */
export function toProblem(err: unknown): Problem {
  const known = fromRoomError(err);
  if (known) return known;
  if (isBodyParserError(err)) {
    if (err.type === 'entity.too.large') return problem(ErrorCode.PAYLOAD_TOO_LARGE, `request body exceeds the limit of ${err.limit ?? '?'} bytes`);
    if (err.type === 'entity.parse.failed') return problem(ErrorCode.BAD_REQUEST, `request body is not valid JSON: ${err.message}`);
    if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported') return problem(ErrorCode.UNSUPPORTED_MEDIA_TYPE, err.message);
    return problem(ErrorCode.BAD_REQUEST, err.message);
  }
  // body-parser wraps a failure of the stream it reads (a body sent as `Content-Encoding: gzip` that is not gzip,
  // a truncated deflate stream) as a plain http-errors 400 without a `type`: the client's fault, never ours.
  if (isUnreadableBody(err)) {
    return problem(ErrorCode.BAD_REQUEST, 'the request body could not be read: it does not match its Content-Encoding');
  }
  if (isValidatorError(err)) {
    const errors: FieldError[] = (err.errors ?? []).map((e) => ({ path: e.path.replace(/^\.?/, '/').replace(/\./g, '/').replace(/^\/+/, '/'), message: e.message }));
    const detail = errors.map((e) => `${e.path.replace(/^\/(body|query|path|headers)\//, '')} ${e.message}`).join('; ') || err.message;
    switch (err.status) {
      case 400: {
        // A body that parses but breaks the schema is a 422 naming the field; malformed parameters stay 400.
        const bodyOnly = errors.length > 0 && errors.every((e) => e.path.startsWith('/body'));
        return problem(bodyOnly ? ErrorCode.VALIDATION_FAILED : ErrorCode.BAD_REQUEST, detail, { errors });
      }
      case 404: return problem(ErrorCode.NOT_FOUND, 'no such route');
      case 405: return problem(ErrorCode.METHOD_NOT_ALLOWED, err.message);
      case 413: return problem(ErrorCode.PAYLOAD_TOO_LARGE, err.message);
      case 415: return problem(ErrorCode.UNSUPPORTED_MEDIA_TYPE, err.message);
      // Response validation failures (tests) and the like: surface them as server errors with the reason.
      default: return problem(ErrorCode.INTERNAL, `${err.message}: ${detail}`);
    }
  }
  return problem(ErrorCode.INTERNAL, 'internal error');
}

/**
 * A directory failure as HTTP, with `directory_code` always. The caller's input problems keep the directory's
 * message (it names the key or attribute, never a secret); failures between us and the directory get a fixed
 * detail, since the server's own text may name hosts and accounts.
 */
function fromDirectoryError(err: DirectoryError): Problem {
  const code = DIRECTORY_CODES[err.code];
  const extra: Record<string, unknown> = { directory_code: err.code };
  if (err.details.key) extra['key'] = err.details.key;
  const answer = (detail: string, errors?: FieldError[]) => problem(code, detail, { errors, extra });
  switch (err.code) {
    case DirectoryErrorCode.NOT_FOUND:
    case DirectoryErrorCode.AMBIGUOUS:
    case DirectoryErrorCode.INVALID_INPUT:
    case DirectoryErrorCode.REJECTED:
      return answer(err.message);
    case DirectoryErrorCode.ATTRIBUTE_NOT_ALLOWED: {
      const attr = err.details.attribute;
      return answer(err.message, attr ? [{ path: `/body/attributes/${attr}`, message: err.message }] : undefined);
    }
    case DirectoryErrorCode.UNAVAILABLE:
      return answer('the directory is unavailable; try again later');
    case DirectoryErrorCode.INVALID_CREDENTIALS: {
      const why = err.details.adReason ?? 'invalid credentials';
      const data = err.details.adDataCode ? ` (AD data ${err.details.adDataCode})` : '';
      return answer(`the directory refused the service account: ${why}${data}`);
    }
    case DirectoryErrorCode.INSUFFICIENT_ACCESS:
      return answer('the directory refused the change: the service account lacks the access rights');
    case DirectoryErrorCode.STRONG_AUTH_REQUIRED:
      return answer('the directory requires an encrypted connection: configure LDAPS or StartTLS');
    case DirectoryErrorCode.TLS:
      return answer('TLS to the directory failed: check the CA certificate and the server name');
    case DirectoryErrorCode.CONFIG:
      return answer('the directory settings are invalid; see the gateway log');
    case DirectoryErrorCode.LDAP_ERROR:
      return answer(`the directory answered with an error${err.details.ldapCode !== undefined ? ` (LDAP result ${err.details.ldapCode})` : ''}`);
  }
}

/**
 * A SCIM Error message (RFC 7644 §3.12) for /scim paths: `status` as a string, a `scimType` where one applies.
 * SCIM has no 422, so body validation failures are 400 invalidValue; a body that is not JSON is invalidSyntax.
 */
export function sendScimError(res: Response, p: Problem, original: unknown): void {
  const status = p.status === 422 ? 400 : p.status;
  let scimType = p.scimType;
  if (!scimType && status === 400) {
    scimType = isBodyParserError(original) && original.type === 'entity.parse.failed' ? 'invalidSyntax' : 'invalidValue';
  }
  const detail = p.detail || p.title;
  res.locals['scimError'] = { scimType, detail };
  res
    .status(status)
    .type('application/scim+json')
    .json({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: String(status), ...(scimType ? { scimType } : {}), detail });
}

/** The one place errors become HTTP responses: SCIM errors on /scim paths, problem documents elsewhere. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const p = toProblem(err);
    if (p.status >= 500) {
      logger.error('request failed', { method: req.method, path: pathForLog(req.path), err: err instanceof Error ? err.stack : String(err) });
    }
    if (res.headersSent) return;
    if (req.path.startsWith('/scim/')) return sendScimError(res, p, err);
    sendProblem(res, p, req.originalUrl.split('?')[0]);
  };
}
