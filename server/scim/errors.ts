import { CodedError, ErrorCode, SCIM_TYPE_CODES, type ScimType } from '../errors';

export type { ScimType };

export const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/**
 * An error carrying a SCIM `scimType`; its `code` (and so its status) is the error table's for that type. The one
 * error mapper renders it as a SCIM Error on /scim paths and as a problem document elsewhere.
 */
export class ScimError extends CodedError<(typeof SCIM_TYPE_CODES)[ScimType]> {
  constructor(readonly scimType: ScimType, detail: string) {
    super(SCIM_TYPE_CODES[scimType], detail);
    this.name = 'ScimError';
  }
}

/** No such resource (404, without a scimType). */
export const scimNotFound = (what: string, id: string) => new CodedError(ErrorCode.NOT_FOUND, `${what} ${id} not found`);
/** A body field with a bad value (400 invalidValue). */
export const invalidValue = (detail: string) => new ScimError('invalidValue', detail);
/** `If-Match` names a version that is no longer current (412, without a scimType). */
export const preconditionFailed = (detail: string) => new CodedError(ErrorCode.PRECONDITION_FAILED, detail);
