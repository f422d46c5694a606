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
import { setAssetTypeTeamsWebhook } from '../domain/notifications';
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
    // The Teams webhook URL is a secret kept apart from the type's row (notifications/teams.ts), set in the same transaction.
    const { teams_webhook_url: teamsWebhookUrl, ...fields } = input.body;
    const view = await db.transaction(async (tx) => {
      const { id } = await createAssetType(tx, fields, actor);
      if (teamsWebhookUrl !== undefined && teamsWebhookUrl !== null) await setAssetTypeTeamsWebhook(tx, id, teamsWebhookUrl, actor);
      return readAssetType(tx, id);
    });
    return { status: 201, body: view };
  },

  getAssetType: async ({ path }) => ({ status: 200, body: await readAssetType(db, Number(path.id)) }),

  updateAssetType: async (input) => {
    const actor = adminActorOf(input);
    const id = Number(input.path.id);
    const { teams_webhook_url: teamsWebhookUrl, ...change } = input.body;
    const view = await db.transaction(async (tx) => {
      await updateAssetType(tx, id, change, actor);
      if (teamsWebhookUrl !== undefined) await setAssetTypeTeamsWebhook(tx, id, teamsWebhookUrl, actor);
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
