/**
 * The LDAP / Active Directory adapter: user lookup, manager, group membership (direct and nested),
 * membership changes, account enable/disable, attribute writes and the eligible-requestor check, over
 * ldapts with pooled bound connections. Every failure is a `DirectoryError` with a stable code.
 */
export { createDirectory } from './directory';
export type {
  AttributeChange,
  AttributeValues,
  Directory,
  DirectoryDeps,
  DirectoryGroup,
  DirectoryUser,
  Eligibility,
  EnabledChange,
  GroupKey,
  GroupKeyKind,
  Membership,
  MembershipChange,
  UserKey,
  UserKeyKind,
} from './directory';
export { DirectoryError, DirectoryErrorCode, toDirectoryError } from './errors';
export type { DirectoryErrorDetails } from './errors';
export { escapeFilterValue, isDnWithin, normalizeDn, parseDn } from './ldap-text';
export {
  CONSUMER_ATTRIBUTES,
  DEFAULT_CONSUMER_ATTRIBUTES,
  PROTECTED_ATTRIBUTES,
  resolveDirectorySettings,
} from './settings';
export type { ConsumerAttribute, DirectoryAuthType, DirectorySecurity, DirectorySettings, ResolvedDirectorySettings, SaslProtection } from './settings';
