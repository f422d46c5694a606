/**
 * The error table: every code the API answers with, and its HTTP status; and, for every room below, which of these
 * codes each of its own error codes is answered with. Errors are thrown without a status (`CodedError` from
 * `adapter/errors.ts`, or a room's own class); `server/http/problem.ts` alone looks the status up here and writes
 * problem+json or a SCIM error. Both maps are typed exhaustively: a code added anywhere without a row here fails
 * the typecheck, and `openapi/provisio.yaml` lists the same codes (a test holds the two together).
 *
 * How codes are chosen:
 * - A code has one status wherever it is raised. A room's code is answered as itself when a client has to act on
 *   it differently (WORKFLOW_CONCURRENCY_LIMIT: retry later; RUN_INPUT_INVALID: the run's inputs, not the body, are
 *   at fault), and as a generic code when it is a generic case (a schedule's bad cron is VALIDATION_FAILED naming
 *   the field, like every other invalid body field).
 * - "Not found" answers 404 for the resource the request addresses: named in the path, or the workflow a run or
 *   schedule named in the path would start. A workflow (or anything else) referenced from a body that creates or
 *   changes another resource is a field of that body: VALIDATION_FAILED (422) naming the field
 *   (`/body/workflow` of a schedule, `/body/tasks/<id>/...` of a document's child-workflow task).
 * - Codes that rooms share by name with another meaning (the directory's NOT_FOUND, CONFIG, TLS ...) are answered
 *   with a code of this table and keep their own as a member of the body (`directory_code`).
 */
import type { CallNotMadeCode, DirectoryErrorCode, GenericErrorCode, KerberosErrorCode, MailErrorCode, SecretBackendErrorCode, TokenRequestError } from '../adapter';
import type { IntegrationModelErrorCode } from '../integration-model';
import type {
  EngineErrorCode,
  ScheduleErrorCode,
  ScriptModuleInputError,
  TemplateErrorCode,
  WorkflowFileError,
  WorkflowValidationError,
} from '../workflows';
import type { Problem } from './api/gen/types.gen';
import type { Assert, Same } from './api/spec-types';

export {
  CodedError, isCodedError,
  badRequest, unauthenticated, forbidden, notFound, conflict, invalidField, validationFailed, integrationCallFailed,
} from '../adapter';
export type { FieldError } from '../adapter';

/** Every code the API answers with. */
export const ErrorCode = {
  /** The body is not JSON, or a parameter is malformed (400). */
  BAD_REQUEST: 'BAD_REQUEST',
  /** A referenced asset type does not exist, named in the body (400, as the ServiceNow contract says). */
  UNKNOWN_ASSET_TYPE: 'UNKNOWN_ASSET_TYPE',
  /** No credentials, or credentials that are unknown, revoked or expired (401). */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** The credentials lack a scope or role the operation needs (403). */
  FORBIDDEN: 'FORBIDDEN',
  /** The requester may not order the asset type: its entitlements admit them by no rule; `failed_rules` (403). */
  NOT_ENTITLED: 'NOT_ENTITLED',
  /** The decision would break separation of duties (own order, or the type's last configurer); `rule` says which (403). */
  SEPARATION_OF_DUTIES: 'SEPARATION_OF_DUTIES',
  /** A signed approval link that is malformed, unknown, or whose signature does not match what it decides (403). */
  LINK_INVALID: 'LINK_INVALID',
  /** The resource named by the path does not exist, or no route has that path (404). */
  NOT_FOUND: 'NOT_FOUND',
  /** The workflow (or version) named by the path, or started by the run or schedule in the path, does not exist (404). */
  WORKFLOW_NOT_FOUND: 'WORKFLOW_NOT_FOUND',
  /** No run has the id in the path (404). */
  RUN_NOT_FOUND: 'RUN_NOT_FOUND',
  /** No schedule has the id in the path (404). */
  SCHEDULE_NOT_FOUND: 'SCHEDULE_NOT_FOUND',
  /** The method is not allowed on this path (405). */
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  /** Unique key already taken, or a state change not allowed from the current state (409). */
  CONFLICT: 'CONFLICT',
  /** The `smtp` settings lack what a mail needs; `missing` names the keys (409). */
  SMTP_NOT_CONFIGURED: 'SMTP_NOT_CONFIGURED',
  /** The run's status does not allow the command (cancel a finished run, rerun one that succeeded ...); `run_status` says it (409). */
  RUN_STATE_CONFLICT: 'RUN_STATE_CONFLICT',
  /** Another schedule has the name (409). */
  SCHEDULE_NAME_TAKEN: 'SCHEDULE_NAME_TAKEN',
  /** The order's status does not allow the command (cancel, return, extend, retry); `order_status` says it (409). */
  ORDER_STATE_CONFLICT: 'ORDER_STATE_CONFLICT',
  /** The signed approval link was used already; `used_at` says when (409). */
  LINK_USED: 'LINK_USED',
  /** The approval a signed link decides no longer waits for a decision; `approval_status`, `order_status` say why (409). */
  APPROVAL_CLOSED: 'APPROVAL_CLOSED',
  /** The signed approval link has expired; `expired_at` says when (410). */
  LINK_EXPIRED: 'LINK_EXPIRED',
  /** `If-Match` names a version that is no longer current (412). */
  PRECONDITION_FAILED: 'PRECONDITION_FAILED',
  /** Body over the size limit, or more values in one request than accepted (413). */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** Content-Type not accepted (415). */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /** Well-formed but invalid body or document; `errors` names each field (422). */
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  /** The approver already has a delegation window overlapping the one asked for; `delegation_id` names it (422). */
  DELEGATION_OVERLAP: 'DELEGATION_OVERLAP',
  /** With `active_directory` configured, no directory account has the requester's email; `errors` names the field (422). */
  REQUESTER_NOT_FOUND: 'REQUESTER_NOT_FOUND',
  /** With `active_directory` configured, the requester's directory account is disabled; `errors` names the field (422). */
  REQUESTER_DISABLED: 'REQUESTER_DISABLED',
  /** The run's inputs do not satisfy the workflow version's `inputSchema`; `errors` points into the inputs as `/inputs/...` (422). */
  RUN_INPUT_INVALID: 'RUN_INPUT_INVALID',
  /** Pool capacity exhausted (429). */
  CAPACITY_EXCEEDED: 'CAPACITY_EXCEEDED',
  /** The user's quota for the asset type is exhausted (429). */
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  /** The workflow already has its limit of active runs and rejects more; `workflow` and `limit` say which (429). */
  WORKFLOW_CONCURRENCY_LIMIT: 'WORKFLOW_CONCURRENCY_LIMIT',
  /** Too many failed authentications from the client's address: refused unchecked until `Retry-After` (seconds) (429). */
  TOO_MANY_ATTEMPTS: 'TOO_MANY_ATTEMPTS',
  /** Anything unexpected (500); the detail never carries internals. */
  INTERNAL: 'INTERNAL',
  /** An operation in the spec that has no handler here, or a service this process does not run (501). */
  NOT_IMPLEMENTED: 'NOT_IMPLEMENTED',
  /** An integration call could not be made or was refused (configuration, credentials, network, TLS, envelope) (502). */
  INTEGRATION_CALL_FAILED: 'INTEGRATION_CALL_FAILED',
  /** The SMTP server could not be reached or refused the mail; `stage` says where (connect, tls, auth, sender, recipient, message) (502). */
  SMTP_FAILED: 'SMTP_FAILED',
  /** The far system (the directory) is unavailable or busy; try again later (503). */
  INTEGRATION_UNAVAILABLE: 'INTEGRATION_UNAVAILABLE',
  /** The directory (`active_directory`, or `entra_id` as the directory) is configured but did not answer a check an order or the catalogue needs; nothing placed (503). */
  DIRECTORY_UNAVAILABLE: 'DIRECTORY_UNAVAILABLE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
// The spec's `Problem.code` enum (generated from openapi/provisio.yaml) names exactly these codes.
type _CodesMatchSpec = Assert<Same<ErrorCode, Problem['code']>>;

/** The HTTP statuses the table uses, each with its reason phrase (the problem document's `title`). */
const TITLES = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 410: 'Gone', 412: 'Precondition Failed', 413: 'Content Too Large', 415: 'Unsupported Media Type',
  422: 'Unprocessable Entity', 429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented',
  502: 'Bad Gateway', 503: 'Service Unavailable',
} as const;
export type ErrorStatus = keyof typeof TITLES;

/** Each code's HTTP status. */
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  UNKNOWN_ASSET_TYPE: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_ENTITLED: 403,
  SEPARATION_OF_DUTIES: 403,
  LINK_INVALID: 403,
  NOT_FOUND: 404,
  WORKFLOW_NOT_FOUND: 404,
  RUN_NOT_FOUND: 404,
  SCHEDULE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  SMTP_NOT_CONFIGURED: 409,
  RUN_STATE_CONFLICT: 409,
  SCHEDULE_NAME_TAKEN: 409,
  ORDER_STATE_CONFLICT: 409,
  LINK_USED: 409,
  APPROVAL_CLOSED: 409,
  LINK_EXPIRED: 410,
  PRECONDITION_FAILED: 412,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  VALIDATION_FAILED: 422,
  DELEGATION_OVERLAP: 422,
  REQUESTER_NOT_FOUND: 422,
  REQUESTER_DISABLED: 422,
  RUN_INPUT_INVALID: 422,
  CAPACITY_EXCEEDED: 429,
  QUOTA_EXCEEDED: 429,
  WORKFLOW_CONCURRENCY_LIMIT: 429,
  TOO_MANY_ATTEMPTS: 429,
  INTERNAL: 500,
  NOT_IMPLEMENTED: 501,
  INTEGRATION_CALL_FAILED: 502,
  SMTP_FAILED: 502,
  INTEGRATION_UNAVAILABLE: 503,
  DIRECTORY_UNAVAILABLE: 503,
} as const satisfies Record<ErrorCode, ErrorStatus>;

/** The status and title a code is answered with. */
export function statusOf(code: ErrorCode): { status: ErrorStatus; title: string } {
  const status = ERROR_STATUS[code];
  return { status, title: TITLES[status] };
}

/** The generic codes of `adapter/errors.ts` are codes of this table as they are. */
export const GENERIC_CODES = {
  BAD_REQUEST: 'BAD_REQUEST',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  INTEGRATION_CALL_FAILED: 'INTEGRATION_CALL_FAILED',
} as const satisfies { [C in GenericErrorCode]: C & ErrorCode };

/** The workflow engine (`workflows/engine`): each code is answered as itself. */
export const ENGINE_CODES = {
  WORKFLOW_NOT_FOUND: 'WORKFLOW_NOT_FOUND',
  RUN_NOT_FOUND: 'RUN_NOT_FOUND',
  RUN_STATE_CONFLICT: 'RUN_STATE_CONFLICT',
  WORKFLOW_CONCURRENCY_LIMIT: 'WORKFLOW_CONCURRENCY_LIMIT',
  RUN_INPUT_INVALID: 'RUN_INPUT_INVALID',
} as const satisfies { [C in EngineErrorCode]: C & ErrorCode };

/**
 * The workflow document layer (`workflows/document`): a document that does not compile (WORKFLOW_INVALID), an
 * uploaded file that is not JSON (WORKFLOW_FILE_INVALID) or not an Itential workflow (ITENTIAL_IMPORT_INVALID)
 * is an invalid body.
 */
export const DOCUMENT_CODES = {
  WORKFLOW_INVALID: 'VALIDATION_FAILED',
  WORKFLOW_FILE_INVALID: 'VALIDATION_FAILED',
  ITENTIAL_IMPORT_INVALID: 'VALIDATION_FAILED',
} as const satisfies Record<WorkflowValidationError['code'] | WorkflowFileError['code'] | 'ITENTIAL_IMPORT_INVALID', ErrorCode>;

/** Schedules (`workflows/schedules`): a bad schedule field is VALIDATION_FAILED naming it. */
export const SCHEDULE_CODES = {
  SCHEDULE_INPUT_INVALID: 'VALIDATION_FAILED',
  SCHEDULE_NOT_FOUND: 'SCHEDULE_NOT_FOUND',
  SCHEDULE_NAME_TAKEN: 'SCHEDULE_NAME_TAKEN',
} as const satisfies Record<ScheduleErrorCode, ErrorCode>;

/** Executors (`workflows/executors`): a script module version with an invalid field. */
export const EXECUTOR_CODES = {
  SCRIPT_MODULE_INPUT_INVALID: 'VALIDATION_FAILED',
} as const satisfies Record<ScriptModuleInputError['code'], ErrorCode>;

/** Templating (`workflows/templating`): normally a failed step; over HTTP, an invalid body. */
export const TEMPLATE_CODES = {
  TEMPLATE_MISSING_VARIABLE: 'VALIDATION_FAILED',
  TEMPLATE_SYNTAX: 'VALIDATION_FAILED',
} as const satisfies Record<TemplateErrorCode, ErrorCode>;

/** Integration models (`integration-model`): a document that is not a usable model; an operationId it lacks. */
export const INTEGRATION_MODEL_CODES = {
  INVALID_MODEL: 'VALIDATION_FAILED',
  UNKNOWN_OPERATION: 'NOT_FOUND',
} as const satisfies Record<IntegrationModelErrorCode, ErrorCode>;

/** Outbound HTTP (`adapter/http`): a call that was never made, or a token request refused (TOKEN_REQUEST_FAILED). */
export const HTTP_CALL_CODES = {
  MISSING_CONFIGURATION: 'INTEGRATION_CALL_FAILED',
  UNREACHABLE: 'INTEGRATION_CALL_FAILED',
  TIMEOUT: 'INTEGRATION_CALL_FAILED',
  TLS_FAILURE: 'INTEGRATION_CALL_FAILED',
  CONNECTION_RESET: 'INTEGRATION_CALL_FAILED',
  PROXY_FAILURE: 'INTEGRATION_CALL_FAILED',
  KEY_RETRIEVAL: 'INTEGRATION_CALL_FAILED',
  AUTHENTICATION_FAILED: 'INTEGRATION_CALL_FAILED',
  OTHER: 'INTEGRATION_CALL_FAILED',
  ABORTED: 'INTEGRATION_CALL_FAILED',
  RESPONSE_TOO_LARGE: 'INTEGRATION_CALL_FAILED',
  TOKEN_REQUEST_FAILED: 'INTEGRATION_CALL_FAILED',
} as const satisfies Record<CallNotMadeCode | TokenRequestError['code'], ErrorCode>;

/**
 * External secret backends (`adapter/secrets`), answered with `secret_backend_code` and `reference`: a secret the
 * request needs could not be read from the backend its reference names. A backend that cannot be reached is
 * unavailable (retry later); refused credentials, a missing secret or settings that lack a key are a bad gateway
 * (an admin must act); a write to a read-only backend (the migration to CCP) conflicts with the configuration.
 */
export const SECRET_BACKEND_CODES = {
  SECRET_BACKEND_UNREACHABLE: 'INTEGRATION_UNAVAILABLE',
  SECRET_BACKEND_AUTH_FAILED: 'INTEGRATION_CALL_FAILED',
  SECRET_NOT_FOUND: 'INTEGRATION_CALL_FAILED',
  SECRET_BACKEND_NOT_CONFIGURED: 'INTEGRATION_CALL_FAILED',
  SECRET_BACKEND_READ_ONLY: 'CONFLICT',
} as const satisfies Record<SecretBackendErrorCode, ErrorCode>;

/**
 * Kerberos (`adapter/kerberos`), answered with `kerberos_code` and, where the KDC or GSS library named one,
 * `krb_error`. A KDC that does not answer is unavailable (retry later); every other failure (refused or unknown
 * principal, missing SPN, clock skew, expired ticket, disabled account, bad settings) is a bad gateway an admin
 * must act on.
 */
export const KERBEROS_CODES = {
  KERBEROS_KDC_UNREACHABLE: 'INTEGRATION_UNAVAILABLE',
  KERBEROS_CONFIG: 'INTEGRATION_CALL_FAILED',
  KERBEROS_BAD_CREDENTIALS: 'INTEGRATION_CALL_FAILED',
  KERBEROS_UNKNOWN_PRINCIPAL: 'INTEGRATION_CALL_FAILED',
  KERBEROS_UNKNOWN_SERVICE: 'INTEGRATION_CALL_FAILED',
  KERBEROS_CLOCK_SKEW: 'INTEGRATION_CALL_FAILED',
  KERBEROS_TICKET_EXPIRED: 'INTEGRATION_CALL_FAILED',
  KERBEROS_ACCOUNT_DISABLED: 'INTEGRATION_CALL_FAILED',
  KERBEROS_FAILED: 'INTEGRATION_CALL_FAILED',
} as const satisfies Record<KerberosErrorCode, ErrorCode>;

/**
 * The directory (`adapter/directory`), answered with `directory_code`. The caller's input problems keep the
 * directory's message; failures between us and the directory (bind refused, access rights, TLS, unreachable)
 * answer 502/503 with a fixed detail, since the server's own text may name hosts and accounts.
 */
export const DIRECTORY_CODES = {
  NOT_FOUND: 'NOT_FOUND',
  AMBIGUOUS: 'CONFLICT',
  ATTRIBUTE_NOT_ALLOWED: 'VALIDATION_FAILED',
  INVALID_INPUT: 'VALIDATION_FAILED',
  REJECTED: 'VALIDATION_FAILED',
  UNAVAILABLE: 'INTEGRATION_UNAVAILABLE',
  INVALID_CREDENTIALS: 'INTEGRATION_CALL_FAILED',
  INSUFFICIENT_ACCESS: 'INTEGRATION_CALL_FAILED',
  STRONG_AUTH_REQUIRED: 'INTEGRATION_CALL_FAILED',
  TLS: 'INTEGRATION_CALL_FAILED',
  CONFIG: 'INTEGRATION_CALL_FAILED',
  LDAP_ERROR: 'INTEGRATION_CALL_FAILED',
} as const satisfies Record<DirectoryErrorCode, ErrorCode>;

/**
 * Mail (`adapter/mail`), answered with `mail_code` and `stage` (server/domain/notifications turns a `MailError` into
 * one of these). A mail that cannot be composed (a recipient or subject that would inject a header) is an invalid
 * field; settings that lack a key are the service's state, not the request's fault; everything between us and the
 * SMTP server is a bad gateway, the stage naming where it failed.
 */
export const MAIL_CODES = {
  NOT_CONFIGURED: 'SMTP_NOT_CONFIGURED',
  HEADER_INJECTION: 'VALIDATION_FAILED',
  INVALID_ADDRESS: 'VALIDATION_FAILED',
  CONNECTION: 'SMTP_FAILED',
  TLS: 'SMTP_FAILED',
  AUTH: 'SMTP_FAILED',
  SENDER_REFUSED: 'SMTP_FAILED',
  RECIPIENT_REFUSED: 'SMTP_FAILED',
  MESSAGE_REFUSED: 'SMTP_FAILED',
} as const satisfies Record<MailErrorCode, ErrorCode>;

/** RFC 7644 §3.12 scimType values (re-exported by `server/scim/errors.ts`, which throws them). */
export type ScimType =
  | 'invalidFilter' | 'tooMany' | 'uniqueness' | 'mutability' | 'invalidSyntax' | 'invalidPath'
  | 'noTarget' | 'invalidValue' | 'invalidVers' | 'sensitive';

/**
 * SCIM (`server/scim`), by RFC 7644 `scimType`. `tooMany` marks a request naming more values or operations than
 * accepted, which the service answers 413 (the body is the thing too large), not the RFC's 400 for filters.
 */
export const SCIM_TYPE_CODES = {
  invalidFilter: 'BAD_REQUEST',
  invalidPath: 'BAD_REQUEST',
  invalidSyntax: 'BAD_REQUEST',
  invalidValue: 'BAD_REQUEST',
  invalidVers: 'BAD_REQUEST',
  noTarget: 'BAD_REQUEST',
  mutability: 'BAD_REQUEST',
  uniqueness: 'CONFLICT',
  sensitive: 'FORBIDDEN',
  tooMany: 'PAYLOAD_TOO_LARGE',
} as const satisfies Record<ScimType, ErrorCode>;
