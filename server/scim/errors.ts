import { AppError, ErrorCode } from '../errors';

/** RFC 7644 §3.12 scimType values. */
export type ScimType =
  | 'invalidFilter' | 'tooMany' | 'uniqueness' | 'mutability' | 'invalidSyntax' | 'invalidPath'
  | 'noTarget' | 'invalidValue' | 'invalidVers' | 'sensitive';

export const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: ErrorCode.BAD_REQUEST, 401: ErrorCode.UNAUTHENTICATED, 403: ErrorCode.FORBIDDEN, 404: ErrorCode.NOT_FOUND,
  409: ErrorCode.CONFLICT, 412: ErrorCode.CONFLICT, 413: ErrorCode.PAYLOAD_TOO_LARGE, 415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
};

/** An AppError carrying a SCIM `scimType`; the one error mapper renders it as a SCIM Error on /scim paths. */
export class ScimError extends AppError {
  constructor(status: number, readonly scimType: ScimType | undefined, detail: string) {
    super(CODE_BY_STATUS[status] ?? ErrorCode.BAD_REQUEST, status, detail, undefined, scimType ? { scimType } : undefined);
    this.name = 'ScimError';
  }
}

export const scimNotFound = (what: string, id: string) => new ScimError(404, undefined, `${what} ${id} not found`);
export const invalidValue = (detail: string) => new ScimError(400, 'invalidValue', detail);
