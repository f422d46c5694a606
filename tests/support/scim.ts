import type { Response } from 'supertest';
import type { TestApp } from './app';
import { mintTestToken } from './orders';

export const CORE_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const ENTERPRISE_USER = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const SCIM_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** A SCIM client for one test app: a token with scim:read + scim:write, JSON bodies as `application/scim+json`. */
export interface ScimClient {
  token: string;
  get(path: string): Promise<Response>;
  post(path: string, body: unknown, contentType?: string): Promise<Response>;
  put(path: string, body: unknown): Promise<Response>;
  patch(path: string, ops: unknown[]): Promise<Response>;
  del(path: string): Promise<Response>;
}

export async function scimClient(t: TestApp, name = 'idp'): Promise<ScimClient> {
  const token = await mintTestToken(t.db, name, ['scim:read', 'scim:write']);
  const auth = { Authorization: `Bearer ${token}` };
  const send = (method: 'post' | 'put' | 'patch', path: string, body: unknown, contentType = 'application/scim+json') =>
    t.http()[method](`/scim/v2${path}`).set(auth).set('Content-Type', contentType).send(JSON.stringify(body));
  return {
    token,
    get: (path) => t.http().get(`/scim/v2${path}`).set(auth).set('Accept', 'application/scim+json'),
    post: (path, body, ct) => send('post', path, body, ct),
    put: (path, body) => send('put', path, body),
    patch: (path, ops) => send('patch', path, { schemas: [PATCH_OP], Operations: ops }),
    del: (path) => t.http().delete(`/scim/v2${path}`).set(auth),
  };
}

export function userBody(userName: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemas: [CORE_USER],
    userName,
    name: { givenName: 'Given', familyName: 'Family' },
    emails: [{ value: userName, type: 'work', primary: true }],
    active: true,
    ...over,
  };
}
