/**
 * Every error the API answers with: a stable `code`, an HTTP status and typed fields.
 * Domain code throws these; `server/http/problem.ts` alone turns them into problem+json.
 */
export interface FieldError {
  /** Where the error is, as `/body/<field>` or `/query/<name>`. */
  path: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly status: number,
    message: string,
    readonly errors?: FieldError[],
    /** Extra members for the problem body (never secrets). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

/** Stable error codes, each with its HTTP status. */
export const ErrorCode = {
  /** The body is not JSON, or a parameter is malformed (400). */
  BAD_REQUEST: 'BAD_REQUEST',
  /** A referenced asset type does not exist, named in the body (400, as the ServiceNow contract says). */
  UNKNOWN_ASSET_TYPE: 'UNKNOWN_ASSET_TYPE',
  /** No credentials, or credentials that are unknown, revoked or expired (401). */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** The credentials lack a scope or role the operation needs (403). */
  FORBIDDEN: 'FORBIDDEN',
  /** The resource does not exist (404). */
  NOT_FOUND: 'NOT_FOUND',
  /** The method is not allowed on this path (405). */
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  /** Unique key already taken, or a state change not allowed from the current state (409). */
  CONFLICT: 'CONFLICT',
  /** Body over the size limit (413). */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** Content-Type not accepted (415). */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /** Well-formed but invalid body; `errors` names each field (422). */
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  /** Pool capacity or per-user quota exhausted (429). */
  CAPACITY_EXCEEDED: 'CAPACITY_EXCEEDED',
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  /** An integration call could not be made (missing configuration, unreachable host, timeout, TLS) (502). */
  INTEGRATION_CALL_FAILED: 'INTEGRATION_CALL_FAILED',
  /** An operation in the spec that has no handler yet (501). */
  NOT_IMPLEMENTED: 'NOT_IMPLEMENTED',
  /** Anything unexpected (500); the detail never carries internals. */
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const badRequest = (detail: string, errors?: FieldError[]) => new AppError(ErrorCode.BAD_REQUEST, 400, detail, errors);
export const unauthenticated = (detail: string) => new AppError(ErrorCode.UNAUTHENTICATED, 401, detail);
export const forbidden = (detail: string, extra?: Record<string, unknown>) =>
  new AppError(ErrorCode.FORBIDDEN, 403, detail, undefined, extra);
export const notFound = (detail: string) => new AppError(ErrorCode.NOT_FOUND, 404, detail);
export const conflict = (detail: string, extra?: Record<string, unknown>) =>
  new AppError(ErrorCode.CONFLICT, 409, detail, undefined, extra);
/** A 422 naming the field at fault; `path` is like `/body/config/colour`. */
export const invalidField = (path: string, message: string, detail?: string) =>
  new AppError(ErrorCode.VALIDATION_FAILED, 422, detail ?? `${path.replace(/^\/body\//, '')}: ${message}`, [{ path, message }]);
export const validationFailed = (detail: string, errors: FieldError[]) =>
  new AppError(ErrorCode.VALIDATION_FAILED, 422, detail, errors);
