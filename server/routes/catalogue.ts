import type { RouteModule } from './route-module';
import { listCatalogue } from '../domain/catalogue/catalogue';

/** `GET /catalogue`: what a person may order (or, without `user_email`, every asset type). */
export const catalogueHandlers: RouteModule = ({ db, requesterDirectory }) => ({
  listCatalogue: async ({ query }) => ({ status: 200, body: await listCatalogue(db, requesterDirectory, query.user_email) }),
});
