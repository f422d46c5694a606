/**
 * The coded error every room throws, and the generic factories. An error here carries a stable `code` and the data a
 * caller needs, never an HTTP status: the status of each code is decided once, in `server/errors.ts` (the table),
 * and `server/http/problem.ts` alone turns errors into responses. It lives in the lowest room so that
 * `integration-model/` and `workflows/` can throw the same errors as `server/` without importing it.
 */

/** One field at fault in a request or a document. */
export interface FieldError {
  /** Where the error is, as `/body/<field>` or `/query/<name>`. */
  path: string;
  message: string;
}

/** The codes the generic factories below give; each room's own codes sit beside its error classes. */
export const GenericErrorCode = {
  /** The request is malformed: not JSON, a bad parameter, a state token that is unknown or used. */
  BAD_REQUEST: 'BAD_REQUEST',
  /** No credentials, or credentials that are unknown, revoked or expired. */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** The credentials lack a scope or role the operation needs. */
  FORBIDDEN: 'FORBIDDEN',
  /** The resource named by the request does not exist. */
  NOT_FOUND: 'NOT_FOUND',
  /** A unique key is taken, or a state change is not allowed from the current state. */
  CONFLICT: 'CONFLICT',
  /** A well-formed but invalid body or document; `errors` names each field. */
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  /** An outbound integration call could not be made or answered unusably (configuration, network, TLS, envelope). */
  INTEGRATION_CALL_FAILED: 'INTEGRATION_CALL_FAILED',
} as const;
export type GenericErrorCode = (typeof GenericErrorCode)[keyof typeof GenericErrorCode];

export interface CodedErrorData {
  /** The fields at fault, each with a path and a message. */
  errors?: FieldError[];
  /** Extra members for the problem body, e.g. `{ limit: 3 }` (never secrets). */
  extra?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * An error with a stable `code` (Fastify `createError` style without the status). Subclasses add typed fields;
 * plain instances come from the factories below.
 */
export class CodedError<C extends string = string> extends Error {
  readonly code: C;
  readonly errors: FieldError[] | undefined;
  readonly extra: Record<string, unknown> | undefined;

  constructor(code: C, message: string, data: CodedErrorData = {}) {
    super(message, data.cause !== undefined ? { cause: data.cause } : undefined);
    this.name = 'CodedError';
    this.code = code;
    this.errors = data.errors;
    this.extra = data.extra;
  }
}

/** The request is malformed (BAD_REQUEST); `errors` names the parameters at fault. */
export const badRequest = (detail: string, errors?: FieldError[]) =>
  new CodedError(GenericErrorCode.BAD_REQUEST, detail, errors ? { errors } : {});
/** No usable credentials (UNAUTHENTICATED). */
export const unauthenticated = (detail: string) => new CodedError(GenericErrorCode.UNAUTHENTICATED, detail);
/** The caller may not do this (FORBIDDEN); `extra` may name the roles or scopes that would do. */
export const forbidden = (detail: string, extra?: Record<string, unknown>) =>
  new CodedError(GenericErrorCode.FORBIDDEN, detail, extra ? { extra } : {});
/** The resource does not exist (NOT_FOUND). */
export const notFound = (detail: string) => new CodedError(GenericErrorCode.NOT_FOUND, detail);
/** A taken key or a state change not allowed now (CONFLICT). */
export const conflict = (detail: string, extra?: Record<string, unknown>) =>
  new CodedError(GenericErrorCode.CONFLICT, detail, extra ? { extra } : {});
/** One field at fault (VALIDATION_FAILED); `path` is like `/body/config/colour`. */
export const invalidField = (path: string, message: string, detail?: string) =>
  new CodedError(GenericErrorCode.VALIDATION_FAILED, detail ?? `${path.replace(/^\/body\//, '')}: ${message}`, {
    errors: [{ path, message }],
  });
/** Several fields at fault (VALIDATION_FAILED); `extra` may carry more, e.g. a model's `issues`. */
export const validationFailed = (detail: string, errors: FieldError[], extra?: Record<string, unknown>) =>
  new CodedError(GenericErrorCode.VALIDATION_FAILED, detail, extra ? { errors, extra } : { errors });
/** An outbound integration call failed before or after the far side answered (INTEGRATION_CALL_FAILED). */
export const integrationCallFailed = (detail: string, extra?: Record<string, unknown>, cause?: unknown) =>
  new CodedError(GenericErrorCode.INTEGRATION_CALL_FAILED, detail, {
    ...(extra ? { extra } : {}),
    ...(cause !== undefined ? { cause } : {}),
  });

/** True for any coded error: one a client may be told about, as opposed to an unexpected failure. */
export const isCodedError = (e: unknown): e is CodedError => e instanceof CodedError;
