import type { adGateway as T } from '../../adapter';

/**
 * Request data and responses of every operation of `openapi/integrations/ad-gateway.yaml`, keyed by operationId,
 * from the typed client generated from the same document: the gateway's handlers and its clients cannot disagree
 * on a shape without the compiler noticing. `server/gateway/app.ts` checks at start-up that this table and the
 * document name the same operations.
 */
export interface GatewayOperations {
  findUser: { data: T.FindUserData; responses: T.FindUserResponses & T.FindUserErrors };
  findUserManager: { data: T.FindUserManagerData; responses: T.FindUserManagerResponses & T.FindUserManagerErrors };
  listUserGroups: { data: T.ListUserGroupsData; responses: T.ListUserGroupsResponses & T.ListUserGroupsErrors };
  enableUser: { data: T.EnableUserData; responses: T.EnableUserResponses & T.EnableUserErrors };
  disableUser: { data: T.DisableUserData; responses: T.DisableUserResponses & T.DisableUserErrors };
  setUserAttributes: { data: T.SetUserAttributesData; responses: T.SetUserAttributesResponses & T.SetUserAttributesErrors };
  checkGroupMembership: { data: T.CheckGroupMembershipData; responses: T.CheckGroupMembershipResponses & T.CheckGroupMembershipErrors };
  addGroupMember: { data: T.AddGroupMemberData; responses: T.AddGroupMemberResponses & T.AddGroupMemberErrors };
  removeGroupMember: { data: T.RemoveGroupMemberData; responses: T.RemoveGroupMemberResponses & T.RemoveGroupMemberErrors };
  checkEligibleRequestor: { data: T.CheckEligibleRequestorData; responses: T.CheckEligibleRequestorResponses & T.CheckEligibleRequestorErrors };
  testDirectoryConnection: { data: T.TestDirectoryConnectionData; responses: T.TestDirectoryConnectionResponses & T.TestDirectoryConnectionErrors };
}

export type GatewayOperationId = keyof GatewayOperations;

export const gatewayOperationIds: readonly GatewayOperationId[] = [
  'findUser', 'findUserManager', 'listUserGroups', 'enableUser', 'disableUser', 'setUserAttributes',
  'checkGroupMembership', 'addGroupMember', 'removeGroupMember', 'checkEligibleRequestor', 'testDirectoryConnection',
];

export type GatewayUser = T.DirectoryUser;
export type GatewayUserKeyKind = T.UserKeyKind;
export type GatewayGroupKeyKind = T.GroupKeyKind;
