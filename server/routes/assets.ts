import type { RouteModule } from './route-module';
import { createAsset, deleteAsset, listAssets, readAsset, updateAsset } from '../domain/catalogue/assets';
import { pageBody, pageOf } from '../domain/paging';
import { adminActorOf } from './asset-types';

export const assetHandlers: RouteModule = ({ db }) => ({
  listAssets: async ({ query }) => {
    const page = pageOf(query);
    const found = await listAssets(db, { asset_type_id: query.asset_type_id, state: query.state, ...page });
    return { status: 200, body: pageBody(found, (a) => a, page) };
  },

  createAsset: async (input) => {
    const actor = adminActorOf(input);
    return { status: 201, body: await db.transaction((tx) => createAsset(tx, input.body, actor)) };
  },

  getAsset: async ({ path }) => ({ status: 200, body: await readAsset(db, Number(path.id)) }),

  updateAsset: async (input) => {
    const actor = adminActorOf(input);
    return { status: 200, body: await db.transaction((tx) => updateAsset(tx, Number(input.path.id), input.body, actor)) };
  },

  deleteAsset: async (input) => {
    const actor = adminActorOf(input);
    await db.transaction((tx) => deleteAsset(tx, Number(input.path.id), actor));
    return { status: 204, body: undefined };
  },
});
