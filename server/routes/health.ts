import { pendingMigrations } from '../../adapter';
import type { RouteModule } from './route-module';

export const healthHandlers: RouteModule = ({ db }) => ({
  getHealth: async () => ({ status: 200, body: { status: 'ok' } }),
  getReadiness: async () => {
    try {
      await db.query('SELECT 1');
    } catch {
      return { status: 503, body: { status: 'not_ready', database: 'unreachable', migrations: { pending: [] } } };
    }
    const pending = await pendingMigrations(db);
    if (pending.length > 0) return { status: 503, body: { status: 'not_ready', database: 'ok', migrations: { pending } } };
    return { status: 200, body: { status: 'ready', database: 'ok', migrations: { pending } } };
  },
});
