import { CORE_GROUP, CORE_USER, ENTERPRISE_USER, LIST_RESPONSE, SCIM_BASE } from './model';
import { MAX_MEMBER_VALUES, MAX_PATCH_OPERATIONS } from './limits';
import { MAX_RESULTS } from './store';

// What this server supports, stated exactly (RFC 7643 §5-§7): PATCH, filters and ETags (meta.version, the ETag
// header, If-Match -> 412) yes; bulk, sort and password change no.

type Obj = Record<string, unknown>;

export const serviceProviderConfig = (): Obj => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
  documentationUri: '/docs',
  // maxOperations and maxMemberValues are ours (RFC 7643 §5 defines limits for bulk and filter only): the PATCH
  // limits of limits.ts, where going beyond them answers 413 tooMany.
  patch: { supported: true, maxOperations: MAX_PATCH_OPERATIONS, maxMemberValues: MAX_MEMBER_VALUES },
  bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
  filter: { supported: true, maxResults: MAX_RESULTS },
  changePassword: { supported: false },
  sort: { supported: false },
  etag: { supported: true },
  authenticationSchemes: [
    { type: 'oauthbearertoken', name: 'Bearer token', description: 'A provisio API token (xpat_…) with scim:read and scim:write.', primary: true },
  ],
  meta: { resourceType: 'ServiceProviderConfig', location: `${SCIM_BASE}/ServiceProviderConfig` },
});

const attr = (name: string, type: string, extra: Obj = {}): Obj => ({
  name, type, multiValued: false, required: false, caseExact: false, mutability: 'readWrite', returned: 'default', uniqueness: 'none',
  ...(type === 'string' ? {} : {}), ...extra,
});
const sub = (names: string[]) => names.map((n) => attr(n, n === 'primary' ? 'boolean' : n === '$ref' ? 'reference' : 'string'));
const multi = (name: string, subs: string[]) => attr(name, 'complex', { multiValued: true, subAttributes: sub(subs) });

const userSchema: Obj = {
  id: CORE_USER,
  name: 'User',
  description: 'User Account',
  attributes: [
    attr('userName', 'string', { required: true, uniqueness: 'server' }),
    attr('name', 'complex', { subAttributes: sub(['formatted', 'familyName', 'givenName', 'middleName', 'honorificPrefix', 'honorificSuffix']) }),
    attr('displayName', 'string'), attr('nickName', 'string'), attr('profileUrl', 'reference', { referenceTypes: ['external'] }),
    attr('title', 'string'), attr('userType', 'string'), attr('preferredLanguage', 'string'), attr('locale', 'string'),
    attr('timezone', 'string'), attr('active', 'boolean'),
    attr('password', 'string', { mutability: 'writeOnly', returned: 'never' }),
    multi('emails', ['value', 'display', 'type', 'primary']),
    multi('phoneNumbers', ['value', 'display', 'type', 'primary']),
    multi('ims', ['value', 'display', 'type', 'primary']),
    multi('photos', ['value', 'display', 'type', 'primary']),
    multi('addresses', ['formatted', 'streetAddress', 'locality', 'region', 'postalCode', 'country', 'type', 'primary']),
    attr('groups', 'complex', { multiValued: true, mutability: 'readOnly', subAttributes: sub(['value', '$ref', 'display', 'type']) }),
    multi('entitlements', ['value', 'display', 'type', 'primary']),
    multi('roles', ['value', 'display', 'type', 'primary']),
    multi('x509Certificates', ['value', 'display', 'type', 'primary']),
    attr('externalId', 'string', { caseExact: true }),
  ],
  meta: { resourceType: 'Schema', location: `${SCIM_BASE}/Schemas/${CORE_USER}` },
};

const enterpriseSchema: Obj = {
  id: ENTERPRISE_USER,
  name: 'EnterpriseUser',
  description: 'Enterprise User',
  attributes: [
    attr('employeeNumber', 'string'), attr('costCenter', 'string'), attr('organization', 'string'),
    attr('division', 'string'), attr('department', 'string'),
    attr('manager', 'complex', { subAttributes: [...sub(['value', '$ref']), attr('displayName', 'string', { mutability: 'readOnly' })] }),
  ],
  meta: { resourceType: 'Schema', location: `${SCIM_BASE}/Schemas/${ENTERPRISE_USER}` },
};

const groupSchema: Obj = {
  id: CORE_GROUP,
  name: 'Group',
  description: 'Group',
  attributes: [
    attr('displayName', 'string', { required: true, uniqueness: 'server' }),
    attr('members', 'complex', { multiValued: true, subAttributes: sub(['value', '$ref', 'display', 'type']) }),
    attr('externalId', 'string', { caseExact: true }),
  ],
  meta: { resourceType: 'Schema', location: `${SCIM_BASE}/Schemas/${CORE_GROUP}` },
};

export const SCHEMAS: Obj[] = [userSchema, enterpriseSchema, groupSchema].map((s) => ({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'], ...s }));

export const RESOURCE_TYPES: Obj[] = [
  {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'], id: 'User', name: 'User', endpoint: '/Users',
    description: 'User Account', schema: CORE_USER, schemaExtensions: [{ schema: ENTERPRISE_USER, required: false }],
    meta: { resourceType: 'ResourceType', location: `${SCIM_BASE}/ResourceTypes/User` },
  },
  {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'], id: 'Group', name: 'Group', endpoint: '/Groups',
    description: 'Group', schema: CORE_GROUP, schemaExtensions: [],
    meta: { resourceType: 'ResourceType', location: `${SCIM_BASE}/ResourceTypes/Group` },
  },
];

export const listOf = (items: Obj[]) => ({ schemas: [LIST_RESPONSE], totalResults: items.length, startIndex: 1, itemsPerPage: items.length, Resources: items });
