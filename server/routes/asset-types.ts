import type { RouteModule } from './route-module';
import type { HandlerInput } from '../api/handler';
import type { OperationId } from '../api/operations.gen';
import { attribution } from '../auth/principal';
import {
  createAssetType,
  deleteAssetType,
  listAssetTypes,
  readAssetType,
  updateAssetType,
} from '../domain/catalogue/asset-types';
import type { Actor } from '../../adapter';
import { unauthenticated } from '../errors';
import { pageBody, pageOf } from '../domain/paging';

/** The caller of an authenticated admin operation, as its audit rows name it. */
export function adminActorOf<O extends OperationId>(input: HandlerInput<O>): Actor {
  const p = input.principal;
  if (!p) throw unauthenticated('credentials required');
  return { triggeredBy: attribution('admin', p), requestId: input.requestId };
}

export const assetTypeHandlers: RouteModule = ({ db }) => ({
  listAssetTypes: async ({ query }) => {
    const page = pageOf(query);
    const found = await listAssetTypes(db, { name: query.name, assignment_model: query.assignment_model, ...page });
    return { status: 200, body: pageBody(found, (t) => t, page) };
  },

  createAssetType: async (input) => {
    const actor = adminActorOf(input);
    const view = await db.transaction(async (tx) => readAssetType(tx, (await createAssetType(tx, input.body, actor)).id));
    return { status: 201, body: view };
  },

  getAssetType: async ({ path }) => ({ status: 200, body: await readAssetType(db, Number(path.id)) }),

  updateAssetType: async (input) => {
    const actor = adminActorOf(input);
    const id = Number(input.path.id);
    const view = await db.transaction(async (tx) => {
      await updateAssetType(tx, id, input.body, actor);
      return readAssetType(tx, id);
    });
    return { status: 200, body: view };
  },

  deleteAssetType: async (input) => {
    const actor = adminActorOf(input);
    await db.transaction((tx) => deleteAssetType(tx, Number(input.path.id), actor));
    return { status: 204, body: undefined };
  },
});
