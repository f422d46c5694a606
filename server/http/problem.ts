import type { ErrorRequestHandler, Response } from 'express';
import { AppError, ErrorCode, type FieldError } from '../errors';
import { currentLogContext, type Logger } from '../../adapter';
import { DirectoryError, DirectoryErrorCode } from '../../adapter/directory';

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Content Too Large', 415: 'Unsupported Media Type', 422: 'Unprocessable Entity',
  429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable',
};

/** Writes an RFC 9457 problem document. */
export function sendProblem(res: Response, err: AppError, instance?: string): void {
  const requestId = currentLogContext()?.requestId;
  res
    .status(err.status)
    .type('application/problem+json')
    .json({
      type: 'about:blank',
      title: TITLES[err.status] ?? 'Error',
      status: err.status,
      detail: err.message,
      code: err.code,
      ...(instance ? { instance } : {}),
      ...(requestId ? { request_id: requestId } : {}),
      ...(err.errors ? { errors: err.errors } : {}),
      ...(err.extra ?? {}),
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

/** Turns any error into a problem document: ours, the spec validator's, the body parser's, or unexpected ones. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof DirectoryError) return fromDirectoryError(err);
  if (isBodyParserError(err)) {
    if (err.type === 'entity.too.large') return new AppError(ErrorCode.PAYLOAD_TOO_LARGE, 413, `request body exceeds the limit of ${err.limit ?? '?'} bytes`);
    if (err.type === 'entity.parse.failed') return new AppError(ErrorCode.BAD_REQUEST, 400, `request body is not valid JSON: ${err.message}`);
    if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported') return new AppError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415, err.message);
    return new AppError(ErrorCode.BAD_REQUEST, 400, err.message);
  }
  // body-parser wraps a failure of the stream it reads (a body sent as `Content-Encoding: gzip` that is not gzip,
  // a truncated deflate stream) as a plain http-errors 400 without a `type`: the client's fault, never ours.
  if (isUnreadableBody(err)) {
    return new AppError(ErrorCode.BAD_REQUEST, 400, 'the request body could not be read: it does not match its Content-Encoding');
  }
  if (isValidatorError(err)) {
    const errors: FieldError[] = (err.errors ?? []).map((e) => ({ path: e.path.replace(/^\.?/, '/').replace(/\./g, '/').replace(/^\/+/, '/'), message: e.message }));
    const detail = errors.map((e) => `${e.path.replace(/^\/(body|query|path|headers)\//, '')} ${e.message}`).join('; ') || err.message;
    switch (err.status) {
      case 400: {
        // A body that parses but breaks the schema is a 422 naming the field; malformed parameters stay 400.
        const bodyOnly = errors.length > 0 && errors.every((e) => e.path.startsWith('/body'));
        return bodyOnly
          ? new AppError(ErrorCode.VALIDATION_FAILED, 422, detail, errors)
          : new AppError(ErrorCode.BAD_REQUEST, 400, detail, errors);
      }
      case 404: return new AppError(ErrorCode.NOT_FOUND, 404, 'no such route');
      case 405: return new AppError(ErrorCode.METHOD_NOT_ALLOWED, 405, err.message);
      case 413: return new AppError(ErrorCode.PAYLOAD_TOO_LARGE, 413, err.message);
      case 415: return new AppError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415, err.message);
      default: {
        // Response validation failures (tests) and the like: surface them as server errors with the reason.
        return new AppError(ErrorCode.INTERNAL, 500, `${err.message}: ${detail}`);
      }
    }
  }
  return new AppError(ErrorCode.INTERNAL, 500, 'internal error');
}

/**
 * A directory failure as HTTP. The caller's input problems keep the directory's message (it names the key or
 * attribute, never a secret); failures between us and the directory (bind refused, TLS, access rights,
 * unreachable) answer 502/503 with a fixed detail, since the server's own text may name hosts and accounts.
 * `directory_code` always carries the directory's code.
 */
function fromDirectoryError(err: DirectoryError): AppError {
  const extra: Record<string, unknown> = { directory_code: err.code };
  if (err.details.key) extra['key'] = err.details.key;
  const upstream = (detail: string) => new AppError(ErrorCode.INTEGRATION_CALL_FAILED, 502, detail, undefined, extra);
  switch (err.code) {
    case DirectoryErrorCode.NOT_FOUND:
      return new AppError(ErrorCode.NOT_FOUND, 404, err.message, undefined, extra);
    case DirectoryErrorCode.AMBIGUOUS:
      return new AppError(ErrorCode.CONFLICT, 409, err.message, undefined, extra);
    case DirectoryErrorCode.ATTRIBUTE_NOT_ALLOWED: {
      const attr = err.details.attribute;
      const errors = attr ? [{ path: `/body/attributes/${attr}`, message: err.message }] : undefined;
      return new AppError(ErrorCode.VALIDATION_FAILED, 422, err.message, errors, extra);
    }
    case DirectoryErrorCode.INVALID_INPUT:
    case DirectoryErrorCode.REJECTED:
      return new AppError(ErrorCode.VALIDATION_FAILED, 422, err.message, undefined, extra);
    case DirectoryErrorCode.UNAVAILABLE:
      return new AppError(ErrorCode.INTEGRATION_CALL_FAILED, 503, 'the directory is unavailable; try again later', undefined, extra);
    case DirectoryErrorCode.INVALID_CREDENTIALS: {
      const why = err.details.adReason ?? 'invalid credentials';
      const data = err.details.adDataCode ? ` (AD data ${err.details.adDataCode})` : '';
      return upstream(`the directory refused the service account: ${why}${data}`);
    }
    case DirectoryErrorCode.INSUFFICIENT_ACCESS:
      return upstream('the directory refused the change: the service account lacks the access rights');
    case DirectoryErrorCode.STRONG_AUTH_REQUIRED:
      return upstream('the directory requires an encrypted connection: configure LDAPS or StartTLS');
    case DirectoryErrorCode.TLS:
      return upstream('TLS to the directory failed: check the CA certificate and the server name');
    case DirectoryErrorCode.CONFIG:
      return upstream('the directory settings are invalid; see the gateway log');
    default:
      return upstream(`the directory answered with an error${err.details.ldapCode !== undefined ? ` (LDAP result ${err.details.ldapCode})` : ''}`);
  }
}

/**
 * A SCIM Error message (RFC 7644 §3.12) for /scim paths: `status` as a string, a `scimType` where one applies.
 * SCIM has no 422, so body validation failures are 400 invalidValue; a body that is not JSON is invalidSyntax.
 */
export function sendScimError(res: Response, err: AppError, original: unknown): void {
  const status = err.status === 422 ? 400 : err.status;
  let scimType = typeof err.extra?.['scimType'] === 'string' ? (err.extra['scimType'] as string) : undefined;
  if (!scimType && status === 400) {
    scimType = isBodyParserError(original) && original.type === 'entity.parse.failed' ? 'invalidSyntax' : 'invalidValue';
  }
  const detail = err.message || TITLES[status] || 'error';
  res.locals['scimError'] = { scimType, detail };
  res
    .status(status)
    .type('application/scim+json')
    .json({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: String(status), ...(scimType ? { scimType } : {}), detail });
}

/** The one place errors become HTTP responses: SCIM errors on /scim paths, problem documents elsewhere. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const appErr = toAppError(err);
    if (appErr.status >= 500) {
      logger.error('request failed', { method: req.method, path: req.path, err: err instanceof Error ? err.stack : String(err) });
    }
    if (res.headersSent) return;
    if (req.path.startsWith('/scim/')) return sendScimError(res, appErr, err);
    sendProblem(res, appErr, req.originalUrl.split('?')[0]);
  };
}
